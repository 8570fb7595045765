//! The count-based sliding window: a view of its slots in the breaker's
//! tail and its totals in the state block (see the parent module).

use super::Stats;
use super::{gen_newer, Tallies, WindowHeads, FAILED, GEN_MASK, SLOW};
use crate::sync::{AtomicU64, Ordering::Relaxed};
use crate::words::Words;

/// The outcomes of the last `n` calls, one tagged slot each
/// (`[gen:62 | slow:1 | failed:1]`, the full generation, which never
/// wraps), with per-generation totals kept in
/// [`TaggedCount`]s that are touched only when a slot changes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CountWindow<'a> {
    pub(super) heads: &'a WindowHeads,
    /// The breaker's tail; the slots are `len` words from `at` on.
    pub(super) tail: &'a Words,
    pub(super) at: usize,
    pub(super) len: usize,
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
    pub(super) fn refresh(&self, current: u64) {
        for c in [
            &self.heads.tallies.filled,
            &self.heads.tallies.failures,
            &self.heads.tallies.slow,
        ] {
            c.refresh(current);
        }
    }
}
