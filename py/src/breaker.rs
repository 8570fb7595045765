//! `CircuitBreaker`, its permits, and the native callable a decorated sync
//! function becomes (acquire, call, classify, record — one native call).

use std::sync::Arc;
use std::time::Duration;

use failwell::breaker::{self, Outcome, OwnedPermit, Window};
use failwell::lock::Mutex;
use failwell_fleet::AnyBreaker;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::call::{Guard, GuardedCall};
use crate::classify::{chain, Exclude};
use crate::convert::{
    call_back, config_error, count, duration, finite, opt_count, opt_duration, opt_finite, py_dict,
    rejected, secs,
};

/// core's field names → this class's keyword arguments.
const RENAMES: &[(&str, &str)] = &[
    ("window.length", "window_duration"),
    ("window.buckets", "window_buckets"),
    ("failure_rate_threshold", "failure_rate"),
    ("slow_call_rate_threshold", "slow_call_rate"),
    (
        "trip_policy",
        "consecutive_failures/failure_rate/slow_call_rate",
    ),
];

/// The native circuit breaker; `failwell.CircuitBreaker` subclasses it and
/// adds the decorator, `with` and `async with` forms.
#[pyclass(module = "failwell._native", name = "CircuitBreaker", subclass, frozen)]
#[derive(Debug)]
pub struct PyBreaker {
    /// The breaker that admits calls: local, in a region, or a fleet
    /// breaker's local one (kept syncing while this object lives).
    pub(crate) inner: AnyBreaker,
    pub(crate) exclude: Exclude,
    name: Option<String>,
    /// Listener calls that raised (logged, then counted here).
    listener_errors: Arc<Mutex<u64>>,
}

impl PyBreaker {
    /// A permit classifying exceptions with `exclude`, or `CircuitOpenError`.
    fn permit(&self, py: Python<'_>, exclude: Exclude) -> PyResult<BreakerPermit> {
        match self.inner.breaker().try_acquire_owned() {
            Ok(p) => Ok(BreakerPermit {
                exclude,
                permit: Mutex::new(p),
            }),
            Err(r) => Err(rejected(py, r)),
        }
    }
}

#[pymethods]
impl PyBreaker {
    #[new]
    #[pyo3(signature = (
        *, name = None, consecutive_failures = None, failure_rate = None,
        window = None, window_duration = None, window_buckets = None,
        slow_call_rate = None, slow_call_duration = None, minimum_calls = None,
        half_open_calls = None, half_open_max_wait = None, open_for = None,
        open_for_multiplier = None, open_for_max = None, exclude = None,
        _region = None, _slot = None, _attach = false, _fleet = None,
        _quorum = None, _sync_every = None, _probe_claim = None, _fleet_window = None,
        _on_unavailable = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: Option<String>,
        consecutive_failures: Option<&Bound<'_, PyAny>>,
        failure_rate: Option<&Bound<'_, PyAny>>,
        window: Option<&Bound<'_, PyAny>>,
        window_duration: Option<&Bound<'_, PyAny>>,
        window_buckets: Option<&Bound<'_, PyAny>>,
        slow_call_rate: Option<&Bound<'_, PyAny>>,
        slow_call_duration: Option<&Bound<'_, PyAny>>,
        minimum_calls: Option<&Bound<'_, PyAny>>,
        half_open_calls: Option<&Bound<'_, PyAny>>,
        half_open_max_wait: Option<&Bound<'_, PyAny>>,
        open_for: Option<&Bound<'_, PyAny>>,
        open_for_multiplier: Option<&Bound<'_, PyAny>>,
        open_for_max: Option<&Bound<'_, PyAny>>,
        exclude: Option<&Bound<'_, PyAny>>,
        _region: Option<PyRef<'_, crate::region::PyRegion>>,
        _slot: Option<String>,
        _attach: bool,
        _fleet: Option<PyRef<'_, crate::fleet::PyFleet>>,
        _quorum: Option<&Bound<'_, PyAny>>,
        _sync_every: Option<&Bound<'_, PyAny>>,
        _probe_claim: Option<&Bound<'_, PyAny>>,
        _fleet_window: Option<&Bound<'_, PyAny>>,
        _on_unavailable: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // Only the arguments given are set: every default is core's.
        let window = match (window, opt_duration(window_duration, "window_duration")?) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "window: give either window (calls) or window_duration (seconds), not both",
                ))
            }
            (_, Some(length)) => Some(match opt_count(window_buckets, "window_buckets")? {
                Some(buckets) => Window::Time { length, buckets },
                None => Window::time(length),
            }),
            (Some(n), None) => Some(Window::Count(count(n, "window")?)),
            (None, None) => None,
        };
        let mut b = breaker::CircuitBreaker::builder();
        if let Some(n) = consecutive_failures {
            b = b.consecutive_failures(count(n, "consecutive_failures")?);
        }
        if let Some(r) = failure_rate {
            b = b.failure_rate_threshold(finite(r, "failure_rate")?);
        }
        // Each keyword is the builder's setter of the same name: the
        // duration alone turns the slow-call policy on at 100 %, as in Rust.
        if let Some(r) = slow_call_rate {
            b = b.slow_call_threshold(finite(r, "slow_call_rate")?);
        }
        if let Some(d) = opt_duration(slow_call_duration, "slow_call_duration")? {
            b = b.slow_call_duration(d);
        }
        if let Some(w) = window {
            b = b.window(w);
        }
        if let Some(n) = minimum_calls {
            b = b.minimum_calls(count(n, "minimum_calls")?);
        }
        if let Some(n) = opt_count(half_open_calls, "half_open_calls")? {
            b = b.half_open_calls(n);
        }
        if let Some(d) = opt_duration(half_open_max_wait, "half_open_max_wait")? {
            b = b.half_open_max_wait(d);
        }
        if let Some(d) = opt_duration(open_for, "open_for")? {
            b = b.open_for(d);
        }
        if let Some(m) = opt_finite(open_for_multiplier, "open_for_multiplier")? {
            b = b.open_for_multiplier(m);
        }
        if let Some(d) = opt_duration(open_for_max, "open_for_max")? {
            b = b.open_for_max(d);
        }
        // `_region`, `_slot` and `_attach` are `failwell.SharedRegion`'s:
        // the breaker then lives in the region's slot `_slot`, shared by
        // every process using it.
        // `_fleet` and the options after it are `failwell.Fleet`'s: the
        // breaker then shares its verdict with every instance using the
        // name `_slot` in that fleet.
        let inner = match (_region, _fleet, _slot) {
            (Some(region), None, Some(slot)) if _attach => {
                AnyBreaker::local(region.attach_circuit_breaker(py, &slot)?)
            }
            (Some(region), None, Some(slot)) => {
                AnyBreaker::local(region.circuit_breaker(py, &slot, b, RENAMES)?)
            }
            (None, Some(fleet), Some(slot)) => {
                let options = crate::fleet::BreakerOptions::parse(
                    _quorum,
                    _sync_every,
                    _probe_claim,
                    _fleet_window,
                    _on_unavailable,
                )?;
                AnyBreaker::fleet(Arc::new(fleet.circuit_breaker(py, &slot, b, options, RENAMES)?))
            }
            (None, None, None) => AnyBreaker::local(b.build().map_err(|e| config_error(e, RENAMES))?),
            _ => {
                return Err(PyValueError::new_err(
                    "_slot goes with one of _region or _fleet (use SharedRegion.circuit_breaker or Fleet.circuit_breaker)",
                ))
            }
        };
        Ok(PyBreaker {
            inner,
            exclude: Exclude::parse(py, exclude)?,
            name,
            listener_errors: Arc::new(Mutex::new(0)),
        })
    }

    /// The name given at construction, if any.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Takes a permit or raises `CircuitOpenError`.
    fn acquire(&self, py: Python<'_>) -> PyResult<BreakerPermit> {
        self.permit(py, self.exclude.clone_ref(py))
    }

    /// Runs `func(*args, **kwargs)` through the breaker.
    #[pyo3(signature = (func, /, *args, **kwargs))]
    fn call(
        &self,
        py: Python<'_>,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        guarded_call(py, &self.inner, &self.exclude, func, args, kwargs)
    }

    /// A native callable running `func` through the breaker; `exclude`
    /// adds to the breaker's own.
    #[pyo3(signature = (func, exclude = None))]
    fn _wrap(
        &self,
        py: Python<'_>,
        func: Py<PyAny>,
        exclude: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<GuardedCall> {
        Ok(GuardedCall::new(
            Guard::Breaker {
                breaker: self.inner.clone(),
                exclude: self.exclude.join(py, &Exclude::parse(py, exclude)?)?,
            },
            func,
        ))
    }

    /// `exclude` joined with the breaker's own, for permits of a decorator.
    #[pyo3(signature = (exclude = None))]
    fn _acquire_with(
        &self,
        py: Python<'_>,
        exclude: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<BreakerPermit> {
        let exclude = self.exclude.join(py, &Exclude::parse(py, exclude)?)?;
        self.permit(py, exclude)
    }

    /// Changes thresholds, counts and durations of the live breaker,
    /// keeping its state and counts; arguments as at construction, only
    /// the ones given change. Which policies are on and the window are
    /// fixed at construction (a `ValueError` naming `trip_policy` or
    /// `window`). Each value takes effect on its own; an open period
    /// already running keeps its end.
    #[pyo3(signature = (
        *, consecutive_failures = None, failure_rate = None, slow_call_rate = None,
        slow_call_duration = None, minimum_calls = None, half_open_calls = None,
        half_open_max_wait = None, open_for = None, open_for_multiplier = None,
        open_for_max = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn reconfigure(
        &self,
        consecutive_failures: Option<&Bound<'_, PyAny>>,
        failure_rate: Option<&Bound<'_, PyAny>>,
        slow_call_rate: Option<&Bound<'_, PyAny>>,
        slow_call_duration: Option<&Bound<'_, PyAny>>,
        minimum_calls: Option<&Bound<'_, PyAny>>,
        half_open_calls: Option<&Bound<'_, PyAny>>,
        half_open_max_wait: Option<&Bound<'_, PyAny>>,
        open_for: Option<&Bound<'_, PyAny>>,
        open_for_multiplier: Option<&Bound<'_, PyAny>>,
        open_for_max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        // Convert every argument first, so a bad one changes nothing.
        let consecutive_failures = consecutive_failures
            .map(|n| count(n, "consecutive_failures"))
            .transpose()?;
        let failure_rate = failure_rate
            .map(|r| finite(r, "failure_rate"))
            .transpose()?;
        let slow_call_rate = slow_call_rate
            .map(|r| finite(r, "slow_call_rate"))
            .transpose()?;
        let slow_call_duration = opt_duration(slow_call_duration, "slow_call_duration")?;
        let minimum_calls = minimum_calls
            .map(|n| count(n, "minimum_calls"))
            .transpose()?;
        let half_open_calls = half_open_calls
            .map(|n| count(n, "half_open_calls"))
            .transpose()?;
        let half_open_max_wait = opt_duration(half_open_max_wait, "half_open_max_wait")?;
        let open_for = opt_duration(open_for, "open_for")?;
        let multiplier = open_for_multiplier
            .map(|m| finite(m, "open_for_multiplier"))
            .transpose()?;
        let open_for_max = opt_duration(open_for_max, "open_for_max")?;
        AnyBreaker::reconfigure(&self.inner, |mut b| {
            if let Some(n) = consecutive_failures {
                b = b.consecutive_failures(n);
            }
            if let Some(r) = failure_rate {
                b = b.failure_rate_threshold(r);
            }
            if let Some(r) = slow_call_rate {
                b = b.slow_call_threshold(r);
            }
            if let Some(d) = slow_call_duration {
                b = b.slow_call_duration(d);
            }
            if let Some(n) = minimum_calls {
                b = b.minimum_calls(n);
            }
            if let Some(n) = half_open_calls {
                b = b.half_open_calls(n);
            }
            if let Some(d) = half_open_max_wait {
                b = b.half_open_max_wait(d);
            }
            if let Some(d) = open_for {
                b = b.open_for(d);
            }
            if let Some(m) = multiplier {
                b = b.open_for_multiplier(m);
            }
            if let Some(d) = open_for_max {
                b = b.open_for_max(d);
            }
            b
        })
        // `trip_policy` keeps its name here: it is what was refused.
        .map_err(|e| config_error(e, &RENAMES[..2]))
    }

    /// The settings in force, as a dict (durations in seconds; a policy
    /// that is off reads None).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.config();
        let (window, window_duration, window_buckets) = match c.window() {
            Some(Window::Count(n)) => (Some(n), None, None),
            Some(Window::Time { length, buckets }) => (None, Some(secs(length)), Some(buckets)),
            None => (None, None, None),
        };
        py_dict!(py, {
            "consecutive_failures" => c.consecutive_failures(),
            "failure_rate" => c.failure_rate(),
            "slow_call_rate" => c.slow_call_rate(),
            "slow_call_duration" => c.slow_call_duration().map(secs),
            "window" => window,
            "window_duration" => window_duration,
            "window_buckets" => window_buckets,
            "minimum_calls" => c.minimum_calls(),
            "half_open_calls" => c.half_open_calls(),
            "half_open_max_wait" => secs(c.half_open_max_wait()),
            "open_for" => secs(c.open_for()),
            "open_for_multiplier" => c.open_for_multiplier(),
            "open_for_max" => secs(c.open_for_max()),
        })
    }

    /// One of "closed", "open", "half_open", "forced_open", "disabled",
    /// "metrics_only".
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    /// Seconds until an open breaker admits probes, else None.
    #[getter]
    fn retry_after(&self) -> Option<f64> {
        self.inner.retry_after().map(secs)
    }

    fn force_open(&self) {
        self.inner.force_open();
    }

    fn disable(&self) {
        self.inner.disable();
    }

    fn metrics_only(&self) {
        self.inner.metrics_only();
    }

    fn reset(&self) {
        self.inner.reset();
    }

    /// Opens now for `duration` (a server's Retry-After); 0 opens it already
    /// expired, so the next call is a half-open probe.
    fn open_for(&self, duration_: &Bound<'_, PyAny>) -> PyResult<()> {
        // Zero, as in Rust and C, opens it already expired: the next call
        // is a half-open probe (a Retry-After of 0).
        self.inner.open_for(duration(duration_, "duration")?);
        Ok(())
    }

    /// Calls `callback(from_state, to_state)` on each transition, on the
    /// thread that caused it, after the breaker's lock is released. An
    /// exception in the callback is logged through the `failwell` logger and
    /// counted (`snapshot()["listener_errors"]`). Returns a handle for
    /// `remove_listener`.
    fn add_listener(&self, callback: &Bound<'_, PyAny>) -> PyResult<ListenerHandle> {
        if !callback.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "callback must be callable",
            ));
        }
        let callback = callback.clone().unbind();
        let errors = Arc::clone(&self.listener_errors);
        let id = self.inner.add_listener(move |t| {
            let ok = call_back("a breaker listener", &callback, |py| {
                PyTuple::new(py, [t.from.as_str(), t.to.as_str()])
            });
            if !ok {
                *errors.lock() += 1;
            }
        });
        Ok(ListenerHandle { id })
    }

    /// Removes a listener; false if it was already removed.
    fn remove_listener(&self, handle: &ListenerHandle) -> bool {
        self.inner.remove_listener(handle.id)
    }

    /// A fleet breaker's sync counts, as a dict (None for a local one):
    /// `syncs` that reached Redis, `failed_syncs`, this instance's trips
    /// reported (`votes`), fleet openings and closings applied, probes
    /// owned and verdicts reported, the fleet's verdict as last seen
    /// (`fleet_generation`, `fleet_open`), and whether `on_unavailable`
    /// (fail-open or fail-closed) holds the breaker now (`degraded`).
    fn fleet_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(f) = self.inner.as_fleet() else {
            return Ok(None);
        };
        let s = f.fleet_snapshot();
        py_dict!(py, {
            "syncs" => s.syncs,
            "failed_syncs" => s.failed_syncs,
            "votes" => s.votes,
            "opens_applied" => s.opens_applied,
            "closes_applied" => s.closes_applied,
            "probes_owned" => s.probes_owned,
            "probe_verdicts" => s.probe_verdicts,
            "fleet_generation" => s.fleet_generation,
            "fleet_open" => s.fleet_open,
            "degraded" => s.degraded,
        })
        .map(Some)
    }

    /// The counters and window figures, as a dict.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        py_dict!(py, {
            "state" => s.state.as_str(),
            "generation" => s.generation,
            "calls" => s.calls,
            "successes" => s.successes,
            "failures" => s.failures,
            "slow_calls" => s.slow_calls,
            "rejected" => s.rejected,
            "ignored" => s.ignored,
            "transitions" => s.transitions,
            "opened" => s.opened,
            "window_calls" => s.window_calls,
            "failure_rate" => s.failure_rate,
            "slow_call_rate" => s.slow_call_rate,
            "consecutive_failures" => s.consecutive_failures,
            "listener_panics" => s.listener_panics,
            "listener_errors" => s.listener_panics + *self.listener_errors.lock(),
        })
    }

    fn __repr__(&self) -> String {
        let name = self
            .name
            .as_deref()
            .map(|n| format!("{n:?} "))
            .unwrap_or_default();
        format!(
            "<CircuitBreaker {name}state={}>",
            self.inner.state().as_str()
        )
    }
}

/// What `add_listener` returns, for `remove_listener`.
#[pyclass(module = "failwell._native", name = "ListenerHandle", frozen)]
#[derive(Debug)]
pub struct ListenerHandle {
    id: breaker::ListenerId,
}

/// Acquire, call, classify, record.
#[inline]
pub(crate) fn guarded_call(
    py: Python<'_>,
    b: &breaker::CircuitBreaker,
    exclude: &Exclude,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let permit = b.try_acquire().map_err(|r| rejected(py, r))?;
    match func.call(args, kwargs) {
        Ok(v) => {
            permit.success();
            Ok(v.unbind())
        }
        Err(e) => {
            let (outcome, raised) = exclude.outcome(py, &e);
            permit.record(outcome);
            Err(chain(py, e, raised))
        }
    }
}

/// A permit taken from a breaker. Record it once with `success()`,
/// `failure()`, `ignore()` or `record_exception(exc)`; a permit never
/// recorded is ignored when collected (it frees its half-open slot).
#[pyclass(module = "failwell._native", name = "BreakerPermit", frozen)]
#[derive(Debug)]
pub struct BreakerPermit {
    exclude: Exclude,
    /// Core's owned permit: recorded once, ignored when dropped.
    permit: Mutex<OwnedPermit>,
}

impl BreakerPermit {
    fn record(&self, outcome: Outcome, d: Option<Duration>) -> PyResult<()> {
        if self.permit.lock().record_with(outcome, d) {
            Ok(())
        } else {
            Err(PyValueError::new_err("permit already recorded"))
        }
    }
}

#[pymethods]
impl BreakerPermit {
    /// Records a success; `duration` (seconds) overrides the measured one.
    #[pyo3(signature = (duration = None))]
    fn success(&self, duration: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.record(Outcome::Success, opt_duration(duration, "duration")?)
    }

    /// Records a failure; `duration` (seconds) overrides the measured one.
    #[pyo3(signature = (duration = None))]
    fn failure(&self, duration: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.record(Outcome::Failure, opt_duration(duration, "duration")?)
    }

    /// Counts neither; frees a half-open slot.
    fn ignore(&self) -> PyResult<()> {
        self.record(Outcome::Ignore, None)
    }

    /// Records what `exc` means under the breaker's `exclude` rules: a
    /// non-`Exception` is ignored, an excluded exception is a success,
    /// anything else a failure. A predicate that raises: failure, and its
    /// exception is raised here, chained to `exc`.
    fn record_exception(&self, py: Python<'_>, exc: &Bound<'_, PyAny>) -> PyResult<()> {
        self.exclude
            .record_exception(py, exc, |o| self.record(o, None))
            .map(drop)
    }

    /// Whether this permit is still to be recorded.
    #[getter]
    fn pending(&self) -> bool {
        !self.permit.lock().is_recorded()
    }

    /// The state it was taken in.
    #[getter]
    fn state(&self) -> PyResult<&'static str> {
        let p = self.permit.lock();
        if p.is_recorded() {
            Err(PyValueError::new_err("permit already recorded"))
        } else {
            Ok(p.state().as_str())
        }
    }
}
