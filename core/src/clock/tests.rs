//! Tests of `clock`.

use super::*;

#[test]
fn monotonic_clock_never_goes_back() {
    let c = MonotonicClock;
    let mut last = c.now();
    for _ in 0..10_000 {
        let n = c.now();
        assert!(n >= last);
        last = n;
    }
}

#[test]
fn coarse_reading_is_on_the_same_timeline() {
    let c = MonotonicClock;
    let fine = c.now();
    let coarse = c.now_coarse();
    // Coarse may lag by its resolution (a few ms) but is the same clock.
    assert!(coarse <= c.now());
    assert!(fine.abs_diff(coarse) < 1_000_000_000);
}

#[test]
fn manual_clock_moves_only_when_told() {
    let c = ManualClock::new();
    let t0 = c.now();
    assert_eq!(c.now(), t0);
    c.advance(Duration::from_millis(3));
    assert_eq!(c.now(), t0 + 3_000_000);
    let shared = c.clone();
    shared.advance(Duration::from_nanos(1));
    assert_eq!(c.now(), t0 + 3_000_001);
    assert!(!c.set(t0), "a manual clock does not go back");
    assert_eq!(c.now(), t0 + 3_000_001);
    c.sleep(Duration::from_secs(2));
    assert_eq!(c.now(), t0 + 2_003_000_001, "a virtual sleep moves time");
}

#[test]
fn real_sleep_waits_at_least_as_asked() {
    let c = MonotonicClock;
    let t = c.now();
    c.sleep(Duration::from_millis(2));
    assert!(c.now() - t >= 2_000_000);
}
