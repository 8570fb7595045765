//! loom model of the rate limiter's compare-and-swap loop.
//!
//! Run with `RUSTFLAGS="--cfg failwell_loom" LOOM_MAX_PREEMPTIONS=2 cargo
//! test -p failwell-loom-tests --release`.
#![cfg(failwell_loom)]

use std::time::Duration;

use failwell::clock::ManualClock;
use failwell::rate_limit::Builder;
use loom::sync::atomic::{AtomicU64, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// Three callers at the same instant against a burst of 2: exactly two are
/// admitted, whatever the interleaving; a caller after a refill of one
/// interval gets exactly one more.
#[test]
fn concurrent_callers_never_exceed_burst_plus_rate() {
    loom::model(|| {
        let clock = ManualClock::new();
        let l = Arc::new(
            Builder::with_clock(clock.clone())
                .rate(1, Duration::from_millis(10))
                .burst(2)
                .build()
                .unwrap(),
        );
        let admitted = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (l, admitted) = (l.clone(), admitted.clone());
                thread::spawn(move || {
                    if l.try_acquire().is_ok() {
                        admitted.fetch_add(1, SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(admitted.load(SeqCst), 2);
        clock.advance(Duration::from_millis(10));
        assert!(l.try_acquire().is_ok());
        assert!(l.try_acquire().is_err());
        let s = l.snapshot();
        assert_eq!((s.admitted, s.rejected), (3, 2));
    });
}

/// A reconfiguration racing a decision: the decision sees the old
/// configuration or the new one, never the old interval with the new limit
/// (which would call a request of cost 10 larger than the burst) nor the
/// new interval with the old limit.
#[test]
fn a_decision_never_mixes_two_configurations() {
    loom::model(|| {
        let clock = ManualClock::new();
        let l = Arc::new(
            Builder::with_clock(clock)
                .rate(1, Duration::from_secs(1))
                .burst(10)
                .build()
                .unwrap(),
        );
        let writer = {
            let l = l.clone();
            thread::spawn(move || {
                l.reconfigure(|b| b.rate(1000, Duration::from_secs(1)).burst(10))
                    .unwrap();
            })
        };
        let r = l.try_acquire_n(10);
        assert!(
            r.is_ok(),
            "a full bucket admits its burst under either: {r:?}"
        );
        writer.join().unwrap();
        let s = l.snapshot();
        assert_eq!((s.interval, s.burst), (Duration::from_millis(1), 10));
    });
}
