//! `failwell._native`: failwell's core exposed to Python. Thin by design:
//! it translates arguments, errors and callbacks; decorators, context
//! managers and asyncio support live in the Python package beside it
//! (`py/python/failwell/`).

#![deny(unsafe_code)]

mod breaker;
mod bulkhead;
mod call;
mod chaos;
mod classify;
mod convert;
mod deadline;
mod degrade;
mod fleet;
mod health;
mod metrics;
mod pipeline;
mod rate_limit;
mod region;
mod retry;
mod shed;
mod watchdog;

use pyo3::prelude::*;

/// Every class is safe to share between threads (each wraps a thread-safe
/// core type behind an `Arc`, and mutable state sits behind a lock), so the
/// module declares that it runs without the GIL on free-threaded builds.
#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<breaker::PyBreaker>()?;
    m.add_class::<breaker::BreakerPermit>()?;
    m.add_class::<breaker::ListenerHandle>()?;
    m.add_class::<bulkhead::PyBulkhead>()?;
    m.add_class::<bulkhead::BulkheadPermit>()?;
    m.add_class::<call::GuardedCall>()?;
    m.add_class::<rate_limit::PyRateLimiter>()?;
    m.add_class::<region::PyRegion>()?;
    m.add_class::<fleet::PyFleet>()?;
    m.add_class::<retry::PyBackoff>()?;
    m.add_class::<retry::PyJitter>()?;
    m.add_class::<retry::PyRetryBudget>()?;
    m.add_class::<retry::PyRetry>()?;
    m.add_class::<retry::RetryRun>()?;
    m.add_class::<deadline::PyDeadline>()?;
    m.add_class::<deadline::PyTimeoutPool>()?;
    m.add_function(wrap_pyfunction!(deadline::monotonic_ns, m)?)?;
    m.add_function(wrap_pyfunction!(convert::seconds_arg, m)?)?;
    m.add_function(wrap_pyfunction!(bulkhead::check_priority, m)?)?;
    m.add_function(wrap_pyfunction!(deadline::_call_before, m)?)?;
    m.add_class::<shed::PyAdaptiveLimit>()?;
    m.add_class::<shed::ShedPermit>()?;
    m.add_class::<shed::PyThrottler>()?;
    m.add_class::<chaos::PyChaos>()?;
    m.add_class::<degrade::PyStaleCache>()?;
    m.add_class::<watchdog::PyWatchdog>()?;
    m.add_class::<watchdog::PyHeartbeat>()?;
    m.add_class::<watchdog::PyGauge>()?;
    m.add_class::<health::PyHealth>()?;
    m.add_class::<metrics::PyMetrics>()?;
    m.add_class::<pipeline::PyPipeline>()?;
    m.add_class::<pipeline::PipelineRun>()?;
    m.add_class::<pipeline::PipelineAttempt>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
