//! The shared bulkhead's permit word and ledger: permits that several
//! processes take from one word, each permit also counted against the
//! thread that holds it, so that the permits of a process killed while
//! holding them can be given back exactly.
//!
//! Two words change for every permit (the host's count and the holder's
//! ledger entry), and a process can die between the two. The permit word
//! therefore names the last step made on it — whose (a ledger index), which
//! (that index's step number) and which way (taken or given back) — and
//! every step begins by *helping*: if the step the word names is not yet in
//! its ledger entry, it is written there first. A step's name leaves the
//! word only through another step's compare-and-swap, which helped first,
//! so when the word moves on, the ledger is exact; and a step whose maker
//! died right after its compare-and-swap is still named in the word, where
//! the next step or the reaper finds it.
//!
//! The word, from bit 0:
//!
//! | bits | field |
//! |---|---|
//! | 0..22 | permits available, biased by 2^21 |
//! | 22 | someone may be waiting: the next give-back wakes the host's waiters |
//! | 23..53 | the step number (30 bits) of the last step |
//! | 53..63 | the ledger index (10 bits) that made it |
//! | 63 | 1: it took a permit; 0: it gave one back |
//!
//! A ledger entry is `[step number:32 | held:32]`, `held` an `i32` (a
//! permit taken on one thread and given back on another leaves +1 on the
//! first and −1 on the second; a process's entries sum to what it holds).
//! An entry is written by the one thread that owns its index, and by
//! helpers writing the very step the owner is about to write.
//!
//! The rule deciding whether a caller gets a permit is the in-process
//! bulkhead's ([`rule::admits`](super::rule::admits)).

// Only host regions (Unix, not the loom build) use it outside tests.
#![cfg_attr(any(failwell_loom, not(unix)), allow(dead_code))]

use super::rule;
use crate::sync::{
    AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};

/// Ledger indices: how many threads of all processes on the host can hold
/// a shared bulkhead's permits at once.
pub(crate) const THREADS: usize = 1 << INDEX_BITS;
/// The largest limit of a shared bulkhead.
pub const MAX_SHARED: u32 = 1 << 20;

const INDEX_BITS: u32 = 10;
const BIAS: u64 = 1 << 21;
const AVAILABLE: u64 = (1 << 22) - 1;
/// The waiting flag.
pub(crate) const WAITING: u64 = 1 << 22;
const STEP_SHIFT: u32 = 23;
const STEP_MASK: u64 = (1 << 30) - 1;
const INDEX_SHIFT: u32 = 53;
const TOOK: u64 = 1 << 63;

/// The permit word of a bulkhead of limit `max` (at most [`MAX_SHARED`])
/// with every permit free; it names step 0 of index 0, which no entry
/// lacks.
pub(crate) const fn full(max: u32) -> u64 {
    BIAS + max as u64
}

/// Permits available in permit word `w`.
#[inline]
pub(crate) fn available(w: u64) -> i64 {
    (w & AVAILABLE) as i64 - BIAS as i64
}

/// A ledger entry's permits held.
#[inline]
pub(crate) fn held(entry: u64) -> i64 {
    entry as u32 as i32 as i64
}

/// A ledger entry's step number, as the permit word holds it.
#[inline]
fn step(entry: u64) -> u64 {
    (entry >> 32) & STEP_MASK
}

/// The entry after one more step, taking (`took`) or giving back.
#[inline]
fn stepped(entry: u64, took: bool) -> u64 {
    let held = entry as u32;
    let held = if took {
        held.wrapping_add(1)
    } else {
        held.wrapping_sub(1)
    };
    (((entry >> 32) + 1) << 32) | held as u64
}

/// The step a permit word names: index, step number, and whether it took.
#[inline]
fn named(w: u64) -> (usize, u64, bool) {
    (
        ((w >> INDEX_SHIFT) as usize) & (THREADS - 1),
        (w >> STEP_SHIFT) & STEP_MASK,
        w & TOOK != 0,
    )
}

/// The permit word after step `entry + 1` of `index`: `available` changed
/// by one, the waiting flag kept unless `clear_waiting`.
#[inline]
fn after(w: u64, index: usize, entry: u64, took: bool, clear_waiting: bool) -> u64 {
    let count = if took {
        (w & AVAILABLE) - 1
    } else {
        (w & AVAILABLE) + 1
    };
    let waiting = if clear_waiting { 0 } else { w & WAITING };
    let took = if took { TOOK } else { 0 };
    let number = ((step(entry) + 1) & STEP_MASK) << STEP_SHIFT;
    took | ((index as u64) << INDEX_SHIFT) | number | waiting | count
}

/// A shared bulkhead's permit word and ledger, as views of their words.
pub(crate) struct Tagged<'a> {
    pub(crate) word: &'a AtomicU64,
    /// [`THREADS`] entries.
    pub(crate) ledger: &'a [AtomicU64],
}

impl Tagged<'_> {
    /// Writes the step `w` names into its ledger entry, if it is not there
    /// and `w` is still the permit word.
    #[inline]
    fn help(&self, w: u64) {
        let (index, number, took) = named(w);
        let entry = &self.ledger[index];
        // Acquire: pairs with the Release store (or AcqRel CAS) that wrote
        // the entry, so its `held` is current.
        let e = entry.load(Acquire);
        if step(e) != number.wrapping_sub(1) & STEP_MASK {
            return; // written already
        }
        // Acquire: pairs with the step's AcqRel CAS. If the word has moved
        // on, whoever moved it helped before its CAS.
        if self.word.load(Acquire) != w {
            return;
        }
        // AcqRel: a helper's write of the entry is the owner's own (see
        // `take`); fails harmlessly if the owner or another helper wrote it.
        let _ = entry.compare_exchange(e, stepped(e, took), AcqRel, Relaxed);
    }

    /// As ledger index `index` (owned by the caller): takes a permit if
    /// [`rule::admits`] one to a caller leaving `floor` free, or with
    /// `floor: None` whatever is available (the reaper's settling of a
    /// debt). Returns the permits available before, or `None` when
    /// refused.
    #[inline]
    pub(crate) fn take(&self, index: usize, floor: Option<i64>) -> Option<i64> {
        self.step(index, true, |w| {
            floor.map_or(true, |f| rule::admits(available(w), f))
        })
        .map(available)
    }

    /// As ledger index `index`: gives a permit back. Returns the permit
    /// word before (its [`WAITING`] flag says whether to wake waiters; the
    /// step clears it).
    #[inline]
    pub(crate) fn give_back(&self, index: usize) -> u64 {
        self.step(index, false, |_| true)
            .expect("a give-back is never refused")
    }

    /// One step as `index`, if `allow(word)`: helps, then moves the permit
    /// word and the entry. Returns the permit word before.
    #[inline(always)]
    fn step(&self, index: usize, took: bool, allow: impl Fn(u64) -> bool) -> Option<u64> {
        let (w, e) = self.move_word(index, took, allow)?;
        // Release: pairs with `help`'s and `held_by`'s Acquire loads. A
        // helper may have written the same value.
        self.ledger[index].store(stepped(e, took), Release);
        Some(w)
    }

    /// A step's first half: helps, then moves the permit word for step
    /// `entry + 1` of `index`, if `allow(word)`. Returns the word before and
    /// the entry the step is to follow.
    #[inline(always)]
    fn move_word(
        &self,
        index: usize,
        took: bool,
        allow: impl Fn(u64) -> bool,
    ) -> Option<(u64, u64)> {
        let entry = &self.ledger[index];
        // Acquire: pairs with every step's AcqRel CAS, so the word's last
        // step and the memory its maker wrote are visible.
        let mut w = self.word.load(Acquire);
        loop {
            if named(w).0 != index {
                // An index's own steps are in its entry before it makes
                // another (the owner writes each, or settled it).
                self.help(w);
            }
            if !allow(w) {
                return None;
            }
            // Relaxed: only this index's owner changes the entry now (its
            // last step is written; helpers write only a pending one).
            let e = entry.load(Relaxed);
            let new = after(w, index, e, took, !took);
            // AcqRel: Acquire pairs with the previous step's CAS (what the
            // previous holder of a permit did is visible to the next),
            // Release with the next step's and the helpers' Acquire loads.
            match self.word.compare_exchange_weak(w, new, AcqRel, Acquire) {
                Ok(_) => return Some((w, e)),
                Err(now) => w = now,
            }
        }
    }

    /// Sets the waiting flag if no permit is free for a caller leaving
    /// `floor`: `true` if it is set now (sleep), `false` if a permit is
    /// free (try again).
    pub(crate) fn flag_waiting(&self, floor: i64) -> bool {
        // Acquire/AcqRel: as in `step`; the flag changes no ledger entry,
        // so the word keeps naming its last step.
        let mut w = self.word.load(Acquire);
        loop {
            if rule::admits(available(w), floor) {
                return false;
            }
            if w & WAITING != 0 {
                return true;
            }
            match self
                .word
                .compare_exchange_weak(w, w | WAITING, AcqRel, Acquire)
            {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    /// The permits `index` holds, its last step written first (for the
    /// reaper, once the index's owner is dead and the index is the
    /// reaper's).
    pub(crate) fn held_by(&self, index: usize) -> i64 {
        // Acquire: as in `step`.
        self.help(self.word.load(Acquire));
        // Acquire: pairs with the Release store or CAS that wrote it.
        held(self.ledger[index].load(Acquire))
    }

    /// The permit word now.
    #[cfg(test)]
    pub(crate) fn load(&self) -> u64 {
        self.word.load(Relaxed)
    }

    /// For tests and models: the first half of a take by a thread killed
    /// between the permit word's CAS and its ledger entry.
    #[cfg(test)]
    pub(crate) fn take_and_die(&self, index: usize) {
        self.move_word(index, true, |_| true);
    }
}

/// Gives back, as indices the caller owns whose owners died, every permit
/// their entries hold: debts first (an index that gave back a permit
/// another took), then holdings, so the available count never rises above
/// the limit on the way. Returns the permits given back in all.
pub(crate) fn settle(t: &Tagged<'_>, indices: &[usize]) -> i64 {
    let held: Vec<i64> = indices.iter().map(|&i| t.held_by(i)).collect();
    let mut net = 0;
    for (&i, &h) in indices.iter().zip(&held) {
        for _ in h..0 {
            t.take(i, None);
            net -= 1;
        }
    }
    for (&i, &h) in indices.iter().zip(&held) {
        for _ in 0..h {
            t.give_back(i);
            net += 1;
        }
    }
    net
}

#[cfg(all(test, failwell_loom))]
mod loom_models;

#[cfg(all(test, not(failwell_loom)))]
mod tests;
