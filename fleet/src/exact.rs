//! The fleet rate limiter in exact mode: failwell's GCRA run by Redis on
//! one key, one round trip per decision, on the server's clock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use failwell::rate_limit::{self, RateLimiter};
use failwell::{ConfigError, Rejected};
use redis::Script;

use crate::{Fleet, FleetError};

/// Time in the script is counted in quarter-microseconds since the Unix
/// epoch: Redis's `TIME` gives microseconds, and every such value up to
/// the year 2040 and beyond (below 2^53) is exact in a Lua number, so the
/// arithmetic below never rounds.
pub(crate) const QUANTUM_NS: u64 = 250;

/// KEYS[1]: the limiter's key, holding its theoretical arrival time (TAT).
/// ARGV[1]: the request's cost (`n · T`), ARGV[2]: the tolerance
/// (`burst · T`), both in quanta. Returns `{1, 0}` when admitted, else
/// `{0, wait}` with the wait in quanta. The key expires once its TAT is in
/// the past (an idle limiter leaves nothing behind). Single key: safe on
/// Redis Cluster. `TIME` before a write is allowed since Redis 5 (scripts
/// replicate their effects).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 4000000 + math.floor(tonumber(t[2]) * 4)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local new = tat + tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if new - now <= limit then
  redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 4000) + 1)
  return {1, 0}
end
return {0, new - now - limit}
";

/// What an exact-mode limiter does while Redis is unreachable or slow
/// (and failwell's breaker around it is open).
#[derive(Debug)]
#[non_exhaustive]
pub enum OnUnavailable {
    /// Decide on a local limiter of this instance's share (the default:
    /// the limit and burst divided by the expected number of instances,
    /// rounded up; see [`ExactBuilder::instances`]).
    Local,
    /// Admit every request.
    FailOpen,
    /// Refuse every request (`Rejected::RateLimited` with a retry after
    /// failwell's breaker around Redis tries again).
    FailClosed,
}

/// Settings of an [`ExactRateLimiter`].
#[derive(Debug)]
pub struct ExactBuilder {
    fleet: Fleet,
    name: String,
    limit: rate_limit::Builder,
    instances: u32,
    on_unavailable: OnUnavailable,
}

impl ExactBuilder {
    /// How many instances share the limit, for the local fallback's share
    /// (default 1: a lone instance falls back to the whole limit).
    pub fn instances(mut self, n: u32) -> Self {
        self.instances = n;
        self
    }

    /// What to do while Redis is unavailable (default
    /// [`OnUnavailable::Local`]).
    pub fn on_unavailable(mut self, o: OnUnavailable) -> Self {
        self.on_unavailable = o;
        self
    }

    /// Checks the settings and registers the script with the fleet.
    /// Errors: a `ConfigError` naming the field (`rate`, `burst`,
    /// `instances`, `name`), or Redis unreachable while loading the script.
    pub fn build(self) -> Result<ExactRateLimiter, FleetError> {
        if self.name.is_empty() || self.name.len() > 200 {
            return Err(ConfigError::new(
                "name",
                format!("must be 1 ..= 200 bytes, got {}", self.name.len()),
            )
            .into());
        }
        if self.instances == 0 {
            return Err(ConfigError::new("instances", "must be at least 1, got 0").into());
        }
        let (interval, limit) = self.limit.gcra_params()?;
        let local = match self.on_unavailable {
            OnUnavailable::Local => Some(share(interval, limit, self.instances)?),
            _ => None,
        };
        let script = Arc::new(Script::new(GCRA));
        self.fleet.register(Arc::clone(&script))?;
        Ok(ExactRateLimiter {
            key: self.fleet.key("rl", &self.name),
            fleet: self.fleet,
            script,
            interval,
            limit_q: limit / QUANTUM_NS,
            burst: (limit / interval).min(u32::MAX as u64) as u32,
            on_unavailable: self.on_unavailable,
            local,
            counts: Counts::default(),
        })
    }
}

/// The local fallback: `1/instances` of the rate and of the burst (each
/// at least one request).
pub(crate) fn share(interval: u64, limit: u64, instances: u32) -> Result<RateLimiter, ConfigError> {
    let burst = (limit / interval).div_ceil(instances as u64).max(1);
    let period = Duration::from_nanos(interval.saturating_mul(instances as u64));
    RateLimiter::builder().rate(1, period).burst(burst).build()
}

#[derive(Debug, Default)]
struct Counts {
    admitted: AtomicU64,
    rejected: AtomicU64,
    fallbacks: AtomicU64,
}

/// A rate limit for a whole fleet, decided by Redis: every decision is one
/// round trip running failwell's GCRA on one key with the server's clock
/// (instances' clocks may disagree), so the fleet never admits more than
/// the limit. Made by [`Fleet::exact_rate_limiter`]. Thread-safe.
///
/// While Redis is unreachable or slow, decisions follow
/// [`OnUnavailable`] and are counted as fallbacks.
#[derive(Debug)]
pub struct ExactRateLimiter {
    fleet: Fleet,
    key: String,
    script: Arc<Script>,
    /// `T`, nanoseconds.
    interval: u64,
    /// `burst · T`, in quanta, rounded down (never more tolerance than
    /// asked).
    limit_q: u64,
    burst: u32,
    on_unavailable: OnUnavailable,
    local: Option<RateLimiter>,
    counts: Counts,
}

/// An exact limiter's counts (this instance's decisions only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExactSnapshot {
    /// Requests admitted (by Redis or by a fallback).
    pub admitted: u64,
    /// Requests refused (by Redis or by a fallback).
    pub rejected: u64,
    /// Decisions made without Redis.
    pub fallbacks: u64,
}

impl Fleet {
    /// An exact-mode rate limiter `name` with `limit`'s rate and burst
    /// (the clock and `precise` settings do not apply: Redis's clock
    /// decides). Every instance that uses the same name, key prefix and
    /// Redis shares one limit. Instances must agree on the rate and burst:
    /// each decision uses the caller's.
    pub fn exact_rate_limiter(&self, name: &str, limit: rate_limit::Builder) -> ExactBuilder {
        ExactBuilder {
            fleet: self.clone(),
            name: name.to_owned(),
            limit,
            instances: 1,
            on_unavailable: OnUnavailable::Local,
        }
    }
}

impl ExactRateLimiter {
    /// Admits one request now, or says how long until it would conform.
    pub fn try_acquire(&self) -> Result<(), Rejected> {
        self.try_acquire_n(1)
    }

    /// Admits a request of cost `n` now, or says how long until it would
    /// conform; `n = 0` always conforms; `n` above the burst never does
    /// (`Rejected::ExceedsCapacity`). Redis unavailable: see
    /// [`OnUnavailable`].
    pub fn try_acquire_n(&self, n: u32) -> Result<(), Rejected> {
        let decided = match self.check_n(n) {
            Ok(d) => d,
            Err(e) => {
                self.counts.fallbacks.fetch_add(1, Relaxed);
                match (&self.on_unavailable, &self.local) {
                    (OnUnavailable::FailOpen, _) => Ok(()),
                    (OnUnavailable::Local, Some(l)) => l.try_acquire_n(n),
                    _ => Err(Rejected::RateLimited {
                        retry_after: match e {
                            FleetError::Unavailable {
                                retry_after: Some(d),
                            } => d,
                            _ => Duration::ZERO,
                        },
                    }),
                }
            }
        };
        match decided {
            Ok(()) => self.counts.admitted.fetch_add(n as u64, Relaxed),
            Err(_) => self.counts.rejected.fetch_add(n as u64, Relaxed),
        };
        decided
    }

    /// Asks Redis alone, with no fallback: `Ok(decision)`, or the error
    /// that kept Redis from deciding.
    pub fn check_n(&self, n: u32) -> Result<Result<(), Rejected>, FleetError> {
        if n == 0 {
            return Ok(Ok(()));
        }
        if n > self.burst {
            return Ok(Err(Rejected::ExceedsCapacity {
                requested: n,
                capacity: self.burst,
            }));
        }
        // Rounded up: a request never costs less than asked.
        let cost_q = (self.interval as u128 * n as u128).div_ceil(QUANTUM_NS as u128) as u64;
        let (admitted, wait_q): (i64, i64) = self.fleet.run("rate limit", |c| {
            self.script
                .key(&self.key)
                .arg(cost_q)
                .arg(self.limit_q)
                .invoke(c)
        })?;
        if admitted == 1 {
            return Ok(Ok(()));
        }
        if wait_q < 0 {
            return Err(FleetError::Protocol {
                problem: format!("the rate limit script returned a wait of {wait_q}"),
            });
        }
        Ok(Err(Rejected::RateLimited {
            retry_after: Duration::from_nanos((wait_q as u64).saturating_mul(QUANTUM_NS)),
        }))
    }

    /// This instance's counts.
    pub fn snapshot(&self) -> ExactSnapshot {
        ExactSnapshot {
            admitted: self.counts.admitted.load(Relaxed),
            rejected: self.counts.rejected.load(Relaxed),
            fallbacks: self.counts.fallbacks.load(Relaxed),
        }
    }

    /// The Redis key holding the limiter's state.
    pub fn key(&self) -> &str {
        &self.key
    }
}
