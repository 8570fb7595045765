//! loom models of the outcome windows' compare-and-swap loops on their
//! own (the breaker's models in loom-tests drive them only through the
//! breaker). Built and run by `RUSTFLAGS="--cfg failwell_loom" cargo test
//! -p failwell --lib --release loom_models`.

use loom::sync::Arc;
use loom::thread;

use super::{OwnedWindow, TaggedCount, FAILED};

/// Two outcomes race for the one slot of a size-1 count window: whichever
/// wins, the totals agree with what the slot holds (one call, and a
/// failure exactly when the slot holds the failure).
#[test]
fn count_window_totals_match_the_slot() {
    loom::model(|| {
        let w = Arc::new(OwnedWindow::count(1));
        let t = {
            let w = w.clone();
            thread::spawn(move || w.c().record(0, FAILED))
        };
        w.c().record(0, 0);
        t.join().unwrap();
        let s = w.c().stats(0);
        assert_eq!(s.calls, 1);
        let slot_failed = w.tail.get()[0].load(crate::sync::Ordering::Relaxed) & FAILED;
        assert_eq!(s.failures, slot_failed, "totals follow the slot");
    });
}

/// A stale outcome (an older generation's permit) racing a current one
/// never overwrites it, and never counts in the current generation.
#[test]
fn count_window_keeps_stale_outcomes_out() {
    loom::model(|| {
        let w = Arc::new(OwnedWindow::count(1));
        let t = {
            let w = w.clone();
            thread::spawn(move || w.c().record(1, FAILED))
        };
        w.c().record(0, FAILED); // generation 0: stale once 1 is there
        t.join().unwrap();
        let s = w.c().stats(1);
        assert_eq!((s.calls, s.failures), (1, 1));
    });
}

/// Two tagged counters' adds and a clear of the same generation: the
/// count is what a sequential order gives (never a lost add).
#[test]
fn tagged_count_adds_are_never_lost() {
    loom::model(|| {
        let c = Arc::new(TaggedCount::new());
        let t = {
            let c = c.clone();
            thread::spawn(move || {
                c.add(3, 1);
            })
        };
        c.add(3, 1);
        t.join().unwrap();
        assert_eq!(c.get(3), 2);
    });
}

/// Two writers in the same epoch: both counted exactly, and the failure.
#[test]
fn time_window_counts_concurrent_writers_of_one_epoch() {
    loom::model(|| {
        // 2 buckets of 10 units; both writers at time 15 (epoch 1).
        let w = Arc::new(OwnedWindow::time(20, 2));
        let t = {
            let w = w.clone();
            thread::spawn(move || w.t().record(15, 0, FAILED))
        };
        w.t().record(15, 0, 0);
        t.join().unwrap();
        let s = w.t().stats(15, 0);
        assert_eq!((s.calls, s.failures), (2, 1));
    });
}

/// A writer of an epoch that has left the window races the sweep of a
/// newer one: its outcome may be dropped, but is never counted once out
/// of the window, and the newer writer's outcome always is.
#[test]
fn time_window_never_counts_an_outcome_out_of_the_window() {
    loom::model(|| {
        let w = Arc::new(OwnedWindow::time(20, 2));
        w.t().record(5, 0, 0); // epoch 0, published first
        let t = {
            let w = w.clone();
            thread::spawn(move || w.t().record(9, 0, FAILED)) // epoch 0 again
        };
        w.t().record(25, 0, 0); // epoch 2: epoch 0 is out of the window
        t.join().unwrap();
        let s = w.t().stats(25, 0);
        assert_eq!(s.failures, 0, "epoch 0's failure is out of the window");
        assert_eq!(s.calls, 1, "only epoch 2's call is in it");
    });
}
