//! The one place that names atomics, locks and the wait/wake mechanism.
//!
//! Every other module imports these names from here, never from `std` or
//! `loom` directly. Built with `RUSTFLAGS="--cfg failwell_loom"`, the same
//! code runs against loom's types and is model-checked unchanged (tokio's
//! pattern). The cfg name is our own, so a user's `--cfg loom` cannot change
//! how failwell builds.
//!
//! Waiting: blocking waits are built from a [`Mutex`] and a [`Condvar`]
//! (parking_lot's, which park on a futex-like primitive and support
//! deadlines; loom's under the model). A waiter re-checks its condition under
//! the mutex before sleeping and a waker notifies under the same mutex, so no
//! wake-up is lost. Loom models no time, so under loom a timed wait behaves
//! like an untimed one; the models only use untimed waits.

pub(crate) use crossbeam_utils::CachePadded;

#[cfg(not(failwell_loom))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    pub(crate) use std::sync::Arc;

    /// A mutual-exclusion lock for cold paths (transitions, waiter queues).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }

        /// The lock if it is free now, without waiting.
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
    }

    /// A reader-writer lock for cold paths (listener lists).
    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(parking_lot::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            RwLock(parking_lot::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> parking_lot::RwLockReadGuard<'_, T> {
            self.0.read()
        }

        pub(crate) fn write(&self) -> parking_lot::RwLockWriteGuard<'_, T> {
            self.0.write()
        }
    }

    /// A condition variable paired with [`Mutex`].
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }

        /// Sleeps until notified (or spuriously woken).
        pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }

        /// Sleeps until notified, spuriously woken, or `deadline` passes.
        /// Returns the guard and whether the deadline passed.
        pub(crate) fn wait_until<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            deadline: std::time::Instant,
        ) -> (MutexGuard<'a, T>, bool) {
            let timed_out = self.0.wait_until(&mut guard, deadline).timed_out();
            (guard, timed_out)
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
    pub(crate) use loom::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    pub(crate) use loom::sync::Arc;

    /// loom's mutex behind the same interface as the real one.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    /// loom's reader-writer lock behind the same interface as the real one.
    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            RwLock(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T: Default> Default for RwLock<T> {
        fn default() -> Self {
            RwLock::new(T::default())
        }
    }

    /// loom's condition variable; timed waits are untimed (loom has no time).
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            _deadline: std::time::Instant,
        ) -> (MutexGuard<'a, T>, bool) {
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
    HINT.with(|h| {
        let v = h.get();
        if v != usize::MAX {
            return v;
        }
        // Relaxed: only distinctness matters, not order.
        let v = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
        h.set(v);
        v
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
/// [`RwLock`], which loom does model.
pub(crate) type SharedFn<T> = std::sync::Arc<T>;
