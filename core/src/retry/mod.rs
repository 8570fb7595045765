//! Retries with backoff and jitter, bounded by attempts, elapsed time, the
//! caller's deadline and a retry budget shared by all callers.
//!
//! - [`Backoff`]: constant, linear or exponential (with a cap) base delays.
//! - [`Jitter`]: none, full, equal, decorrelated (AWS's three), and the
//!   symmetric ±fraction of the classic pattern.
//! - [`RetryBudget`]: retries may be at most a ratio of calls, with a floor
//!   per second (Finagle's and Envoy's defense against retry storms: a fleet
//!   of clients cannot multiply the load on a sick dependency).
//! - [`Retry`]: the loop. It sleeps through a [`Sleeper`] (virtual time in
//!   tests), never past the caller's [`Deadline`], does not retry a
//!   failwell rejection (an open breaker) unless asked, and allocates
//!   nothing.
//!
//! ```
//! use std::time::Duration;
//! use failwell::retry::{Backoff, Jitter, Retry};
//!
//! let retry = Retry::builder()
//!     .max_attempts(4)
//!     .backoff(Backoff::exponential(Duration::from_millis(100), 2.0, Duration::from_secs(10)))
//!     .jitter(Jitter::Full)
//!     .build()?;
//! let mut calls = 0;
//! let r = retry.call(|| {
//!     calls += 1;
//!     if calls < 2 { Err("transient") } else { Ok(calls) }
//! });
//! assert_eq!(r.unwrap(), 2);
//! # Ok::<(), failwell::ConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

mod backoff;
mod budget;

pub use backoff::{Backoff, Jitter};
#[cfg(all(unix, not(failwell_loom)))]
pub(crate) use budget::BudgetState;
pub use budget::RetryBudget;

use crate::clock::{nanos, Clock, MonotonicClock, Sleeper};
use crate::counter::StripedCounter;
use crate::deadline::Deadline;
use crate::error::{ConfigError, Error, Rejected};
use crate::rng::{fresh_seed, unit_f64, SharedRng};
// The user's `Arc` (std's, also in the loom build): the budget is theirs.
use crate::sync::{AtomicU64, Ordering::Relaxed, UserArc as Arc};

/// Attempts a [`Retry`] makes by default, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The default backoff's first delay (exponential, 100 ms).
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// The default backoff's growth per attempt (2).
pub const DEFAULT_BACKOFF_MULTIPLIER: f64 = 2.0;
/// The default backoff's cap (10 s).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A [`RetryBudget`]'s default ratio of retries to calls (20 %).
pub const DEFAULT_BUDGET_RATIO: f64 = 0.2;
/// A [`RetryBudget`]'s default floor, retries per second always allowed (3).
pub const DEFAULT_BUDGET_MIN_PER_SECOND: f64 = 3.0;
/// A [`RetryBudget`]'s default window (10 s).
pub const DEFAULT_BUDGET_TTL: Duration = Duration::from_secs(10);

/// Builds a [`Retry`]. Defaults: 3 attempts, exponential backoff from
/// 100 ms doubling to at most 10 s, full jitter, no
/// elapsed limit, no budget, failwell rejections not retried, a fresh seed.
pub struct Builder<C: Clock + Sleeper = MonotonicClock> {
    clock: C,
    max_attempts: u32,
    max_elapsed: Option<Duration>,
    backoff: Backoff,
    jitter: Jitter,
    budget: Option<Arc<RetryBudget<C>>>,
    retry_rejected: bool,
    seed: Option<u64>,
}

impl Default for Builder<MonotonicClock> {
    fn default() -> Self {
        Builder::with_clock(MonotonicClock)
    }
}

impl<C: Clock + Sleeper> Builder<C> {
    /// A builder that reads and sleeps on `clock` (virtual time with a
    /// [`ManualClock`](crate::clock::ManualClock)).
    pub fn with_clock(clock: C) -> Self {
        Builder {
            clock,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_elapsed: None,
            backoff: Backoff::exponential(
                DEFAULT_BACKOFF_INITIAL,
                DEFAULT_BACKOFF_MULTIPLIER,
                DEFAULT_BACKOFF_MAX,
            ),
            jitter: Jitter::Full,
            budget: None,
            retry_rejected: false,
            seed: None,
        }
    }

    /// Attempts in all, the first included (≥ 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Give up rather than sleep past this long since the first attempt.
    pub fn max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = Some(d);
        self
    }

    /// The base delays.
    pub fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = b;
        self
    }

    /// The randomisation of each delay.
    pub fn jitter(mut self, j: Jitter) -> Self {
        self.jitter = j;
        self
    }

    /// Draw every retry from this shared budget.
    pub fn budget(mut self, b: Arc<RetryBudget<C>>) -> Self {
        self.budget = Some(b);
        self
    }

    /// Retry failwell rejections seen by [`Retry::call_protected`] (an open
    /// breaker, a full bulkhead, a rate limit), waiting at least their
    /// `retry_after`. Off by default: a breaker open because the dependency
    /// is down should not be hammered.
    pub fn retry_rejected(mut self, on: bool) -> Self {
        self.retry_rejected = on;
        self
    }

    /// Seed the jitter, for reproducible delays.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Validates and builds the policy.
    pub fn build(self) -> Result<Retry<C>, ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "must be at least 1, got 0",
            ));
        }
        if self.max_elapsed.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new("max_elapsed", "must be > 0"));
        }
        self.backoff.validate()?;
        self.jitter.validate()?;
        Ok(Retry {
            retry_rejected: self.retry_rejected,
            max_attempts: self.max_attempts,
            max_elapsed: self.max_elapsed.map(nanos),
            backoff: self.backoff,
            jitter: self.jitter,
            budget: self.budget,
            rng: SharedRng::new(self.seed.unwrap_or_else(fresh_seed)),
            calls: StripedCounter::new(),
            retries: AtomicU64::new(0),
            budget_refusals: AtomicU64::new(0),
            deadline_refusals: AtomicU64::new(0),
            clock: self.clock,
        })
    }
}

/// What the `on_retry` hook is told before each sleep.
#[derive(Debug)]
pub struct RetryEvent<'a, T, E> {
    /// The attempt that just finished (1-based).
    pub attempt: u32,
    /// How long the loop will sleep before the next attempt.
    pub delay: Duration,
    /// What that attempt returned.
    pub result: &'a Result<T, E>,
}

/// One call in progress under a [`Retry`] policy, for loops run outside
/// core (see [`Retry::begin`] and [`Retry::step`]): the attempt number, the
/// last delay (for decorrelated jitter) and when the call started (for
/// `max_elapsed`). Plain data with no borrow, so a binding can keep it
/// beside its policy; dropping it ends the call.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    deadline: Option<Deadline>,
    start: u64,
    previous: Duration,
    attempt: u32,
}

impl Run {
    /// The number of the attempt about to run or running (1-based).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The run as plain numbers, for holders outside Rust (the C ABI);
    /// [`from_raw`](Self::from_raw) restores it.
    pub fn into_raw(self) -> [u64; 4] {
        [
            self.deadline.map_or(u64::MAX, Deadline::as_nanos),
            self.start,
            nanos(self.previous),
            self.attempt as u64,
        ]
    }

    /// A run from [`into_raw`](Self::into_raw)'s numbers.
    pub fn from_raw(raw: [u64; 4]) -> Self {
        Run {
            deadline: (raw[0] != u64::MAX).then(|| Deadline::at(raw[0])),
            start: raw[1],
            previous: Duration::from_nanos(raw[2]),
            attempt: raw[3].clamp(1, u32::MAX as u64) as u32,
        }
    }
}

impl<C: Clock + Sleeper> Retry<C> {
    /// The attempt of `run` (begun on this policy) failed and should be
    /// retried, no sooner than `at_least` (a rejection's `retry_after`;
    /// zero otherwise). `Ok(Some(delay))`: sleep `delay`, then run the next
    /// attempt. `Ok(None)`: the policy gives up (attempts, `max_elapsed` or
    /// the deadline leave no room) — return the last result as it was.
    /// `Err(Rejected::RetryBudgetExhausted)`: the budget refused.
    pub fn step(&self, run: &mut Run, at_least: Duration) -> Result<Option<Duration>, Rejected> {
        let r = self;
        let this = run;
        if this.attempt >= r.max_attempts {
            return Ok(None);
        }
        let delay = r.next_delay(this.attempt, this.previous).max(at_least);
        this.previous = delay;
        if r.out_of_time(this.deadline, this.start, delay) {
            return Ok(None);
        }
        if let Some(b) = &r.budget {
            if !b.try_withdraw() {
                r.budget_refusals.fetch_add(1, Relaxed);
                return Err(Rejected::RetryBudgetExhausted);
            }
        }
        r.retries.fetch_add(1, Relaxed);
        this.attempt += 1;
        Ok(Some(delay))
    }
}

/// A plain copy of a policy's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Calls made through the policy.
    pub calls: u64,
    /// Attempts, first ones included.
    pub attempts: u64,
    /// Retries (attempts after the first).
    pub retries: u64,
    /// Retries the budget refused.
    pub budget_refusals: u64,
    /// Calls whose deadline had passed before any attempt.
    pub deadline_refusals: u64,
}

/// A retry policy. Thread-safe: one policy serves every caller, and its
/// counters and budget are shared.
pub struct Retry<C: Clock + Sleeper = MonotonicClock> {
    pub(crate) retry_rejected: bool,
    max_attempts: u32,
    max_elapsed: Option<u64>,
    backoff: Backoff,
    jitter: Jitter,
    budget: Option<Arc<RetryBudget<C>>>,
    rng: SharedRng,
    calls: StripedCounter,
    retries: AtomicU64,
    budget_refusals: AtomicU64,
    deadline_refusals: AtomicU64,
    clock: C,
}

impl Retry<MonotonicClock> {
    /// A builder with the defaults.
    pub fn builder() -> Builder<MonotonicClock> {
        Builder::default()
    }
}

/// What a classifier says of one attempt's result.
pub(crate) enum Verdict {
    Done,
    Retry { at_least: Duration },
}

impl<C: Clock + Sleeper> Retry<C> {
    /// Runs `f`, retrying every `Err` under the policy; returns the first
    /// `Ok`, or the last error once the policy gives up.
    #[inline]
    pub fn call<T, E>(&self, f: impl FnMut() -> Result<T, E>) -> Result<T, Error<E>> {
        self.call_when(|r: &Result<T, E>| r.is_err(), f)
    }

    /// Runs `f`, retrying while `when(&result)` is true — so chosen errors
    /// can be final and chosen `Ok` values (an HTTP 503) retried. When the
    /// policy gives up, the last result is returned as it was.
    #[inline]
    pub fn call_when<T, E>(
        &self,
        when: impl Fn(&Result<T, E>) -> bool,
        f: impl FnMut() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        self.run(None, when, |_: &RetryEvent<'_, T, E>| {}, f)
    }

    /// The general form: retry while `when(&result)`, never sleeping past
    /// `deadline`, calling `on_retry` before each sleep.
    ///
    /// Gives up with the last result when attempts, `max_elapsed` or the
    /// deadline leave no room for another attempt; with
    /// `Rejected::DeadlineExceeded` if the deadline had passed before the
    /// first attempt; with `Rejected::RetryBudgetExhausted` when the budget
    /// refuses a retry.
    pub fn run<T, E>(
        &self,
        deadline: Option<Deadline>,
        when: impl Fn(&Result<T, E>) -> bool,
        on_retry: impl Fn(&RetryEvent<'_, T, E>),
        f: impl FnMut() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        let r = self.run_classified(
            deadline,
            |r| {
                if when(r) {
                    Verdict::Retry {
                        at_least: Duration::ZERO,
                    }
                } else {
                    Verdict::Done
                }
            },
            on_retry,
            f,
        );
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::Inner(e)),
            Err(rejected) => Err(Error::Rejected(rejected)),
        }
    }

    /// Runs a call that is itself protected by failwell (a breaker's
    /// `call`, a bulkhead's), retrying `Error::Inner` errors. A rejection
    /// (`Error::Rejected`) is returned at once unless the policy was built
    /// with [`retry_rejected`](Builder::retry_rejected), in which case it is
    /// retried no sooner than its `retry_after`.
    pub fn call_protected<T, E>(
        &self,
        deadline: Option<Deadline>,
        f: impl FnMut() -> Result<T, Error<E>>,
    ) -> Result<T, Error<E>> {
        let retry_rejected = self.retry_rejected;
        let r = self.run_classified(
            deadline,
            |r: &Result<T, Error<E>>| match r {
                Ok(_) => Verdict::Done,
                Err(Error::Inner(_)) => Verdict::Retry {
                    at_least: Duration::ZERO,
                },
                Err(Error::Rejected(rej)) if retry_rejected => Verdict::Retry {
                    at_least: rej.retry_after().unwrap_or(Duration::ZERO),
                },
                Err(Error::Rejected(_)) => Verdict::Done,
            },
            |_| {},
            f,
        );
        match r {
            Ok(last) => last,
            Err(rejected) => Err(Error::Rejected(rejected)),
        }
    }

    /// The loop. `Err(Rejected)` is failwell's own verdict; `Ok(result)` is
    /// the last result of `f`.
    #[inline]
    pub(crate) fn run_classified<T, E>(
        &self,
        deadline: Option<Deadline>,
        classify: impl Fn(&Result<T, E>) -> Verdict,
        on_retry: impl Fn(&RetryEvent<'_, T, E>),
        mut f: impl FnMut() -> Result<T, E>,
    ) -> Result<Result<T, E>, Rejected> {
        let mut run = self.begin(deadline)?;
        loop {
            let result = f();
            let at_least = match classify(&result) {
                Verdict::Done => return Ok(result),
                Verdict::Retry { at_least } => at_least,
            };
            let Some(delay) = self.step(&mut run, at_least)? else {
                return Ok(result);
            };
            on_retry(&RetryEvent {
                attempt: run.attempt - 1,
                delay,
                result: &result,
            });
            drop(result);
            self.clock.sleep(delay);
        }
    }

    /// Starts one call under the policy, for callers that run the loop
    /// themselves (an async runtime that sleeps with its own timer, the
    /// Python and C bindings): counts the call, deposits into the budget,
    /// and refuses with `Rejected::DeadlineExceeded` if `deadline` has
    /// already passed. After each attempt that should be retried, ask
    /// [`Retry::step`] how long to wait.
    #[inline]
    pub fn begin(&self, deadline: Option<Deadline>) -> Result<Run, Rejected> {
        self.calls.add(1);
        if let Some(b) = &self.budget {
            b.deposit();
        }
        if deadline.is_some_and(|d| d.is_expired_on(&self.clock)) {
            self.deadline_refusals.fetch_add(1, Relaxed);
            return Err(Rejected::DeadlineExceeded);
        }
        let start = if self.max_elapsed.is_some() {
            self.clock.now()
        } else {
            0
        };
        Ok(Run {
            deadline,
            start,
            previous: self.backoff.initial(),
            attempt: 1,
        })
    }

    /// The delay the loop sleeps after attempt number `attempt` (1-based):
    /// the backoff's base delay, jittered with the policy's generator;
    /// `previous` is the delay before it (for decorrelated jitter; pass the
    /// backoff's initial delay for the first). For callers that run their
    /// own loop (the C ABI).
    pub fn next_delay(&self, attempt: u32, previous: Duration) -> Duration {
        let base = self.backoff.delay(attempt);
        self.jitter
            .apply(base, previous, &self.backoff, unit_f64(self.rng.next_u64()))
    }

    /// Whether sleeping `delay` and trying again would overrun the deadline
    /// or `max_elapsed`.
    #[cold]
    fn out_of_time(&self, deadline: Option<Deadline>, start: u64, delay: Duration) -> bool {
        if deadline.is_some_and(|d| d.remaining_on(&self.clock) <= delay) {
            return true;
        }
        if let Some(max) = self.max_elapsed {
            let after = self.clock.now().saturating_add(nanos(delay));
            if after.saturating_sub(start) > max {
                return true;
            }
        }
        false
    }

    /// The counters.
    pub fn snapshot(&self) -> Snapshot {
        let calls = self.calls.sum();
        let retries = self.retries.load(Relaxed);
        let deadline_refusals = self.deadline_refusals.load(Relaxed);
        Snapshot {
            calls,
            attempts: calls - deadline_refusals.min(calls) + retries,
            retries,
            budget_refusals: self.budget_refusals.load(Relaxed),
            deadline_refusals,
        }
    }
}

impl<C: Clock + Sleeper> fmt::Debug for Retry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("jitter", &self.jitter)
            .field("snapshot", &self.snapshot())
            .finish_non_exhaustive()
    }
}

impl<C: Clock + Sleeper> fmt::Debug for Builder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
