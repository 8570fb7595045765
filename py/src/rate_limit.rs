//! `RateLimiter`: GCRA on one atomic word; the timed wait releases the GIL,
//! and async callers ask how long to wait and sleep with asyncio.

use std::time::Duration;

use failwell::rate_limit;
use failwell::Rejected;
use failwell_fleet::AnyRateLimiter;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::call::{Guard, GuardedCall};
use crate::convert::{
    config_error, count, duration, opt_duration, opt_uint64, py_dict, rejected, secs, take_or_wait,
    uint64,
};

const RENAMES: &[(&str, &str)] = &[("rate", "requests/period")];
/// In a region, the slot's name is the `slot` argument.
const REGION_RENAMES: &[(&str, &str)] = &[("rate", "requests/period"), ("name", "slot")];

fn requests(v: &Bound<'_, PyAny>) -> PyResult<u64> {
    uint64(v, "requests")
}

/// The period (core's `DEFAULT_PERIOD` when not given). A positive float
/// shorter than a nanosecond, the limiter's resolution, is refused rather
/// than read as 0 (a conversion of Python's; a zero period is core's to
/// refuse).
fn period(v: Option<&Bound<'_, PyAny>>) -> PyResult<Duration> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(rate_limit::DEFAULT_PERIOD);
    };
    let d = duration(v, "period")?;
    if d.is_zero() && v.extract::<f64>().is_ok_and(|s| s > 0.0) {
        return Err(PyValueError::new_err(format!(
            "period: {} s is shorter than 1 ns, the limiter's resolution",
            v.repr()?
        )));
    }
    Ok(d)
}

/// A request's cost (1 when not given).
fn cost_of(v: Option<&Bound<'_, PyAny>>) -> PyResult<u32> {
    v.filter(|v| !v.is_none())
        .map_or(Ok(1), |v| count(v, "cost"))
}

/// The native rate limiter; `failwell.RateLimiter` subclasses it.
#[pyclass(module = "failwell._native", name = "RateLimiter", subclass, frozen)]
#[derive(Debug)]
pub struct PyRateLimiter {
    /// Local, in a region, or a fleet limiter.
    pub(crate) inner: AnyRateLimiter,
    timeout: Duration,
    name: Option<String>,
}

pub(crate) fn take(
    py: Python<'_>,
    l: &AnyRateLimiter,
    cost: u32,
    timeout: Duration,
) -> PyResult<()> {
    take_or_wait(
        py,
        timeout,
        || l.try_acquire_n(cost),
        |t| l.acquire_n_timeout(cost, t),
    )
}

#[pymethods]
impl PyRateLimiter {
    /// `requests` per `period` seconds, bursts up to `burst` (default:
    /// `requests`). `timeout`: the default wait of `with`, the decorator
    /// and `call` (default 0: refuse at once).
    ///
    /// `_region`, `_slot` and `_attach` are `failwell.SharedRegion`'s: the
    /// limiter then lives in the region's slot `_slot` (created with this
    /// configuration, or attached with the stored one when `_attach`).
    /// `_fleet` and `_fleet_options` (mode, instances, on_unavailable) are
    /// `failwell.Fleet`'s: the limit `_slot` of that fleet.
    #[new]
    #[pyo3(signature = (requests, period = None, *, burst = None, precise = false, timeout = None, name = None, _region = None, _slot = None, _attach = false, _fleet = None, _fleet_options = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        requests: &Bound<'_, PyAny>,
        period: Option<&Bound<'_, PyAny>>,
        burst: Option<&Bound<'_, PyAny>>,
        precise: bool,
        timeout: Option<&Bound<'_, PyAny>>,
        name: Option<String>,
        _region: Option<PyRef<'_, crate::region::PyRegion>>,
        _slot: Option<String>,
        _attach: bool,
        _fleet: Option<PyRef<'_, crate::fleet::PyFleet>>,
        _fleet_options: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let timeout = opt_duration(timeout, "timeout")?.unwrap_or(Duration::ZERO);
        let inner = match (_region, _slot) {
            (Some(region), Some(slot)) if _attach => {
                AnyRateLimiter::local(region.attach_rate_limiter(py, &slot)?)
            }
            (region, slot) => {
                let period = self::period(period)?;
                let mut b = rate_limit::RateLimiter::builder()
                    .rate(self::requests(requests)?, period)
                    .precise(precise);
                if let Some(n) = opt_uint64(burst, "burst")? {
                    b = b.burst(n);
                }
                match (region, _fleet, slot, _fleet_options) {
                    (Some(region), None, Some(slot), None) => {
                        AnyRateLimiter::local(region.rate_limiter(py, &slot, b, REGION_RENAMES)?)
                    }
                    (None, Some(fleet), Some(slot), Some(options)) => {
                        if precise {
                            return Err(PyValueError::new_err(
                                "precise: a fleet rate limiter reads Redis's clock (leave precise out)",
                            ));
                        }
                        fleet.rate_limiter(py, &slot, b, options, RENAMES)?
                    }
                    (None, None, None, None) => {
                        AnyRateLimiter::local(b.build().map_err(|e| config_error(e, RENAMES))?)
                    }
                    _ => {
                        return Err(PyValueError::new_err(
                            "_slot goes with one of _region or _fleet (use SharedRegion.rate_limiter or Fleet.rate_limiter)",
                        ))
                    }
                }
            }
        };
        Ok(PyRateLimiter {
            inner,
            timeout,
            name,
        })
    }

    #[getter]
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    #[getter]
    fn timeout(&self) -> f64 {
        secs(self.timeout)
    }

    /// Takes `cost` tokens now if they are free; never blocks.
    #[pyo3(signature = (cost = None))]
    fn try_acquire(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        match self.inner.try_acquire_n(cost_of(cost)?) {
            Ok(()) => Ok(true),
            Err(Rejected::RateLimited { .. }) => Ok(false),
            Err(e) => Err(rejected(py, e)),
        }
    }

    /// Takes `cost` tokens, waiting at most `timeout` seconds (default:
    /// the limiter's own) with the GIL released; raises `RateLimitedError`
    /// with `retry_after` when they would come later than that.
    #[pyo3(signature = (cost = None, timeout = None))]
    fn acquire(
        &self,
        py: Python<'_>,
        cost: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let t = opt_duration(timeout, "timeout")?.unwrap_or(self.timeout);
        take(py, &self.inner, cost_of(cost)?, t)
    }

    /// For async callers: takes `cost` tokens if free (returns 0.0), else
    /// returns the seconds until they will be (sleep, then ask again).
    #[pyo3(signature = (cost = None))]
    fn _try_or_wait(&self, py: Python<'_>, cost: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
        match self.inner.try_acquire_n(cost_of(cost)?) {
            Ok(()) => Ok(0.0),
            Err(Rejected::RateLimited { retry_after }) => Ok(secs(retry_after).max(1e-6)),
            Err(e) => Err(rejected(py, e)),
        }
    }

    /// Seconds until one token is free (0.0 if one is free now); a
    /// `ValueError` for an exact fleet limiter (only Redis knows).
    fn next_ready(&self) -> PyResult<f64> {
        self.inner.next_ready().map(secs).ok_or_else(|| {
            PyValueError::new_err(
                "next_ready: an exact fleet rate limiter knows only by asking Redis (use try_acquire or acquire)",
            )
        })
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<()> {
        take(py, &self.inner, 1, self.timeout)
    }

    fn __exit__(
        &self,
        _ty: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> bool {
        false
    }

    /// Runs `func(*args, **kwargs)` once one token is taken.
    #[pyo3(signature = (func, /, *args, **kwargs))]
    fn call(
        &self,
        py: Python<'_>,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        take(py, &self.inner, 1, self.timeout)?;
        func.call(args, kwargs).map(Bound::unbind)
    }

    #[pyo3(signature = (func, cost = None, timeout = None))]
    fn _wrap(
        &self,
        func: Py<PyAny>,
        cost: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<GuardedCall> {
        Ok(GuardedCall::new(
            Guard::Limiter {
                limiter: self.inner.clone(),
                cost: cost_of(cost)?,
                timeout: opt_duration(timeout, "timeout")?.unwrap_or(self.timeout),
            },
            func,
        ))
    }

    /// Changes rate and burst of the live limiter together, all or nothing
    /// (a `ValueError` changes neither): `requests` per `period` seconds
    /// (default 1 s; `period` needs `requests`), `burst` in requests; what
    /// is not given keeps its value (a new rate alone keeps the burst).
    #[pyo3(signature = (requests = None, period = None, *, burst = None))]
    fn reconfigure(
        &self,
        requests: Option<&Bound<'_, PyAny>>,
        period: Option<&Bound<'_, PyAny>>,
        burst: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let requests = opt_uint64(requests, "requests")?;
        if requests.is_none() && period.is_some_and(|p| !p.is_none()) {
            return Err(PyValueError::new_err("period: give requests with it"));
        }
        let period = self::period(period)?;
        let burst = opt_uint64(burst, "burst")?;
        self.inner
            .reconfigure(|mut c| {
                if let Some(r) = requests {
                    c = c.rate(r, period);
                }
                if let Some(b) = burst {
                    c = c.burst(b);
                }
                c
            })
            .map_err(|e| config_error(e, RENAMES))
    }

    /// Changes the rate on the live limiter.
    #[pyo3(signature = (requests, period = None))]
    fn set_rate(
        &self,
        requests: &Bound<'_, PyAny>,
        period: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let period = self::period(period)?;
        let requests = self::requests(requests)?;
        self.inner
            .reconfigure(|b| b.rate(requests, period))
            .map_err(|e| config_error(e, RENAMES))
    }

    /// Changes the burst on the live limiter.
    fn set_burst(&self, burst: &Bound<'_, PyAny>) -> PyResult<()> {
        let b = uint64(burst, "burst")?;
        self.inner
            .reconfigure(|c| c.burst(b))
            .map_err(|e| config_error(e, &[]))
    }

    /// A fleet limiter's own counts, as a dict (None for a local one):
    /// `mode`, `fallbacks` (decisions made without Redis), and in leased
    /// mode the tokens `leased`, `returned` and `held`, the `leases` Redis
    /// answered and the tokens of the `last_lease`, the `instances`
    /// counted and the failed leases (`redis_errors`).
    fn fleet_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match &self.inner {
            AnyRateLimiter::Local(_) => Ok(None),
            AnyRateLimiter::Leased(l) => {
                let s = l.snapshot();
                py_dict!(py, {
                    "mode" => "leased",
                    "admitted" => s.admitted,
                    "rejected" => s.rejected,
                    "fallbacks" => s.fallbacks,
                    "leased" => s.leased,
                    "leases" => s.leases,
                    "last_lease" => s.last_lease,
                    "returned" => s.returned,
                    "held" => s.held,
                    "instances" => s.instances,
                    "redis_errors" => s.redis_errors,
                })
                .map(Some)
            }
            AnyRateLimiter::Exact(l) => {
                let s = l.snapshot();
                py_dict!(py, {
                    "mode" => "exact",
                    "admitted" => s.admitted,
                    "rejected" => s.rejected,
                    "fallbacks" => s.fallbacks,
                })
                .map(Some)
            }
        }
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        py_dict!(py, {
            "admitted" => s.admitted,
            "rejected" => s.rejected,
            "interval" => secs(s.interval),
            "burst" => s.burst,
        })
    }

    fn __repr__(&self) -> String {
        let s = self.inner.snapshot();
        format!(
            "<RateLimiter {}interval={:?} burst={}>",
            self.name
                .as_deref()
                .map(|n| format!("{n:?} "))
                .unwrap_or_default(),
            s.interval,
            s.burst
        )
    }
}
