//! The bulkhead: at most `max_concurrent` calls in flight, so one slow
//! dependency cannot take every thread. A reserve of permits can be kept for
//! critical callers: a critical and a non-critical pool in one counter.
//!
//! The permit count is one atomic word: taking a permit is one
//! compare-and-swap, returning it one `fetch_add` and a load. Waiting callers
//! sleep on a condition variable (OS-thread waits with deadlines, measured on
//! the bulkhead's [`Clock`]); a release takes the waiters' lock only when
//! someone waits.
//!
//! Inside, the bulkhead is three things: its rule (`rule.rs`, pure functions
//! of the permit word), its state (`state.rs`, a pointer-free block of
//! atomic words) and this handle, which applies the rule to the state.
//!
//! ```
//! use std::time::Duration;
//! use failwell::bulkhead::{Bulkhead, Priority};
//!
//! let db = Bulkhead::builder().max_concurrent(10).critical_reserve(2).build()?;
//! let permit = db.try_acquire().expect("free");           // normal caller
//! let urgent = db.acquire_timeout_with(Priority::Critical, Duration::from_millis(50));
//! assert!(urgent.is_ok());
//! drop(permit); // returned here, also on panic
//! # Ok::<(), failwell::ConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::clock::{nanos, Clock, MonotonicClock};
use crate::error::{ConfigError, Rejected};
use crate::sync::{
    Condvar, CoreMutex, CoreMutexGuard,
    Ordering::{Acquire, Relaxed, Release},
};

mod permit;
mod rule;
#[cfg(all(unix, not(failwell_loom)))]
pub(crate) mod shared;
pub(crate) mod state;
pub(crate) mod tagged;

pub use permit::{BulkheadPermit, OwnedBulkheadPermit};
pub use tagged::MAX_SHARED;

use crate::words::Placed;
use state::{word, BulkheadState};

/// Who is asking for a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// May not take the permits held in the critical reserve.
    #[default]
    Normal,
    /// May take any free permit, including the reserve.
    Critical,
}

/// Largest `max_concurrent` (the waiter counts are 32-bit).
pub const MAX_CONCURRENT: u32 = i32::MAX as u32;

/// A bulkhead's settings, as plain values. [`Config::default`] holds the
/// documented defaults, the one source every binding reads them from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How many permits may be out at once (`1 ..= 2^31 - 1`); default 25
    /// (resilience4j's `maxConcurrentCalls`).
    pub max_concurrent: u32,
    /// How many of them only [`Priority::Critical`] callers may take
    /// (`0 ..< max_concurrent`); default 0.
    pub critical_reserve: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_concurrent: 25,
            critical_reserve: 0,
        }
    }
}

impl Config {
    /// Checks the settings as [`Builder::build`] does.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (max, reserve) = (self.max_concurrent, self.critical_reserve);
        if max == 0 || max > MAX_CONCURRENT {
            return Err(ConfigError::new(
                "max_concurrent",
                format!("must be 1 ..= {MAX_CONCURRENT}, got {max}"),
            ));
        }
        if reserve >= max {
            return Err(ConfigError::new(
                "critical_reserve",
                format!("must be less than max_concurrent ({max}), got {reserve}"),
            ));
        }
        Ok(())
    }
}

/// Builds a [`Bulkhead`]. Defaults are [`Config::default`]'s and the
/// system's monotonic clock.
#[derive(Debug, Clone)]
pub struct Builder<C: Clock = MonotonicClock> {
    config: Config,
    clock: C,
}

impl Default for Builder<MonotonicClock> {
    fn default() -> Self {
        Builder::with_clock(MonotonicClock)
    }
}

impl Builder<MonotonicClock> {
    /// A builder holding `config`'s settings.
    pub fn from_config(config: Config) -> Self {
        Builder {
            config,
            clock: MonotonicClock,
        }
    }
}

impl<C: Clock> Builder<C> {
    /// A builder with the defaults, timing waits on `clock`.
    pub fn with_clock(clock: C) -> Self {
        Builder {
            config: Config::default(),
            clock,
        }
    }

    /// Times waits on `clock` instead (tests use a
    /// [`ManualClock`](crate::clock::ManualClock), so that a timed wait
    /// ends when the test moves the clock, not after a real sleep).
    pub fn clock<D: Clock>(self, clock: D) -> Builder<D> {
        Builder {
            config: self.config,
            clock,
        }
    }

    /// How many permits may be out at once (`1 ..= 2^31 - 1`).
    pub fn max_concurrent(mut self, n: u32) -> Self {
        self.config.max_concurrent = n;
        self
    }

    /// How many of them only [`Priority::Critical`] callers may take
    /// (`0 ..< max_concurrent`).
    pub fn critical_reserve(mut self, k: u32) -> Self {
        self.config.critical_reserve = k;
        self
    }

    /// The settings so far, unvalidated.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Validates and builds the bulkhead.
    pub fn build(self) -> Result<Bulkhead<C>, ConfigError> {
        self.config.validate()?;
        Ok(Bulkhead {
            state: Placed::heap(BulkheadState::new(
                self.config.max_concurrent,
                self.config.critical_reserve,
            )),
            #[cfg(all(unix, not(failwell_loom)))]
            shared: None,
            lock: CoreMutex::new(()),
            normal: Condvar::new(),
            critical: Condvar::new(),
            clock: self.clock,
        })
    }
}

/// A plain copy of a bulkhead's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The configured limit.
    pub max_concurrent: u64,
    /// Permits free now (for critical callers; normal callers see
    /// `available - critical_reserve`).
    pub available: u64,
    /// Permits out now.
    pub in_use: u64,
    /// Callers blocked waiting for a permit.
    pub waiting: u64,
    /// Calls refused (no permit free, or none within the wait allowed).
    pub rejected: u64,
    /// The most permits ever out at once.
    pub peak: u64,
}

/// How often a waiter that could not register (65535 of its priority
/// already wait) looks for a permit.
const UNREGISTERED_POLL: Duration = Duration::from_millis(1);

/// A concurrency limit. Thread-safe; share it by reference or in an `Arc`.
pub struct Bulkhead<C: Clock = MonotonicClock> {
    state: Placed<BulkheadState>,
    /// In a host region: the ledger, wake word and thread table (the
    /// permit word in `state` is then the tagged one).
    #[cfg(all(unix, not(failwell_loom)))]
    shared: Option<Box<shared::Shared>>,
    /// Held by a waiter from its registration until it sleeps, and by a
    /// waker while it notifies, so no wake-up is lost.
    lock: CoreMutex<()>,
    normal: Condvar,
    critical: Condvar,
    clock: C,
}

impl Bulkhead<MonotonicClock> {
    /// A builder with the defaults.
    pub fn builder() -> Builder<MonotonicClock> {
        Builder::default()
    }

    /// A bulkhead on a host region's block (see
    /// [`Region::bulkhead`](crate::region::Region::bulkhead)).
    #[cfg(all(unix, not(failwell_loom)))]
    pub(crate) fn from_parts(state: Placed<BulkheadState>, shared: shared::Shared) -> Self {
        Bulkhead {
            state,
            shared: Some(Box::new(shared)),
            lock: CoreMutex::new(()),
            normal: Condvar::new(),
            critical: Condvar::new(),
            clock: MonotonicClock,
        }
    }
}

impl<C: Clock> Bulkhead<C> {
    /// Takes a permit if one is free for a normal caller; never blocks.
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_, C>, Rejected> {
        self.try_acquire_with(Priority::Normal)
    }

    /// Takes a permit if one is free for `priority`; never blocks.
    #[inline]
    pub fn try_acquire_with(&self, priority: Priority) -> Result<BulkheadPermit<'_, C>, Rejected> {
        if self.take(priority) {
            Ok(BulkheadPermit {
                bulkhead: self,
                born: self.born(),
            })
        } else {
            Err(self.reject())
        }
    }

    /// Waits at most `timeout` for a permit (normal priority).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<BulkheadPermit<'_, C>, Rejected> {
        self.acquire_timeout_with(Priority::Normal, timeout)
    }

    /// Waits at most `timeout`, on the bulkhead's clock, for a permit free
    /// for `priority`. Sleeps; does not spin. A timeout that ends beyond the
    /// clock's `u64` range (`Duration::MAX`) waits without bound.
    pub fn acquire_timeout_with(
        &self,
        priority: Priority,
        timeout: Duration,
    ) -> Result<BulkheadPermit<'_, C>, Rejected> {
        let deadline = self.clock.now().checked_add(nanos(timeout));
        if self.acquire_until(priority, deadline) {
            Ok(BulkheadPermit {
                bulkhead: self,
                born: self.born(),
            })
        } else {
            Err(self.reject())
        }
    }

    /// Waits without bound for a permit free for `priority`.
    pub fn acquire(&self, priority: Priority) -> BulkheadPermit<'_, C> {
        let got = self.acquire_until(priority, None);
        debug_assert!(got, "an unbounded wait ends only with a permit");
        BulkheadPermit {
            bulkhead: self,
            born: self.born(),
        }
    }

    /// Runs `f` holding a normal permit, or refuses if none is free now.
    /// The permit is returned when `f` returns or panics.
    pub fn call<R>(&self, f: impl FnOnce() -> R) -> Result<R, Rejected> {
        let _permit = self.try_acquire()?;
        Ok(f())
    }

    /// Runs `f` holding a permit for `priority`, waiting at most `timeout`.
    pub fn call_timeout<R>(
        &self,
        priority: Priority,
        timeout: Duration,
        f: impl FnOnce() -> R,
    ) -> Result<R, Rejected> {
        let _permit = self.acquire_timeout_with(priority, timeout)?;
        Ok(f())
    }

    /// The settings in force.
    pub fn config(&self) -> Config {
        Config {
            max_concurrent: self.state.max.load(Relaxed) as u32,
            critical_reserve: self.state.reserve.load(Relaxed) as u32,
        }
    }

    /// The bulkhead's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Changes limit and reserve of the live bulkhead together, all or
    /// nothing: `change` gets a builder holding the settings in force and
    /// returns it changed, e.g. `b.reconfigure(|c|
    /// c.max_concurrent(8).critical_reserve(2))`; the result is validated
    /// as at build, and on any error nothing changes. Permits already out
    /// stay out; after a shrink no new permit is given until enough come
    /// back. A call racing the change may see the new limit with the old
    /// reserve for one decision (the reserve is raised before the limit
    /// grows, so normal callers never take permits meant for it).
    pub fn reconfigure(
        &self,
        change: impl FnOnce(Builder<MonotonicClock>) -> Builder<MonotonicClock>,
    ) -> Result<(), ConfigError> {
        #[cfg(all(unix, not(failwell_loom)))]
        if self.shared.is_some() {
            return Err(ConfigError::new(
                "reconfigure",
                "a bulkhead in a host region keeps the configuration it was created with",
            ));
        }
        let _g = self.lock.lock();
        let new = change(Builder::from_config(self.config())).config();
        new.validate()?;
        let reserve = new.critical_reserve as i64;
        let first = rule::reserve_first(self.state.reserve.load(Relaxed), reserve);
        if first {
            self.set_reserve_locked(reserve);
        }
        self.set_max_locked(new.max_concurrent as i64);
        if !first {
            self.set_reserve_locked(reserve);
        }
        Ok(())
    }

    /// Changes the limit on the live bulkhead; the same as
    /// `reconfigure(|c| c.max_concurrent(max))`.
    pub fn set_max_concurrent(&self, max: u32) -> Result<(), ConfigError> {
        self.reconfigure(|c| c.max_concurrent(max))
    }

    /// Changes the critical reserve on the live bulkhead; the same as
    /// `reconfigure(|c| c.critical_reserve(reserve))`.
    pub fn set_critical_reserve(&self, reserve: u32) -> Result<(), ConfigError> {
        self.reconfigure(|c| c.critical_reserve(reserve))
    }

    /// Under `lock`: a new limit, validated.
    fn set_max_locked(&self, max: i64) {
        let old = self.state.max.swap(max, Relaxed);
        let delta = max - old;
        // Release: like returning `delta` permits (see `release`). The
        // biased count stays within its 32 bits, so nothing borrows from the
        // waiter counts.
        self.state.word.fetch_add(delta as u64, Release);
        if delta > 0 {
            self.normal.notify_all();
            self.critical.notify_all();
        }
    }

    /// Under `lock`: a new reserve, validated.
    fn set_reserve_locked(&self, reserve: i64) {
        let old = self.state.reserve.swap(reserve, Relaxed);
        if reserve < old {
            self.normal.notify_all();
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let max = self.state.max.load(Relaxed);
        let w = self.state.word.load(Relaxed);
        let (available, waiting) = self.available_and_waiting(w);
        Snapshot {
            max_concurrent: max as u64,
            available: available.max(0) as u64,
            in_use: rule::in_use(max, available).max(0) as u64,
            waiting,
            rejected: self.state.rejected.load(Relaxed),
            peak: self.state.peak.load(Relaxed) as u64,
        }
    }

    /// Permits available in permit word `w`, and callers waiting (in a
    /// host region: this process's).
    fn available_and_waiting(&self, w: u64) -> (i64, u64) {
        #[cfg(all(unix, not(failwell_loom)))]
        if let Some(s) = &self.shared {
            return (tagged::available(w), s.waiting());
        }
        (
            word::available(w),
            word::normal_waiters(w) + word::critical_waiters(w),
        )
    }

    /// The fork generation a permit taken now belongs to (0 in process:
    /// a child's copy of an in-process bulkhead is its own).
    #[inline]
    fn born(&self) -> u64 {
        #[cfg(all(unix, not(failwell_loom)))]
        if self.shared.is_some() {
            // A shared bulkhead's region was mapped: the handlers are
            // registered.
            return crate::fork::generation_known();
        }
        0
    }

    /// Gives back a permit taken in fork generation `born`: a permit a
    /// child of `fork()` inherited is its parent's, who gives it back, so
    /// in a host region the child's copy returns nothing.
    #[inline]
    fn release_born(&self, born: u64) {
        #[cfg(all(unix, not(failwell_loom)))]
        if self.shared.is_some() && born != crate::fork::generation_known() {
            return;
        }
        let _ = born;
        self.release();
    }

    fn floor(&self, priority: Priority) -> i64 {
        rule::floor(priority, self.state.reserve.load(Relaxed))
    }

    fn reject(&self) -> Rejected {
        self.state.rejected.fetch_add(1, Relaxed);
        Rejected::BulkheadFull
    }

    /// Applies `step` to the permit word in one compare-and-swap loop (the
    /// handle's only one); returns the word before the step that was
    /// applied, or `None` if `step` declined.
    #[inline(always)]
    fn update(&self, step: impl FnMut(u64) -> Option<u64>) -> Option<u64> {
        // Acquire: pairs with the Release `fetch_add` in `release`, so what
        // the previous holder of a permit did is visible to the next one.
        self.state.word.fetch_update(Acquire, Relaxed, step).ok()
    }

    /// Takes a permit if more than the caller's floor is free.
    #[inline]
    fn take(&self, priority: Priority) -> bool {
        let floor = self.floor(priority);
        #[cfg(all(unix, not(failwell_loom)))]
        if let Some(s) = &self.shared {
            return match s.take(&self.state, floor) {
                Some(before) => {
                    self.note_in_use(before - 1);
                    true
                }
                None => false,
            };
        }
        match self.update(|w| rule::take(w, floor)) {
            Some(before) => {
                self.note_in_use(word::available(before) - 1);
                true
            }
            None => false,
        }
    }

    #[inline]
    fn note_in_use(&self, available: i64) {
        let in_use = rule::in_use(self.state.max.load(Relaxed), available);
        if in_use > self.state.peak.load(Relaxed) {
            self.state.peak.fetch_max(in_use, Relaxed);
        }
    }

    #[inline]
    fn release(&self) {
        #[cfg(all(unix, not(failwell_loom)))]
        if let Some(s) = &self.shared {
            return s.release(&self.state);
        }
        // Release: pairs with the Acquire CAS in `update`. The same operation
        // reads the waiter counts, so a waiter registered before it is seen.
        let prev = self.state.word.fetch_add(1, Release);
        if word::has_waiters(prev) {
            self.wake(word::available(prev) + 1);
        }
    }

    #[cold]
    fn wake(&self, available: i64) {
        let _g = self.lock.lock();
        let waiters = self.state.word.load(Relaxed);
        match rule::whom_to_wake(waiters, available, self.state.reserve.load(Relaxed)) {
            Some(Priority::Critical) => self.critical.notify_one(),
            Some(Priority::Normal) => self.normal.notify_one(),
            None => {}
        }
    }

    /// Under `lock`, in one compare-and-swap: takes a permit if one is free
    /// for `priority`, and adds `if_taken` or `if_not` (wrapping) to the
    /// waiter counts, so registering, leaving and taking never come apart.
    fn take_and_adjust(&self, priority: Priority, if_taken: u64, if_not: u64) -> bool {
        let floor = self.floor(priority);
        let mut taken = false;
        let before = self.update(|w| {
            let (new, t) = rule::take_and_adjust(w, floor, if_taken, if_not)?;
            taken = t;
            Some(new)
        });
        match before {
            Some(w) if taken => {
                self.note_in_use(word::available(w) - 1);
                true
            }
            _ => false,
        }
    }

    /// Sleeps on `cv` until woken or, with a deadline on the clock, until
    /// it passes; an unregistered waiter wakes itself every
    /// [`UNREGISTERED_POLL`]. Returns the guard and whether the deadline
    /// passed.
    fn sleep<'g>(
        &self,
        cv: &Condvar,
        g: CoreMutexGuard<'g, ()>,
        deadline: Option<u64>,
        registered: bool,
    ) -> (CoreMutexGuard<'g, ()>, bool) {
        if registered && deadline.is_none() {
            return (cv.wait(g), false);
        }
        let now = self.clock.now();
        let left = deadline.map_or(u64::MAX, |d| d.saturating_sub(now));
        if left == 0 {
            return (g, true);
        }
        let mut slice = self.clock.wait_slice(left);
        if !registered {
            slice = slice.min(UNREGISTERED_POLL);
        }
        let g = cv.wait_for(g, slice);
        (g, deadline.is_some_and(|d| self.clock.now() >= d))
    }

    /// Waits for a permit until `deadline` on the clock (`None`: without
    /// bound); returns whether one was taken.
    #[cold]
    fn acquire_until(&self, priority: Priority, deadline: Option<u64>) -> bool {
        #[cfg(all(unix, not(failwell_loom)))]
        if let Some(s) = &self.shared {
            let got = s.acquire_until(&self.state, self.floor(priority), deadline, &self.clock);
            if let Some(before) = got {
                self.note_in_use(before - 1);
            }
            return got.is_some();
        }
        if self.take(priority) {
            return true;
        }
        let (unit, cv) = match priority {
            Priority::Normal => (word::NORMAL_WAITER, &self.normal),
            Priority::Critical => (word::CRITICAL_WAITER, &self.critical),
        };
        let mut g = self.lock.lock();
        let full = (self.state.word.load(Relaxed) / unit) & word::MAX_WAITERS == word::MAX_WAITERS;
        // With 65535 threads of this priority already registered, wait
        // unregistered and poll instead.
        let (registered, leave) = if full {
            (false, 0)
        } else {
            (true, unit.wrapping_neg())
        };
        if self.take_and_adjust(priority, 0, if registered { unit } else { 0 }) {
            return true;
        }
        loop {
            let (g2, timed_out) = self.sleep(cv, g, deadline, registered);
            g = g2;
            // Take a permit and leave the waiter count in one step; on time
            // out leave without one; otherwise stay registered and sleep.
            let if_not = if timed_out { leave } else { 0 };
            if self.take_and_adjust(priority, leave, if_not) {
                return true;
            }
            if timed_out {
                return false;
            }
        }
    }
}

impl<C: Clock> fmt::Debug for Bulkhead<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
