//! The bulkhead's state: plain atomic words at a fixed layout, no pointer,
//! so the same block can live on the heap or in memory shared between
//! processes.

use crate::sync::{AtomicI64, AtomicU64, CachePadded};

/// A bulkhead's whole shared state. `#[repr(C)]`, pointer-free; every field
/// is one atomic word, the first three each on a cache line of its own
/// (different threads write them), the two settings together on a fourth:
///
/// | field | written by | contents |
/// |---|---|---|
/// | `word` | every acquire and release | the permit word, see below |
/// | `peak` | an acquire that sets a new peak | most permits ever out at once |
/// | `rejected` | every refusal | refusals since creation |
/// | `max` | reconfiguration | the limit in force, `1 ..= 2^31-1` |
/// | `reserve` | reconfiguration | permits kept for critical callers, `< max` |
///
/// The permit word is `[critical waiters:16 | normal waiters:16 |
/// available:32]`. `available` is `max - in_use`, stored with a bias of
/// 2^31 so that it can go negative after a live shrink. Keeping the waiter
/// counts in the same word as the permits is what makes wake-ups reliable:
/// a release's one `fetch_add` both returns the permit and reads whether
/// anyone waits, and a waiter registers in the same compare-and-swap that
/// finds no permit.
///
/// The waiters' lock and condition variables are not part of it: they are
/// the handle's, private to a process.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct BulkheadState {
    pub(crate) word: CachePadded<AtomicU64>,
    pub(crate) peak: CachePadded<AtomicI64>,
    pub(crate) rejected: CachePadded<AtomicU64>,
    pub(crate) max: AtomicI64,
    pub(crate) reserve: AtomicI64,
}

impl BulkheadState {
    /// A bulkhead's state with every permit free.
    pub(crate) fn new(max: u32, reserve: u32) -> Self {
        BulkheadState {
            word: CachePadded::new(AtomicU64::new(word::full(max))),
            peak: CachePadded::new(AtomicI64::new(0)),
            rejected: CachePadded::new(AtomicU64::new(0)),
            max: AtomicI64::new(max as i64),
            reserve: AtomicI64::new(reserve as i64),
        }
    }

    /// A shared bulkhead's state (a host region's): the permit word is
    /// the tagged one ([`tagged`](super::tagged)); `max` is at most
    /// [`MAX_SHARED`](super::MAX_SHARED).
    #[cfg(all(unix, not(failwell_loom)))]
    pub(crate) fn shared(max: u32, reserve: u32) -> Self {
        let s = Self::new(max, reserve);
        s.word
            .store(super::tagged::full(max), crate::sync::Ordering::Relaxed);
        s
    }
}

/// The permit word's fields.
pub(crate) mod word {
    /// The bias of the `available` field.
    pub(crate) const BIAS: u64 = 1 << 31;
    /// The `available` field's mask.
    pub(crate) const AVAILABLE: u64 = 0xFFFF_FFFF;
    /// One normal waiter.
    pub(crate) const NORMAL_WAITER: u64 = 1 << 32;
    /// One critical waiter.
    pub(crate) const CRITICAL_WAITER: u64 = 1 << 48;
    /// The most waiters of one priority the word counts.
    pub(crate) const MAX_WAITERS: u64 = 0xFFFF;

    /// The word of a bulkhead of limit `max` with every permit free and
    /// nobody waiting.
    pub(crate) const fn full(max: u32) -> u64 {
        BIAS + max as u64
    }

    /// Permits free (negative after a shrink below the permits out).
    #[inline]
    pub(crate) fn available(w: u64) -> i64 {
        (w & AVAILABLE) as i64 - BIAS as i64
    }

    /// Normal callers registered as waiting.
    pub(crate) fn normal_waiters(w: u64) -> u64 {
        (w >> 32) & MAX_WAITERS
    }

    /// Critical callers registered as waiting.
    pub(crate) fn critical_waiters(w: u64) -> u64 {
        w >> 48
    }

    /// Whether anyone at all is registered as waiting.
    #[inline]
    pub(crate) fn has_waiters(w: u64) -> bool {
        w >> 32 != 0
    }
}
