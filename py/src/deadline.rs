//! `Deadline` and timed calls on failwell's bounded timeout pool.

use failwell::clock::{Clock, MonotonicClock};
use failwell::deadline::{self, Deadline, TimeoutPool};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::{config_error, count, opt_duration, py_dict, rejected, secs};

/// The native deadline: an instant on the monotonic clock, or never.
/// `failwell.Deadline` subclasses it and adds the `with` scope that
/// propagates it.
#[pyclass(module = "failwell._native", name = "Deadline", subclass, frozen)]
#[derive(Debug, Clone, Copy)]
pub struct PyDeadline {
    pub(crate) inner: Deadline,
}

#[pymethods]
impl PyDeadline {
    /// `timeout` seconds from now; None: never. `_at_ns` (internal): the
    /// instant itself, for a deadline handed over by failwell (a
    /// pipeline's attempt); it wins over `timeout`.
    #[new]
    #[pyo3(signature = (timeout = None, *, _at_ns = None))]
    fn new(timeout: Option<&Bound<'_, PyAny>>, _at_ns: Option<u64>) -> PyResult<Self> {
        if let Some(at) = _at_ns {
            return Ok(PyDeadline {
                inner: Deadline::at(at),
            });
        }
        Ok(PyDeadline {
            inner: match opt_duration(timeout, "timeout")? {
                Some(d) => Deadline::after(d),
                None => Deadline::never(),
            },
        })
    }

    /// Seconds left (0.0 once passed; `inf` for never).
    #[getter]
    fn remaining(&self) -> f64 {
        if self.inner.is_never() {
            f64::INFINITY
        } else {
            secs(self.inner.remaining())
        }
    }

    /// Whether it has passed.
    #[getter]
    fn expired(&self) -> bool {
        self.inner.is_expired()
    }

    /// Whether it never passes.
    #[getter]
    fn is_never(&self) -> bool {
        self.inner.is_never()
    }

    /// The instant, in monotonic-clock nanoseconds (`u64::MAX` for never).
    #[getter]
    fn _at_ns(&self) -> u64 {
        self.inner.as_nanos()
    }

    fn __repr__(&self) -> String {
        if self.inner.is_never() {
            "Deadline(never)".to_string()
        } else {
            format!("Deadline(remaining={:.6})", secs(self.inner.remaining()))
        }
    }
}

/// Now, in monotonic-clock nanoseconds (the clock deadlines use).
#[pyfunction]
pub fn monotonic_ns() -> u64 {
    MonotonicClock.now()
}

/// Runs `func(*args, **kwargs)` on failwell's default timeout pool (64
/// threads) and waits, with the GIL released, until the instant
/// `deadline_ns`. Raises `DeadlineExceededError` when it passes first (the
/// call is abandoned and finishes on its own), `BulkheadFullError` when
/// every pool thread is busy; re-raises the call's own exception.
#[pyfunction]
#[pyo3(signature = (deadline_ns, func, args, kwargs = None))]
pub fn _call_before(
    py: Python<'_>,
    deadline_ns: u64,
    func: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
) -> PyResult<Py<PyAny>> {
    call_on(
        py,
        deadline::default_pool(),
        deadline_ns,
        func,
        args,
        kwargs,
    )
}

/// Runs the call on `pool`, waiting with the GIL released.
fn call_on(
    py: Python<'_>,
    pool: &TimeoutPool,
    deadline_ns: u64,
    func: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
) -> PyResult<Py<PyAny>> {
    let at = Deadline::at(deadline_ns);
    let r = py.detach(move || {
        pool.run(at, move || {
            crate::convert::attach(move |py| {
                let r = func
                    .bind(py)
                    .call(args.bind(py), kwargs.as_ref().map(|k| k.bind(py)))
                    .map(Bound::unbind);
                // Released here, with the GIL: a reference dropped without
                // it goes through pyo3's process-wide pool of deferred
                // releases, whose lock a fork() could find held.
                drop((func, args, kwargs));
                r
            })
            .unwrap_or_else(|| {
                Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "the Python interpreter is shutting down",
                ))
            })
        })
    });
    match r {
        Ok(result) => result,
        Err(e) => Err(rejected(py, e)),
    }
}

/// A bounded pool of helper threads for calls that cannot take a
/// deadline; `failwell.TimeoutPool` subclasses it (`call_with_timeout` uses
/// a default one of 64).
#[pyclass(module = "failwell._native", name = "TimeoutPool", subclass, frozen)]
#[derive(Debug)]
pub struct PyTimeoutPool {
    pub(crate) inner: TimeoutPool,
}

#[pymethods]
impl PyTimeoutPool {
    /// At most `max_threads` workers (1 ..= 4096), started on demand,
    /// exiting after `idle_timeout` seconds without work (default 60).
    #[new]
    #[pyo3(signature = (max_threads, *, idle_timeout = None))]
    fn new(
        max_threads: &Bound<'_, PyAny>,
        idle_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let n = count(max_threads, "max_threads")? as usize;
        let pool = match opt_duration(idle_timeout, "idle_timeout")? {
            Some(idle) => TimeoutPool::with_idle_timeout(n, idle),
            None => TimeoutPool::new(n),
        };
        Ok(PyTimeoutPool {
            inner: pool.map_err(|e| config_error(e, &[]))?,
        })
    }

    #[pyo3(signature = (deadline_ns, func, args, kwargs = None))]
    fn _call_before(
        &self,
        py: Python<'_>,
        deadline_ns: u64,
        func: Py<PyAny>,
        args: Py<PyTuple>,
        kwargs: Option<Py<PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        call_on(py, &self.inner, deadline_ns, func, args, kwargs)
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        py_dict!(py, {
            "max_threads" => s.max_threads,
            "threads" => s.threads,
            "busy" => s.busy,
            "completed" => s.completed,
            "timed_out" => s.timed_out,
            "abandoned_running" => s.abandoned_running,
            "rejected" => s.rejected,
        })
    }
}
