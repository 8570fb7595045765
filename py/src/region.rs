//! `SharedRegion`: a host region, shared memory the worker processes of a
//! host open by name. The primitives it holds are created through their
//! ordinary classes (`failwell.SharedRegion.rate_limiter` passes the
//! region to `RateLimiter`), so every decorator and context-manager form
//! works on them.

use failwell::breaker::{self, CircuitBreaker};
use failwell::bulkhead::{self, Bulkhead};
use failwell::clock::MonotonicClock;
use failwell::rate_limit::{self, RateLimiter};
use failwell::region::{Region, DEFAULT_SIZE, MIN_SIZE};
use failwell::retry::RetryBudget;
use pyo3::prelude::*;

use crate::convert::region_error;

/// The native region; `failwell.SharedRegion` subclasses it.
#[pyclass(module = "failwell._native", name = "SharedRegion", subclass, frozen)]
#[derive(Debug)]
pub struct PyRegion {
    inner: Region,
}

impl PyRegion {
    /// The limiter `slot`, created with `b`'s configuration if absent.
    pub(crate) fn rate_limiter(
        &self,
        py: Python<'_>,
        slot: &str,
        b: rate_limit::Builder,
        renames: &[(&str, &str)],
    ) -> PyResult<RateLimiter> {
        self.inner
            .rate_limiter(slot, b)
            .map_err(|e| region_error(py, e, renames))
    }

    /// The retry budget `slot`, created with these settings if absent.
    pub(crate) fn retry_budget(
        &self,
        py: Python<'_>,
        slot: &str,
        ratio: f64,
        min_per_sec: f64,
        ttl: std::time::Duration,
        renames: &[(&str, &str)],
    ) -> PyResult<RetryBudget> {
        self.inner
            .retry_budget(slot, ratio, min_per_sec, ttl)
            .map_err(|e| region_error(py, e, renames))
    }

    /// The retry budget `slot` as stored.
    pub(crate) fn attach_retry_budget(&self, py: Python<'_>, slot: &str) -> PyResult<RetryBudget> {
        self.inner
            .attach_retry_budget(slot)
            .map_err(|e| region_error(py, e, &[("name", "slot")]))
    }

    /// The breaker `slot`, created with `b`'s configuration if absent.
    pub(crate) fn circuit_breaker(
        &self,
        py: Python<'_>,
        slot: &str,
        b: breaker::Builder<MonotonicClock>,
        renames: &[(&str, &str)],
    ) -> PyResult<CircuitBreaker> {
        let mut renames = renames.to_vec();
        renames.push(("name", "slot"));
        self.inner
            .circuit_breaker(slot, b)
            .map_err(|e| region_error(py, e, &renames))
    }

    /// The breaker `slot` with the stored configuration.
    pub(crate) fn attach_circuit_breaker(
        &self,
        py: Python<'_>,
        slot: &str,
    ) -> PyResult<CircuitBreaker> {
        self.inner
            .attach_circuit_breaker(slot)
            .map_err(|e| region_error(py, e, &[("name", "slot")]))
    }

    /// The bulkhead `slot`, created with `config` if absent.
    pub(crate) fn bulkhead(
        &self,
        py: Python<'_>,
        slot: &str,
        config: bulkhead::Config,
    ) -> PyResult<Bulkhead> {
        self.inner
            .bulkhead(slot, config)
            .map_err(|e| region_error(py, e, &[("name", "slot")]))
    }

    /// The bulkhead `slot` with the stored configuration.
    pub(crate) fn attach_bulkhead(&self, py: Python<'_>, slot: &str) -> PyResult<Bulkhead> {
        self.inner
            .attach_bulkhead(slot)
            .map_err(|e| region_error(py, e, &[("name", "slot")]))
    }

    /// The limiter `slot` with the stored configuration.
    pub(crate) fn attach_rate_limiter(&self, py: Python<'_>, slot: &str) -> PyResult<RateLimiter> {
        self.inner
            .attach_rate_limiter(slot)
            .map_err(|e| region_error(py, e, &[("name", "slot")]))
    }
}

#[pymethods]
impl PyRegion {
    /// Creates or attaches the region `name` (`/dev/shm/<name>`, or a path
    /// if it has a `/`); a new one is `size` bytes (default 1 MiB, at least
    /// 64 KiB).
    #[new]
    #[pyo3(signature = (name, size = None))]
    fn new(py: Python<'_>, name: &str, size: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let size = match size.filter(|s| !s.is_none()) {
            Some(s) => usize::try_from(crate::convert::uint64(s, "size")?).unwrap_or(usize::MAX),
            None => DEFAULT_SIZE,
        };
        let inner = py
            .detach(|| Region::open(name, size))
            .map_err(|e| region_error(py, e, &[]))?;
        Ok(PyRegion { inner })
    }

    /// Removes the region file `name` (processes using it keep it).
    #[staticmethod]
    fn unlink(py: Python<'_>, name: &str) -> PyResult<()> {
        Region::unlink(name).map_err(|e| region_error(py, e, &[]))
    }

    /// The region's file.
    #[getter]
    fn path(&self) -> &str {
        self.inner.path()
    }

    /// The region's size in bytes.
    #[getter]
    fn size(&self) -> usize {
        self.inner.size()
    }

    /// The smallest size a new region may have.
    #[classattr]
    const MIN_SIZE: usize = MIN_SIZE;

    /// The names of the region's slots, in creation order.
    fn names(&self) -> Vec<String> {
        self.inner.names()
    }

    fn __repr__(&self) -> String {
        format!(
            "SharedRegion(path={:?}, size={})",
            self.inner.path(),
            self.inner.size()
        )
    }
}
