//! loom models of the adaptive limit's lock-free admission (and, below,
//! the SRE throttler's counters).
//!
//! Run with `RUSTFLAGS="--cfg failwell_loom" LOOM_MAX_PREEMPTIONS=2 cargo
//! test -p failwell-loom-tests --release`.
#![cfg(failwell_loom)]

use std::time::Duration;

use failwell::bulkhead::Priority;
use failwell::clock::ManualClock;
use failwell::shed::{Algorithm, Builder};
use loom::sync::atomic::{AtomicU64, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// Three callers against a limit of 2: at most two permits out, and every
/// permit (reported or not) comes back.
#[test]
fn adaptive_limit_never_over_admits() {
    loom::model(|| {
        let l = Arc::new(
            Builder::with_clock(ManualClock::new())
                .algorithm(Algorithm::gradient())
                .limits(2, 2)
                .initial_limit(2)
                .critical_fraction(0.0)
                .build()
                .unwrap(),
        );
        let inside = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let (l, inside) = (l.clone(), inside.clone());
                thread::spawn(move || {
                    if let Ok(p) = l.try_acquire(Priority::Normal) {
                        let n = inside.fetch_add(1, SeqCst) + 1;
                        assert!(n <= 2, "{n} permits out with a limit of 2");
                        inside.fetch_sub(1, SeqCst);
                        if i == 0 {
                            drop(p);
                        } else {
                            p.success_with_latency(Duration::from_millis(1));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(l.snapshot().in_flight, 0);
    });
}

/// The SRE throttler under two threads: every request is counted (sent or
/// throttled, never both, never neither), and with a seed fixing the draws
/// the local rejection probability stays within [0, 1) as the counts race.
#[test]
fn throttler_counts_every_request_once() {
    loom::model(|| {
        let clock = ManualClock::new();
        let t = Arc::new(
            failwell::shed::Throttler::with(1.0, Duration::from_secs(60), clock, Some(7)).unwrap(),
        );
        let sent = Arc::new(AtomicU64::new(0));
        let h = {
            let (t, sent) = (t.clone(), sent.clone());
            thread::spawn(move || {
                if t.try_send().is_ok() {
                    sent.fetch_add(1, SeqCst);
                    // The backend refused it: no `accepted()`.
                }
            })
        };
        if t.try_send().is_ok() {
            sent.fetch_add(1, SeqCst);
            t.accepted();
        }
        h.join().unwrap();
        assert_eq!(sent.load(SeqCst) + t.throttled(), 2);
        let p = t.rejection_probability();
        assert!((0.0..1.0).contains(&p), "{p}");
    });
}
