//! Tests of `state`.

use super::*;

#[test]
fn fields_round_trip_without_touching_each_other() {
    let w = Word::new(State::HalfOpen, GEN_MASK);
    assert_eq!(w.state(), State::HalfOpen);
    assert_eq!(w.gen(), HALF_GEN_MASK);
    let mut v = w;
    for _ in 0..MAX_HALF_OPEN_CALLS {
        v = v.with_issued_plus_one();
    }
    v = v.with_outcome(true, true).with_outcome(false, false);
    assert_eq!(v.issued(), MAX_HALF_OPEN_CALLS);
    assert_eq!((v.successes(), v.failures(), v.slow()), (1, 1, 1));
    assert_eq!(v.gen(), HALF_GEN_MASK);
    assert_eq!(v.state(), State::HalfOpen);
    assert_eq!(v.epoch(), w.epoch());
    assert_eq!(v.with_issued_minus_one().issued(), MAX_HALF_OPEN_CALLS - 1);
}

#[test]
fn every_state_but_half_open_keeps_the_full_generation() {
    for state in [
        State::Closed,
        State::Open,
        State::ForcedOpen,
        State::Disabled,
        State::MetricsOnly,
    ] {
        for gen in [0, 1, HALF_GEN_MASK + 1, GEN_MASK] {
            let w = Word::new(state, gen);
            assert_eq!((w.state(), w.gen(), w.epoch()), (state, gen, w.0));
            let id = Ident::new(state, gen);
            assert_eq!((id.state(), id.gen(), id.word()), (state, gen, w));
        }
    }
    let id = Ident::new(State::HalfOpen, GEN_MASK);
    assert_eq!((id.state(), id.gen()), (State::HalfOpen, GEN_MASK));
}

#[test]
fn generation_comparison_survives_wrap_around() {
    assert!(gen_newer(1, 0, GEN_MASK));
    assert!(gen_newer(0, GEN_MASK, GEN_MASK));
    assert!(!gen_newer(GEN_MASK, 0, GEN_MASK));
    assert!(!gen_newer(5, 5, GEN_MASK));
}
