//! Lock-free outcome windows: the consecutive-failure counter, the
//! count-based sliding window and the time-based bucketed window.
//!
//! Every word here carries the generation it belongs to (a *tag*), so a
//! writer holding a permit from an older generation can neither add to nor
//! overwrite a newer generation's counts: its compare-and-swap sees the newer
//! tag and it drops its outcome. Readers count only words tagged with the
//! generation they ask about. A new generation therefore starts from empty
//! windows without anyone clearing them.
//!
//! All orderings here are Relaxed: the windows are statistics. Whether a
//! concurrent outcome is seen by a verdict is a race that no ordering could
//! remove; what matters (and what the tags give) is that every word moves
//! atomically and that no outcome lands in the wrong generation.
//!
//! The windows own no memory: their fixed words ([`WindowHeads`]) are part
//! of the breaker's state block and their sized words (slots, buckets,
//! stripes) part of its tail, laid out by a [`WindowLayout`] fixed at
//! build; [`CountWindow`] and [`TimeWindow`] are views of those words,
//! built per call.

use super::state::{gen_newer, GEN_MASK};
use crate::counter::stripe_count;
use crate::sync::{AtomicU64, CachePadded, Ordering::Relaxed};
use crate::words::Words;

/// The bits of an outcome as stored in a slot.
pub(crate) const FAILED: u64 = 1;
pub(crate) const SLOW: u64 = 2;

/// Counts of one generation's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

/// Mask of the low generation bits a [`TaggedCount`] keeps.
const COUNT_GEN_MASK: u64 = 0xFFFF_FFFF;

/// A signed count tagged with the low 32 bits of a generation:
/// `[gen:32 | count:32]`. A count tagged with an older generation reads as
/// zero. [`WindowLayout::refresh`] keeps every tag within 2^14 generations of
/// the current one, so the wrap-around comparison is exact.
#[repr(transparent)]
#[derive(Debug)]
pub(crate) struct TaggedCount(AtomicU64);

impl TaggedCount {
    pub(crate) fn new() -> Self {
        TaggedCount(AtomicU64::new(pack(COUNT_GEN_MASK, 0)))
    }

    /// Adds `delta` for `gen`; returns the new count, or `None` if the word
    /// already belongs to a newer generation (the caller's permit is stale).
    pub(crate) fn add(&self, gen: u64, delta: i32) -> Option<i32> {
        let gen = gen & COUNT_GEN_MASK;
        let mut cur = self.0.load(Relaxed);
        loop {
            let tag = cur >> 32;
            let new = if tag == gen {
                (cur as u32 as i32).wrapping_add(delta)
            } else if gen_newer(tag, gen, COUNT_GEN_MASK) {
                return None;
            } else {
                delta
            };
            match self
                .0
                .compare_exchange_weak(cur, pack(gen, new), Relaxed, Relaxed)
            {
                Ok(_) => return Some(new),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Sets the count of `gen` to zero if it is not zero already. The common
    /// case (already zero, or another generation's) is one load.
    #[inline]
    pub(crate) fn clear(&self, gen: u64) {
        let cur = self.0.load(Relaxed);
        if cur >> 32 == gen & COUNT_GEN_MASK && cur as u32 != 0 {
            self.clear_slow(cur, gen);
        }
    }

    /// Out of line, so the common case of `clear` falls through.
    #[cold]
    fn clear_slow(&self, cur: u64, gen: u64) {
        // A lost race here means another writer changed the count; a
        // success after a failure in a concurrent world has no order.
        let _ = self.0.compare_exchange(cur, pack(gen, 0), Relaxed, Relaxed);
    }

    /// The count of `gen` (zero when the word holds another generation;
    /// a transiently negative count reads as zero).
    #[inline]
    pub(crate) fn get(&self, gen: u64) -> u64 {
        let cur = self.0.load(Relaxed);
        if cur >> 32 == gen & COUNT_GEN_MASK {
            (cur as u32 as i32).max(0) as u64
        } else {
            0
        }
    }

    /// Re-tags a word of a generation other than `current` as the one
    /// before it, empty, so that the wrap-around comparison keeps treating
    /// it as old.
    fn refresh(&self, current: u64) {
        let (current, older) = (
            current & COUNT_GEN_MASK,
            current.wrapping_sub(1) & COUNT_GEN_MASK,
        );
        let cur = self.0.load(Relaxed);
        if cur >> 32 != current {
            let _ = self
                .0
                .compare_exchange(cur, pack(older, 0), Relaxed, Relaxed);
        }
    }
}

#[inline]
fn pack(gen: u64, count: i32) -> u64 {
    ((gen & COUNT_GEN_MASK) << 32) | count as u32 as u64
}

/// The windows' fixed words, part of the breaker's state block:
///
/// | group | field | contents |
/// |---|---|---|
/// | `seq` | | count window: the sequence number of the next outcome (its slot is `seq % len`) |
/// | `tallies` | `consecutive` | failures in a row, a [`TaggedCount`] |
/// | | `filled`, `failures`, `slow` | count window: the slots of the current generation filled, failed, slow ([`TaggedCount`]s) |
/// | | `last_epoch` | time window: the newest epoch whose sweep has finished (full width) |
/// | | `cache` | time window: the last epoch computed and its bucket, `[epoch:48 \| bucket:16]` |
///
/// The words of a window the configuration does not use stay as built.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct WindowHeads {
    seq: CachePadded<AtomicU64>,
    tallies: CachePadded<Tallies>,
}

/// See [`WindowHeads`].
#[repr(C)]
#[derive(Debug)]
struct Tallies {
    consecutive: TaggedCount,
    filled: TaggedCount,
    failures: TaggedCount,
    slow: TaggedCount,
    last_epoch: AtomicU64,
    cache: AtomicU64,
}

impl WindowHeads {
    pub(crate) fn new() -> Self {
        WindowHeads {
            seq: CachePadded::new(AtomicU64::new(0)),
            tallies: CachePadded::new(Tallies {
                consecutive: TaggedCount::new(),
                filled: TaggedCount::new(),
                failures: TaggedCount::new(),
                slow: TaggedCount::new(),
                last_epoch: AtomicU64::new(0),
                cache: AtomicU64::new(0),
            }),
        }
    }

    /// The consecutive-failure count.
    #[inline(always)]
    pub(crate) fn consecutive(&self) -> &TaggedCount {
        &self.tallies.consecutive
    }
}

/// Where the window's sized words sit in the breaker's tail, from word
/// `at` on, and how they are read; fixed at build.
///
/// - a count window of `len` calls: `len` slots, one word each;
/// - a time window of `buckets` buckets: `2 × buckets` words of failures
///   and slow calls (bucket `b` at `at + 2b`, `at + 2b + 1`), rounded up to
///   whole lines, then `stripes × stride` call counts (stripe `s`, bucket
///   `b` at `calls + s × stride + b`).
///
/// Offsets are of the whole tail, so a view indexes the tail directly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowLayout {
    at: usize,
    /// The count window's length; 0 when it has none. Tested first, as
    /// the hot path's one branch on the window's kind.
    count: usize,
    time: Option<TimeGeometry>,
}

/// A time window's shape (see [`WindowLayout`]).
#[derive(Debug, Clone, Copy)]
struct TimeGeometry {
    buckets: usize,
    /// Bucket width in nanoseconds (≥ 1).
    width: u64,
    /// Tail offset of the failure and slow-call words (the window's first).
    tallies: usize,
    /// Tail offset of the call counts.
    calls: usize,
    stride: usize,
    stripe_mask: usize,
}

/// Words per cache line pair: each stripe's block of call counts starts on
/// its own lines.
const LINE_WORDS: usize = 16;

impl WindowLayout {
    /// No window.
    pub(crate) fn none(at: usize) -> Self {
        WindowLayout {
            at,
            count: 0,
            time: None,
        }
    }

    /// A count window of `size` (≥ 1) calls from word `at` on.
    pub(crate) fn count(at: usize, size: u32) -> Self {
        debug_assert!(size >= 1, "validated by the builder");
        WindowLayout {
            at,
            count: size as usize,
            time: None,
        }
    }

    /// The call stripes a new time window gets: as for a striped counter,
    /// but at most 8 (every word is swept once per epoch).
    pub(crate) fn time_stripes() -> usize {
        stripe_count(2, 8)
    }

    /// A time window of `buckets` buckets over `length_nanos`, from word
    /// `at` on, its call counts on `stripes` (a power of two) stripes.
    pub(crate) fn time(at: usize, length_nanos: u64, buckets: u32, stripes: usize) -> Self {
        debug_assert!(stripes.is_power_of_two());
        let buckets = buckets as usize;
        let stride = buckets.div_ceil(LINE_WORDS) * LINE_WORDS;
        WindowLayout {
            at,
            count: 0,
            time: Some(TimeGeometry {
                buckets,
                width: (length_nanos / buckets as u64).max(1),
                tallies: at,
                calls: at + (2 * buckets).div_ceil(LINE_WORDS) * LINE_WORDS,
                stride,
                stripe_mask: stripes - 1,
            }),
        }
    }

    /// A time window's call stripes (0 for the other windows).
    #[cfg(not(failwell_loom))]
    pub(crate) fn stripes(&self) -> usize {
        self.time.map_or(0, |g| g.stripe_mask + 1)
    }

    /// The words the window takes.
    pub(crate) fn words(&self) -> usize {
        match self.time {
            Some(g) => g.calls - g.tallies + (g.stripe_mask + 1) * g.stride,
            None => self.count,
        }
    }

    /// The initial value of tail word `i` (of any part of the tail: only
    /// the window's words are not zero).
    pub(crate) fn initial(&self, i: usize) -> u64 {
        if (self.at..self.at + self.count).contains(&i) {
            // An empty slot: the newest possible generation's, no outcome
            // (see `CountWindow::record_slow`).
            GEN_MASK << 2
        } else {
            0
        }
    }

    /// The window in `heads` and `tail`, whichever the configuration has.
    #[inline(always)]
    pub(crate) fn view<'a>(&'a self, heads: &'a WindowHeads, tail: &'a Words) -> View<'a> {
        if self.count != 0 {
            View::Count(CountWindow {
                heads,
                tail,
                at: self.at,
                len: self.count,
            })
        } else if let Some(g) = &self.time {
            View::Time(TimeWindow {
                t: &heads.tallies,
                tail,
                g,
            })
        } else {
            View::None
        }
    }

    /// Every 2^14 generations the transition that reaches such a generation
    /// empties the narrow-tagged words of other generations (the time
    /// window's 16-bit tags, the totals' 32-bit ones), so no wrap-around
    /// comparison ever spans 2^15 generations, however many transitions
    /// pass while a word is untouched.
    pub(crate) const REFRESH_EVERY: u64 = 1 << 14;

    /// See [`REFRESH_EVERY`](Self::REFRESH_EVERY).
    pub(crate) fn refresh(&self, heads: &WindowHeads, tail: &Words, current: u64) {
        heads.tallies.consecutive.refresh(current);
        match self.view(heads, tail) {
            View::None => {}
            View::Count(c) => c.refresh(current),
            View::Time(t) => t.refresh(current),
        }
    }
}

/// A view of the window a breaker has (see [`WindowLayout::view`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum View<'a> {
    None,
    Count(CountWindow<'a>),
    Time(TimeWindow<'a>),
}

/// For tests: a window with its own words (the breaker keeps them in its
/// state block and tail).
#[cfg(test)]
pub(crate) struct OwnedWindow {
    heads: WindowHeads,
    tail: Words,
    layout: WindowLayout,
}

#[cfg(test)]
impl OwnedWindow {
    fn with(layout: WindowLayout) -> Self {
        OwnedWindow {
            heads: WindowHeads::new(),
            tail: Words::new(layout.words(), |i| layout.initial(i)),
            layout,
        }
    }

    /// A count window of `size` calls.
    pub(crate) fn count(size: u32) -> Self {
        Self::with(WindowLayout::count(0, size))
    }

    /// A time window of `buckets` buckets over `length_nanos`.
    pub(crate) fn time(length_nanos: u64, buckets: u32) -> Self {
        Self::with(WindowLayout::time(
            0,
            length_nanos,
            buckets,
            WindowLayout::time_stripes(),
        ))
    }

    pub(crate) fn c(&self) -> CountWindow<'_> {
        match self.layout.view(&self.heads, &self.tail) {
            View::Count(c) => c,
            _ => unreachable!("built as a count window"),
        }
    }

    pub(crate) fn t(&self) -> TimeWindow<'_> {
        match self.layout.view(&self.heads, &self.tail) {
            View::Time(t) => t,
            _ => unreachable!("built as a time window"),
        }
    }
}

mod count;
mod time;
pub(crate) use count::CountWindow;
pub(crate) use time::TimeWindow;

#[cfg(all(test, failwell_loom))]
mod loom_models;
#[cfg(all(test, not(failwell_loom)))]
mod tests;
