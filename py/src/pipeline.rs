//! `Pipeline`: the layers in core's fixed order. The loop is written in
//! Python (it sleeps with `time.sleep` or `asyncio.sleep`); every step of
//! it — the total deadline, admission through the layers in order, what an
//! attempt's outcome records, whether and when to retry — is core's,
//! through `Pipeline::begin` / `admit` / `finish` / `next`.

use std::sync::Arc;

use failwell::breaker::Outcome;
use failwell::deadline::Deadline;
use failwell::lock::Mutex;
use failwell::pipeline::{Attempt, Ended, Pipeline, Run};
use failwell::Rejected;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::breaker::PyBreaker;
use crate::bulkhead::PyBulkhead;
use crate::classify::Exclude;
use crate::convert::{config_error, opt_duration, rejected, secs};
use crate::rate_limit::PyRateLimiter;
use crate::retry::PyRetry;
use crate::shed::PyAdaptiveLimit;

/// The native pipeline; `failwell.Pipeline` subclasses it and runs the loop.
#[pyclass(module = "failwell._native", name = "Pipeline", subclass, frozen)]
#[derive(Debug)]
pub struct PyPipeline {
    inner: Arc<Pipeline>,
    /// `exclude=` joined with the breaker's own.
    exclude: Exclude,
    /// A fleet breaker layer: it keeps syncing while the pipeline lives.
    _breaker: Option<failwell_fleet::AnyBreaker>,
}

#[pymethods]
impl PyPipeline {
    /// Every layer optional; see `failwell.Pipeline`. Other keyword
    /// arguments are left to the Python subclass's `__init__`.
    #[new]
    #[pyo3(signature = (
        *, total_timeout = None, retry = None, breaker = None, rate_limiter = None,
        adaptive_limit = None, bulkhead = None, attempt_timeout = None,
        priority = "normal", exclude = None, **_python_side
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        total_timeout: Option<&Bound<'_, PyAny>>,
        retry: Option<&Bound<'_, PyRetry>>,
        breaker: Option<&Bound<'_, PyBreaker>>,
        rate_limiter: Option<&Bound<'_, PyRateLimiter>>,
        adaptive_limit: Option<&Bound<'_, PyAdaptiveLimit>>,
        bulkhead: Option<&Bound<'_, PyBulkhead>>,
        attempt_timeout: Option<&Bound<'_, PyAny>>,
        priority: &str,
        exclude: Option<&Bound<'_, PyAny>>,
        _python_side: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<Self> {
        let mut b = Pipeline::builder().priority(crate::bulkhead::priority(priority)?);
        if let Some(d) = opt_duration(total_timeout, "total_timeout")? {
            b = b.total_timeout(d);
        }
        if let Some(d) = opt_duration(attempt_timeout, "attempt_timeout")? {
            b = b.attempt_timeout(d);
        }
        if let Some(r) = retry {
            b = b.retry(Arc::clone(&r.get().inner));
        }
        let mut own = Exclude::parse(py, exclude)?;
        let mut fleet_breaker = None;
        if let Some(x) = breaker {
            b = b.breaker(x.get().inner.arc());
            fleet_breaker = Some(x.get().inner.clone());
            own = own.join(py, &x.get().exclude)?;
        }
        if let Some(x) = rate_limiter {
            let Some(l) = x.get().inner.as_local() else {
                return Err(PyValueError::new_err(
                    "rate_limiter: a fleet rate limiter is no pipeline layer (use it before the pipeline's call)",
                ));
            };
            b = b.rate_limiter(Arc::clone(l));
        }
        if let Some(x) = adaptive_limit {
            b = b.adaptive_limit(Arc::clone(&x.get().inner));
        }
        if let Some(x) = bulkhead {
            b = b.bulkhead(Arc::clone(&x.get().inner));
        }
        Ok(PyPipeline {
            inner: Arc::new(b.build().map_err(|e| config_error(e, &[]))?),
            exclude: own,
            _breaker: fleet_breaker,
        })
    }

    /// Starts one call within `deadline_ns` (the caller's current
    /// deadline's instant, or None); raises `DeadlineExceededError` if a
    /// retry policy is set and the deadline has passed.
    #[pyo3(signature = (deadline_ns = None))]
    fn _begin(&self, py: Python<'_>, deadline_ns: Option<u64>) -> PyResult<PipelineRun> {
        match self.inner.begin(deadline_ns.map(Deadline::at)) {
            Ok(run) => Ok(PipelineRun {
                pipeline: Arc::clone(&self.inner),
                exclude: self.exclude.clone_ref(py),
                run: Mutex::new(run),
                refused: Mutex::new(None),
            }),
            Err(r) => Err(rejected(py, r)),
        }
    }
}

/// One call in progress through a pipeline.
#[pyclass(module = "failwell._native", name = "PipelineRun", frozen)]
#[derive(Debug)]
pub struct PipelineRun {
    pipeline: Arc<Pipeline>,
    exclude: Exclude,
    run: Mutex<Run>,
    /// The last refusal `admit` raised, for `next_after_refusal`.
    refused: Mutex<Option<Rejected>>,
}

impl PipelineRun {
    fn next(&self, py: Python<'_>, ended: Ended) -> PyResult<Option<f64>> {
        let mut run = self.run.lock();
        match self.pipeline.next(&mut run, ended) {
            Ok(d) => Ok(d.map(secs)),
            Err(r) => Err(rejected(py, r)),
        }
    }
}

#[pymethods]
impl PipelineRun {
    /// The attempt about to run or running (1-based).
    #[getter]
    fn attempt(&self) -> u32 {
        self.run.lock().attempt()
    }

    /// Admits the next attempt through the layers, in order, or raises the
    /// refusal (`CircuitOpenError`, `RateLimitedError`, `ShedError`,
    /// `BulkheadFullError`, `DeadlineExceededError`).
    fn admit(&self, py: Python<'_>) -> PyResult<PipelineAttempt> {
        let run = self.run.lock();
        if run.is_stopped() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "admit: next() said to stop; the call has its answer",
            ));
        }
        let result = self.pipeline.admit(&run);
        drop(run);
        match result {
            Ok(a) => {
                let deadline = a.deadline();
                Ok(PipelineAttempt {
                    pipeline: Arc::clone(&self.pipeline),
                    exclude: self.exclude.clone_ref(py),
                    attempt: Mutex::new(Some(a)),
                    deadline_ns: (!deadline.is_never()).then(|| deadline.as_nanos()),
                })
            }
            Err(r) => {
                *self.refused.lock() = Some(r);
                Err(rejected(py, r))
            }
        }
    }

    /// After an attempt that failed: seconds to sleep before the next, or
    /// None to stop; raises `RetryBudgetExhaustedError`.
    fn next_after_failure(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.next(py, Ended::Outcome(Outcome::Failure))
    }

    /// After `admit` refused: seconds to sleep before the next attempt (the
    /// retry policy retries refusals only with `retry_rejected=True`, and
    /// no sooner than their `retry_after`), or None to stop.
    fn next_after_refusal(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        let Some(r) = *self.refused.lock() else {
            return Err(PyValueError::new_err("no refusal to retry after"));
        };
        self.next(py, Ended::Refused(r))
    }
}

/// An admitted attempt, holding its layers' permits until it records its
/// outcome once; collected unrecorded, it counts as ignored.
#[pyclass(module = "failwell._native", name = "PipelineAttempt", frozen)]
#[derive(Debug)]
pub struct PipelineAttempt {
    pipeline: Arc<Pipeline>,
    exclude: Exclude,
    attempt: Mutex<Option<Attempt>>,
    deadline_ns: Option<u64>,
}

impl PipelineAttempt {
    fn finish(&self, outcome: Outcome) -> PyResult<()> {
        match self.attempt.lock().take() {
            Some(a) => {
                self.pipeline.finish(a, outcome);
                Ok(())
            }
            None => Err(PyValueError::new_err("attempt already recorded")),
        }
    }
}

#[pymethods]
impl PipelineAttempt {
    /// The attempt's deadline (a monotonic instant in ns), None for never.
    #[getter]
    fn deadline_ns(&self) -> Option<u64> {
        self.deadline_ns
    }

    /// The call returned a good result.
    fn success(&self) -> PyResult<()> {
        self.finish(Outcome::Success)
    }

    /// The call returned a result that counts as a failure (and is retried).
    fn failure(&self) -> PyResult<()> {
        self.finish(Outcome::Failure)
    }

    /// Records what `exc` means under the pipeline's `exclude` rules (and
    /// its breaker's): a non-`Exception` is ignored, an excluded exception
    /// is a success, anything else a failure. Returns whether it was a
    /// failure (the retry policy may retry it). A predicate that raises:
    /// failure, and its exception is raised here, chained to `exc`.
    fn record_exception(&self, py: Python<'_>, exc: &Bound<'_, PyAny>) -> PyResult<bool> {
        let outcome = self.exclude.record_exception(py, exc, |o| self.finish(o))?;
        Ok(outcome == Outcome::Failure)
    }

    /// Whether the outcome is still to be recorded.
    #[getter]
    fn pending(&self) -> bool {
        self.attempt.lock().is_some()
    }
}

impl Drop for PipelineAttempt {
    fn drop(&mut self) {
        if let Some(a) = self.attempt.get_mut().take() {
            self.pipeline.finish(a, Outcome::Ignore);
        }
    }
}
