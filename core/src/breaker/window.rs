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

use super::state::{gen_newer, GEN_MASK};
use crate::counter::stripe_count;
use crate::sync::{stripe_hint, AtomicU64, CachePadded, Ordering::Relaxed};

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

/// A signed count tagged with a generation: `[gen:32 | count:32]`. A count
/// tagged with an older generation reads as zero.
#[derive(Debug)]
pub(crate) struct TaggedCount(AtomicU64);

impl TaggedCount {
    pub(crate) fn new() -> Self {
        TaggedCount(AtomicU64::new(pack(GEN_MASK, 0)))
    }

    /// Adds `delta` for `gen`; returns the new count, or `None` if the word
    /// already belongs to a newer generation (the caller's permit is stale).
    pub(crate) fn add(&self, gen: u64, delta: i32) -> Option<i32> {
        let mut cur = self.0.load(Relaxed);
        loop {
            let tag = cur >> 32;
            let new = if tag == gen {
                (cur as u32 as i32).wrapping_add(delta)
            } else if gen_newer(tag, gen, GEN_MASK) {
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
        if cur >> 32 == gen && cur as u32 != 0 {
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
        if cur >> 32 == gen {
            (cur as u32 as i32).max(0) as u64
        } else {
            0
        }
    }

    /// Re-tags a word untouched for a long time as `older`, so that the
    /// wrap-around comparison keeps treating it as old.
    fn refresh(&self, current: u64, older: u64) {
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
    (gen << 32) | count as u32 as u64
}

/// The outcomes of the last `n` calls, one tagged slot each
/// (`[gen:62 | slow:1 | failed:1]`), with per-generation totals kept in
/// [`TaggedCount`]s that are touched only when a slot changes.
#[derive(Debug)]
pub(crate) struct CountWindow {
    /// The sequence number of the next outcome; its slot is `seq % len`.
    seq: CachePadded<AtomicU64>,
    slots: Box<[AtomicU64]>,
    filled: TaggedCount,
    failures: TaggedCount,
    slow: TaggedCount,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        CountWindow {
            seq: CachePadded::new(AtomicU64::new(0)),
            slots: (0..size).map(|_| AtomicU64::new(GEN_MASK << 2)).collect(),
            filled: TaggedCount::new(),
            failures: TaggedCount::new(),
            slow: TaggedCount::new(),
        }
    }

    /// Records a success for generation `gen`. A success into a full window
    /// that holds only successes changes nothing, so then it is three loads
    /// of words that do not change and no write: the window stays "the last
    /// `n` outcomes", all successes. Only a window with failures or slow
    /// calls in it, or not yet full, must slide.
    #[inline]
    pub(crate) fn record_success(&self, gen: u64) {
        if self.failures.get(gen) == 0
            && self.slow.get(gen) == 0
            && self.filled.get(gen) >= self.slots.len() as u64
        {
            return;
        }
        self.record(gen, 0);
    }

    /// Records the outcome `bits` for generation `gen` in the next slot. When
    /// the slot already holds the same outcome of the same generation this
    /// is one `fetch_add` and one load.
    #[inline]
    pub(crate) fn record(&self, gen: u64, bits: u64) {
        let seq = self.seq.fetch_add(1, Relaxed);
        let slot = &self.slots[(seq % self.slots.len() as u64) as usize];
        let want = (gen << 2) | bits;
        let cur = slot.load(Relaxed);
        if cur != want {
            self.record_slow(slot, cur, gen, want);
        }
    }

    #[cold]
    fn record_slow(&self, slot: &AtomicU64, mut cur: u64, gen: u64, want: u64) {
        loop {
            let cur_gen = cur >> 2;
            if cur == want {
                return;
            }
            if gen_newer(cur_gen, gen, GEN_MASK) {
                return; // our permit is from an older generation
            }
            match slot.compare_exchange_weak(cur, want, Relaxed, Relaxed) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        let old_bits = if cur >> 2 == gen { cur & 3 } else { 0 };
        let new_bits = want & 3;
        if cur >> 2 != gen {
            self.filled.add(gen, 1);
        }
        let df = (new_bits & FAILED) as i32 - (old_bits & FAILED) as i32;
        if df != 0 {
            self.failures.add(gen, df);
        }
        let ds = ((new_bits & SLOW) >> 1) as i32 - ((old_bits & SLOW) >> 1) as i32;
        if ds != 0 {
            self.slow.add(gen, ds);
        }
    }

    pub(crate) fn stats(&self, gen: u64) -> Stats {
        let n = self.slots.len() as u64;
        // Failures and slow first, as in the time window (see there).
        let failures = self.failures.get(gen).min(n);
        let slow = self.slow.get(gen).min(n);
        Stats {
            calls: self.filled.get(gen).min(n),
            failures,
            slow,
        }
    }

    /// See [`Windows::refresh`].
    fn refresh(&self, current: u64) {
        let older = current.wrapping_sub(1) & GEN_MASK;
        for slot in self.slots.iter() {
            let cur = slot.load(Relaxed);
            if cur >> 2 != current {
                let _ = slot.compare_exchange(cur, older << 2, Relaxed, Relaxed);
            }
        }
        for c in [&self.filled, &self.failures, &self.slow] {
            c.refresh(current, older);
        }
    }
}

/// Tag width split of a time bucket word: `[gen:16 | epoch:16 | count:32]`.
const TAG_GEN_MASK: u64 = 0xFFFF;
const TAG_EPOCH_MASK: u64 = 0xFFFF;

/// Words per cache line: each stripe's block of call counts starts on its
/// own lines.
const LINE_WORDS: usize = 16;

#[derive(Debug)]
struct Bucket {
    failures: AtomicU64,
    slow: AtomicU64,
}

/// The outcomes of the calls recorded in the last `buckets × width`
/// nanoseconds. A bucket word is `[gen:16 | epoch:16 | count:32]`, where the
/// epoch is the time divided by the bucket width.
///
/// Calls are counted per stripe (each thread in its own block of cache
/// lines, one word per bucket), so that successes from many threads do not
/// contend; failures and slow calls, rare on a healthy path, share one word
/// per bucket. The first writer of each new epoch ages out every word whose
/// epoch left the window, so a 16-bit epoch never aliases an old word as a
/// current one.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[Bucket]>,
    /// `stripes × stride` call counts; stripe `s`, bucket `b` at `s * stride + b`.
    calls: Box<[AtomicU64]>,
    stride: usize,
    stripe_mask: usize,
    width: u64,
    last_epoch: AtomicU64,
    /// The last epoch computed and its bucket, `[epoch:48 | bucket:16]`, so
    /// that a call in the same epoch multiplies instead of dividing twice.
    /// Any value stored is self-consistent; a stale one fails the range check.
    cache: AtomicU64,
}

enum Add {
    Added,
    Reclaimed,
    Stale,
}

impl TimeWindow {
    pub(crate) fn new(length_nanos: u64, buckets: u32) -> Self {
        let empty = || AtomicU64::new(0);
        // Stripes as for a striped counter, but at most 8: every word is
        // swept once per epoch.
        let stripes = stripe_count(2, 8);
        let stride = (buckets as usize).div_ceil(LINE_WORDS) * LINE_WORDS;
        TimeWindow {
            buckets: (0..buckets)
                .map(|_| Bucket {
                    failures: empty(),
                    slow: empty(),
                })
                .collect(),
            calls: (0..stripes * stride).map(|_| empty()).collect(),
            stride,
            stripe_mask: stripes - 1,
            width: (length_nanos / buckets as u64).max(1),
            last_epoch: AtomicU64::new(0),
            cache: AtomicU64::new(0),
        }
    }

    fn tag(gen: u64, epoch: u64) -> u64 {
        ((gen & TAG_GEN_MASK) << 16) | (epoch & TAG_EPOCH_MASK)
    }

    /// The epoch of `now` and its bucket index.
    #[inline]
    fn locate(&self, now: u64) -> (u64, usize) {
        let c = self.cache.load(Relaxed);
        let (epoch, slot) = (c >> 16, (c & 0xFFFF) as usize);
        let start = epoch.wrapping_mul(self.width);
        if now >= start && now - start < self.width {
            return (epoch, slot);
        }
        let epoch = now / self.width;
        let slot = (epoch % self.buckets.len() as u64) as usize;
        if epoch < 1 << 48 {
            self.cache.store((epoch << 16) | slot as u64, Relaxed);
        }
        (epoch, slot)
    }

    /// Records one outcome at coarse time `now` for generation `gen`.
    #[inline]
    pub(crate) fn record(&self, now: u64, gen: u64, bits: u64) {
        let (epoch, slot) = self.locate(now);
        let tag = Self::tag(gen, epoch);
        let stripe = stripe_hint() & self.stripe_mask;
        match Self::add(&self.calls[stripe * self.stride + slot], tag) {
            Add::Stale => return,
            Add::Reclaimed => {
                if self.last_epoch.load(Relaxed) < epoch {
                    self.age_out(epoch, gen);
                }
            }
            Add::Added => {}
        }
        if bits != 0 {
            let b = &self.buckets[slot];
            if bits & FAILED != 0 {
                Self::add(&b.failures, tag);
            }
            if bits & SLOW != 0 {
                Self::add(&b.slow, tag);
            }
        }
    }

    #[inline]
    fn add(word: &AtomicU64, tag: u64) -> Add {
        let mut cur = word.load(Relaxed);
        loop {
            let cur_tag = cur >> 32;
            let (new, result) = if cur_tag == tag {
                if cur as u32 == u32::MAX {
                    return Add::Added; // saturated: 4 billion calls in one bucket
                }
                (cur + 1, Add::Added)
            } else if Self::tag_newer(cur_tag, tag) {
                return Add::Stale;
            } else {
                ((tag << 32) | 1, Add::Reclaimed)
            };
            match word.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return result,
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

    fn words(&self) -> impl Iterator<Item = &AtomicU64> {
        self.calls
            .iter()
            .chain(self.buckets.iter().flat_map(|b| [&b.failures, &b.slow]))
    }

    /// Run by the first writer of each new epoch: re-tags every word whose
    /// epoch left the window as empty and old.
    #[cold]
    fn age_out(&self, epoch: u64, gen: u64) {
        let n = self.buckets.len() as u64;
        let prev = self.last_epoch.fetch_max(epoch, Relaxed);
        if prev >= epoch {
            return; // another writer of this epoch is sweeping
        }
        // After a gap longer than the 16-bit epoch can measure, every word
        // not of this epoch is old.
        let long_gap = epoch - prev > TAG_EPOCH_MASK / 2;
        let old_tag = Self::tag(gen.wrapping_sub(1), epoch.wrapping_sub(n));
        for w in self.words() {
            let cur = w.load(Relaxed);
            let e = (cur >> 32) & TAG_EPOCH_MASK;
            let age = epoch.wrapping_sub(e) & TAG_EPOCH_MASK;
            let out = if long_gap {
                e != epoch & TAG_EPOCH_MASK
            } else {
                age >= n && age <= TAG_EPOCH_MASK / 2
            };
            if out {
                let _ = w.compare_exchange(cur, old_tag << 32, Relaxed, Relaxed);
            }
        }
    }

    pub(crate) fn stats(&self, now: u64, gen: u64) -> Stats {
        let epoch = now / self.width;
        let n = self.buckets.len() as u64;
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
        for b in self.buckets.iter() {
            s.failures += count(&b.failures);
            s.slow += count(&b.slow);
        }
        for stripe in self.calls.chunks(self.stride) {
            s.calls += stripe[..self.buckets.len()].iter().map(count).sum::<u64>();
        }
        s
    }
}

/// The windows a breaker keeps, as its configuration asks.
#[derive(Debug)]
pub(crate) struct Windows {
    pub(crate) consecutive: TaggedCount,
    pub(crate) count: Option<CountWindow>,
    pub(crate) time: Option<TimeWindow>,
}

impl Windows {
    /// Every 2^18 generations the transition that reaches such a generation
    /// re-tags words nobody touched since, so the wrap-around comparison of
    /// 21-bit generations never mistakes a very old tag for a newer one.
    pub(crate) const REFRESH_EVERY: u64 = 1 << 18;

    pub(crate) fn refresh(&self, current: u64) {
        self.consecutive
            .refresh(current, current.wrapping_sub(1) & GEN_MASK);
        if let Some(c) = &self.count {
            c.refresh(current);
        }
    }
}
