//! A child made with `fork()` while failwell's background threads run can
//! use every primitive: timed calls run, health checks run and rounds go
//! on, the watchdog ticks and reports, and nothing waits on a thread that
//! exists only in the parent. Each child runs under a time limit, so a
//! hang fails the test instead of stalling it.
#![cfg(unix)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use failwell::breaker::CircuitBreaker;
use failwell::deadline::{with_timeout, Deadline, TimeoutPool};
use failwell::health::{HealthRegistry, Status};
use failwell::watchdog::{FindingKind, Watchdog};

/// Runs `child` in a forked child process, which exits 0 if it returns
/// `Ok` and 1 with the message on standard error otherwise (a panic too);
/// fails unless the child exits 0 within `limit`.
#[allow(unsafe_code)]
fn in_child(limit: Duration, child: impl FnOnce() -> Result<(), String>) {
    // SAFETY: the child only runs Rust code of this test and leaves with
    // `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child));
        let code = match r {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                // Straight to file descriptor 2: the test harness captures
                // `eprintln!`, and a child leaving with `_exit` never
                // hands the capture back, so the reason would be lost.
                let msg = format!("child: {e}\n");
                // SAFETY: writes a valid buffer of `msg.len()` bytes.
                unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
                1
            }
            Err(_) => 2,
        };
        // SAFETY: ends the child at once, without running the parent's
        // atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "the child failed (status {status:#x})"
            );
            return;
        }
        if start.elapsed() > limit {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child hung for {limit:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

#[test]
fn a_child_of_fork_can_use_every_background_primitive() {
    // The parent uses everything with a thread behind it, and keeps
    // calling while it forks.
    assert_eq!(
        with_timeout(Deadline::after(Duration::from_secs(5)), || 1),
        Ok(1)
    );
    let pool = TimeoutPool::new(2).unwrap();
    assert_eq!(
        pool.run(Deadline::after(Duration::from_secs(5)), || 2),
        Ok(2)
    );
    // A call still running in the parent's pool at the fork.
    let _busy = pool
        .start(|| thread::sleep(Duration::from_secs(2)))
        .unwrap();
    let health = HealthRegistry::builder()
        .interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    health
        .register("dep", true, Duration::from_millis(500), move || {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    // A check that hangs in the parent when the fork comes.
    health
        .register("slow", false, Duration::from_millis(50), || {
            thread::sleep(Duration::from_millis(300));
            Ok(())
        })
        .unwrap();
    let found = Arc::new(AtomicUsize::new(0));
    let f = found.clone();
    let watchdog = Watchdog::builder()
        .tick(Duration::from_millis(5))
        .no_thread_leak_check()
        .on_finding(move |x| {
            if matches!(x.kind, FindingKind::Stall { .. }) && !x.cleared {
                f.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    let breaker = Arc::new(CircuitBreaker::builder().build().unwrap());
    let b = breaker.clone();
    let caller = thread::spawn(move || {
        for _ in 0..200_000 {
            let _ = b.call(|| Ok::<_, ()>(()));
        }
    });
    let before = Instant::now();
    while health.report().round < 2 && before.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(5));
    }

    in_child(Duration::from_secs(20), || {
        let t = Instant::now();
        let r = with_timeout(Deadline::after(Duration::from_secs(1)), || 3);
        check(r == Ok(3), &format!("the default pool's timed call: {r:?}"))?;
        check(
            t.elapsed() < Duration::from_millis(500),
            "the timed call ran at once",
        )?;
        let r = pool.run(Deadline::after(Duration::from_secs(1)), || 4);
        check(r == Ok(4), &format!("an own pool's timed call: {r:?}"))?;
        check(
            pool.snapshot().busy == 0,
            "no call of the parent's counts as busy",
        )?;

        let report = health.check_now();
        let dep = &report.checks[0];
        check(
            dep.status == Status::Healthy,
            &format!("the check ran in the child: {dep:?}"),
        )?;
        let round = health.report().round;
        let t = Instant::now();
        while health.report().round < round + 3 {
            check(
                t.elapsed() < Duration::from_secs(5),
                "rounds go on in the child",
            )?;
            thread::sleep(Duration::from_millis(5));
        }

        let beat = watchdog
            .heartbeat("child-work", Duration::from_millis(20))
            .unwrap();
        beat.beat();
        let t = Instant::now();
        while found.load(Ordering::SeqCst) == 0 {
            check(
                t.elapsed() < Duration::from_secs(5),
                "the watchdog ticks in the child",
            )?;
            thread::sleep(Duration::from_millis(5));
        }

        check(
            breaker.call(|| Ok::<_, ()>(5)).ok() == Some(5),
            "the breaker",
        )?;
        // Nothing waits on a thread of the parent.
        drop(beat);
        drop(health);
        watchdog.shutdown();
        drop(pool);
        Ok(())
    });

    caller.join().unwrap();
    // The parent goes on as before.
    assert_eq!(
        with_timeout(Deadline::after(Duration::from_secs(5)), || 6),
        Ok(6)
    );
    assert!(runs.load(Ordering::SeqCst) > 0);
}

#[test]
fn a_grandchild_restarts_them_again() {
    let health = HealthRegistry::builder()
        .interval(Duration::from_millis(10))
        .build()
        .unwrap();
    health
        .register("ok", true, Duration::from_millis(500), || Ok(()))
        .unwrap();
    assert_eq!(
        with_timeout(Deadline::after(Duration::from_secs(5)), || 1),
        Ok(1)
    );
    in_child(Duration::from_secs(20), || {
        check(
            with_timeout(Deadline::after(Duration::from_secs(1)), || 2) == Ok(2),
            "child",
        )?;
        check(health.check_now().status == Status::Healthy, "child health")?;
        in_child(Duration::from_secs(10), || {
            check(
                with_timeout(Deadline::after(Duration::from_secs(1)), || 3) == Ok(3),
                "grandchild",
            )?;
            check(
                health.check_now().status == Status::Healthy,
                "grandchild health",
            )?;
            drop(health);
            Ok(())
        });
        Ok(())
    });
}

/// Many forks while every background thread is busy and a parent thread
/// keeps making timed calls: no child ever finds one of failwell's locks
/// held (each would hang on it), because a fork waits until failwell's
/// threads are outside their quiet sections.
#[test]
fn forks_never_find_a_lock_of_failwell_held() {
    let pool = TimeoutPool::new(4).unwrap();
    let health = HealthRegistry::builder()
        .interval(Duration::from_millis(10))
        .build()
        .unwrap();
    for name in ["a", "b", "c"] {
        health
            .register(name, false, Duration::from_millis(200), || Ok(()))
            .unwrap();
    }
    let breaker = Arc::new(CircuitBreaker::builder().build().unwrap());
    health
        .register_breaker("dep", breaker.clone(), Status::Degraded)
        .unwrap();
    let watchdog = Arc::new(
        Watchdog::builder()
            .tick(Duration::from_millis(1))
            .no_thread_leak_check()
            .on_finding(|_| {})
            .build()
            .unwrap(),
    );
    health
        .register_watchdog("watchdog", watchdog.clone(), Status::Degraded)
        .unwrap();
    let _gauge = watchdog.watch_pool("pool", pool.clone(), 100);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (p, s, w) = (pool.clone(), stop.clone(), watchdog.clone());
    let caller = thread::spawn(move || {
        let mut n = 0u64;
        while !s.load(Ordering::Relaxed) {
            let _ = p.run(Deadline::after(Duration::from_secs(5)), || 1);
            let _ = with_timeout(Deadline::after(Duration::from_secs(5)), || 2);
            let beat = w
                .heartbeat(format!("caller-{}", n % 4), Duration::from_secs(60))
                .unwrap();
            beat.beat();
            n += 1;
        }
    });
    for _ in 0..150 {
        in_child(Duration::from_secs(10), || {
            check(
                with_timeout(Deadline::after(Duration::from_secs(2)), || 3) == Ok(3),
                "the default pool",
            )?;
            check(
                pool.run(Deadline::after(Duration::from_secs(2)), || 4) == Ok(4),
                "an own pool",
            )?;
            check(health.check_now().checks.len() == 5, "a round")?;
            let beat = watchdog
                .heartbeat("child", Duration::from_secs(60))
                .unwrap();
            beat.beat();
            check(watchdog.snapshot().heartbeats >= 1, "the watchdog")?;
            drop(beat);
            Ok(())
        });
    }
    stop.store(true, Ordering::Relaxed);
    caller.join().unwrap();
}
