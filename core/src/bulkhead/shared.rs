//! A bulkhead whose permits every process on a host takes from one word in
//! a host region ([`Region::bulkhead`](crate::region::Region::bulkhead)):
//! the tagged permit word and ledger ([`tagged`](super::tagged)), a
//! ledger index per thread from the region's thread table, and waits
//! across processes on a futex word in the region.
//!
//! Waiting: a caller that finds no permit sets the word's waiting flag and
//! sleeps on the block's wake word (a Linux futex without the private
//! flag, so processes share it; elsewhere a sleep of at most 1 ms); a give-back that clears the flag bumps the
//! wake word and wakes every sleeper, who try again. A sleeper also wakes
//! every [`POLL`] on its own, so that a process killed between giving a
//! permit back and waking the sleepers delays them by at most that.

use std::time::Duration;

use super::state::BulkheadState;
use super::tagged::{Tagged, WAITING};
use crate::clock::Clock;
use crate::region::Threads;
use crate::sync::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use crate::words::{Placed, Words};

/// The longest a waiter sleeps before it looks again by itself.
pub(crate) const POLL: Duration = Duration::from_millis(50);
/// Off Linux (no futex): the longest a waiter sleeps between looks.
#[cfg(not(target_os = "linux"))]
pub(crate) const WAKE_POLL_ELSEWHERE: Duration = Duration::from_millis(1);

/// The wake word, on a line of its own after the bulkhead's state.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct Wake {
    pub(crate) word: AtomicU32,
}

impl Wake {
    pub(crate) fn new() -> Self {
        Wake {
            word: AtomicU32::new(0),
        }
    }
}

/// What a shared bulkhead's handle holds beside its state block.
pub(crate) struct Shared {
    /// [`THREADS`](super::tagged::THREADS) ledger entries in the region.
    pub(crate) ledger: Words,
    pub(crate) wake: Placed<Wake>,
    pub(crate) threads: Threads,
    /// This process's callers waiting now (the host's are not counted).
    waiting: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(ledger: Words, wake: Placed<Wake>, threads: Threads) -> Self {
        Shared {
            ledger,
            wake,
            threads,
            waiting: AtomicU64::new(0),
        }
    }

    #[inline(always)]
    fn view<'a>(&'a self, state: &'a BulkheadState) -> Tagged<'a> {
        Tagged {
            word: &state.word,
            ledger: self.ledger.get(),
        }
    }

    /// Takes a permit if one is free for a caller leaving `floor`; when
    /// none is, reaps the region (if due) and tries once more. Returns the
    /// permits available before.
    #[inline]
    pub(crate) fn take(&self, state: &BulkheadState, floor: i64) -> Option<i64> {
        let t = self.view(state);
        match self.threads.with_index(|i| t.take(i, Some(floor))) {
            Some(a) => Some(a),
            None => self.take_contended(state, floor),
        }
    }

    #[cold]
    fn take_contended(&self, state: &BulkheadState, floor: i64) -> Option<i64> {
        if self.threads.reap(false) > 0 {
            let t = self.view(state);
            return self.threads.with_index(|i| t.take(i, Some(floor)));
        }
        None
    }

    /// Gives a permit back, waking the host's waiters if one flagged.
    #[inline]
    pub(crate) fn release(&self, state: &BulkheadState) {
        let t = self.view(state);
        let before = self.threads.with_index(|i| t.give_back(i));
        if before & WAITING != 0 {
            wake_all(&self.wake.word);
        }
    }

    /// Waits until `deadline` on `clock` (`None`: without bound) for a
    /// permit free for a caller leaving `floor`. Returns the permits
    /// available before the one taken.
    pub(crate) fn acquire_until(
        &self,
        state: &BulkheadState,
        floor: i64,
        deadline: Option<u64>,
        clock: &impl Clock,
    ) -> Option<i64> {
        loop {
            if let Some(a) = self.take(state, floor) {
                return Some(a);
            }
            // Acquire: pairs with `wake_all`'s Release; read before the flag
            // is set, so a give-back after the flag changes it (see
            // `tagged`'s model of the flag).
            let seen = self.wake.word.load(Acquire);
            if !self.view(state).flag_waiting(floor) {
                continue; // a permit came back meanwhile
            }
            let left = deadline.map(|d| d.saturating_sub(clock.now()));
            if left == Some(0) {
                return None;
            }
            let slice = left.map_or(POLL, |l| Duration::from_nanos(l).min(POLL));
            self.waiting.fetch_add(1, Relaxed);
            futex_wait(&self.wake.word, seen, slice);
            self.waiting.fetch_sub(1, Relaxed);
        }
    }

    /// This process's waiting callers.
    pub(crate) fn waiting(&self) -> u64 {
        self.waiting.load(Relaxed)
    }
}

/// Wakes every process's sleepers on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    // Release: pairs with the sleepers' Acquire load of the word.
    word.fetch_add(1, Release);
    futex_wake(word);
}

#[cfg(target_os = "linux")]
fn futex_wait(word: &AtomicU32, seen: u32, slice: Duration) {
    let ts = libc::timespec {
        tv_sec: slice.as_secs() as libc::time_t,
        tv_nsec: slice.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT on a live, aligned 32-bit word (the kernel reads it
    // atomically) with a relative timeout; not FUTEX_PRIVATE_FLAG, since
    // the word is in memory other processes map. Returns at once if the
    // word is no longer `seen`; a signal or time-out just returns.
    #[allow(unsafe_code)]
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

#[cfg(target_os = "linux")]
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a live, aligned word; wakes every sleeper of
    // any process mapping it.
    #[allow(unsafe_code)]
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn futex_wait(word: &AtomicU32, seen: u32, slice: Duration) {
    if word.load(Acquire) == seen {
        std::thread::sleep(slice.min(WAKE_POLL_ELSEWHERE));
    }
}

#[cfg(not(target_os = "linux"))]
fn futex_wake(_: &AtomicU32) {}
