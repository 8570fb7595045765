//! One type for every rate limiter and one for every circuit breaker a
//! caller may hold, local or fleet-wide: what a language binding hands
//! out as its single limiter or breaker class, so that its users need
//! not care where the state lives.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use failwell::breaker::{self, CircuitBreaker};
use failwell::clock::MonotonicClock;
use failwell::rate_limit::{self, RateLimiter};
use failwell::{ConfigError, Rejected};

use crate::{ExactRateLimiter, FleetBreaker, LeasedRateLimiter};

/// A rate limiter of this process (or of a host region), or a fleet rate
/// limiter in leased or exact mode. Cloning shares the limiter.
#[derive(Debug, Clone)]
pub enum AnyRateLimiter {
    /// In this process's memory, or in a host region.
    Local(Arc<RateLimiter>),
    /// Decided locally on tokens leased from the fleet.
    Leased(Arc<LeasedRateLimiter>),
    /// Decided by Redis, one round trip each.
    Exact(Arc<ExactRateLimiter>),
}

impl AnyRateLimiter {
    /// A limiter of this process or region.
    pub fn local(l: RateLimiter) -> Self {
        AnyRateLimiter::Local(Arc::new(l))
    }

    /// The local limiter, if it is one (a fleet limiter is neither
    /// reconfigured nor a pipeline layer).
    pub fn as_local(&self) -> Option<&Arc<RateLimiter>> {
        match self {
            AnyRateLimiter::Local(l) => Some(l),
            _ => None,
        }
    }

    /// Admits a request of cost `n` now, or says how long until it may
    /// (each kind's `try_acquire_n`).
    #[inline(always)]
    pub fn try_acquire_n(&self, n: u32) -> Result<(), Rejected> {
        match self {
            AnyRateLimiter::Local(l) => l.try_acquire_n(n),
            AnyRateLimiter::Leased(l) => l.try_acquire_n(n),
            AnyRateLimiter::Exact(l) => l.try_acquire_n(n),
        }
    }

    /// Admits a request of cost `n`, waiting at most `timeout` (each
    /// kind's `acquire_n_timeout`).
    pub fn acquire_n_timeout(&self, n: u32, timeout: Duration) -> Result<(), Rejected> {
        match self {
            AnyRateLimiter::Local(l) => l.acquire_n_timeout(n, timeout),
            AnyRateLimiter::Leased(l) => l.acquire_n_timeout(n, timeout),
            AnyRateLimiter::Exact(l) => l.acquire_n_timeout(n, timeout),
        }
    }

    /// Changes a local limiter's rate and burst
    /// ([`RateLimiter::reconfigure`]); a fleet limiter keeps the ones it
    /// was built with (a `ConfigError` naming `reconfigure`): every
    /// instance must agree on them.
    pub fn reconfigure(
        &self,
        change: impl FnOnce(rate_limit::Builder<MonotonicClock>) -> rate_limit::Builder<MonotonicClock>,
    ) -> Result<(), ConfigError> {
        match self {
            AnyRateLimiter::Local(l) => l.reconfigure(change),
            _ => Err(ConfigError::new(
                "reconfigure",
                "a fleet rate limiter keeps the rate and burst it was built with (every instance must agree on them)",
            )),
        }
    }

    /// How long until one request may be admitted, as this instance can
    /// tell without Redis: `None` for an exact limiter (only Redis knows).
    pub fn next_ready(&self) -> Option<Duration> {
        match self {
            AnyRateLimiter::Local(l) => Some(l.next_ready()),
            AnyRateLimiter::Leased(l) => Some(l.next_ready()),
            AnyRateLimiter::Exact(_) => None,
        }
    }

    /// The counts of this instance, with the interval and burst.
    pub fn snapshot(&self) -> rate_limit::Snapshot {
        let (admitted, rejected, interval, burst) = match self {
            AnyRateLimiter::Local(l) => return l.snapshot(),
            AnyRateLimiter::Leased(l) => {
                let s = l.snapshot();
                (s.admitted, s.rejected, l.interval(), l.burst())
            }
            AnyRateLimiter::Exact(l) => {
                let s = l.snapshot();
                (s.admitted, s.rejected, l.interval(), l.burst())
            }
        };
        rate_limit::Snapshot {
            admitted,
            rejected,
            interval,
            burst: burst as u64,
        }
    }
}

/// A circuit breaker of this process (or of a host region), or a fleet
/// breaker, whose local breaker admits the calls. Dereferences to the
/// breaker that admits calls (for a fleet breaker in a child of `fork()`,
/// starting the child's sync thread). Cloning shares the breaker.
#[derive(Debug, Clone)]
pub struct AnyBreaker {
    /// The breaker that admits calls.
    local: Arc<CircuitBreaker>,
    /// The fleet breaker around it, if any.
    fleet: Option<Arc<FleetBreaker>>,
}

impl AnyBreaker {
    /// A breaker of this process or region.
    pub fn local(b: CircuitBreaker) -> Self {
        AnyBreaker {
            local: Arc::new(b),
            fleet: None,
        }
    }

    /// A fleet breaker.
    pub fn fleet(f: Arc<FleetBreaker>) -> Self {
        AnyBreaker {
            local: Arc::clone(f.breaker()),
            fleet: Some(f),
        }
    }

    /// The breaker that admits calls, owned (for a pipeline, a health
    /// check or a metrics registry, which take a plain breaker). A fleet
    /// breaker's sync lasts as long as an `AnyBreaker` (or the
    /// `FleetBreaker`) holding it lives.
    pub fn arc(&self) -> Arc<CircuitBreaker> {
        Arc::clone(self.breaker())
    }

    /// Changes a local breaker's thresholds and durations
    /// ([`CircuitBreaker::reconfigure`]); a fleet breaker keeps the
    /// configuration it was built with (a `ConfigError` naming
    /// `reconfigure`): every instance must agree on it.
    pub fn reconfigure(
        &self,
        change: impl FnOnce(breaker::Builder<MonotonicClock>) -> breaker::Builder<MonotonicClock>,
    ) -> Result<(), ConfigError> {
        match self.fleet {
            None => self.local.reconfigure(change),
            Some(_) => Err(ConfigError::new(
                "reconfigure",
                "a fleet breaker keeps the configuration it was built with (every instance must agree on it)",
            )),
        }
    }

    /// The fleet breaker, if it is one.
    pub fn as_fleet(&self) -> Option<&Arc<FleetBreaker>> {
        self.fleet.as_ref()
    }

    /// The breaker, if it is not a fleet breaker: for a fast path that
    /// must make no call (a fleet breaker's fork check may start a
    /// thread), and takes its slow path, through [`breaker`](Self::breaker),
    /// for a fleet breaker.
    #[inline(always)]
    pub fn local_only(&self) -> Option<&CircuitBreaker> {
        match self.fleet {
            None => Some(&self.local),
            Some(_) => None,
        }
    }

    /// The breaker that admits calls (for a fleet breaker in a child of
    /// `fork()`, starting the child's sync thread first).
    #[inline(always)]
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        if let Some(f) = &self.fleet {
            f.breaker(); // in a child of fork(), starts its sync thread
        }
        &self.local
    }
}

impl Deref for AnyBreaker {
    type Target = CircuitBreaker;

    #[inline(always)]
    fn deref(&self) -> &CircuitBreaker {
        self.breaker()
    }
}
