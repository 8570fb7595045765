//! Deadline and timed-call specifications.

use super::*;
use crate::clock::ManualClock;
use std::sync::mpsc;

const MS: Duration = Duration::from_millis(1);

#[test]
fn deadlines_count_down_and_children_never_outlive_parents() {
    let clock = ManualClock::new();
    let d = Deadline::after_on(&clock, 100 * MS);
    assert_eq!(d.remaining_on(&clock), 100 * MS);
    clock.advance(40 * MS);
    assert_eq!(d.remaining_on(&clock), 60 * MS);
    assert!(!d.is_expired_on(&clock));
    clock.advance(60 * MS);
    assert!(d.is_expired_on(&clock));
    assert_eq!(d.remaining_on(&clock), Duration::ZERO);

    let parent = Deadline::after(Duration::from_secs(1));
    assert_eq!(parent.child(Duration::from_secs(10)), parent);
    assert!(parent.child(MS) < parent);
    assert_eq!(parent.min(Deadline::never()), parent);
    assert!(Deadline::never().is_never());
    assert!(!Deadline::never().is_expired());
    assert_eq!(Deadline::at(5).as_nanos(), 5);
}

#[test]
fn a_call_within_its_deadline_returns_its_value() {
    let pool = TimeoutPool::new(2).unwrap();
    let v = pool
        .run(Deadline::after(Duration::from_secs(10)), || 7)
        .unwrap();
    assert_eq!(v, 7);
    let s = pool.snapshot();
    assert_eq!((s.completed, s.timed_out, s.busy), (1, 0, 0));
}

#[test]
fn an_overrunning_call_is_abandoned_and_counted_until_it_returns() {
    let pool = TimeoutPool::new(2).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let start = Instant::now();
    let r = pool.run(Deadline::after(30 * MS), move || {
        let _ = gate.recv(); // hangs until released
        1
    });
    assert_eq!(r, Err(Rejected::DeadlineExceeded));
    assert!(start.elapsed() >= 30 * MS);
    let s = pool.snapshot();
    assert_eq!((s.timed_out, s.abandoned_running, s.busy), (1, 1, 1));
    release.send(()).unwrap();
    let t = Instant::now();
    while pool.snapshot().abandoned_running != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the abandoned call never ended"
        );
        std::thread::sleep(MS);
    }
    assert_eq!(pool.snapshot().busy, 0);
}

#[test]
fn an_exhausted_pool_refuses_instead_of_spawning() {
    let pool = TimeoutPool::new(1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let r = pool.run(Deadline::after(10 * MS), move || {
        let _ = gate.recv();
    });
    assert_eq!(r, Err(Rejected::DeadlineExceeded));
    // Its one worker is still held by the abandoned call.
    assert_eq!(
        pool.run(Deadline::after(Duration::from_secs(1)), || ()),
        Err(Rejected::BulkheadFull)
    );
    assert_eq!(pool.snapshot().rejected, 1);
    assert_eq!(pool.snapshot().threads, 1);
    release.send(()).unwrap();
}

#[test]
fn an_expired_deadline_never_runs_the_call() {
    let pool = TimeoutPool::new(1).unwrap();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r2 = ran.clone();
    let past = Deadline::at(0);
    let r = pool.run(past, move || {
        r2.store(true, std::sync::atomic::Ordering::SeqCst)
    });
    assert_eq!(r, Err(Rejected::DeadlineExceeded));
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn a_panic_in_the_call_reaches_the_caller_and_the_pool_survives() {
    let pool = TimeoutPool::new(1).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.run(Deadline::after(Duration::from_secs(5)), || -> u32 {
            panic!("inside")
        })
    }));
    assert!(r.is_err());
    assert_eq!(
        pool.run(Deadline::after(Duration::from_secs(5)), || 3),
        Ok(3)
    );
}

#[test]
fn idle_workers_exit_after_their_timeout() {
    let pool = TimeoutPool::with_idle_timeout(4, 20 * MS).unwrap();
    pool.run(Deadline::after(Duration::from_secs(5)), || ())
        .unwrap();
    assert_eq!(pool.snapshot().threads, 1);
    let t = Instant::now();
    while pool.snapshot().threads != 0 {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(5 * MS);
    }
}

#[test]
fn dropping_the_pool_wakes_its_parked_workers_at_once() {
    // An idle time-out of a minute: only the shutdown's unpark can end
    // the workers within the test's few seconds.
    let pool = TimeoutPool::with_idle_timeout(3, Duration::from_secs(60)).unwrap();
    let started: Vec<_> = (0..3).map(|_| pool.start(|| ()).unwrap()).collect();
    for p in started {
        p.wait(Deadline::after(Duration::from_secs(5))).unwrap();
    }
    assert!(pool.snapshot().threads >= 1);
    let inner = Arc::downgrade(&pool.inner);
    drop(pool);
    let t = Instant::now();
    // Each worker holds the pool's state until it exits.
    while inner.upgrade().is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a parked worker did not wake at shutdown"
        );
        std::thread::sleep(5 * MS);
    }
}

#[test]
fn a_worker_woken_with_no_work_parks_again_and_serves_the_next_call() {
    // Spurious wake-ups (and a caller's unpark that another worker beat)
    // leave the worker listed once and serving.
    let pool = TimeoutPool::with_idle_timeout(1, Duration::from_secs(60)).unwrap();
    pool.run(Deadline::after(Duration::from_secs(5)), || ())
        .unwrap();
    let t = Instant::now();
    let idle = loop {
        // The worker lists itself once it has handed the result back.
        let idle = pool.inner.queue.lock().idle.clone();
        if !idle.is_empty() {
            break idle;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the worker never idled"
        );
        std::thread::sleep(MS);
    };
    assert_eq!(idle.len(), 1, "the worker is listed as idle");
    for _ in 0..50 {
        idle[0].unpark();
        std::thread::sleep(MS);
    }
    assert_eq!(pool.inner.queue.lock().idle.len(), 1, "listed once");
    assert_eq!(
        pool.run(Deadline::after(Duration::from_secs(5)), || 7),
        Ok(7)
    );
    assert_eq!(pool.snapshot().threads, 1);
}

#[test]
fn the_default_pool_serves_with_timeout() {
    assert_eq!(
        with_timeout(Deadline::after(Duration::from_secs(5)), || "ok"),
        Ok("ok")
    );
    assert!(default_pool().snapshot().completed >= 1);
}

#[test]
fn invalid_pool_configuration_names_the_field() {
    assert_eq!(TimeoutPool::new(0).unwrap_err().field(), "max_threads");
    assert_eq!(TimeoutPool::new(5000).unwrap_err().field(), "max_threads");
    assert_eq!(
        TimeoutPool::with_idle_timeout(1, Duration::ZERO)
            .unwrap_err()
            .field(),
        "idle_timeout"
    );
}
