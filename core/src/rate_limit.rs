//! The rate limiter: GCRA (the generic cell rate algorithm) over one atomic
//! word, the theoretical arrival time (TAT).
//!
//! The rule is pure arithmetic over a timestamp the caller supplies
//! ([`gcra`]), kept apart from the compare-and-swap loop that applies it, so
//! it is unit-, property- and loom-tested on its own terms (governor's
//! layout). With a rate of `r` per second (one request every `T = 1/r`) and a
//! burst of `b`, a request of cost `n` conforms when
//! `max(TAT, now) + n·T ≤ now + b·T`, and then moves TAT there. However
//! requests arrive, no interval of length `e` admits more than `b + e/T`.
//!
//! ```
//! use std::time::Duration;
//! use failwell::rate_limit::RateLimiter;
//! use failwell::Rejected;
//!
//! // 100 requests per second, bursts of up to 10.
//! let limiter = RateLimiter::builder().rate(100, Duration::from_secs(1)).burst(10).build()?;
//! for _ in 0..10 {
//!     assert!(limiter.try_acquire().is_ok());
//! }
//! match limiter.try_acquire() {
//!     Err(Rejected::RateLimited { retry_after }) => assert!(retry_after <= Duration::from_millis(10)),
//!     other => panic!("expected a refusal, got {other:?}"),
//! }
//! # Ok::<(), failwell::ConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::clock::{nanos, Clock, MonotonicClock, Sleeper};
use crate::counter::StripedCounter;
use crate::error::{ConfigError, Rejected};
use crate::sync::{AtomicU64, CachePadded, Ordering::Relaxed};

/// The GCRA decision for a request whose cost is `cost` nanoseconds of
/// emission interval (`n · T`), against a tolerance of `limit` nanoseconds
/// (`burst · T`), at time `now`, given the theoretical arrival time `tat`.
///
/// Returns the new TAT if the request conforms, or else how long until it
/// would (if nothing else is admitted meanwhile).
#[inline]
pub fn gcra(tat: u64, now: u64, cost: u64, limit: u64) -> Result<u64, u64> {
    let new_tat = tat.max(now).saturating_add(cost);
    let horizon = now.saturating_add(limit);
    if new_tat <= horizon {
        Ok(new_tat)
    } else {
        Err(new_tat - horizon)
    }
}

/// Builds a [`RateLimiter`].
///
/// Defaults: no rate (it must be set); `burst` equal to the number of
/// requests in the rate's period (governor's `Quota::per_second(n)`
/// semantics); the clock's coarse reading (see [`precise`](Self::precise)).
#[derive(Debug, Clone)]
pub struct Builder<C: Clock = MonotonicClock> {
    clock: C,
    rate: Option<(u64, Duration)>,
    burst: Option<u64>,
    precise: bool,
}

impl Default for Builder<MonotonicClock> {
    fn default() -> Self {
        Builder::with_clock(MonotonicClock)
    }
}

impl Builder<MonotonicClock> {
    /// A builder on the system's monotonic clock.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C: Clock> Builder<C> {
    /// A builder reading time from `clock`.
    pub fn with_clock(clock: C) -> Self {
        Builder {
            clock,
            rate: None,
            burst: None,
            precise: false,
        }
    }

    /// Admit `requests` per `period` on average (`requests ≥ 1`,
    /// `period > 0`). The emission interval `period / requests` is rounded
    /// up to a whole nanosecond, so the limiter never admits faster than
    /// asked.
    pub fn rate(mut self, requests: u64, period: Duration) -> Self {
        self.rate = Some((requests, period));
        self
    }

    /// Admit up to `burst` requests at once after a quiet period (`≥ 1`).
    pub fn burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Read the clock's precise time instead of its coarse reading. The
    /// coarse reading (Linux's `CLOCK_MONOTONIC_COARSE`) costs a fraction
    /// as much and lags real time by up to one tick (1–4 ms), so over any
    /// real interval `e` the default admits at most `burst + rate · (e +
    /// tick)`; the precise clock makes it `burst + rate · e`.
    pub fn precise(mut self, precise: bool) -> Self {
        self.precise = precise;
        self
    }

    /// Validates and builds the limiter, with its bucket full.
    pub fn build(self) -> Result<RateLimiter<C>, ConfigError> {
        let (requests, period) = self
            .rate
            .ok_or_else(|| ConfigError::new("rate", "must be set"))?;
        let interval = interval(requests, period)?;
        let burst = self.burst.unwrap_or(requests);
        let limit = limit(burst, interval)?;
        Ok(RateLimiter {
            tat: CachePadded::new(AtomicU64::new(0)),
            interval: AtomicU64::new(interval),
            limit: AtomicU64::new(limit),
            admitted: StripedCounter::new(),
            rejected: CachePadded::new(AtomicU64::new(0)),
            precise: self.precise,
            clock: self.clock,
        })
    }
}

fn interval(requests: u64, period: Duration) -> Result<u64, ConfigError> {
    if requests == 0 {
        return Err(ConfigError::new(
            "rate",
            "requests per period must be at least 1, got 0",
        ));
    }
    if period.is_zero() {
        return Err(ConfigError::new("rate", "period must be > 0"));
    }
    let p = nanos(period);
    if p == u64::MAX {
        return Err(ConfigError::new(
            "rate",
            format!("period {period:?} is too long"),
        ));
    }
    Ok(p.div_ceil(requests))
}

fn limit(burst: u64, interval: u64) -> Result<u64, ConfigError> {
    if burst == 0 {
        return Err(ConfigError::new("burst", "must be at least 1, got 0"));
    }
    burst
        .checked_mul(interval)
        .filter(|l| *l < u64::MAX / 4)
        .ok_or_else(|| {
            ConfigError::new(
                "burst",
                format!("{burst} × the emission interval overflows"),
            )
        })
}

/// A plain copy of a limiter's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests admitted (a request of cost `n` counts `n`).
    pub admitted: u64,
    /// Requests refused (each refused call counts its cost).
    pub rejected: u64,
    /// The emission interval: one request per this long.
    pub interval: Duration,
    /// The burst, in requests.
    pub burst: u64,
}

/// A GCRA rate limiter. Thread-safe; share it by reference or in an `Arc`.
pub struct RateLimiter<C: Clock = MonotonicClock> {
    /// The theoretical arrival time, in the clock's nanoseconds.
    tat: CachePadded<AtomicU64>,
    /// `T`: nanoseconds per request.
    interval: AtomicU64,
    /// `burst · T`.
    limit: AtomicU64,
    admitted: StripedCounter,
    rejected: CachePadded<AtomicU64>,
    precise: bool,
    clock: C,
}

impl RateLimiter<MonotonicClock> {
    /// A builder on the system's monotonic clock.
    pub fn builder() -> Builder<MonotonicClock> {
        Builder::new()
    }
}

impl<C: Clock> RateLimiter<C> {
    #[inline]
    fn now(&self) -> u64 {
        if self.precise {
            self.clock.now()
        } else {
            self.clock.now_coarse()
        }
    }

    /// `(cost, limit)` of `n` requests, or the permanent refusal when `n`
    /// exceeds the burst.
    #[inline]
    fn cost(&self, n: u32) -> Result<(u64, u64), Rejected> {
        // A reconfiguration racing this call may pair the old interval with
        // the new limit for this one decision.
        let interval = self.interval.load(Relaxed);
        let limit = self.limit.load(Relaxed);
        let cost = interval.saturating_mul(n as u64);
        if cost > limit {
            return Err(Rejected::ExceedsCapacity {
                requested: n,
                capacity: (limit / interval).min(u32::MAX as u64) as u32,
            });
        }
        Ok((cost, limit))
    }

    /// Admits one request now, or says how long until it would conform.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejected> {
        self.try_acquire_n(1)
    }

    /// Admits a request of cost `n` (e.g. `n` bytes or `n` rows) now, or says
    /// how long until it would conform. `n = 0` always conforms; `n` larger
    /// than the burst never does (`Rejected::ExceedsCapacity`).
    #[inline]
    pub fn try_acquire_n(&self, n: u32) -> Result<(), Rejected> {
        let (cost, limit) = self.cost(n)?;
        let now = self.now();
        let mut tat = self.tat.load(Relaxed);
        loop {
            match gcra(tat, now, cost, limit) {
                Ok(new_tat) => {
                    // Relaxed: the TAT is the whole state; no other data is
                    // published with it.
                    match self
                        .tat
                        .compare_exchange_weak(tat, new_tat, Relaxed, Relaxed)
                    {
                        Ok(_) => {
                            self.admitted.add(n as u64);
                            return Ok(());
                        }
                        Err(actual) => tat = actual,
                    }
                }
                Err(wait) => {
                    self.rejected.fetch_add(n as u64, Relaxed);
                    return Err(Rejected::RateLimited {
                        retry_after: Duration::from_nanos(wait),
                    });
                }
            }
        }
    }

    /// How long until one request would conform (zero if now).
    pub fn next_ready(&self) -> Duration {
        let interval = self.interval.load(Relaxed);
        let limit = self.limit.load(Relaxed);
        match gcra(self.tat.load(Relaxed), self.now(), interval, limit) {
            Ok(_) => Duration::ZERO,
            Err(wait) => Duration::from_nanos(wait),
        }
    }

    /// Changes the rate on the live limiter; the burst in requests stays.
    /// Debt already taken (a theoretical arrival time ahead of now) is kept
    /// in time, so a slower rate cannot be dodged by a reconfiguration.
    pub fn set_rate(&self, requests: u64, period: Duration) -> Result<(), ConfigError> {
        let new_interval = interval(requests, period)?;
        let old_interval = self.interval.load(Relaxed);
        let burst = (self.limit.load(Relaxed) / old_interval).max(1);
        let new_limit = limit(burst, new_interval)?;
        self.interval.store(new_interval, Relaxed);
        self.limit.store(new_limit, Relaxed);
        Ok(())
    }

    /// Changes the burst on the live limiter.
    pub fn set_burst(&self, burst: u64) -> Result<(), ConfigError> {
        let new_limit = limit(burst, self.interval.load(Relaxed))?;
        self.limit.store(new_limit, Relaxed);
        Ok(())
    }

    /// The counters and the current configuration.
    pub fn snapshot(&self) -> Snapshot {
        let interval = self.interval.load(Relaxed);
        Snapshot {
            admitted: self.admitted.sum(),
            rejected: self.rejected.load(Relaxed),
            interval: Duration::from_nanos(interval),
            burst: self.limit.load(Relaxed) / interval,
        }
    }
}

impl<C: Clock + Sleeper> RateLimiter<C> {
    /// Waits at most `timeout` for one request to conform.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), Rejected> {
        self.acquire_n_timeout(1, timeout)
    }

    /// Waits at most `timeout` for a request of cost `n` to conform. If it
    /// can conform within `timeout`, the slot is reserved at once (one
    /// compare-and-swap) and the caller sleeps until it comes — no polling,
    /// no spinning, and first come, first served. If it cannot, returns at
    /// once with the wait it would have needed.
    pub fn acquire_n_timeout(&self, n: u32, timeout: Duration) -> Result<(), Rejected> {
        let (cost, limit) = self.cost(n)?;
        let max_wait = nanos(timeout);
        let now = self.now();
        let mut tat = self.tat.load(Relaxed);
        loop {
            // The reservation: admit as if at `now + wait`.
            let new_tat = tat.max(now).saturating_add(cost);
            let wait = new_tat.saturating_sub(now.saturating_add(limit));
            if wait > max_wait {
                self.rejected.fetch_add(n as u64, Relaxed);
                return Err(Rejected::RateLimited {
                    retry_after: Duration::from_nanos(wait),
                });
            }
            // Relaxed: as in `try_acquire_n`.
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Relaxed, Relaxed)
            {
                Ok(_) => {
                    if wait > 0 {
                        self.clock.sleep(Duration::from_nanos(wait));
                    }
                    self.admitted.add(n as u64);
                    return Ok(());
                }
                Err(actual) => tat = actual,
            }
        }
    }
}

impl<C: Clock> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("snapshot", &self.snapshot())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
