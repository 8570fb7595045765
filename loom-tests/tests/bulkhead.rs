//! loom models of the bulkhead's permit counter and its wait/wake protocol.
//!
//! Run with `RUSTFLAGS="--cfg failwell_loom" LOOM_MAX_PREEMPTIONS=2 cargo
//! test -p failwell-loom-tests --release`.
#![cfg(failwell_loom)]

use failwell::bulkhead::{Bulkhead, Priority};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// Three callers race for two permits: at most two are ever out, and every
/// permit comes back.
#[test]
fn never_over_admits_and_never_loses_a_permit() {
    loom::model(|| {
        let b = Arc::new(Bulkhead::builder().max_concurrent(2).build().unwrap());
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (b, inside) = (b.clone(), inside.clone());
                thread::spawn(move || {
                    if let Ok(p) = b.try_acquire() {
                        let n = inside.fetch_add(1, SeqCst) + 1;
                        assert!(n <= 2, "{n} permits out with a limit of 2");
                        inside.fetch_sub(1, SeqCst);
                        drop(p);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = b.snapshot();
        assert_eq!((s.in_use, s.available, s.waiting), (0, 2, 0));
    });
}

/// A thread blocked in `acquire` is woken by a release (no lost wake-up):
/// if it were not, loom would report the model as deadlocked.
#[test]
fn a_blocked_acquire_is_woken_by_a_release() {
    loom::model(|| {
        let b = Arc::new(Bulkhead::builder().max_concurrent(1).build().unwrap());
        let held = b.try_acquire().unwrap();
        let waiter = {
            let b = b.clone();
            thread::spawn(move || {
                let _p = b.acquire(Priority::Normal);
            })
        };
        drop(held);
        waiter.join().unwrap();
        assert_eq!(b.snapshot().in_use, 0);
    });
}

/// A release into the critical reserve wakes the critical waiter even while
/// a normal caller also waits.
#[test]
fn a_release_into_the_reserve_wakes_the_critical_waiter() {
    loom::model(|| {
        let b = Arc::new(
            Bulkhead::builder()
                .max_concurrent(2)
                .critical_reserve(1)
                .build()
                .unwrap(),
        );
        let normal = b.try_acquire().unwrap();
        let reserved = b.try_acquire_with(Priority::Critical).unwrap();
        let critical = {
            let b = b.clone();
            thread::spawn(move || {
                let _p = b.acquire(Priority::Critical);
            })
        };
        drop(reserved);
        critical.join().unwrap();
        drop(normal);
        assert_eq!(b.snapshot().available, 2);
    });
}
