//! loom models of the tagged permit word and ledger. Built and run by
//! `RUSTFLAGS="--cfg failwell_loom" cargo test -p failwell --lib --release
//! loom_models`.

use loom::sync::Arc;
use loom::thread;

use super::*;

struct Block {
    word: AtomicU64,
    ledger: Vec<AtomicU64>,
}

fn block(max: u32, indices: usize) -> Arc<Block> {
    Arc::new(Block {
        word: AtomicU64::new(full(max)),
        ledger: (0..indices).map(|_| AtomicU64::new(0)).collect(),
    })
}

impl Block {
    fn view(&self) -> Tagged<'_> {
        Tagged {
            word: &self.word,
            ledger: &self.ledger,
        }
    }
}

/// Two indices racing for one permit: at most one holds it, and after
/// both are done the word and the entries agree.
#[test]
fn tagged_steps_never_over_admit_and_keep_the_ledger_exact() {
    loom::model(|| {
        let b = block(1, 2);
        let other = {
            let b = b.clone();
            thread::spawn(move || {
                let t = b.view();
                let got = t.take(1, Some(0)).is_some();
                if got {
                    t.give_back(1);
                }
                got
            })
        };
        let t = b.view();
        let mine = t.take(0, Some(0)).is_some();
        if mine {
            t.give_back(0);
        }
        other.join().unwrap();
        let _ = mine;
        assert_eq!(available(t.load()), 1);
        assert_eq!((t.held_by(0), t.held_by(1)), (0, 0));
    });
}

/// A holder dies between the permit word's CAS and its entry while
/// another index steps: the other's help or the reaper's settling finds
/// the dead step, and every permit comes back exactly once.
#[test]
fn tagged_a_dead_takers_permit_is_found_and_given_back_once() {
    loom::model(|| {
        let b = block(2, 2);
        let dying = {
            let b = b.clone();
            thread::spawn(move || b.view().take_and_die(0))
        };
        let t = b.view();
        if t.take(1, Some(0)).is_some() {
            t.give_back(1);
        }
        dying.join().unwrap();
        assert_eq!(settle(&t, &[0]), 1);
        assert_eq!(available(t.load()), 2);
        assert_eq!((t.held_by(0), t.held_by(1)), (0, 0));
    });
}

/// A helper and the owner race to write the owner's step: it is written
/// once.
#[test]
fn tagged_a_helper_and_the_owner_write_a_step_once() {
    loom::model(|| {
        let b = block(3, 2);
        let owner = {
            let b = b.clone();
            thread::spawn(move || {
                let t = b.view();
                t.take(0, Some(0));
                t.take(0, Some(0));
            })
        };
        b.view().take(1, Some(0));
        owner.join().unwrap();
        let t = b.view();
        assert_eq!((t.held_by(0), t.held_by(1)), (2, 1));
        assert_eq!(available(t.load()), 0);
    });
}

/// A waiter's flag races a give-back: either the waiter sees the permit,
/// or the give-back sees the flag (and would wake it).
#[test]
fn tagged_a_waiting_flag_is_never_missed_by_a_give_back() {
    loom::model(|| {
        let b = block(1, 2);
        b.view().take(0, Some(0));
        let releaser = {
            let b = b.clone();
            thread::spawn(move || b.view().give_back(0) & WAITING != 0)
        };
        let sleeps = b.view().flag_waiting(0);
        let woken = releaser.join().unwrap();
        assert!(!sleeps || woken, "flagged, slept, and no give-back saw it");
    });
}
