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

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use crate::breaker::{CircuitBreaker, Outcome};
use crate::bulkhead::{Bulkhead, Priority};
use crate::clock::{Clock, MonotonicClock, Sleeper};
use crate::deadline::Deadline;
use crate::error::{ConfigError, Error, Rejected};
use crate::rate_limit::RateLimiter;
use crate::retry::{Retry, Verdict};
use crate::shed::AdaptiveLimit;
use crate::sync::Arc;

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
        let total = self
            .total_timeout
            .map(|d| Deadline::after_on(&self.clock, d))
            .unwrap_or_else(Deadline::never);
        let last = Cell::new(Outcome::Success);
        let mut attempt = || -> Result<T, Error<E>> {
            last.set(Outcome::Success);
            if total.is_expired_on(&self.clock) {
                return Err(Error::Rejected(Rejected::DeadlineExceeded));
            }
            let (result, outcome) = self.attempt(total, &classify, &mut f);
            last.set(outcome);
            result
        };
        let Some(retry) = &self.retry else {
            return attempt();
        };
        let verdict = |r: &Result<T, Error<E>>| match r {
            Err(Error::Rejected(rej)) if retry.retry_rejected => Verdict::Retry {
                at_least: rej.retry_after().unwrap_or(Duration::ZERO),
            },
            Err(Error::Rejected(_)) => Verdict::Done,
            _ if last.get() == Outcome::Failure => Verdict::Retry {
                at_least: Duration::ZERO,
            },
            _ => Verdict::Done,
        };
        match retry.run_classified(Some(total), verdict, |_| {}, attempt) {
            Ok(last_result) => last_result,
            Err(rejected) => Err(Error::Rejected(rejected)),
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

    /// One attempt through the inner layers: its result and how the
    /// classifier judged it (`Ignore` when a layer refused it).
    fn attempt<T, E>(
        &self,
        total: Deadline,
        classify: &impl Fn(&Result<T, E>) -> Outcome,
        f: &mut impl FnMut(Deadline) -> Result<T, E>,
    ) -> (Result<T, Error<E>>, Outcome) {
        let refused = |r: Rejected| (Err(Error::Rejected(r)), Outcome::Ignore);
        let permit = match self.breaker.as_ref().map(|b| b.try_acquire()) {
            Some(Err(r)) => return refused(r),
            Some(Ok(p)) => Some(p),
            None => None,
        };
        // From here a refusal drops the breaker permit unrecorded: the
        // dependency was not called, so it is no failure of the dependency.
        if let Some(Err(r)) = self.rate_limiter.as_ref().map(|l| l.try_acquire()) {
            return refused(r);
        }
        let shed = match self.adaptive.as_ref().map(|a| a.try_acquire(self.priority)) {
            Some(Err(r)) => return refused(r),
            Some(Ok(p)) => Some(p),
            None => None,
        };
        let _slot = match self
            .bulkhead
            .as_ref()
            .map(|b| b.try_acquire_with(self.priority))
        {
            Some(Err(r)) => return refused(r),
            Some(Ok(p)) => Some(p),
            None => None,
        };
        let deadline = match self.attempt_timeout {
            Some(d) => total.min(Deadline::after_on(&self.clock, d)),
            None => total,
        };
        let result = f(deadline);
        let outcome = classify(&result);
        if let Some(p) = permit {
            p.record(outcome);
        }
        if let Some(s) = shed {
            if outcome == Outcome::Failure && deadline.is_expired_on(&self.clock) {
                s.dropped(); // it ran out of time: overload
            } else {
                s.success();
            }
        }
        (result.map_err(Error::Inner), outcome)
    }
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
