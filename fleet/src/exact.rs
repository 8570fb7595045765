//! The fleet rate limiter in exact mode: failwell's GCRA run by Redis on
//! one key, one round trip per decision, on the server's clock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use failwell::rate_limit::{self, RateLimiter};
use failwell::{ConfigError, Rejected};
use redis::Script;

use crate::{Fleet, FleetError};

/// The fleet bucket's state and clock, shared by the scripts. The key
/// holds `"<debt> <sec> <usec>"`: how many nanoseconds the bucket's
/// theoretical arrival time (TAT) was ahead of the server's clock when it
/// was written, and when (the server's `TIME`). The debt now is that less
/// the time since, computed from the seconds and microseconds apart, so
/// every number stays an exact integer in a Lua number (below 2^53: 104
/// days of debt, checked when a limiter is built). Defines `debt` (never
/// below 0), `now_ms` and `store(d)`, which writes a new debt (or deletes
/// the key at 0) with an expiry when it would drain.
///
/// The server's clock is the wall clock: stepped back, the debt drains
/// later (fewer admissions); stepped forward, it drains at once (at most
/// one burst more).
pub(crate) const BUCKET: &str = r"
local t = redis.call('TIME')
local sec, usec = tonumber(t[1]), tonumber(t[2])
local now_ms = sec * 1000 + math.floor(usec / 1000)
local debt = 0
local v = redis.call('GET', KEYS[1])
if v then
  local d, ws, wus = string.match(v, '^(%d+) (%d+) (%d+)$')
  if d then
    debt = tonumber(d) - ((sec - tonumber(ws)) * 1000000000 + (usec - tonumber(wus)) * 1000)
    if debt < 0 then debt = 0 end
  end
end
local function store(d)
  if d > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f %d %d', d, sec, usec), 'PX', math.ceil(d / 1000000) + 1)
  else
    redis.call('DEL', KEYS[1])
  end
end
";

/// The shortest pause between two asks of a waiting acquire.
pub(crate) const MIN_PAUSE: Duration = Duration::from_millis(1);

/// A waiting acquire: calls `attempt` until it admits or refuses with
/// anything but `RateLimited`; after each `RateLimited { retry_after }`,
/// `pause(retry_after, time left)` says how long to sleep before the next
/// attempt (`Ok`) or to give up with that wait as the refusal's (`Err`).
pub(crate) fn retry_until(
    timeout: Duration,
    mut attempt: impl FnMut() -> Result<(), Rejected>,
    pause: impl Fn(Duration, Duration) -> Result<Duration, Duration>,
) -> Result<(), Rejected> {
    let start = std::time::Instant::now();
    loop {
        let wait = match attempt() {
            Ok(()) => return Ok(()),
            Err(Rejected::RateLimited { retry_after }) => retry_after,
            Err(r) => return Err(r),
        };
        match pause(wait, timeout.saturating_sub(start.elapsed())) {
            Ok(d) => std::thread::sleep(d),
            Err(retry_after) => return Err(Rejected::RateLimited { retry_after }),
        }
    }
}

/// The largest tolerance (`burst · T`) a fleet bucket holds, in
/// nanoseconds: 2^53, what a Lua number counts exactly (about 104 days).
pub(crate) const MAX_TOLERANCE_NS: u64 = 1 << 53;

/// KEYS[1]: the limiter's bucket. ARGV[1]: the request's cost (`n · T`),
/// ARGV[2]: the tolerance (`burst · T`), nanoseconds. Returns `{1, 0}`
/// when admitted, else `{0, wait}` with the wait in nanoseconds. Single
/// key: safe on Redis Cluster. `TIME` before a write is allowed since
/// Redis 5 (scripts replicate their effects).
const GCRA: &str = r"
local new = debt + tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if new <= limit then
  store(new)
  return {1, 0}
end
return {0, new - limit}
";

/// A fleet limiter's settings checked: the name, the instances expected
/// and the rate; the GCRA interval and tolerance.
pub(crate) fn checked(
    name: &str,
    instances: u32,
    limit: &rate_limit::Builder,
) -> Result<(u64, u64), FleetError> {
    if name.is_empty() || name.len() > 200 {
        return Err(ConfigError::new(
            "name",
            format!("must be 1 ..= 200 bytes, got {}", name.len()),
        )
        .into());
    }
    if instances == 0 {
        return Err(ConfigError::new("instances", "must be at least 1, got 0").into());
    }
    let (interval, tolerance) = limit.gcra_params()?;
    check_tolerance(tolerance)?;
    Ok((interval, tolerance))
}

/// The tolerance checked against what a fleet bucket holds.
pub(crate) fn check_tolerance(limit: u64) -> Result<(), ConfigError> {
    if limit > MAX_TOLERANCE_NS {
        return Err(ConfigError::new(
            "burst",
            format!(
                "burst x interval is {limit} ns; a fleet's bucket holds at most {MAX_TOLERANCE_NS} ns (about 104 days)"
            ),
        ));
    }
    Ok(())
}

/// What an exact-mode limiter does while Redis is unreachable or slow
/// (and failwell's breaker around it is open), for the exact and the
/// leased mode alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnUnavailable {
    /// Decide on a local limiter of this instance's share (the default:
    /// the limit and burst divided by the expected number of instances,
    /// rounded up; see [`ExactBuilder::instances`]).
    #[default]
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

    /// Checks the settings and registers the script with the fleet (a
    /// Redis that cannot be reached now is not an error).
    /// Errors: a `ConfigError` naming the field (`rate`, `burst`,
    /// `instances`, `name`), or an error reply of Redis loading the script.
    pub fn build(self) -> Result<ExactRateLimiter, FleetError> {
        let (interval, limit) = checked(&self.name, self.instances, &self.limit)?;
        let local = match self.on_unavailable {
            OnUnavailable::Local => Some(share(interval, limit, self.instances)?),
            _ => None,
        };
        let script = Arc::new(Script::new(&format!("{BUCKET}{GCRA}")));
        self.fleet.register_lazily(Arc::clone(&script))?;
        Ok(ExactRateLimiter {
            key: self.fleet.key("rl", &self.name),
            fleet: self.fleet,
            script,
            interval,
            limit,
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
    /// `burst · T`, nanoseconds.
    limit: u64,
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
        // At most the burst: at most the tolerance, exact in Lua.
        let cost = self.interval * n as u64;
        let (admitted, wait): (i64, i64) = self.fleet.run("rate limit", |c| {
            self.script
                .key(&self.key)
                .arg(cost)
                .arg(self.limit)
                .invoke(c)
        })?;
        if admitted == 1 {
            return Ok(Ok(()));
        }
        if wait < 0 {
            return Err(FleetError::Protocol {
                problem: format!("the rate limit script returned a wait of {wait}"),
            });
        }
        Ok(Err(Rejected::RateLimited {
            retry_after: Duration::from_nanos(wait as u64),
        }))
    }

    /// Admits a request of cost `n`, waiting at most `timeout` for it to
    /// conform: asks Redis, and while refused sleeps the wait Redis names
    /// and asks again. Returns the refusal at once when the wait named is
    /// longer than the time left (the request would not conform in time),
    /// or `ExceedsCapacity` for `n` above the burst. Each ask is one round
    /// trip (or a fallback decision while Redis is unavailable).
    pub fn acquire_n_timeout(&self, n: u32, timeout: Duration) -> Result<(), Rejected> {
        retry_until(
            timeout,
            || self.try_acquire_n(n),
            |wait, left| {
                // A fail-closed refusal names no wait: try again after a
                // short pause while time is left.
                let wait = if wait.is_zero() { MIN_PAUSE } else { wait };
                if wait > left {
                    Err(wait)
                } else {
                    Ok(wait)
                }
            },
        )
    }

    /// The emission interval `T` (the period divided by the requests).
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// The burst: the most requests admitted at once, fleet-wide.
    pub fn burst(&self) -> u32 {
        self.burst
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
