//! `MetricsRegistry`: Prometheus text for every registered object.

use failwell::metrics;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::breaker::PyBreaker;
use crate::bulkhead::PyBulkhead;
use crate::convert::config_error;
use crate::deadline::PyTimeoutPool;
use crate::degrade::PyStaleCache;
use crate::fleet::PyFleet;
use crate::health::PyHealth;
use crate::rate_limit::PyRateLimiter;
use crate::retry::PyRetry;
use crate::shed::PyAdaptiveLimit;

/// The native registry; `failwell.MetricsRegistry` re-exports it.
#[pyclass(module = "failwell._native", name = "MetricsRegistry", frozen)]
#[derive(Debug, Default)]
pub struct PyMetrics {
    inner: metrics::MetricsRegistry,
}

#[pymethods]
impl PyMetrics {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Registers `obj` (a CircuitBreaker, Bulkhead, RateLimiter, Retry,
    /// AdaptiveLimit, TimeoutPool, StaleCache, HealthRegistry or Fleet)
    /// under the label `instance="name"`; a fleet breaker or limiter also
    /// as `failwell_fleet_*`.
    /// A name already used for the same kind is a `ValueError`.
    fn register(&self, name: String, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let r = if let Ok(b) = obj.cast::<PyBreaker>() {
            failwell_fleet::metrics::register_any_breaker(&self.inner, name, &b.get().inner)
        } else if let Ok(b) = obj.cast::<PyBulkhead>() {
            self.inner.register_bulkhead(name, b.get().inner.clone())
        } else if let Ok(l) = obj.cast::<PyRateLimiter>() {
            failwell_fleet::metrics::register_any_rate_limiter(&self.inner, name, &l.get().inner)
        } else if let Ok(f) = obj.cast::<PyFleet>() {
            failwell_fleet::metrics::register_fleet(&self.inner, name, f.get().fleet())
        } else if let Ok(r) = obj.cast::<PyRetry>() {
            self.inner.register_retry(name, r.get().inner.clone())
        } else if let Ok(l) = obj.cast::<PyAdaptiveLimit>() {
            self.inner
                .register_adaptive_limit(name, l.get().inner.clone())
        } else if let Ok(p) = obj.cast::<PyTimeoutPool>() {
            self.inner
                .register_timeout_pool(name, p.get().inner.clone())
        } else if let Ok(c) = obj.cast::<PyStaleCache>() {
            c.get().register_metrics(&self.inner, name)
        } else if let Ok(h) = obj.cast::<PyHealth>() {
            match &h.get().inner {
                Some(reg) => self.inner.register_health(name, reg.clone()),
                None => return Err(PyTypeError::new_err("health registry already closed")),
            }
        } else {
            return Err(PyTypeError::new_err(format!(
                "obj must be a CircuitBreaker, Bulkhead, RateLimiter, Retry, AdaptiveLimit, TimeoutPool, StaleCache, HealthRegistry or Fleet, got {}",
                obj.get_type().name()?
            )));
        };
        r.map_err(|e| config_error(e, &[("instance", "name")]))
    }

    /// Everything registered, in the Prometheus text format (0.0.4).
    fn render_prometheus(&self, py: Python<'_>) -> String {
        py.detach(|| self.inner.render_prometheus())
    }
}
