//! A real deadlock, found by the watchdog (feature `deadlock-detection`):
//! two threads lock two `failwell::lock::Mutex` in opposite order.
#![cfg(feature = "deadlock-detection")]

use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use failwell::lock::Mutex;
use failwell::watchdog::{FindingKind, Watchdog};

#[test]
fn a_lock_cycle_is_reported_within_three_ticks() {
    let tick = Duration::from_millis(100);
    let (tx, rx) = mpsc::channel();
    let _dog = Watchdog::builder()
        .tick(tick)
        .no_thread_leak_check()
        .deadlock_detection(true)
        .on_finding(move |f| {
            let _ = tx.send(f.clone());
        })
        .build()
        .unwrap();
    let a = Arc::new(Mutex::new(0));
    let b = Arc::new(Mutex::new(0));
    let both_hold_one = Arc::new(Barrier::new(2));
    for first_a in [true, false] {
        let (a, b, barrier) = (a.clone(), b.clone(), both_hold_one.clone());
        // Deliberately deadlocked; the threads are left behind and end with
        // the test process.
        thread::spawn(move || {
            let (x, y) = if first_a { (&a, &b) } else { (&b, &a) };
            let _gx = x.lock();
            barrier.wait();
            let _gy = y.lock();
        });
    }
    let start = Instant::now();
    let f = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a deadlock report");
    let FindingKind::Deadlock { threads } = &f.kind else {
        panic!("expected a deadlock, got {f:?}");
    };
    assert_eq!(threads.len(), 2, "{f}");
    // Three ticks from when both threads block (plus slack for a busy box).
    assert!(
        start.elapsed() < 3 * tick + Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
