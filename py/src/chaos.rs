//! `Chaos`: seeded fault and latency injection.

use std::sync::Arc;

use failwell::chaos;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{
    config_error, duration, finite, opt_duration, opt_finite, opt_uint64, py_dict, secs,
};

/// The native injector; `failwell.Chaos` subclasses it with the decorator.
#[pyclass(module = "failwell._native", name = "Chaos", subclass, frozen)]
#[derive(Debug)]
pub struct PyChaos {
    inner: Arc<chaos::Chaos>,
}

#[pymethods]
impl PyChaos {
    /// Fails `fault_rate` of calls and delays `latency_rate` of them by
    /// `latency` seconds (all 0 by default); `seed` makes the choices
    /// repeatable; `enabled` switches injection on (default). Other keyword
    /// arguments are left to the Python subclass's `__init__`.
    #[new]
    #[pyo3(signature = (
        *, fault_rate = None, latency_rate = None, latency = None, seed = None, enabled = true,
        **_python_side
    ))]
    fn new(
        fault_rate: Option<&Bound<'_, PyAny>>,
        latency_rate: Option<&Bound<'_, PyAny>>,
        latency: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        enabled: bool,
        _python_side: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut b = chaos::Chaos::builder()
            .fault_rate(opt_finite(fault_rate, "fault_rate")?.unwrap_or(0.0))
            .latency(
                opt_finite(latency_rate, "latency_rate")?.unwrap_or(0.0),
                opt_duration(latency, "latency")?.unwrap_or_default(),
            )
            .enabled(enabled);
        if let Some(s) = opt_uint64(seed, "seed")? {
            b = b.seed(s);
        }
        Ok(PyChaos {
            inner: Arc::new(b.build().map_err(|e| config_error(e, &[]))?),
        })
    }

    /// Decides whether this call fails (and counts it).
    fn should_fail(&self) -> bool {
        self.inner.should_fail()
    }

    /// Decides whether this call is delayed: seconds, or None.
    fn injected_latency(&self) -> Option<f64> {
        self.inner.injected_latency().map(secs)
    }

    fn set_enabled(&self, enabled: bool) {
        self.inner.set_enabled(enabled);
    }

    fn set_fault_rate(&self, fault_rate: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner
            .set_fault_rate(finite(fault_rate, "fault_rate")?)
            .map_err(|e| config_error(e, &[]))
    }

    fn set_latency(
        &self,
        latency_rate: &Bound<'_, PyAny>,
        latency: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.inner
            .set_latency(
                finite(latency_rate, "latency_rate")?,
                duration(latency, "latency")?,
            )
            .map_err(|e| config_error(e, &[]))
    }

    /// Changes the live injector's settings together, all or nothing;
    /// only the arguments given change (the seed is fixed at
    /// construction).
    #[pyo3(signature = (*, fault_rate = None, latency_rate = None, latency = None, enabled = None))]
    fn reconfigure(
        &self,
        fault_rate: Option<&Bound<'_, PyAny>>,
        latency_rate: Option<&Bound<'_, PyAny>>,
        latency: Option<&Bound<'_, PyAny>>,
        enabled: Option<bool>,
    ) -> PyResult<()> {
        let fault_rate = opt_finite(fault_rate, "fault_rate")?;
        let latency_rate = opt_finite(latency_rate, "latency_rate")?;
        let latency = opt_duration(latency, "latency")?;
        self.inner
            .reconfigure(|mut b| {
                if let Some(p) = fault_rate {
                    b = b.fault_rate(p);
                }
                if let Some(p) = latency_rate {
                    b = b.latency_rate(p);
                }
                if let Some(d) = latency {
                    b = b.delay(d);
                }
                if let Some(on) = enabled {
                    b = b.enabled(on);
                }
                b
            })
            .map_err(|e| config_error(e, &[]))
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.snapshot();
        py_dict!(py, {
            "enabled" => s.enabled,
            "faults" => s.faults,
            "delays" => s.delays,
        })
    }
}
