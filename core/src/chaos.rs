//! Chaos injection: faults and latency at a configured rate (Polly's chaos
//! strategies), so that failures can be rehearsed in tests and staging.
//!
//! Decisions come from a seeded generator: the same seed and the same order
//! of calls give the same faults, so a failing test replays. Injection can
//! be switched on and off, and its rates changed, on the live instance.
//!
//! ```
//! use std::time::Duration;
//! use failwell::chaos::Chaos;
//!
//! let chaos = Chaos::builder()
//!     .fault_rate(0.1)
//!     .latency(0.05, Duration::from_millis(200))
//!     .seed(42)
//!     .build()?;
//! let r: Result<&str, String> = chaos.call(|| Ok("real answer"), || "injected fault".to_string());
//! # let _ = r;
//! chaos.set_enabled(false); // production traffic: nothing injected
//! assert_eq!(chaos.call(|| Ok::<_, String>(1), || unreachable!()), Ok(1));
//! # Ok::<(), failwell::ConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::clock::{nanos, Clock, MonotonicClock, Sleeper};
use crate::error::ConfigError;
use crate::rng::{fresh_seed, SharedRng};
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// Builds a [`Chaos`] injector. Defaults: no faults, no latency, enabled,
/// a fresh random seed.
#[derive(Debug, Clone)]
pub struct Builder<C = MonotonicClock> {
    clock: C,
    fault_rate: f64,
    latency_rate: f64,
    latency: Duration,
    seed: Option<u64>,
    enabled: bool,
}

impl Default for Builder<MonotonicClock> {
    fn default() -> Self {
        Builder::with_clock(MonotonicClock)
    }
}

impl<C: Clock + Sleeper> Builder<C> {
    /// A builder whose injected latency sleeps on `clock` (virtual time
    /// with a [`ManualClock`](crate::clock::ManualClock)).
    pub fn with_clock(clock: C) -> Self {
        Builder {
            clock,
            fault_rate: 0.0,
            latency_rate: 0.0,
            latency: Duration::ZERO,
            seed: None,
            enabled: true,
        }
    }

    /// Fail this fraction of calls, in `[0, 1]`.
    pub fn fault_rate(mut self, p: f64) -> Self {
        self.fault_rate = p;
        self
    }

    /// Delay this fraction of calls (in `[0, 1]`) by `delay`.
    pub fn latency(mut self, p: f64, delay: Duration) -> Self {
        self.latency_rate = p;
        self.latency = delay;
        self
    }

    /// The fraction of calls delayed alone, in `[0, 1]` (see
    /// [`latency`](Self::latency)).
    pub fn latency_rate(mut self, p: f64) -> Self {
        self.latency_rate = p;
        self
    }

    /// The delay alone (see [`latency`](Self::latency)).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.latency = delay;
        self
    }

    /// Seed the decisions, for reproducible runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Start switched on (default) or off.
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Validates and builds the injector.
    pub fn build(self) -> Result<Chaos<C>, ConfigError> {
        check_rate("fault_rate", self.fault_rate)?;
        check_rate("latency_rate", self.latency_rate)?;
        Ok(Chaos {
            enabled: AtomicU64::new(self.enabled as u64),
            fault_rate: AtomicU64::new(self.fault_rate.to_bits()),
            latency_rate: AtomicU64::new(self.latency_rate.to_bits()),
            latency: AtomicU64::new(nanos(self.latency)),
            rng: SharedRng::new(self.seed.unwrap_or_else(fresh_seed)),
            faults: AtomicU64::new(0),
            delays: AtomicU64::new(0),
            clock: self.clock,
        })
    }
}

fn check_rate(field: &'static str, p: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("must be a fraction in [0, 1], got {p}"),
        ))
    }
}

/// A plain copy of an injector's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Whether injection is on.
    pub enabled: bool,
    /// Faults injected.
    pub faults: u64,
    /// Delays injected.
    pub delays: u64,
}

/// A fault and latency injector. Thread-safe.
pub struct Chaos<C = MonotonicClock> {
    enabled: AtomicU64,
    fault_rate: AtomicU64,
    latency_rate: AtomicU64,
    latency: AtomicU64,
    rng: SharedRng,
    faults: AtomicU64,
    delays: AtomicU64,
    clock: C,
}

impl Chaos<MonotonicClock> {
    /// A builder on the real clock.
    pub fn builder() -> Builder<MonotonicClock> {
        Builder::default()
    }
}

impl<C: Clock + Sleeper> Chaos<C> {
    fn enabled(&self) -> bool {
        self.enabled.load(Relaxed) != 0
    }

    /// Decides whether this call fails (and counts it if so). Always `false`
    /// while disabled; the generator is not advanced then.
    pub fn should_fail(&self) -> bool {
        if !self.enabled() {
            return false;
        }
        let p = f64::from_bits(self.fault_rate.load(Relaxed));
        let hit = p > 0.0 && self.rng.next_f64() < p;
        if hit {
            self.faults.fetch_add(1, Relaxed);
        }
        hit
    }

    /// Decides whether this call is delayed, and by how much (counting it).
    pub fn injected_latency(&self) -> Option<Duration> {
        if !self.enabled() {
            return None;
        }
        let p = f64::from_bits(self.latency_rate.load(Relaxed));
        if p > 0.0 && self.rng.next_f64() < p {
            self.delays.fetch_add(1, Relaxed);
            Some(Duration::from_nanos(self.latency.load(Relaxed)))
        } else {
            None
        }
    }

    /// Sleeps on the clock if this call is to be delayed.
    pub fn inject_latency(&self) {
        if let Some(d) = self.injected_latency() {
            self.clock.sleep(d);
        }
    }

    /// Runs `f` under chaos: first maybe a delay, then maybe the fault
    /// `fault()` instead of the call.
    pub fn call<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        fault: impl FnOnce() -> E,
    ) -> Result<T, E> {
        self.inject_latency();
        if self.should_fail() {
            Err(fault())
        } else {
            f()
        }
    }

    /// Changes the live injector's settings together: `change` gets a
    /// builder holding the settings in force and returns it changed, e.g.
    /// `chaos.reconfigure(|c| c.fault_rate(0.2).enabled(true))`; the result
    /// is validated as at build, and on any error nothing changes. The seed
    /// is fixed at build (setting one is a `ConfigError` naming `seed`).
    /// Each value takes effect on its own: a call racing the change may see
    /// some old and some new.
    pub fn reconfigure(
        &self,
        change: impl FnOnce(Builder<MonotonicClock>) -> Builder<MonotonicClock>,
    ) -> Result<(), ConfigError> {
        let current = Builder::with_clock(MonotonicClock)
            .fault_rate(f64::from_bits(self.fault_rate.load(Relaxed)))
            .latency(
                f64::from_bits(self.latency_rate.load(Relaxed)),
                Duration::from_nanos(self.latency.load(Relaxed)),
            )
            .enabled(self.enabled());
        let new = change(current);
        check_rate("fault_rate", new.fault_rate)?;
        check_rate("latency_rate", new.latency_rate)?;
        if new.seed.is_some() {
            return Err(ConfigError::new(
                "seed",
                "is fixed when the injector is built; build a new one to change it",
            ));
        }
        self.fault_rate.store(new.fault_rate.to_bits(), Relaxed);
        self.latency_rate.store(new.latency_rate.to_bits(), Relaxed);
        self.latency.store(nanos(new.latency), Relaxed);
        self.enabled.store(new.enabled as u64, Relaxed);
        Ok(())
    }

    /// Switches injection on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on as u64, Relaxed);
    }

    /// Changes the fault rate, in `[0, 1]`.
    pub fn set_fault_rate(&self, p: f64) -> Result<(), ConfigError> {
        check_rate("fault_rate", p)?;
        self.fault_rate.store(p.to_bits(), Relaxed);
        Ok(())
    }

    /// Changes the latency rate (in `[0, 1]`) and delay.
    pub fn set_latency(&self, p: f64, delay: Duration) -> Result<(), ConfigError> {
        check_rate("latency_rate", p)?;
        self.latency_rate.store(p.to_bits(), Relaxed);
        self.latency.store(nanos(delay), Relaxed);
        Ok(())
    }

    /// The counters.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            enabled: self.enabled(),
            faults: self.faults.load(Relaxed),
            delays: self.delays.load(Relaxed),
        }
    }
}

impl<C> fmt::Debug for Chaos<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("enabled", &(self.enabled.load(Relaxed) != 0))
            .field("fault_rate", &f64::from_bits(self.fault_rate.load(Relaxed)))
            .field(
                "latency_rate",
                &f64::from_bits(self.latency_rate.load(Relaxed)),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
