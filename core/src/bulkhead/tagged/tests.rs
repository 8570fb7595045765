//! The tagged permit word and ledger: steps, helping, settling a dead
//! holder's permits, step numbers past their wrap, against a plain model
//! and under threads. loom models: `loom_models.rs`.

use super::*;
use crate::sync::AtomicU64;
use proptest::prelude::*;

struct Block {
    word: AtomicU64,
    ledger: Vec<AtomicU64>,
}

impl Block {
    fn new(max: u32) -> Self {
        Block {
            word: AtomicU64::new(full(max)),
            ledger: (0..THREADS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
    fn view(&self) -> Tagged<'_> {
        Tagged {
            word: &self.word,
            ledger: &self.ledger,
        }
    }
    fn available(&self) -> i64 {
        available(self.word.load(Relaxed))
    }
    fn entry(&self, i: usize) -> i64 {
        held(self.ledger[i].load(Relaxed))
    }
}

#[test]
fn takes_and_gives_back_count_in_the_word_and_the_ledger() {
    let b = Block::new(3);
    let t = b.view();
    assert_eq!(t.take(0, Some(0)), Some(3));
    assert_eq!(t.take(5, Some(0)), Some(2));
    assert_eq!(t.take(5, Some(0)), Some(1));
    assert_eq!(t.take(0, Some(0)), None, "limit 3 reached");
    assert_eq!((b.available(), b.entry(0), b.entry(5)), (0, 1, 2));
    t.give_back(5);
    // a permit taken on index 0 given back on index 1000
    t.give_back(1000);
    assert_eq!(
        (b.available(), b.entry(0), b.entry(5), b.entry(1000)),
        (2, 1, 1, -1)
    );
}

#[test]
fn the_floor_keeps_the_reserve_and_none_forces() {
    let b = Block::new(2);
    let t = b.view();
    assert_eq!(t.take(0, Some(1)), Some(2));
    assert_eq!(t.take(0, Some(1)), None, "one kept for critical callers");
    assert_eq!(t.take(0, Some(0)), Some(1));
    assert_eq!(t.take(0, None), Some(0), "forced");
    assert_eq!(b.available(), -1);
}

#[test]
fn a_take_whose_maker_died_is_written_by_the_next_step() {
    let b = Block::new(4);
    let t = b.view();
    t.take(3, Some(0));
    t.take_and_die(7);
    assert_eq!((b.available(), b.entry(7)), (2, 0), "the entry missed it");
    t.take(3, Some(0)); // helps first
    assert_eq!((b.available(), b.entry(7), b.entry(3)), (1, 1, 2));
}

#[test]
fn the_reaper_finds_a_dead_makers_last_step_in_the_word() {
    let b = Block::new(4);
    let t = b.view();
    t.take(7, Some(0));
    t.take_and_die(7);
    assert_eq!(t.held_by(7), 2);
    assert_eq!(settle(&t, &[7]), 2);
    assert_eq!((b.available(), b.entry(7)), (4, 0));
}

#[test]
fn settling_pays_debts_before_holdings_and_never_rises_above_the_limit() {
    let b = Block::new(2);
    let t = b.view();
    t.take(0, Some(0)); // a permit of the dead process, moved ...
    t.give_back(1); // ... and given back on its other thread
    t.take(2, Some(0)); // a live process's permit
    t.take(0, Some(0)); // the dead process holds one more
    assert_eq!(b.available(), 0);
    assert_eq!(settle(&t, &[0, 1]), 1);
    assert_eq!(
        (b.available(), b.entry(0), b.entry(1), b.entry(2)),
        (1, 0, 0, 1)
    );
}

#[test]
fn a_give_back_clears_the_waiting_flag_and_reports_it() {
    let b = Block::new(1);
    let t = b.view();
    assert!(!t.flag_waiting(0), "a permit is free: no flag");
    t.take(0, Some(0));
    assert!(t.flag_waiting(0));
    assert!(t.flag_waiting(0), "already set");
    let before = t.give_back(0);
    assert_ne!(before & WAITING, 0);
    assert_eq!(t.load() & WAITING, 0);
    assert_eq!(t.give_back(0) & WAITING, 0, "cleared");
}

#[test]
fn step_numbers_wrap_in_the_word_and_the_entry() {
    for start in [
        (1u64 << 30) - 2,
        (1 << 30) - 1,
        1 << 30,
        u32::MAX as u64 - 1,
        u32::MAX as u64,
    ] {
        let b = Block::new(2);
        b.ledger[9].store(start << 32, Relaxed);
        let t = b.view();
        for _ in 0..3 {
            t.take(9, Some(0));
            t.give_back(9);
        }
        t.take_and_die(9);
        t.take(4, Some(0));
        assert_eq!((b.entry(9), b.available()), (1, 0), "start {start}");
        assert_eq!(settle(&t, &[9]), 1);
        assert_eq!(b.available(), 1);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Take(usize, bool),
    Give(usize),
    TakeAndDie(usize),
    Settle(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let index = 0usize..4;
    prop_oneof![
        4 => (index.clone(), any::<bool>()).prop_map(|(i, c)| Op::Take(i, c)),
        4 => index.clone().prop_map(Op::Give),
        1 => index.clone().prop_map(Op::TakeAndDie),
        1 => index.prop_map(Op::Settle),
    ]
}

proptest! {
    /// Against a plain model: available = limit − what the entries hold,
    /// every step as the model says, a dead maker's step counted.
    #[test]
    fn the_word_and_ledger_match_a_plain_model(
        max in 1u32..5,
        reserve in 0u32..2,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let reserve = reserve.min(max - 1) as i64;
        let b = Block::new(max);
        let t = b.view();
        let mut avail = max as i64;
        let mut held = [0i64; 4];
        for op in ops {
            match op {
                Op::Take(i, critical) => {
                    let floor = if critical { 0 } else { reserve };
                    let got = t.take(i, Some(floor));
                    prop_assert_eq!(got.is_some(), avail > floor);
                    if got.is_some() {
                        avail -= 1;
                        held[i] += 1;
                    }
                }
                Op::Give(i) => {
                    if avail < max as i64 {
                        t.give_back(i);
                        avail += 1;
                        held[i] -= 1;
                    }
                }
                Op::TakeAndDie(i) => {
                    if avail > 0 {
                        t.take_and_die(i);
                        avail -= 1;
                        held[i] += 1;
                        // the dead index is settled before anyone uses it
                        prop_assert_eq!(t.held_by(i), held[i]);
                        let net = settle(&t, &[i]);
                        prop_assert_eq!(net, held[i]);
                        avail += held[i];
                        held[i] = 0;
                    }
                }
                Op::Settle(i) => {
                    prop_assert_eq!(settle(&t, &[i]), held[i]);
                    avail += held[i];
                    held[i] = 0;
                }
            }
            prop_assert_eq!(b.available(), avail);
            for (i, h) in held.iter().enumerate() {
                prop_assert_eq!(t.held_by(i), *h);
            }
            prop_assert_eq!(avail + held.iter().sum::<i64>(), max as i64);
        }
    }
}

/// Eight threads, each its own index, race for three permits, with an
/// independent count of the holders; some "die" after their CAS. At the
/// end the dead indices are settled and every permit is back.
#[test]
fn threads_never_hold_more_than_the_limit_and_dead_steps_are_found() {
    use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
    let b = Block::new(3);
    let inside = AtomicI64::new(0);
    let dead: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|k| {
                let (b, inside) = (&b, &inside);
                s.spawn(move || {
                    let t = b.view();
                    let mut dead = Vec::new();
                    for n in 0..20_000 {
                        let me = k * 100 + dead.len();
                        if n % 5_000 == 4_999 {
                            if t.take(me, Some(0)).is_some() {
                                t.give_back(me); // put it back, then die holding one
                            }
                            // die holding a permit only when one is free
                            if t.take(me, Some(0)).is_some() {
                                t.give_back(me);
                                if t.take(me, Some(0)).is_some() {
                                    dead.push(me);
                                    continue; // this index is never used again
                                }
                            }
                            continue;
                        }
                        if t.take(me, Some(0)).is_some() {
                            let n = inside.fetch_add(1, SeqCst) + 1;
                            assert!(n <= 3, "{n} holders");
                            inside.fetch_sub(1, SeqCst);
                            t.give_back(me);
                        }
                    }
                    dead
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let t = b.view();
    let held: i64 = dead.iter().map(|&i| t.held_by(i)).sum();
    assert_eq!(held, dead.len() as i64);
    assert_eq!(b.available(), 3 - held);
    assert_eq!(settle(&t, &dead), held);
    assert_eq!(b.available(), 3);
    let total: i64 = (0..THREADS).map(|i| b.entry(i)).sum();
    assert_eq!(total, 0);
}
