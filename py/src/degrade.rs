//! `StaleCache`: serve the last good value (saying how old) while fresh
//! fetches fail. The fetch itself runs in Python (sync or async); core
//! keeps the entries, their ages and the counters. Keys are None, bool,
//! int, float, str, bytes or tuples of them.

use std::sync::Arc;

use failwell::degrade::{Served, StaleCache};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{config_error, opt_count, opt_duration, py_dict, secs};

/// A key, converted to plain Rust data: no Python code (`__hash__`,
/// `__eq__`) ever runs under the cache's lock, where it could release the
/// GIL and deadlock against another thread waiting for that lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    None,
    Bool(bool),
    Int(i128),
    /// Floats by their bits (so `0.0` and `-0.0` are different keys).
    Float(u64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Key>),
}

/// A cached Python value.
#[derive(Debug)]
struct Value(Py<PyAny>);

impl Clone for Value {
    fn clone(&self) -> Self {
        Python::attach(|py| Value(self.0.clone_ref(py)))
    }
}

fn key(k: &Bound<'_, PyAny>) -> PyResult<Key> {
    use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString, PyTuple};
    Ok(if k.is_none() {
        Key::None
    } else if let Ok(b) = k.cast::<PyBool>() {
        Key::Bool(b.is_true())
    } else if k.is_instance_of::<PyInt>() {
        Key::Int(k.extract().map_err(|_| {
            pyo3::exceptions::PyValueError::new_err("key: an int key must fit in 128 bits")
        })?)
    } else if let Ok(f) = k.cast::<PyFloat>() {
        Key::Float(f.value().to_bits())
    } else if let Ok(s) = k.cast::<PyString>() {
        Key::Str(s.to_cow()?.into_owned())
    } else if let Ok(b) = k.cast::<PyBytes>() {
        Key::Bytes(b.as_bytes().to_vec())
    } else if let Ok(t) = k.cast::<PyTuple>() {
        Key::Tuple(t.iter().map(|x| key(&x)).collect::<PyResult<_>>()?)
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "key must be None, bool, int, float, str, bytes or a tuple of them, got {}",
            k.get_type().name()?
        )));
    })
}

/// The native cache; `failwell.StaleCache` subclasses it.
#[pyclass(module = "failwell._native", name = "StaleCache", subclass, frozen)]
#[derive(Debug)]
pub struct PyStaleCache {
    inner: Arc<StaleCache<Key, Value>>,
}

impl PyStaleCache {
    /// Registers the cache's counters in `metrics` under `name`.
    pub(crate) fn register_metrics(
        &self,
        metrics: &failwell::metrics::MetricsRegistry,
        name: String,
    ) -> Result<(), failwell::ConfigError> {
        metrics.register_stale_cache(name, Arc::clone(&self.inner))
    }
}

#[pymethods]
impl PyStaleCache {
    /// Serves values at most `max_stale` seconds old (default 300) when a
    /// fetch fails; keeps at most `capacity` keys (default 10 000; the
    /// oldest makes room).
    #[new]
    #[pyo3(signature = (*, max_stale = None, capacity = None))]
    fn new(
        max_stale: Option<&Bound<'_, PyAny>>,
        capacity: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut b = StaleCache::builder();
        if let Some(d) = opt_duration(max_stale, "max_stale")? {
            b = b.max_stale(d);
        }
        if let Some(n) = opt_count(capacity, "capacity")? {
            b = b.capacity(n as usize);
        }
        let inner = b.build().map_err(|e| config_error(e, &[]))?;
        Ok(PyStaleCache {
            inner: Arc::new(inner),
        })
    }

    /// Raises TypeError unless `key` can be a key.
    #[staticmethod]
    fn _check_key(key: &Bound<'_, PyAny>) -> PyResult<()> {
        self::key(key).map(drop)
    }

    /// Caches `value`, just fetched fresh for `key`.
    fn _put_fresh(&self, key: &Bound<'_, PyAny>, value: Py<PyAny>) -> PyResult<()> {
        self.inner.put_fresh(self::key(key)?, Value(value));
        Ok(())
    }

    /// The fetch of `key` failed: `(value, age_seconds)` if a value young
    /// enough is cached, else None (the caller re-raises its error).
    fn _serve_stale(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
    ) -> PyResult<Option<(Py<PyAny>, f64)>> {
        Ok(match self.inner.serve_stale(&self::key(key)?, ()) {
            Ok(Served::Stale { value, age, .. }) => Some((value.0.clone_ref(py), secs(age))),
            Ok(Served::Fresh(value)) => Some((value.0.clone_ref(py), 0.0)),
            Err(()) => None,
        })
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        py_dict!(py, {
            "fresh" => s.fresh,
            "stale" => s.stale,
            "misses" => s.misses,
            "entries" => s.entries,
        })
    }
}
