//! The breaker's rule: pure functions of counts, settings and time, with
//! no atomics and no clock. The handle (`mod.rs`, `record.rs`) reads the
//! state, asks these functions, and applies the answer in one
//! compare-and-swap. Each is property-tested against the reference model
//! (`tests/model.rs`) on its own, besides the whole breaker.

use std::time::Duration;

use super::State;

/// Whether `consecutive` failures in a row reach the policy's `limit`.
#[inline]
pub(crate) fn consecutive_trips(consecutive: i32, limit: u64) -> bool {
    consecutive as i64 >= limit as i64
}

/// Whether a closed window of `calls` calls with `failures` failures and
/// `slow` slow calls trips a rate policy: no verdict before
/// `minimum_calls`; then a policy that is on (`Some(threshold)`) trips when
/// its count reaches `threshold × calls`.
#[inline]
pub(crate) fn rates_trip(
    calls: u64,
    failures: u64,
    slow: u64,
    minimum_calls: u64,
    failure_rate: Option<f64>,
    slow_call_rate: Option<f64>,
) -> bool {
    if calls < minimum_calls {
        return false;
    }
    let over =
        |n: u64, threshold: Option<f64>| threshold.is_some_and(|t| n as f64 >= t * calls as f64);
    over(failures, failure_rate) || over(slow, slow_call_rate)
}

/// The half-open verdict once probes have reported `successes`,
/// `failures` and `slow` (of `probes` allowed): `Some(Open)`,
/// `Some(Closed)` or `None` (wait for more).
///
/// Without a rate policy (consecutive failures only) one failure reopens
/// and `probes` successes close. With one, the breaker reopens as soon as
/// the probes' rate can no longer end below a threshold, even if every
/// remaining probe succeeds, and closes once every probe has reported.
pub(crate) fn half_open_verdict(
    successes: u32,
    failures: u32,
    slow: u32,
    probes: u32,
    rate_policy: bool,
    failure_rate: Option<f64>,
    slow_call_rate: Option<f64>,
) -> Option<State> {
    if !rate_policy {
        return if failures > 0 {
            Some(State::Open)
        } else if successes >= probes {
            Some(State::Closed)
        } else {
            None
        };
    }
    let decided = |n: u32, t: Option<f64>| t.is_some_and(|t| n as f64 >= t * probes as f64);
    if decided(failures, failure_rate) || decided(slow, slow_call_rate) {
        Some(State::Open)
    } else if successes + failures >= probes {
        Some(State::Closed)
    } else {
        None
    }
}

/// How many openings in a row a transition from `from` to Open makes,
/// after `trips` before it: reopening from half-open grows the count,
/// opening from anywhere else starts it at 1.
#[inline]
pub(crate) fn trips_after(from: State, trips: u32) -> u32 {
    if from == State::HalfOpen {
        trips.saturating_add(1)
    } else {
        1
    }
}

/// How long the `trips`-th opening in a row lasts, in nanoseconds:
/// `open_for` the first time, then `open_for × multiplier^(trips-1)`, never
/// more than `open_for_max` (and never less than `open_for`).
pub(crate) fn open_duration(open_for: u64, multiplier: f64, open_for_max: u64, trips: u32) -> u64 {
    if multiplier == 1.0 || trips <= 1 {
        return open_for.min(open_for_max.max(open_for));
    }
    let grown = open_for as f64 * multiplier.powi((trips - 1).min(1 << 16) as i32);
    if grown >= open_for_max as f64 {
        open_for_max
    } else {
        grown as u64
    }
}

/// While every half-open probe slot is taken: when to come back, or `None`
/// once the half-open begun at `since` has waited `max_wait` for a verdict
/// (the caller then reopens it, presuming the probes hung). A verdict may
/// come any moment (the probes' calls end) or only at that bound (they
/// hang), so the hint is how long the probes have run so far — a call
/// about as long again is likely to find a verdict — at least 1 ms and at
/// most the time left to the bound (never the whole bound at once, 60 s by
/// default, for a half-open that may close in milliseconds).
pub(crate) fn busy_half_open_hint(since: u64, now: u64, max_wait: u64) -> Option<Duration> {
    let limit = since.saturating_add(max_wait);
    if now >= limit {
        return None;
    }
    let left = limit - now;
    let running = now.saturating_sub(since);
    Some(Duration::from_nanos(running.max(1_000_000).min(left)))
}
