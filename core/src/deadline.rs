//! Deadlines that travel down the call stack, and timed calls for code that
//! cannot take one.
//!
//! A [`Deadline`] is an absolute instant on the monotonic clock. Pass it to
//! every layer; each layer derives its own with [`Deadline::child`] (never
//! later than its caller's) and gives up when [`Deadline::is_expired`].
//!
//! Code that cannot take a deadline (a blocking driver call) runs on a
//! bounded [`TimeoutPool`] with [`TimeoutPool::run`]: the caller gets
//! `DeadlineExceeded` on time, and the call that overran is *counted* as
//! abandoned (and still holds its worker until it returns) rather than
//! silently leaked; a pool whose workers are all busy refuses new calls.
//!
//! ```
//! use std::time::Duration;
//! use failwell::deadline::{with_timeout, Deadline};
//!
//! let request = Deadline::after(Duration::from_secs(2));
//! let db = request.child(Duration::from_millis(500)); // never later than the request's
//! assert!(db <= request);
//! let answer = with_timeout(db, || 6 * 7).expect("fast enough");
//! assert_eq!(answer, 42);
//! ```

use crate::sync::statics::OnceLock;
use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::clock::{nanos, Clock, MonotonicClock};
use crate::error::{ConfigError, Rejected};
use crate::fork::{self, QuietMutex};
use crate::sync::{
    current_thread, park_timeout, Arc, AtomicU64, Condvar, CoreMutex, Ordering::Relaxed, Thread,
};

/// An absolute deadline, in nanoseconds of the monotonic clock.
///
/// Deadlines made with [`after`](Self::after) read [`MonotonicClock`];
/// those made with [`after_on`](Self::after_on) read the clock given, and
/// must then be checked against the same clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: u64,
}

impl Deadline {
    /// `d` from now on the monotonic clock.
    pub fn after(d: Duration) -> Self {
        Self::after_on(&MonotonicClock, d)
    }

    /// `d` from now on `clock`.
    pub fn after_on(clock: &impl Clock, d: Duration) -> Self {
        Deadline {
            at: clock.now().saturating_add(nanos(d)),
        }
    }

    /// At `nanos` on the clock's timeline.
    pub fn at(nanos: u64) -> Self {
        Deadline { at: nanos }
    }

    /// A deadline that never passes.
    pub fn never() -> Self {
        Deadline { at: u64::MAX }
    }

    /// The instant, in the clock's nanoseconds (`u64::MAX` for never).
    pub fn as_nanos(self) -> u64 {
        self.at
    }

    /// Whether this deadline never passes.
    pub fn is_never(self) -> bool {
        self.at == u64::MAX
    }

    /// The earlier of the two.
    pub fn min(self, other: Deadline) -> Deadline {
        if other.at < self.at {
            other
        } else {
            self
        }
    }

    /// The deadline for a sub-call allowed `d`: `d` from now, but never later
    /// than this one.
    pub fn child(self, d: Duration) -> Deadline {
        self.min(Deadline::after(d))
    }

    /// Time left on the monotonic clock (zero once passed).
    pub fn remaining(self) -> Duration {
        self.remaining_on(&MonotonicClock)
    }

    /// Time left on `clock` (zero once passed).
    pub fn remaining_on(self, clock: &impl Clock) -> Duration {
        Duration::from_nanos(self.at.saturating_sub(clock.now()))
    }

    /// Whether it has passed on the monotonic clock.
    pub fn is_expired(self) -> bool {
        self.is_expired_on(&MonotonicClock)
    }

    /// Whether it has passed on `clock`. A deadline that never passes
    /// reads no clock.
    #[inline]
    pub fn is_expired_on(self, clock: &impl Clock) -> bool {
        !self.is_never() && clock.now() >= self.at
    }

    /// The `std::time::Instant` of this deadline, if it is representable.
    fn instant(self) -> Option<Instant> {
        if self.is_never() {
            None
        } else {
            Instant::now().checked_add(self.remaining())
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    jobs: VecDeque<Job>,
    /// Workers with nothing to do, each parked until a caller takes it off
    /// this list and unparks it (a parked thread retakes no lock when it
    /// wakes, so no fork can find one held by a waking worker).
    idle: Vec<Thread>,
    threads: usize,
    shutdown: bool,
}

struct PoolInner {
    /// Locked inside a quiet section (see `fork`) on every thread: no
    /// fork finds it held.
    queue: QuietMutex<Queue>,
    max_threads: usize,
    idle_timeout: Duration,
    /// Calls admitted and not yet finished (including abandoned ones).
    busy: AtomicU64,
    completed: AtomicU64,
    timed_out: AtomicU64,
    abandoned_running: AtomicU64,
    rejected: AtomicU64,
    /// The fork generation whose workers the queue counts (see `fork`).
    fork_gen: AtomicU64,
}

impl PoolInner {
    /// In a child of `fork()`: the parent's workers, queued calls and calls
    /// in flight do not exist here; forget them, so the pool starts fresh
    /// workers instead of handing calls to threads that will never run them.
    #[inline]
    fn adopt_after_fork(&self) {
        if self.fork_gen.load(Relaxed) != fork::generation() {
            self.reset_after_fork();
        }
    }

    #[cold]
    fn reset_after_fork(&self) {
        let mut q = self.queue.lock();
        let now = fork::generation();
        if self.fork_gen.load(Relaxed) == now {
            return; // another caller did it
        }
        q.jobs.clear();
        q.threads = 0;
        q.idle.clear();
        self.busy.store(0, Relaxed);
        self.abandoned_running.store(0, Relaxed);
        self.fork_gen.store(now, Relaxed);
    }
}

/// A plain copy of a pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSnapshot {
    /// The most worker threads the pool runs.
    pub max_threads: u64,
    /// Worker threads alive now.
    pub threads: u64,
    /// Calls running or queued now (abandoned ones included).
    pub busy: u64,
    /// Calls whose caller got their result.
    pub completed: u64,
    /// Calls whose caller gave up at the deadline (abandoned).
    pub timed_out: u64,
    /// Abandoned calls still running: each holds a worker. A number that
    /// grows is a leak, for the watchdog.
    pub abandoned_running: u64,
    /// Calls refused because every worker was busy.
    pub rejected: u64,
}

/// How long an idle pool worker waits for work before it exits, by
/// default (60 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A bounded pool of helper threads for calls that cannot take a deadline.
///
/// At most `max_threads` calls run at once; a call that finds them all busy
/// is refused with [`Rejected::BulkheadFull`] instead of spawning more.
/// Workers start on demand and exit after `idle_timeout` without work.
/// Dropping the pool lets idle workers exit; a worker stuck in an abandoned
/// call exits when that call returns (it cannot be interrupted).
#[derive(Clone)]
pub struct TimeoutPool {
    inner: Arc<PoolInner>,
    _handles: Arc<ShutdownOnDrop>,
}

/// A call started with [`TimeoutPool::start`], not yet waited for.
/// Dropping it unwaited abandons the call (counted like a time-out).
pub struct Pending<T> {
    slot: Arc<Slot<T>>,
    inner: Arc<PoolInner>,
    collected: bool,
}

impl<T> Pending<T> {
    /// Waits for the result until `deadline`: `DeadlineExceeded` (and the
    /// call counted as abandoned) if it passes first. A panic in the call
    /// is re-raised here.
    pub fn wait(mut self, deadline: Deadline) -> Result<T, Rejected> {
        let until = deadline.instant();
        let mut s = self.slot.state.lock();
        loop {
            if let Some(r) = s.result.take() {
                drop(s);
                self.inner.completed.fetch_add(1, Relaxed);
                self.collected = true;
                return match r {
                    Ok(v) => Ok(v),
                    Err(panic) => resume_unwind(panic),
                };
            }
            match until {
                None => s = self.slot.done.wait(s),
                Some(at) => {
                    let (g, timed_out) = self.slot.done.wait_until(s, Some(at));
                    s = g;
                    if timed_out && s.result.is_none() {
                        // Dropping `self` below abandons the call.
                        drop(s);
                        return Err(Rejected::DeadlineExceeded);
                    }
                }
            }
        }
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        if self.collected {
            return;
        }
        let mut s = self.slot.state.lock();
        if s.result.is_none() {
            s.abandoned = true;
            self.inner.timed_out.fetch_add(1, Relaxed);
            self.inner.abandoned_running.fetch_add(1, Relaxed);
        } else {
            // Finished but never collected: it ran to completion.
            self.inner.completed.fetch_add(1, Relaxed);
        }
    }
}

impl<T> fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pending")
    }
}

struct Slot<T> {
    state: CoreMutex<SlotState<T>>,
    done: Condvar,
}

struct SlotState<T> {
    result: Option<Result<T, Box<dyn Any + Send>>>,
    abandoned: bool,
}

impl TimeoutPool {
    /// A pool of at most `max_threads` workers (`1 ..= 4096`) that exit
    /// after 60 s idle.
    pub fn new(max_threads: usize) -> Result<Self, ConfigError> {
        Self::with_idle_timeout(max_threads, DEFAULT_IDLE_TIMEOUT)
    }

    /// A pool whose idle workers exit after `idle_timeout` (> 0).
    pub fn with_idle_timeout(
        max_threads: usize,
        idle_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        if !(1..=4096).contains(&max_threads) {
            return Err(ConfigError::new(
                "max_threads",
                format!("must be 1 ..= 4096, got {max_threads}"),
            ));
        }
        if idle_timeout.is_zero() {
            return Err(ConfigError::new("idle_timeout", "must be > 0"));
        }
        let inner = Arc::new(PoolInner {
            queue: QuietMutex::new(Queue {
                jobs: VecDeque::new(),
                idle: Vec::new(),
                threads: 0,
                shutdown: false,
            }),
            max_threads,
            idle_timeout,
            busy: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            abandoned_running: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            fork_gen: AtomicU64::new(fork::generation()),
        });
        Ok(TimeoutPool {
            _handles: Arc::new(ShutdownOnDrop(Arc::clone(&inner))),
            inner,
        })
    }

    /// Runs `f` on a worker and waits for it until `deadline`.
    ///
    /// Returns `f`'s value; `DeadlineExceeded` if the deadline passes first
    /// (or had passed already, in which case `f` never runs); `BulkheadFull`
    /// if every worker is busy. A panic in `f` is re-raised in the caller.
    pub fn run<T, F>(&self, deadline: Deadline, f: F) -> Result<T, Rejected>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if deadline.is_expired() {
            return Err(Rejected::DeadlineExceeded);
        }
        self.start(f)?.wait(deadline)
    }

    /// Starts `f` on a worker without waiting: wait for its result with
    /// [`Pending::wait`]. Several calls started together run in parallel,
    /// each waited for against its own deadline. `BulkheadFull` if every
    /// worker is busy.
    pub fn start<T, F>(&self, f: F) -> Result<Pending<T>, Rejected>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let inner = &self.inner;
        inner.adopt_after_fork();
        let max = inner.max_threads as u64;
        // Claim a worker's worth of capacity first: the pool never queues
        // more calls than it has workers for.
        let claimed = inner
            .busy
            .fetch_update(Relaxed, Relaxed, |b| (b < max).then_some(b + 1))
            .is_ok();
        if !claimed {
            inner.rejected.fetch_add(1, Relaxed);
            return Err(Rejected::BulkheadFull);
        }
        let slot = Arc::new(Slot {
            state: CoreMutex::new(SlotState {
                result: None,
                abandoned: false,
            }),
            done: Condvar::new(),
        });
        let job_slot = Arc::clone(&slot);
        let job_inner = Arc::clone(inner);
        let job: Job = Box::new(move || {
            // A job runs inside its worker's quiet section; the call itself
            // is the user's code.
            let result = fork::aside(|| catch_unwind(AssertUnwindSafe(f)));
            // The capacity is free before the caller can see the result, so
            // a caller that got its answer can always make the next call.
            job_inner.busy.fetch_sub(1, Relaxed);
            let mut s = job_slot.state.lock();
            if s.abandoned {
                job_inner.abandoned_running.fetch_sub(1, Relaxed);
            } else {
                s.result = Some(result);
                job_slot.done.notify_one();
            }
        });
        self.submit(job);
        Ok(Pending {
            slot,
            inner: Arc::clone(inner),
            collected: false,
        })
    }

    fn submit(&self, job: Job) {
        let mut q = self.inner.queue.lock();
        q.jobs.push_back(job);
        if let Some(worker) = q.idle.pop() {
            drop(q);
            worker.unpark();
            return;
        }
        if q.threads < self.inner.max_threads {
            q.threads += 1;
            drop(q);
            let inner = Arc::clone(&self.inner);
            let spawned = crate::sync::spawn_own("failwell-timeout", move || worker(inner));
            if spawned.is_err() {
                // No thread to be had: the job waits for a running worker.
                self.inner.queue.lock().threads -= 1;
            }
        }
    }

    /// The counters.
    pub fn snapshot(&self) -> PoolSnapshot {
        let i = &self.inner;
        i.adopt_after_fork();
        PoolSnapshot {
            max_threads: i.max_threads as u64,
            threads: i.queue.lock().threads as u64,
            busy: i.busy.load(Relaxed),
            completed: i.completed.load(Relaxed),
            timed_out: i.timed_out.load(Relaxed),
            abandoned_running: i.abandoned_running.load(Relaxed),
            rejected: i.rejected.load(Relaxed),
        }
    }
}

/// A pool worker: inside a quiet section (see `fork`) but while it is
/// parked or runs a caller's function.
fn worker(inner: Arc<PoolInner>) {
    let _quiet = fork::quiet();
    work(inner);
}

fn work(inner: Arc<PoolInner>) {
    let me = current_thread();
    // It exits after `idle_timeout` without work.
    let mut last_work = Instant::now();
    loop {
        let job = {
            let mut q = inner.queue.lock();
            // Still listed when woken by its time-out or spuriously; a
            // caller that hands it work takes it off the list.
            if let Some(i) = q.idle.iter().position(|t| t.id() == me.id()) {
                q.idle.swap_remove(i);
            }
            match q.jobs.pop_front() {
                Some(job) => job,
                None if q.shutdown || last_work.elapsed() >= inner.idle_timeout => {
                    q.threads -= 1;
                    return;
                }
                None => {
                    q.idle.push(me.clone());
                    drop(q);
                    let left = inner.idle_timeout.saturating_sub(last_work.elapsed());
                    fork::aside(|| park_timeout(left));
                    continue;
                }
            }
        };
        job(); // catches the call's panic itself
        last_work = Instant::now();
    }
}

/// Shared by a pool's handles (not by its workers or jobs): when the last
/// handle goes, idle workers are told to exit.
struct ShutdownOnDrop(Arc<PoolInner>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let mut q = self.0.queue.lock();
        q.shutdown = true;
        for worker in q.idle.drain(..) {
            worker.unpark();
        }
    }
}

impl fmt::Debug for TimeoutPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutPool")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// The process-wide pool behind [`with_timeout`]: at most 64 workers.
pub fn default_pool() -> &'static TimeoutPool {
    static POOL: OnceLock<TimeoutPool> = OnceLock::new();
    POOL.get_or_init(|| TimeoutPool::new(64).expect("64 is a valid pool size"))
}

/// Runs `f` on the [`default_pool`] and waits for it until `deadline`; see
/// [`TimeoutPool::run`].
pub fn with_timeout<T, F>(deadline: Deadline, f: F) -> Result<T, Rejected>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    default_pool().run(deadline, f)
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
