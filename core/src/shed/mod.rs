//! Load shedding: an adaptive concurrency limit that finds how much a
//! dependency can take from the latency it observes, sheds normal traffic
//! before critical traffic, and a client-side adaptive throttler.
//!
//! [`AdaptiveLimit`] hands out permits like a bulkhead (one compare-and-swap
//! on the in-flight count), but its limit moves: each finished call reports
//! its latency (and whether it was dropped — timed out, overloaded), and the
//! limit algorithm raises or lowers the limit. Two algorithms, after Netflix's
//! concurrency-limits:
//!
//! - [`Algorithm::Aimd`]: additive increase, multiplicative decrease on a
//!   drop or a latency above a threshold (TCP Reno's rule).
//! - [`Algorithm::Gradient`]: the gradient between a baseline latency and
//!   the current one (Netflix's Gradient2 update rule), so the limit follows
//!   the point where queueing starts without a threshold to tune.
//!
//! [`Throttler`] is Google SRE's client-side adaptive throttling: a client
//! rejects locally with probability `max(0, (requests − K·accepts) /
//! (requests + 1))`, so a backend that refuses most work stops receiving it.

use std::fmt;
use std::time::Duration;

mod rule;
mod state;
mod throttler;

pub use rule::{Algorithm, DEFAULT_AIMD_BACKOFF_RATIO, DEFAULT_GRADIENT_TOLERANCE};
pub use throttler::{Throttler, DEFAULT_THROTTLER_K, DEFAULT_THROTTLER_WINDOW};

use rule::LimitState;
use state::AdaptiveState;

use crate::bulkhead::Priority;
use crate::clock::{nanos, Clock, MonotonicClock};
use crate::error::{ConfigError, Rejected};
use crate::sync::Ordering::Relaxed;

/// The fewest samples in one update window.
const MIN_WINDOW: f64 = 10.0;

/// Builds an [`AdaptiveLimit`]. Defaults (Netflix concurrency-limits'):
/// the Gradient algorithm, initial limit 20, min 20, max 200; 10% of the
/// limit kept for critical callers. A default never contradicts a value
/// the caller set: with only `max_limit(5)`, the minimum and the initial
/// limit become 5; with only `min_limit(300)`, the maximum and the initial
/// limit become 300; an unset bound also makes room for the initial limit
/// set, and an unset initial limit is 20 brought within the bounds.
#[derive(Debug, Clone)]
pub struct Builder<C: Clock = MonotonicClock> {
    clock: C,
    algorithm: Algorithm,
    initial: Option<u32>,
    min: Option<u32>,
    max: Option<u32>,
    critical_fraction: f64,
}

/// An adaptive limit's default initial limit (20, Netflix's).
pub const DEFAULT_INITIAL: u32 = 20;
/// An adaptive limit's default lower bound (20).
pub const DEFAULT_MIN: u32 = 20;
/// An adaptive limit's default upper bound (200).
pub const DEFAULT_MAX: u32 = 200;
/// The share of the limit kept for critical callers by default (10 %).
pub const DEFAULT_CRITICAL_FRACTION: f64 = 0.1;

impl Default for Builder<MonotonicClock> {
    fn default() -> Self {
        Builder::with_clock(MonotonicClock)
    }
}

impl<C: Clock> Builder<C> {
    /// A builder timing calls on `clock`.
    pub fn with_clock(clock: C) -> Self {
        Builder {
            clock,
            algorithm: Algorithm::gradient(),
            initial: None,
            min: None,
            max: None,
            critical_fraction: DEFAULT_CRITICAL_FRACTION,
        }
    }

    /// The limit algorithm.
    pub fn algorithm(mut self, a: Algorithm) -> Self {
        self.algorithm = a;
        self
    }

    /// The starting limit (within `min ..= max`).
    pub fn initial_limit(mut self, n: u32) -> Self {
        self.initial = Some(n);
        self
    }

    /// The limit never goes below `min` (≥ 1) nor above `max`.
    pub fn limits(self, min: u32, max: u32) -> Self {
        self.min_limit(min).max_limit(max)
    }

    /// The limit never goes below `min` (≥ 1; default 20, or the maximum
    /// if that is set lower).
    pub fn min_limit(mut self, min: u32) -> Self {
        self.min = Some(min);
        self
    }

    /// The limit never goes above `max` (default 200, or the minimum if
    /// that is set higher).
    pub fn max_limit(mut self, max: u32) -> Self {
        self.max = Some(max);
        self
    }

    /// The fraction of the limit (in `[0, 1)`) that only critical callers
    /// may use: normal traffic is shed first.
    pub fn critical_fraction(mut self, f: f64) -> Self {
        self.critical_fraction = f;
        self
    }

    /// Validates and builds the limiter.
    pub fn build(self) -> Result<AdaptiveLimit<C>, ConfigError> {
        self.algorithm.validate()?;
        // An unset bound gives way to every value the caller did set.
        let set = |v: Option<u32>| v.into_iter().chain(self.initial);
        let min = self
            .min
            .unwrap_or_else(|| set(self.max).fold(DEFAULT_MIN, u32::min));
        let max = self
            .max
            .unwrap_or_else(|| set(self.min).fold(DEFAULT_MAX, u32::max));
        if min == 0 {
            return Err(ConfigError::new("min_limit", "must be at least 1, got 0"));
        }
        if min > max {
            return Err(ConfigError::new(
                "min_limit",
                format!("{min} is above max_limit {max}"),
            ));
        }
        let initial = self.initial.unwrap_or(DEFAULT_INITIAL.clamp(min, max));
        if !(min..=max).contains(&initial) {
            return Err(ConfigError::new(
                "initial_limit",
                format!("{initial} is outside {min} ..= {max}"),
            ));
        }
        if !(0.0..1.0).contains(&self.critical_fraction) {
            return Err(ConfigError::new(
                "critical_fraction",
                format!("must be in [0, 1), got {}", self.critical_fraction),
            ));
        }
        Ok(AdaptiveLimit {
            state: AdaptiveState::new(initial as f64),
            algorithm: self.algorithm,
            min: min as f64,
            max: max as f64,
            critical_fraction: self.critical_fraction,
            clock: self.clock,
        })
    }
}

/// A plain copy of an adaptive limit's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// The current limit.
    pub limit: u64,
    /// Permits out now.
    pub in_flight: u64,
    /// Calls admitted.
    pub admitted: u64,
    /// Calls shed.
    pub shed: u64,
    /// Calls reported as dropped.
    pub drops: u64,
    /// Samples not applied because another thread was updating the limit.
    pub skipped_samples: u64,
    /// The Gradient algorithm's baseline latency (zero for AIMD).
    pub baseline_latency: Duration,
}

/// An adaptive concurrency limit. Thread-safe.
///
/// Taking a permit is lock-free. Reporting a sample updates the limit under
/// a one-word lock that the reporting thread only *tries*: if another
/// thread is updating, the sample is skipped (counted in
/// `skipped_samples`), so no caller ever waits on the limit's bookkeeping.
/// Its state is a block of plain atomic words (no pointer, no lock of the
/// process's).
pub struct AdaptiveLimit<C: Clock = MonotonicClock> {
    state: AdaptiveState,
    algorithm: Algorithm,
    min: f64,
    max: f64,
    critical_fraction: f64,
    clock: C,
}

impl AdaptiveLimit<MonotonicClock> {
    /// A builder with the defaults.
    pub fn builder() -> Builder<MonotonicClock> {
        Builder::default()
    }
}

impl<C: Clock> AdaptiveLimit<C> {
    /// Takes a permit if the limit allows `priority` one now; otherwise
    /// `Rejected::Shed`. Normal callers may use the limit less the critical
    /// fraction; critical callers the whole limit.
    pub fn try_acquire(&self, priority: Priority) -> Result<ShedPermit<'_, C>, Rejected> {
        let s = &self.state;
        let limit = s.limit.load(Relaxed);
        let cap = match priority {
            Priority::Critical => limit,
            Priority::Normal => {
                let reserved = (limit as f64 * self.critical_fraction).ceil() as u64;
                limit.saturating_sub(reserved).max(1)
            }
        };
        // Relaxed: the count guards no data; it only bounds concurrency.
        let taken = s
            .inflight
            .fetch_update(Relaxed, Relaxed, |n| (n < cap).then_some(n + 1));
        match taken {
            Ok(before) => {
                s.admitted.fetch_add(1, Relaxed);
                Ok(ShedPermit {
                    limit: self,
                    start: self.clock.now(),
                    in_flight: before + 1,
                })
            }
            Err(_) => {
                s.shed.fetch_add(1, Relaxed);
                Err(Rejected::Shed)
            }
        }
    }

    /// The current limit.
    pub fn limit(&self) -> u64 {
        self.state.limit.load(Relaxed)
    }

    /// The counters and state.
    pub fn snapshot(&self) -> Snapshot {
        let s = &self.state;
        Snapshot {
            limit: self.limit(),
            in_flight: s.inflight.load(Relaxed),
            admitted: s.admitted.load(Relaxed),
            shed: s.shed.load(Relaxed),
            drops: s.drops.load(Relaxed),
            skipped_samples: s.skipped_samples.load(Relaxed),
            baseline_latency: Duration::from_nanos(s.sampler.baseline() as u64),
        }
    }

    fn release(&self, sample: Option<(u64, u64, bool)>) {
        let s = &self.state;
        s.inflight.fetch_sub(1, Relaxed);
        let Some((latency, in_flight, dropped)) = sample else {
            return;
        };
        if dropped {
            s.drops.fetch_add(1, Relaxed);
        }
        let Some(held) = s.sampler.try_hold() else {
            s.skipped_samples.fetch_add(1, Relaxed);
            return;
        };
        let mut st = held.load();
        self.sample(&mut st, latency, in_flight, dropped);
        held.store(&st);
    }

    /// Adds one sample to the window in `st`; at the window's end, one
    /// step of the algorithm, published as the new limit.
    fn sample(&self, st: &mut LimitState, latency: u64, in_flight: u64, dropped: bool) {
        st.window_samples += 1;
        st.window_latency += latency as f64;
        st.window_in_flight = st.window_in_flight.max(in_flight as f64);
        st.window_dropped |= dropped;
        // One update per window of about one limit's worth of calls (at
        // least 10): roughly once per round trip, as Netflix's windowed
        // limits and TCP do, so one burst of queued replies counts once.
        if (st.window_samples as f64) < st.estimate.max(MIN_WINDOW) {
            return;
        }
        let mean = st.window_latency / st.window_samples as f64;
        let (peak, dropped) = (st.window_in_flight, st.window_dropped);
        st.window_samples = 0;
        st.window_latency = 0.0;
        st.window_in_flight = 0.0;
        st.window_dropped = false;
        let new = self.update(st, mean, peak, dropped);
        st.estimate = new;
        self.state.limit.store(new.round() as u64, Relaxed);
    }

    /// One step of the limit algorithm: the new (unrounded) limit.
    fn update(&self, st: &mut LimitState, latency: f64, in_flight: f64, dropped: bool) -> f64 {
        rule::step(&self.algorithm, st, latency, in_flight, dropped).clamp(self.min, self.max)
    }
}

impl<C: Clock> fmt::Debug for AdaptiveLimit<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimit")
            .field("algorithm", &self.algorithm)
            .field("limit", &self.limit())
            .finish_non_exhaustive()
    }
}

/// A permit from an [`AdaptiveLimit`]. Report how the call went with
/// [`success`](Self::success) or [`dropped`](Self::dropped); dropped
/// unreported, the permit is returned without a sample.
#[must_use = "report the call's outcome on the permit"]
pub struct ShedPermit<'a, C: Clock = MonotonicClock> {
    limit: &'a AdaptiveLimit<C>,
    start: u64,
    in_flight: u64,
}

impl<C: Clock> ShedPermit<'_, C> {
    /// The call completed; its latency is measured from the permit.
    pub fn success(self) {
        let latency = self.limit.clock.now().saturating_sub(self.start);
        self.finish(latency, false);
    }

    /// The call completed in `latency` (measured by the caller).
    pub fn success_with_latency(self, latency: Duration) {
        self.finish(nanos(latency), false);
    }

    /// The call was dropped: it timed out or the dependency refused it for
    /// overload. The limit backs off.
    pub fn dropped(self) {
        let latency = self.limit.clock.now().saturating_sub(self.start);
        self.finish(latency, true);
    }

    fn finish(self, latency: u64, dropped: bool) {
        let (limit, in_flight) = (self.limit, self.in_flight);
        std::mem::forget(self);
        limit.release(Some((latency, in_flight, dropped)));
    }
}

/// How a call under an [`AdaptiveLimit`] went, for [`AdaptiveLimit::record_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedOutcome {
    /// Completed; latency measured from the permit.
    Success,
    /// Completed in this latency (measured by the caller).
    SuccessWithLatency(Duration),
    /// Dropped (timed out, refused for overload): the limit backs off.
    Dropped,
    /// No sample: the permit is returned and nothing is learnt.
    Ignore,
}

/// A [`ShedPermit`] detached from its borrow, for holders that cannot keep
/// a borrowed guard (the bindings): plain data, to be handed back exactly
/// once with [`AdaptiveLimit::record_token`]. Dropped unrecorded, its
/// in-flight slot stays taken.
#[derive(Debug)]
#[must_use = "hand the token back with AdaptiveLimit::record_token"]
pub struct ShedToken {
    start: u64,
    in_flight: u64,
}

impl<C: Clock> ShedPermit<'_, C> {
    /// Detaches the permit (see [`ShedToken`]).
    pub fn into_token(self) -> ShedToken {
        let t = ShedToken {
            start: self.start,
            in_flight: self.in_flight,
        };
        std::mem::forget(self);
        t
    }
}

impl<C: Clock> AdaptiveLimit<C> {
    /// Returns a detached permit with its outcome, as the permit's own
    /// methods would.
    pub fn record_token(&self, token: ShedToken, outcome: ShedOutcome) {
        let measured = || self.clock.now().saturating_sub(token.start);
        let sample = match outcome {
            ShedOutcome::Success => Some((measured(), token.in_flight, false)),
            ShedOutcome::SuccessWithLatency(d) => Some((nanos(d), token.in_flight, false)),
            ShedOutcome::Dropped => Some((measured(), token.in_flight, true)),
            ShedOutcome::Ignore => None,
        };
        self.release(sample);
    }
}

impl<C: Clock> Drop for ShedPermit<'_, C> {
    fn drop(&mut self) {
        self.limit.release(None);
    }
}

impl<C: Clock> fmt::Debug for ShedPermit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedPermit")
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;

#[cfg(all(test, failwell_loom))]
mod loom_models;
