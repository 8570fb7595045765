//! Permits: the borrowed [`Permit`], the detached [`PermitToken`] and the
//! [`OwnedPermit`] on an `Arc`.

use std::fmt;
use std::time::Duration;

use super::state::Ident;
use super::{CircuitBreaker, Outcome, State};
use crate::clock::{nanos, Clock, MonotonicClock};
use crate::error::Rejected;
use crate::sync::UserArc;

impl<C: Clock> CircuitBreaker<C> {
    /// When a call admitted now starts, for the slow-call policy (0, and no
    /// clock read, without one).
    #[inline]
    pub(super) fn call_start(&self) -> u64 {
        if self.config.slow_call_rate.is_some() {
            self.clock.now_coarse()
        } else {
            0
        }
    }

    /// How long a call that started at `start` (from `call_start`) took.
    #[inline]
    pub(super) fn elapsed_since(&self, start: u64) -> u64 {
        if self.config.slow_call_rate.is_some() {
            self.clock.now_coarse().saturating_sub(start)
        } else {
            0
        }
    }
}

/// Permission to make one call through a breaker. Record its outcome with
/// [`success`](Self::success), [`failure`](Self::failure) or
/// [`record`](Self::record); dropped unrecorded (an early return, a panic)
/// it counts as ignored and frees its half-open slot.
///
/// The outcome counts only in the generation the permit was taken in: if
/// the breaker changed state meanwhile, it is left out of the new state's
/// windows (but still counted in the cumulative metrics).
#[must_use = "record the call's outcome on the permit"]
pub struct Permit<'a, C: Clock = MonotonicClock> {
    breaker: &'a CircuitBreaker<C>,
    word: Ident,
    /// When the permit was taken, if the slow-call policy needs it.
    start: u64,
}

impl<'a, C: Clock> Permit<'a, C> {
    #[inline]
    pub(super) fn new(breaker: &'a CircuitBreaker<C>, word: Ident) -> Self {
        let start = breaker.call_start();
        Permit {
            breaker,
            word,
            start,
        }
    }

    /// The state the breaker was in when the permit was taken.
    pub fn state(&self) -> State {
        self.word.state()
    }

    /// The generation the permit was taken in (one more at every
    /// transition; 61 bits, so it never wraps in a process's life). Its
    /// outcome counts only there, however many transitions come between.
    pub fn generation(&self) -> u64 {
        self.word.gen()
    }

    /// Records the outcome; `duration` overrides the measured one. The
    /// permit's fields come out of a `ManuallyDrop` before anything else
    /// runs, so no drop of the permit is pending and it never needs a
    /// stack slot (with one, LLVM copied it through memory on every pass).
    #[inline(always)]
    fn finish(self, failed: bool, duration: Option<u64>) {
        let this = std::mem::ManuallyDrop::new(self);
        let (b, w, start) = (this.breaker, this.word, this.start);
        let d = duration.unwrap_or_else(|| b.elapsed_since(start));
        b.on_outcome(w, failed, d);
    }

    /// The call succeeded. With a slow-call policy, its duration is measured
    /// from when the permit was taken, on the clock's coarse reading (a few
    /// milliseconds' resolution on Linux); use
    /// [`success_with_duration`](Self::success_with_duration) for a finer one.
    #[inline(always)]
    pub fn success(self) {
        self.finish(false, None);
    }

    /// The call failed.
    #[inline(always)]
    pub fn failure(self) {
        self.finish(true, None);
    }

    /// The call succeeded and took `d` (for the slow-call policy).
    pub fn success_with_duration(self, d: Duration) {
        self.finish(false, Some(nanos(d)));
    }

    /// The call failed and took `d` (for the slow-call policy).
    pub fn failure_with_duration(self, d: Duration) {
        self.finish(true, Some(nanos(d)));
    }

    /// The call's outcome counts as neither success nor failure.
    pub fn ignore(self) {
        drop(self);
    }

    /// Records what a classifier said.
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.success(),
            Outcome::Failure => self.failure(),
            Outcome::Ignore => self.ignore(),
        }
    }
}

/// A permit detached from its borrow of the breaker, for holders that
/// cannot keep a [`Permit`] (a C caller, a permit crossing an owned
/// boundary). Record it with [`CircuitBreaker::record_token`] on the breaker
/// it came from, exactly once; a token never recorded keeps its half-open
/// slot until that half-open ends (record `Outcome::Ignore` to give it
/// back). Recording a token twice may count it twice, but never corrupts
/// the breaker: half-open never counts more outcomes than probes it
/// issued, and a token from another generation is stale as any permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermitToken {
    pub(super) word: u64,
    pub(super) start: u64,
}

impl PermitToken {
    /// The state the breaker was in when the permit was taken.
    pub fn state(&self) -> State {
        Ident(self.word).state()
    }

    /// The generation the permit was taken in.
    pub fn generation(&self) -> u64 {
        Ident(self.word).gen()
    }

    /// The token as two plain integers (for the C ABI's by-value permit).
    #[inline]
    pub fn into_raw(self) -> (u64, u64) {
        (self.word, self.start)
    }

    /// A token from [`into_raw`](Self::into_raw)'s integers. Any integers
    /// make a valid token: one that did not come from this breaker is
    /// recorded as a stale outcome or a bounded extra one, never corrupting
    /// the breaker.
    #[inline]
    pub fn from_raw(word: u64, start: u64) -> Self {
        PermitToken { word, start }
    }
}

impl<'a, C: Clock> Permit<'a, C> {
    /// Detaches the permit into a [`PermitToken`].
    #[inline]
    pub fn into_token(self) -> PermitToken {
        let t = PermitToken {
            word: self.word.0,
            start: self.start,
        };
        std::mem::forget(self);
        t
    }
}

impl<C: Clock> CircuitBreaker<C> {
    /// The common case of [`record_token`](Self::record_token) alone: a
    /// success for a token taken in Closed, on a breaker with no slow-call
    /// policy (so no duration is needed). Records it as `record_token(token,
    /// Outcome::Success, None)` would and returns `Ok`; in any other case it
    /// records nothing and hands the token back (then call `record_token`).
    /// Like [`try_acquire_closed`](Self::try_acquire_closed), for bindings
    /// that keep every other case out of line.
    #[inline]
    pub fn try_record_closed_success(&self, token: PermitToken) -> Result<(), PermitToken> {
        let w = Ident(token.word);
        if w.is_closed() && self.config.slow_call_rate.is_none() {
            self.on_closed_success(w);
            Ok(())
        } else {
            Err(token)
        }
    }

    /// Records the outcome of a detached permit; `duration` overrides the
    /// measured one for the slow-call policy.
    #[inline]
    pub fn record_token(&self, token: PermitToken, outcome: Outcome, duration: Option<Duration>) {
        let w = Ident(token.word);
        let d = duration.map_or_else(|| self.elapsed_since(token.start), nanos);
        match outcome {
            Outcome::Success => self.on_outcome(w, false, d),
            Outcome::Failure => self.on_outcome(w, true, d),
            Outcome::Ignore => self.on_ignored(w),
        }
    }
}

impl<C: Clock> Drop for Permit<'_, C> {
    fn drop(&mut self) {
        self.breaker.on_ignored(self.word);
    }
}

impl<C: Clock> fmt::Debug for Permit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("state", &self.word.state())
            .field("generation", &self.word.gen())
            .finish()
    }
}

impl<C: Clock> CircuitBreaker<C> {
    /// [`try_acquire`](Self::try_acquire) for a holder that owns the
    /// breaker through an `Arc`: the permit keeps the breaker alive and can
    /// move anywhere (tokio's `acquire_owned` pattern). Bindings hand it to
    /// their languages' permit objects.
    pub fn try_acquire_owned(self: &UserArc<Self>) -> Result<OwnedPermit<C>, Rejected> {
        self.try_acquire().map(|p| OwnedPermit {
            breaker: UserArc::clone(self),
            token: p.into_token(),
            recorded: false,
        })
    }
}

/// A permit that owns a reference to its breaker (from
/// [`CircuitBreaker::try_acquire_owned`]): `'static`, movable between
/// threads. Its outcome is recorded once: the first of
/// [`success`](Self::success), [`failure`](Self::failure),
/// [`record`](Self::record) (and their `_with_duration` forms) counts, a
/// later one is ignored and returns `false`. Dropped unrecorded, it counts
/// as ignored and frees its half-open slot, as a [`Permit`] does.
#[must_use = "record the call's outcome on the permit"]
pub struct OwnedPermit<C: Clock = MonotonicClock> {
    breaker: UserArc<CircuitBreaker<C>>,
    token: PermitToken,
    recorded: bool,
}

impl<C: Clock> OwnedPermit<C> {
    /// The state the breaker was in when the permit was taken.
    pub fn state(&self) -> State {
        self.token.state()
    }

    /// The generation the permit was taken in.
    pub fn generation(&self) -> u64 {
        self.token.generation()
    }

    /// Whether an outcome was recorded already.
    pub fn is_recorded(&self) -> bool {
        self.recorded
    }

    /// The breaker the permit came from.
    pub fn breaker(&self) -> &UserArc<CircuitBreaker<C>> {
        &self.breaker
    }

    /// Records `outcome` (with `duration` overriding the measured one for
    /// the slow-call policy) if nothing was recorded yet; returns whether
    /// this call recorded it.
    pub fn record_with(&mut self, outcome: Outcome, duration: Option<Duration>) -> bool {
        if self.recorded {
            return false;
        }
        self.recorded = true;
        self.breaker.record_token(self.token, outcome, duration);
        true
    }

    /// Records `outcome` once; see [`record_with`](Self::record_with).
    pub fn record(&mut self, outcome: Outcome) -> bool {
        self.record_with(outcome, None)
    }

    /// The call succeeded (recorded once).
    pub fn success(&mut self) -> bool {
        self.record_with(Outcome::Success, None)
    }

    /// The call failed (recorded once).
    pub fn failure(&mut self) -> bool {
        self.record_with(Outcome::Failure, None)
    }

    /// The call succeeded and took `d` (recorded once).
    pub fn success_with_duration(&mut self, d: Duration) -> bool {
        self.record_with(Outcome::Success, Some(d))
    }

    /// The call failed and took `d` (recorded once).
    pub fn failure_with_duration(&mut self, d: Duration) -> bool {
        self.record_with(Outcome::Failure, Some(d))
    }

    /// The call counts as neither (recorded once).
    pub fn ignore(&mut self) -> bool {
        self.record_with(Outcome::Ignore, None)
    }
}

impl<C: Clock> Drop for OwnedPermit<C> {
    fn drop(&mut self) {
        self.ignore();
    }
}

impl<C: Clock> fmt::Debug for OwnedPermit<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("state", &self.state())
            .field("generation", &self.generation())
            .field("recorded", &self.is_recorded())
            .finish()
    }
}
