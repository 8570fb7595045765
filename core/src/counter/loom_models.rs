//! loom models of the striped counter and the sliding count's loops.
//! Built and run by `RUSTFLAGS="--cfg failwell_loom" cargo test -p
//! failwell --lib --release loom_models`.

use loom::sync::Arc;
use loom::thread;

use super::{SlidingCount, StripedCounter};

/// Adds from two threads are all in the sum.
#[test]
fn striped_counter_loses_no_add() {
    loom::model(|| {
        let c = Arc::new(StripedCounter::new());
        let t = {
            let c = c.clone();
            thread::spawn(move || c.add(2))
        };
        c.add(3);
        t.join().unwrap();
        assert_eq!(c.sum(), 5);
    });
}

/// Two `add_if` racing for the last unit under a cap of one: exactly one
/// gets it (the retry budget's and throttler's withdrawal rule).
#[test]
fn sliding_count_add_if_never_exceeds_its_cap() {
    loom::model(|| {
        let c = Arc::new(SlidingCount::new());
        let t = {
            let c = c.clone();
            thread::spawn(move || c.add_if(7, |n| n < 1))
        };
        let mine = c.add_if(7, |n| n < 1);
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one add under the cap");
        assert_eq!(c.at(7), 1);
    });
}

/// An add in a new epoch racing one in the old: the new epoch's count is
/// exact, the old one's word restarted by it.
#[test]
fn sliding_count_moves_to_a_new_epoch_without_losing_its_adds() {
    loom::model(|| {
        let c = Arc::new(SlidingCount::new());
        c.add(4);
        let t = {
            let c = c.clone();
            thread::spawn(move || c.add(6))
        };
        c.add(6);
        t.join().unwrap();
        assert_eq!(c.at(6), 2);
        assert_eq!(c.at(4), 0, "epoch 6 took epoch 4's word");
    });
}
