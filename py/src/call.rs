//! `GuardedCall`: what a decorated sync function becomes — a native
//! callable that runs the function through its guard (breaker, bulkhead or
//! rate limiter) in one native call. It carries a `__dict__`, so
//! `functools.update_wrapper` can copy the function's name, docs and
//! `__wrapped__` onto it, and binds as a method the way a function does.

use std::sync::Arc;
use std::time::Duration;

use failwell::bulkhead::{Bulkhead, Priority};
use failwell_fleet::{AnyBreaker, AnyRateLimiter};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::classify::Exclude;

/// The guard a `GuardedCall` runs its function through, with the
/// decorator's arguments.
#[derive(Debug)]
pub enum Guard {
    Breaker {
        breaker: AnyBreaker,
        exclude: Exclude,
    },
    Bulkhead {
        bulkhead: Arc<Bulkhead>,
        priority: Priority,
        timeout: Duration,
    },
    Limiter {
        limiter: AnyRateLimiter,
        cost: u32,
        timeout: Duration,
    },
}

#[pyclass(module = "failwell._native", name = "GuardedCall", frozen, dict)]
#[derive(Debug)]
pub struct GuardedCall {
    guard: Guard,
    func: Py<PyAny>,
}

impl GuardedCall {
    pub fn new(guard: Guard, func: Py<PyAny>) -> Self {
        GuardedCall { guard, func }
    }
}

#[pymethods]
impl GuardedCall {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let func = self.func.bind(py);
        match &self.guard {
            Guard::Breaker { breaker, exclude } => {
                crate::breaker::guarded_call(py, breaker, exclude, func, args, kwargs)
            }
            Guard::Bulkhead {
                bulkhead,
                priority,
                timeout,
            } => crate::bulkhead::held_call(py, bulkhead, *priority, *timeout, func, args, kwargs),
            Guard::Limiter {
                limiter,
                cost,
                timeout,
            } => {
                crate::rate_limit::take(py, limiter, *cost, *timeout)?;
                func.call(args, kwargs).map(Bound::unbind)
            }
        }
    }

    /// Binds like a function: `types.MethodType(self, obj)` when looked up
    /// on an instance, itself when looked up on the class.
    fn __get__(
        slf: &Bound<'_, Self>,
        obj: Option<&Bound<'_, PyAny>>,
        _owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        match obj {
            Some(o) if !o.is_none() => {
                static METHOD_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
                let mt = METHOD_TYPE.get_or_try_init(py, || -> PyResult<_> {
                    Ok(py.import("types")?.getattr("MethodType")?.unbind())
                })?;
                Ok(mt.bind(py).call1((slf, o))?.unbind())
            }
            _ => Ok(slf.clone().into_any().unbind()),
        }
    }
}
