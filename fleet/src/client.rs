//! The connection to the fleet's Redis: a small pool of synchronous
//! connections, each with its connect, read and write timeouts, and
//! failwell's own breaker around it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use failwell::breaker::CircuitBreaker;
use failwell::ConfigError;
use redis::{Connection, IntoConnectionInfo, RedisError, RedisResult, Script};

use crate::FleetError;

/// Default time allowed to open a TCP connection to Redis.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
/// Default time allowed for each write to and each read from Redis.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_millis(50);
/// Default number of idle connections kept.
pub const DEFAULT_POOL_SIZE: usize = 4;
/// Default prefix of every key failwell writes.
pub const DEFAULT_KEY_PREFIX: &str = "failwell:";
/// The longest timeout accepted (a timeout is never unbounded).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Failures in a row after which failwell's breaker around Redis opens,
/// and how long it stays open before one call tries again.
pub const GUARD_FAILURES: u32 = 3;
/// See [`GUARD_FAILURES`].
pub const GUARD_OPEN_FOR: Duration = Duration::from_secs(1);

/// Settings of a [`Fleet`]; [`connect`](Self::connect) checks them.
#[derive(Debug, Clone)]
pub struct FleetBuilder {
    url: String,
    connect_timeout: Duration,
    io_timeout: Duration,
    pool_size: usize,
    key_prefix: String,
}

impl FleetBuilder {
    /// Time allowed to open a connection (default 100 ms; `> 0`, at most
    /// 60 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Time allowed for each write and each read (default 50 ms; `> 0`,
    /// at most 60 s).
    pub fn io_timeout(mut self, d: Duration) -> Self {
        self.io_timeout = d;
        self
    }

    /// Idle connections kept for reuse (default 4; 1 ..= 64). More may be
    /// open at once under load; the extra ones are closed after use.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// The prefix of every key (default `failwell:`), so that several
    /// services can share one Redis.
    pub fn key_prefix(mut self, p: impl Into<String>) -> Self {
        self.key_prefix = p.into();
        self
    }

    /// Checks the settings, opens one connection and returns the fleet. Errors: [`FleetError::Config`] naming the field,
    /// [`FleetError::Url`], or [`FleetError::Redis`] when Redis cannot be
    /// reached within the timeouts. A service that must start while Redis
    /// is down uses [`open`](Self::open).
    pub fn connect(self) -> Result<Fleet, FleetError> {
        let fleet = self.open()?;
        let mut conn = fleet
            .open_connection()
            .map_err(|source| FleetError::Redis {
                op: "connect",
                source,
            })?;
        // A server that accepts connections but does not answer (paused,
        // overloaded) is not connected to.
        redis::cmd("PING")
            .query::<String>(&mut conn)
            .map_err(|source| FleetError::Redis {
                op: "connect",
                source,
            })?;
        fleet.put_back(conn);
        Ok(fleet)
    }

    /// Checks the settings and returns the fleet without reaching Redis:
    /// the first request connects. Its primitives decide on their local
    /// fallbacks until Redis answers (a leased limiter on its share; an
    /// exact one as its [`OnUnavailable`](crate::OnUnavailable) says).
    /// Errors: [`FleetError::Config`], [`FleetError::Url`].
    pub fn open(self) -> Result<Fleet, FleetError> {
        for (field, d) in [
            ("connect_timeout", self.connect_timeout),
            ("io_timeout", self.io_timeout),
        ] {
            if d.is_zero() || d > MAX_TIMEOUT {
                return Err(ConfigError::new(
                    field,
                    format!("must be > 0 and at most {MAX_TIMEOUT:?}, got {d:?}"),
                )
                .into());
            }
        }
        if !(1..=64).contains(&self.pool_size) {
            return Err(ConfigError::new(
                "pool_size",
                format!("must be 1 ..= 64, got {}", self.pool_size),
            )
            .into());
        }
        let url_error = |source| FleetError::Url {
            url: self.url.clone(),
            source,
        };
        let info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(url_error)?;
        // No `CLIENT SETINFO` round trip when a connection opens: a new
        // connection to a server that accepts but does not answer (paused,
        // overloaded) then costs the caller one `io_timeout`, not the
        // connect timeout on top.
        let redis = info.redis_settings().clone().set_skip_set_lib_name();
        let client = redis::Client::open(info.set_redis_settings(redis)).map_err(url_error)?;
        // Counts forks from here on (the pool and the leasing threads
        // notice a child by it).
        failwell::fork_generation();
        let guard = CircuitBreaker::builder()
            .consecutive_failures(GUARD_FAILURES)
            .half_open_calls(1)
            .open_for(GUARD_OPEN_FOR)
            .build()?;
        let fleet = Fleet {
            inner: Arc::new(Inner {
                client,
                settings: self,
                idle: Mutex::new(Vec::new()),
                guard,
                stats: Stats::default(),
            }),
        };
        Ok(fleet)
    }
}

/// A connection to the fleet's Redis, shared by the primitives made from
/// it (clone it freely: clones share the pool). Thread-safe, and
/// fork-safe: a child of `fork()` opens connections of its own (it never
/// writes to its parent's sockets).
///
/// Every request runs on a pooled connection with the builder's timeouts,
/// so a call that reaches Redis waits at most about two `io_timeout`s (the
/// request's write and its answer's read; one more pair if the server lost
/// its scripts and they are loaded again), plus `connect_timeout` when no
/// idle connection is left and the server's host does not answer the TCP
/// handshake (a new connection sends nothing before the request).
/// After [`GUARD_FAILURES`] failures in a row, failwell's own breaker
/// stops sending requests for [`GUARD_OPEN_FOR`]; requests then fail at
/// once with [`FleetError::Unavailable`], and one request tries again.
#[derive(Debug, Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    settings: FleetBuilder,
    /// Idle connections, each with the fork generation it was opened in
    /// (a child of `fork()` must not use its parent's sockets).
    idle: Mutex<Vec<(Connection, u64)>>,
    guard: CircuitBreaker,
    stats: Stats,
}

/// Requests to Redis, for metrics.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    failures: AtomicU64,
    refused: AtomicU64,
    latency_ns: AtomicU64,
}

/// A fleet connection's request counts (this process's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetSnapshot {
    /// Requests sent to Redis.
    pub requests: u64,
    /// Of those, the ones that failed (unreachable, timed out, dropped).
    pub failures: u64,
    /// Requests not sent: failwell's breaker around Redis was open.
    pub refused: u64,
    /// The time the requests sent took, in all (nanoseconds).
    pub latency_ns: u64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("url", &self.settings.url)
            .field("guard", &self.guard.state())
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Settings for the Redis at `url` (`redis://host:port/db`), with the
    /// documented defaults.
    pub fn builder(url: impl Into<String>) -> FleetBuilder {
        FleetBuilder {
            url: url.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            io_timeout: DEFAULT_IO_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }

    /// [`builder`](Self::builder)`(url).connect()`.
    pub fn connect(url: impl Into<String>) -> Result<Fleet, FleetError> {
        Self::builder(url).connect()
    }

    /// The full key of a primitive's `kind` and `name`, one Redis Cluster
    /// slot per primitive (the name is the hash tag).
    pub(crate) fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{{{name}}}", self.inner.settings.key_prefix)
    }

    /// Loads `script` into Redis (scripts are the server's, for every
    /// connection; a server that lost them, restarted or flushed, gets
    /// them again from the `NOSCRIPT` answer to `EVALSHA`).
    pub(crate) fn register(&self, script: Arc<Script>) -> Result<(), FleetError> {
        self.run("load scripts", |c| script.load(c).map(drop))
    }

    /// [`register`](Self::register), where a Redis that cannot be reached
    /// now is not an error (EVALSHA loads it once Redis answers).
    pub(crate) fn register_lazily(&self, script: Arc<Script>) -> Result<(), FleetError> {
        match self.register(script) {
            Err(e) if !e.is_unavailable() => Err(e),
            _ => Ok(()),
        }
    }

    /// The state of failwell's own breaker around Redis.
    pub fn guard_state(&self) -> failwell::breaker::State {
        self.inner.guard.state()
    }

    /// One round trip (`PING`), timed.
    pub fn ping(&self) -> Result<Duration, FleetError> {
        self.run("ping", |c| {
            let t = Instant::now();
            redis::cmd("PING").query::<String>(c)?;
            Ok(t.elapsed())
        })
    }

    /// Runs `f` on a pooled connection under failwell's breaker around
    /// Redis. An error that says the connection or the server failed
    /// (I/O, timeout, dropped connection) counts against the breaker and
    /// the connection is closed; an error reply from a working server
    /// does not.
    pub(crate) fn run<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, FleetError> {
        let stats = &self.inner.stats;
        let permit = match self.inner.guard.try_acquire() {
            Ok(p) => p,
            Err(r) => {
                stats.refused.fetch_add(1, Relaxed);
                let retry_after = match r {
                    failwell::Rejected::CircuitOpen { retry_after } => retry_after,
                    _ => None,
                };
                return Err(FleetError::Unavailable { retry_after });
            }
        };
        stats.requests.fetch_add(1, Relaxed);
        let began = Instant::now();
        let r = self.run_permitted(permit, op, f);
        stats
            .latency_ns
            .fetch_add(began.elapsed().as_nanos() as u64, Relaxed);
        if matches!(&r, Err(FleetError::Redis { source, .. }) if broken(source)) {
            stats.failures.fetch_add(1, Relaxed);
        }
        r
    }

    /// This process's request counts.
    pub fn snapshot(&self) -> FleetSnapshot {
        let s = &self.inner.stats;
        FleetSnapshot {
            requests: s.requests.load(Relaxed),
            failures: s.failures.load(Relaxed),
            refused: s.refused.load(Relaxed),
            latency_ns: s.latency_ns.load(Relaxed),
        }
    }

    fn run_permitted<T>(
        &self,
        permit: failwell::breaker::Permit<'_>,
        op: &'static str,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, FleetError> {
        let mut conn = match self.take() {
            Ok(c) => c,
            Err(source) => {
                permit.failure();
                return Err(FleetError::Redis {
                    op: "connect",
                    source,
                });
            }
        };
        match f(&mut conn) {
            Ok(v) => {
                permit.success();
                self.put_back(conn);
                Ok(v)
            }
            Err(source) => {
                if broken(&source) {
                    permit.failure(); // the connection is dropped here
                } else {
                    permit.success(); // Redis answered
                    self.put_back(conn);
                }
                Err(FleetError::Redis { op, source })
            }
        }
    }

    fn take(&self) -> RedisResult<Connection> {
        let gen = failwell::fork_generation();
        let found = briefly(&self.inner.idle).and_then(|mut idle| {
            // A parent's connections are closed here (this process's copy
            // of the socket only; the parent keeps its own).
            idle.retain(|(_, g)| *g == gen);
            idle.pop()
        });
        match found {
            Some((c, _)) => Ok(c),
            None => self.open_connection(),
        }
    }

    fn put_back(&self, conn: Connection) {
        let gen = failwell::fork_generation();
        if let Some(mut idle) = briefly(&self.inner.idle) {
            if idle.len() < self.inner.settings.pool_size {
                idle.push((conn, gen));
            }
        }
    }

    /// A new connection with the timeouts set.
    fn open_connection(&self) -> RedisResult<Connection> {
        let s = &self.inner.settings;
        let conn = self
            .inner
            .client
            .get_connection_with_timeout(s.connect_timeout)?;
        conn.set_read_timeout(Some(s.io_timeout))?;
        conn.set_write_timeout(Some(s.io_timeout))?;
        Ok(conn)
    }
}

/// `m` locked, if it can be within a few hundred tries: the pool's locks
/// are held for a push or a pop, so only a lock a thread of the parent
/// held at the instant of `fork()` (held for ever in the child) is not
/// had. The caller then does without the pool (a connection of its own,
/// closed after use).
fn briefly<T>(m: &Mutex<T>) -> Option<std::sync::MutexGuard<'_, T>> {
    for i in 0..300 {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if i < 100 => std::hint::spin_loop(),
            Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
    None
}

/// Whether `e` says the connection or the server failed (rather than a
/// working server answering with an error).
fn broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}
