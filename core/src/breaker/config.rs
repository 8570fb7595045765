//! Breaker configuration: the builder, its documented defaults and its
//! validation. Every invalid value is a [`ConfigError`] naming the field.

use std::time::Duration;

use super::state::MAX_HALF_OPEN_CALLS;
use crate::clock::{nanos, Clock, MonotonicClock};
use crate::error::ConfigError;

/// The default failure-rate threshold (50 %).
pub const DEFAULT_FAILURE_RATE: f64 = 0.5;
/// The default count window: the last 100 calls.
pub const DEFAULT_WINDOW_CALLS: u32 = 100;
/// The default number of buckets of a time window.
pub const DEFAULT_WINDOW_BUCKETS: u32 = 10;
/// The default slow-call duration, when the slow-call policy is on (60 s).
pub const DEFAULT_SLOW_CALL_DURATION: Duration = Duration::from_secs(60);
/// The default slow-call-rate threshold, when only a duration is set (100 %).
pub const DEFAULT_SLOW_CALL_RATE: f64 = 1.0;
/// The default `minimum_calls`: a count window's size up to this, or this.
pub const DEFAULT_MINIMUM_CALLS: u32 = 100;
/// The default number of half-open probes.
pub const DEFAULT_HALF_OPEN_CALLS: u32 = 10;
/// The default bound on a half-open without a verdict (60 s).
pub const DEFAULT_HALF_OPEN_MAX_WAIT: Duration = Duration::from_secs(60);
/// The default open period (60 s).
pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(60);

/// The window over which failure and slow-call rates are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The outcomes of the last `n` recorded calls (resilience4j's
    /// count-based sliding window). `1 ..= 1_000_000`.
    Count(u32),
    /// The outcomes of the calls recorded in the last `length`, kept in
    /// `buckets` equal time buckets (resilience4j's time-based window, which
    /// uses one bucket per second). Buckets `1 ..= 4096`; each bucket at least
    /// 10 ms long, since the window reads the coarse clock.
    Time {
        /// How far back the window reaches.
        length: Duration,
        /// How many buckets divide it; the window slides a bucket at a time.
        buckets: u32,
    },
}

impl Window {
    /// A time window of `length` in the default number of buckets
    /// ([`DEFAULT_WINDOW_BUCKETS`]).
    pub fn time(length: Duration) -> Window {
        Window::Time {
            length,
            buckets: DEFAULT_WINDOW_BUCKETS,
        }
    }
}

/// Words a configuration takes in a host region.
#[cfg(not(failwell_loom))]
pub(crate) const CONFIG_WORDS: usize = 16;

/// The validated configuration of a [`CircuitBreaker`](super::CircuitBreaker).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) slow_call_rate: Option<f64>,
    pub(crate) slow_call_duration: u64,
    pub(crate) window: Option<Window>,
    pub(crate) minimum_calls: u32,
    pub(crate) half_open_calls: u32,
    pub(crate) half_open_max_wait: u64,
    pub(crate) open_for: u64,
    pub(crate) open_for_multiplier: f64,
    pub(crate) open_for_max: u64,
}

impl Config {
    /// Failures in a row that trip the breaker, if that policy is on.
    pub fn consecutive_failures(&self) -> Option<u32> {
        self.consecutive_failures
    }

    /// The failure-rate threshold, if that policy is on.
    pub fn failure_rate(&self) -> Option<f64> {
        self.failure_rate
    }

    /// The slow-call-rate threshold, if that policy is on.
    pub fn slow_call_rate(&self) -> Option<f64> {
        self.slow_call_rate
    }

    /// How long a call must take to count as slow (with the slow-call
    /// policy on).
    pub fn slow_call_duration(&self) -> Option<Duration> {
        self.slow_call_rate
            .map(|_| Duration::from_nanos(self.slow_call_duration))
    }

    /// The window of the rate policies, if one is on.
    pub fn window(&self) -> Option<Window> {
        self.window
    }

    /// The fewest calls in the window before a rate may trip.
    pub fn minimum_calls(&self) -> u32 {
        self.minimum_calls
    }

    /// Probes admitted in half-open.
    pub fn half_open_calls(&self) -> u32 {
        self.half_open_calls
    }

    /// How long half-open waits for a verdict before reopening.
    pub fn half_open_max_wait(&self) -> Duration {
        Duration::from_nanos(self.half_open_max_wait)
    }

    /// The first open period.
    pub fn open_for(&self) -> Duration {
        Duration::from_nanos(self.open_for)
    }

    /// Growth of the open period per consecutive trip (1: none).
    pub fn open_for_multiplier(&self) -> f64 {
        self.open_for_multiplier
    }

    /// The longest open period.
    pub fn open_for_max(&self) -> Duration {
        Duration::from_nanos(self.open_for_max)
    }

    /// Whether any rate policy (failure rate or slow-call rate) is on.
    /// The configuration as [`CONFIG_WORDS`] plain words, for a host
    /// region (read back by [`from_words`](Self::from_words)).
    #[cfg(not(failwell_loom))]
    pub(crate) fn to_words(&self) -> [u64; CONFIG_WORDS] {
        const NONE: u64 = u64::MAX;
        let (kind, a, b) = match self.window {
            None => (0, 0, 0),
            Some(Window::Count(n)) => (1, n as u64, 0),
            Some(Window::Time { length, buckets }) => (2, nanos(length), buckets as u64),
        };
        [
            self.consecutive_failures.map_or(NONE, u64::from),
            self.failure_rate.map_or(NONE, f64::to_bits),
            self.slow_call_rate.map_or(NONE, f64::to_bits),
            self.slow_call_duration,
            kind,
            a,
            b,
            self.minimum_calls as u64,
            self.half_open_calls as u64,
            self.half_open_max_wait,
            self.open_for,
            self.open_for_multiplier.to_bits(),
            self.open_for_max,
            0,
            0,
            0,
        ]
    }

    /// The configuration [`to_words`](Self::to_words) wrote, validated as
    /// at build; `None` if the words are not one.
    #[cfg(not(failwell_loom))]
    pub(crate) fn from_words(w: &[u64; CONFIG_WORDS]) -> Option<Config> {
        const NONE: u64 = u64::MAX;
        let opt = |v: u64| (v != NONE).then_some(v);
        let small = |v: u64| u32::try_from(v).ok();
        let window = match w[4] {
            0 => None,
            1 => Some(Window::Count(small(w[5])?)),
            2 => Some(Window::Time {
                length: Duration::from_nanos(w[5]),
                buckets: small(w[6])?,
            }),
            _ => return None,
        };
        let c = Config {
            consecutive_failures: match opt(w[0]) {
                Some(n) => Some(small(n)?),
                None => None,
            },
            failure_rate: opt(w[1]).map(f64::from_bits),
            slow_call_rate: opt(w[2]).map(f64::from_bits),
            slow_call_duration: w[3],
            window,
            minimum_calls: small(w[7])?,
            half_open_calls: small(w[8])?,
            half_open_max_wait: w[9],
            open_for: w[10],
            open_for_multiplier: f64::from_bits(w[11]),
            open_for_max: w[12],
        };
        let (checked, _) = Builder::from_config(&c, crate::clock::MonotonicClock)
            .validate()
            .ok()?;
        (checked == c && w[13..] == [0; 3]).then_some(c)
    }

    pub(crate) fn has_rate_policy(&self) -> bool {
        self.failure_rate.is_some() || self.slow_call_rate.is_some()
    }

    /// How long the `trips`-th consecutive opening lasts (1-based).
    pub(crate) fn open_duration(&self, trips: u32) -> u64 {
        super::rule::open_duration(
            self.open_for,
            self.open_for_multiplier,
            self.open_for_max,
            trips,
        )
    }
}

/// Builds a [`CircuitBreaker`](super::CircuitBreaker).
///
/// Defaults (resilience4j's where it has one):
///
/// | setting | default |
/// |---|---|
/// | trip policy | failure rate ≥ 50% over a count window of the last 100 calls |
/// | `minimum_calls` | 100 (no rate verdict before this many calls in the window) |
/// | consecutive failures | off |
/// | slow-call rate | off (when on: threshold 100%) |
/// | `open_for` | 60 s, not growing |
/// | `half_open_calls` | 10 probes |
/// | `half_open_max_wait` | 60 s (failwell's; resilience4j waits forever) |
///
/// Trips when *any* enabled policy says so. With only
/// [`consecutive_failures`](Self::consecutive_failures) set (gobreaker's
/// model), half-open closes after `half_open_calls` successes and reopens on
/// the first failure; with a rate policy it closes once `half_open_calls`
/// probes finished below the thresholds and reopens as soon as the probes'
/// rate can no longer end below them.
#[derive(Debug, Clone)]
pub struct Builder<C: Clock = MonotonicClock> {
    clock: C,
    name: Option<std::sync::Arc<str>>,
    consecutive_failures: Option<u32>,
    failure_rate: Option<f64>,
    slow_call_rate: Option<f64>,
    slow_call_duration: Option<Duration>,
    window: Window,
    minimum_calls: Option<u32>,
    half_open_calls: u32,
    half_open_max_wait: Duration,
    open_for: Duration,
    open_for_multiplier: f64,
    open_for_max: Option<Duration>,
    rate_defaulted: bool,
}

impl Default for Builder<MonotonicClock> {
    fn default() -> Self {
        Builder::with_clock(MonotonicClock)
    }
}

impl Builder<MonotonicClock> {
    /// A builder with the defaults above, on the system's monotonic clock.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C: Clock> Builder<C> {
    /// A builder with the defaults above, reading time from `clock`.
    pub fn with_clock(clock: C) -> Self {
        Builder {
            clock,
            name: None,
            consecutive_failures: None,
            failure_rate: Some(DEFAULT_FAILURE_RATE),
            slow_call_rate: None,
            slow_call_duration: None,
            window: Window::Count(DEFAULT_WINDOW_CALLS),
            minimum_calls: None,
            half_open_calls: DEFAULT_HALF_OPEN_CALLS,
            half_open_max_wait: DEFAULT_HALF_OPEN_MAX_WAIT,
            open_for: DEFAULT_OPEN_FOR,
            open_for_multiplier: 1.0,
            open_for_max: None,
            rate_defaulted: true,
        }
    }

    /// A builder holding `c`'s settings (for reconfiguring a live breaker).
    pub(crate) fn from_config(c: &Config, clock: C) -> Self {
        let has_rate = c.has_rate_policy();
        Builder {
            clock,
            name: None,
            consecutive_failures: c.consecutive_failures,
            failure_rate: c.failure_rate,
            slow_call_rate: c.slow_call_rate,
            slow_call_duration: c
                .slow_call_rate
                .map(|_| Duration::from_nanos(c.slow_call_duration)),
            window: c.window.unwrap_or(Window::Count(DEFAULT_WINDOW_CALLS)),
            minimum_calls: has_rate.then_some(c.minimum_calls),
            half_open_calls: c.half_open_calls,
            half_open_max_wait: Duration::from_nanos(c.half_open_max_wait),
            open_for: Duration::from_nanos(c.open_for),
            open_for_multiplier: c.open_for_multiplier,
            // Without growth the cap follows `open_for`, as at build.
            open_for_max: (c.open_for_multiplier != 1.0)
                .then(|| Duration::from_nanos(c.open_for_max)),
            rate_defaulted: false,
        }
    }

    /// Replaces the clock.
    pub fn clock<D: Clock>(self, clock: D) -> Builder<D> {
        Builder {
            clock,
            name: self.name,
            consecutive_failures: self.consecutive_failures,
            failure_rate: self.failure_rate,
            slow_call_rate: self.slow_call_rate,
            slow_call_duration: self.slow_call_duration,
            window: self.window,
            minimum_calls: self.minimum_calls,
            half_open_calls: self.half_open_calls,
            half_open_max_wait: self.half_open_max_wait,
            open_for: self.open_for,
            open_for_multiplier: self.open_for_multiplier,
            open_for_max: self.open_for_max,
            rate_defaulted: self.rate_defaulted,
        }
    }

    /// Names the breaker (default: none), as
    /// [`CircuitBreaker::name`](super::CircuitBreaker::name) returns it and
    /// as the `tracing` feature's events carry it (`breaker = "..."`).
    /// Metrics and health take their names where the breaker is
    /// registered.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into().into());
        self
    }

    /// The name given to [`name`](Self::name), if any.
    pub(crate) fn take_name(&mut self) -> Option<std::sync::Arc<str>> {
        self.name.take()
    }

    /// Trip after `n` failures in a row (`n ≥ 1`). Setting only this policy
    /// turns the default failure-rate policy off, so the breaker behaves like
    /// gobreaker's default (the textbook breaker); call
    /// [`failure_rate`](Self::failure_rate) as well to keep both.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = Some(n);
        if self.rate_defaulted {
            self.failure_rate = None;
        }
        self
    }

    /// Trip when the failure rate over `window` reaches `threshold`, a
    /// fraction in `(0, 1]`, once the window holds at least `minimum_calls`.
    pub fn failure_rate(mut self, threshold: f64, window: Window) -> Self {
        self.failure_rate = Some(threshold);
        self.window = window;
        self.rate_defaulted = false;
        self
    }

    /// Count calls that take at least `slow` as slow, and trip when the
    /// slow-call rate over the breaker's window reaches `threshold` in
    /// `(0, 1]`. The permit measures the duration from acquisition to
    /// recording unless the caller supplies one.
    pub fn slow_call_rate(mut self, threshold: f64, slow: Duration) -> Self {
        self.slow_call_rate = Some(threshold);
        self.slow_call_duration = Some(slow);
        self
    }

    /// Sets the failure-rate threshold (in `(0, 1]`), keeping the window:
    /// turns the policy on if it was off. Handy with
    /// [`CircuitBreaker::reconfigure`](super::CircuitBreaker::reconfigure).
    pub fn failure_rate_threshold(mut self, threshold: f64) -> Self {
        self.failure_rate = Some(threshold);
        self.rate_defaulted = false;
        self
    }

    /// Turns the failure-rate policy off (it is on by default), for a
    /// breaker that trips on consecutive failures or slow calls only.
    pub fn no_failure_rate(mut self) -> Self {
        self.failure_rate = None;
        self.rate_defaulted = false;
        self
    }

    /// Sets the slow-call-rate threshold (in `(0, 1]`), keeping the slow
    /// duration (60 s if none was set): turns the policy on if it was off.
    pub fn slow_call_threshold(mut self, threshold: f64) -> Self {
        self.slow_call_rate = Some(threshold);
        self
    }

    /// Sets how long a call must take to count as slow, keeping the
    /// threshold (100 % if none was set): turns the policy on if it was off.
    pub fn slow_call_duration(mut self, slow: Duration) -> Self {
        self.slow_call_rate.get_or_insert(DEFAULT_SLOW_CALL_RATE);
        self.slow_call_duration = Some(slow);
        self
    }

    /// The window for the rate policies (default: the last 100 calls).
    pub fn window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// The fewest calls in the window before a rate may trip the breaker
    /// (default: the count window's size, or 100 for a time window; capped
    /// at the window's size for count windows only by validation).
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.minimum_calls = Some(n);
        self
    }

    /// How many probes half-open admits (`1 ..= 1023`, default 10).
    pub fn half_open_calls(mut self, n: u32) -> Self {
        self.half_open_calls = n;
        self
    }

    /// If half-open has admitted all its probes and reached no verdict
    /// within this long, it reopens (default 60 s; must be > 0).
    pub fn half_open_max_wait(mut self, d: Duration) -> Self {
        self.half_open_max_wait = d;
        self
    }

    /// How long the breaker stays open before admitting probes (default
    /// 60 s; must be > 0).
    pub fn open_for(mut self, d: Duration) -> Self {
        self.open_for = d;
        self
    }

    /// Make each consecutive opening (one that follows a failed half-open
    /// without a close in between) last `multiplier` times longer, up to
    /// `max`. `multiplier ≥ 1` and finite, `max ≥ open_for`.
    pub fn open_for_backoff(mut self, multiplier: f64, max: Duration) -> Self {
        self.open_for_multiplier = multiplier;
        self.open_for_max = Some(max);
        self
    }

    /// The growth of the open period alone (see
    /// [`open_for_backoff`](Self::open_for_backoff)); the cap stays as set,
    /// or `open_for` when none is.
    pub fn open_for_multiplier(mut self, multiplier: f64) -> Self {
        self.open_for_multiplier = multiplier;
        self
    }

    /// The cap of the open period alone (see
    /// [`open_for_backoff`](Self::open_for_backoff)); unset, it is
    /// `open_for`.
    pub fn open_for_max(mut self, max: Duration) -> Self {
        self.open_for_max = Some(max);
        self
    }

    /// Validates the settings into a [`Config`] and the clock.
    pub(crate) fn validate(self) -> Result<(Config, C), ConfigError> {
        if let Some(n) = self.consecutive_failures {
            if n == 0 {
                return Err(ConfigError::new(
                    "consecutive_failures",
                    "must be at least 1, got 0",
                ));
            }
        }
        check_rate("failure_rate_threshold", self.failure_rate)?;
        check_rate("slow_call_rate_threshold", self.slow_call_rate)?;
        let has_rate = self.failure_rate.is_some() || self.slow_call_rate.is_some();
        if self.consecutive_failures.is_none() && !has_rate {
            return Err(ConfigError::new(
                "trip_policy",
                "no policy can trip the breaker: set consecutive_failures, failure_rate or slow_call_rate",
            ));
        }
        let window = if has_rate {
            match self.window {
                Window::Count(n) => {
                    if n == 0 || n > 1_000_000 {
                        return Err(ConfigError::new(
                            "window",
                            format!("count window must hold 1 ..= 1000000 calls, got {n}"),
                        ));
                    }
                }
                Window::Time { length, buckets } => {
                    if buckets == 0 || buckets > 4096 {
                        return Err(ConfigError::new(
                            "window.buckets",
                            format!("time window needs 1 ..= 4096 buckets, got {buckets}"),
                        ));
                    }
                    if length / buckets < Duration::from_millis(10) {
                        return Err(ConfigError::new(
                            "window.length",
                            format!(
                                "each time bucket must last at least 10 ms, got {:?} / {buckets}",
                                length
                            ),
                        ));
                    }
                }
            }
            Some(self.window)
        } else {
            None
        };
        let minimum_calls = match (self.minimum_calls, window) {
            (Some(0), _) => {
                return Err(ConfigError::new(
                    "minimum_calls",
                    "must be at least 1, got 0",
                ))
            }
            (Some(m), Some(Window::Count(n))) if m > n => {
                return Err(ConfigError::new(
                    "minimum_calls",
                    format!("{m} can never be reached by a count window of {n} calls"),
                ))
            }
            (Some(m), _) => m,
            (None, Some(Window::Count(n))) => n.min(DEFAULT_MINIMUM_CALLS),
            (None, _) => DEFAULT_MINIMUM_CALLS,
        };
        if self.half_open_calls == 0 || self.half_open_calls > MAX_HALF_OPEN_CALLS {
            return Err(ConfigError::new(
                "half_open_calls",
                format!(
                    "must be 1 ..= {MAX_HALF_OPEN_CALLS}, got {}",
                    self.half_open_calls
                ),
            ));
        }
        if self.half_open_max_wait.is_zero() {
            return Err(ConfigError::new("half_open_max_wait", "must be > 0"));
        }
        if self.open_for.is_zero() {
            return Err(ConfigError::new("open_for", "must be > 0"));
        }
        let m = self.open_for_multiplier;
        if !m.is_finite() || m < 1.0 {
            return Err(ConfigError::new(
                "open_for_multiplier",
                format!("must be finite and at least 1, got {m}"),
            ));
        }
        let open_for_max = self.open_for_max.unwrap_or(self.open_for);
        if open_for_max < self.open_for {
            return Err(ConfigError::new(
                "open_for_max",
                format!(
                    "must be at least open_for ({:?}), got {:?}",
                    self.open_for, open_for_max
                ),
            ));
        }
        let slow_call_duration = match (self.slow_call_rate, self.slow_call_duration) {
            (Some(_), Some(d)) if d.is_zero() => {
                return Err(ConfigError::new("slow_call_duration", "must be > 0"))
            }
            (Some(_), Some(d)) => nanos(d),
            (Some(_), None) => nanos(DEFAULT_SLOW_CALL_DURATION),
            (None, _) => u64::MAX,
        };
        Ok((
            Config {
                consecutive_failures: self.consecutive_failures,
                failure_rate: self.failure_rate,
                slow_call_rate: self.slow_call_rate,
                slow_call_duration,
                window,
                minimum_calls,
                half_open_calls: self.half_open_calls,
                half_open_max_wait: nanos(self.half_open_max_wait),
                open_for: nanos(self.open_for),
                open_for_multiplier: m,
                open_for_max: nanos(open_for_max),
            },
            self.clock,
        ))
    }
}

fn check_rate(field: &'static str, rate: Option<f64>) -> Result<(), ConfigError> {
    match rate {
        Some(r) if !(r > 0.0 && r <= 1.0) => Err(ConfigError::new(
            field,
            format!("must be a fraction in (0, 1], got {r}"),
        )),
        _ => Ok(()),
    }
}
