//! The rule's functions on their own, each against a plain reference:
//! exact integer arithmetic and enumeration of every way the remaining
//! probes could end. Thresholds are dyadic fractions, which `f64` holds
//! exactly, so the reference compares exactly too.

use super::super::rule;
use super::*;
use proptest::prelude::*;

const THRESHOLDS: [(u64, u64); 6] = [(1, 8), (1, 4), (1, 2), (5, 8), (3, 4), (1, 1)];

fn threshold() -> impl Strategy<Value = Option<(u64, u64)>> {
    prop_oneof![
        Just(None),
        (0..THRESHOLDS.len()).prop_map(|i| Some(THRESHOLDS[i]))
    ]
}

fn as_f64(t: Option<(u64, u64)>) -> Option<f64> {
    t.map(|(n, d)| n as f64 / d as f64)
}

/// `count / total ≥ num / den`, exactly.
fn reaches(count: u64, total: u64, t: Option<(u64, u64)>) -> bool {
    t.is_some_and(|(n, d)| count * d >= n * total)
}

/// The reference verdict: open once *every* way the remaining probes can
/// end reopens; closed once every probe has reported; else undecided.
fn reference_verdict(
    s: u32,
    f: u32,
    slow: u32,
    probes: u32,
    rate_policy: bool,
    fr: Option<(u64, u64)>,
    sr: Option<(u64, u64)>,
) -> Option<State> {
    let reported = s + f;
    let final_open = |f_end: u32, slow_end: u32| {
        if rate_policy {
            reaches(f_end as u64, probes as u64, fr) || reaches(slow_end as u64, probes as u64, sr)
        } else {
            f_end > 0
        }
    };
    let left = probes.saturating_sub(reported);
    // Every ending: `extra_f` of the remaining fail, `extra_slow` are slow.
    let always_open = (0..=left)
        .all(|extra_f| (0..=left).all(|extra_slow| final_open(f + extra_f, slow + extra_slow)));
    if always_open {
        Some(State::Open)
    } else if reported >= probes {
        Some(State::Closed)
    } else {
        None
    }
}

proptest! {
    #[test]
    fn half_open_verdict_matches_enumeration(
        probes in 1u32..7,
        s in 0u32..7,
        f in 0u32..7,
        slow_pick in 0u32..7,
        rate_policy: bool,
        fr in threshold(),
        sr in threshold(),
    ) {
        prop_assume!(s + f <= probes);
        let slow = slow_pick.min(s + f);
        let (fr, sr) = if rate_policy { (fr, sr) } else { (None, None) };
        prop_assert_eq!(
            rule::half_open_verdict(s, f, slow, probes, rate_policy, as_f64(fr), as_f64(sr)),
            reference_verdict(s, f, slow, probes, rate_policy, fr, sr)
        );
    }

    #[test]
    fn rates_trip_is_exact(
        calls in 0u64..500,
        f_pick in 0u64..500,
        slow_pick in 0u64..500,
        minimum in 0u64..200,
        fr in threshold(),
        sr in threshold(),
    ) {
        let (failures, slow) = (f_pick.min(calls), slow_pick.min(calls));
        let expect = calls >= minimum && (reaches(failures, calls, fr) || reaches(slow, calls, sr));
        prop_assert_eq!(rule::rates_trip(calls, failures, slow, minimum, as_f64(fr), as_f64(sr)), expect);
    }

    #[test]
    fn open_duration_grows_by_the_multiplier_up_to_the_bound(
        open_for in 1u64..1_000_000,
        multiplier in prop_oneof![Just(1u64), Just(2), Just(3)],
        extra in 0u64..10_000_000_000,
        trips in 0u32..20,
    ) {
        let max = open_for + extra;
        let mut expect = open_for as u128;
        for _ in 1..trips.max(1) {
            expect *= multiplier as u128;
        }
        let expect = expect.min(max as u128) as u64;
        prop_assert_eq!(rule::open_duration(open_for, multiplier as f64, max, trips), expect);
    }

    #[test]
    fn busy_hint_is_the_running_time_within_its_bounds(
        since in 0u64..u64::MAX,
        running in 0u64..u64::MAX,
        max_wait in 0u64..u64::MAX,
    ) {
        let now = since.saturating_add(running);
        let limit = since.saturating_add(max_wait);
        match rule::busy_half_open_hint(since, now, max_wait) {
            None => prop_assert!(now >= limit),
            Some(h) => {
                prop_assert!(now < limit);
                let h = h.as_nanos() as u64;
                prop_assert!(h <= limit - now, "never past the bound");
                prop_assert!(h >= (limit - now).min(1_000_000), "at least 1 ms unless the bound is nearer");
                prop_assert_eq!(h, (now - since).max(1_000_000).min(limit - now));
            }
        }
    }
}

#[test]
fn trips_grow_only_when_reopening_from_half_open() {
    assert_eq!(rule::trips_after(State::HalfOpen, 3), 4);
    assert_eq!(rule::trips_after(State::HalfOpen, u32::MAX), u32::MAX);
    for s in [
        State::Closed,
        State::Open,
        State::ForcedOpen,
        State::Disabled,
        State::MetricsOnly,
    ] {
        assert_eq!(rule::trips_after(s, 7), 1, "{s:?}");
    }
    assert!(rule::consecutive_trips(5, 5));
    assert!(!rule::consecutive_trips(4, 5));
    assert!(rule::consecutive_trips(6, 5));
    assert!(
        !rule::consecutive_trips(-1, 1),
        "a wrapped count never trips"
    );
}
