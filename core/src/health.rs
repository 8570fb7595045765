//! The health registry: named checks, each critical or not and with its own
//! timeout, run together on a background thread so that reading health is
//! a cheap read of the last report, not a call to every dependency.
//!
//! A check that hangs is timed out at its own deadline and reported without
//! delaying the others (checks run in parallel on a bounded
//! [`TimeoutPool`]); while it is still hanging it is not started again.
//! Circuit breakers can be registered so that an open breaker shows as
//! Degraded or Unhealthy, and so can a watchdog with active findings. The aggregate is Unhealthy if a critical check
//! fails, Degraded if anything else is not healthy, Healthy otherwise (a
//! critical database and a non-critical cache, say).
//!
//! ```
//! use std::time::Duration;
//! use failwell::health::{HealthRegistry, Status};
//!
//! let health = HealthRegistry::builder().interval(Duration::from_secs(5)).build()?;
//! health.register("database", true, Duration::from_secs(2), || Ok(()))?;
//! health.register("cache", false, Duration::from_millis(100), || Err("connection refused".into()))?;
//! let report = health.check_now();
//! assert_eq!(report.status, Status::Degraded);
//! # Ok::<(), failwell::ConfigError>(())
//! ```

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::breaker::{CircuitBreaker, State};
use crate::clock::Clock;
use crate::deadline::{Deadline, TimeoutPool};
use crate::error::{ConfigError, Rejected};
use crate::fork::{self, BackgroundThread, QuietMutex, QuietRwLock, Signal};
// The user's `Arc` (std's, also in the loom build): breakers, watchdogs and
// reports handed in and out are theirs; the registry is never modelled.
use crate::sync::{SharedFn, UserArc as Arc};
use crate::watchdog::Watchdog;

/// Health, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Everything works.
    Healthy,
    /// Working with reduced function: a non-critical check fails, or a
    /// breaker registered as such is open.
    Degraded,
    /// A critical check fails.
    Unhealthy,
}

impl Status {
    /// `healthy`, `degraded` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one check in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// Whether its failure makes the whole service unhealthy.
    pub critical: bool,
    /// Its status this round.
    pub status: Status,
    /// How long it took (its timeout, if it timed out; how long it has been
    /// hanging, if it still is).
    pub latency: Duration,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// One round's reports and their aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// The aggregate status.
    pub status: Status,
    /// Each check, in registration order.
    pub checks: Vec<CheckReport>,
    /// Rounds run so far (0: no round yet, every check reads as healthy).
    pub round: u64,
}

type CheckFn = SharedFn<dyn Fn() -> Result<(), String> + Send + Sync>;
type StateFn = Box<dyn Fn() -> State + Send + Sync>;

enum Probe {
    Call {
        f: CheckFn,
        timeout: Duration,
        /// When the last run that has not finished started.
        /// When the run still going started, and in which fork generation
        /// (a run of the parent process does not go on in a child).
        hanging_since: Arc<QuietMutex<Option<(Instant, u64)>>>,
    },
    Breaker {
        state: StateFn,
        when_open: Status,
    },
    Watchdog {
        watchdog: Arc<Watchdog>,
        when_found: Status,
    },
}

struct Check {
    name: String,
    critical: bool,
    probe: Probe,
}

struct Shared {
    checks: QuietMutex<Vec<Check>>,
    report: QuietRwLock<Arc<HealthReport>>,
    pool: TimeoutPool,
}

/// Builds a [`HealthRegistry`]. Defaults: a round every 5 s, at most 16
/// checks running at once.
#[derive(Debug, Clone)]
pub struct Builder {
    interval: Duration,
    max_parallel: usize,
}

/// Time between rounds of checks, by default (5 s).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Checks run at once, at most, by default (16).
pub const DEFAULT_MAX_PARALLEL: usize = 16;
/// A check's time limit per run where a binding asks for none (1 s).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

impl Default for Builder {
    fn default() -> Self {
        Builder {
            interval: DEFAULT_INTERVAL,
            max_parallel: DEFAULT_MAX_PARALLEL,
        }
    }
}

impl Builder {
    /// Time between rounds (≥ 10 ms). An interval too long to represent as
    /// an instant (such as `Duration::MAX`) never ends: rounds then run
    /// only through [`HealthRegistry::check_now`].
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// The most check calls running at once, hanging ones included
    /// (`1 ..= 4096`).
    pub fn max_parallel(mut self, n: usize) -> Self {
        self.max_parallel = n;
        self
    }

    /// Validates and starts the background thread.
    pub fn build(self) -> Result<HealthRegistry, ConfigError> {
        if self.interval < Duration::from_millis(10) {
            return Err(ConfigError::new(
                "interval",
                format!("must be at least 10 ms, got {:?}", self.interval),
            ));
        }
        let pool = TimeoutPool::new(self.max_parallel)
            .map_err(|e| ConfigError::new("max_parallel", e.problem().to_string()))?;
        let shared = Arc::new(Shared {
            checks: QuietMutex::new(Vec::new()),
            report: QuietRwLock::new(Arc::new(HealthReport {
                status: Status::Healthy,
                checks: Vec::new(),
                round: 0,
            })),
            pool,
        });
        let runner = BackgroundThread::new();
        runner
            .start(|s| spawn_runner(&shared, self.interval, s))
            .map_err(|e| ConfigError::new("health", format!("could not start its thread: {e}")))?;
        Ok(HealthRegistry {
            shared,
            interval: self.interval,
            runner,
        })
    }
}

/// Starts the thread that runs a round every `interval`.
fn spawn_runner(
    shared: &Arc<Shared>,
    interval: Duration,
    signal: Arc<Signal>,
) -> std::io::Result<JoinHandle<()>> {
    let for_thread = Arc::clone(shared);
    crate::sync::spawn_own("failwell-health", move || loop {
        // An interval too long for an instant: the next round never
        // comes (only drop wakes the runner, to stop it).
        if signal.sleep_until(Instant::now().checked_add(interval)) {
            return;
        }
        round(&for_thread);
    })
}

/// A registry of health checks with a background runner. Dropping it stops
/// and joins the runner (a hanging check's worker ends when the check
/// returns).
pub struct HealthRegistry {
    shared: Arc<Shared>,
    interval: Duration,
    runner: BackgroundThread,
}

impl HealthRegistry {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// In a child of `fork()`, starts the runner afresh (the parent's does
    /// not exist there).
    #[inline]
    fn ensure_runner(&self) {
        self.runner
            .ensure(|s| spawn_runner(&self.shared, self.interval, s));
    }

    fn add(&self, check: Check) -> Result<(), ConfigError> {
        self.ensure_runner();
        let mut checks = self.shared.checks.lock();
        if check.name.is_empty() {
            return Err(ConfigError::new("name", "a check needs a name"));
        }
        if checks.iter().any(|c| c.name == check.name) {
            return Err(ConfigError::new(
                "name",
                format!("a check named {:?} is already registered", check.name),
            ));
        }
        checks.push(check);
        Ok(())
    }

    /// Registers a check: `f` returns `Ok` when healthy, or an error message.
    /// It runs on a pool worker each round and is given `timeout` (> 0).
    pub fn register(
        &self,
        name: impl Into<String>,
        critical: bool,
        timeout: Duration,
        f: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Result<(), ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be > 0"));
        }
        self.add(Check {
            name: name.into(),
            critical,
            probe: Probe::Call {
                f: SharedFn::new(f),
                timeout,
                hanging_since: Arc::new(QuietMutex::new(None)),
            },
        })
    }

    /// Registers a circuit breaker: while it is open (or forced open, or
    /// half-open) the check reads `when_open` (`Degraded` or `Unhealthy`);
    /// otherwise Healthy. Reading it is a load; it needs no timeout.
    pub fn register_breaker<C: Clock>(
        &self,
        name: impl Into<String>,
        breaker: Arc<CircuitBreaker<C>>,
        when_open: Status,
    ) -> Result<(), ConfigError> {
        if when_open == Status::Healthy {
            return Err(ConfigError::new(
                "when_open",
                "an open breaker must read Degraded or Unhealthy",
            ));
        }
        self.add(Check {
            name: name.into(),
            critical: when_open == Status::Unhealthy,
            probe: Probe::Breaker {
                state: Box::new(move || breaker.state()),
                when_open,
            },
        })
    }

    /// Registers a watchdog: while it has active findings (stalls, leaks,
    /// deadlocks) the check reads `when_found` (`Degraded` or `Unhealthy`)
    /// and lists them; otherwise Healthy. Reading it takes no time.
    pub fn register_watchdog(
        &self,
        name: impl Into<String>,
        watchdog: Arc<Watchdog>,
        when_found: Status,
    ) -> Result<(), ConfigError> {
        if when_found == Status::Healthy {
            return Err(ConfigError::new(
                "when_found",
                "a watchdog finding must read Degraded or Unhealthy",
            ));
        }
        self.add(Check {
            name: name.into(),
            critical: when_found == Status::Unhealthy,
            probe: Probe::Watchdog {
                watchdog,
                when_found,
            },
        })
    }

    /// The last round's report: a read of a shared pointer, never a call to
    /// a check.
    ///
    /// In a child of `fork()` the first call starts the runner afresh, so
    /// rounds go on there (the first report read is the parent's last).
    pub fn report(&self) -> Arc<HealthReport> {
        self.ensure_runner();
        Arc::clone(&self.shared.report.read())
    }

    /// Runs a round now, on the calling thread (checks still run on the
    /// pool, in parallel), publishes it and returns it.
    pub fn check_now(&self) -> Arc<HealthReport> {
        self.ensure_runner();
        round(&self.shared)
    }
}

impl Drop for HealthRegistry {
    fn drop(&mut self) {
        self.runner.stop_and_join();
    }
}

impl fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthRegistry")
            .field("report", &self.report())
            .finish_non_exhaustive()
    }
}

/// What became of one check's run this round.
enum Run {
    Done(CheckReport),
    Waiting {
        pending: crate::deadline::Pending<Result<(), String>>,
        deadline: Deadline,
        started: Instant,
        timeout: Duration,
    },
}

/// Marks a check's run as finished when the run ends, however it ends.
struct ClearOnDrop(Arc<QuietMutex<Option<(Instant, u64)>>>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}

fn failed(critical: bool) -> Status {
    if critical {
        Status::Unhealthy
    } else {
        Status::Degraded
    }
}

/// One round: start every check, then collect each against its deadline.
fn round(shared: &Shared) -> Arc<HealthReport> {
    // Quiet, but for the waits for the checks (which run on the pool).
    let _quiet = fork::quiet();
    let mut runs: Vec<(String, bool, Run)> = Vec::new();
    {
        let checks = shared.checks.lock();
        for c in checks.iter() {
            let report = |status, latency, error| CheckReport {
                name: c.name.clone(),
                critical: c.critical,
                status,
                latency,
                error,
            };
            let run = match &c.probe {
                Probe::Breaker { state, when_open } => {
                    let s = state();
                    let open = matches!(s, State::Open | State::ForcedOpen | State::HalfOpen);
                    Run::Done(if open {
                        report(
                            *when_open,
                            Duration::ZERO,
                            Some(format!("circuit breaker is {s}")),
                        )
                    } else {
                        report(Status::Healthy, Duration::ZERO, None)
                    })
                }
                Probe::Watchdog {
                    watchdog,
                    when_found,
                } => {
                    let found = watchdog.active();
                    Run::Done(if found.is_empty() {
                        report(Status::Healthy, Duration::ZERO, None)
                    } else {
                        let list: Vec<String> = found.iter().map(|f| f.to_string()).collect();
                        report(*when_found, Duration::ZERO, Some(list.join("; ")))
                    })
                }
                Probe::Call {
                    f,
                    timeout,
                    hanging_since,
                } => {
                    let gen = fork::generation();
                    let still = hanging_since.lock().filter(|(_, g)| *g == gen);
                    if let Some((since, _)) = still {
                        Run::Done(report(
                            failed(c.critical),
                            since.elapsed(),
                            Some(format!(
                                "still hanging from a run started {:?} ago",
                                since.elapsed()
                            )),
                        ))
                    } else {
                        let started = Instant::now();
                        *hanging_since.lock() = Some((started, gen));
                        let (f, flag) = (SharedFn::clone(f), Arc::clone(hanging_since));
                        match shared.pool.start(move || {
                            let _done = ClearOnDrop(flag);
                            catch_unwind(AssertUnwindSafe(|| f()))
                                .unwrap_or_else(|_| Err("the check panicked".to_string()))
                        }) {
                            Ok(pending) => Run::Waiting {
                                pending,
                                deadline: Deadline::after(*timeout),
                                started,
                                timeout: *timeout,
                            },
                            Err(_) => {
                                *hanging_since.lock() = None;
                                Run::Done(report(
                                    failed(c.critical),
                                    Duration::ZERO,
                                    Some("no worker free to run the check".into()),
                                ))
                            }
                        }
                    }
                }
            };
            runs.push((c.name.clone(), c.critical, run));
        }
    }
    let checks: Vec<CheckReport> = runs
        .into_iter()
        .map(|(name, critical, run)| match run {
            Run::Done(r) => r,
            Run::Waiting {
                pending,
                deadline,
                started,
                timeout,
            } => {
                let (status, latency, error) = match fork::aside(|| pending.wait(deadline)) {
                    Ok(Ok(())) => (Status::Healthy, started.elapsed(), None),
                    Ok(Err(e)) => (failed(critical), started.elapsed(), Some(e)),
                    Err(Rejected::DeadlineExceeded) => (
                        failed(critical),
                        timeout,
                        Some(format!("timed out after {timeout:?}")),
                    ),
                    Err(other) => (failed(critical), started.elapsed(), Some(other.to_string())),
                };
                CheckReport {
                    name,
                    critical,
                    status,
                    latency,
                    error,
                }
            }
        })
        .collect();
    let status = checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Healthy);
    let mut slot = shared.report.write();
    let report = Arc::new(HealthReport {
        status,
        checks,
        round: slot.round + 1,
    });
    let before = std::mem::replace(&mut *slot, Arc::clone(&report));
    drop(slot);
    announce_changes(&before, &report);
    report
}

/// Emits a `tracing` event (the `tracing` feature) for each check whose
/// status changed since the round before, and for the aggregate. Before
/// the first round every check reads as healthy, so a check that fails in
/// the first round is a change.
fn announce_changes(before: &HealthReport, after: &HealthReport) {
    if !cfg!(feature = "tracing") {
        return;
    }
    for c in &after.checks {
        let was = before
            .checks
            .iter()
            .find(|b| b.name == c.name)
            .map_or(Status::Healthy, |b| b.status);
        if was != c.status {
            crate::trace::health_changed(Some(&c.name), was, c.status, c.error.as_deref());
        }
    }
    if before.status != after.status {
        crate::trace::health_changed(None, before.status, after.status, None);
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
