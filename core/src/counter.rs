//! A striped event counter: each thread adds to its own cache line, so
//! counting on a hot path shared by many threads causes no contention; a
//! reader sums the stripes.
//!
//! The sum is exact once writers stop; while they run it is some value
//! between the counts before and after the concurrent additions, which is
//! all a metrics counter needs.

use crate::sync::{stripe_hint, AtomicU64, CachePadded, Ordering::Relaxed};

/// A monotonically increasing counter spread over cache-padded stripes.
#[derive(Debug)]
pub(crate) struct StripedCounter {
    stripes: Box<[CachePadded<AtomicU64>]>,
    mask: usize,
}

impl StripedCounter {
    /// A counter with one stripe per expected concurrent thread: twice the
    /// available parallelism, rounded up to a power of two, 4 ..= 64.
    pub(crate) fn new() -> Self {
        let par = std::thread::available_parallelism().map_or(4, |n| n.get());
        let n = (par * 2).next_power_of_two().clamp(4, 64);
        StripedCounter {
            stripes: (0..n)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            mask: n - 1,
        }
    }

    /// Adds `n` on the calling thread's stripe.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        // Relaxed: a statistic; readers need no ordering with other data.
        self.stripes[stripe_hint() & self.mask].fetch_add(n, Relaxed);
    }

    /// The total.
    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .fold(0u64, |acc, s| acc.wrapping_add(s.load(Relaxed)))
    }
}
