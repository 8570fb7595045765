//! How a Python exception maps onto a recorded outcome: the translation of
//! `exclude=` (exception types or predicates) into success / failure /
//! ignore.

use failwell::breaker::Outcome;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

/// The `exclude=` argument, split: exception types (one tuple, for one
/// `isinstance` check) and predicates called with the exception.
#[derive(Debug)]
pub struct Exclude {
    types: Py<PyTuple>,
    predicates: Vec<Py<PyAny>>,
}

impl Exclude {
    /// Nothing excluded.
    pub fn none(py: Python<'_>) -> Self {
        Exclude {
            types: PyTuple::empty(py).unbind(),
            predicates: Vec::new(),
        }
    }

    /// Parses `exclude`: `None`, one exception type, one predicate, or an
    /// iterable of them. Anything else is a `TypeError` naming `exclude`.
    pub fn parse(py: Python<'_>, v: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let Some(v) = v.filter(|v| !v.is_none()) else {
            return Ok(Exclude::none(py));
        };
        let items: Vec<Bound<'_, PyAny>> =
            if v.is_instance_of::<PyType>() || v.is_callable() {
                vec![v.clone()]
            } else {
                match v.try_iter() {
                    Ok(it) => it.collect::<PyResult<_>>()?,
                    Err(_) => return Err(PyTypeError::new_err(
                        "exclude must be an exception type, a predicate, or an iterable of them",
                    )),
                }
            };
        let base = py.get_type::<pyo3::exceptions::PyBaseException>();
        let mut types = Vec::new();
        let mut predicates = Vec::new();
        for item in items {
            if let Ok(t) = item.cast::<PyType>() {
                if t.is_subclass(&base)? {
                    types.push(item.clone());
                    continue;
                }
                return Err(PyTypeError::new_err(format!(
                    "exclude: {} is a class but not an exception type",
                    t.name()?
                )));
            }
            if item.is_callable() {
                predicates.push(item.unbind());
                continue;
            }
            return Err(PyTypeError::new_err(format!(
                "exclude: expected an exception type or a predicate, got {}",
                item.get_type().name()?
            )));
        }
        Ok(Exclude {
            types: PyTuple::new(py, types)?.unbind(),
            predicates,
        })
    }

    /// Both lists, this one's first.
    pub fn join(&self, py: Python<'_>, more: &Exclude) -> PyResult<Exclude> {
        if more.is_empty(py) {
            return Ok(self.clone_ref(py));
        }
        let mut types: Vec<Bound<'_, PyAny>> = self.types.bind(py).iter().collect();
        types.extend(more.types.bind(py).iter());
        let mut predicates: Vec<Py<PyAny>> =
            self.predicates.iter().map(|p| p.clone_ref(py)).collect();
        predicates.extend(more.predicates.iter().map(|p| p.clone_ref(py)));
        Ok(Exclude {
            types: PyTuple::new(py, types)?.unbind(),
            predicates,
        })
    }

    fn is_empty(&self, py: Python<'_>) -> bool {
        self.types.bind(py).is_empty() && self.predicates.is_empty()
    }

    /// A copy sharing the same Python objects.
    pub fn clone_ref(&self, py: Python<'_>) -> Exclude {
        Exclude {
            types: self.types.clone_ref(py),
            predicates: self.predicates.iter().map(|p| p.clone_ref(py)).collect(),
        }
    }

    /// The outcome an exception records: an exception that is not an
    /// `Exception` (KeyboardInterrupt, SystemExit, asyncio.CancelledError)
    /// is ignored — never a failure, and its permit is freed; an excluded one
    /// is a success (the dependency answered; the error is the caller's
    /// business, as in pybreaker); anything else is a failure. A predicate
    /// that raises makes the outcome a failure and its exception is returned.
    pub fn outcome(&self, py: Python<'_>, err: &PyErr) -> (Outcome, Option<PyErr>) {
        if !err.is_instance_of::<PyException>(py) {
            return (Outcome::Ignore, None);
        }
        let value = err.value(py);
        match value.is_instance(self.types.bind(py).as_any()) {
            Ok(true) => return (Outcome::Success, None),
            Ok(false) => {}
            Err(e) => return (Outcome::Failure, Some(e)),
        }
        for p in &self.predicates {
            match p.bind(py).call1((value,)).and_then(|r| r.is_truthy()) {
                Ok(true) => return (Outcome::Success, None),
                Ok(false) => {}
                Err(e) => return (Outcome::Failure, Some(e)),
            }
        }
        (Outcome::Failure, None)
    }
}

impl Exclude {
    /// What a `record_exception(exc)` method does: classifies `exc` (see
    /// [`Exclude::outcome`]), records the outcome with `record`, and returns
    /// it; a predicate that raised is raised here, chained to `exc`.
    pub fn record_exception(
        &self,
        py: Python<'_>,
        exc: &Bound<'_, PyAny>,
        record: impl FnOnce(Outcome) -> PyResult<()>,
    ) -> PyResult<Outcome> {
        let err = PyErr::from_value(exc.clone());
        let (outcome, raised) = self.outcome(py, &err);
        record(outcome)?;
        match raised {
            Some(r) => Err(chain(py, err, Some(r))),
            None => Ok(outcome),
        }
    }
}

/// Chains `raised` (a predicate's exception) onto the call's own error, so
/// neither is lost.
pub fn chain(py: Python<'_>, call_error: PyErr, raised: Option<PyErr>) -> PyErr {
    match raised {
        None => call_error,
        Some(r) => {
            r.set_cause(py, Some(call_error));
            r
        }
    }
}
