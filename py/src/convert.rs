//! The translations every class shares: Python durations to `Duration`,
//! counts to integers, `ConfigError` to `ValueError`, `Rejected` to
//! failwell's exception classes, and calling back into Python from failwell's
//! own threads.

use std::time::Duration;

#[cfg(unix)]
use failwell::region::RegionError;
use failwell::{ConfigError, Rejected};
use failwell_fleet::FleetError;
#[cfg(unix)]
use pyo3::exceptions::PyOSError;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyTuple, PyType};

/// A duration argument: float or int seconds, or a `datetime.timedelta`.
/// Negative, NaN, infinite and out-of-range values are a `ValueError`
/// naming `name`; other types a `TypeError`.
pub fn duration(v: &Bound<'_, PyAny>, name: &str) -> PyResult<Duration> {
    let secs: f64 = if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be seconds (float) or a datetime.timedelta, got bool"
        )));
    } else if v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyInt>() {
        v.extract()?
    } else if is_timedelta(v)? {
        v.call_method0("total_seconds")?.extract()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{name} must be seconds (float) or a datetime.timedelta, got {}",
            v.get_type().name()?
        )));
    };
    if !secs.is_finite() {
        return Err(PyValueError::new_err(format!(
            "{name} must be a finite number of seconds, got {secs}"
        )));
    }
    if secs < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{name} must not be negative, got {secs}"
        )));
    }
    Duration::try_from_secs_f64(secs)
        .map_err(|_| PyValueError::new_err(format!("{name} is out of range: {secs}")))
}

/// An optional duration argument (`None` stays `None`).
/// A duration argument as float seconds, checked by the one rule above
/// (`None` stays `None`), for the pure-Python parts of the package.
#[pyfunction]
#[pyo3(name = "_seconds")]
pub fn seconds_arg(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<f64>> {
    Ok(opt_duration(value, name)?.map(|d| d.as_secs_f64()))
}

pub fn opt_duration(v: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => duration(v, name).map(Some),
    }
}

fn is_timedelta(v: &Bound<'_, PyAny>) -> PyResult<bool> {
    static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let py = v.py();
    let t = TIMEDELTA.get_or_try_init(py, || -> PyResult<_> {
        Ok(py
            .import("datetime")?
            .getattr("timedelta")?
            .cast_into::<PyType>()?
            .unbind())
    })?;
    v.is_instance(t.bind(py))
}

/// An integer argument within `lo ..= hi`. `bool` is refused with a
/// `TypeError` naming `name` (Python's `True` is an `int`, but never the
/// count the caller meant), as is anything that is not an `int`; a value
/// outside the range, however large, is a `ValueError` naming `name`
/// (never Python's bare `OverflowError`).
pub fn int_in(v: &Bound<'_, PyAny>, name: &str, lo: i128, hi: i128) -> PyResult<i128> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, got {}",
            v.get_type().name()?
        )));
    }
    let out_of_range = || {
        let shown = v.repr().map_or_else(|_| "?".to_string(), |r| r.to_string());
        PyValueError::new_err(format!("{name} must be in {lo} ..= {hi}, got {shown}"))
    };
    let n: i128 = v.extract().map_err(|_| out_of_range())?;
    if (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range())
    }
}

/// A count argument that must fit a `u32` (see [`int_in`]).
pub fn count(v: &Bound<'_, PyAny>, name: &str) -> PyResult<u32> {
    Ok(int_in(v, name, 0, u32::MAX as i128)? as u32)
}

/// An optional count argument (`None` stays `None`).
pub fn opt_count(v: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<u32>> {
    v.filter(|v| !v.is_none())
        .map(|v| count(v, name))
        .transpose()
}

/// An argument that must fit a `u64` (see [`int_in`]).
pub fn uint64(v: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    Ok(int_in(v, name, 0, u64::MAX as i128)? as u64)
}

/// An optional `u64` argument (`None` stays `None`).
pub fn opt_uint64(v: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<u64>> {
    v.filter(|v| !v.is_none())
        .map(|v| uint64(v, name))
        .transpose()
}

/// A number argument (`float` or `int`; `bool` and other types are a
/// `TypeError` naming `name`; an `int` too large for a float a
/// `ValueError`). NaN and infinities pass: [`finite`] refuses them where
/// they are meaningless.
pub fn number(v: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if v.is_instance_of::<PyBool>()
        || !(v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyInt>())
    {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number (float or int), got {}",
            v.get_type().name()?
        )));
    }
    v.extract()
        .map_err(|_| PyValueError::new_err(format!("{name} is too large for a float")))
}

/// A number argument extracted by pyo3 (for a parameter whose default is
/// a number): `bool` and non-numbers are a `TypeError`, which pyo3 names
/// after the argument.
#[derive(Debug, Clone, Copy)]
pub struct Number(pub f64);

impl<'a, 'py> FromPyObject<'a, 'py> for Number {
    type Error = PyErr;

    fn extract(v: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        number(&v, "the value").map(Number)
    }
}

/// A rate or probability argument: a finite number (see [`number`]).
pub fn finite(v: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    finite_f64(number(v, name)?, name)
}

/// A number already converted, checked to be finite.
pub fn finite_f64(v: f64, name: &str) -> PyResult<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be a finite number, got {v}"
        )))
    }
}

/// An optional finite number (`None` stays `None`).
pub fn opt_finite(v: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<f64>> {
    v.filter(|v| !v.is_none())
        .map(|v| finite(v, name))
        .transpose()
}

/// Seconds as a float.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A `ConfigError` as a `ValueError` whose message starts with the Python
/// argument's name: `renames` maps core's field names to the keyword
/// arguments where they differ.
pub fn config_error(e: ConfigError, renames: &[(&str, &str)]) -> PyErr {
    let field = renames
        .iter()
        .find(|(core, _)| *core == e.field())
        .map_or(e.field(), |(_, py)| py);
    PyValueError::new_err(format!("{field}: {}", e.problem()))
}

/// The exception classes of `failwell._errors`, imported once.
struct Errors {
    circuit_open: Py<PyType>,
    bulkhead_full: Py<PyType>,
    rate_limited: Py<PyType>,
    deadline: Py<PyType>,
    budget: Py<PyType>,
    shed: Py<PyType>,
    region: Py<PyType>,
    fleet: Py<PyType>,
}

fn errors(py: Python<'_>) -> PyResult<&Errors> {
    static ERRORS: PyOnceLock<Errors> = PyOnceLock::new();
    ERRORS.get_or_try_init(py, || {
        let m = py.import("failwell._errors")?;
        let get =
            |n: &str| -> PyResult<Py<PyType>> { Ok(m.getattr(n)?.cast_into::<PyType>()?.unbind()) };
        Ok(Errors {
            circuit_open: get("CircuitOpenError")?,
            bulkhead_full: get("BulkheadFullError")?,
            rate_limited: get("RateLimitedError")?,
            deadline: get("DeadlineExceededError")?,
            budget: get("RetryBudgetExhaustedError")?,
            shed: get("ShedError")?,
            region: get("RegionError")?,
            fleet: get("FleetError")?,
        })
    })
}

/// A region's refusal as a Python exception: `OSError` (with the system's
/// errno) for a failed system call, `ValueError` for a bad argument or
/// configuration (named as Python names it), `failwell.RegionError` for
/// the rest.
#[cfg(unix)]
pub fn region_error(py: Python<'_>, e: RegionError, renames: &[(&str, &str)]) -> PyErr {
    match e {
        RegionError::Config(c) => config_error(c, renames),
        RegionError::Argument { argument, problem } => {
            let arg = renames
                .iter()
                .find(|(core, _)| *core == argument)
                .map_or(argument, |(_, py)| py);
            PyValueError::new_err(format!("{arg}: {problem}"))
        }
        RegionError::Io { ref source, .. } => match source.raw_os_error() {
            Some(errno) => PyOSError::new_err((errno, e.to_string())),
            None => PyOSError::new_err(e.to_string()),
        },
        e => match errors(py) {
            Ok(errs) => PyErr::from_type(errs.region.bind(py).clone(), e.to_string()),
            Err(err) => err,
        },
    }
}

/// A fleet error as a Python exception: `ValueError` for a bad setting
/// (named as Python names it) or URL, `failwell.FleetError` for Redis
/// unreachable, slow or answering what failwell did not expect.
pub fn fleet_error(py: Python<'_>, e: FleetError, renames: &[(&str, &str)]) -> PyErr {
    match e {
        FleetError::Config(c) => config_error(c, renames),
        FleetError::Url { .. } => PyValueError::new_err(e.to_string()),
        e => match errors(py) {
            Ok(errs) => PyErr::from_type(errs.fleet.bind(py).clone(), e.to_string()),
            Err(err) => err,
        },
    }
}

/// A refusal as the matching `failwell.Rejected` subclass, with
/// `retry_after` in seconds where core knows it. A rate-limit cost above the
/// burst can never be admitted: that is a `ValueError` naming `cost`.
pub fn rejected(py: Python<'_>, r: Rejected) -> PyErr {
    let errs = match errors(py) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let (ty, msg) = match r {
        Rejected::CircuitOpen { .. } => (&errs.circuit_open, "circuit breaker is open"),
        Rejected::BulkheadFull => (&errs.bulkhead_full, "bulkhead is full"),
        Rejected::RateLimited { .. } => (&errs.rate_limited, "rate limit exceeded"),
        Rejected::Shed => (&errs.shed, "load shed: over the adaptive limit"),
        Rejected::DeadlineExceeded => (&errs.deadline, "deadline exceeded"),
        Rejected::RetryBudgetExhausted => (&errs.budget, "retry budget exhausted"),
        Rejected::ExceedsCapacity { .. } => {
            return PyValueError::new_err(
                "cost: exceeds the limiter's burst, so it can never be admitted",
            )
        }
        // `Rejected` is non-exhaustive: a new refusal still reaches Python
        // as the base class.
        _ => return PyValueError::new_err(format!("refused: {r}")),
    };
    let retry_after = r.retry_after().map(secs);
    PyErr::from_type(ty.bind(py).clone(), (msg, retry_after))
}

/// Runs `f` with the GIL on any thread (failwell's own threads included),
/// or returns `None` while the interpreter is not running, like
/// `Python::try_attach`, but keeps the thread's Python thread state from
/// then on instead of creating and deleting one on every call. Creating
/// and deleting a thread state takes CPython's runtime lock; before
/// CPython 3.12 a `fork()` at that instant left the lock held in the child,
/// which then hung in `PyOS_AfterFork_Child` (CPython gh-112275; seen with
/// a timed call on failwell's pool at the fork). With the thread state
/// kept, a worker takes that lock once in its life, not on every call.
///
/// If the interpreter starts finalising while `f` runs Python code that
/// released the GIL (a `time.sleep` in an abandoned timed call, a health
/// check doing I/O), CPython before 3.14 ends this thread with
/// `pthread_exit` when that code takes the GIL back: a forced unwind
/// through `f`. Unwinding on into the attach would release a thread state
/// that is no longer current, a fatal error that aborts the process at
/// exit. The guard below stops the unwind there instead: the thread hangs
/// until the process ends, which is what CPython 3.14 and pyo3 do for a
/// thread that asks for the GIL during finalisation.
pub fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    Python::try_attach(|py| {
        keep_thread_state(py);
        let guard = HangIfForcedOut;
        let r = f(py);
        std::mem::forget(guard);
        r
    })
}

/// Dropped only when an unwind leaves [`attach`]'s callback: a Rust panic
/// goes on unwinding; a forced unwind (`pthread_exit` from CPython during
/// finalisation, which `std::thread::panicking` does not report) parks the
/// thread for good, before any destructor that would touch Python runs.
struct HangIfForcedOut;

impl Drop for HangIfForcedOut {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        loop {
            std::thread::park();
        }
    }
}

fn keep_thread_state(_gil: Python<'_>) {
    thread_local! {
        static KEPT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !KEPT.get() {
        KEPT.set(true);
        // SAFETY: the GIL is held (`_gil`), so this thread has a thread
        // state; `PyGILState_Ensure` then only raises its counter, and the
        // matching release is never made: when the enclosing attach
        // releases, the counter stays above zero and CPython keeps the
        // thread state (deleting it with the thread's end, a fork or the
        // interpreter's finalisation, as for any thread's).
        #[allow(unsafe_code)]
        unsafe {
            pyo3::ffi::PyGILState_Ensure();
        }
    }
}

/// Calls a Python callback from one of failwell's threads (a listener, a
/// watchdog report): takes the GIL, and if the callback raises, logs the
/// exception through the `failwell` logger and returns `false` — the caller
/// counts it. Never lets an exception or panic escape; while the
/// interpreter shuts down (or before it runs) the callback is skipped.
pub fn call_back(
    what: &str,
    f: &Py<PyAny>,
    args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
) -> bool {
    attach(|py| {
        let r = args(py).and_then(|a| f.bind(py).call1(a));
        match r {
            Ok(_) => true,
            Err(e) => {
                log_exception(py, what, e);
                false
            }
        }
    })
    .unwrap_or(true)
}

/// Logs `e` through `logging.getLogger("failwell")` at error level with its
/// traceback; if logging itself fails, falls back to `sys.unraisablehook`.
pub fn log_exception(py: Python<'_>, what: &str, e: PyErr) {
    let logged = (|| -> PyResult<()> {
        let logger = py
            .import("logging")?
            .call_method1("getLogger", ("failwell",))?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("exc_info", e.clone_ref(py).into_value(py))?;
        logger.call_method("error", ("failwell: %s raised", what), Some(&kwargs))?;
        Ok(())
    })();
    if logged.is_err() {
        e.write_unraisable(py, None);
    }
}

/// A `dict` from `"key" => value` pairs (snapshots, reports).
macro_rules! py_dict {
    ($py:expr, { $($k:literal => $v:expr),* $(,)? }) => {{
        let d = pyo3::types::PyDict::new($py);
        $( d.set_item($k, $v)?; )*
        Ok::<_, pyo3::PyErr>(d)
    }};
}
pub(crate) use py_dict;

/// A permit-taking call with an optional wait, as every Python method
/// runs it: a zero `timeout` tries at once (`now`), holding the GIL, which
/// a call that cannot block needs no release of; any other waits
/// (`wait(timeout)`) with the GIL released, so failwell's and the caller's
/// other threads run meanwhile. A refusal becomes its Python exception.
pub fn take_or_wait<T: Send>(
    py: Python<'_>,
    timeout: Duration,
    now: impl FnOnce() -> Result<T, Rejected>,
    wait: impl FnOnce(Duration) -> Result<T, Rejected> + Send,
) -> PyResult<T> {
    let r = if timeout.is_zero() {
        now()
    } else {
        py.detach(|| wait(timeout))
    };
    r.map_err(|e| rejected(py, e))
}
