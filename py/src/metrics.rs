//! `MetricsRegistry`: Prometheus text for every registered object.

use failwell::metrics;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::breaker::PyBreaker;
use crate::bulkhead::PyBulkhead;
use crate::convert::config_error;
use crate::deadline::PyTimeoutPool;
use crate::degrade::PyStaleCache;
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
    /// AdaptiveLimit, TimeoutPool or HealthRegistry) under the label `instance="name"`.
    /// A name already used for the same kind is a `ValueError`.
    fn register(&self, name: String, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let r = if let Ok(b) = obj.cast::<PyBreaker>() {
            self.inner.register_breaker(name, b.get().inner.clone())
        } else if let Ok(b) = obj.cast::<PyBulkhead>() {
            self.inner.register_bulkhead(name, b.get().inner.clone())
        } else if let Ok(l) = obj.cast::<PyRateLimiter>() {
            self.inner
                .register_rate_limiter(name, l.get().inner.clone())
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
                "obj must be a CircuitBreaker, Bulkhead, RateLimiter, Retry, AdaptiveLimit, TimeoutPool, StaleCache or HealthRegistry, got {}",
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
