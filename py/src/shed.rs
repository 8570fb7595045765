//! `AdaptiveLimit` (adaptive concurrency limit) and `Throttler` (client-side
//! adaptive throttling).

use std::sync::Arc;

use failwell::bulkhead::Priority;
use failwell::lock::Mutex;
use failwell::shed::{self, Algorithm, ShedOutcome, ShedToken};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::bulkhead::priority;
use crate::convert::{
    config_error, opt_count, opt_duration, opt_finite, opt_uint64, py_dict, rejected, secs,
};

/// The native adaptive limit; `failwell.AdaptiveLimit` subclasses it.
#[pyclass(module = "failwell._native", name = "AdaptiveLimit", subclass, frozen)]
#[derive(Debug)]
pub struct PyAdaptiveLimit {
    pub(crate) inner: Arc<shed::AdaptiveLimit>,
}

#[pymethods]
impl PyAdaptiveLimit {
    /// `algorithm`: "gradient" (default; Netflix's Gradient2 rule with a
    /// baseline that learns only from unloaded windows) or "aimd" (needs
    /// `latency_threshold`, seconds: a little above the dependency's
    /// unloaded latency; `backoff_ratio` default 0.9). Limits:
    /// `initial_limit` 20, `min_limit` 20, `max_limit` 200;
    /// `critical_fraction` 0.1 of the limit is kept for critical callers.
    #[new]
    #[pyo3(signature = (
        algorithm = "gradient", *, initial_limit = None, min_limit = None, max_limit = None,
        critical_fraction = None, latency_threshold = None, backoff_ratio = None, tolerance = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        algorithm: &str,
        initial_limit: Option<&Bound<'_, PyAny>>,
        min_limit: Option<&Bound<'_, PyAny>>,
        max_limit: Option<&Bound<'_, PyAny>>,
        critical_fraction: Option<&Bound<'_, PyAny>>,
        latency_threshold: Option<&Bound<'_, PyAny>>,
        backoff_ratio: Option<&Bound<'_, PyAny>>,
        tolerance: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let algo = match algorithm {
            "gradient" => {
                let mut a = Algorithm::gradient();
                if let (Some(t), Algorithm::Gradient { tolerance, .. }) =
                    (opt_finite(tolerance, "tolerance")?, &mut a)
                {
                    *tolerance = t;
                }
                a
            }
            "aimd" => Algorithm::Aimd {
                backoff_ratio: opt_finite(backoff_ratio, "backoff_ratio")?
                    .unwrap_or(shed::DEFAULT_AIMD_BACKOFF_RATIO),
                // None: zero, which core refuses naming `latency_threshold`.
                latency_threshold: opt_duration(latency_threshold, "latency_threshold")?
                    .unwrap_or_default(),
            },
            other => {
                return Err(PyValueError::new_err(format!(
                    "algorithm must be \"gradient\" or \"aimd\", got {other:?}"
                )))
            }
        };
        let mut b = shed::AdaptiveLimit::builder().algorithm(algo);
        if let Some(n) = opt_count(min_limit, "min_limit")? {
            b = b.min_limit(n);
        }
        if let Some(n) = opt_count(max_limit, "max_limit")? {
            b = b.max_limit(n);
        }
        if let Some(n) = opt_count(initial_limit, "initial_limit")? {
            b = b.initial_limit(n);
        }
        if let Some(f) = opt_finite(critical_fraction, "critical_fraction")? {
            b = b.critical_fraction(f);
        }
        Ok(PyAdaptiveLimit {
            inner: Arc::new(b.build().map_err(|e| config_error(e, &[]))?),
        })
    }

    /// Takes a permit or raises `ShedError`.
    #[pyo3(signature = (priority = "normal"))]
    fn acquire(&self, py: Python<'_>, priority: &str) -> PyResult<ShedPermit> {
        match self.inner.try_acquire(self::priority(priority)?) {
            Ok(p) => Ok(ShedPermit {
                limit: Arc::clone(&self.inner),
                token: Mutex::new(Some(p.into_token())),
            }),
            Err(r) => Err(rejected(py, r)),
        }
    }

    /// Runs `func(*args, **kwargs)` under the limit: its latency is the
    /// sample; an exception that is a `TimeoutError` counts as a drop.
    #[pyo3(signature = (func, /, *args, **kwargs))]
    fn call(
        &self,
        py: Python<'_>,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let permit = self
            .inner
            .try_acquire(Priority::Normal)
            .map_err(|r| rejected(py, r))?;
        match func.call(args, kwargs) {
            Ok(v) => {
                permit.success();
                Ok(v.unbind())
            }
            Err(e) => {
                if e.is_instance_of::<pyo3::exceptions::PyTimeoutError>(py) {
                    permit.dropped();
                } else {
                    drop(permit);
                }
                Err(e)
            }
        }
    }

    /// The current limit.
    #[getter]
    fn limit(&self) -> u64 {
        self.inner.limit()
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        py_dict!(py, {
            "limit" => s.limit,
            "in_flight" => s.in_flight,
            "admitted" => s.admitted,
            "shed" => s.shed,
            "drops" => s.drops,
            "skipped_samples" => s.skipped_samples,
            "baseline_latency" => secs(s.baseline_latency),
        })
    }
}

/// A permit from an adaptive limit: report `success()` or `dropped()`
/// once; unreported, it is returned without a sample when collected.
#[pyclass(module = "failwell._native", name = "ShedPermit", frozen)]
#[derive(Debug)]
pub struct ShedPermit {
    limit: Arc<shed::AdaptiveLimit>,
    token: Mutex<Option<ShedToken>>,
}

impl ShedPermit {
    fn finish(&self, o: ShedOutcome) -> PyResult<()> {
        match self.token.lock().take() {
            Some(t) => {
                self.limit.record_token(t, o);
                Ok(())
            }
            None => Err(PyValueError::new_err("permit already reported")),
        }
    }
}

#[pymethods]
impl ShedPermit {
    /// The call completed; `latency` (seconds) overrides the measured one.
    #[pyo3(signature = (latency = None))]
    fn success(&self, latency: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        match opt_duration(latency, "latency")? {
            Some(d) => self.finish(ShedOutcome::SuccessWithLatency(d)),
            None => self.finish(ShedOutcome::Success),
        }
    }

    /// The call was dropped (timed out, refused for overload).
    fn dropped(&self) -> PyResult<()> {
        self.finish(ShedOutcome::Dropped)
    }

    /// Returns the permit without a sample.
    fn ignore(&self) -> PyResult<()> {
        self.finish(ShedOutcome::Ignore)
    }

    #[getter]
    fn pending(&self) -> bool {
        self.token.lock().is_some()
    }
}

impl Drop for ShedPermit {
    fn drop(&mut self) {
        if let Some(t) = self.token.get_mut().take() {
            self.limit.record_token(t, ShedOutcome::Ignore);
        }
    }
}

/// Google SRE's client-side adaptive throttling: rejects locally with
/// probability `max(0, (requests − k × accepts) / (requests + 1))`.
#[pyclass(module = "failwell._native", name = "Throttler", frozen)]
#[derive(Debug)]
pub struct PyThrottler {
    inner: shed::Throttler,
}

#[pymethods]
impl PyThrottler {
    /// `k` default 2.0, `window` default 120 s (the SRE book's).
    #[new]
    #[pyo3(signature = (k = None, window = None, seed = None))]
    fn new(
        k: Option<&Bound<'_, PyAny>>,
        window: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let window = opt_duration(window, "window")?.unwrap_or(shed::DEFAULT_THROTTLER_WINDOW);
        Ok(PyThrottler {
            inner: shed::Throttler::with(
                opt_finite(k, "k")?.unwrap_or(shed::DEFAULT_THROTTLER_K),
                window,
                failwell::clock::MonotonicClock,
                opt_uint64(seed, "seed")?,
            )
            .map_err(|e| config_error(e, &[]))?,
        })
    }

    /// Counts a request and decides whether to send it; raises `ShedError`
    /// when throttled locally.
    fn try_send(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.try_send().map_err(|r| rejected(py, r))
    }

    /// The backend accepted the request.
    fn accepted(&self) {
        self.inner.accepted();
    }

    #[getter]
    fn rejection_probability(&self) -> f64 {
        self.inner.rejection_probability()
    }

    #[getter]
    fn throttled(&self) -> u64 {
        self.inner.throttled()
    }
}
