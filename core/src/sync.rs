//! Locks for users, and (privately) the one place in failwell that names
//! atomics, locks and the wait/wake mechanism.
//!
//! **For users**: [`Mutex`] and [`RwLock`] are parking_lot's, re-exported so
//! that locks taken through them are visible to the watchdog's deadlock
//! detection (with the `deadlock-detection` feature). [`lock_both`] and
//! [`lock_all`] lock several mutexes in one global order, so that two
//! threads locking the same pair in opposite argument order cannot deadlock
//! (the source document's `transfer(from, to)`):
//!
//! ```
//! use failwell::sync::{lock_both, Mutex};
//!
//! struct Account { balance: Mutex<i64> }
//!
//! fn transfer(from: &Account, to: &Account, amount: i64) {
//!     // Same order whichever account is `from`.
//!     let (mut f, mut t) = lock_both(&from.balance, &to.balance).expect("two different accounts");
//!     *f -= amount;
//!     *t += amount;
//! }
//! # let (a, b) = (Account { balance: Mutex::new(10) }, Account { balance: Mutex::new(0) });
//! # transfer(&a, &b, 4);
//! # assert_eq!((*a.balance.lock(), *b.balance.lock()), (6, 4));
//! ```
//!
//! **Inside failwell**:
//! Every other module imports these names from here, never from `std` or
//! `loom` directly. Built with `RUSTFLAGS="--cfg failwell_loom"`, the same
//! code runs against loom's types and is model-checked unchanged (tokio's
//! pattern). The cfg name is our own, so a user's `--cfg loom` cannot change
//! how failwell builds.
//!
//! Waiting: blocking waits are built from a [`CoreMutex`] and a [`Condvar`]
//! (parking_lot's, which park on a futex-like primitive and support
//! deadlines; loom's under the model). A waiter re-checks its condition under
//! the mutex before sleeping and a waker notifies under the same mutex, so no
//! wake-up is lost. Loom models no time, so under loom a timed wait behaves
//! like an untimed one; the models only use untimed waits.

pub(crate) use crossbeam_utils::CachePadded;

pub use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The same mutex was passed twice to [`lock_both`] or [`lock_all`]: locking
/// it twice would deadlock the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SameMutexTwice {
    /// The positions (0-based) of the two arguments naming the same mutex.
    pub positions: (usize, usize),
}

impl std::fmt::Display for SameMutexTwice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "arguments {} and {} are the same mutex; locking it twice would deadlock",
            self.positions.0, self.positions.1
        )
    }
}

impl std::error::Error for SameMutexTwice {}

/// Locks `a` and `b` in one global order (by address) and returns their
/// guards in argument order. Two threads calling `lock_both(x, y)` and
/// `lock_both(y, x)` cannot deadlock each other.
pub fn lock_both<'a, A, B>(
    a: &'a Mutex<A>,
    b: &'a Mutex<B>,
) -> Result<(MutexGuard<'a, A>, MutexGuard<'a, B>), SameMutexTwice> {
    let (pa, pb) = (a as *const _ as usize, b as *const _ as usize);
    if pa == pb {
        return Err(SameMutexTwice { positions: (0, 1) });
    }
    Ok(if pa < pb {
        let ga = a.lock();
        (ga, b.lock())
    } else {
        let gb = b.lock();
        (a.lock(), gb)
    })
}

/// Locks every mutex in `mutexes` in one global order (by address) and
/// returns the guards in argument order.
pub fn lock_all<'a, T>(mutexes: &[&'a Mutex<T>]) -> Result<Vec<MutexGuard<'a, T>>, SameMutexTwice> {
    let mut order: Vec<usize> = (0..mutexes.len()).collect();
    order.sort_by_key(|&i| mutexes[i] as *const _ as usize);
    for w in order.windows(2) {
        if std::ptr::eq(mutexes[w[0]], mutexes[w[1]]) {
            return Err(SameMutexTwice {
                positions: (w[0].min(w[1]), w[0].max(w[1])),
            });
        }
    }
    let mut guards: Vec<Option<MutexGuard<'a, T>>> = (0..mutexes.len()).map(|_| None).collect();
    for i in order {
        guards[i] = Some(mutexes[i].lock());
    }
    Ok(guards.into_iter().flatten().collect())
}

#[cfg(not(failwell_loom))]
mod imp {
    pub(crate) use std::sync::atomic::{fence, AtomicI64, AtomicU64, Ordering};
    pub(crate) use std::sync::Arc;

    use std::sync::{PoisonError, TryLockError};
    use std::time::Instant;

    // std's locks, not parking_lot's: they keep all their state in the lock
    // itself (a futex word on Linux), while parking_lot parks every waiter
    // in one process-wide table whose bucket locks a forking thread can
    // leave held for the child — which then hangs on an unrelated lock.
    // A panic while one is held (none of failwell's critical sections runs
    // user code) never poisons the primitive: the data stays usable.

    /// A mutual-exclusion lock for cold paths (transitions, waiter queues).
    #[derive(Debug, Default)]
    pub(crate) struct CoreMutex<T>(std::sync::Mutex<T>);

    pub(crate) type CoreMutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;

    impl<T> CoreMutex<T> {
        pub(crate) fn new(value: T) -> Self {
            CoreMutex(std::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> CoreMutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// The lock if it is free now, without waiting.
        pub(crate) fn try_lock(&self) -> Option<CoreMutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        }
    }

    /// A reader-writer lock for cold paths (listener lists).
    #[derive(Debug, Default)]
    pub(crate) struct CoreRwLock<T>(std::sync::RwLock<T>);

    impl<T> CoreRwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            CoreRwLock(std::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(PoisonError::into_inner)
        }

        pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(PoisonError::into_inner)
        }
    }

    /// A condition variable paired with [`CoreMutex`].
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(std::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(std::sync::Condvar::new())
        }

        /// Sleeps until notified (or spuriously woken).
        pub(crate) fn wait<'a, T>(&self, guard: CoreMutexGuard<'a, T>) -> CoreMutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
        }

        /// Sleeps until notified, spuriously woken, or `deadline` passes
        /// (`None`: a deadline too far to represent as an instant, which
        /// never passes). Returns the guard and whether the deadline passed.
        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: CoreMutexGuard<'a, T>,
            deadline: Option<Instant>,
        ) -> (CoreMutexGuard<'a, T>, bool) {
            let Some(deadline) = deadline else {
                return (self.wait(guard), false);
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (guard, true);
            }
            let (guard, _) = self
                .0
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner);
            (guard, Instant::now() >= deadline)
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(failwell_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{fence, AtomicI64, AtomicU64, Ordering};
    pub(crate) use loom::sync::Arc;

    /// loom's mutex behind the same interface as the real one.
    #[derive(Debug)]
    pub(crate) struct CoreMutex<T>(loom::sync::Mutex<T>);

    pub(crate) type CoreMutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> CoreMutex<T> {
        pub(crate) fn new(value: T) -> Self {
            CoreMutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> CoreMutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn try_lock(&self) -> Option<CoreMutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    impl<T: Default> Default for CoreMutex<T> {
        fn default() -> Self {
            CoreMutex::new(T::default())
        }
    }

    /// loom's reader-writer lock behind the same interface as the real one.
    #[derive(Debug)]
    pub(crate) struct CoreRwLock<T>(loom::sync::RwLock<T>);

    impl<T> CoreRwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            CoreRwLock(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T: Default> Default for CoreRwLock<T> {
        fn default() -> Self {
            CoreRwLock::new(T::default())
        }
    }

    /// loom's condition variable; timed waits are untimed (loom has no time).
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<'a, T>(&self, guard: CoreMutexGuard<'a, T>) -> CoreMutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: CoreMutexGuard<'a, T>,
            _deadline: Option<std::time::Instant>,
        ) -> (CoreMutexGuard<'a, T>, bool) {
            (self.wait(guard), false)
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

pub(crate) use imp::*;

/// failwell's own helper threads alive now (std's atomic: a process-wide
/// count, never part of a model).
static OWN_THREADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Starts one of failwell's own helper threads (a watchdog, a health
/// runner, a timeout pool worker), counted in [`own_threads`] while it
/// runs, so the watchdog's thread-leak check never counts them.
pub(crate) fn spawn_own<F>(name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    use std::sync::atomic::Ordering::Relaxed;
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            // Saturating: a thread that forked counts again in the child,
            // whose count starts at zero.
            let _ = OWN_THREADS.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
    }
    // Relaxed: a statistic, read by the watchdog on its tick.
    OWN_THREADS.fetch_add(1, Relaxed);
    // Counted down when the thread ends, or when a failed spawn drops the
    // closure that holds it.
    let running = Running;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _running = running;
            f();
        })
}

/// How many of failwell's own helper threads run now.
pub(crate) fn own_threads() -> u64 {
    OWN_THREADS.load(std::sync::atomic::Ordering::Relaxed)
}

/// In a child of `fork()`: none of the parent's helper threads exist.
/// Async-signal-safe (one atomic store).
#[cfg_attr(any(failwell_loom, not(unix)), allow(dead_code))]
pub(crate) fn forget_own_threads() {
    OWN_THREADS.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// Waits a moment inside a retry loop that another thread must let finish
/// (a sequence lock's reader): the CPU's spin hint, or under loom a yield,
/// so the model lets the writer run.
#[inline]
pub(crate) fn spin_wait() {
    #[cfg(not(failwell_loom))]
    std::hint::spin_loop();
    #[cfg(failwell_loom)]
    loom::thread::yield_now();
}

/// A small number that differs between threads running at the same time
/// (assigned round-robin at a thread's first call), for picking a stripe of
/// a striped counter. Under loom every thread gets 0: stripes have no
/// ordering role, and one stripe keeps the models small.
#[cfg(not(failwell_loom))]
#[inline]
pub(crate) fn stripe_hint() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HINT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    // A thread's first call only: out of line, so the hot path falls through.
    #[cold]
    fn assign(h: &Cell<usize>) -> usize {
        // Relaxed: only distinctness matters, not order.
        let v = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
        h.set(v);
        v
    }
    HINT.with(|h| {
        let v = h.get();
        if v != usize::MAX {
            v
        } else {
            assign(h)
        }
    })
}

/// Under loom every thread uses stripe 0.
#[cfg(failwell_loom)]
#[inline]
pub(crate) fn stripe_hint() -> usize {
    0
}

/// A shared, reference-counted callback (listeners). Always std's `Arc`:
/// loom's cannot hold unsized closures, and a listener list is guarded by
/// [`CoreRwLock`], which loom does model.
pub(crate) type SharedFn<T> = std::sync::Arc<T>;

#[cfg(all(test, not(failwell_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn opposite_argument_orders_never_deadlock() {
        let a = Arc::new(Mutex::new(0i64));
        let b = Arc::new(Mutex::new(0i64));
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let (a, b) = (a.clone(), b.clone());
                thread::spawn(move || {
                    for _ in 0..100_000 {
                        let (x, y) = if t == 0 { (&a, &b) } else { (&b, &a) };
                        let (mut gx, mut gy) = lock_both(x, y).unwrap();
                        *gx -= 1;
                        *gy += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*a.lock() + *b.lock(), 0);
    }

    #[test]
    fn the_same_mutex_twice_is_an_error_not_a_deadlock() {
        let m = Mutex::new(1);
        let n = Mutex::new(2);
        assert_eq!(
            lock_both(&m, &m).unwrap_err(),
            SameMutexTwice { positions: (0, 1) }
        );
        assert_eq!(
            lock_all(&[&m, &n, &m]).unwrap_err(),
            SameMutexTwice { positions: (0, 2) }
        );
        let guards = lock_all(&[&n, &m]).unwrap();
        assert_eq!((*guards[0], *guards[1]), (2, 1), "guards in argument order");
    }
}
