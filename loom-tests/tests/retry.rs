//! loom models of the retry budget's lock-free withdrawal.
//!
//! Run with `RUSTFLAGS="--cfg failwell_loom" LOOM_MAX_PREEMPTIONS=2 cargo
//! test -p failwell-loom-tests --release`.
#![cfg(failwell_loom)]

use std::time::Duration;

use failwell::clock::ManualClock;
use failwell::retry::RetryBudget;
use loom::sync::atomic::{AtomicU64, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

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
