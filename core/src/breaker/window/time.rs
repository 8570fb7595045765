//! The time-based bucketed window: a view of its buckets and call stripes
//! in the breaker's tail and its epoch words in the state block (see the
//! parent module).

use super::{gen_newer, Stats, Tallies, TimeGeometry, FAILED, SLOW};
use crate::sync::{stripe_hint, AtomicU64, Ordering::Relaxed};
use crate::words::Words;

/// Tag width split of a time bucket word: `[gen:16 | epoch:16 | count:32]`.
const TAG_GEN_MASK: u64 = 0xFFFF;
const TAG_EPOCH_MASK: u64 = 0xFFFF;
/// A gap of at least this many epochs since the last swept one counts as
/// long: then no 16-bit epoch tag can be trusted, and every word is old.
const LONG_GAP: u64 = 1 << 14;
/// Ages (current epoch minus a word's, modulo 2^16) at or past this are a
/// word *newer* than the current epoch (a concurrent writer's).
const NEWER_AGE: u64 = TAG_EPOCH_MASK + 1 - LONG_GAP;

/// The outcomes of the calls recorded in the last `buckets × width`
/// nanoseconds. A bucket word is `[gen:16 | epoch:16 | count:32]`, where the
/// epoch is the time divided by the bucket width; a word whose count is
/// zero is empty, whatever its tag.
///
/// Calls are counted per stripe (each thread in its own block of cache
/// lines, one word per bucket), so that successes from many threads do not
/// contend; failures and slow calls, rare on a healthy path, share one word
/// per bucket.
///
/// Narrow tags stay exact because two sweeps keep every non-empty word
/// close to the present: the first writer of each new epoch (known from the
/// full 64-bit `last_epoch`, whatever the gap) empties every word whose
/// epoch left the window *before* it publishes that epoch — after a gap
/// long enough to alias 16-bit epochs (2^14 epochs) it empties every word —
/// and a transition at every 2^14th generation empties the words of other
/// generations (see [`WindowLayout::refresh`]). So a non-empty word's epoch is
/// within the window of `last_epoch` and its generation within 2^14 of the
/// current one, and the wrap-around comparisons only ever see differences
/// far below 2^15.
///
/// `last_epoch` and `cache` are in [`WindowHeads`]; the cache holds the last
/// epoch computed and its bucket, so that a call in the same epoch
/// multiplies instead of dividing twice. Any value stored is
/// self-consistent; a stale one fails the range check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeWindow<'a> {
    pub(super) t: &'a Tallies,
    /// The breaker's tail; the window's words are where `g` says.
    pub(super) tail: &'a Words,
    pub(super) g: &'a TimeGeometry,
}

enum Add {
    Added,
    Stale,
}

impl TimeWindow<'_> {
    pub(super) fn tag(gen: u64, epoch: u64) -> u64 {
        ((gen & TAG_GEN_MASK) << 16) | (epoch & TAG_EPOCH_MASK)
    }

    fn len(&self) -> u64 {
        self.g.buckets as u64
    }

    /// Failures (`0`) or slow calls (`1`) of bucket `b`.
    #[inline(always)]
    fn tally(&self, b: usize, which: usize) -> &AtomicU64 {
        &self.tail.get()[self.g.tallies + 2 * b + which]
    }

    /// The call counts.
    fn calls(&self) -> &[AtomicU64] {
        &self.tail.get()[self.g.calls..self.g.calls + (self.g.stripe_mask + 1) * self.g.stride]
    }

    /// The epoch of `now` and its bucket index.
    #[inline]
    fn locate(&self, now: u64) -> (u64, usize) {
        let c = self.t.cache.load(Relaxed);
        let (epoch, slot) = (c >> 16, (c & 0xFFFF) as usize);
        let start = epoch.wrapping_mul(self.g.width);
        if now >= start && now - start < self.g.width {
            return (epoch, slot);
        }
        let epoch = now / self.g.width;
        let slot = (epoch % self.len()) as usize;
        if epoch < 1 << 48 {
            self.t.cache.store((epoch << 16) | slot as u64, Relaxed);
        }
        (epoch, slot)
    }

    /// Records one outcome at coarse time `now` for generation `gen`.
    #[inline(always)]
    pub(crate) fn record(&self, now: u64, gen: u64, bits: u64) {
        let (epoch, slot) = self.locate(now);
        let last = self.t.last_epoch.load(Relaxed);
        if epoch != last && !Self::enter(self.t, self.tail, self.g, epoch, last) {
            return;
        }
        let tag = Self::tag(gen, epoch);
        let stripe = stripe_hint() & self.g.stripe_mask;
        let calls = &self.tail.get()[self.g.calls + stripe * self.g.stride + slot];
        if let Add::Stale = Self::add(calls, tag) {
            return;
        }
        if bits != 0 {
            if bits & FAILED != 0 {
                Self::add(self.tally(slot, 0), tag);
            }
            if bits & SLOW != 0 {
                Self::add(self.tally(slot, 1), tag);
            }
        }
    }

    /// A writer's epoch differs from the last swept one: sweep a new epoch
    /// first; an older reading (a clock read before a concurrent writer's)
    /// still counts while its epoch is in the window. Whether to record.
    ///
    /// Out of line, with the view's parts as arguments, so the hot path
    /// keeps the view in registers.
    #[cold]
    fn enter(t: &Tallies, tail: &Words, g: &TimeGeometry, epoch: u64, last: u64) -> bool {
        let w = TimeWindow { t, tail, g };
        if epoch > last {
            w.age_out(epoch);
            true
        } else {
            last - epoch < w.len()
        }
    }

    #[inline]
    fn add(word: &AtomicU64, tag: u64) -> Add {
        let mut cur = word.load(Relaxed);
        loop {
            let cur_tag = cur >> 32;
            let new = if cur_tag == tag {
                if cur as u32 == u32::MAX {
                    return Add::Added; // saturated: 4 billion calls in one bucket
                }
                cur + 1
            } else if cur as u32 != 0 && Self::tag_newer(cur_tag, tag) {
                return Add::Stale;
            } else {
                (tag << 32) | 1 // empty, or older: reclaimed
            };
            match word.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return Add::Added,
                Err(actual) => cur = actual,
            }
        }
    }

    fn tag_newer(a: u64, b: u64) -> bool {
        let (ga, gb) = (a >> 16, b >> 16);
        if ga != gb {
            gen_newer(ga, gb, TAG_GEN_MASK)
        } else {
            gen_newer(a & TAG_EPOCH_MASK, b & TAG_EPOCH_MASK, TAG_EPOCH_MASK)
        }
    }

    /// Every word of the window that holds a count.
    pub(super) fn words(&self) -> impl Iterator<Item = &AtomicU64> {
        let b = self.g.buckets;
        let calls = self
            .calls()
            .chunks(self.g.stride)
            .flat_map(move |s| &s[..b]);
        self.tail.get()[self.g.tallies..self.g.tallies + 2 * b]
            .iter()
            .chain(calls)
    }

    /// Empties `w` (keeping its tag) if `out` says so of its tag, unless a
    /// concurrent writer changed it meanwhile.
    fn empty_if(w: &AtomicU64, out: impl Fn(u64) -> bool) {
        let cur = w.load(Relaxed);
        if cur as u32 != 0 && out(cur >> 32) {
            let _ = w.compare_exchange(cur, cur & !0xFFFF_FFFF, Relaxed, Relaxed);
        }
    }

    /// Run by the first writers of each new epoch, before it is published
    /// in `last_epoch`: empties every word whose epoch left the window, or
    /// every word after a long gap. Concurrent sweeps of one epoch are
    /// harmless (each empties only what is out); a sweep may drop the
    /// outcome of a writer racing it, never count an old one.
    #[cold]
    fn age_out(&self, epoch: u64) {
        let prev = self.t.last_epoch.load(Relaxed);
        if prev >= epoch {
            return; // swept already
        }
        let n = self.len();
        if epoch - prev >= LONG_GAP {
            for w in self.words() {
                Self::empty_if(w, |_| true);
            }
        } else {
            for w in self.words() {
                Self::empty_if(w, |tag| {
                    let age = epoch.wrapping_sub(tag) & TAG_EPOCH_MASK;
                    age >= n && age < NEWER_AGE
                });
            }
        }
        self.t.last_epoch.fetch_max(epoch, Relaxed);
    }

    /// See [`WindowLayout::refresh`]: empties every word of another generation.
    pub(super) fn refresh(&self, current: u64) {
        let g = current & TAG_GEN_MASK;
        for w in self.words() {
            Self::empty_if(w, |tag| tag >> 16 != g);
        }
    }

    pub(crate) fn stats(&self, now: u64, gen: u64) -> Stats {
        let epoch = now / self.g.width;
        let n = self.len();
        if epoch.saturating_sub(self.t.last_epoch.load(Relaxed)) >= n {
            // Nothing recorded within the window (however long ago the
            // last record was: no 16-bit tag is compared across the gap).
            return Stats::default();
        }
        let g = gen & TAG_GEN_MASK;
        let count = |w: &AtomicU64| {
            let cur = w.load(Relaxed);
            let tag = cur >> 32;
            let age = epoch.wrapping_sub(tag & TAG_EPOCH_MASK) & TAG_EPOCH_MASK;
            if tag >> 16 == g && age < n {
                cur & 0xFFFF_FFFF
            } else {
                0
            }
        };
        // Failures and slow calls first, calls after: a call is counted
        // before its failure, so calls read later cover every failure read
        // earlier, even if this thread is preempted in between (the rate is
        // then under-, never over-estimated).
        let mut s = Stats::default();
        for b in 0..self.g.buckets {
            s.failures += count(self.tally(b, 0));
            s.slow += count(self.tally(b, 1));
        }
        for stripe in self.calls().chunks(self.g.stride) {
            s.calls += stripe[..self.g.buckets].iter().map(count).sum::<u64>();
        }
        s
    }
}
