//! Shared helpers for failwell's criterion benchmarks, and the conventional
//! baselines they are measured against (a `Mutex`-protected breaker and a
//! `Mutex` + `Condvar` semaphore, written here as a careful user would).
//!
//! Peers (failsafe, recloser, tokio) are dev-dependencies of this crate only.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `op` `iters` times on each of two threads started together and
/// returns the wall time until both finished: the time per iteration of both
/// threads, as the issues quote it.
pub fn two_threads<S, F>(iters: u64, shared: &Arc<S>, op: F) -> Duration
where
    S: Send + Sync + 'static,
    F: Fn(&S) + Send + Sync + Copy + 'static,
{
    let barrier = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (s, barrier) = (Arc::clone(shared), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    op(&s);
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("bench thread");
    }
    start.elapsed()
}

/// A conventional circuit breaker: consecutive failures, all state behind
/// one `parking_lot::Mutex` (the textbook breaker, in Rust).
#[derive(Debug)]
pub struct MutexBreaker {
    inner: parking_lot::Mutex<MutexBreakerState>,
    max_failures: u32,
    open_for: Duration,
}

#[derive(Debug)]
struct MutexBreakerState {
    failures: u32,
    open_since: Option<Instant>,
}

impl MutexBreaker {
    /// Trips after `max_failures` in a row, stays open `open_for`.
    pub fn new(max_failures: u32, open_for: Duration) -> Self {
        MutexBreaker {
            inner: parking_lot::Mutex::new(MutexBreakerState {
                failures: 0,
                open_since: None,
            }),
            max_failures,
            open_for,
        }
    }

    /// Runs `f` unless open; counts its outcome.
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Option<Result<T, E>> {
        {
            let s = self.inner.lock();
            if let Some(since) = s.open_since {
                if since.elapsed() < self.open_for {
                    return None;
                }
            }
        }
        let r = f();
        let mut s = self.inner.lock();
        if r.is_ok() {
            s.failures = 0;
            s.open_since = None;
        } else {
            s.failures += 1;
            if s.failures >= self.max_failures {
                s.open_since = Some(Instant::now());
            }
        }
        Some(r)
    }
}

/// A conventional counting semaphore: a count and a waiter count behind a
/// `Mutex`, waiters on a `Condvar`, notified only when someone waits (as a
/// careful user writes it: a `notify_one` per release costs a system call).
#[derive(Debug)]
pub struct CondvarSemaphore {
    state: std::sync::Mutex<(usize, usize)>,
    cv: std::sync::Condvar,
}

impl CondvarSemaphore {
    /// A semaphore with `n` permits.
    pub fn new(n: usize) -> Self {
        CondvarSemaphore {
            state: std::sync::Mutex::new((n, 0)),
            cv: std::sync::Condvar::new(),
        }
    }

    /// Takes a permit if one is free.
    pub fn try_acquire(&self) -> bool {
        let mut s = self.state.lock().expect("unpoisoned");
        if s.0 == 0 {
            return false;
        }
        s.0 -= 1;
        true
    }

    /// Takes a permit, waiting as long as it takes.
    pub fn acquire(&self) {
        let mut s = self.state.lock().expect("unpoisoned");
        while s.0 == 0 {
            s.1 += 1;
            s = self.cv.wait(s).expect("unpoisoned");
            s.1 -= 1;
        }
        s.0 -= 1;
    }

    /// Returns a permit and wakes one waiter, if any.
    pub fn release(&self) {
        let mut s = self.state.lock().expect("unpoisoned");
        s.0 += 1;
        if s.1 > 0 {
            self.cv.notify_one();
        }
    }
}

/// One closed-breaker pass, out of line, for inspecting the generated code.
#[inline(never)]
pub fn inspect_pass(b: &failwell::breaker::CircuitBreaker) -> bool {
    let r: Result<(), failwell::Error<()>> = b.call(|| Ok(()));
    r.is_ok()
}

/// A `redis-server` (the Debian package) on a free loopback port, killed
/// when dropped, for the fleet benchmarks; ready when returned.
#[derive(Debug)]
pub struct LoopbackRedis {
    child: std::process::Child,
    /// Its URL.
    pub url: String,
}

impl LoopbackRedis {
    /// Starts one and waits (at most 10 s) until it accepts connections.
    pub fn start() -> LoopbackRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (the Debian package) runs");
        let t = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        LoopbackRedis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for LoopbackRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
