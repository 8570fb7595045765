//! Metrics: a registry of named instances that renders the Prometheus text
//! exposition format, and (feature `metrics`) mirrors into the `metrics`
//! crate facade.
//!
//! Every primitive already counts what it does in its own atomics and hands
//! out a plain snapshot; the registry only reads snapshots when asked to
//! render, so nothing on a hot path formats or allocates.
//!
//! Names are `failwell_<primitive>_<what>`, with an `instance` label (the
//! name given at registration). They cover the usual monitoring set: requests (`failwell_breaker_calls_total`), failures
//! (`failwell_breaker_failures_total`), error rate
//! (`failwell_breaker_failure_rate`), circuit-open count
//! (`failwell_breaker_opened_total`), retries (`failwell_retry_retries_total`)
//! and threads (`failwell_process_threads`).
//!
//! ```
//! use std::sync::Arc;
//! use failwell::breaker::CircuitBreaker;
//! use failwell::metrics::MetricsRegistry;
//!
//! let db = Arc::new(CircuitBreaker::builder().build()?);
//! let metrics = MetricsRegistry::new();
//! metrics.register_breaker("db", db.clone())?;
//! let _ = db.call(|| Ok::<_, ()>(()));
//! let text = metrics.render_prometheus();
//! assert!(text.contains("failwell_breaker_calls_total{instance=\"db\"} 1"));
//! # Ok::<(), failwell::ConfigError>(())
//! ```

use std::fmt;
use std::hash::Hash;

use crate::breaker::{CircuitBreaker, State};
use crate::bulkhead::Bulkhead;
use crate::clock::{Clock, Sleeper};
use crate::deadline::TimeoutPool;
use crate::degrade::StaleCache;
use crate::error::ConfigError;
use crate::health::{HealthRegistry, Status};
use crate::rate_limit::RateLimiter;
use crate::retry::Retry;
use crate::shed::AdaptiveLimit;
// The user's `Arc` (std's, also in the loom build): the handles registered are theirs.
use crate::sync::{CoreRwLock, UserArc as Arc};
use crate::watchdog::process_threads;

mod exposition;

pub use exposition::{Exposition, Family, Kind};

type Collect = Box<dyn Fn(&mut Exposition, &str) + Send + Sync>;

/// A registry of named instances. Thread-safe; registration takes a lock,
/// rendering reads each instance's snapshot.
pub struct MetricsRegistry {
    entries: CoreRwLock<Vec<(String, &'static str, Collect)>>,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsRegistry {
    /// An empty registry (the process thread gauge is always rendered).
    pub fn new() -> Self {
        MetricsRegistry {
            entries: CoreRwLock::new(Vec::new()),
        }
    }

    fn add(&self, instance: String, kind: &'static str, f: Collect) -> Result<(), ConfigError> {
        if instance.is_empty() {
            return Err(ConfigError::new("instance", "needs a name"));
        }
        let mut e = self.entries.write();
        if e.iter().any(|(n, k, _)| *n == instance && *k == kind) {
            return Err(ConfigError::new(
                "instance",
                format!("a {kind} named {instance:?} is already registered"),
            ));
        }
        e.push((instance, kind, f));
        Ok(())
    }

    /// Registers a source this registry has no method for (another
    /// crate's primitive: `failwell-fleet`'s limiters, say): each
    /// collection calls `collect(exposition, instance)`, which adds its
    /// values with [`Exposition::counter`] and [`Exposition::gauge`].
    /// `kind` names the source for the duplicate check (one instance name
    /// per kind). Errors: an empty or duplicate instance name.
    pub fn register_source(
        &self,
        instance: impl Into<String>,
        kind: &'static str,
        collect: impl Fn(&mut Exposition, &str) + Send + Sync + 'static,
    ) -> Result<(), ConfigError> {
        self.add(instance.into(), kind, Box::new(collect))
    }

    /// Registers a circuit breaker.
    pub fn register_breaker<C: Clock>(
        &self,
        instance: impl Into<String>,
        b: Arc<CircuitBreaker<C>>,
    ) -> Result<(), ConfigError> {
        self.add(
            instance.into(),
            "breaker",
            Box::new(move |x, i| {
                let s = b.snapshot();
                x.counter(
                    "failwell_breaker_calls_total",
                    "Calls whose outcome was recorded.",
                    i,
                    s.calls,
                );
                x.counter(
                    "failwell_breaker_successes_total",
                    "Calls recorded as successes.",
                    i,
                    s.successes,
                );
                x.counter(
                    "failwell_breaker_failures_total",
                    "Calls recorded as failures.",
                    i,
                    s.failures,
                );
                x.counter(
                    "failwell_breaker_slow_calls_total",
                    "Calls at least as slow as the slow-call threshold.",
                    i,
                    s.slow_calls,
                );
                x.counter(
                    "failwell_breaker_rejected_total",
                    "Calls refused while open or half-open and full.",
                    i,
                    s.rejected,
                );
                x.counter(
                    "failwell_breaker_ignored_total",
                    "Permits dropped unrecorded or recorded as ignored.",
                    i,
                    s.ignored,
                );
                x.counter(
                    "failwell_breaker_transitions_total",
                    "State transitions.",
                    i,
                    s.transitions,
                );
                x.counter(
                    "failwell_breaker_opened_total",
                    "Times the breaker opened (circuit-open count).",
                    i,
                    s.opened,
                );
                x.gauge(
                    "failwell_breaker_failure_rate",
                    "Failure rate of the current window (error rate).",
                    i,
                    s.failure_rate,
                );
                x.gauge(
                    "failwell_breaker_slow_call_rate",
                    "Slow-call rate of the current window.",
                    i,
                    s.slow_call_rate,
                );
                for st in [
                    State::Closed,
                    State::Open,
                    State::HalfOpen,
                    State::ForcedOpen,
                    State::Disabled,
                    State::MetricsOnly,
                ] {
                    x.add(
                        "failwell_breaker_state",
                        "1 for the breaker's current state, 0 for the others.",
                        Kind::Gauge,
                        vec![
                            ("instance", i.to_string()),
                            ("state", st.as_str().to_string()),
                        ],
                        (s.state == st) as u8 as f64,
                    );
                }
            }),
        )
    }

    /// Registers a bulkhead.
    pub fn register_bulkhead(
        &self,
        instance: impl Into<String>,
        b: Arc<Bulkhead>,
    ) -> Result<(), ConfigError> {
        self.add(
            instance.into(),
            "bulkhead",
            Box::new(move |x, i| {
                let s = b.snapshot();
                x.gauge(
                    "failwell_bulkhead_max_concurrent",
                    "The concurrency limit.",
                    i,
                    s.max_concurrent as f64,
                );
                x.gauge(
                    "failwell_bulkhead_in_use",
                    "Permits out now.",
                    i,
                    s.in_use as f64,
                );
                x.gauge(
                    "failwell_bulkhead_available",
                    "Permits free now.",
                    i,
                    s.available as f64,
                );
                x.gauge(
                    "failwell_bulkhead_waiting",
                    "Callers waiting for a permit.",
                    i,
                    s.waiting as f64,
                );
                x.gauge(
                    "failwell_bulkhead_peak",
                    "Most permits ever out at once.",
                    i,
                    s.peak as f64,
                );
                x.counter(
                    "failwell_bulkhead_rejected_total",
                    "Calls refused for want of a permit.",
                    i,
                    s.rejected,
                );
            }),
        )
    }

    /// Registers a rate limiter.
    pub fn register_rate_limiter<C: Clock>(
        &self,
        instance: impl Into<String>,
        l: Arc<RateLimiter<C>>,
    ) -> Result<(), ConfigError> {
        self.add(
            instance.into(),
            "rate_limiter",
            Box::new(move |x, i| {
                let s = l.snapshot();
                x.counter(
                    "failwell_rate_limiter_admitted_total",
                    "Requests admitted (by cost).",
                    i,
                    s.admitted,
                );
                x.counter(
                    "failwell_rate_limiter_rejected_total",
                    "Requests refused (by cost).",
                    i,
                    s.rejected,
                );
            }),
        )
    }

    /// Registers a retry policy.
    pub fn register_retry<C: Clock + Sleeper>(
        &self,
        instance: impl Into<String>,
        r: Arc<Retry<C>>,
    ) -> Result<(), ConfigError> {
        self.add(
            instance.into(),
            "retry",
            Box::new(move |x, i| {
                let s = r.snapshot();
                x.counter(
                    "failwell_retry_calls_total",
                    "Calls made through the policy.",
                    i,
                    s.calls,
                );
                x.counter(
                    "failwell_retry_attempts_total",
                    "Attempts, first ones included.",
                    i,
                    s.attempts,
                );
                x.counter(
                    "failwell_retry_retries_total",
                    "Retries (attempts after the first).",
                    i,
                    s.retries,
                );
                x.counter(
                    "failwell_retry_budget_refusals_total",
                    "Retries refused by the retry budget.",
                    i,
                    s.budget_refusals,
                );
            }),
        )
    }

    /// Registers an adaptive concurrency limit.
    pub fn register_adaptive_limit<C: Clock>(
        &self,
        instance: impl Into<String>,
        l: Arc<AdaptiveLimit<C>>,
    ) -> Result<(), ConfigError> {
        self.add(
            instance.into(),
            "adaptive_limit",
            Box::new(move |x, i| {
                let s = l.snapshot();
                x.gauge(
                    "failwell_adaptive_limit",
                    "The current concurrency limit.",
                    i,
                    s.limit as f64,
                );
                x.gauge(
                    "failwell_adaptive_in_flight",
                    "Permits out now.",
                    i,
                    s.in_flight as f64,
                );
                x.counter("failwell_adaptive_shed_total", "Calls shed.", i, s.shed);
                x.counter(
                    "failwell_adaptive_drops_total",
                    "Calls reported as dropped.",
                    i,
                    s.drops,
                );
            }),
        )
    }

    /// Registers a timed-call pool.
    pub fn register_timeout_pool(
        &self,
        instance: impl Into<String>,
        p: TimeoutPool,
    ) -> Result<(), ConfigError> {
        self.add(
            instance.into(),
            "timeout_pool",
            Box::new(move |x, i| {
                let s = p.snapshot();
                x.gauge(
                    "failwell_timeout_pool_busy",
                    "Calls running or queued.",
                    i,
                    s.busy as f64,
                );
                x.gauge(
                    "failwell_timeout_pool_abandoned_running",
                    "Abandoned calls still running (a leak if it grows).",
                    i,
                    s.abandoned_running as f64,
                );
                x.counter(
                    "failwell_timeout_pool_timed_out_total",
                    "Calls abandoned at their deadline.",
                    i,
                    s.timed_out,
                );
                x.counter(
                    "failwell_timeout_pool_rejected_total",
                    "Calls refused with every worker busy.",
                    i,
                    s.rejected,
                );
            }),
        )
    }

    /// Registers a stale-while-error cache: fresh values stored, stale
    /// values served in place of a failed fetch (the signal that a
    /// dependency is down and users see old data), misses, and entries.
    pub fn register_stale_cache<K, V, C>(
        &self,
        instance: impl Into<String>,
        cache: Arc<StaleCache<K, V, C>>,
    ) -> Result<(), ConfigError>
    where
        K: Hash + Eq + Clone + Send + 'static,
        V: Clone + Send + 'static,
        C: Clock + Send + Sync + 'static,
    {
        self.add(
            instance.into(),
            "stale_cache",
            Box::new(move |x, i| {
                let s = cache.snapshot();
                x.counter(
                    "failwell_stale_cache_fresh_total",
                    "Fresh values fetched and cached.",
                    i,
                    s.fresh,
                );
                x.counter(
                    "failwell_stale_cache_stale_total",
                    "Stale values served because the fetch failed.",
                    i,
                    s.stale,
                );
                x.counter(
                    "failwell_stale_cache_misses_total",
                    "Failed fetches with no value young enough to serve.",
                    i,
                    s.misses,
                );
                x.gauge(
                    "failwell_stale_cache_entries",
                    "Keys cached now.",
                    i,
                    s.entries as f64,
                );
            }),
        )
    }

    /// Registers a health registry: its aggregate and each check, as 0
    /// (healthy), 1 (degraded) or 2 (unhealthy).
    pub fn register_health(
        &self,
        instance: impl Into<String>,
        h: Arc<HealthRegistry>,
    ) -> Result<(), ConfigError> {
        self.add(
            instance.into(),
            "health",
            Box::new(move |x, i| {
                let r = h.report();
                let code = |s: Status| s as u8 as f64;
                x.gauge(
                    "failwell_health_status",
                    "Aggregate health: 0 healthy, 1 degraded, 2 unhealthy.",
                    i,
                    code(r.status),
                );
                for c in &r.checks {
                    x.add(
                        "failwell_health_check_status",
                        "One check's health: 0 healthy, 1 degraded, 2 unhealthy.",
                        Kind::Gauge,
                        vec![("instance", i.to_string()), ("check", c.name.clone())],
                        code(c.status),
                    );
                }
            }),
        )
    }

    /// Reads every registered instance (and the process's thread count).
    pub fn collect(&self) -> Exposition {
        let mut x = Exposition::default();
        if let Some(t) = process_threads() {
            x.add(
                "failwell_process_threads",
                "Threads in this process.",
                Kind::Gauge,
                Vec::new(),
                t as f64,
            );
        }
        for (name, _, f) in self.entries.read().iter() {
            f(&mut x, name);
        }
        x
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        self.collect().render()
    }

    /// Pushes every current value to the `metrics` crate facade (counters
    /// as absolute values, gauges as set values), with the same names and
    /// labels. Call it periodically, or before the recorder scrapes.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn report_to_metrics(&self) {
        for (name, fam) in self.collect().families {
            for (labels, value) in fam.samples {
                let labels: Vec<metrics::Label> = labels
                    .into_iter()
                    .map(|(k, v)| metrics::Label::new(k, v))
                    .collect();
                match fam.kind {
                    Kind::Counter => metrics::counter!(name, labels).absolute(value as u64),
                    Kind::Gauge => metrics::gauge!(name, labels).set(value),
                }
            }
        }
    }
}

impl fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self
            .entries
            .read()
            .iter()
            .map(|(n, k, _)| format!("{k}:{n}"))
            .collect();
        f.debug_struct("MetricsRegistry")
            .field("instances", &names)
            .finish()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
