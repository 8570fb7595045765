//! Tests of `chaos`.

use super::*;
use crate::clock::ManualClock;

fn chaos(fault: f64, lat: f64, seed: u64) -> (ManualClock, Chaos<ManualClock>) {
    let clock = ManualClock::new();
    let c = Builder::with_clock(clock.clone())
        .fault_rate(fault)
        .latency(lat, Duration::from_millis(100))
        .seed(seed)
        .build()
        .unwrap();
    (clock, c)
}

#[test]
fn faults_come_at_the_configured_rate() {
    let (_, c) = chaos(0.2, 0.0, 1);
    let n = 100_000;
    let hits = (0..n).filter(|_| c.should_fail()).count();
    let rate = hits as f64 / n as f64;
    assert!((rate - 0.2).abs() < 0.01, "rate {rate}");
    assert_eq!(c.snapshot().faults, hits as u64);
}

#[test]
fn the_same_seed_replays_the_same_faults() {
    let (_, a) = chaos(0.5, 0.0, 99);
    let (_, b) = chaos(0.5, 0.0, 99);
    let sa: Vec<bool> = (0..200).map(|_| a.should_fail()).collect();
    let sb: Vec<bool> = (0..200).map(|_| b.should_fail()).collect();
    assert_eq!(sa, sb);
}

#[test]
fn latency_is_injected_in_virtual_time() {
    let (clock, c) = chaos(0.0, 1.0, 3);
    let t = clock.now();
    assert_eq!(c.call(|| Ok::<_, ()>(5), || ()), Ok(5));
    assert_eq!(clock.now() - t, 100_000_000);
    assert_eq!(c.snapshot().delays, 1);
}

#[test]
fn disabled_injects_nothing_and_rates_change_live() {
    let (clock, c) = chaos(1.0, 1.0, 3);
    c.set_enabled(false);
    let t = clock.now();
    for _ in 0..100 {
        assert_eq!(c.call(|| Ok::<_, &str>(1), || "fault"), Ok(1));
    }
    assert_eq!(clock.now(), t);
    c.set_enabled(true);
    assert_eq!(c.call(|| Ok::<_, &str>(1), || "fault"), Err("fault"));
    c.set_fault_rate(0.0).unwrap();
    c.set_latency(0.0, Duration::ZERO).unwrap();
    assert_eq!(c.call(|| Ok::<_, &str>(1), || "fault"), Ok(1));
}

#[test]
fn invalid_rates_name_the_field() {
    let e = Chaos::builder().fault_rate(1.5).build().unwrap_err();
    assert_eq!(e.field(), "fault_rate");
    let e = Chaos::builder().fault_rate(f64::NAN).build().unwrap_err();
    assert_eq!(e.field(), "fault_rate");
    let e = Chaos::builder()
        .latency(-0.1, Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "latency_rate");
    let (_, c) = chaos(0.0, 0.0, 1);
    assert_eq!(c.set_fault_rate(2.0).unwrap_err().field(), "fault_rate");
}

#[test]
fn reconfigure_changes_the_settings_together_or_not_at_all() {
    let c = Chaos::builder().seed(3).build().unwrap();
    c.reconfigure(|b| b.fault_rate(1.0).enabled(true)).unwrap();
    assert!(c.should_fail(), "a fault rate of 1 fails every call");
    for (bad, field) in [
        (
            c.reconfigure(|b| b.fault_rate(2.0).enabled(false)),
            "fault_rate",
        ),
        (
            c.reconfigure(|b| {
                b.fault_rate(0.0)
                    .latency(f64::NAN, Duration::from_millis(1))
            }),
            "latency_rate",
        ),
        (c.reconfigure(|b| b.fault_rate(0.0).seed(9)), "seed"),
    ] {
        assert_eq!(bad.unwrap_err().field(), field);
        assert!(c.snapshot().enabled, "a refused change changes nothing");
        assert!(c.should_fail(), "the fault rate is still 1");
    }
    c.reconfigure(|b| b.fault_rate(0.0).enabled(false)).unwrap();
    assert!(!c.snapshot().enabled);
    assert!(!c.should_fail());
}
