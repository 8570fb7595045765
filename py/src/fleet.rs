//! `Fleet`: a connection to the fleet's Redis. The primitives it makes are
//! the ordinary classes (`failwell.Fleet.rate_limiter` passes the fleet to
//! `RateLimiter`, `.circuit_breaker` to `CircuitBreaker`), so every
//! decorator and context-manager form works on them.

use std::time::Duration;

use failwell::breaker;
use failwell::clock::MonotonicClock;
use failwell::rate_limit;
use failwell_fleet::{
    AnyRateLimiter, Fleet, FleetBreaker, OnUnavailable, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_FLEET_WINDOW, DEFAULT_IO_TIMEOUT, DEFAULT_KEY_PREFIX, DEFAULT_POOL_SIZE,
    DEFAULT_PROBE_CLAIM, SYNC_EVERY,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Arc;

use crate::convert::{count, fleet_error, opt_duration, py_dict, secs};

/// The native fleet connection; `failwell.Fleet` subclasses it.
#[pyclass(module = "failwell._native", name = "Fleet", subclass, frozen)]
#[derive(Debug)]
pub struct PyFleet {
    inner: Fleet,
}

/// A fleet breaker's own settings, as given to `Fleet.circuit_breaker`.
#[derive(Debug, Default)]
pub(crate) struct BreakerOptions {
    quorum: Option<u32>,
    sync_every: Option<Duration>,
    probe_claim: Option<Duration>,
    window: Option<Duration>,
    on_unavailable: OnUnavailable,
}

/// A str argument `name`, or a `TypeError` naming it.
fn text(v: &Bound<'_, PyAny>, name: &str) -> PyResult<String> {
    v.extract::<String>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name}: expected a str, got {}",
            v.get_type()
                .name()
                .map_or_else(|_| "?".to_owned(), |n| n.to_string())
        ))
    })
}

/// `on_unavailable` as Python names it.
fn on_unavailable(v: &str) -> PyResult<OnUnavailable> {
    match v {
        "local" => Ok(OnUnavailable::Local),
        "fail_open" => Ok(OnUnavailable::FailOpen),
        "fail_closed" => Ok(OnUnavailable::FailClosed),
        other => Err(PyValueError::new_err(format!(
            "on_unavailable: {other:?} is not one of \"local\", \"fail_open\", \"fail_closed\""
        ))),
    }
}

impl BreakerOptions {
    /// Reads the keywords (None: the default).
    pub(crate) fn parse(
        quorum: Option<&Bound<'_, PyAny>>,
        sync_every: Option<&Bound<'_, PyAny>>,
        probe_claim: Option<&Bound<'_, PyAny>>,
        window: Option<&Bound<'_, PyAny>>,
        on_unavailable: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(BreakerOptions {
            quorum: quorum
                .filter(|v| !v.is_none())
                .map(|v| count(v, "quorum"))
                .transpose()?,
            sync_every: opt_duration(sync_every, "sync_every")?,
            probe_claim: opt_duration(probe_claim, "probe_claim")?,
            window: opt_duration(window, "fleet_window")?,
            on_unavailable: match on_unavailable.filter(|v| !v.is_none()) {
                Some(v) => self::on_unavailable(&text(v, "on_unavailable")?)?,
                None => OnUnavailable::Local,
            },
        })
    }
}

/// The fleet's names for its settings → this module's keywords.
const FLEET_RENAMES: &[(&str, &str)] = &[("window", "fleet_window")];

impl PyFleet {
    /// The fleet limiter `name` with `b`'s rate and burst.
    pub(crate) fn rate_limiter(
        &self,
        py: Python<'_>,
        name: &str,
        b: rate_limit::Builder,
        options: &Bound<'_, PyAny>,
        renames: &[(&str, &str)],
    ) -> PyResult<AnyRateLimiter> {
        let (mode, instances, on_unavailable): (
            Bound<'_, PyAny>,
            Bound<'_, PyAny>,
            Bound<'_, PyAny>,
        ) = options.extract().map_err(|_| {
            PyTypeError::new_err("_fleet_options: (mode, instances, on_unavailable)")
        })?;
        let mode = text(&mode, "mode")?;
        let instances = count(&instances, "instances")?;
        let on_unavailable = self::on_unavailable(&text(&on_unavailable, "on_unavailable")?)?;
        let made = match mode.as_str() {
            "leased" => py.detach(|| {
                self.inner
                    .rate_limiter(name, b)
                    .instances(instances)
                    .on_unavailable(on_unavailable)
                    .build()
                    .map(|l| AnyRateLimiter::Leased(Arc::new(l)))
            }),
            "exact" => py.detach(|| {
                self.inner
                    .exact_rate_limiter(name, b)
                    .instances(instances)
                    .on_unavailable(on_unavailable)
                    .build()
                    .map(|l| AnyRateLimiter::Exact(Arc::new(l)))
            }),
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode: {other:?} is not one of \"leased\", \"exact\""
                )))
            }
        };
        made.map_err(|e| fleet_error(py, e, renames))
    }

    /// The fleet breaker `name` admitting calls with a local breaker of
    /// `b`'s configuration.
    pub(crate) fn circuit_breaker(
        &self,
        py: Python<'_>,
        name: &str,
        b: breaker::Builder<MonotonicClock>,
        options: BreakerOptions,
        renames: &[(&str, &str)],
    ) -> PyResult<FleetBreaker> {
        let mut fb = self
            .inner
            .circuit_breaker(name, b)
            .on_unavailable(options.on_unavailable);
        if let Some(q) = options.quorum {
            fb = fb.quorum(q);
        }
        if let Some(d) = options.sync_every {
            fb = fb.sync_every(d);
        }
        if let Some(d) = options.probe_claim {
            fb = fb.probe_claim(d);
        }
        if let Some(d) = options.window {
            fb = fb.window(d);
        }
        let mut renames = renames.to_vec();
        renames.extend_from_slice(FLEET_RENAMES);
        py.detach(|| fb.build())
            .map_err(|e| fleet_error(py, e, &renames))
    }
}

#[pymethods]
impl PyFleet {
    /// Connects to the Redis at `url` (`redis://host:port/db`); see
    /// `failwell.Fleet` for the settings and their defaults.
    #[new]
    #[pyo3(signature = (url, *, connect_timeout = None, io_timeout = None, pool_size = None, key_prefix = None, connect = true))]
    fn new(
        py: Python<'_>,
        url: &str,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        io_timeout: Option<&Bound<'_, PyAny>>,
        pool_size: Option<&Bound<'_, PyAny>>,
        key_prefix: Option<&str>,
        connect: bool,
    ) -> PyResult<Self> {
        let mut b = Fleet::builder(url);
        if let Some(d) = opt_duration(connect_timeout, "connect_timeout")? {
            b = b.connect_timeout(d);
        }
        if let Some(d) = opt_duration(io_timeout, "io_timeout")? {
            b = b.io_timeout(d);
        }
        if let Some(n) = pool_size.filter(|v| !v.is_none()) {
            b = b.pool_size(count(n, "pool_size")? as usize);
        }
        if let Some(p) = key_prefix {
            b = b.key_prefix(p);
        }
        let inner = py
            .detach(|| if connect { b.connect() } else { b.open() })
            .map_err(|e| fleet_error(py, e, &[]))?;
        Ok(PyFleet { inner })
    }

    /// Sends Redis a PING; returns the round trip in seconds. Raises
    /// `failwell.FleetError` if Redis is unreachable or slow, or
    /// failwell's breaker around it is open.
    fn ping(&self, py: Python<'_>) -> PyResult<f64> {
        py.detach(|| self.inner.ping())
            .map(secs)
            .map_err(|e| fleet_error(py, e, &[]))
    }

    /// The state of failwell's breaker around Redis.
    #[getter]
    fn redis_state(&self) -> &'static str {
        self.inner.guard_state().as_str()
    }

    /// This connection's Redis requests, as a dict.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        py_dict!(py, {
            "requests" => s.requests,
            "failures" => s.failures,
            "refused" => s.refused,
            "latency" => s.latency_ns as f64 / 1e9,
        })
    }

    /// The defaults, in seconds: connect, read/write, pool size, prefix.
    #[classattr]
    const DEFAULT_CONNECT_TIMEOUT: f64 = DEFAULT_CONNECT_TIMEOUT.as_millis() as f64 / 1e3;
    #[classattr]
    const DEFAULT_IO_TIMEOUT: f64 = DEFAULT_IO_TIMEOUT.as_millis() as f64 / 1e3;
    #[classattr]
    const DEFAULT_POOL_SIZE: usize = DEFAULT_POOL_SIZE;
    #[classattr]
    const DEFAULT_KEY_PREFIX: &'static str = DEFAULT_KEY_PREFIX;
    /// A fleet breaker's sync interval and probe claim, in seconds; its
    /// window when the local breaker counts calls.
    #[classattr]
    const SYNC_EVERY: f64 = SYNC_EVERY.as_millis() as f64 / 1e3;
    #[classattr]
    const DEFAULT_PROBE_CLAIM: f64 = DEFAULT_PROBE_CLAIM.as_millis() as f64 / 1e3;
    #[classattr]
    const DEFAULT_FLEET_WINDOW: f64 = DEFAULT_FLEET_WINDOW.as_millis() as f64 / 1e3;

    fn __repr__(&self) -> String {
        format!("<Fleet redis={}>", self.inner.guard_state().as_str())
    }
}

/// For `Metrics.register`.
impl PyFleet {
    pub(crate) fn fleet(&self) -> &Fleet {
        &self.inner
    }
}
