//! Watchdog specifications. Time bounds are generous: these machines are
//! shared and noisy. Thread-count checks live in `tests/watchdog_threads.rs`,
//! a process of their own.

use super::*;
use std::sync::mpsc;

const TICK: Duration = Duration::from_millis(20);

fn dog() -> (Watchdog, mpsc::Receiver<Finding>) {
    let (tx, rx) = mpsc::channel();
    let dog = Watchdog::builder()
        .tick(TICK)
        .no_thread_leak_check()
        .on_finding(move |f| {
            let _ = tx.send(f.clone());
        })
        .build()
        .unwrap();
    (dog, rx)
}

fn next(rx: &mpsc::Receiver<Finding>) -> Finding {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a report within 10 s")
}

#[test]
fn a_silent_heartbeat_is_reported_then_its_recovery() {
    let (dog, rx) = dog();
    let hb = dog
        .heartbeat("consumer", Duration::from_millis(100))
        .unwrap();
    let start = Instant::now();
    let f = next(&rx);
    let waited = start.elapsed();
    assert!(!f.cleared);
    match &f.kind {
        FindingKind::Stall {
            name,
            silent_for,
            timeout,
            ..
        } => {
            assert_eq!(name, "consumer");
            assert!(*silent_for > Duration::from_millis(100));
            assert_eq!(*timeout, Duration::from_millis(100));
        }
        other => panic!("expected a stall, got {other:?}"),
    }
    // Within two ticks of the timeout (plus scheduling slack on a busy box).
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(
        waited < Duration::from_millis(100) + 2 * TICK + Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(f.key(), "stall:consumer");
    hb.beat();
    let f = next(&rx);
    assert!(f.cleared, "{f:?}");
    assert_eq!(f.key(), "stall:consumer");
    // Reported once: no repeats while nothing changes (two ticks, well
    // inside the heartbeat's 100 ms).
    hb.beat();
    assert!(rx.recv_timeout(2 * TICK).is_err());
}

#[test]
fn a_dropped_heartbeat_is_no_longer_watched() {
    let (dog, rx) = dog();
    let hb = dog
        .heartbeat("short-lived", Duration::from_millis(50))
        .unwrap();
    assert_eq!(dog.snapshot().heartbeats, 1);
    drop(hb);
    assert_eq!(dog.snapshot().heartbeats, 0);
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn a_panicking_callback_does_not_stop_later_reports() {
    let (tx, rx) = mpsc::channel();
    let dog = Watchdog::builder()
        .tick(TICK)
        .no_thread_leak_check()
        .on_finding(move |f| {
            let _ = tx.send(f.clone());
            panic!("callback bug");
        })
        .build()
        .unwrap();
    let _a = dog.heartbeat("a", Duration::from_millis(30)).unwrap();
    let first = next(&rx);
    let _b = dog.heartbeat("b", Duration::from_millis(30)).unwrap();
    let mut keys = vec![first.key()];
    while keys.len() < 2 {
        keys.push(next(&rx).key());
    }
    keys.sort();
    assert_eq!(keys, vec!["stall:a", "stall:b"]);
    // The counter moves just after the send inside the callback.
    let t = Instant::now();
    while dog.snapshot().callback_panics < 2 {
        assert!(t.elapsed() < Duration::from_secs(10), "panics not counted");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_gauge_above_its_growth_is_a_leak_until_it_falls_back() {
    let (dog, rx) = dog();
    let value = Arc::new(AtomicU64::new(10));
    let v = Arc::clone(&value);
    let _g = dog.gauge(
        "connections",
        Growth::new("connections", 10, 2.0, Some(100)).unwrap(),
        move || v.load(Relaxed),
    );
    value.store(21, Relaxed);
    let f = next(&rx);
    assert_eq!(
        f.kind,
        FindingKind::GaugeLeak {
            name: "connections".into(),
            value: 21,
            baseline: 10,
            limit: 20
        }
    );
    value.store(15, Relaxed);
    let f = next(&rx);
    assert!(f.cleared);
}

#[test]
fn abandoned_timed_calls_are_watched() {
    let (dog, rx) = dog();
    let pool = TimeoutPool::new(4).unwrap();
    let _g = dog.watch_pool("db-pool", pool.clone(), 0);
    let (release, gate) = mpsc::channel::<()>();
    let r = pool.run(
        crate::deadline::Deadline::after(Duration::from_millis(10)),
        move || {
            let _ = gate.recv();
        },
    );
    assert!(r.is_err());
    let f = next(&rx);
    assert!(
        matches!(f.kind, FindingKind::GaugeLeak { ref name, value: 1, .. } if name == "db-pool"),
        "{f:?}"
    );
    release.send(()).unwrap();
    assert!(next(&rx).cleared);
}

#[test]
fn growth_limits_take_the_lower_of_factor_and_ceiling() {
    let g = Growth::new("x", 10, 2.0, Some(15)).unwrap();
    assert_eq!(g.limit(), 15);
    assert_eq!(g.exceeded_by(15), None);
    assert_eq!(g.exceeded_by(16), Some(15));
    assert_eq!(Growth::new("x", 10, 2.0, None).unwrap().limit(), 20);
    assert_eq!(Growth::ceiling_only(3).limit(), 3);
    assert_eq!(Growth::new("x", 10, 1.0, None).unwrap_err().field(), "x");
    assert_eq!(
        Growth::new("x", 10, f64::NAN, None).unwrap_err().field(),
        "x"
    );
}

#[test]
fn invalid_configuration_names_the_field() {
    let e = Watchdog::builder()
        .tick(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "tick");
    let e = Watchdog::builder()
        .thread_leak(0.5, None)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "thread_leak");
    if !cfg!(feature = "deadlock-detection") {
        let e = Watchdog::builder()
            .deadlock_detection(true)
            .build()
            .unwrap_err();
        assert_eq!(e.field(), "deadlock_detection");
    }
}

#[test]
fn the_thread_count_is_read_on_linux() {
    if cfg!(target_os = "linux") {
        assert!(process_threads().unwrap() >= 1);
    }
}

#[test]
fn a_heartbeat_of_zero_timeout_is_refused_naming_it() {
    let dog = Watchdog::builder().no_thread_leak_check().build().unwrap();
    let e = dog.heartbeat("never-met", Duration::ZERO).unwrap_err();
    assert_eq!(e.field(), "timeout");
    assert_eq!(dog.snapshot().heartbeats, 0, "nothing was registered");
    assert!(dog.heartbeat("met", Duration::from_nanos(1)).is_ok());
}
