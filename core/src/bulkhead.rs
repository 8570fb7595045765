//! The bulkhead: at most `max_concurrent` calls in flight, so one slow
//! dependency cannot take every thread. A reserve of permits can be kept for
//! critical callers (the source document's critical and non-critical pools
//! in one counter).
//!
//! The permit count is one atomic word: taking a permit is one
//! compare-and-swap, returning it one `fetch_add` and a load. Waiting callers
//! sleep on a condition variable (OS-thread waits with deadlines); a release
//! takes the waiters' lock only when someone waits.
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
use std::time::{Duration, Instant};

use crate::error::{ConfigError, Rejected};
use crate::sync::{
    AtomicI64, AtomicU64, CachePadded, Condvar, Mutex,
    Ordering::{Acquire, Relaxed, SeqCst},
};

/// Who is asking for a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// May not take the permits held in the critical reserve.
    #[default]
    Normal,
    /// May take any free permit, including the reserve.
    Critical,
}

/// Builds a [`Bulkhead`]. Defaults: `max_concurrent` 25 (resilience4j's
/// `maxConcurrentCalls`), no critical reserve.
#[derive(Debug, Clone)]
pub struct Builder {
    max_concurrent: u32,
    reserve: u32,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            max_concurrent: 25,
            reserve: 0,
        }
    }
}

/// Largest `max_concurrent` (the waiter counts are 32-bit).
pub const MAX_CONCURRENT: u32 = i32::MAX as u32;

impl Builder {
    /// How many permits may be out at once (`1 ..= 2^31 - 1`).
    pub fn max_concurrent(mut self, n: u32) -> Self {
        self.max_concurrent = n;
        self
    }

    /// How many of them only [`Priority::Critical`] callers may take
    /// (`0 ..< max_concurrent`).
    pub fn critical_reserve(mut self, k: u32) -> Self {
        self.reserve = k;
        self
    }

    /// Validates and builds the bulkhead.
    pub fn build(self) -> Result<Bulkhead, ConfigError> {
        check(self.max_concurrent, self.reserve)?;
        let max = self.max_concurrent as i64;
        Ok(Bulkhead {
            available: CachePadded::new(AtomicI64::new(max)),
            waiters: CachePadded::new(AtomicU64::new(0)),
            peak: CachePadded::new(AtomicI64::new(0)),
            rejected: CachePadded::new(AtomicU64::new(0)),
            max: AtomicI64::new(max),
            reserve: AtomicI64::new(self.reserve as i64),
            lock: Mutex::new(()),
            normal: Condvar::new(),
            critical: Condvar::new(),
        })
    }
}

fn check(max: u32, reserve: u32) -> Result<(), ConfigError> {
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

/// A concurrency limit. Thread-safe; share it by reference or in an `Arc`.
pub struct Bulkhead {
    /// `max_concurrent - in_use`; negative after a live shrink until enough
    /// permits come back.
    available: CachePadded<AtomicI64>,
    /// `[critical waiters:32 | normal waiters:32]`, changed under `lock`.
    waiters: CachePadded<AtomicU64>,
    peak: CachePadded<AtomicI64>,
    rejected: CachePadded<AtomicU64>,
    max: AtomicI64,
    reserve: AtomicI64,
    /// Serialises sleeping and waking, so no wake-up is lost.
    lock: Mutex<()>,
    normal: Condvar,
    critical: Condvar,
}

const NORMAL_WAITER: u64 = 1;
const CRITICAL_WAITER: u64 = 1 << 32;

impl Bulkhead {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Takes a permit if one is free for a normal caller; never blocks.
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, Rejected> {
        self.try_acquire_with(Priority::Normal)
    }

    /// Takes a permit if one is free for `priority`; never blocks.
    #[inline]
    pub fn try_acquire_with(&self, priority: Priority) -> Result<BulkheadPermit<'_>, Rejected> {
        if self.take(priority) {
            Ok(BulkheadPermit { bulkhead: self })
        } else {
            self.rejected.fetch_add(1, Relaxed);
            Err(Rejected::BulkheadFull)
        }
    }

    /// Waits at most `timeout` for a permit (normal priority).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<BulkheadPermit<'_>, Rejected> {
        self.acquire_timeout_with(Priority::Normal, timeout)
    }

    /// Waits at most `timeout` for a permit free for `priority`. Sleeps; does
    /// not spin.
    pub fn acquire_timeout_with(
        &self,
        priority: Priority,
        timeout: Duration,
    ) -> Result<BulkheadPermit<'_>, Rejected> {
        // A timeout too large to represent as an instant waits without bound.
        self.acquire_until(priority, Instant::now().checked_add(timeout))
    }

    /// Waits without bound for a permit free for `priority`.
    pub fn acquire(&self, priority: Priority) -> BulkheadPermit<'_> {
        match self.acquire_until(priority, None) {
            Ok(p) => p,
            Err(_) => unreachable!("an unbounded wait ends only with a permit"),
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

    /// Changes the limit on the live bulkhead. Permits already out stay out;
    /// after a shrink no new permit is given until enough come back.
    pub fn set_max_concurrent(&self, max: u32) -> Result<(), ConfigError> {
        let _g = self.lock.lock();
        check(max, self.reserve.load(Relaxed) as u32)?;
        let old = self.max.swap(max as i64, Relaxed);
        let delta = max as i64 - old;
        // SeqCst: like a release of `delta` permits (see `release`).
        self.available.fetch_add(delta, SeqCst);
        if delta > 0 {
            self.normal.notify_all();
            self.critical.notify_all();
        }
        Ok(())
    }

    /// Changes the critical reserve on the live bulkhead.
    pub fn set_critical_reserve(&self, reserve: u32) -> Result<(), ConfigError> {
        let _g = self.lock.lock();
        check(self.max.load(Relaxed) as u32, reserve)?;
        let old = self.reserve.swap(reserve as i64, Relaxed);
        if (reserve as i64) < old {
            self.normal.notify_all();
        }
        Ok(())
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let max = self.max.load(Relaxed);
        let available = self.available.load(Relaxed);
        let w = self.waiters.load(Relaxed);
        Snapshot {
            max_concurrent: max as u64,
            available: available.max(0) as u64,
            in_use: (max - available).max(0) as u64,
            waiting: (w >> 32) + (w & 0xFFFF_FFFF),
            rejected: self.rejected.load(Relaxed),
            peak: self.peak.load(Relaxed) as u64,
        }
    }

    /// One CAS that takes a permit if more than the caller's floor is free.
    #[inline]
    fn take(&self, priority: Priority) -> bool {
        let floor = match priority {
            Priority::Normal => self.reserve.load(Relaxed),
            Priority::Critical => 0,
        };
        let mut cur = self.available.load(Relaxed);
        loop {
            if cur <= floor {
                return false;
            }
            // Acquire: pairs with the Release (SeqCst) add in `release`, so
            // what the previous holder did is visible to the next one.
            match self
                .available
                .compare_exchange_weak(cur, cur - 1, Acquire, Relaxed)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        let in_use = self.max.load(Relaxed) - (cur - 1);
        if in_use > self.peak.load(Relaxed) {
            self.peak.fetch_max(in_use, Relaxed);
        }
        true
    }

    #[inline]
    fn release(&self) {
        // SeqCst: the release must be ordered before the waiter check below,
        // against a waiter's SeqCst registration before its own check (a
        // store-load pair that only SeqCst orders); it is also the Release
        // that pairs with the Acquire in `take`.
        let prev = self.available.fetch_add(1, SeqCst);
        if self.waiters.load(SeqCst) != 0 {
            self.wake(prev + 1);
        }
    }

    #[cold]
    fn wake(&self, available: i64) {
        let _g = self.lock.lock();
        let w = self.waiters.load(Relaxed);
        if w >> 32 != 0 {
            self.critical.notify_one();
        } else if w & 0xFFFF_FFFF != 0 && available > self.reserve.load(Relaxed) {
            self.normal.notify_one();
        }
    }

    #[cold]
    fn acquire_until(
        &self,
        priority: Priority,
        deadline: Option<Instant>,
    ) -> Result<BulkheadPermit<'_>, Rejected> {
        if self.take(priority) {
            return Ok(BulkheadPermit { bulkhead: self });
        }
        let (unit, cv) = match priority {
            Priority::Normal => (NORMAL_WAITER, &self.normal),
            Priority::Critical => (CRITICAL_WAITER, &self.critical),
        };
        let mut g = self.lock.lock();
        // SeqCst: pairs with the SeqCst pair in `release` (see there).
        self.waiters.fetch_add(unit, SeqCst);
        let got = loop {
            if self.take(priority) {
                break true;
            }
            match deadline {
                None => g = cv.wait(g),
                Some(d) => {
                    let (g2, timed_out) = cv.wait_until(g, d);
                    g = g2;
                    if timed_out {
                        break self.take(priority);
                    }
                }
            }
        };
        self.waiters.fetch_sub(unit, Relaxed);
        drop(g);
        if got {
            Ok(BulkheadPermit { bulkhead: self })
        } else {
            self.rejected.fetch_add(1, Relaxed);
            Err(Rejected::BulkheadFull)
        }
    }
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

/// A permit from a [`Bulkhead`]; given back exactly once when dropped
/// (also while unwinding from a panic).
#[must_use = "the permit is returned as soon as it is dropped"]
pub struct BulkheadPermit<'a> {
    bulkhead: &'a Bulkhead,
}

impl Drop for BulkheadPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.bulkhead.release();
    }
}

impl fmt::Debug for BulkheadPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BulkheadPermit")
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread;

    fn bulkhead(max: u32, reserve: u32) -> Bulkhead {
        Bulkhead::builder()
            .max_concurrent(max)
            .critical_reserve(reserve)
            .build()
            .unwrap()
    }

    #[test]
    fn admits_up_to_the_limit_then_rejects() {
        let b = bulkhead(2, 0);
        let p1 = b.try_acquire().unwrap();
        let _p2 = b.try_acquire().unwrap();
        assert_eq!(b.try_acquire().unwrap_err(), Rejected::BulkheadFull);
        drop(p1);
        let _p3 = b.try_acquire().unwrap();
        let s = b.snapshot();
        assert_eq!((s.in_use, s.available, s.rejected, s.peak), (2, 0, 1, 2));
    }

    #[test]
    fn reserve_is_for_critical_callers_only() {
        let b = bulkhead(3, 1);
        let _a = b.try_acquire().unwrap();
        let _b = b.try_acquire().unwrap();
        assert!(b.try_acquire().is_err(), "normal callers leave the reserve");
        let c = b.try_acquire_with(Priority::Critical).unwrap();
        assert!(b.try_acquire_with(Priority::Critical).is_err());
        drop(c);
        assert!(b.try_acquire_with(Priority::Critical).is_ok());
    }

    #[test]
    fn invalid_configuration_names_the_field() {
        let e = Bulkhead::builder().max_concurrent(0).build().unwrap_err();
        assert_eq!(e.field(), "max_concurrent");
        let e = Bulkhead::builder()
            .max_concurrent(2)
            .critical_reserve(2)
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "critical_reserve");
        let b = bulkhead(2, 1);
        assert_eq!(b.set_max_concurrent(1).unwrap_err().field(), "critical_reserve");
        assert_eq!(b.set_max_concurrent(0).unwrap_err().field(), "max_concurrent");
    }

    #[test]
    fn timed_acquire_gives_up_after_its_timeout() {
        let b = bulkhead(1, 0);
        let _p = b.try_acquire().unwrap();
        let t = Instant::now();
        let r = b.acquire_timeout(Duration::from_millis(30));
        assert_eq!(r.unwrap_err(), Rejected::BulkheadFull);
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert_eq!(b.snapshot().waiting, 0);
    }

    #[test]
    fn blocked_acquire_is_woken_by_a_release() {
        let b = Arc::new(bulkhead(1, 0));
        let p = b.try_acquire().unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let h = {
            let (b, got) = (b.clone(), got.clone());
            thread::spawn(move || {
                let _p = b.acquire(Priority::Normal);
                got.store(true, Ordering::SeqCst);
            })
        };
        while b.snapshot().waiting == 0 {
            thread::yield_now();
        }
        assert!(!got.load(Ordering::SeqCst));
        drop(p);
        h.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
        assert_eq!(b.snapshot().in_use, 0);
    }

    #[test]
    fn a_release_into_the_reserve_wakes_a_critical_waiter() {
        let b = Arc::new(bulkhead(2, 1));
        let p1 = b.try_acquire().unwrap();
        let p2 = b.try_acquire_with(Priority::Critical).unwrap();
        let normal = {
            let b = b.clone();
            thread::spawn(move || b.acquire_timeout(Duration::from_millis(300)).is_ok())
        };
        let critical = {
            let b = b.clone();
            thread::spawn(move || b.acquire_timeout_with(Priority::Critical, Duration::from_secs(30)).is_ok())
        };
        while b.snapshot().waiting < 2 {
            thread::yield_now();
        }
        drop(p2); // one permit free: only the reserve
        assert!(critical.join().unwrap(), "the critical waiter gets the reserve");
        assert!(!normal.join().unwrap(), "the normal waiter may not");
        drop(p1);
    }

    #[test]
    fn growing_the_limit_wakes_waiters() {
        let b = Arc::new(bulkhead(1, 0));
        let _p = b.try_acquire().unwrap();
        let h = {
            let b = b.clone();
            thread::spawn(move || b.acquire_timeout(Duration::from_secs(30)).is_ok())
        };
        while b.snapshot().waiting == 0 {
            thread::yield_now();
        }
        b.set_max_concurrent(2).unwrap();
        assert!(h.join().unwrap());
    }

    #[test]
    fn shrinking_the_limit_holds_new_permits_until_enough_return() {
        let b = bulkhead(3, 0);
        let p: Vec<_> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
        b.set_max_concurrent(1).unwrap();
        let mut p = p.into_iter();
        drop(p.next());
        assert!(b.try_acquire().is_err());
        drop(p.next());
        assert!(b.try_acquire().is_err());
        drop(p.next());
        let _q = b.try_acquire().unwrap();
        assert_eq!(b.snapshot().in_use, 1);
    }

    #[test]
    fn a_panic_inside_call_returns_the_permit() {
        let b = bulkhead(1, 0);
        let r = std::panic::catch_unwind(AssertUnwindSafeWrap(&b).call());
        assert!(r.is_err());
        assert_eq!(b.snapshot().in_use, 0);
        assert_eq!(b.call(|| 7).unwrap(), 7);
    }

    struct AssertUnwindSafeWrap<'a>(&'a Bulkhead);
    impl<'a> AssertUnwindSafeWrap<'a> {
        fn call(self) -> impl FnOnce() + std::panic::UnwindSafe + 'a {
            let b = std::panic::AssertUnwindSafe(self.0);
            move || {
                let _ = b.call(|| panic!("boom"));
            }
        }
    }

    /// ≥ 2 threads, ≥ 10^6 operations: never more than the limit out (checked
    /// with an independent counter), and every permit comes back.
    #[test]
    fn stress_never_over_admits_and_loses_no_permit() {
        const THREADS: usize = 4;
        const OPS: usize = 300_000;
        let b = Arc::new(bulkhead(3, 1));
        let inside = Arc::new(AtomicUsize::new(0));
        let critical_inside = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (b, inside, max_seen, crit) = (
                    b.clone(),
                    inside.clone(),
                    max_seen.clone(),
                    critical_inside.clone(),
                );
                thread::spawn(move || {
                    let mut admitted = 0usize;
                    for i in 0..OPS {
                        let prio = if (i + t) % 5 == 0 { Priority::Critical } else { Priority::Normal };
                        let permit = if i % 1000 == 0 {
                            b.acquire_timeout_with(prio, Duration::from_millis(1))
                        } else {
                            b.try_acquire_with(prio)
                        };
                        if let Ok(_p) = permit {
                            admitted += 1;
                            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            max_seen.fetch_max(n, Ordering::SeqCst);
                            if prio == Priority::Normal {
                                // Normal callers never hold more than max - reserve.
                                let normal = n - crit.load(Ordering::SeqCst).min(n);
                                assert!(normal <= 3);
                            } else {
                                crit.fetch_add(1, Ordering::SeqCst);
                                crit.fetch_sub(1, Ordering::SeqCst);
                            }
                            assert!(n <= 3, "{n} permits out with a limit of 3");
                            inside.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    admitted
                })
            })
            .collect();
        let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let s = b.snapshot();
        assert!(max_seen.load(Ordering::SeqCst) <= 3);
        assert_eq!(s.in_use, 0, "every permit came back");
        assert_eq!(s.available, 3);
        assert_eq!(s.waiting, 0);
        assert_eq!(admitted as u64 + s.rejected, (THREADS * OPS) as u64);
    }
}
