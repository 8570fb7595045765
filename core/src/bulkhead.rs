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
    AtomicI64, AtomicU64, CachePadded, Condvar, CoreMutex,
    Ordering::{Acquire, Relaxed, Release},
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
            word: CachePadded::new(AtomicU64::new(word::BIAS + max as u64)),
            peak: CachePadded::new(AtomicI64::new(0)),
            rejected: CachePadded::new(AtomicU64::new(0)),
            max: AtomicI64::new(max),
            reserve: AtomicI64::new(self.reserve as i64),
            lock: CoreMutex::new(()),
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
    /// The permit word, see [`word`].
    word: CachePadded<AtomicU64>,
    peak: CachePadded<AtomicI64>,
    rejected: CachePadded<AtomicU64>,
    max: AtomicI64,
    reserve: AtomicI64,
    /// Held by a waiter from its registration until it sleeps, and by a
    /// waker while it notifies, so no wake-up is lost.
    lock: CoreMutex<()>,
    normal: Condvar,
    critical: Condvar,
}

/// The permit word: `[critical waiters:16 | normal waiters:16 | available:32]`.
///
/// `available` is `max_concurrent - in_use`, stored with a bias of 2^31 so
/// that it can go negative after a live shrink. Keeping the waiter counts in
/// the same word as the permits is what makes wake-ups reliable: a release's
/// one `fetch_add` both returns the permit and reads whether anyone waits,
/// and a waiter registers in the same compare-and-swap that finds no permit.
mod word {
    pub(super) const BIAS: u64 = 1 << 31;
    pub(super) const AVAILABLE: u64 = 0xFFFF_FFFF;
    pub(super) const NORMAL_WAITER: u64 = 1 << 32;
    pub(super) const CRITICAL_WAITER: u64 = 1 << 48;
    pub(super) const MAX_WAITERS: u64 = 0xFFFF;

    #[inline]
    pub(super) fn available(w: u64) -> i64 {
        (w & AVAILABLE) as i64 - BIAS as i64
    }

    pub(super) fn normal_waiters(w: u64) -> u64 {
        (w >> 32) & MAX_WAITERS
    }

    pub(super) fn critical_waiters(w: u64) -> u64 {
        w >> 48
    }
}

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

    /// The configuration in force, as a builder (for [`reconfigure`](Self::reconfigure)).
    fn current(&self) -> Builder {
        Builder::default()
            .max_concurrent(self.max.load(Relaxed) as u32)
            .critical_reserve(self.reserve.load(Relaxed) as u32)
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
    pub fn reconfigure(&self, change: impl FnOnce(Builder) -> Builder) -> Result<(), ConfigError> {
        let _g = self.lock.lock();
        let new = change(self.current());
        check(new.max_concurrent, new.reserve)?;
        let reserve = new.reserve as i64;
        let raise = reserve > self.reserve.load(Relaxed);
        if raise {
            self.set_reserve_locked(reserve);
        }
        self.set_max_locked(new.max_concurrent as i64);
        if !raise {
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
        let old = self.max.swap(max, Relaxed);
        let delta = max - old;
        // Release: like returning `delta` permits (see `release`). The
        // biased count stays within its 32 bits, so nothing borrows from the
        // waiter counts.
        self.word.fetch_add(delta as u64, Release);
        if delta > 0 {
            self.normal.notify_all();
            self.critical.notify_all();
        }
    }

    /// Under `lock`: a new reserve, validated.
    fn set_reserve_locked(&self, reserve: i64) {
        let old = self.reserve.swap(reserve, Relaxed);
        if reserve < old {
            self.normal.notify_all();
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let max = self.max.load(Relaxed);
        let w = self.word.load(Relaxed);
        let available = word::available(w);
        Snapshot {
            max_concurrent: max as u64,
            available: available.max(0) as u64,
            in_use: (max - available).max(0) as u64,
            waiting: word::normal_waiters(w) + word::critical_waiters(w),
            rejected: self.rejected.load(Relaxed),
            peak: self.peak.load(Relaxed) as u64,
        }
    }

    fn floor(&self, priority: Priority) -> i64 {
        match priority {
            Priority::Normal => self.reserve.load(Relaxed),
            Priority::Critical => 0,
        }
    }

    /// One CAS that takes a permit if more than the caller's floor is free.
    #[inline]
    fn take(&self, priority: Priority) -> bool {
        let floor = self.floor(priority);
        let mut cur = self.word.load(Relaxed);
        loop {
            if word::available(cur) <= floor {
                return false;
            }
            // Acquire: pairs with the Release `fetch_add` in `release`, so
            // what the previous holder did is visible to the next one.
            match self
                .word
                .compare_exchange_weak(cur, cur - 1, Acquire, Relaxed)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.note_in_use(word::available(cur) - 1);
        true
    }

    #[inline]
    fn note_in_use(&self, available: i64) {
        let in_use = self.max.load(Relaxed) - available;
        if in_use > self.peak.load(Relaxed) {
            self.peak.fetch_max(in_use, Relaxed);
        }
    }

    #[inline]
    fn release(&self) {
        // Release: pairs with the Acquire CAS in `take`. The same operation
        // reads the waiter counts, so a waiter registered before it is seen.
        let prev = self.word.fetch_add(1, Release);
        if prev >> 32 != 0 {
            self.wake(word::available(prev) + 1);
        }
    }

    #[cold]
    fn wake(&self, available: i64) {
        let _g = self.lock.lock();
        let w = self.word.load(Relaxed);
        if word::critical_waiters(w) != 0 {
            self.critical.notify_one();
        } else if word::normal_waiters(w) != 0 && available > self.reserve.load(Relaxed) {
            self.normal.notify_one();
        }
    }

    /// Under `lock`, in one compare-and-swap: takes a permit if one is free
    /// for `priority`, and adds `if_taken` or `if_not` (wrapping) to the
    /// waiter counts, so registering, leaving and taking never come apart.
    fn take_and_adjust(&self, priority: Priority, if_taken: u64, if_not: u64) -> bool {
        let floor = self.floor(priority);
        let mut cur = self.word.load(Relaxed);
        loop {
            let take = word::available(cur) > floor;
            let new = if take {
                (cur - 1).wrapping_add(if_taken)
            } else {
                cur.wrapping_add(if_not)
            };
            if new == cur {
                return false;
            }
            // Acquire: as in `take`.
            match self.word.compare_exchange_weak(cur, new, Acquire, Relaxed) {
                Ok(_) => {
                    if take {
                        self.note_in_use(word::available(cur) - 1);
                    }
                    return take;
                }
                Err(actual) => cur = actual,
            }
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
            Priority::Normal => (word::NORMAL_WAITER, &self.normal),
            Priority::Critical => (word::CRITICAL_WAITER, &self.critical),
        };
        let mut g = self.lock.lock();
        let full = (self.word.load(Relaxed) / unit) & word::MAX_WAITERS == word::MAX_WAITERS;
        // With 65535 threads of this priority already registered, wait
        // unregistered and poll every millisecond instead.
        let (registered, leave) = if full {
            (false, 0)
        } else {
            (true, unit.wrapping_neg())
        };
        if self.take_and_adjust(priority, 0, if registered { unit } else { 0 }) {
            return Ok(BulkheadPermit { bulkhead: self });
        }
        let got = loop {
            let (g2, timed_out) = match deadline {
                None if registered => (cv.wait(g), false),
                Some(d) if registered => cv.wait_until(g, Some(d)),
                _ => {
                    let poll = Instant::now() + Duration::from_millis(1);
                    let until = deadline.map_or(poll, |d| d.min(poll));
                    let (g2, _) = cv.wait_until(g, Some(until));
                    (g2, deadline.is_some_and(|d| Instant::now() >= d))
                }
            };
            g = g2;
            // Take a permit and leave the waiter count in one step; on time
            // out leave without one; otherwise stay registered and sleep.
            let if_not = if timed_out { leave } else { 0 };
            if self.take_and_adjust(priority, leave, if_not) {
                break true;
            }
            if timed_out {
                break false;
            }
        };
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

impl BulkheadPermit<'_> {
    /// Detaches the permit from its borrow: it stays taken until
    /// [`Bulkhead::release_detached`] returns it. For holders that cannot
    /// keep a borrowed guard (the C ABI); each detached permit must be
    /// returned exactly once.
    pub fn detach(self) {
        std::mem::forget(self);
    }
}

impl Bulkhead {
    /// Returns a permit detached with [`BulkheadPermit::detach`]. Calling it
    /// without one detached raises the number of permits above the limit.
    pub fn release_detached(&self) {
        self.release();
    }
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
        assert_eq!(
            b.set_max_concurrent(1).unwrap_err().field(),
            "critical_reserve"
        );
        assert_eq!(
            b.set_max_concurrent(0).unwrap_err().field(),
            "max_concurrent"
        );
    }

    #[test]
    fn a_refused_reconfiguration_changes_nothing() {
        let b = bulkhead(4, 2);
        let before = b.snapshot();
        for (max, reserve, field) in [
            (8, 8, "critical_reserve"),
            (0, 0, "max_concurrent"),
            (2, 2, "critical_reserve"),
            (MAX_CONCURRENT + 1, 0, "max_concurrent"),
        ] {
            let e = b
                .reconfigure(|c| c.max_concurrent(max).critical_reserve(reserve))
                .unwrap_err();
            assert_eq!(e.field(), field, "({max}, {reserve})");
            let now = b.snapshot();
            assert_eq!(
                (now.max_concurrent, now.available),
                (before.max_concurrent, before.available),
                "({max}, {reserve}) changed nothing"
            );
            let _normal = b.try_acquire().unwrap();
            let _normal2 = b.try_acquire().unwrap();
            assert!(b.try_acquire().is_err(), "the reserve of 2 still holds");
            let _critical = b.try_acquire_with(Priority::Critical).unwrap();
        }
        // Both at once, in either direction, through pairs that one at a
        // time would refuse.
        b.reconfigure(|c| c.max_concurrent(1).critical_reserve(0))
            .unwrap();
        assert_eq!(b.snapshot().max_concurrent, 1);
        b.reconfigure(|c| c.max_concurrent(10).critical_reserve(9))
            .unwrap();
        let _p = b.try_acquire().unwrap();
        assert!(b.try_acquire().is_err(), "9 of 10 are reserved");
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
            thread::spawn(move || {
                b.acquire_timeout_with(Priority::Critical, Duration::from_secs(30))
                    .is_ok()
            })
        };
        while b.snapshot().waiting < 2 {
            thread::yield_now();
        }
        drop(p2); // one permit free: only the reserve
        assert!(
            critical.join().unwrap(),
            "the critical waiter gets the reserve"
        );
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

    /// ≥ 2 threads, ≥ 10^6 operations: never more than the limit out, never
    /// more normal holders than the limit less the reserve (both checked
    /// with independent counters), and every permit comes back.
    #[test]
    fn stress_never_over_admits_and_loses_no_permit() {
        const THREADS: usize = 4;
        const OPS: usize = 300_000;
        let b = Arc::new(bulkhead(3, 1));
        let inside = Arc::new(AtomicUsize::new(0));
        let normal_inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (b, inside, normal_inside) = (b.clone(), inside.clone(), normal_inside.clone());
                thread::spawn(move || {
                    let mut admitted = 0usize;
                    for i in 0..OPS {
                        let prio = if (i + t) % 5 == 0 {
                            Priority::Critical
                        } else {
                            Priority::Normal
                        };
                        let permit = if i % 1000 == 0 {
                            b.acquire_timeout_with(prio, Duration::from_millis(1))
                        } else {
                            b.try_acquire_with(prio)
                        };
                        let Ok(_p) = permit else { continue };
                        admitted += 1;
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(n <= 3, "{n} permits out with a limit of 3");
                        if prio == Priority::Normal {
                            let m = normal_inside.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(m <= 2, "{m} normal holders with 1 of 3 reserved");
                            normal_inside.fetch_sub(1, Ordering::SeqCst);
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                    admitted
                })
            })
            .collect();
        let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let s = b.snapshot();
        assert_eq!(s.in_use, 0, "every permit came back");
        assert_eq!(s.available, 3);
        assert_eq!(s.waiting, 0);
        assert!(s.peak <= 3);
        assert_eq!(admitted as u64 + s.rejected, (THREADS * OPS) as u64);
    }
}
