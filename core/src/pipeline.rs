//! The pipeline: one object that runs a call through the layers in the
//! recommended order, so users do not have to get the order right.
//!
//! Outermost first:
//!
//! 1. **fallback** — if everything below fails, a fallback value;
//! 2. **total deadline** — the whole call, retries included;
//! 3. **retry** (with its budget) — per attempt:
//! 4. **circuit breaker** — fail fast while the dependency is sick;
//! 5. **rate limiter**, then **adaptive limit** — do not send more than it
//!    may take;
//! 6. **bulkhead** — bound the concurrency spent on it;
//! 7. **per-attempt deadline** — passed to the call, never later than the
//!    total one.
//!
//! Every layer is optional. The order is fixed on purpose: a retry outside
//! the breaker sees its rejections (and by default does not retry them); a
//! breaker outside the limiters never counts a call the limiters refused as
//! a failure of the dependency; the bulkhead is innermost so that a permit is
//! held only while the call really runs.
//!
//! Deadlines are cooperative: the call receives its attempt's [`Deadline`]
//! and must honour it (pass it to its client's timeout), or run its blocking
//! part through a [`TimeoutPool`](crate::deadline::TimeoutPool).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use failwell::breaker::CircuitBreaker;
//! use failwell::bulkhead::Bulkhead;
//! use failwell::pipeline::Pipeline;
//! use failwell::retry::Retry;
//!
//! let pipeline = Pipeline::builder()
//!     .total_timeout(Duration::from_secs(2))
//!     .retry(Arc::new(Retry::builder().max_attempts(3).build()?))
//!     .breaker(Arc::new(CircuitBreaker::builder().build()?))
//!     .bulkhead(Arc::new(Bulkhead::builder().max_concurrent(10).build()?))
//!     .attempt_timeout(Duration::from_millis(500))
//!     .build()?;
//! let user = pipeline.call(|deadline| {
//!     assert!(deadline.remaining() <= Duration::from_millis(500));
//!     Ok::<_, String>("Ada")
//! });
//! assert_eq!(user.unwrap(), "Ada");
//! # Ok::<(), failwell::ConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::breaker::{CircuitBreaker, Outcome, PermitToken};
use crate::bulkhead::{Bulkhead, Priority};
use crate::clock::{Clock, MonotonicClock, Sleeper};
use crate::deadline::Deadline;
use crate::error::{ConfigError, Error, Rejected};
use crate::rate_limit::RateLimiter;
use crate::retry::Retry;
use crate::shed::{AdaptiveLimit, ShedOutcome, ShedToken};
// The user's `Arc` (std's, also in the loom build): handles passed in are theirs.
use crate::sync::UserArc as Arc;

/// Builds a [`Pipeline`]. Every layer is off until set.
pub struct Builder<C: Clock + Sleeper = MonotonicClock> {
    clock: C,
    total_timeout: Option<Duration>,
    retry: Option<Arc<Retry<C>>>,
    breaker: Option<Arc<CircuitBreaker<C>>>,
    rate_limiter: Option<Arc<RateLimiter<C>>>,
    adaptive: Option<Arc<AdaptiveLimit<C>>>,
    bulkhead: Option<Arc<Bulkhead>>,
    attempt_timeout: Option<Duration>,
    priority: Priority,
}

impl Default for Builder<MonotonicClock> {
    fn default() -> Self {
        Builder::with_clock(MonotonicClock)
    }
}

impl<C: Clock + Sleeper> Builder<C> {
    /// A builder whose deadlines read `clock` (the layers' own clocks should
    /// be the same clock).
    pub fn with_clock(clock: C) -> Self {
        Builder {
            clock,
            total_timeout: None,
            retry: None,
            breaker: None,
            rate_limiter: None,
            adaptive: None,
            bulkhead: None,
            attempt_timeout: None,
            priority: Priority::Normal,
        }
    }

    /// The whole call, retries included, ends by then (> 0).
    pub fn total_timeout(mut self, d: Duration) -> Self {
        self.total_timeout = Some(d);
        self
    }

    /// Retry failed attempts with this policy.
    pub fn retry(mut self, r: Arc<Retry<C>>) -> Self {
        self.retry = Some(r);
        self
    }

    /// Guard each attempt with this breaker.
    pub fn breaker(mut self, b: Arc<CircuitBreaker<C>>) -> Self {
        self.breaker = Some(b);
        self
    }

    /// Admit each attempt through this rate limiter.
    pub fn rate_limiter(mut self, l: Arc<RateLimiter<C>>) -> Self {
        self.rate_limiter = Some(l);
        self
    }

    /// Admit each attempt through this adaptive limit.
    pub fn adaptive_limit(mut self, l: Arc<AdaptiveLimit<C>>) -> Self {
        self.adaptive = Some(l);
        self
    }

    /// Hold a permit of this bulkhead while each attempt runs.
    pub fn bulkhead(mut self, b: Arc<Bulkhead>) -> Self {
        self.bulkhead = Some(b);
        self
    }

    /// Each attempt gets at most this long (> 0), within the total.
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = Some(d);
        self
    }

    /// The priority for the bulkhead and the adaptive limit (default
    /// normal).
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }

    /// Validates and builds the pipeline.
    pub fn build(self) -> Result<Pipeline<C>, ConfigError> {
        if self.total_timeout.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new("total_timeout", "must be > 0"));
        }
        if self.attempt_timeout.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new("attempt_timeout", "must be > 0"));
        }
        Ok(Pipeline {
            clock: self.clock,
            total_timeout: self.total_timeout,
            retry: self.retry,
            breaker: self.breaker,
            rate_limiter: self.rate_limiter,
            adaptive: self.adaptive,
            bulkhead: self.bulkhead,
            attempt_timeout: self.attempt_timeout,
            priority: self.priority,
        })
    }
}

/// Layers composed in the fixed order. Thread-safe; share it.
pub struct Pipeline<C: Clock + Sleeper = MonotonicClock> {
    clock: C,
    total_timeout: Option<Duration>,
    retry: Option<Arc<Retry<C>>>,
    breaker: Option<Arc<CircuitBreaker<C>>>,
    rate_limiter: Option<Arc<RateLimiter<C>>>,
    adaptive: Option<Arc<AdaptiveLimit<C>>>,
    bulkhead: Option<Arc<Bulkhead>>,
    attempt_timeout: Option<Duration>,
    priority: Priority,
}

impl Pipeline<MonotonicClock> {
    /// A builder with every layer off.
    pub fn builder() -> Builder<MonotonicClock> {
        Builder::default()
    }
}

impl<C: Clock + Sleeper> Pipeline<C> {
    /// Runs `f` through the layers; `Err` counts as a failure.
    pub fn call<T, E>(&self, f: impl FnMut(Deadline) -> Result<T, E>) -> Result<T, Error<E>> {
        self.call_with(
            |r: &Result<T, E>| {
                if r.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                }
            },
            f,
        )
    }

    /// Runs `f` through the layers; `classify` says what counts as a
    /// failure for the breaker and what the retry retries (`Failure`, an
    /// `Ok` value included); `Ignore`d errors are neither counted nor
    /// retried. Rejections by the layers are retried only if the retry
    /// policy says so ([`retry_rejected`](crate::retry::Builder::retry_rejected)).
    pub fn call_with<T, E>(
        &self,
        classify: impl Fn(&Result<T, E>) -> Outcome,
        mut f: impl FnMut(Deadline) -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        let mut run = self.begin(None).map_err(Error::Rejected)?;
        loop {
            let (result, ended) = match self.admit(&run) {
                Err(r) => (Err(Error::Rejected(r)), Ended::Refused(r)),
                Ok(attempt) => {
                    // If `f` or `classify` panics, the guard finishes the
                    // attempt as ignored while unwinding: its permits return.
                    let deadline = attempt.deadline();
                    let mut guard = Unfinished {
                        pipeline: self,
                        attempt: Some(attempt),
                    };
                    let result = f(deadline);
                    let outcome = classify(&result);
                    if let Some(attempt) = guard.attempt.take() {
                        self.finish(attempt, outcome);
                    }
                    (result.map_err(Error::Inner), Ended::Outcome(outcome))
                }
            };
            match self.next(&mut run, ended) {
                Ok(Some(delay)) => {
                    drop(result);
                    self.clock.sleep(delay);
                }
                Ok(None) => return result,
                Err(rejected) => return Err(Error::Rejected(rejected)),
            }
        }
    }

    /// Runs through the layers; if the call fails or is refused, returns
    /// `fallback(&error)` instead, when it gives a value.
    pub fn call_or_else<T, E>(
        &self,
        f: impl FnMut(Deadline) -> Result<T, E>,
        fallback: impl FnOnce(&Error<E>) -> Option<T>,
    ) -> Result<T, Error<E>> {
        match self.call(f) {
            Ok(v) => Ok(v),
            Err(e) => fallback(&e).ok_or(e),
        }
    }

    /// Starts a call, for callers that run the loop themselves (an async
    /// runtime that sleeps with its own timer, the Python binding): fixes
    /// the total deadline — the earlier of `total_timeout` from now and
    /// `outer` (the caller's own deadline) — and begins the retry run.
    /// Refuses with `Rejected::DeadlineExceeded` when a retry policy is set
    /// and that deadline has passed already (otherwise [`admit`](Self::admit)
    /// refuses). Then, per attempt: [`admit`](Self::admit), run the call
    /// with the attempt's deadline, [`finish`](Self::finish), and ask
    /// [`next`](Self::next) whether and when to try again.
    #[inline(always)]
    pub fn begin(&self, outer: Option<Deadline>) -> Result<Run, Rejected> {
        let own = self
            .total_timeout
            .map(|d| Deadline::after_on(&self.clock, d))
            .unwrap_or_else(Deadline::never);
        let total = outer.map_or(own, |o| own.min(o));
        let retry = match &self.retry {
            Some(r) => Some(r.begin(Some(total))?),
            None => None,
        };
        Ok(Run {
            total,
            retry,
            stopped: false,
        })
    }

    /// Admits one attempt of `run` through the inner layers, in order:
    /// breaker, rate limiter, adaptive limit, bulkhead. On a refusal the
    /// permits already taken are given back uncounted (the dependency was
    /// not called, so it is no failure of it). The admitted attempt holds
    /// its permits until [`finish`](Self::finish), which must be called
    /// exactly once (an attempt never finished keeps its bulkhead permit).
    #[inline(always)]
    pub fn admit(&self, run: &Run) -> Result<Attempt, Rejected> {
        if run.total.is_expired_on(&self.clock) {
            return Err(Rejected::DeadlineExceeded);
        }
        let breaker = match &self.breaker {
            Some(b) => Some(b.try_acquire()?.into_token()),
            None => None,
        };
        let give_back = |shed: Option<ShedToken>| {
            if let (Some(b), Some(t)) = (&self.breaker, breaker) {
                b.record_token(t, Outcome::Ignore, None);
            }
            if let (Some(a), Some(t)) = (&self.adaptive, shed) {
                a.record_token(t, ShedOutcome::Ignore);
            }
        };
        if let Some(Err(r)) = self.rate_limiter.as_ref().map(|l| l.try_acquire()) {
            give_back(None);
            return Err(r);
        }
        let shed = match self.adaptive.as_ref().map(|a| a.try_acquire(self.priority)) {
            Some(Err(r)) => {
                give_back(None);
                return Err(r);
            }
            Some(Ok(p)) => Some(p.into_token()),
            None => None,
        };
        if let Some(b) = &self.bulkhead {
            match b.try_acquire_with(self.priority) {
                Ok(p) => p.detach(),
                Err(r) => {
                    give_back(shed);
                    return Err(r);
                }
            }
        }
        let deadline = match self.attempt_timeout {
            Some(d) => run.total.min(Deadline::after_on(&self.clock, d)),
            None => run.total,
        };
        Ok(Attempt {
            breaker,
            shed,
            deadline,
        })
    }

    /// Ends an admitted attempt: the breaker records `outcome`; the
    /// adaptive limit takes a drop when it failed after its deadline had
    /// passed (it ran out of time: overload), a sample otherwise; the
    /// bulkhead permit is released.
    #[inline(always)]
    pub fn finish(&self, attempt: Attempt, outcome: Outcome) {
        if let (Some(b), Some(t)) = (&self.breaker, attempt.breaker) {
            b.record_token(t, outcome, None);
        }
        if let (Some(a), Some(t)) = (&self.adaptive, attempt.shed) {
            let timed_out =
                outcome == Outcome::Failure && attempt.deadline.is_expired_on(&self.clock);
            let shed_outcome = if timed_out {
                ShedOutcome::Dropped
            } else {
                ShedOutcome::Success
            };
            a.record_token(t, shed_outcome);
        }
        if let Some(b) = &self.bulkhead {
            b.release_detached();
        }
    }

    /// After an attempt of `run` ended (or was refused): how long to wait
    /// before the next, or `None` to stop with that attempt's result. A
    /// `Failure` is retried; a refusal only if the retry policy says so
    /// ([`retry_rejected`](crate::retry::Builder::retry_rejected)), and no
    /// sooner than its `retry_after`; anything else ends the call. Refuses
    /// with `Rejected::RetryBudgetExhausted` when the budget refuses a retry.
    /// Never sleeps.
    #[inline(always)]
    pub fn next(&self, run: &mut Run, ended: Ended) -> Result<Option<Duration>, Rejected> {
        let next = self.next_step(run, ended);
        // A run told to stop admits no further attempt (`Run::is_stopped`).
        run.stopped = !matches!(next, Ok(Some(_)));
        next
    }

    #[inline(always)]
    fn next_step(&self, run: &mut Run, ended: Ended) -> Result<Option<Duration>, Rejected> {
        let (Some(retry), Some(r)) = (&self.retry, run.retry.as_mut()) else {
            return Ok(None);
        };
        let at_least = match ended {
            Ended::Refused(rej) if retry.retry_rejected => {
                rej.retry_after().unwrap_or(Duration::ZERO)
            }
            Ended::Outcome(Outcome::Failure) => Duration::ZERO,
            _ => return Ok(None),
        };
        retry.step(r, at_least)
    }
}

/// An admitted attempt of `call_with`, finished as ignored if dropped
/// unfinished (a panic in the call or the classifier).
struct Unfinished<'p, C: Clock + Sleeper> {
    pipeline: &'p Pipeline<C>,
    attempt: Option<Attempt>,
}

impl<C: Clock + Sleeper> Drop for Unfinished<'_, C> {
    fn drop(&mut self) {
        if let Some(a) = self.attempt.take() {
            self.pipeline.finish(a, Outcome::Ignore);
        }
    }
}

/// A call through a [`Pipeline`] in progress, driven step by step (see
/// [`Pipeline::begin`]): its total deadline and its retry run.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    total: Deadline,
    retry: Option<crate::retry::Run>,
    stopped: bool,
}

impl Run {
    /// Whether [`Pipeline::next`] said to stop: the call has its answer,
    /// and admitting another attempt for it is a caller's mistake (the
    /// bindings refuse it).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The call's total deadline.
    pub fn deadline(&self) -> Deadline {
        self.total
    }

    /// The number of the attempt about to run or running (1-based; 1 when
    /// the pipeline has no retry policy).
    pub fn attempt(&self) -> u32 {
        self.retry.map_or(1, |r| r.attempt())
    }
}

/// One attempt admitted by [`Pipeline::admit`], holding its layers'
/// permits (detached from their borrows): give it back with
/// [`Pipeline::finish`], exactly once, on the pipeline it came from.
#[must_use = "finish the attempt, or its bulkhead permit is never released"]
#[derive(Debug)]
pub struct Attempt {
    breaker: Option<PermitToken>,
    shed: Option<ShedToken>,
    deadline: Deadline,
}

impl Attempt {
    /// The attempt's deadline: pass it to the call.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }
}

/// How an attempt ended, for [`Pipeline::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It ran; this is how the classifier judged it.
    Outcome(Outcome),
    /// A layer refused it (from [`Pipeline::admit`]).
    Refused(Rejected),
}

impl<C: Clock + Sleeper> fmt::Debug for Pipeline<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("total_timeout", &self.total_timeout)
            .field("retry", &self.retry.is_some())
            .field("breaker", &self.breaker.is_some())
            .field("rate_limiter", &self.rate_limiter.is_some())
            .field("adaptive_limit", &self.adaptive.is_some())
            .field("bulkhead", &self.bulkhead.is_some())
            .field("attempt_timeout", &self.attempt_timeout)
            .finish()
    }
}

impl<C: Clock + Sleeper> fmt::Debug for Builder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
