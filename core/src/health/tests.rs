//! Health registry specifications.

use super::*;
use crate::breaker::CircuitBreaker;
use std::sync::atomic::{AtomicBool, Ordering};

fn registry() -> HealthRegistry {
    HealthRegistry::builder()
        .interval(Duration::from_secs(3600)) // rounds only when asked
        .build()
        .unwrap()
}

#[test]
fn aggregates_a_hanging_check_a_failing_non_critical_check_and_an_open_breaker() {
    let health = registry();
    let hang = Arc::new(AtomicBool::new(true));
    let h2 = hang.clone();
    health
        .register("database", true, Duration::from_millis(100), move || {
            while h2.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1)); // hangs until released
            }
            Ok(())
        })
        .unwrap();
    health
        .register("cache", false, Duration::from_secs(5), || {
            Err("connection refused".into())
        })
        .unwrap();
    health
        .register("config", true, Duration::from_secs(5), || Ok(()))
        .unwrap();
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .build()
            .unwrap(),
    );
    health
        .register_breaker("payments-breaker", breaker.clone(), Status::Degraded)
        .unwrap();

    let start = Instant::now();
    let r = health.check_now();
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "the hanging check did not delay the round: {took:?}"
    );
    assert_eq!(r.status, Status::Unhealthy, "{r:#?}");
    let by = |n: &str| r.checks.iter().find(|c| c.name == n).unwrap().clone();
    let db = by("database");
    assert_eq!(db.status, Status::Unhealthy);
    assert_eq!(db.latency, Duration::from_millis(100));
    assert!(db.error.unwrap().contains("timed out"));
    assert_eq!(by("cache").status, Status::Degraded);
    assert_eq!(by("cache").error.as_deref(), Some("connection refused"));
    assert_eq!(by("config").status, Status::Healthy);
    assert_eq!(by("payments-breaker").status, Status::Healthy);

    // Still hanging next round: reported without being started again.
    breaker.try_acquire().unwrap().failure();
    let r = health.check_now();
    let db = r.checks.iter().find(|c| c.name == "database").unwrap();
    assert!(
        db.error.as_ref().unwrap().contains("still hanging"),
        "{db:?}"
    );
    let b = r
        .checks
        .iter()
        .find(|c| c.name == "payments-breaker")
        .unwrap();
    assert_eq!(b.status, Status::Degraded);
    assert!(b.error.as_ref().unwrap().contains("open"));

    // Released: the database recovers; the cache and the breaker keep the
    // aggregate at Degraded.
    hang.store(false, Ordering::SeqCst);
    let t = Instant::now();
    loop {
        let r = health.check_now();
        if r.checks[0].status == Status::Healthy {
            assert_eq!(r.status, Status::Degraded);
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        *health.report(),
        *health.report(),
        "reading is a load of the last report"
    );
}

#[test]
fn the_background_thread_runs_rounds_and_a_panicking_check_is_a_failure() {
    let health = HealthRegistry::builder()
        .interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r2 = ran.clone();
    health
        .register("flag", false, Duration::from_secs(1), move || {
            r2.store(true, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    health
        .register("buggy", false, Duration::from_secs(1), || {
            panic!("check bug")
        })
        .unwrap();
    let t = Instant::now();
    while health.report().round < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no background rounds"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(ran.load(Ordering::SeqCst));
    let r = health.report();
    let buggy = r.checks.iter().find(|c| c.name == "buggy").unwrap();
    assert_eq!(buggy.status, Status::Degraded);
    assert_eq!(buggy.error.as_deref(), Some("the check panicked"));
}

#[test]
fn invalid_registrations_name_the_field() {
    let health = registry();
    health
        .register("a", true, Duration::from_secs(1), || Ok(()))
        .unwrap();
    let dup = health.register("a", true, Duration::from_secs(1), || Ok(()));
    assert_eq!(dup.unwrap_err().field(), "name");
    let e = health.register("b", true, Duration::ZERO, || Ok(()));
    assert_eq!(e.unwrap_err().field(), "timeout");
    let breaker = Arc::new(CircuitBreaker::builder().build().unwrap());
    let e = health.register_breaker("c", breaker, Status::Healthy);
    assert_eq!(e.unwrap_err().field(), "when_open");
    assert_eq!(
        HealthRegistry::builder()
            .interval(Duration::ZERO)
            .build()
            .unwrap_err()
            .field(),
        "interval"
    );
    assert_eq!(
        HealthRegistry::builder()
            .max_parallel(0)
            .build()
            .unwrap_err()
            .field(),
        "max_parallel"
    );
}

#[test]
fn watchdog_findings_feed_health() {
    let dog = Arc::new(
        crate::watchdog::Watchdog::builder()
            .tick(Duration::from_millis(10))
            .no_thread_leak_check()
            .on_finding(|_| {})
            .build()
            .unwrap(),
    );
    let health = registry();
    health
        .register_watchdog("watchdog", dog.clone(), Status::Degraded)
        .unwrap();
    assert_eq!(health.check_now().status, Status::Healthy);
    let hb = dog.heartbeat("worker", Duration::from_millis(20)).unwrap();
    let t = Instant::now();
    loop {
        let r = health.check_now();
        if r.status == Status::Degraded {
            assert!(
                r.checks[0].error.as_ref().unwrap().contains("worker"),
                "{r:?}"
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the stall never showed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(hb);
    let t = Instant::now();
    while health.check_now().status != Status::Healthy {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the stall never cleared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let e = health.register_watchdog("again", dog, Status::Healthy);
    assert_eq!(e.unwrap_err().field(), "when_found");
}
