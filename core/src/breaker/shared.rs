//! A breaker whose state lives in a host region
//! ([`Region::circuit_breaker`](crate::region::Region::circuit_breaker)):
//! the same state word, counts and windows as in process, read and written
//! by every process on the host. What a region needs beside them:
//!
//! - **The transition lock** is a word in the region naming the process
//!   that holds it (`[start time | pid | ready]`, as in the region's thread
//!   table, with its boot beside it), so that a process killed while it
//!   holds it does not hold it for ever: a waiter that finds the holder
//!   dead takes the lock over. A transition is a few stores and one
//!   compare-and-swap, each of which leaves the state valid, so what a dead
//!   holder left half done is redone by the next transition. Threads of one
//!   process queue on a process mutex first.
//! - **Half-open probes** are recorded per process in a ledger of
//!   [`PROBE_ENTRIES`] entries `[owner, boot, generation, probes]`: a
//!   process counts a probe after the state word admitted it and uncounts
//!   it before recording its outcome, so an entry never holds more probes
//!   than are really out. The region's reaper gives a dead process's
//!   probes of the current half-open back to the state word (a kill
//!   between the two steps loses the slot until `half_open_max_wait`
//!   reopens the breaker: never a probe too many).
//! - **Listeners** of each process hear of transitions made elsewhere on
//!   the next call that finds the breaker not closed, and from the
//!   region's reaper thread, at most [`REAP_EVERY`](crate::region) later;
//!   `seen` (the last state and generation announced here) makes each
//!   announcement happen once per process.

use std::sync::Arc;
use std::time::Duration;

use super::events::{Listeners, Transition};
use super::lock_word::{self, READY};
use super::state::{BreakerState, Ident, Word, HALF_GEN_MASK};
use super::State;
use crate::clock::{Clock, MonotonicClock};
use crate::fork::QuietMutex;
use crate::region::{process_alive, this_process, Threads};
use crate::sync::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::words::{Placed, Words};

/// Entries in a shared breaker's probe ledger: processes holding half-open
/// probes at once (a probe admitted while every entry is taken is not
/// recorded: should its process die, its slot comes back only when the
/// half-open times out).
pub(crate) const PROBE_ENTRIES: usize = 64;
/// Words per probe ledger entry.
pub(crate) const ENTRY_WORDS: usize = 4;
const OWNER: usize = 0;
const BOOT: usize = 1;
const GEN: usize = 2;
const PROBES: usize = 3;

/// The transition lock: the holder's owner word (0: free) and its boot.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub(crate) struct LockWords {
    pub(crate) owner: AtomicU64,
    pub(crate) boot: AtomicU64,
}

/// What a process's listeners need, reachable from the reaper thread.
#[derive(Debug)]
pub(crate) struct Watch {
    pub(crate) state: Placed<BreakerState>,
    /// The identity (`Ident`) of the last state announced in this process.
    pub(crate) seen: AtomicU64,
    pub(crate) listeners: Listeners,
}

/// What a shared breaker's handle holds beside its state block.
pub(crate) struct Shared {
    pub(crate) lock: Placed<LockWords>,
    /// [`PROBE_ENTRIES`] entries of [`ENTRY_WORDS`] words.
    pub(crate) probes: Words,
    pub(crate) watch: Arc<Watch>,
    /// Keeps the region's reaper running for this breaker.
    pub(crate) _threads: Threads,
    /// Serialises this process's threads on the lock word.
    local: QuietMutex<()>,
    /// Serialises this process's threads on its probe entries.
    ledger: QuietMutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// Frees the lock word when dropped (also when the section unwinds).
struct Unlock<'a>(&'a LockWords);

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        lock_word::unlock(&self.0.owner);
    }
}

/// How long a waiter for the transition lock spins and sleeps between
/// checks of whether its holder is alive.
const LIVENESS_EVERY: Duration = Duration::from_millis(20);

impl Shared {
    pub(crate) fn new(
        lock: Placed<LockWords>,
        probes: Words,
        watch: Arc<Watch>,
        threads: Threads,
    ) -> Self {
        crate::region::watch_breaker(&watch);
        Shared {
            lock,
            probes,
            watch,
            _threads: threads,
            local: QuietMutex::new(()),
            ledger: QuietMutex::new(()),
        }
    }

    /// Runs `f` under the transition lock: first this process's mutex,
    /// then the region's lock word, taken over from a holder found dead.
    pub(crate) fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let _local = self.local.lock();
        let (me, boot) = this_process();
        let lock = &*self.lock;
        let mut spins = 0u32;
        let mut checked = std::time::Instant::now();
        lock_word::lock(
            &lock.owner,
            me,
            |held| !process_alive(held, lock.boot.load(Relaxed)),
            || {
                let due = checked.elapsed() >= LIVENESS_EVERY;
                if due {
                    checked = std::time::Instant::now();
                }
                due
            },
            || {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else if spins < 128 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(200));
                }
            },
            || lock.boot.store(boot, Relaxed),
        );
        let _unlock = Unlock(lock);
        f()
    }

    /// Counts a probe of half-open generation `gen` this process now holds.
    pub(crate) fn probe_taken(&self, gen: u64) {
        let _l = self.ledger.lock();
        let (me, boot) = this_process();
        let e = self.probes.get();
        for i in 0..PROBE_ENTRIES {
            let w = |k| &e[i * ENTRY_WORDS + k];
            if w(OWNER).load(Relaxed) == me && w(GEN).load(Relaxed) == gen {
                w(PROBES).fetch_add(1, Relaxed);
                return;
            }
        }
        for i in 0..PROBE_ENTRIES {
            let w = |k| &e[i * ENTRY_WORDS + k];
            // Relaxed: claiming only; the Release store below publishes
            // the entry to reapers.
            if w(OWNER).load(Relaxed) == 0
                && w(OWNER)
                    .compare_exchange(0, me & !READY, Relaxed, Relaxed)
                    .is_ok()
            {
                w(BOOT).store(boot, Relaxed);
                w(GEN).store(gen, Relaxed);
                w(PROBES).store(1, Relaxed);
                // Release: pairs with the reaper's Acquire load; the entry's
                // words are written before it reads as ready.
                w(OWNER).store(me, Release);
                return;
            }
        }
    }

    /// Uncounts a probe of generation `gen` before its outcome is recorded.
    pub(crate) fn probe_done(&self, gen: u64) {
        let _l = self.ledger.lock();
        let (me, _) = this_process();
        let e = self.probes.get();
        for i in 0..PROBE_ENTRIES {
            let w = |k| &e[i * ENTRY_WORDS + k];
            if w(OWNER).load(Relaxed) == me && w(GEN).load(Relaxed) == gen {
                let n = w(PROBES).load(Relaxed);
                if n > 1 {
                    w(PROBES).store(n - 1, Relaxed);
                } else {
                    w(PROBES).store(0, Relaxed);
                    w(GEN).store(0, Relaxed);
                    // Release: the entry's words are cleared before it is free.
                    w(OWNER).store(0, Release);
                }
                return;
            }
        }
    }
}

impl Watch {
    /// Announces to this process's listeners a state the breaker entered
    /// elsewhere, if this process has not announced it (or a later one).
    pub(crate) fn catch_up(&self) {
        // Acquire: pairs with the Release swap of a transition, so the
        // published half-open generation is that state's or later.
        let w = Word(self.state.word.load(Acquire));
        let id = ident_of(&self.state, w);
        self.announce(None, id, MonotonicClock.now());
    }

    /// Announces the state `id` (entered from `from`, if known) unless this
    /// process already announced it or a later one.
    pub(crate) fn announce(&self, from: Option<State>, id: Ident, at_nanos: u64) {
        if self.seen.load(Relaxed) >= id.0 {
            return; // the common case: nothing new (a load, no write)
        }
        let prev = Ident(self.seen.fetch_max(id.0, Relaxed));
        if prev.0 >= id.0 {
            return;
        }
        self.listeners.publish(
            Transition {
                from: from.unwrap_or(prev.state()),
                to: id.state(),
                at_nanos,
                generation: id.gen(),
            },
            &self.state.counts.listener_panics,
        );
    }
}

/// The identity of state word `w` (see `CircuitBreaker::ident`).
fn ident_of(state: &BreakerState, w: Word) -> Ident {
    if !w.is_half_open() {
        return Ident(w.0);
    }
    let latest = state.published.half_open_gen.load(Relaxed);
    let back = latest.wrapping_sub(w.gen()) & HALF_GEN_MASK;
    Ident::new(
        State::HalfOpen,
        latest.wrapping_sub(back) & super::state::GEN_MASK,
    )
}

/// Gives the half-open probes that dead processes hold in `probes` back
/// to `state`'s word; returns how many. `dead` says whether an owner word
/// (with its boot) names a dead process.
pub(crate) fn reap_probes(
    state: &BreakerState,
    probes: &[AtomicU64],
    dead: &mut dyn FnMut(u64, u64) -> bool,
) -> u64 {
    let (me, boot) = this_process();
    let mut back = 0;
    for i in 0..PROBE_ENTRIES.min(probes.len() / ENTRY_WORDS) {
        let w = |k| &probes[i * ENTRY_WORDS + k];
        // Acquire: pairs with `probe_taken`'s Release store.
        let owner = w(OWNER).load(Acquire);
        if owner == 0 || owner | READY == me || !dead(owner, w(BOOT).load(Relaxed)) {
            continue;
        }
        // The entry becomes this process's (not ready), so no other reaper
        // settles it too. Relaxed: the compare-and-swap decides who does.
        if w(OWNER)
            .compare_exchange(owner, me & !READY, Relaxed, Relaxed)
            .is_err()
        {
            continue;
        }
        w(BOOT).store(boot, Relaxed);
        let (gen, n) = (w(GEN).load(Relaxed), w(PROBES).load(Relaxed));
        // Cleared before the slots go back: a reaper killed between the
        // two loses them (until the half-open times out), never gives
        // them twice.
        w(PROBES).store(0, Relaxed);
        w(GEN).store(0, Relaxed);
        back += give_back(state, gen, n);
        // Release: the entry's words are cleared before it is free.
        w(OWNER).store(0, Release);
    }
    back
}

/// Returns up to `n` probe slots of half-open generation `gen`, as many as
/// are out unrecorded, if that half-open is current.
fn give_back(state: &BreakerState, gen: u64, n: u64) -> u64 {
    let mut given = 0;
    // Acquire (the loads): pairs with the Release swap of a transition, so
    // `half_open_gen` is the seen half-open's or later.
    let swapped = state.word.fetch_update(Relaxed, Acquire, |cur| {
        let w = Word(cur);
        let current = w.is_half_open()
            && w.gen() == gen & HALF_GEN_MASK
            && state.published.half_open_gen.load(Relaxed) == gen;
        let out = (w.issued() as u64).saturating_sub((w.successes() + w.failures()) as u64);
        given = n.min(out);
        (current && given > 0).then(|| {
            let mut w = w;
            for _ in 0..given {
                w = w.with_issued_minus_one();
            }
            w.0
        })
    });
    if swapped.is_err() {
        return 0;
    }
    if given > 0 {
        state.counts.ignored.fetch_add(given, Relaxed);
    }
    given
}
