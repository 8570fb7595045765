//! loom models of the flow-control primitives' lock-free paths: the
//! adaptive limit's admission and the retry budget's withdrawal.
//!
//! Run with `RUSTFLAGS="--cfg failwell_loom" LOOM_MAX_PREEMPTIONS=2 cargo
//! test -p failwell-loom-tests --release`.
#![cfg(failwell_loom)]

use std::time::Duration;

use failwell::bulkhead::Priority;
use failwell::clock::ManualClock;
use failwell::retry::RetryBudget;
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

/// Two retries race for a budget that allows one: exactly one gets it.
#[test]
fn retry_budget_never_overdraws() {
    loom::model(|| {
        let clock = ManualClock::new();
        let budget = Arc::new(RetryBudget::with(0.5, 0.0, Duration::from_secs(10), clock).unwrap());
        budget.deposit();
        budget.deposit(); // 2 calls × 50% = one retry
        let granted = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (b, granted) = (budget.clone(), granted.clone());
                thread::spawn(move || {
                    if b.try_withdraw() {
                        granted.fetch_add(1, SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(granted.load(SeqCst), 1);
        assert_eq!(budget.refused(), 1);
    });
}
