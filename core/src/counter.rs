//! A striped event counter: each thread adds to its own cache line, so
//! counting on a hot path shared by many threads causes no contention; a
//! reader sums the stripes.
//!
//! The sum is exact once writers stop; while they run it is some value
//! between the counts before and after the concurrent additions, which is
//! all a metrics counter needs.

use crate::sync::{stripe_hint, AtomicU64, Ordering::Relaxed};
use crate::words::{Words, LINE_WORDS};

/// How many stripes to spread per-thread counts over: twice the available
/// parallelism, rounded up to a power of two, within `min ..= max` (both
/// powers of two).
pub(crate) fn stripe_count(min: usize, max: usize) -> usize {
    let par = std::thread::available_parallelism().map_or(4, |n| n.get());
    (par * 2).next_power_of_two().clamp(min, max)
}

/// Where a striped counter's stripes sit in a run of words: stripe `i` is
/// the first word of line `i` (word `i * LINE_WORDS`), `mask + 1` stripes
/// (a power of two), so a counter takes `(mask + 1) * LINE_WORDS` words from
/// the start of the run. The words themselves are part of the owner's
/// state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stripes {
    mask: usize,
}

impl Stripes {
    /// One stripe per expected concurrent thread ([`stripe_count`],
    /// 4 ..= 64).
    pub(crate) fn new() -> Self {
        Stripes {
            mask: stripe_count(4, 64) - 1,
        }
    }

    /// `count` stripes, if it is a power of two from 1 to 1024 (a layout
    /// another process chose and stored).
    #[cfg(not(failwell_loom))]
    pub(crate) fn with_count(count: usize) -> Option<Self> {
        (count.is_power_of_two() && count <= 1024).then(|| Stripes { mask: count - 1 })
    }

    /// How many stripes.
    #[cfg(not(failwell_loom))]
    pub(crate) fn count(self) -> usize {
        self.mask + 1
    }

    /// The words the stripes take.
    pub(crate) fn words(self) -> usize {
        (self.mask + 1) * LINE_WORDS
    }

    /// Adds `n` on the calling thread's stripe of `words` (laid out as
    /// above).
    #[inline(always)]
    pub(crate) fn add(self, words: &Words, n: u64) {
        // Relaxed: a statistic; readers need no ordering with other data.
        words.line(stripe_hint() & self.mask)[0].fetch_add(n, Relaxed);
    }

    /// The total of the stripes in `words`.
    pub(crate) fn sum(self, words: &Words) -> u64 {
        (0..=self.mask).fold(0u64, |acc, s| {
            acc.wrapping_add(words.line(s)[0].load(Relaxed))
        })
    }
}

/// A monotonically increasing counter spread over stripes, owning its
/// words.
#[derive(Debug)]
pub(crate) struct StripedCounter {
    stripes: Stripes,
    words: Words,
}

impl StripedCounter {
    /// A counter with [`Stripes::new`]'s stripes.
    pub(crate) fn new() -> Self {
        let stripes = Stripes::new();
        StripedCounter {
            stripes,
            words: Words::zeroed(stripes.words()),
        }
    }

    /// A counter with `stripes` on `words` (at least `stripes.words()` of
    /// them, on the heap or in a shared region).
    #[cfg(not(failwell_loom))]
    pub(crate) fn on(stripes: Stripes, words: Words) -> Self {
        assert!(
            words.get().len() >= stripes.words(),
            "words for every stripe"
        );
        StripedCounter { stripes, words }
    }

    /// Adds `n` on the calling thread's stripe.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.stripes.add(&self.words, n);
    }

    /// The total.
    pub(crate) fn sum(&self) -> u64 {
        self.stripes.sum(&self.words)
    }
}

/// An event count over a sliding window, kept lock-free as two epoch-tagged
/// words (`[epoch:35 | count:29]`, this epoch's and the last one's): the
/// window's count is estimated as `this + last × fraction of the last epoch
/// still inside the window` (the sliding-window-counter approximation).
///
/// The tag is the whole epoch, so no idle gap can make an old count look
/// current: callers use epochs of at least one second of a `u64`
/// nanosecond clock, which never exceed 2^35 (2^64 ns is 1.8 × 10^10 s).
/// A count saturates at 2^29 − 1 (536 870 911) events in one epoch.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SlidingCount {
    words: [AtomicU64; 2],
}

/// Bits of the count in a [`SlidingCount`] word; the epoch is above them.
const COUNT_BITS: u32 = 29;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// The epochs a word can hold (see [`SlidingCount`]).
const EPOCH_MASK: u64 = (1 << (64 - COUNT_BITS)) - 1;

impl SlidingCount {
    pub(crate) fn new() -> Self {
        SlidingCount {
            // Epoch 0 with count 0: reads as zero for every epoch.
            words: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Adds one in `epoch` (an older epoch's count in that word restarts
    /// from zero) if `allow(count so far in this epoch)`; returns whether it
    /// did. Counts saturate at 2^29 − 1.
    pub(crate) fn add_if(&self, epoch: u64, allow: impl Fn(u64) -> bool) -> bool {
        debug_assert!(epoch <= EPOCH_MASK, "epochs of at least 1 s fit 35 bits");
        let word = &self.words[(epoch & 1) as usize];
        let tag = epoch & EPOCH_MASK;
        let mut cur = word.load(Relaxed);
        loop {
            let count = if cur >> COUNT_BITS == tag {
                cur & COUNT_MASK
            } else {
                0
            };
            if !allow(count) {
                return false;
            }
            let new = (tag << COUNT_BITS) | (count + 1).min(COUNT_MASK);
            // Relaxed: a statistic; each word moves atomically on its own.
            match word.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Adds one in `epoch`.
    pub(crate) fn add(&self, epoch: u64) {
        self.add_if(epoch, |_| true);
    }

    /// The count recorded for `epoch` (zero if its word moved on).
    pub(crate) fn at(&self, epoch: u64) -> u64 {
        let w = self.words[(epoch & 1) as usize].load(Relaxed);
        if w >> COUNT_BITS == epoch & EPOCH_MASK {
            w & COUNT_MASK
        } else {
            0
        }
    }

    /// The count of the epoch before `epoch`.
    pub(crate) fn previous(&self, epoch: u64) -> u64 {
        epoch.checked_sub(1).map_or(0, |p| self.at(p))
    }

    /// The window's estimate at a point `frac_left` of the way *back* from
    /// the end of the last epoch (1.0 at the start of `epoch`).
    pub(crate) fn estimate(&self, epoch: u64, frac_left: f64) -> f64 {
        self.at(epoch) as f64 + self.previous(epoch) as f64 * frac_left
    }
}

#[cfg(all(test, failwell_loom))]
mod loom_models;
