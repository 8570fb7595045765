//! A plain copy of a breaker's counters.

use super::window::{Stats, View};
use super::{CircuitBreaker, State, Word};
use crate::clock::Clock;
use crate::sync::Ordering::{Acquire, Relaxed};

/// A plain copy of a breaker's counters at one moment.
///
/// Cumulative counts cover the breaker's life; the window figures cover the
/// current generation's window only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// The state when the snapshot was taken.
    pub state: State,
    /// Its generation (see [`Permit::generation`](super::Permit::generation)).
    pub generation: u64,
    /// Calls whose outcome was recorded as success or failure.
    pub calls: u64,
    /// Recorded successes.
    pub successes: u64,
    /// Recorded failures.
    pub failures: u64,
    /// Recorded calls at least as slow as the slow-call threshold.
    pub slow_calls: u64,
    /// Calls refused because the breaker was open, forced open or had no
    /// half-open probe slot free.
    pub rejected: u64,
    /// Permits dropped unrecorded or recorded as ignored.
    pub ignored: u64,
    /// State transitions.
    pub transitions: u64,
    /// Times the breaker went from a closed or half-open state to open.
    pub opened: u64,
    /// Calls in the current window.
    pub window_calls: u64,
    /// Failure rate of the current window (0 when it is empty).
    pub failure_rate: f64,
    /// Slow-call rate of the current window (0 when it is empty).
    pub slow_call_rate: f64,
    /// Failures in a row in the current generation.
    pub consecutive_failures: u64,
    /// Listener calls that panicked (caught and counted).
    pub listener_panics: u64,
}

impl<C: Clock> CircuitBreaker<C> {
    /// The counters and the current window's rates.
    pub fn snapshot(&self) -> Snapshot {
        // Acquire: as in `try_acquire` (for a half-open's full generation).
        let w = Word(self.state.word.load(Acquire));
        let gen = self.ident(w).gen();
        let stats = self.window_stats(gen);
        let calls = self.layout.calls.sum(&self.tail);
        let failures = self.state.counts.failures.load(Relaxed);
        let rate = |n: u64| {
            if stats.calls == 0 {
                0.0
            } else {
                (n as f64 / stats.calls as f64).min(1.0)
            }
        };
        Snapshot {
            state: w.state(),
            generation: gen,
            calls,
            successes: calls.saturating_sub(failures),
            failures,
            slow_calls: self.state.counts.slow.load(Relaxed),
            rejected: self.state.rejected.load(Relaxed),
            ignored: self.state.counts.ignored.load(Relaxed),
            transitions: self.state.counts.transitions.load(Relaxed),
            opened: self.state.counts.opened.load(Relaxed),
            window_calls: stats.calls,
            failure_rate: rate(stats.failures),
            slow_call_rate: rate(stats.slow),
            consecutive_failures: self.state.windows.consecutive().get(gen),
            listener_panics: self.state.counts.listener_panics.load(Relaxed),
        }
    }

    pub(super) fn window_stats(&self, gen: u64) -> Stats {
        match self.window() {
            View::None => Stats::default(),
            View::Count(c) => c.stats(gen),
            View::Time(t) => t.stats(self.clock.now_coarse(), gen),
        }
    }
}
