//! A breaker's settings as plain values: the one shape the C ABI (and any
//! binding with fixed-layout structs) takes and gives back, with the
//! documented defaults and the "a zero turns a policy off" rule written
//! here, once.

use std::time::Duration;

use super::config::{
    Builder, Config, Window, DEFAULT_FAILURE_RATE, DEFAULT_HALF_OPEN_CALLS,
    DEFAULT_HALF_OPEN_MAX_WAIT, DEFAULT_OPEN_FOR, DEFAULT_SLOW_CALL_DURATION, DEFAULT_WINDOW_CALLS,
};
use super::CircuitBreaker;
use crate::error::ConfigError;

/// A breaker's settings as plain values. Each trip policy is on when its
/// value is nonzero; [`Settings::default`] holds the documented defaults
/// ([`Builder`]'s: a failure rate of 50 % over the last 100 calls, open
/// for 60 s, 10 half-open probes waiting at most 60 s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Trip after this many failures in a row; 0 = off (default 0).
    pub consecutive_failures: u32,
    /// Trip when the window's failure rate reaches this, in `(0, 1]`; 0 =
    /// off (default 0.5).
    pub failure_rate: f64,
    /// The window of the rate policies (default the last 100 calls).
    pub window: Window,
    /// Trip when the window's slow-call rate reaches this, in `(0, 1]`; 0
    /// = off (default 0).
    pub slow_call_rate: f64,
    /// A call at least this long is slow (default 60 s; used only with a
    /// slow-call rate).
    pub slow_call_duration: Duration,
    /// Fewest calls in the window before a rate may trip; 0 = the default
    /// (the count window's size up to 100, or 100).
    pub minimum_calls: u32,
    /// Probes half-open admits, `1 ..= 1023` (default 10).
    pub half_open_calls: u32,
    /// A half-open without a verdict this long reopens (default 60 s).
    pub half_open_max_wait: Duration,
    /// The open period (default 60 s).
    pub open_for: Duration,
    /// Growth of the open period per consecutive opening, ≥ 1 (default 1).
    pub open_for_multiplier: f64,
    /// Cap of the open period; zero = `open_for` (default zero).
    pub open_for_max: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            consecutive_failures: 0,
            failure_rate: DEFAULT_FAILURE_RATE,
            window: Window::Count(DEFAULT_WINDOW_CALLS),
            slow_call_rate: 0.0,
            slow_call_duration: DEFAULT_SLOW_CALL_DURATION,
            minimum_calls: 0,
            half_open_calls: DEFAULT_HALF_OPEN_CALLS,
            half_open_max_wait: DEFAULT_HALF_OPEN_MAX_WAIT,
            open_for: DEFAULT_OPEN_FOR,
            open_for_multiplier: 1.0,
            open_for_max: Duration::ZERO,
        }
    }
}

impl Settings {
    /// A builder holding these settings, to build a breaker or to
    /// reconfigure one (`breaker.reconfigure(|_| builder)`). Every policy
    /// at zero is a [`ConfigError`] naming `trip_policy`; other values are
    /// checked by the builder.
    pub fn builder(&self) -> Result<Builder, ConfigError> {
        if self.consecutive_failures == 0 && self.failure_rate == 0.0 && self.slow_call_rate == 0.0
        {
            return Err(ConfigError::new(
                "trip_policy",
                "every policy is 0 (off): set consecutive_failures, failure_rate or slow_call_rate",
            ));
        }
        let mut b = CircuitBreaker::builder();
        if self.failure_rate == 0.0 {
            b = b.no_failure_rate();
        }
        if self.consecutive_failures > 0 {
            b = b.consecutive_failures(self.consecutive_failures);
        }
        if self.failure_rate != 0.0 {
            b = b.failure_rate(self.failure_rate, self.window);
        }
        if self.slow_call_rate != 0.0 {
            b = b.slow_call_rate(self.slow_call_rate, self.slow_call_duration);
        }
        b = b.window(self.window);
        if self.minimum_calls > 0 {
            b = b.minimum_calls(self.minimum_calls);
        }
        b = b
            .half_open_calls(self.half_open_calls)
            .half_open_max_wait(self.half_open_max_wait)
            .open_for(self.open_for)
            .open_for_multiplier(self.open_for_multiplier);
        if !self.open_for_max.is_zero() {
            b = b.open_for_max(self.open_for_max);
        }
        Ok(b)
    }

    /// The settings of a configuration (a live breaker's
    /// [`config`](CircuitBreaker::config)), policies that are off as
    /// zeros; fields a configuration does not hold (the window of a breaker
    /// without a rate policy, the slow duration without a slow-call policy)
    /// keep their defaults.
    pub fn from_config(c: &Config) -> Settings {
        let d = Settings::default();
        Settings {
            consecutive_failures: c.consecutive_failures().unwrap_or(0),
            failure_rate: c.failure_rate().unwrap_or(0.0),
            window: c.window().unwrap_or(d.window),
            slow_call_rate: c.slow_call_rate().unwrap_or(0.0),
            slow_call_duration: c.slow_call_duration().unwrap_or(d.slow_call_duration),
            minimum_calls: c.minimum_calls(),
            half_open_calls: c.half_open_calls(),
            half_open_max_wait: c.half_open_max_wait(),
            open_for: c.open_for(),
            open_for_multiplier: c.open_for_multiplier(),
            open_for_max: c.open_for_max(),
        }
    }
}
