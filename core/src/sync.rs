//! The one place in failwell that names atomics, locks, threads and the
//! wait/wake mechanism: crate-private plumbing (users' locks are in
//! [`crate::lock`]). Every other module imports these names from here,
//! never from `std` or `loom` directly. Built with `RUSTFLAGS="--cfg failwell_loom"`, the same
//! code runs against loom's types and is model-checked unchanged (tokio's
//! pattern). The cfg name is our own, so a user's `--cfg loom` cannot change
//! how failwell builds.
//!
//! Waiting: blocking waits are built from a [`CoreMutex`] and a [`Condvar`]
//! (std's, which keep their whole state in the lock word, so a fork cannot
//! leave a process-wide table locked; loom's under the model). A waiter re-checks its condition under
//! the mutex before sleeping and a waker notifies under the same mutex, so no
//! wake-up is lost. Loom models no time, so under loom a timed wait behaves
//! like an untimed one; the models only use untimed waits.

pub(crate) use crossbeam_utils::CachePadded;

#[cfg(not(failwell_loom))]
mod imp {
    pub(crate) use std::sync::atomic::{fence, AtomicI64, AtomicU32, AtomicU64, Ordering};
    pub(crate) use std::sync::Arc;

    use std::sync::PoisonError;
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

        /// Sleeps until notified, spuriously woken, or `d` has passed.
        pub(crate) fn wait_for<'a, T>(
            &self,
            guard: CoreMutexGuard<'a, T>,
            d: std::time::Duration,
        ) -> CoreMutexGuard<'a, T> {
            self.0
                .wait_timeout(guard, d)
                .unwrap_or_else(PoisonError::into_inner)
                .0
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
    // The futex word of a host region's bulkhead; no model uses it.
    #[allow(unused_imports)]
    pub(crate) use loom::sync::atomic::AtomicU32;
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

        pub(crate) fn wait_for<'a, T>(
            &self,
            guard: CoreMutexGuard<'a, T>,
            _d: std::time::Duration,
        ) -> CoreMutexGuard<'a, T> {
            self.wait(guard)
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
static OWN_THREADS: statics::AtomicU64 = statics::AtomicU64::new(0);

/// Starts one of failwell's own helper threads (a watchdog, a health
/// runner, a timeout pool worker), counted in [`own_threads`] while it
/// runs, so the watchdog's thread-leak check never counts them.
pub(crate) fn spawn_own<F>(name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    use statics::Ordering::Relaxed;
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
    OWN_THREADS.load(statics::Ordering::Relaxed)
}

/// In a child of `fork()`: none of the parent's helper threads exist.
/// Async-signal-safe (one atomic store).
#[cfg_attr(any(failwell_loom, not(unix)), allow(dead_code))]
pub(crate) fn forget_own_threads() {
    OWN_THREADS.store(0, statics::Ordering::Relaxed);
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
    use statics::{AtomicUsize, Ordering};
    use std::cell::Cell;
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

/// Parking a thread until another unparks it (idle timeout-pool workers):
/// always std's, since loom has no timed park; no model covers the pool.
pub(crate) use std::thread::{current as current_thread, park_timeout, Thread};

/// A shared, reference-counted callback (listeners). Always std's `Arc`:
/// loom's cannot hold unsized closures, and a listener list is guarded by
/// [`CoreRwLock`], which loom does model.
pub(crate) type SharedFn<T> = std::sync::Arc<T>;

/// The `Arc` a user holds a handle in (`self: &Arc<Self>` methods that hand
/// out owned permits, handles passed to a pipeline, a registry or a
/// budget), and the one that failwell's background threads share their
/// state through: always std's, since the first is the user's type and the
/// second is never modelled; what the models check is the state inside.
pub(crate) type UserArc<T> = std::sync::Arc<T>;

/// For process-wide statics (a seed counter, a thread count, a stripe
/// counter, one-time registrations, the shared timeout pool): always std's,
/// since loom's have no `const` constructor and a static outlives every
/// model; none of them orders memory a model checks. (Some go unused in
/// the loom build, which has no fork handler and one stripe.)
#[allow(unused_imports)]
pub(crate) mod statics {
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Once, OnceLock};
}
