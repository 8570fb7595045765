//! The retry budget: its rule (how many retries the window's calls allow),
//! its state (two sliding counts and a refusal count, plain atomic words)
//! and the handle that applies one to the other.

use std::fmt;
use std::time::Duration;

use crate::clock::{nanos, Clock, MonotonicClock};
use crate::counter::SlidingCount;
use crate::error::ConfigError;
use crate::sync::{AtomicU64, Ordering::Relaxed};
use crate::words::Placed;

use super::{DEFAULT_BUDGET_MIN_PER_SECOND, DEFAULT_BUDGET_RATIO, DEFAULT_BUDGET_TTL};

/// Retries may be at most `ratio` of calls over a sliding window of `ttl`,
/// plus `min_per_sec` per second, shared by every [`Retry`](super::Retry) that holds it.
/// Defaults: 20% and 3 per second (Envoy's and Finagle's), a 10 s window.
///
/// Lock-free: calls and retries are each a sliding count over epochs of
/// `ttl` (two epoch-tagged words, the window estimated as `this + last ×
/// fraction of last still inside`).
pub struct RetryBudget<C: Clock = MonotonicClock> {
    ratio: f64,
    min_per_sec: f64,
    ttl: u64,
    /// On the heap, or in a shared region.
    state: Placed<BudgetState>,
    clock: C,
}

/// A retry budget's state: plain atomic words, pointer-free, at a fixed
/// layout. `calls` and `retries` are sliding counts (each two words
/// `[epoch:35 | count:29]`, the current and the previous epoch of `ttl`,
/// see `counter.rs`); `refused` counts refusals since creation.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct BudgetState {
    pub(crate) calls: SlidingCount,
    pub(crate) retries: SlidingCount,
    pub(crate) refused: AtomicU64,
}

impl BudgetState {
    /// No calls, no retries, no refusals.
    pub(crate) fn new() -> Self {
        BudgetState {
            calls: SlidingCount::new(),
            retries: SlidingCount::new(),
            refused: AtomicU64::new(0),
        }
    }
}

/// The budget's rule: how many retries a window with `calls` calls (the
/// sliding estimate) allows, given `ratio`, the floor `min_per_sec` and a
/// window of `ttl_secs` seconds.
#[inline]
pub(crate) fn allowance(calls: f64, ratio: f64, min_per_sec: f64, ttl_secs: f64) -> f64 {
    ratio * calls + min_per_sec * ttl_secs
}

/// The budget's rule: whether one more retry fits, with `prev_retries`
/// (the previous epoch's retries, weighted by the part of it still in the
/// window) and `current` retries of this epoch already taken.
#[inline]
pub(crate) fn may_retry(prev_retries: f64, current: u64, allowance: f64) -> bool {
    prev_retries + current as f64 + 1.0 <= allowance
}

impl RetryBudget<MonotonicClock> {
    /// A budget with the defaults: 20%, 3 per second, 10 s window.
    pub fn new() -> Self {
        Self::with(
            DEFAULT_BUDGET_RATIO,
            DEFAULT_BUDGET_MIN_PER_SECOND,
            DEFAULT_BUDGET_TTL,
            MonotonicClock,
        )
        .expect("defaults are valid")
    }
}

impl Default for RetryBudget<MonotonicClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> RetryBudget<C> {
    /// A budget allowing `ratio` (in `[0, 1]`) of calls as retries plus
    /// `min_per_sec` (≥ 0, finite) per second, over a window of `ttl`
    /// (≥ 1 s), on `clock`.
    pub fn with(
        ratio: f64,
        min_per_sec: f64,
        ttl: Duration,
        clock: C,
    ) -> Result<Self, ConfigError> {
        let ttl = Self::validate(ratio, min_per_sec, ttl)?;
        Ok(Self::from_parts(
            ratio,
            min_per_sec,
            ttl,
            Placed::heap(BudgetState::new()),
            clock,
        ))
    }

    /// A budget on `state` (on the heap or in a shared region), with
    /// settings [`validate`](Self::validate) accepted.
    pub(crate) fn from_parts(
        ratio: f64,
        min_per_sec: f64,
        ttl_nanos: u64,
        state: Placed<BudgetState>,
        clock: C,
    ) -> Self {
        RetryBudget {
            ratio,
            min_per_sec,
            ttl: ttl_nanos,
            state,
            clock,
        }
    }

    /// Checks a budget's settings as [`with`](Self::with) does; the window
    /// in nanoseconds.
    pub(crate) fn validate(
        ratio: f64,
        min_per_sec: f64,
        ttl: Duration,
    ) -> Result<u64, ConfigError> {
        if !(0.0..=1.0).contains(&ratio) {
            return Err(ConfigError::new(
                "budget.ratio",
                format!("must be in [0, 1], got {ratio}"),
            ));
        }
        if !min_per_sec.is_finite() || min_per_sec < 0.0 {
            return Err(ConfigError::new(
                "budget.min_per_sec",
                format!("must be finite and ≥ 0, got {min_per_sec}"),
            ));
        }
        if ttl < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "budget.ttl",
                format!("must be at least 1 s, got {ttl:?}"),
            ));
        }
        Ok(nanos(ttl))
    }

    /// Counts one call (a first attempt).
    pub fn deposit(&self) {
        self.state.calls.add(self.clock.now_coarse() / self.ttl);
    }

    /// Takes one retry from the budget, if it allows one now.
    pub fn try_withdraw(&self) -> bool {
        let now = self.clock.now_coarse();
        let epoch = now / self.ttl;
        let frac_left = 1.0 - (now % self.ttl) as f64 / self.ttl as f64;
        let calls = self.state.calls.estimate(epoch, frac_left);
        let allowed = allowance(calls, self.ratio, self.min_per_sec, self.ttl as f64 / 1e9);
        let prev_retries = self.state.retries.previous(epoch) as f64 * frac_left;
        let ok = self
            .state
            .retries
            .add_if(epoch, |cur| may_retry(prev_retries, cur, allowed));
        if !ok {
            self.state.refused.fetch_add(1, Relaxed);
        }
        ok
    }

    /// Retries refused so far.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Relaxed)
    }
}

impl<C: Clock> fmt::Debug for RetryBudget<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ratio", &self.ratio)
            .field("min_per_sec", &self.min_per_sec)
            .field("ttl", &Duration::from_nanos(self.ttl))
            .field("refused", &self.refused())
            .finish()
    }
}
