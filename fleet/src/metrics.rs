//! Prometheus metrics of the fleet's primitives, through failwell's
//! [`MetricsRegistry`]: Redis requests, failures and latency, each
//! limiter's decisions and fallbacks, and the leased limiter's tokens and
//! instance count.

use std::sync::Arc;

use failwell::metrics::{Kind, MetricsRegistry};
use failwell::ConfigError;

use crate::{AnyBreaker, AnyRateLimiter, ExactRateLimiter, Fleet, FleetBreaker, LeasedRateLimiter};

/// Registers any rate limiter as `instance`: a local one with the
/// registry's own rate-limiter metrics, a fleet one as
/// [`register_leased`] or [`register_exact`] does (what the bindings'
/// single limiter type needs).
pub fn register_any_rate_limiter(
    registry: &MetricsRegistry,
    instance: impl Into<String>,
    limiter: &AnyRateLimiter,
) -> Result<(), ConfigError> {
    match limiter {
        AnyRateLimiter::Local(l) => registry.register_rate_limiter(instance, Arc::clone(l)),
        AnyRateLimiter::Leased(l) => register_leased(registry, instance, Arc::clone(l)),
        AnyRateLimiter::Exact(l) => register_exact(registry, instance, Arc::clone(l)),
    }
}

/// Registers any breaker as `instance`: its calls and state with the
/// registry's own breaker metrics, and a fleet breaker's syncs as
/// [`register_breaker`] does too.
pub fn register_any_breaker(
    registry: &MetricsRegistry,
    instance: impl Into<String>,
    breaker: &AnyBreaker,
) -> Result<(), ConfigError> {
    let instance = instance.into();
    match breaker.as_fleet() {
        None => registry.register_breaker(instance, breaker.arc()),
        Some(f) => {
            registry.register_breaker(instance.clone(), breaker.arc())?;
            register_breaker(registry, instance, Arc::clone(f))
        }
    }
}

/// Registers `fleet`'s Redis requests as `instance`:
/// `failwell_fleet_redis_requests_total`, `_failures_total` (unreachable,
/// timed out, dropped), `_refused_total` (not sent: failwell's breaker
/// around Redis open), `_seconds_total` (the time they took; divide by the
/// requests for the mean round trip) and `failwell_fleet_redis_guard_open`
/// (1 while that breaker refuses).
pub fn register_fleet(
    registry: &MetricsRegistry,
    instance: impl Into<String>,
    fleet: &Fleet,
) -> Result<(), ConfigError> {
    let fleet = fleet.clone();
    registry.register_source(instance, "fleet", move |x, i| {
        let s = fleet.snapshot();
        x.counter(
            "failwell_fleet_redis_requests_total",
            "Requests sent to Redis.",
            i,
            s.requests,
        );
        x.counter(
            "failwell_fleet_redis_failures_total",
            "Requests to Redis that failed (unreachable, timed out, dropped).",
            i,
            s.failures,
        );
        x.counter(
            "failwell_fleet_redis_refused_total",
            "Requests not sent: failwell's breaker around Redis was open.",
            i,
            s.refused,
        );
        x.add(
            "failwell_fleet_redis_seconds_total",
            "Time the requests to Redis took, in all.",
            Kind::Counter,
            vec![("instance", i.to_string())],
            s.latency_ns as f64 / 1e9,
        );
        let open = fleet.guard_state() != failwell::breaker::State::Closed;
        x.gauge(
            "failwell_fleet_redis_guard_open",
            "1 while failwell's breaker around Redis refuses requests.",
            i,
            open as u8 as f64,
        );
    })
}

/// Registers a leased fleet limiter as `instance`:
/// `failwell_fleet_limiter_admitted_total`, `_rejected_total`,
/// `_fallbacks_total` (decided without Redis), `_leased_tokens_total`,
/// `_leases_total`, `_returned_tokens_total`, and the gauges
/// `_last_lease_tokens`, `_held_tokens` and `_instances` (live
/// instances, as last counted).
pub fn register_leased(
    registry: &MetricsRegistry,
    instance: impl Into<String>,
    limiter: Arc<LeasedRateLimiter>,
) -> Result<(), ConfigError> {
    registry.register_source(instance, "fleet_rate_limiter", move |x, i| {
        let s = limiter.snapshot();
        decisions(x, i, s.admitted, s.rejected, s.fallbacks);
        x.counter(
            "failwell_fleet_limiter_leased_tokens_total",
            "Tokens leased from the fleet's bucket.",
            i,
            s.leased,
        );
        x.counter(
            "failwell_fleet_limiter_leases_total",
            "Lease requests Redis answered (leased tokens / leases: the mean lease size).",
            i,
            s.leases,
        );
        x.gauge(
            "failwell_fleet_limiter_last_lease_tokens",
            "Tokens the last lease granted.",
            i,
            s.last_lease as f64,
        );
        x.counter(
            "failwell_fleet_limiter_returned_tokens_total",
            "Tokens given back to the fleet's bucket.",
            i,
            s.returned,
        );
        x.gauge(
            "failwell_fleet_limiter_held_tokens",
            "Leased tokens held now.",
            i,
            s.held as f64,
        );
        x.gauge(
            "failwell_fleet_limiter_instances",
            "Live instances sharing the limit, as last counted.",
            i,
            s.instances as f64,
        );
    })
}

/// Registers an exact-mode fleet limiter as `instance`: its admitted,
/// rejected and fallback counts (as for [`register_leased`]).
pub fn register_exact(
    registry: &MetricsRegistry,
    instance: impl Into<String>,
    limiter: Arc<ExactRateLimiter>,
) -> Result<(), ConfigError> {
    registry.register_source(instance, "fleet_rate_limiter", move |x, i| {
        let s = limiter.snapshot();
        decisions(x, i, s.admitted, s.rejected, s.fallbacks);
    })
}

/// Registers a fleet breaker's syncs as `instance`:
/// `failwell_fleet_breaker_syncs_total`, `_failed_syncs_total` (Redis
/// unreachable or slow: the breaker decided on its own), `_votes_total`,
/// `_opens_applied_total`, `_closes_applied_total`,
/// `_probes_owned_total`, and the gauges `_fleet_open` and
/// `_fleet_generation` (as last seen) and `_degraded` (the
/// `on_unavailable` fallback holds it). The local breaker's own calls and
/// state are registered with the registry's breaker functions, as for any
/// breaker ([`FleetBreaker::breaker`]).
pub fn register_breaker(
    registry: &MetricsRegistry,
    instance: impl Into<String>,
    breaker: Arc<FleetBreaker>,
) -> Result<(), ConfigError> {
    registry.register_source(instance, "fleet_breaker", move |x, i| {
        let s = breaker.fleet_snapshot();
        let counters = [
            (
                "failwell_fleet_breaker_syncs_total",
                "Syncs with the fleet's verdict that reached Redis.",
                s.syncs,
            ),
            (
                "failwell_fleet_breaker_failed_syncs_total",
                "Syncs that failed (Redis unreachable or slow): the breaker decided on its own.",
                s.failed_syncs,
            ),
            (
                "failwell_fleet_breaker_votes_total",
                "Local trips reported to the fleet.",
                s.votes,
            ),
            (
                "failwell_fleet_breaker_opens_applied_total",
                "Fleet openings applied to the local breaker.",
                s.opens_applied,
            ),
            (
                "failwell_fleet_breaker_closes_applied_total",
                "Fleet closings applied to the local breaker.",
                s.closes_applied,
            ),
            (
                "failwell_fleet_breaker_probes_owned_total",
                "Half-opens whose probes this instance ran.",
                s.probes_owned,
            ),
        ];
        for (name, help, v) in counters {
            x.counter(name, help, i, v);
        }
        x.gauge(
            "failwell_fleet_breaker_fleet_open",
            "1 while the fleet's verdict is open, as last seen.",
            i,
            s.fleet_open as u8 as f64,
        );
        x.gauge(
            "failwell_fleet_breaker_degraded",
            "1 while Redis is unreachable and the breaker fails open or closed as configured.",
            i,
            s.degraded as u8 as f64,
        );
        x.gauge(
            "failwell_fleet_breaker_fleet_generation",
            "The fleet verdict's generation, as last seen.",
            i,
            s.fleet_generation as f64,
        );
    })
}

fn decisions(
    x: &mut failwell::metrics::Exposition,
    i: &str,
    admitted: u64,
    rejected: u64,
    fallbacks: u64,
) {
    x.counter(
        "failwell_fleet_limiter_admitted_total",
        "Requests admitted (by cost).",
        i,
        admitted,
    );
    x.counter(
        "failwell_fleet_limiter_rejected_total",
        "Requests refused (by cost).",
        i,
        rejected,
    );
    x.counter(
        "failwell_fleet_limiter_fallbacks_total",
        "Decisions made without Redis (unreachable or slow).",
        i,
        fallbacks,
    );
}
