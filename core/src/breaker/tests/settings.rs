//! Settings, the plain-values form: its defaults are the builder's, it
//! round-trips through a live breaker's configuration, and all policies at
//! zero is refused.

use super::*;
use std::time::Duration;

#[test]
fn defaults_are_the_builders() {
    let from_settings = Settings::default().builder().unwrap().build().unwrap();
    let from_builder = CircuitBreaker::builder().build().unwrap();
    assert_eq!(from_settings.config(), from_builder.config());
    assert_eq!(
        Settings::from_config(&from_builder.config()),
        Settings {
            minimum_calls: DEFAULT_MINIMUM_CALLS,
            open_for_max: DEFAULT_OPEN_FOR,
            ..Settings::default()
        },
        "read back: the values in force, the defaulted ones filled in"
    );
}

#[test]
fn settings_round_trip_through_a_breaker() {
    let cases = [
        Settings {
            consecutive_failures: 3,
            failure_rate: 0.0,
            ..Settings::default()
        },
        Settings {
            failure_rate: 0.25,
            window: Window::Count(20),
            minimum_calls: 5,
            open_for: Duration::from_secs(2),
            open_for_multiplier: 2.0,
            open_for_max: Duration::from_secs(30),
            ..Settings::default()
        },
        Settings {
            failure_rate: 0.0,
            slow_call_rate: 0.5,
            slow_call_duration: Duration::from_millis(250),
            window: Window::time(Duration::from_secs(10)),
            half_open_calls: 3,
            half_open_max_wait: Duration::from_secs(5),
            ..Settings::default()
        },
    ];
    for s in cases {
        let b = s.builder().unwrap().build().unwrap();
        let back = Settings::from_config(&b.config());
        let again = back.builder().unwrap().build().unwrap();
        assert_eq!(again.config(), b.config(), "{s:?}");
        assert_eq!(
            (
                back.consecutive_failures,
                back.failure_rate,
                back.slow_call_rate
            ),
            (s.consecutive_failures, s.failure_rate, s.slow_call_rate),
            "policies that are off read back as zeros"
        );
        // And it reconfigures a live breaker to itself.
        b.reconfigure(|_| back.builder().unwrap()).unwrap();
        assert_eq!(b.config(), again.config());
    }
}

/// A zero failure rate is off even beside another policy (the builder's
/// default failure-rate policy does not survive under it).
#[test]
fn a_zero_failure_rate_is_off_beside_a_slow_call_policy() {
    let b = Settings {
        failure_rate: 0.0,
        slow_call_rate: 1.0,
        slow_call_duration: Duration::from_millis(10),
        window: Window::Count(4),
        ..Settings::default()
    }
    .builder()
    .unwrap()
    .build()
    .unwrap();
    assert_eq!(b.config().failure_rate(), None);
    for _ in 0..4 {
        b.try_acquire()
            .unwrap()
            .failure_with_duration(Duration::from_millis(1));
    }
    assert_eq!(
        b.state(),
        State::Closed,
        "fast failures trip no slow-call policy"
    );
}

#[test]
fn every_policy_at_zero_is_refused() {
    let e = Settings {
        failure_rate: 0.0,
        ..Settings::default()
    }
    .builder()
    .unwrap_err();
    assert_eq!(e.field(), "trip_policy");
    let e = Settings {
        half_open_calls: 0,
        ..Settings::default()
    }
    .builder()
    .unwrap()
    .build()
    .unwrap_err();
    assert_eq!(e.field(), "half_open_calls");
    assert_eq!(
        Window::time(Duration::from_secs(1)),
        Window::Time {
            length: Duration::from_secs(1),
            buckets: DEFAULT_WINDOW_BUCKETS
        }
    );
}
