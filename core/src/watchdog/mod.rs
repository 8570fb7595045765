//! The watchdog: one OS thread that, on each tick, looks for stalled work,
//! deadlocked locks and leaks, and reports each finding once when it appears
//! and once when it clears.
//!
//! - **Stalls**: [`Watchdog::heartbeat`] registers a named heartbeat with a
//!   timeout; [`Heartbeat::beat`] proves progress (one atomic store). A
//!   heartbeat not beaten within its timeout is a finding.
//! - **Deadlocks** (feature `deadlock-detection`): parking_lot's lock-cycle
//!   detection, for locks taken through [`crate::lock::Mutex`] and
//!   [`crate::lock::RwLock`] (or parking_lot's own), with the threads'
//!   ids and backtraces.
//! - **Leaks**: the process's thread count against a baseline (more than
//!   `factor ×` baseline, 2× by default, or more than
//!   an absolute ceiling); gauges users register (open connections, queue
//!   lengths) with their own baselines; abandoned timed calls of a
//!   [`TimeoutPool`].
//!
//! The thread is joined when the watchdog is dropped or shut down, never
//! leaked. A report callback that panics is caught and counted; the
//! watchdog keeps running.
//!
//! ```
//! use std::time::Duration;
//! use failwell::watchdog::Watchdog;
//!
//! let dog = Watchdog::builder()
//!     .tick(Duration::from_millis(100))
//!     .on_finding(|f| eprintln!("watchdog: {f}"))
//!     .build()?;
//! let hb = dog.heartbeat("order-consumer", Duration::from_secs(5))?;
//! // ... in the consumer's loop:
//! hb.beat();
//! # Ok::<(), failwell::ConfigError>(())
//! ```

mod finding;
mod leak;

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::{nanos, Clock, MonotonicClock};
use crate::deadline::TimeoutPool;
use crate::error::ConfigError;
use crate::fork::{self, BackgroundThread, QuietMutex, Signal};
use crate::sync::{AtomicU64, Ordering::Relaxed, SharedFn, UserArc as Arc};

pub use finding::{Finding, FindingKind};
pub use leak::{process_threads, Growth};

use finding::key;

type Callback = Box<dyn Fn(&Finding) + Send + Sync>;
type GaugeFn = SharedFn<dyn Fn() -> u64 + Send + Sync>;

struct HeartbeatEntry {
    name: String,
    timeout: u64,
    last: Arc<AtomicU64>,
    thread: Option<String>,
}

struct GaugeEntry {
    name: String,
    read: GaugeFn,
    growth: Growth,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    heartbeats: BTreeMap<u64, HeartbeatEntry>,
    gauges: BTreeMap<u64, GaugeEntry>,
}

struct Shared {
    /// The findings active after the last tick (deadlocks stay listed).
    active: QuietMutex<Vec<Finding>>,
    registry: QuietMutex<Registry>,
    threads: Option<Growth>,
    deadlocks: bool,
    callback: Callback,
    ticks: AtomicU64,
    reports: AtomicU64,
    callback_panics: AtomicU64,
    tick: Duration,
    /// Started afresh in a child of `fork()` (see `ensure_thread`).
    thread: BackgroundThread,
}

/// Builds a [`Watchdog`]. Defaults: a 1 s tick; findings logged to standard
/// error; thread-leak detection at more than 2× the thread count at build
/// time, no ceiling; deadlock detection on when
/// the `deadlock-detection` feature is.
pub struct Builder {
    tick: Duration,
    callback: Option<Callback>,
    threads: Option<(f64, Option<u64>, Option<u64>)>,
    deadlocks: bool,
}

/// How often the watchdog looks, by default (1 s).
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);
/// The default thread-leak limit: more than this many times the threads
/// at start (2).
pub const DEFAULT_THREAD_LEAK_FACTOR: f64 = 2.0;

impl Default for Builder {
    fn default() -> Self {
        Builder {
            tick: DEFAULT_TICK,
            callback: None,
            threads: Some((DEFAULT_THREAD_LEAK_FACTOR, None, None)),
            deadlocks: cfg!(feature = "deadlock-detection"),
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("tick", &self.tick)
            .field("threads", &self.threads)
            .field("deadlocks", &self.deadlocks)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// How often to look (≥ 1 ms). A tick too long to represent as an
    /// instant (such as `Duration::MAX`) never comes: the watchdog then
    /// looks only when it is shut down or dropped.
    pub fn tick(mut self, d: Duration) -> Self {
        self.tick = d;
        self
    }

    /// Called on the watchdog's thread with each finding as it appears and
    /// as it clears. A panic in it is caught and counted. It replaces the
    /// default reporter: a line on standard error, or with the `tracing`
    /// feature a structured event (target `failwell::watchdog`, fields
    /// `kind`, `key`, `lasted_ms`, `cleared`, and a deadlock's
    /// `backtraces`).
    pub fn on_finding(mut self, f: impl Fn(&Finding) + Send + Sync + 'static) -> Self {
        self.callback = Some(Box::new(f));
        self
    }

    /// Report a thread leak when the process has more than `factor ×` its
    /// baseline threads (`factor > 1`, finite), or more than `ceiling`. The
    /// baseline is the count when the watchdog is built unless
    /// [`thread_baseline`](Self::thread_baseline) sets it. failwell's own
    /// helper threads (watchdogs, health runners, timeout pool workers) are
    /// never counted, in the baseline or after: a pool's abandoned calls are
    /// reported by [`Watchdog::watch_pool`] instead.
    pub fn thread_leak(mut self, factor: f64, ceiling: Option<u64>) -> Self {
        let baseline = self.threads.and_then(|t| t.2);
        self.threads = Some((factor, ceiling, baseline));
        self
    }

    /// The thread count the leak check compares with.
    pub fn thread_baseline(mut self, n: u64) -> Self {
        let (factor, ceiling) = self
            .threads
            .map_or((DEFAULT_THREAD_LEAK_FACTOR, None), |t| (t.0, t.1));
        self.threads = Some((factor, ceiling, Some(n)));
        self
    }

    /// Turn the thread-leak check off.
    pub fn no_thread_leak_check(mut self) -> Self {
        self.threads = None;
        self
    }

    /// Check parking_lot for lock cycles on each tick. Needs the
    /// `deadlock-detection` feature; asking for it without is an error.
    pub fn deadlock_detection(mut self, on: bool) -> Self {
        self.deadlocks = on;
        self
    }

    /// Validates, then starts the watchdog's thread.
    pub fn build(self) -> Result<Watchdog, ConfigError> {
        if self.tick < Duration::from_millis(1) {
            return Err(ConfigError::new(
                "tick",
                format!("must be at least 1 ms, got {:?}", self.tick),
            ));
        }
        if self.deadlocks && !cfg!(feature = "deadlock-detection") {
            return Err(ConfigError::new(
                "deadlock_detection",
                "needs failwell's `deadlock-detection` cargo feature",
            ));
        }
        let threads = match self.threads {
            None => None,
            Some((factor, ceiling, baseline)) => {
                let baseline = match baseline {
                    Some(b) => b,
                    None => foreign_threads().unwrap_or(0),
                };
                Some(Growth::new("thread_leak", baseline, factor, ceiling)?)
            }
        };
        let shared = Arc::new(Shared {
            active: QuietMutex::new(Vec::new()),
            registry: QuietMutex::new(Registry::default()),
            threads,
            deadlocks: self.deadlocks,
            callback: self.callback.unwrap_or_else(default_reporter),
            ticks: AtomicU64::new(0),
            reports: AtomicU64::new(0),
            callback_panics: AtomicU64::new(0),
            tick: self.tick,
            thread: BackgroundThread::new(),
        });
        shared.thread.start(|s| spawn(&shared, s)).map_err(|e| {
            ConfigError::new("watchdog", format!("could not start its thread: {e}"))
        })?;
        Ok(Watchdog { shared })
    }
}

/// The reporter a watchdog without [`Builder::on_finding`] uses: a
/// `tracing` event (target `failwell::watchdog`; warn, error for a
/// deadlock, info when a finding clears) with the `tracing` feature, a
/// line on standard error without it.
fn default_reporter() -> Callback {
    #[cfg(feature = "tracing")]
    return Box::new(crate::trace::finding);
    #[cfg(not(feature = "tracing"))]
    Box::new(|f: &Finding| eprintln!("failwell watchdog: {f}"))
}

/// Starts the watchdog's thread.
fn spawn(shared: &Arc<Shared>, signal: Arc<Signal>) -> std::io::Result<JoinHandle<()>> {
    let (for_thread, tick) = (Arc::clone(shared), shared.tick);
    crate::sync::spawn_own("failwell-watchdog", move || run(for_thread, tick, &signal))
}

/// In a child of `fork()`, starts the watchdog's thread afresh: the
/// parent's does not exist there. One relaxed load otherwise.
#[inline]
fn ensure_thread(shared: &Arc<Shared>) {
    shared.thread.ensure(|s| spawn(shared, s));
}

/// A running watchdog. Dropping it (or [`shutdown`](Self::shutdown)) stops
/// and joins its thread. In a child of `fork()` the first use of the
/// watchdog, a heartbeat's beat included, starts its thread afresh.
pub struct Watchdog {
    shared: Arc<Shared>,
}

/// A plain copy of a watchdog's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Ticks run.
    pub ticks: u64,
    /// Reports delivered (appearances and clearances).
    pub reports: u64,
    /// Report callbacks that panicked.
    pub callback_panics: u64,
    /// Heartbeats registered now.
    pub heartbeats: u64,
    /// Gauges registered now.
    pub gauges: u64,
}

impl Watchdog {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Registers a heartbeat that must beat at least every `timeout` (> 0;
    /// zero is a `ConfigError` naming `timeout`: it could never be met). It
    /// counts as beaten now. Dropping the returned guard unregisters it.
    pub fn heartbeat(
        &self,
        name: impl Into<String>,
        timeout: Duration,
    ) -> Result<Heartbeat, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be > 0"));
        }
        ensure_thread(&self.shared);
        let last = Arc::new(AtomicU64::new(MonotonicClock.now()));
        let mut reg = self.shared.registry.lock();
        reg.next_id += 1;
        let id = reg.next_id;
        reg.heartbeats.insert(
            id,
            HeartbeatEntry {
                name: name.into(),
                timeout: nanos(timeout),
                last: Arc::clone(&last),
                thread: std::thread::current().name().map(str::to_string),
            },
        );
        Ok(Heartbeat {
            shared: Arc::clone(&self.shared),
            id,
            last,
        })
    }

    /// Registers a gauge read on every tick and reported when above its
    /// growth limit. Dropping the returned guard unregisters it.
    pub fn gauge(
        &self,
        name: impl Into<String>,
        growth: Growth,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> GaugeGuard {
        ensure_thread(&self.shared);
        let mut reg = self.shared.registry.lock();
        reg.next_id += 1;
        let id = reg.next_id;
        reg.gauges.insert(
            id,
            GaugeEntry {
                name: name.into(),
                read: SharedFn::new(read),
                growth,
            },
        );
        GaugeGuard {
            shared: Arc::clone(&self.shared),
            id,
        }
    }

    /// Watches a [`TimeoutPool`]'s abandoned calls still running: more than
    /// `max_abandoned` is reported as a leak named `name`.
    pub fn watch_pool(
        &self,
        name: impl Into<String>,
        pool: TimeoutPool,
        max_abandoned: u64,
    ) -> GaugeGuard {
        let growth = Growth::ceiling_only(max_abandoned);
        self.gauge(name, growth, move || pool.snapshot().abandoned_running)
    }

    /// The findings active as of the last tick (a deadlock, once found,
    /// stays listed: it never clears). For health checks and dashboards.
    pub fn active(&self) -> Vec<Finding> {
        ensure_thread(&self.shared);
        self.shared.active.lock().clone()
    }

    /// The counters.
    pub fn snapshot(&self) -> Snapshot {
        ensure_thread(&self.shared);
        let reg = self.shared.registry.lock();
        Snapshot {
            ticks: self.shared.ticks.load(Relaxed),
            reports: self.shared.reports.load(Relaxed),
            callback_panics: self.shared.callback_panics.load(Relaxed),
            heartbeats: reg.heartbeats.len() as u64,
            gauges: reg.gauges.len() as u64,
        }
    }

    /// Stops the thread and waits for it to end.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.thread.stop_and_join();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watchdog")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// A registered heartbeat. [`beat`](Self::beat) is one atomic store.
pub struct Heartbeat {
    shared: Arc<Shared>,
    id: u64,
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    /// Proves progress now.
    #[inline]
    pub fn beat(&self) {
        ensure_thread(&self.shared);
        // Relaxed: the watchdog only compares times; a beat seen a tick late
        // is a beat seen.
        self.last.store(MonotonicClock.now(), Relaxed);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.shared.registry.lock().heartbeats.remove(&self.id);
    }
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heartbeat").field("id", &self.id).finish()
    }
}

/// A registered gauge; dropping it unregisters the gauge. Gauges are read
/// outside the watchdog's locks, so a read that had already started when
/// the guard was dropped may still finish afterwards; the read function
/// (and what it owns) is freed after that last read.
pub struct GaugeGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.shared.registry.lock().gauges.remove(&self.id);
    }
}

impl fmt::Debug for GaugeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GaugeGuard").field("id", &self.id).finish()
    }
}

/// The process's threads less failwell's own helper threads.
fn foreign_threads() -> Option<u64> {
    process_threads().map(|n| n.saturating_sub(crate::sync::own_threads()))
}

/// The watchdog thread: tick, look, diff with what was active, report.
fn run(shared: Arc<Shared>, tick: Duration, signal: &Signal) {
    let mut active: BTreeMap<String, (FindingKind, Instant)> = BTreeMap::new();
    let mut deadlocks: Vec<Finding> = Vec::new();
    // `None`: a tick too long for an instant, which never comes.
    let mut next = Instant::now().checked_add(tick);
    loop {
        if signal.sleep_until(next) {
            return;
        }
        // Quiet for the tick, but for the gauges' reads and the callback.
        let _quiet = fork::quiet();
        let now = Instant::now();
        next = next.and_then(|n| n.checked_add(tick));
        if next.is_some_and(|n| n < now) {
            next = now.checked_add(tick); // fell behind (suspended): do not burst
        }
        shared.ticks.fetch_add(1, Relaxed);
        let found = look(&shared);
        let mut current = BTreeMap::new();
        for kind in found {
            current.insert(key(&kind), kind);
        }
        // Cleared: active before, not found now.
        let gone: Vec<String> = active
            .keys()
            .filter(|k| !current.contains_key(*k))
            .cloned()
            .collect();
        for k in gone {
            let (kind, since) = active.remove(&k).expect("listed above");
            report(
                &shared,
                Finding {
                    kind,
                    cleared: true,
                    lasted: since.elapsed(),
                },
            );
        }
        for (k, kind) in current {
            match active.get_mut(&k) {
                Some(entry) => entry.0 = kind, // still there: keep it fresh, say nothing
                None => {
                    let f = Finding {
                        kind: kind.clone(),
                        cleared: false,
                        lasted: Duration::ZERO,
                    };
                    report(&shared, f.clone());
                    // Deadlocks are reported by parking_lot once; they
                    // never clear, so they are kept aside, not diffed.
                    if matches!(kind, FindingKind::Deadlock { .. }) {
                        deadlocks.push(f);
                    } else {
                        active.insert(k, (kind, Instant::now()));
                    }
                }
            }
        }
        let mut now_active = deadlocks.clone();
        now_active.extend(active.values().map(|(kind, since)| Finding {
            kind: kind.clone(),
            cleared: false,
            lasted: since.elapsed(),
        }));
        *shared.active.lock() = now_active;
    }
}

fn report(shared: &Shared, f: Finding) {
    shared.reports.fetch_add(1, Relaxed);
    if fork::aside(|| catch_unwind(AssertUnwindSafe(|| (shared.callback)(&f)))).is_err() {
        shared.callback_panics.fetch_add(1, Relaxed);
        crate::trace::callback_panicked(&f);
    }
}

/// Everything wrong now.
fn look(shared: &Shared) -> Vec<FindingKind> {
    let mut found = Vec::new();
    let now = MonotonicClock.now();
    let gauges;
    {
        let reg = shared.registry.lock();
        for hb in reg.heartbeats.values() {
            let silent = now.saturating_sub(hb.last.load(Relaxed));
            if silent > hb.timeout {
                found.push(FindingKind::Stall {
                    name: hb.name.clone(),
                    silent_for: Duration::from_nanos(silent),
                    timeout: Duration::from_nanos(hb.timeout),
                    thread: hb.thread.clone(),
                });
            }
        }
        gauges = reg
            .gauges
            .values()
            .map(|g| (g.name.clone(), g.growth, SharedFn::clone(&g.read)))
            .collect::<Vec<_>>();
    }
    // Gauges are read outside the registry's lock: a read function may
    // block (a binding's read waits for its interpreter lock), and must not
    // hold up threads registering or dropping heartbeats and gauges.
    for (name, growth, read) in gauges {
        // A gauge that panics is skipped this tick, not fatal.
        if let Ok(value) = fork::aside(|| catch_unwind(AssertUnwindSafe(|| read()))) {
            if let Some(limit) = growth.exceeded_by(value) {
                found.push(FindingKind::GaugeLeak {
                    name,
                    value,
                    baseline: growth.baseline(),
                    limit,
                });
            }
        }
    }
    if let (Some(growth), Some(threads)) = (&shared.threads, foreign_threads()) {
        if let Some(limit) = growth.exceeded_by(threads) {
            found.push(FindingKind::ThreadLeak {
                threads,
                baseline: growth.baseline(),
                limit,
            });
        }
    }
    if shared.deadlocks {
        found.extend(deadlocks());
    }
    found
}

#[cfg(feature = "deadlock-detection")]
fn deadlocks() -> Vec<FindingKind> {
    parking_lot::deadlock::check_deadlock()
        .into_iter()
        .map(|cycle| FindingKind::Deadlock {
            threads: cycle
                .iter()
                .map(|t| {
                    (
                        format!("{:?}", t.thread_id()),
                        format!("{:?}", t.backtrace()),
                    )
                })
                .collect(),
        })
        .collect()
}

#[cfg(not(feature = "deadlock-detection"))]
fn deadlocks() -> Vec<FindingKind> {
    Vec::new()
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
