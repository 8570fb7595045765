//! Leak detection: the process's thread count and growth limits.

use crate::error::ConfigError;

/// When a count is a leak: above `factor ×` its baseline, or above an
/// absolute ceiling, whichever is lower.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    baseline: u64,
    factor: Option<f64>,
    ceiling: Option<u64>,
}

impl Growth {
    /// A limit of `factor ×` `baseline` (`factor > 1`, finite) and, if
    /// given, `ceiling`. `field` names the setting in errors.
    pub fn new(
        field: &'static str,
        baseline: u64,
        factor: f64,
        ceiling: Option<u64>,
    ) -> Result<Self, ConfigError> {
        if !factor.is_finite() || factor <= 1.0 {
            return Err(ConfigError::new(
                field,
                format!("growth factor must be finite and > 1, got {factor}"),
            ));
        }
        Ok(Growth {
            baseline,
            factor: Some(factor),
            ceiling,
        })
    }

    /// Only an absolute ceiling (baseline 0).
    pub fn ceiling_only(ceiling: u64) -> Self {
        Growth {
            baseline: 0,
            factor: None,
            ceiling: Some(ceiling),
        }
    }

    /// The baseline.
    pub fn baseline(&self) -> u64 {
        self.baseline
    }

    /// The limit in force: the lower of `factor × baseline` and the ceiling.
    pub fn limit(&self) -> u64 {
        let grown = self
            .factor
            .map_or(u64::MAX, |f| (self.baseline as f64 * f).floor() as u64);
        grown.min(self.ceiling.unwrap_or(u64::MAX))
    }

    /// The limit, if `value` exceeds it.
    pub fn exceeded_by(&self, value: u64) -> Option<u64> {
        let limit = self.limit();
        (value > limit).then_some(limit)
    }
}

/// The number of threads in this process: the `Threads:` line of
/// `/proc/self/status` on Linux; `None` where that is not available (the
/// thread-leak check then stays silent).
pub fn process_threads() -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        None
    }
}
