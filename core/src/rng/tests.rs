//! Tests of `rng`.

use super::*;

#[test]
fn same_seed_same_sequence() {
    let (a, b) = (SharedRng::new(7), SharedRng::new(7));
    for _ in 0..100 {
        assert_eq!(a.next_u64(), b.next_u64());
    }
    assert_ne!(SharedRng::new(8).next_u64(), SharedRng::new(7).next_u64());
}

#[test]
fn floats_are_uniform_in_the_unit_interval() {
    let r = SharedRng::new(1);
    let n = 100_000;
    let mut sum = 0.0;
    for _ in 0..n {
        let x = r.next_f64();
        assert!((0.0..1.0).contains(&x));
        sum += x;
    }
    let mean = sum / n as f64;
    assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
}
