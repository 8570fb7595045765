//! `Bulkhead`: `with`, explicit permits, the decorator's native callable;
//! every wait releases the GIL.

use std::sync::Arc;
use std::time::Duration;

use failwell::bulkhead::{self, OwnedBulkheadPermit, Priority};
use failwell::lock::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::call::{Guard, GuardedCall};
use crate::convert::{config_error, count, opt_count, opt_duration, py_dict, secs, take_or_wait};

/// `"normal"` or `"critical"`.
pub fn priority(p: &str) -> PyResult<Priority> {
    match p {
        "normal" => Ok(Priority::Normal),
        "critical" => Ok(Priority::Critical),
        other => Err(PyValueError::new_err(format!(
            "priority must be \"normal\" or \"critical\", got {other:?}"
        ))),
    }
}

/// A priority argument checked by the one rule above, for the pure-Python
/// parts of the package (a decorator that checks its arguments when it is
/// made): a `TypeError` for a non-string, a `ValueError` for another name.
#[pyfunction]
#[pyo3(name = "_check_priority")]
pub fn check_priority(value: &Bound<'_, PyAny>) -> PyResult<()> {
    if value.is_instance_of::<pyo3::types::PyString>() {
        priority(&value.extract::<String>()?).map(drop)
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "priority must be \"normal\" or \"critical\", got {}",
            value.get_type().name()?
        )))
    }
}

/// The native bulkhead; `failwell.Bulkhead` subclasses it.
#[pyclass(module = "failwell._native", name = "Bulkhead", subclass, frozen)]
#[derive(Debug)]
pub struct PyBulkhead {
    pub(crate) inner: Arc<bulkhead::Bulkhead>,
    timeout: Duration,
    name: Option<String>,
}

/// Takes a detached permit, waiting at most `timeout` with the GIL
/// released (no wait at all for a zero timeout).
fn take(py: Python<'_>, b: &bulkhead::Bulkhead, prio: Priority, timeout: Duration) -> PyResult<()> {
    take_or_wait(
        py,
        timeout,
        || b.try_acquire_with(prio).map(|p| p.detach()),
        |t| b.acquire_timeout_with(prio, t).map(|p| p.detach()),
    )
}

#[pymethods]
impl PyBulkhead {
    /// `_region`, `_slot` and `_attach` are `failwell.SharedRegion`'s: the
    /// bulkhead then lives in the region's slot `_slot`, one limit for every
    /// process using it (created with this configuration, or attached with
    /// the stored one when `_attach`).
    #[new]
    #[pyo3(signature = (max_concurrent = None, *, critical_reserve = None, timeout = None, name = None, _region = None, _slot = None, _attach = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        max_concurrent: Option<&Bound<'_, PyAny>>,
        critical_reserve: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        name: Option<String>,
        _region: Option<PyRef<'_, crate::region::PyRegion>>,
        _slot: Option<String>,
        _attach: bool,
    ) -> PyResult<Self> {
        let timeout = opt_duration(timeout, "timeout")?.unwrap_or(Duration::ZERO);
        let mut b = bulkhead::Bulkhead::builder();
        if let Some(n) = opt_count(max_concurrent, "max_concurrent")? {
            b = b.max_concurrent(n);
        }
        if let Some(k) = opt_count(critical_reserve, "critical_reserve")? {
            b = b.critical_reserve(k);
        }
        let inner = match (_region, _slot) {
            (Some(region), Some(slot)) if _attach => region.attach_bulkhead(py, &slot)?,
            (Some(region), Some(slot)) => region.bulkhead(py, &slot, b.config())?,
            (None, None) => b
                .build()
                .map_err(|e| config_error(e, &[("capacity", "max_concurrent")]))?,
            _ => {
                return Err(PyValueError::new_err(
                    "_region and _slot go together (use SharedRegion.bulkhead)",
                ))
            }
        };
        Ok(PyBulkhead {
            inner: Arc::new(inner),
            timeout,
            name,
        })
    }

    #[getter]
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The default wait of `with`, the decorator and `call`, in seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        secs(self.timeout)
    }

    /// Takes a permit, waiting at most `timeout` seconds (default: the
    /// bulkhead's own) with the GIL released; raises `BulkheadFullError`.
    /// Returns the permit: release it with `release()` or a `with` block.
    #[pyo3(signature = (timeout = None, priority = "normal"))]
    fn acquire(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
        priority: &str,
    ) -> PyResult<BulkheadPermit> {
        let t = opt_duration(timeout, "timeout")?.unwrap_or(self.timeout);
        let prio = self::priority(priority)?;
        take_or_wait(
            py,
            t,
            || self.inner.try_acquire_owned(prio),
            |t| self.inner.acquire_timeout_owned(prio, t),
        )
        .map(BulkheadPermit::holding)
    }

    /// Takes a permit if one is free now; never blocks. The permit is
    /// returned with `release()` on the object returned.
    #[pyo3(signature = (priority = "normal"))]
    fn try_acquire(&self, priority: &str) -> PyResult<Option<BulkheadPermit>> {
        Ok(self
            .inner
            .try_acquire_owned(self::priority(priority)?)
            .ok()
            .map(BulkheadPermit::holding))
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<()> {
        take(py, &self.inner, Priority::Normal, self.timeout)
    }

    fn __exit__(
        &self,
        _ty: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> bool {
        self.inner.release_detached();
        false
    }

    /// For `async with` and async decorators: a permit now or nothing
    /// (they wait with asyncio.sleep). Release with `_release`.
    #[pyo3(signature = (priority = "normal"))]
    fn _try_take(&self, priority: &str) -> PyResult<bool> {
        Ok(
            match self.inner.try_acquire_with(self::priority(priority)?) {
                Ok(p) => {
                    p.detach();
                    true
                }
                Err(_) => false,
            },
        )
    }

    /// Returns a permit taken by `_try_take` or `_take`.
    fn _release(&self) {
        self.inner.release_detached();
    }

    /// Runs `func(*args, **kwargs)` holding a permit (default wait).
    #[pyo3(signature = (func, /, *args, **kwargs))]
    fn call(
        &self,
        py: Python<'_>,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        held_call(
            py,
            &self.inner,
            Priority::Normal,
            self.timeout,
            func,
            args,
            kwargs,
        )
    }

    #[pyo3(signature = (func, timeout = None, priority = "normal"))]
    fn _wrap(
        &self,
        func: Py<PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        priority: &str,
    ) -> PyResult<GuardedCall> {
        Ok(GuardedCall::new(
            Guard::Bulkhead {
                bulkhead: Arc::clone(&self.inner),
                priority: self::priority(priority)?,
                timeout: opt_duration(timeout, "timeout")?.unwrap_or(self.timeout),
            },
            func,
        ))
    }

    /// Changes limit and reserve of the live bulkhead together, all or
    /// nothing (a `ValueError` changes neither); an argument not given
    /// keeps its value.
    #[pyo3(signature = (*, max_concurrent = None, critical_reserve = None))]
    fn reconfigure(
        &self,
        max_concurrent: Option<&Bound<'_, PyAny>>,
        critical_reserve: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let max = opt_count(max_concurrent, "max_concurrent")?;
        let reserve = opt_count(critical_reserve, "critical_reserve")?;
        self.inner
            .reconfigure(|mut c| {
                if let Some(n) = max {
                    c = c.max_concurrent(n);
                }
                if let Some(n) = reserve {
                    c = c.critical_reserve(n);
                }
                c
            })
            .map_err(|e| config_error(e, &[("capacity", "max_concurrent")]))
    }

    /// Changes the limit on the live bulkhead.
    fn set_max_concurrent(&self, max_concurrent: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner
            .set_max_concurrent(count(max_concurrent, "max_concurrent")?)
            .map_err(|e| config_error(e, &[("capacity", "max_concurrent")]))
    }

    /// Changes the critical reserve on the live bulkhead.
    fn set_critical_reserve(&self, critical_reserve: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner
            .set_critical_reserve(count(critical_reserve, "critical_reserve")?)
            .map_err(|e| config_error(e, &[]))
    }

    #[getter]
    fn max_concurrent(&self) -> u64 {
        self.inner.snapshot().max_concurrent
    }

    #[getter]
    fn available(&self) -> u64 {
        self.inner.snapshot().available
    }

    #[getter]
    fn in_use(&self) -> u64 {
        self.inner.snapshot().in_use
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        py_dict!(py, {
            "max_concurrent" => s.max_concurrent,
            "available" => s.available,
            "in_use" => s.in_use,
            "waiting" => s.waiting,
            "rejected" => s.rejected,
            "peak" => s.peak,
        })
    }

    fn __repr__(&self) -> String {
        let s = self.inner.snapshot();
        format!(
            "<Bulkhead {}in_use={}/{}>",
            self.name
                .as_deref()
                .map(|n| format!("{n:?} "))
                .unwrap_or_default(),
            s.in_use,
            s.max_concurrent
        )
    }
}

pub(crate) fn held_call(
    py: Python<'_>,
    b: &bulkhead::Bulkhead,
    prio: Priority,
    timeout: Duration,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    take(py, b, prio, timeout)?;
    let r = func.call(args, kwargs);
    b.release_detached();
    r.map(Bound::unbind)
}

/// A permit from `Bulkhead.acquire` / `try_acquire`: `release()` returns
/// it (a second release does nothing); it is also a context manager, and
/// returned when collected.
#[pyclass(module = "failwell._native", name = "BulkheadPermit", frozen)]
#[derive(Debug)]
pub struct BulkheadPermit {
    /// Core's owned permit while held; given back by `release()` or when
    /// collected.
    permit: Mutex<Option<OwnedBulkheadPermit>>,
}

impl BulkheadPermit {
    fn holding(permit: OwnedBulkheadPermit) -> Self {
        BulkheadPermit {
            permit: Mutex::new(Some(permit)),
        }
    }
}

#[pymethods]
impl BulkheadPermit {
    /// Returns the permit; false if it was already returned.
    fn release(&self) -> bool {
        self.permit.lock().take().is_some()
    }

    #[getter]
    fn held(&self) -> bool {
        self.permit.lock().is_some()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _ty: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> bool {
        self.release();
        false
    }
}
