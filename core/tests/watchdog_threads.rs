//! Thread-count checks of the watchdog, in a process of their own so that
//! other tests' threads do not move the count. One test function runs the
//! steps in order.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use failwell::watchdog::{process_threads, FindingKind, Watchdog};

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn thread_leaks_are_reported_and_the_watchdog_leaves_no_thread_behind() {
    let Some(before) = process_threads() else {
        eprintln!("no thread count on this platform; nothing to check");
        return;
    };

    // 1. Dropping a watchdog joins its thread: the count returns to where it was.
    let dog = Watchdog::builder()
        .tick(Duration::from_millis(10))
        .no_thread_leak_check()
        .build()
        .unwrap();
    wait_until("the watchdog thread to start", || {
        process_threads() == Some(before + 1)
    });
    drop(dog);
    // Joined, so the thread has ended; the kernel may count it in
    // /proc/self/status for a moment more (it clears the thread id a
    // joiner waits on before it leaves the thread group).
    wait_until("the watchdog's thread to be gone", || {
        process_threads() == Some(before)
    });

    // 2. Threads spawned and parked past twice the baseline are a leak; the
    //    leak clears when they exit.
    let (tx, rx) = mpsc::channel();
    let dog = Watchdog::builder()
        .tick(Duration::from_millis(20))
        .thread_leak(2.0, None)
        .on_finding(move |f| {
            let _ = tx.send(f.clone());
        })
        .build()
        .unwrap();
    let baseline = before; // the watchdog's own thread is not counted
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let stop_rx = std::sync::Arc::new(std::sync::Mutex::new(stop_rx));
    let leaked: Vec<_> = (0..baseline + 2)
        .map(|_| {
            let stop_rx = stop_rx.clone();
            thread::spawn(move || {
                let _ = stop_rx.lock().unwrap().recv();
            })
        })
        .collect();
    let f = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a leak report");
    match f.kind {
        FindingKind::ThreadLeak {
            threads,
            baseline: b,
            limit,
        } => {
            assert_eq!(b, baseline);
            assert_eq!(limit, 2 * baseline);
            assert!(threads > limit);
        }
        other => panic!("expected a thread leak, got {other:?}"),
    }
    drop(stop_tx); // every parked thread's recv fails: they exit
    for t in leaked {
        t.join().unwrap();
    }
    let f = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a clearance");
    assert!(f.cleared);
    drop(dog);
    wait_until("every thread to be gone", || {
        process_threads() == Some(before)
    });

    // 3. failwell's own helper threads are never a leak: a watchdog at
    //    1.5 × a baseline of a few threads sees a health runner and a
    //    timeout pool of 16 busy workers start, and reports nothing.
    let (tx, rx) = mpsc::channel();
    let dog = Watchdog::builder()
        .tick(Duration::from_millis(10))
        .thread_leak(1.5, None)
        .on_finding(move |f| {
            let _ = tx.send(f.clone());
        })
        .build()
        .unwrap();
    let health = failwell::health::HealthRegistry::builder()
        .interval(Duration::from_millis(10))
        .build()
        .unwrap();
    health
        .register("ok", true, Duration::from_secs(1), || Ok(()))
        .unwrap();
    let pool = failwell::deadline::TimeoutPool::new(16).unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Arc::new(std::sync::Mutex::new(go_rx));
    let busy: Vec<_> = (0..16)
        .map(|_| {
            let go_rx = go_rx.clone();
            pool.start(move || {
                let _ = go_rx.lock().unwrap().recv();
            })
            .unwrap()
        })
        .collect();
    wait_until("the pool's workers to start", || {
        process_threads() >= Some(before + 18)
    });
    let ticks = dog.snapshot().ticks;
    wait_until("a few ticks", || dog.snapshot().ticks > ticks + 5);
    assert!(rx.try_recv().is_err(), "failwell's own threads are no leak");
    assert!(dog.active().is_empty());
    drop(go_tx);
    for p in busy {
        p.wait(failwell::deadline::Deadline::after(Duration::from_secs(5)))
            .unwrap();
    }
}
