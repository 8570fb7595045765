//! The settings a live breaker can change, each in an atomic word.

use super::config::Config;
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// The settings a live breaker can change
/// ([`CircuitBreaker::reconfigure`](super::CircuitBreaker::reconfigure)):
/// thresholds, counts and durations, each in its own atomic, read with
/// Relaxed loads where they are used. Whether a policy is on, and the
/// window, are fixed at build and stay in [`Config`].
#[derive(Debug)]
pub(crate) struct Live {
    consecutive_failures: AtomicU64,
    /// `f64` bits.
    failure_rate: AtomicU64,
    /// `f64` bits.
    slow_call_rate: AtomicU64,
    slow_call_duration: AtomicU64,
    minimum_calls: AtomicU64,
    half_open_calls: AtomicU64,
    half_open_max_wait: AtomicU64,
    open_for: AtomicU64,
    /// `f64` bits.
    open_for_multiplier: AtomicU64,
    open_for_max: AtomicU64,
}

// Relaxed throughout: each setting is a value on its own, guarding no other
// data; a reader sees the old or the new value of each.
impl Live {
    pub(crate) fn new(c: &Config) -> Self {
        Live {
            consecutive_failures: AtomicU64::new(c.consecutive_failures.unwrap_or(0) as u64),
            failure_rate: AtomicU64::new(c.failure_rate.unwrap_or(0.0).to_bits()),
            slow_call_rate: AtomicU64::new(c.slow_call_rate.unwrap_or(0.0).to_bits()),
            slow_call_duration: AtomicU64::new(c.slow_call_duration),
            minimum_calls: AtomicU64::new(c.minimum_calls as u64),
            half_open_calls: AtomicU64::new(c.half_open_calls as u64),
            half_open_max_wait: AtomicU64::new(c.half_open_max_wait),
            open_for: AtomicU64::new(c.open_for),
            open_for_multiplier: AtomicU64::new(c.open_for_multiplier.to_bits()),
            open_for_max: AtomicU64::new(c.open_for_max),
        }
    }

    /// Publishes the changeable settings of `c`.
    pub(crate) fn store(&self, c: &Config) {
        self.consecutive_failures
            .store(c.consecutive_failures.unwrap_or(0) as u64, Relaxed);
        self.failure_rate
            .store(c.failure_rate.unwrap_or(0.0).to_bits(), Relaxed);
        self.slow_call_rate
            .store(c.slow_call_rate.unwrap_or(0.0).to_bits(), Relaxed);
        self.slow_call_duration.store(c.slow_call_duration, Relaxed);
        self.minimum_calls.store(c.minimum_calls as u64, Relaxed);
        self.half_open_calls
            .store(c.half_open_calls as u64, Relaxed);
        self.half_open_max_wait.store(c.half_open_max_wait, Relaxed);
        self.open_for.store(c.open_for, Relaxed);
        self.open_for_multiplier
            .store(c.open_for_multiplier.to_bits(), Relaxed);
        self.open_for_max.store(c.open_for_max, Relaxed);
    }

    /// The configuration in force: `fixed`'s structure with the live values.
    pub(crate) fn current(&self, fixed: &Config) -> Config {
        Config {
            consecutive_failures: fixed
                .consecutive_failures
                .map(|_| self.consecutive_failures() as u32),
            failure_rate: self.failure_rate(fixed),
            slow_call_rate: self.slow_call_rate(fixed),
            slow_call_duration: self.slow_call_duration(),
            window: fixed.window,
            minimum_calls: self.minimum_calls() as u32,
            half_open_calls: self.half_open_calls(),
            half_open_max_wait: self.half_open_max_wait(),
            open_for: self.open_for.load(Relaxed),
            open_for_multiplier: f64::from_bits(self.open_for_multiplier.load(Relaxed)),
            open_for_max: self.open_for_max.load(Relaxed),
        }
    }

    #[inline]
    pub(crate) fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures.load(Relaxed)
    }

    /// The failure-rate threshold, if that policy is on in `fixed`.
    #[inline]
    pub(crate) fn failure_rate(&self, fixed: &Config) -> Option<f64> {
        fixed
            .failure_rate
            .map(|_| f64::from_bits(self.failure_rate.load(Relaxed)))
    }

    /// The slow-call-rate threshold, if that policy is on in `fixed`.
    #[inline]
    pub(crate) fn slow_call_rate(&self, fixed: &Config) -> Option<f64> {
        fixed
            .slow_call_rate
            .map(|_| f64::from_bits(self.slow_call_rate.load(Relaxed)))
    }

    #[inline]
    pub(crate) fn slow_call_duration(&self) -> u64 {
        self.slow_call_duration.load(Relaxed)
    }

    #[inline]
    pub(crate) fn minimum_calls(&self) -> u64 {
        self.minimum_calls.load(Relaxed)
    }

    #[inline]
    pub(crate) fn half_open_calls(&self) -> u32 {
        self.half_open_calls.load(Relaxed) as u32
    }

    #[inline]
    pub(crate) fn half_open_max_wait(&self) -> u64 {
        self.half_open_max_wait.load(Relaxed)
    }
}
