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
//! runner's threads.
//!
//! A lock held at the instant of the fork stays held in the child, by a
//! thread that does not exist there; so does an allocator's lock, where
//! the allocator does not guard itself against fork (older sanitizer
//! runtimes do not). failwell's own threads therefore run inside a
//! [`quiet`] section whenever they run failwell's code, stepping
//! [`aside`] only to wait or to run a user's code (a check, a gauge, a
//! report callback, a timed call), holding no lock then; a
//! `pthread_atfork` prepare handler makes `fork()` wait until no thread is
//! inside a section. A background thread sleeps on a [`Signal`] of its
//! own, made afresh with each thread, so the lock its wake-ups retake is
//! never one a child touches. Timeout pools lock their queue inside a
//! section on every thread, so a fork never finds it held. Locks held by
//! the application's own threads at the fork are otherwise the
//! application's to avoid, as POSIX says.

use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::sync::{AtomicU64, Condvar, CoreMutex, CoreRwLock, Ordering::Relaxed, UserArc as Arc};

#[cfg(all(unix, not(failwell_loom)))]
mod gate {
    use std::cell::Cell;
    use std::time::Duration;

    use crate::sync::statics::{
        AtomicU64,
        Ordering::{Acquire, Relaxed, Release},
    };

    /// Forks so far (see [`super::generation`]).
    pub(super) static GENERATION: AtomicU64 = AtomicU64::new(0);

    /// Bit 63: a fork is under way; below it, how many threads are inside
    /// a quiet section now.
    static GATE: AtomicU64 = AtomicU64::new(0);
    const FORKING: u64 = 1 << 63;

    std::thread_local! {
        /// Quiet sections this thread is inside (they nest).
        static DEPTH: Cell<u32> = const { Cell::new(0) };
    }

    /// Spins a little, then yields, then sleeps briefly: the waits here
    /// last as long as a short critical section or a fork.
    fn pause(round: &mut u32) {
        *round += 1;
        if *round < 64 {
            std::hint::spin_loop();
        } else if *round < 128 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Waits until no fork is under way, then changes the gate word with
    /// `change` in the same step.
    fn when_open(change: impl Fn(u64) -> u64) {
        let mut round = 0;
        loop {
            let v = GATE.load(Relaxed);
            // Acquire: pairs with the Release that ends a fork (in the
            // parent or the child), so what the forking thread wrote
            // before it is seen.
            if v & FORKING == 0
                && GATE
                    .compare_exchange_weak(v, change(v), Acquire, Relaxed)
                    .is_ok()
            {
                return;
            }
            pause(&mut round);
        }
    }

    pub(super) fn enter() {
        let outer = DEPTH.with(|d| {
            let n = d.get();
            d.set(n + 1);
            n == 0
        });
        if outer {
            when_open(|v| v + 1);
        } // else already inside: a fork waits for the outer section
    }

    pub(super) fn aside<R>(f: impl FnOnce() -> R) -> R {
        let depth = DEPTH.with(|d| d.replace(0));
        if depth > 0 {
            // Release: pairs with `before_fork`'s Acquire load.
            GATE.fetch_sub(1, Release);
        }
        /// Re-enters the sections left, also when `f` unwinds.
        struct Back(u32);
        impl Drop for Back {
            fn drop(&mut self) {
                if self.0 > 0 {
                    enter();
                    DEPTH.with(|d| d.set(self.0));
                }
            }
        }
        let _back = Back(depth);
        f()
    }

    pub(super) fn leave() {
        let outer = DEPTH.with(|d| {
            let n = d.get() - 1;
            d.set(n);
            n == 0
        });
        if outer {
            // Release: pairs with `before_fork`'s Acquire load, so every
            // lock the section released is released before the fork.
            GATE.fetch_sub(1, Release);
        }
    }

    /// 1 if the calling thread is inside a section itself (a signal
    /// handler that forks), whose section the fork cannot wait for.
    fn own_section() -> u64 {
        DEPTH.with(|d| u64::from(d.get() > 0))
    }

    /// The prepare handler: closes the gate, then waits until every quiet
    /// section but the forking thread's own has ended. One fork at a time
    /// passes.
    pub(super) extern "C" fn before_fork() {
        // Another thread's fork, under way, passes first.
        when_open(|v| v | FORKING);
        let mut round = 0;
        let mine = own_section();
        // Acquire: pairs with `leave`'s Release.
        while GATE.load(Acquire) != FORKING | mine {
            pause(&mut round);
        }
    }

    /// The parent handler: opens the gate again.
    pub(super) extern "C" fn after_fork_in_parent() {
        // Release: pairs with `enter`'s Acquire.
        GATE.fetch_and(!FORKING, Release);
    }

    /// The child handler: a new generation, no helper threads, the gate
    /// open (the child's one thread may be inside a section of its own).
    /// An atomic add and two stores: async-signal-safe, as a fork handler
    /// must be.
    pub(super) extern "C" fn in_child() {
        GENERATION.fetch_add(1, Relaxed);
        crate::sync::forget_own_threads();
        // Release: pairs with `enter`'s Acquire.
        GATE.store(own_section(), Release);
    }
}

/// How many `fork()`s separate this process from the one that first
/// built a background-thread primitive (0 there; always 0 off Unix).
pub(crate) fn generation() -> u64 {
    #[cfg(all(unix, not(failwell_loom)))]
    {
        static REGISTER: crate::sync::statics::Once = crate::sync::statics::Once::new();
        REGISTER.call_once(|| {
            #[allow(unsafe_code)]
            // SAFETY: registers plain `extern "C" fn`s with no captured
            // state; they stay valid for the life of the process.
            let rc = unsafe {
                libc::pthread_atfork(
                    Some(gate::before_fork),
                    Some(gate::after_fork_in_parent),
                    Some(gate::in_child),
                )
            };
            debug_assert_eq!(rc, 0, "pthread_atfork failed");
        });
        gate::GENERATION.load(crate::sync::statics::Ordering::Relaxed)
    }
    #[cfg(not(all(unix, not(failwell_loom))))]
    {
        0
    }
}

/// [`generation`] for a caller that knows it was called before in this
/// process (so the fork handlers are registered; a child inherits them):
/// the counter's load alone, for hot paths. Every host region calls
/// [`generation`] when it is mapped.
#[cfg(all(unix, not(failwell_loom)))]
#[inline(always)]
pub(crate) fn generation_known() -> u64 {
    gate::GENERATION.load(crate::sync::statics::Ordering::Relaxed)
}

/// While one is alive on a thread, `fork()` waits (see the module docs).
/// Hold one around every lock that one of failwell's own threads takes
/// and a child of `fork()` takes too; never across a wait, a thread join
/// or a user's code. Sections nest.
#[must_use = "the section ends when this is dropped"]
pub(crate) struct Quiet {
    /// Ends on the thread it began on.
    _not_send: PhantomData<*const ()>,
}

/// Runs `f` outside the quiet sections this thread is in, and then
/// resumes them (waiting while a fork is under way): for a user's code
/// and for waits inside a section. The thread must hold no lock that a
/// section guards while `f` runs.
#[inline]
pub(crate) fn aside<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(unix, not(failwell_loom)))]
    {
        gate::aside(f)
    }
    #[cfg(not(all(unix, not(failwell_loom))))]
    {
        f()
    }
}

/// Begins a quiet section (waits while a fork is under way).
#[inline]
pub(crate) fn quiet() -> Quiet {
    #[cfg(all(unix, not(failwell_loom)))]
    {
        generation(); // the handlers are registered before the first section
        gate::enter();
    }
    Quiet {
        _not_send: PhantomData,
    }
}

impl Drop for Quiet {
    #[inline]
    fn drop(&mut self) {
        #[cfg(all(unix, not(failwell_loom)))]
        gate::leave();
    }
}

/// A lock that every thread holds only inside a quiet section, so no child
/// of `fork()` finds it held: for the locks of the primitives with
/// background threads (registries, reports, queues), which a child goes on
/// using. Never waited on with a condition variable (a wait would end
/// outside the section).
#[derive(Debug, Default)]
pub(crate) struct QuietMutex<T>(CoreMutex<T>);

/// The reader-writer form of [`QuietMutex`].
#[derive(Debug, Default)]
pub(crate) struct QuietRwLock<T>(CoreRwLock<T>);

/// A guard of a [`QuietMutex`] or [`QuietRwLock`].
pub(crate) struct QuietGuard<G> {
    guard: G,
    // Declared after `guard`, so dropped after it: the lock is released
    // inside the section.
    _quiet: Quiet,
}

impl<G: Deref> Deref for QuietGuard<G> {
    type Target = G::Target;
    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: DerefMut> DerefMut for QuietGuard<G> {
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

impl<T> QuietMutex<T> {
    pub(crate) fn new(value: T) -> Self {
        QuietMutex(CoreMutex::new(value))
    }

    pub(crate) fn lock(&self) -> QuietGuard<impl DerefMut<Target = T> + '_> {
        let quiet = quiet();
        QuietGuard {
            guard: self.0.lock(),
            _quiet: quiet,
        }
    }
}

impl<T> QuietRwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        QuietRwLock(CoreRwLock::new(value))
    }

    pub(crate) fn read(&self) -> QuietGuard<impl Deref<Target = T> + '_> {
        let quiet = quiet();
        QuietGuard {
            guard: self.0.read(),
            _quiet: quiet,
        }
    }

    pub(crate) fn write(&self) -> QuietGuard<impl DerefMut<Target = T> + '_> {
        let quiet = quiet();
        QuietGuard {
            guard: self.0.write(),
            _quiet: quiet,
        }
    }
}

/// How a background thread sleeps and is told to stop: its own, made
/// afresh with each thread, so a child of `fork()` never takes the lock
/// the parent's thread retakes when it wakes.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    stop: CoreMutex<bool>,
    wake: Condvar,
}

impl Signal {
    /// Sleeps until `until` (`None`: until told to stop); `true` once told
    /// to stop.
    pub(crate) fn sleep_until(&self, until: Option<Instant>) -> bool {
        let mut stop = self.stop.lock();
        while !*stop {
            let (g, timed_out) = self.wake.wait_until(stop, until);
            stop = g;
            if timed_out || until.is_some_and(|u| Instant::now() >= u) {
                break;
            }
        }
        *stop
    }

    fn stop(&self) {
        *self.stop.lock() = true;
        self.wake.notify_all();
    }
}

/// A background thread that is started afresh in a child of `fork()`.
#[derive(Debug)]
pub(crate) struct BackgroundThread {
    /// The fork generation the thread in `handle` was started in.
    started_in: AtomicU64,
    handle: QuietMutex<Option<(JoinHandle<()>, Arc<Signal>)>>,
}

/// `started_in` of a thread never started.
const NEVER: u64 = u64::MAX;

/// Starts a background thread that sleeps on the [`Signal`] it is given.
pub(crate) trait Spawn: FnOnce(Arc<Signal>) -> io::Result<JoinHandle<()>> {}
impl<F: FnOnce(Arc<Signal>) -> io::Result<JoinHandle<()>>> Spawn for F {}

impl BackgroundThread {
    /// No thread yet: [`start`](Self::start) or [`ensure`](Self::ensure)
    /// starts it.
    pub(crate) fn new() -> Self {
        BackgroundThread {
            started_in: AtomicU64::new(NEVER),
            handle: QuietMutex::new(None),
        }
    }

    /// Starts the thread with `spawn` now.
    pub(crate) fn start(&self, spawn: impl Spawn) -> io::Result<()> {
        let now = generation();
        let mut handle = self.handle.lock();
        let signal = Arc::new(Signal::default());
        *handle = Some((spawn(Arc::clone(&signal))?, signal));
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
    pub(crate) fn ensure(&self, spawn: impl Spawn) {
        if !self.is_current() {
            self.restart(spawn);
        }
    }

    #[cold]
    fn restart(&self, spawn: impl Spawn) {
        let mut handle = self.handle.lock();
        let now = generation();
        if self.started_in.load(Relaxed) == now {
            return; // another caller restarted it
        }
        // The parent's thread does not exist here: its handle can be
        // neither joined (that would wait forever) nor detached, and its
        // signal's lock may be held.
        std::mem::forget(handle.take());
        let signal = Arc::new(Signal::default());
        if let Ok(h) = spawn(Arc::clone(&signal)) {
            *handle = Some((h, signal));
            self.started_in.store(now, Relaxed);
        }
    }

    /// Tells the thread to stop and waits for it to end; a thread of the
    /// parent process is neither told nor waited for.
    pub(crate) fn stop_and_join(&self) {
        let h = self.handle.lock().take();
        match h {
            Some((h, signal)) if self.is_current() => {
                signal.stop();
                let _ = h.join();
            }
            other => std::mem::forget(other),
        }
    }
}

#[cfg(all(test, unix, not(failwell_loom)))]
mod tests;
