//! `Backoff`, `Jitter`, `RetryBudget` and the native retry policy. The loop
//! itself is written in Python (it sleeps with `time.sleep` or
//! `asyncio.sleep`); every decision in it — may this call start, how long to
//! wait, may it retry at all — is core's, through `Retry::begin` and
//! `Retry::step`.

use std::sync::Arc;
use std::time::Duration;

use failwell::deadline::Deadline;
use failwell::lock::Mutex;
use failwell::retry::{self, Backoff, Jitter, Run};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{
    config_error, count, duration, finite, opt_count, opt_duration, opt_finite, opt_uint64,
    py_dict, rejected, secs,
};

/// A backoff: how the base delay grows with each retry.
#[pyclass(module = "failwell._native", name = "Backoff", frozen)]
#[derive(Debug, Clone, Copy)]
pub struct PyBackoff {
    pub(crate) inner: Backoff,
}

fn checked_backoff(b: Backoff) -> PyResult<PyBackoff> {
    b.validate().map_err(|e| config_error(e, &[]))?;
    Ok(PyBackoff { inner: b })
}

#[pymethods]
impl PyBackoff {
    /// The same delay every time.
    #[staticmethod]
    fn constant(delay: &Bound<'_, PyAny>) -> PyResult<Self> {
        checked_backoff(Backoff::Constant(duration(delay, "delay")?))
    }

    /// `initial + step × (retry − 1)`, at most `max`.
    #[staticmethod]
    #[pyo3(signature = (initial, step, max))]
    fn linear(
        initial: &Bound<'_, PyAny>,
        step: &Bound<'_, PyAny>,
        max: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        checked_backoff(Backoff::Linear {
            initial: duration(initial, "initial")?,
            step: duration(step, "step")?,
            max: duration(max, "max")?,
        })
    }

    /// `initial × multiplier^(retry − 1)`, at most `max` (defaults: 0.1 s
    /// doubling to 10 s).
    #[staticmethod]
    #[pyo3(signature = (initial = None, multiplier = None, max = None))]
    fn exponential(
        initial: Option<&Bound<'_, PyAny>>,
        multiplier: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        checked_backoff(Backoff::exponential(
            opt_duration(initial, "initial")?.unwrap_or(retry::DEFAULT_BACKOFF_INITIAL),
            opt_finite(multiplier, "multiplier")?.unwrap_or(retry::DEFAULT_BACKOFF_MULTIPLIER),
            opt_duration(max, "max")?.unwrap_or(retry::DEFAULT_BACKOFF_MAX),
        ))
    }

    /// The base delay (before jitter) after retry number `retry` (1-based).
    fn delay(&self, retry: &Bound<'_, PyAny>) -> PyResult<f64> {
        Ok(secs(self.inner.delay(count(retry, "retry")?)))
    }

    fn __repr__(&self) -> String {
        format!("Backoff({:?})", self.inner)
    }
}

/// A jitter: how the base delay is randomised.
#[pyclass(module = "failwell._native", name = "Jitter", frozen)]
#[derive(Debug, Clone, Copy)]
pub struct PyJitter {
    pub(crate) inner: Jitter,
}

#[pymethods]
impl PyJitter {
    /// No randomness.
    #[staticmethod]
    fn none() -> Self {
        PyJitter {
            inner: Jitter::None,
        }
    }

    /// Uniform in [0, base] (AWS's "full jitter"; the default).
    #[staticmethod]
    fn full() -> Self {
        PyJitter {
            inner: Jitter::Full,
        }
    }

    /// Uniform in [base/2, base].
    #[staticmethod]
    fn equal() -> Self {
        PyJitter {
            inner: Jitter::Equal,
        }
    }

    /// Uniform in [initial, 3 × previous], capped (AWS's "decorrelated").
    #[staticmethod]
    fn decorrelated() -> Self {
        PyJitter {
            inner: Jitter::Decorrelated,
        }
    }

    /// Uniform in [base × (1 − fraction), base × (1 + fraction)].
    #[staticmethod]
    fn symmetric(fraction: &Bound<'_, PyAny>) -> PyResult<Self> {
        let j = Jitter::Symmetric(finite(fraction, "fraction")?);
        j.validate()
            .map_err(|e| config_error(e, &[("jitter", "fraction")]))?;
        Ok(PyJitter { inner: j })
    }

    fn __repr__(&self) -> String {
        format!("Jitter({:?})", self.inner)
    }
}

/// A retry budget shared by policies: retries may be at most `ratio` of
/// calls plus `min_per_second`, over the last `ttl` seconds (defaults 0.2,
/// 3.0, 10 s — Finagle's).
#[pyclass(module = "failwell._native", name = "RetryBudget", frozen)]
#[derive(Debug)]
pub struct PyRetryBudget {
    pub(crate) inner: Arc<retry::RetryBudget>,
}

#[pymethods]
impl PyRetryBudget {
    ///
    /// `_region`, `_slot` and `_attach` are `failwell.SharedRegion`'s: the
    /// budget then lives in the region's slot `_slot`, shared by every
    /// process (created with these settings, or attached as stored).
    #[new]
    #[pyo3(signature = (ratio = None, min_per_second = None, ttl = None, *, _region = None, _slot = None, _attach = false))]
    fn new(
        py: Python<'_>,
        ratio: Option<&Bound<'_, PyAny>>,
        min_per_second: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
        _region: Option<PyRef<'_, crate::region::PyRegion>>,
        _slot: Option<String>,
        _attach: bool,
    ) -> PyResult<Self> {
        const RENAMES: &[(&str, &str)] = &[
            ("budget.ratio", "ratio"),
            ("budget.min_per_sec", "min_per_second"),
            ("budget.ttl", "ttl"),
            ("name", "slot"),
        ];
        let ttl = opt_duration(ttl, "ttl")?.unwrap_or(retry::DEFAULT_BUDGET_TTL);
        let ratio = opt_finite(ratio, "ratio")?.unwrap_or(retry::DEFAULT_BUDGET_RATIO);
        let min = opt_finite(min_per_second, "min_per_second")?
            .unwrap_or(retry::DEFAULT_BUDGET_MIN_PER_SECOND);
        let b = match (_region, _slot) {
            (Some(region), Some(slot)) if _attach => region.attach_retry_budget(py, &slot)?,
            (Some(region), Some(slot)) => {
                region.retry_budget(py, &slot, ratio, min, ttl, RENAMES)?
            }
            (None, None) => {
                retry::RetryBudget::with(ratio, min, ttl, failwell::clock::MonotonicClock)
                    .map_err(|e| config_error(e, RENAMES))?
            }
            _ => {
                return Err(PyValueError::new_err(
                    "_region and _slot go together (use SharedRegion.retry_budget)",
                ))
            }
        };
        Ok(PyRetryBudget { inner: Arc::new(b) })
    }

    /// Counts a call (each policy using the budget does this itself).
    fn deposit(&self) {
        self.inner.deposit();
    }

    /// Takes one retry's worth if the budget has it.
    fn try_withdraw(&self) -> bool {
        self.inner.try_withdraw()
    }

    /// Retries refused so far.
    #[getter]
    fn refused(&self) -> u64 {
        self.inner.refused()
    }
}

/// The native retry policy; `failwell.Retry` subclasses it with the loop.
#[pyclass(module = "failwell._native", name = "Retry", subclass, frozen)]
#[derive(Debug)]
pub struct PyRetry {
    pub(crate) inner: Arc<retry::Retry>,
}

#[pymethods]
impl PyRetry {
    /// Defaults: 3 attempts, exponential backoff from 0.1 s doubling to
    /// 10 s, full jitter, no elapsed limit, no budget, failwell rejections
    /// not retried. Other keyword arguments are left to the Python
    /// subclass's `__init__` (which rejects unknown ones).
    #[new]
    #[pyo3(signature = (
        *, max_attempts = None, backoff = None, jitter = None, max_elapsed = None,
        budget = None, retry_rejected = false, seed = None, **_python_side
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        max_attempts: Option<&Bound<'_, PyAny>>,
        backoff: Option<PyBackoff>,
        jitter: Option<PyJitter>,
        max_elapsed: Option<&Bound<'_, PyAny>>,
        budget: Option<&PyRetryBudget>,
        retry_rejected: bool,
        seed: Option<&Bound<'_, PyAny>>,
        _python_side: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut b = retry::Retry::builder().retry_rejected(retry_rejected);
        if let Some(n) = opt_count(max_attempts, "max_attempts")? {
            b = b.max_attempts(n);
        }
        if let Some(x) = backoff {
            b = b.backoff(x.inner);
        }
        if let Some(x) = jitter {
            b = b.jitter(x.inner);
        }
        if let Some(d) = opt_duration(max_elapsed, "max_elapsed")? {
            b = b.max_elapsed(d);
        }
        if let Some(x) = budget {
            b = b.budget(Arc::clone(&x.inner));
        }
        if let Some(s) = opt_uint64(seed, "seed")? {
            b = b.seed(s);
        }
        Ok(PyRetry {
            inner: Arc::new(b.build().map_err(|e| config_error(e, &[]))?),
        })
    }

    /// Starts one call: counts it, deposits into the budget, and raises
    /// `DeadlineExceededError` if `deadline_ns` (a `Deadline`'s instant, or
    /// None) has passed.
    #[pyo3(signature = (deadline_ns = None))]
    fn _begin(&self, py: Python<'_>, deadline_ns: Option<u64>) -> PyResult<RetryRun> {
        match self.inner.begin(deadline_ns.map(Deadline::at)) {
            Ok(run) => Ok(RetryRun {
                retry: Arc::clone(&self.inner),
                run: Mutex::new(run),
            }),
            Err(r) => Err(rejected(py, r)),
        }
    }

    /// The delay after attempt `attempt` given the previous one (seconds),
    /// jittered: for callers that want the numbers alone.
    fn next_delay(&self, attempt: &Bound<'_, PyAny>, previous: &Bound<'_, PyAny>) -> PyResult<f64> {
        let a = count(attempt, "attempt")?;
        if a == 0 {
            return Err(PyValueError::new_err("attempt is 1-based, got 0"));
        }
        Ok(secs(
            self.inner.next_delay(a, duration(previous, "previous")?),
        ))
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        py_dict!(py, {
            "calls" => s.calls,
            "attempts" => s.attempts,
            "retries" => s.retries,
            "budget_refusals" => s.budget_refusals,
            "deadline_refusals" => s.deadline_refusals,
        })
    }
}

/// One call in progress under a policy.
#[pyclass(module = "failwell._native", name = "RetryRun", frozen)]
#[derive(Debug)]
pub struct RetryRun {
    retry: Arc<retry::Retry>,
    run: Mutex<Run>,
}

#[pymethods]
impl RetryRun {
    /// The attempt running (1-based).
    #[getter]
    fn attempt(&self) -> u32 {
        self.run.lock().attempt()
    }

    /// The attempt failed: seconds to sleep before the next, or None when
    /// the policy gives up; raises `RetryBudgetExhaustedError`. `at_least`:
    /// a rejection's `retry_after`.
    #[pyo3(signature = (at_least = 0.0))]
    fn next(&self, py: Python<'_>, at_least: f64) -> PyResult<Option<f64>> {
        let at_least = if at_least.is_finite() && at_least > 0.0 {
            Duration::try_from_secs_f64(at_least).unwrap_or(Duration::MAX)
        } else {
            Duration::ZERO
        };
        let mut run = self.run.lock();
        match self.retry.step(&mut run, at_least) {
            Ok(d) => Ok(d.map(secs)),
            Err(r) => Err(rejected(py, r)),
        }
    }
}
