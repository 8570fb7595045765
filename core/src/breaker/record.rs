//! Recording outcomes: the closed hot path, the closed windows and their
//! trip decision, half-open probe tallies and ignored permits. Decisions
//! come from [`rule`](super::rule); the state word changes through
//! [`CircuitBreaker::update`].

use super::rule;
use super::state::{Ident, Word};
use super::window::{View, FAILED, SLOW};
use super::{CircuitBreaker, State};
use crate::clock::Clock;
use crate::sync::{
    fence,
    Ordering::{Relaxed, SeqCst},
};

impl<C: Clock> CircuitBreaker<C> {
    /// Records the outcome of a permit of identity `w`. Always inlined: the
    /// closed success it leads to is the hot path of every call.
    #[inline(always)]
    pub(super) fn on_outcome(&self, w: Ident, failed: bool, duration: u64) {
        let slow = duration >= self.live.slow_call_duration();
        if !failed && !slow && w.is_closed() {
            self.on_closed_success(w);
        } else {
            self.on_other_outcome(w, failed, slow);
        }
    }

    /// The hot path: a fast success in Closed.
    #[inline(always)]
    pub(super) fn on_closed_success(&self, w: Ident) {
        self.count_call();
        if self.state.word.load(Relaxed) != w.0 {
            return; // see `on_closed_outcome`
        }
        let gen = w.gen();
        if self.config.consecutive_failures.is_some() {
            self.state.windows.consecutive().clear(gen);
        }
        match self.window() {
            View::None => {}
            View::Count(c) => c.record_success(gen),
            View::Time(t) => t.record(self.clock.now_coarse(), gen, 0),
        }
    }

    #[inline(never)]
    pub(super) fn on_other_outcome(&self, w: Ident, failed: bool, slow: bool) {
        match w.state() {
            State::Closed | State::MetricsOnly => self.on_closed_outcome(w, failed, slow),
            State::HalfOpen => self.on_probe_outcome(w, failed, slow),
            // Disabled counts nothing; no permit exists in the open states.
            _ => {}
        }
    }

    pub(super) fn on_closed_outcome(&self, w: Ident, failed: bool, slow: bool) {
        let bits = (failed as u64 * FAILED) | (slow as u64 * SLOW);
        if bits != 0 {
            self.count_failure_and_slow(failed, slow);
        }
        self.count_call();
        if self.state.word.load(Relaxed) != w.0 {
            // The generation this permit belongs to has ended. Checking here
            // keeps stale outcomes from taking a window sequence number; the
            // tags catch the ones that race with a transition.
            return;
        }
        let gen = w.gen();
        let mut trip = false;
        if self.config.consecutive_failures.is_some() {
            if failed {
                if let Some(c) = self.state.windows.consecutive().add(gen, 1) {
                    trip |= rule::consecutive_trips(c, self.live.consecutive_failures());
                }
            } else {
                self.state.windows.consecutive().clear(gen);
            }
        }
        match self.window() {
            View::None => {}
            View::Count(c) => c.record(gen, bits),
            View::Time(t) => t.record(self.clock.now_coarse(), gen, bits),
        }
        if bits != 0 && w.is_closed() && (trip || self.rates_exceeded(gen)) {
            self.transition(Some(w.word()), State::Open, None);
        }
    }

    pub(super) fn count_failure_and_slow(&self, failed: bool, slow: bool) {
        if failed {
            self.state.counts.failures.fetch_add(1, Relaxed);
        }
        if slow {
            self.state.counts.slow.fetch_add(1, Relaxed);
        }
    }

    pub(super) fn rates_exceeded(&self, gen: u64) -> bool {
        if !self.config.has_rate_policy() {
            return false;
        }
        let s = self.window_stats(gen);
        rule::rates_trip(
            s.calls,
            s.failures,
            s.slow,
            self.live.minimum_calls(),
            self.live.failure_rate(&self.config),
            self.live.slow_call_rate(&self.config),
        )
    }

    #[cold]
    pub(super) fn on_probe_outcome(&self, w: Ident, failed: bool, slow: bool) {
        // Uncounted first: a process killed before the outcome below loses
        // the slot, never gives it back twice.
        self.note_probe(w.gen(), false);
        self.count_call();
        self.count_failure_and_slow(failed, slow);
        // `update`'s Acquire loads make `half_open_gen` at least that
        // half-open's.
        let recorded = self.update(Relaxed, |cur| {
            if !self.is_current_half_open(cur, w) {
                return None; // that half-open has ended; this verdict is stale
            }
            if cur.successes() + cur.failures() >= cur.issued() {
                return None; // more outcomes than probes: a token recorded twice
            }
            Some(cur.with_outcome(failed, slow))
        });
        if let Ok(before) = recorded {
            // SeqCst fence: pairs with the one in `reconfigure`, so either
            // this verdict reads the new probe limit or `reconfigure` sees
            // this outcome in the word (a store-buffer pair: neither may
            // miss both).
            fence(SeqCst);
            let new = before.with_outcome(failed, slow);
            if let Some(to) = self.half_open_verdict(new) {
                self.transition(Some(new), to, None);
            }
        }
    }

    /// The verdict on the probe tallies in half-open word `w`.
    pub(super) fn half_open_verdict(&self, w: Word) -> Option<State> {
        rule::half_open_verdict(
            w.successes(),
            w.failures(),
            w.slow(),
            self.live.half_open_calls(),
            self.config.has_rate_policy(),
            self.live.failure_rate(&self.config),
            self.live.slow_call_rate(&self.config),
        )
    }

    pub(super) fn on_ignored(&self, w: Ident) {
        self.state.counts.ignored.fetch_add(1, Relaxed);
        if w.state() != State::HalfOpen {
            return;
        }
        self.note_probe(w.gen(), false);
        // Give the probe slot back, if that half-open is still current
        // (`update`'s loads are Acquire, as `is_current_half_open` needs).
        let _ = self.update(Relaxed, |cur| {
            (self.is_current_half_open(cur, w) && cur.issued() > 0)
                .then(|| cur.with_issued_minus_one())
        });
    }
}
