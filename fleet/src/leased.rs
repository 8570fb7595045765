//! The fleet rate limiter in leased mode: decisions are local atomic
//! operations on tokens leased from the fleet's bucket in Redis by a
//! background thread.
//!
//! The fleet's bucket is the exact mode's GCRA key: a lease of `k` tokens
//! spends `k` requests from it when it is granted (as many as it has room
//! for, up to the `k` asked), so the tokens all instances hold were all
//! admitted by the fleet's GCRA, and the fleet never admits more than the
//! limit plus its burst over any window. Each tick (100 ms) the thread
//! heartbeats the instance into the limiter's instance set (its share is
//! the limit divided by the live instances), measures this instance's
//! demand, and leases enough to cover the next ticks' demand, or gives
//! back what it holds beyond that (the fleet's TAT moves back by the
//! unused tokens, never before now). One Redis command per tick, ticks at
//! a random phase and 90–130 % of [`LEASE_TICK`] apart: about 9 per second
//! per instance.
//!
//! While Redis is unreachable the instance decides on a local limiter of
//! its share of the limit (as last seen), as the exact mode does.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use failwell::rate_limit::{self, RateLimiter};
use failwell::{ConfigError, Rejected};
use redis::Script;

use crate::exact::{checked, retry_until, share, BUCKET, MIN_PAUSE};
use crate::{Fleet, FleetError, OnUnavailable};

/// How often the leasing thread heartbeats, measures and leases.
pub const LEASE_TICK: Duration = Duration::from_millis(100);
/// An instance not heard from for this long is no longer counted in the
/// shares.
pub const INSTANCE_TTL: Duration = Duration::from_secs(3);
/// How often a waiting acquire looks for newly leased tokens.
const POLL: Duration = Duration::from_millis(5);
/// Ticks of demand a lease covers ahead.
const AHEAD_TICKS: i64 = 3;

/// KEYS[1]: the fleet bucket (the exact mode's key), KEYS[2]: the set of
/// live instances (same hash tag: one slot). ARGV: tokens wanted, `T` and
/// the tolerance in nanoseconds, the instance id, the instance TTL in
/// ms, tokens given back. Returns `{granted, live instances}`. Runs after
/// [`BUCKET`].
const LEASE: &str = r"
local ttl = tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], now_ms, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms - ttl)
redis.call('PEXPIRE', KEYS[2], ttl * 2)
local live = redis.call('ZCARD', KEYS[2])
local T = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local back = tonumber(ARGV[6])
if back > 0 then
  debt = debt - back * T
  if debt < 0 then debt = 0 end
end
local room = math.floor((limit - debt) / T)
if room < 0 then room = 0 end
local grant = math.min(tonumber(ARGV[1]), room)
store(debt + grant * T)
return {grant, live}
";

/// Settings of a [`LeasedRateLimiter`].
#[derive(Debug)]
pub struct LeasedBuilder {
    fleet: Fleet,
    name: String,
    limit: rate_limit::Builder,
    instances: u32,
    on_unavailable: OnUnavailable,
}

impl Fleet {
    /// A leased-mode rate limiter `name` (the default mode for a fleet):
    /// `limit`'s rate and burst for every instance using the name
    /// together, decided locally on leased tokens. Shares the fleet's
    /// bucket with exact-mode limiters of the same name.
    pub fn rate_limiter(&self, name: &str, limit: rate_limit::Builder) -> LeasedBuilder {
        LeasedBuilder {
            fleet: self.clone(),
            name: name.to_owned(),
            limit,
            instances: 1,
            on_unavailable: OnUnavailable::Local,
        }
    }
}

impl LeasedBuilder {
    /// The instances expected, for the share used until the first
    /// heartbeat counts them, and while Redis is unreachable before any
    /// count (default 1).
    pub fn instances(mut self, n: u32) -> Self {
        self.instances = n;
        self
    }

    /// What to do while Redis is unavailable (from the first failed lease
    /// to the next good one): by default ([`OnUnavailable::Local`]) decide
    /// on a local limiter of this instance's share of the limit, as last
    /// counted; or admit every request, or refuse every one.
    pub fn on_unavailable(mut self, o: OnUnavailable) -> Self {
        self.on_unavailable = o;
        self
    }

    /// Checks the settings, registers the script, takes a first lease and
    /// starts the leasing thread (`failwell-lease`). Errors as for
    /// [`ExactBuilder::build`](crate::ExactBuilder::build); a Redis that
    /// cannot be reached now is not an error (the instance starts on its
    /// local share).
    pub fn build(self) -> Result<LeasedRateLimiter, FleetError> {
        let (interval, limit) = checked(&self.name, self.instances, &self.limit)?;
        let script = Arc::new(Script::new(&format!("{BUCKET}{LEASE}")));
        self.fleet.register_lazily(Arc::clone(&script))?;
        let inner = Arc::new(Inner {
            tokens: AtomicI64::new(0),
            local_mode: AtomicBool::new(false),
            local: share(interval, limit, self.instances)?,
            burst: (limit / interval).min(u32::MAX as u64) as u32,
            interval,
            on_unavailable: self.on_unavailable,
            instances: AtomicU64::new(self.instances as u64),
            admitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            leased: AtomicU64::new(0),
            leases: AtomicU64::new(0),
            last_lease: AtomicU64::new(0),
            returned: AtomicU64::new(0),
            redis_errors: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            gen: AtomicU64::new(failwell::fork_generation()),
            respawning: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let lease = Lease {
            fleet: self.fleet.clone(),
            script,
            keys: (
                self.fleet.key("rl", &self.name),
                self.fleet.key("inst", &self.name),
            ),
            id: instance_id(),
            interval,
            limit,
            inner: Arc::clone(&inner),
        };
        lease.tick(0); // a first lease (or the local share) before any call
        let thread = lease.clone().spawn().map_err(|e| FleetError::Protocol {
            problem: format!("cannot start the leasing thread: {e}"),
        })?;
        if let Ok(mut t) = inner.thread.lock() {
            *t = Some(thread);
        }
        Ok(LeasedRateLimiter {
            inner,
            template: lease,
        })
    }
}

/// A unique id for this instance's limiter: host, pid and a counter.
pub(crate) fn instance_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!(
        "{}:{}:{}",
        host.trim(),
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    )
}

#[derive(Debug)]
struct Inner {
    /// Leased tokens not yet spent.
    tokens: AtomicI64,
    /// Deciding on `local` (Redis unreachable).
    local_mode: AtomicBool,
    /// The most one request may cost (the fleet's burst).
    burst: u32,
    /// `T`, nanoseconds.
    interval: u64,
    on_unavailable: OnUnavailable,
    local: RateLimiter,
    instances: AtomicU64,
    admitted: AtomicU64,
    rejected: AtomicU64,
    fallbacks: AtomicU64,
    leased: AtomicU64,
    /// Lease requests Redis answered, and the tokens the last one granted.
    leases: AtomicU64,
    last_lease: AtomicU64,
    returned: AtomicU64,
    redis_errors: AtomicU64,
    /// Tells the leasing thread to give back its tokens and end.
    stop: AtomicBool,
    /// The fork generation the leasing thread runs in: a child of
    /// `fork()` has none until its first call starts one.
    gen: AtomicU64,
    respawning: AtomicBool,
    /// This process's leasing thread (locked only to start or join it).
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The leasing thread's state.
#[derive(Clone)]
struct Lease {
    fleet: Fleet,
    script: Arc<Script>,
    keys: (String, String),
    id: String,
    interval: u64,
    limit: u64,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.keys.0)
            .field("instance", &self.id)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// Starts the leasing thread for this process.
    fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("failwell-lease".into())
            .spawn(move || self.run())
    }

    fn run(self) {
        let asked = |i: &Inner| i.admitted.load(Relaxed) + i.rejected.load(Relaxed);
        let mut last_asked = asked(&self.inner);
        // Ticks at a random phase, each 90–130 % of LEASE_TICK (about 9 a
        // second): instances started together do not all lease in the same
        // instant (the fleet's bucket holds only its burst; leases that
        // arrive together find it no fuller than one).
        let mut rng = seed(&self.id);
        let mut next = Instant::now() + LEASE_TICK.mul_f64(unit(&mut rng));
        loop {
            loop {
                if self.inner.stop.load(Relaxed) {
                    self.give_back_all();
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                std::thread::park_timeout(next - now);
            }
            let now_asked = asked(&self.inner);
            self.tick(now_asked.saturating_sub(last_asked));
            last_asked = now_asked;
            next += LEASE_TICK.mul_f64(0.9 + 0.4 * unit(&mut rng));
        }
    }

    /// One heartbeat and lease: covers `AHEAD_TICKS` ticks of the demand
    /// seen in the last one (at most the instance's share of the burst
    /// plus one tick of its rate), or gives back what is held beyond it.
    fn tick(&self, demand: u64) {
        let inner = &self.inner;
        let held = inner.tokens.load(Relaxed).max(0);
        let n = inner.instances.load(Relaxed).max(1);
        let burst = self.limit / self.interval;
        let per_tick = (LEASE_TICK.as_nanos() as u64 / self.interval).max(1);
        let share_cap = (burst.div_ceil(n) + per_tick.div_ceil(n)).max(1) as i64;
        let want_total = ((demand as i64) * AHEAD_TICKS).clamp(1, share_cap);
        let (want, back) = if held < want_total {
            (want_total - held, 0)
        } else if held > 2 * want_total {
            // Take what is given back out of the pool first, so no caller
            // spends it after the fleet has it again.
            let extra = held - want_total;
            let taken = take_up_to(&inner.tokens, extra);
            (0, taken)
        } else {
            (0, 0)
        };
        let r: Result<(i64, i64), FleetError> = self.fleet.run("lease", |c| {
            self.script
                .key(&self.keys.0)
                .key(&self.keys.1)
                .arg(want)
                .arg(self.interval)
                .arg(self.limit)
                .arg(&self.id)
                .arg(INSTANCE_TTL.as_millis() as u64)
                .arg(back)
                .invoke(c)
        });
        match r {
            Ok((granted, live)) => {
                inner.tokens.fetch_add(granted.max(0), Relaxed);
                inner.leased.fetch_add(granted.max(0) as u64, Relaxed);
                inner.leases.fetch_add(1, Relaxed);
                inner.last_lease.store(granted.max(0) as u64, Relaxed);
                inner.returned.fetch_add(back as u64, Relaxed);
                if live >= 1 && live as u64 != n {
                    inner.instances.store(live as u64, Relaxed);
                    let _ = self.reshare(live as u64);
                }
                inner.local_mode.store(false, Relaxed);
            }
            Err(_) => {
                inner.redis_errors.fetch_add(1, Relaxed);
                // Tokens taken to give back stay this instance's.
                inner.tokens.fetch_add(back, Relaxed);
                inner.local_mode.store(true, Relaxed);
            }
        }
    }

    /// The local fallback follows the instance count.
    fn reshare(&self, n: u64) -> Result<(), ConfigError> {
        let n = n.min(u32::MAX as u64) as u32;
        let burst = (self.limit / self.interval).div_ceil(n as u64).max(1);
        let period = Duration::from_nanos(self.interval.saturating_mul(n as u64));
        self.inner
            .local
            .reconfigure(|b| b.rate(1, period).burst(burst))
    }

    /// On drop: every unspent token back to the fleet.
    fn give_back_all(&self) {
        let back = take_up_to(&self.inner.tokens, i64::MAX);
        if back > 0 {
            let _ = self.fleet.run("give back", |c| {
                self.script
                    .key(&self.keys.0)
                    .key(&self.keys.1)
                    .arg(0)
                    .arg(self.interval)
                    .arg(self.limit)
                    .arg(&self.id)
                    .arg(INSTANCE_TTL.as_millis() as u64)
                    .arg(back)
                    .invoke::<(i64, i64)>(c)
            });
        }
    }
}

/// A xorshift state seeded from `id` and the clock.
pub(crate) fn seed(id: &str) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    id.bytes().fold(t ^ 0x9e37_79b9_7f4a_7c15, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    }) | 1
}

/// The next number in `[0, 1)`.
pub(crate) fn unit(x: &mut u64) -> f64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (*x >> 11) as f64 / (1u64 << 53) as f64
}

/// Takes up to `max` tokens out of `pool`; how many.
fn take_up_to(pool: &AtomicI64, max: i64) -> i64 {
    let mut cur = pool.load(Relaxed);
    loop {
        let take = cur.min(max).max(0);
        if take == 0 {
            return 0;
        }
        match pool.compare_exchange_weak(cur, cur - take, Relaxed, Relaxed) {
            Ok(_) => return take,
            Err(seen) => cur = seen,
        }
    }
}

/// A rate limit for a whole fleet, decided locally: each decision is one
/// atomic operation on tokens this instance leased from the fleet's
/// bucket in Redis (no I/O, no system call on the caller's thread). Made
/// by [`Fleet::rate_limiter`]. Thread-safe.
///
/// Bounds: over any window the fleet admits at most the limit over the
/// window plus the burst (every token was admitted by the fleet's GCRA
/// when leased); an instance holds at most its share of the burst plus
/// one tick of its share of the rate. When this instance's demand exceeds
/// its tokens, calls are refused until the next lease (at most
/// [`LEASE_TICK`] later): a fleet whose demand comes in sudden bursts is
/// admitted a little less than the limit. Dropping the limiter gives its
/// unspent tokens back.
#[derive(Debug)]
pub struct LeasedRateLimiter {
    inner: Arc<Inner>,
    /// The leasing thread's settings, for a child of `fork()` to start its
    /// own.
    template: Lease,
}

/// A leased limiter's counts (this instance's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeasedSnapshot {
    /// Requests admitted (on leased tokens or by the local fallback).
    pub admitted: u64,
    /// Requests refused.
    pub rejected: u64,
    /// Decisions made by the local fallback (Redis unreachable).
    pub fallbacks: u64,
    /// Tokens leased from the fleet, in all.
    pub leased: u64,
    /// Lease requests Redis answered (a heartbeat each, about 9 a
    /// second): `leased / leases` is the mean lease size.
    pub leases: u64,
    /// Tokens the last lease granted.
    pub last_lease: u64,
    /// Tokens given back to the fleet, in all.
    pub returned: u64,
    /// Leased tokens held now.
    pub held: u64,
    /// Live instances, as last counted.
    pub instances: u64,
    /// Lease requests that failed (Redis unreachable or slow).
    pub redis_errors: u64,
}

impl LeasedRateLimiter {
    /// Admits one request now, or says how long until it may.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejected> {
        self.try_acquire_n(1)
    }

    /// Admits a request of cost `n` now on leased tokens, or refuses it
    /// with the time until the next lease; `n = 0` always conforms; `n`
    /// above the burst never does (`Rejected::ExceedsCapacity`).
    #[inline]
    pub fn try_acquire_n(&self, n: u32) -> Result<(), Rejected> {
        let inner = &*self.inner;
        if n > inner.burst {
            return Err(Rejected::ExceedsCapacity {
                requested: n,
                capacity: inner.burst,
            });
        }
        if inner.gen.load(Relaxed) != failwell::fork_generation() {
            return self.after_fork(n);
        }
        if inner.local_mode.load(Relaxed) {
            return self.local(n);
        }
        let n64 = n as i64;
        let mut cur = inner.tokens.load(Relaxed);
        while cur >= n64 {
            match inner
                .tokens
                .compare_exchange_weak(cur, cur - n64, Relaxed, Relaxed)
            {
                Ok(_) => {
                    inner.admitted.fetch_add(n as u64, Relaxed);
                    return Ok(());
                }
                Err(seen) => cur = seen,
            }
        }
        inner.rejected.fetch_add(n as u64, Relaxed);
        Err(Rejected::RateLimited {
            retry_after: LEASE_TICK,
        })
    }

    /// The first calls in a child of `fork()`: the tokens the parent held
    /// are the parent's (it spends them), so the child starts with none,
    /// under an instance id of its own, on a leasing thread of its own.
    /// Refused until that thread's first lease.
    #[cold]
    fn after_fork(&self, n: u32) -> Result<(), Rejected> {
        let inner = &*self.inner;
        let gen = failwell::fork_generation();
        if inner
            .respawning
            .compare_exchange(false, true, Relaxed, Relaxed)
            .is_ok()
        {
            if inner.gen.load(Relaxed) != gen {
                inner.tokens.store(0, Relaxed);
                inner.stop.store(false, Relaxed);
                let mut lease = self.template.clone();
                lease.id = instance_id();
                if let Ok(t) = lease.spawn() {
                    match inner.thread.try_lock() {
                        Ok(mut slot) => {
                            // The parent's thread is not in this process.
                            std::mem::forget(slot.replace(t));
                        }
                        Err(_) => drop(t), // detached: it ends on `stop`
                    }
                }
                inner.gen.store(gen, Relaxed);
            }
            inner.respawning.store(false, Relaxed);
        }
        inner.rejected.fetch_add(n as u64, Relaxed);
        Err(Rejected::RateLimited {
            retry_after: LEASE_TICK,
        })
    }

    #[cold]
    fn local(&self, n: u32) -> Result<(), Rejected> {
        let inner = &*self.inner;
        inner.fallbacks.fetch_add(1, Relaxed);
        let r = match inner.on_unavailable {
            OnUnavailable::FailOpen => Ok(()),
            OnUnavailable::FailClosed => Err(Rejected::RateLimited {
                retry_after: LEASE_TICK,
            }),
            _ => inner.local.try_acquire_n(n),
        };
        match r {
            Ok(()) => inner.admitted.fetch_add(n as u64, Relaxed),
            Err(_) => inner.rejected.fetch_add(n as u64, Relaxed),
        };
        r
    }

    /// Admits a request of cost `n`, waiting at most `timeout` for it:
    /// while refused, sleeps until the next lease may have brought tokens
    /// (a few milliseconds at a time, never past the timeout) and tries
    /// again. `ExceedsCapacity` for `n` above the burst, at once.
    pub fn acquire_n_timeout(&self, n: u32, timeout: Duration) -> Result<(), Rejected> {
        retry_until(
            timeout,
            || self.try_acquire_n(n),
            |wait, left| {
                if left.is_zero() {
                    Err(wait)
                } else {
                    // Tokens come with a lease at any moment: look again soon.
                    Ok(wait.min(POLL).max(MIN_PAUSE).min(left))
                }
            },
        )
    }

    /// How long until one request may be admitted, as this instance can
    /// tell now: zero while it holds a leased token (or decides fail-open),
    /// the local share's wait while Redis is unreachable, else the time to
    /// the next lease (a few milliseconds).
    pub fn next_ready(&self) -> Duration {
        let inner = &*self.inner;
        if inner.local_mode.load(Relaxed) {
            return match inner.on_unavailable {
                OnUnavailable::FailOpen => Duration::ZERO,
                OnUnavailable::FailClosed => LEASE_TICK,
                _ => inner.local.next_ready(),
            };
        }
        if inner.tokens.load(Relaxed) >= 1 {
            Duration::ZERO
        } else {
            LEASE_TICK
        }
    }

    /// The emission interval `T` (the period divided by the requests).
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.inner.interval)
    }

    /// The burst: the most requests admitted at once, fleet-wide.
    pub fn burst(&self) -> u32 {
        self.inner.burst
    }

    /// This instance's counts.
    pub fn snapshot(&self) -> LeasedSnapshot {
        let i = &*self.inner;
        LeasedSnapshot {
            admitted: i.admitted.load(Relaxed),
            rejected: i.rejected.load(Relaxed),
            fallbacks: i.fallbacks.load(Relaxed),
            leased: i.leased.load(Relaxed),
            leases: i.leases.load(Relaxed),
            last_lease: i.last_lease.load(Relaxed),
            returned: i.returned.load(Relaxed),
            held: i.tokens.load(Relaxed).max(0) as u64,
            instances: i.instances.load(Relaxed),
            redis_errors: i.redis_errors.load(Relaxed),
        }
    }
}

impl Drop for LeasedRateLimiter {
    fn drop(&mut self) {
        self.inner.stop.store(true, Relaxed);
        if self.inner.gen.load(Relaxed) != failwell::fork_generation() {
            return; // a child that never leased: nothing of its own to end
        }
        let handle = self.inner.thread.try_lock().ok().and_then(|mut t| t.take());
        if let Some(t) = handle {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
