//! `HealthRegistry` (checks run in the background). Python checks run on
//! failwell's threads with the GIL; an exception in one is logged through
//! the `failwell` logger and counted. Every wait for those threads
//! releases the GIL, so they can always get it.

use std::sync::Arc;

use failwell::health::{self, HealthRegistry, Status};
use failwell::lock::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::breaker::PyBreaker;
use crate::convert::{config_error, log_exception, opt_count, opt_duration, secs};
use crate::watchdog::PyWatchdog;

fn status(name: &str, arg: &str) -> PyResult<Status> {
    match name {
        "degraded" => Ok(Status::Degraded),
        "unhealthy" => Ok(Status::Unhealthy),
        other => Err(PyValueError::new_err(format!(
            "{arg} must be \"degraded\" or \"unhealthy\", got {other:?}"
        ))),
    }
}

/// The native health registry; `failwell.HealthRegistry` re-exports it.
#[pyclass(module = "failwell._native", name = "HealthRegistry", frozen)]
#[derive(Debug)]
pub struct PyHealth {
    pub(crate) inner: Option<Arc<HealthRegistry>>,
    check_errors: Arc<Mutex<u64>>,
    /// Fleet breakers registered: they keep syncing while this lives.
    fleet_breakers: Mutex<Vec<failwell_fleet::AnyBreaker>>,
}

impl PyHealth {
    fn reg(&self) -> &Arc<HealthRegistry> {
        self.inner.as_ref().expect("set until drop")
    }
}

#[pymethods]
impl PyHealth {
    /// Runs every check each `interval` seconds (default 5 s) on a
    /// background thread, at most `max_parallel` (16) at once.
    #[new]
    #[pyo3(signature = (*, interval = None, max_parallel = None))]
    fn new(
        interval: Option<&Bound<'_, PyAny>>,
        max_parallel: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut b = HealthRegistry::builder();
        if let Some(n) = opt_count(max_parallel, "max_parallel")? {
            b = b.max_parallel(n as usize);
        }
        if let Some(i) = opt_duration(interval, "interval")? {
            b = b.interval(i);
        }
        Ok(PyHealth {
            inner: Some(Arc::new(b.build().map_err(|e| config_error(e, &[]))?)),
            check_errors: Arc::new(Mutex::new(0)),
            fleet_breakers: Mutex::new(Vec::new()),
        })
    }

    /// Registers `check()`: healthy when it returns None or True; failed
    /// when it returns False or a string (the reason), raises (logged and
    /// counted in `check_errors`), or runs past `timeout` seconds (default
    /// 1 s; a hanging check is not restarted while it hangs). A failed
    /// `critical` check makes the service unhealthy, another degraded.
    #[pyo3(signature = (name, check, *, timeout = None, critical = true))]
    fn register(
        &self,
        name: String,
        check: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        critical: bool,
    ) -> PyResult<()> {
        if !check.is_callable() {
            return Err(PyTypeError::new_err("check must be callable"));
        }
        let timeout =
            opt_duration(timeout, "timeout")?.unwrap_or(failwell::health::DEFAULT_CHECK_TIMEOUT);
        let check = check.clone().unbind();
        let errors = Arc::clone(&self.check_errors);
        let label = format!("health check {name:?}");
        self.reg()
            .register(name, critical, timeout, move || {
                // At interpreter exit a check still scheduled cannot run.
                crate::convert::attach(|py| match check.bind(py).call0() {
                    Ok(v) if v.is_none() => Ok(()),
                    Ok(v) => {
                        if let Ok(b) = v.extract::<bool>() {
                            return if b {
                                Ok(())
                            } else {
                                Err("returned False".into())
                            };
                        }
                        match v.extract::<String>() {
                            Ok(s) => Err(s),
                            Err(_) => Ok(()),
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        *errors.lock() += 1;
                        log_exception(py, &label, e);
                        Err(msg)
                    }
                })
                .unwrap_or_else(|| Err("the Python interpreter is shutting down".into()))
            })
            .map_err(|e| config_error(e, &[]))
    }

    /// A breaker as a check: open reads `when_open` ("degraded" or
    /// "unhealthy").
    #[pyo3(signature = (name, breaker, *, when_open = "degraded"))]
    fn register_breaker(&self, name: String, breaker: &PyBreaker, when_open: &str) -> PyResult<()> {
        self.reg()
            .register_breaker(name, breaker.inner.arc(), status(when_open, "when_open")?)
            .map_err(|e| config_error(e, &[]))?;
        if breaker.inner.as_fleet().is_some() {
            self.fleet_breakers.lock().push(breaker.inner.clone());
        }
        Ok(())
    }

    /// A watchdog as a check: any active finding reads `when_found`.
    #[pyo3(signature = (name, watchdog, *, when_found = "degraded"))]
    fn register_watchdog(
        &self,
        name: String,
        watchdog: &PyWatchdog,
        when_found: &str,
    ) -> PyResult<()> {
        self.reg()
            .register_watchdog(name, watchdog.get()?, status(when_found, "when_found")?)
            .map_err(|e| config_error(e, &[]))
    }

    /// The last round's report (cheap; no check runs).
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        report_dict(py, &self.reg().report())
    }

    /// Runs a round now and waits for it (GIL released).
    fn check_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let reg = Arc::clone(self.reg());
        let r = py.detach(move || reg.check_now());
        report_dict(py, &r)
    }

    /// "healthy", "degraded" or "unhealthy", from the last round.
    #[getter]
    fn status(&self) -> &'static str {
        self.reg().report().status.as_str()
    }

    /// Checks that raised, so far.
    #[getter]
    fn check_errors(&self) -> u64 {
        *self.check_errors.lock()
    }
}

impl Drop for PyHealth {
    fn drop(&mut self) {
        if let Some(r) = self.inner.take() {
            Python::attach(|py| py.detach(move || drop(r)));
        }
    }
}

fn report_dict<'py>(py: Python<'py>, r: &health::HealthReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("status", r.status.as_str())?;
    d.set_item("round", r.round)?;
    let checks = PyList::empty(py);
    for c in &r.checks {
        let cd = PyDict::new(py);
        cd.set_item("name", &c.name)?;
        cd.set_item("critical", c.critical)?;
        cd.set_item("status", c.status.as_str())?;
        cd.set_item("latency", secs(c.latency))?;
        cd.set_item("error", c.error.as_deref())?;
        checks.append(cd)?;
    }
    d.set_item("checks", checks)?;
    Ok(d)
}
