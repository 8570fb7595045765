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
use crate::sync::{stripe_hint, AtomicU64, CachePadded, Ordering::Relaxed};
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

    /// A time window of `buckets` buckets over `length_nanos`, from word
    /// `at` on.
    pub(crate) fn time(at: usize, length_nanos: u64, buckets: u32) -> Self {
        // Stripes as for a striped counter, but at most 8: every word is
        // swept once per epoch.
        let stripes = stripe_count(2, 8);
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

/// The outcomes of the last `n` calls, one tagged slot each
/// (`[gen:62 | slow:1 | failed:1]`, the full generation, which never
/// wraps), with per-generation totals kept in
/// [`TaggedCount`]s that are touched only when a slot changes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CountWindow<'a> {
    heads: &'a WindowHeads,
    /// The breaker's tail; the slots are `len` words from `at` on.
    tail: &'a Words,
    at: usize,
    len: usize,
}

impl CountWindow<'_> {
    /// Records a success for generation `gen`. A success into a full window
    /// that holds only successes changes nothing, so then it is three loads
    /// of words that do not change and no write: the window stays "the last
    /// `n` outcomes", all successes. Only a window with failures or slow
    /// calls in it, or not yet full, must slide.
    #[inline]
    pub(crate) fn record_success(&self, gen: u64) {
        if self.heads.tallies.failures.get(gen) == 0
            && self.heads.tallies.slow.get(gen) == 0
            && self.heads.tallies.filled.get(gen) >= self.len as u64
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
        let seq = self.heads.seq.fetch_add(1, Relaxed);
        let slot = &self.tail.get()[self.at + (seq % self.len as u64) as usize];
        let want = (gen << 2) | bits;
        let cur = slot.load(Relaxed);
        if cur != want {
            Self::record_slow(&self.heads.tallies, slot, cur, gen, want);
        }
    }

    /// Out of line, with only what it needs, so the hot path keeps the view
    /// in registers.
    #[cold]
    fn record_slow(t: &Tallies, slot: &AtomicU64, mut cur: u64, gen: u64, want: u64) {
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
            t.filled.add(gen, 1);
        }
        let df = (new_bits & FAILED) as i32 - (old_bits & FAILED) as i32;
        if df != 0 {
            t.failures.add(gen, df);
        }
        let ds = ((new_bits & SLOW) >> 1) as i32 - ((old_bits & SLOW) >> 1) as i32;
        if ds != 0 {
            t.slow.add(gen, ds);
        }
    }

    pub(crate) fn stats(&self, gen: u64) -> Stats {
        let n = self.len as u64;
        // Failures and slow first, as in the time window (see there).
        let failures = self.heads.tallies.failures.get(gen).min(n);
        let slow = self.heads.tallies.slow.get(gen).min(n);
        Stats {
            calls: self.heads.tallies.filled.get(gen).min(n),
            failures,
            slow,
        }
    }

    /// See [`WindowLayout::refresh`]: the slots hold the full generation, only
    /// the totals' tags need it.
    fn refresh(&self, current: u64) {
        for c in [
            &self.heads.tallies.filled,
            &self.heads.tallies.failures,
            &self.heads.tallies.slow,
        ] {
            c.refresh(current);
        }
    }
}

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
    t: &'a Tallies,
    /// The breaker's tail; the window's words are where `g` says.
    tail: &'a Words,
    g: &'a TimeGeometry,
}

enum Add {
    Added,
    Stale,
}

impl TimeWindow<'_> {
    fn tag(gen: u64, epoch: u64) -> u64 {
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
    fn words(&self) -> impl Iterator<Item = &AtomicU64> {
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
    fn refresh(&self, current: u64) {
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
        Self::with(WindowLayout::time(0, length_nanos, buckets))
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

#[cfg(all(test, failwell_loom))]
mod loom_models;
#[cfg(all(test, not(failwell_loom)))]
mod tests;
