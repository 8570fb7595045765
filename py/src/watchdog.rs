//! `Watchdog` (stalls, deadlocks, thread leaks, found on its own OS
//! thread), its heartbeats and gauges. Python callbacks run on failwell's
//! thread with the GIL; an exception in one is logged through the
//! `failwell` logger and counted. Every wait for that thread releases the
//! GIL, so it can always get it.

use std::sync::Arc;

use failwell::lock::Mutex;
use failwell::watchdog::{self, Finding, FindingKind, Heartbeat, Watchdog};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::convert::{
    call_back, config_error, duration, finite_f64, log_exception, opt_duration, opt_finite,
    opt_uint64, py_dict, secs, uint64, Number,
};
use crate::deadline::PyTimeoutPool;

fn finding_dict<'py>(py: Python<'py>, f: &Finding) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("key", f.key())?;
    d.set_item("message", f.to_string())?;
    d.set_item("cleared", f.cleared)?;
    d.set_item("lasted", secs(f.lasted))?;
    match &f.kind {
        FindingKind::Stall {
            name,
            silent_for,
            timeout,
            thread,
        } => {
            d.set_item("kind", "stall")?;
            d.set_item("name", name)?;
            d.set_item("silent_for", secs(*silent_for))?;
            d.set_item("timeout", secs(*timeout))?;
            d.set_item("thread", thread.as_deref())?;
        }
        FindingKind::Deadlock { threads } => {
            d.set_item("kind", "deadlock")?;
            let t: Vec<(&str, &str)> = threads
                .iter()
                .map(|(id, bt)| (id.as_str(), bt.as_str()))
                .collect();
            d.set_item("threads", t)?;
        }
        FindingKind::ThreadLeak {
            threads,
            baseline,
            limit,
        } => {
            d.set_item("kind", "thread_leak")?;
            d.set_item("threads", threads)?;
            d.set_item("baseline", baseline)?;
            d.set_item("limit", limit)?;
        }
        FindingKind::GaugeLeak {
            name,
            value,
            baseline,
            limit,
        } => {
            d.set_item("kind", "gauge_leak")?;
            d.set_item("name", name)?;
            d.set_item("value", value)?;
            d.set_item("baseline", baseline)?;
            d.set_item("limit", limit)?;
        }
        _ => d.set_item("kind", "other")?,
    }
    Ok(d)
}

/// The native watchdog; `failwell.Watchdog` re-exports it.
#[pyclass(module = "failwell._native", name = "Watchdog", frozen)]
#[derive(Debug)]
pub struct PyWatchdog {
    pub(crate) inner: Mutex<Option<Arc<Watchdog>>>,
    callback_errors: Arc<Mutex<u64>>,
}

impl PyWatchdog {
    pub(crate) fn get(&self) -> PyResult<Arc<Watchdog>> {
        self.inner
            .lock()
            .clone()
            .ok_or_else(|| PyValueError::new_err("the watchdog has been shut down"))
    }
}

#[pymethods]
impl PyWatchdog {
    /// Checks every `tick` seconds (default 1 s) and calls
    /// `on_finding(finding: dict)` once when a finding appears and once when
    /// it clears. Thread leaks: more than `thread_leak_factor` (default 2.0)
    /// × the thread count at start (`thread_baseline` overrides it), or
    /// above `thread_ceiling`; `thread_leak=False` turns the check off.
    /// `deadlock_detection` needs failwell built with its
    /// `deadlock-detection` feature and finds cycles among failwell's own
    /// locks only (Python's locks are invisible to it).
    #[new]
    #[pyo3(signature = (
        *, tick = None, on_finding = None, thread_leak = true, thread_leak_factor = None,
        thread_ceiling = None, thread_baseline = None, deadlock_detection = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        tick: Option<&Bound<'_, PyAny>>,
        on_finding: Option<&Bound<'_, PyAny>>,
        thread_leak: bool,
        thread_leak_factor: Option<&Bound<'_, PyAny>>,
        thread_ceiling: Option<&Bound<'_, PyAny>>,
        thread_baseline: Option<&Bound<'_, PyAny>>,
        deadlock_detection: bool,
    ) -> PyResult<Self> {
        let mut b = Watchdog::builder();
        if let Some(t) = opt_duration(tick, "tick")? {
            b = b.tick(t);
        }
        let errors = Arc::new(Mutex::new(0u64));
        if let Some(cb) = on_finding.filter(|c| !c.is_none()) {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("on_finding must be callable"));
            }
            let cb = cb.clone().unbind();
            let errs = Arc::clone(&errors);
            b = b.on_finding(move |f| {
                let ok = call_back("a watchdog's on_finding callback", &cb, |py| {
                    PyTuple::new(py, [finding_dict(py, f)?])
                });
                if !ok {
                    *errs.lock() += 1;
                }
            });
        }
        if thread_leak {
            b = b.thread_leak(
                opt_finite(thread_leak_factor, "thread_leak_factor")?
                    .unwrap_or(failwell::watchdog::DEFAULT_THREAD_LEAK_FACTOR),
                opt_uint64(thread_ceiling, "thread_ceiling")?,
            );
            if let Some(n) = opt_uint64(thread_baseline, "thread_baseline")? {
                b = b.thread_baseline(n);
            }
        } else {
            b = b.no_thread_leak_check();
        }
        b = b.deadlock_detection(deadlock_detection);
        let w = b
            .build()
            .map_err(|e| config_error(e, &[("thread_leak", "thread_leak_factor")]))?;
        Ok(PyWatchdog {
            inner: Mutex::new(Some(Arc::new(w))),
            callback_errors: errors,
        })
    }

    /// Registers a heartbeat that must `beat()` at least every `timeout`
    /// seconds, or a stall is reported. Dropping the heartbeat (or `close()`)
    /// unregisters it.
    fn heartbeat(&self, name: String, timeout: &Bound<'_, PyAny>) -> PyResult<PyHeartbeat> {
        let t = duration(timeout, "timeout")?;
        let hb = self
            .get()?
            .heartbeat(name, t)
            .map_err(|e| config_error(e, &[]))?;
        Ok(PyHeartbeat {
            inner: Mutex::new(Some(hb)),
        })
    }

    /// Registers a gauge — `read()` returns a count of some resource (open
    /// connections, file descriptors, queue length) — read on every tick
    /// and reported as a `gauge_leak` finding when it exceeds `factor` ×
    /// `baseline` (default: `read()` now; `factor` default 2.0, `None` for
    /// the ceiling alone) or `ceiling`. `read` runs on the watchdog's
    /// thread with the GIL; if it raises, the exception is logged and
    /// counted and the tick reads 0. Close the returned gauge (or let it be
    /// collected) to unregister it.
    #[pyo3(signature = (name, read, *, baseline = None, factor = Some(Number(2.0)), ceiling = None))]
    fn gauge(
        &self,
        name: String,
        read: &Bound<'_, PyAny>,
        baseline: Option<&Bound<'_, PyAny>>,
        factor: Option<Number>,
        ceiling: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyGauge> {
        let baseline = opt_uint64(baseline, "baseline")?;
        let ceiling = opt_uint64(ceiling, "ceiling")?;
        let factor = factor.map(|f| f.0);
        if !read.is_callable() {
            return Err(PyTypeError::new_err("read must be callable"));
        }
        let growth = match factor {
            Some(f) => {
                let base = match baseline {
                    Some(b) => b,
                    None => read.call0()?.extract::<u64>()?,
                };
                watchdog::Growth::new("factor", base, finite_f64(f, "factor")?, ceiling)
                    .map_err(|e| config_error(e, &[]))?
            }
            None => match ceiling {
                Some(c) => watchdog::Growth::ceiling_only(c),
                None => {
                    return Err(PyValueError::new_err(
                        "factor: None needs a ceiling, or nothing could ever be a leak",
                    ))
                }
            },
        };
        let read = read.clone().unbind();
        let errors = Arc::clone(&self.callback_errors);
        let label = format!("the read function of gauge {name:?}");
        let guard = self.get()?.gauge(name, growth, move || {
            // The interpreter may be shutting down: then read nothing.
            crate::convert::attach(|py| {
                match read.bind(py).call0().and_then(|v| v.extract::<u64>()) {
                    Ok(v) => v,
                    Err(e) => {
                        *errors.lock() += 1;
                        log_exception(py, &label, e);
                        0
                    }
                }
            })
            .unwrap_or(0)
        });
        Ok(PyGauge {
            inner: Mutex::new(Some(guard)),
        })
    }

    /// Reports abandoned calls still running on `pool` (each holds a
    /// worker thread) as a `gauge_leak` finding named `name` when there are
    /// more than `max_abandoned`.
    fn watch_pool(
        &self,
        name: String,
        pool: &PyTimeoutPool,
        max_abandoned: &Bound<'_, PyAny>,
    ) -> PyResult<PyGauge> {
        let max_abandoned = uint64(max_abandoned, "max_abandoned")?;
        let guard = self
            .get()?
            .watch_pool(name, pool.inner.clone(), max_abandoned);
        Ok(PyGauge {
            inner: Mutex::new(Some(guard)),
        })
    }

    /// The findings active now, as dicts.
    fn active<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let w = self.get()?;
        let found = w.active();
        let items: Vec<Bound<'py, PyDict>> = found
            .iter()
            .map(|f| finding_dict(py, f))
            .collect::<PyResult<_>>()?;
        PyList::new(py, items)
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.get()?.snapshot();
        py_dict!(py, {
            "ticks" => s.ticks,
            "reports" => s.reports,
            "callback_errors" => s.callback_panics + *self.callback_errors.lock(),
            "heartbeats" => s.heartbeats,
        })
    }

    /// Stops the watchdog's thread and waits for it (with the GIL
    /// released). A watchdog registered with a health registry keeps
    /// running until that registry is gone too. Idempotent.
    fn shutdown(&self, py: Python<'_>) {
        let w = self.inner.lock().take();
        if let Some(w) = w {
            py.detach(move || {
                if let Ok(w) = Arc::try_unwrap(w) {
                    w.shutdown();
                }
            });
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _ty: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> bool {
        self.shutdown(py);
        false
    }
}

impl Drop for PyWatchdog {
    fn drop(&mut self) {
        // Joining the thread may wait for a callback that needs the GIL.
        if let Some(w) = self.inner.get_mut().take() {
            Python::attach(|py| py.detach(move || drop(w)));
        }
    }
}

/// A registered gauge; `close()` (or collection) unregisters it.
#[pyclass(module = "failwell._native", name = "Gauge", frozen)]
pub struct PyGauge {
    inner: Mutex<Option<watchdog::GaugeGuard>>,
}

impl std::fmt::Debug for PyGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyGauge").finish_non_exhaustive()
    }
}

#[pymethods]
impl PyGauge {
    /// Unregisters the gauge.
    fn close(&self) {
        self.inner.lock().take();
    }
}

/// A heartbeat: `beat()` proves progress. Thread-safe.
#[pyclass(module = "failwell._native", name = "Heartbeat", frozen)]
#[derive(Debug)]
pub struct PyHeartbeat {
    inner: Mutex<Option<Heartbeat>>,
}

#[pymethods]
impl PyHeartbeat {
    fn beat(&self) {
        if let Some(h) = &*self.inner.lock() {
            h.beat();
        }
    }

    /// Unregisters the heartbeat.
    fn close(&self) {
        self.inner.lock().take();
    }
}
