//! Surviving `fork()`: background threads do not survive into a child
//! process, so every primitive that owns one (the watchdog, the health
//! runner, timeout pools) notices that it runs in a child and starts a
//! fresh thread there instead of waiting on one that does not exist.
//!
//! A child is noticed through a fork generation: a `pthread_atfork` child
//! handler (registered the first time any such primitive is built, before
//! any of their threads exist) adds one to a process-wide counter, and
//! each background thread remembers the generation it was started in. The
//! check is one relaxed load on the paths that need it.
//!
//! What a fork cannot carry over is reset, not waited for: the parent's
//! queued and running timed calls, its workers, its watchdog's and health
//! runner's threads. A lock that a parent thread held at the instant of
//! the fork stays held in the child (POSIX gives no way around that for
//! locks of other threads); failwell holds the locks involved only for a
//! few instructions at a time, never across a user's call or a wait.

use std::io;
use std::thread::JoinHandle;

use crate::sync::{AtomicU64, CoreMutex, Ordering::Relaxed};

#[cfg(all(unix, not(failwell_loom)))]
static GENERATION: AtomicU64 = AtomicU64::new(0);

#[cfg(all(unix, not(failwell_loom)))]
extern "C" fn in_child() {
    // Relaxed: the child has one thread when this runs; an atomic add is
    // async-signal-safe, as a fork handler must be.
    GENERATION.fetch_add(1, Relaxed);
    crate::sync::forget_own_threads();
}

/// How many `fork()`s separate this process from the one that first
/// built a background-thread primitive (0 there; always 0 off Unix).
pub(crate) fn generation() -> u64 {
    #[cfg(all(unix, not(failwell_loom)))]
    {
        static REGISTER: crate::sync::statics::Once = crate::sync::statics::Once::new();
        REGISTER.call_once(|| {
            #[allow(unsafe_code)]
            // SAFETY: registers a handler that is a plain `extern "C" fn`
            // with no captured state, doing one atomic add; it stays valid
            // for the life of the process.
            let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
            debug_assert_eq!(rc, 0, "pthread_atfork failed");
        });
        GENERATION.load(Relaxed)
    }
    #[cfg(not(all(unix, not(failwell_loom))))]
    {
        0
    }
}

/// A background thread that is started afresh in a child of `fork()`.
#[derive(Debug)]
pub(crate) struct BackgroundThread {
    /// The fork generation the thread in `handle` was started in.
    started_in: AtomicU64,
    handle: CoreMutex<Option<JoinHandle<()>>>,
}

/// `started_in` of a thread never started.
const NEVER: u64 = u64::MAX;

impl BackgroundThread {
    /// No thread yet: [`start`](Self::start) or [`ensure`](Self::ensure)
    /// starts it.
    pub(crate) fn new() -> Self {
        BackgroundThread {
            started_in: AtomicU64::new(NEVER),
            handle: CoreMutex::new(None),
        }
    }

    /// Starts the thread with `spawn` now.
    pub(crate) fn start(
        &self,
        spawn: impl FnOnce() -> io::Result<JoinHandle<()>>,
    ) -> io::Result<()> {
        let now = generation();
        let mut handle = self.handle.lock();
        *handle = Some(spawn()?);
        self.started_in.store(now, Relaxed);
        Ok(())
    }

    /// Whether the thread was started in this process (so it exists, or
    /// has ended on its own).
    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        self.started_in.load(Relaxed) == generation()
    }

    /// In a child of `fork()`, starts a fresh thread with `spawn` (once,
    /// however many callers race here); in the process that started the
    /// thread, does nothing. A spawn that fails leaves the primitive
    /// without its thread until the next call tries again.
    pub(crate) fn ensure(&self, spawn: impl FnOnce() -> io::Result<JoinHandle<()>>) {
        if !self.is_current() {
            self.restart(spawn);
        }
    }

    #[cold]
    fn restart(&self, spawn: impl FnOnce() -> io::Result<JoinHandle<()>>) {
        let mut handle = self.handle.lock();
        let now = generation();
        if self.started_in.load(Relaxed) == now {
            return; // another caller restarted it
        }
        // The parent's thread does not exist here: its handle can be
        // neither joined (that would wait forever) nor detached.
        std::mem::forget(handle.take());
        if let Ok(h) = spawn() {
            *handle = Some(h);
            self.started_in.store(now, Relaxed);
        }
    }

    /// Waits for the thread to end (the caller has told it to stop); a
    /// thread of the parent process is not waited for.
    pub(crate) fn join(&self) {
        let h = self.handle.lock().take();
        match h {
            Some(h) if self.is_current() => {
                let _ = h.join();
            }
            other => std::mem::forget(other),
        }
    }
}
