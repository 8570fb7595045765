//! The trip policies and their windows.

use super::*;

#[test]
fn consecutive_failures_trip_only_when_in_a_row() {
    let (_, b) = manual();
    let b = b.consecutive_failures(3).build().unwrap();
    fail(&b, 2);
    succeed(&b, 1);
    fail(&b, 2);
    assert_eq!(b.state(), State::Closed, "a success resets the run");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
    assert!(matches!(
        b.try_acquire().unwrap_err(),
        Rejected::CircuitOpen {
            retry_after: Some(_)
        }
    ));
}

#[test]
fn failure_rate_waits_for_minimum_calls() {
    let (_, b) = manual();
    let b = b
        .failure_rate(0.5, Window::Count(10))
        .minimum_calls(4)
        .build()
        .unwrap();
    fail(&b, 3);
    assert_eq!(b.state(), State::Closed, "3 calls < minimum 4");
    succeed(&b, 1);
    assert_eq!(b.state(), State::Closed, "a success never trips");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "4 of 5 failed");
}

#[test]
fn count_window_forgets_calls_older_than_its_size() {
    let (_, b) = manual();
    let b = b
        .failure_rate(0.5, Window::Count(4))
        .minimum_calls(4)
        .build()
        .unwrap();
    fail(&b, 1);
    succeed(&b, 4); // the failure slides out
    assert_eq!(b.snapshot().failure_rate, 0.0);
    fail(&b, 1);
    assert_eq!(b.state(), State::Closed, "1 of 4");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "2 of 4 = 50%");
}

#[test]
fn time_window_forgets_calls_older_than_its_length() {
    let (clock, b) = manual();
    let b = b
        .failure_rate(
            0.5,
            Window::Time {
                length: Duration::from_secs(1),
                buckets: 10,
            },
        )
        .minimum_calls(3)
        .build()
        .unwrap();
    fail(&b, 2);
    clock.advance(Duration::from_millis(1100));
    assert_eq!(b.snapshot().window_calls, 0, "the failures aged out");
    fail(&b, 1);
    succeed(&b, 2);
    assert_eq!(b.state(), State::Closed, "1 of 3 in the window");
    clock.advance(Duration::from_millis(500));
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "2 of 4 in the last second");
}

#[test]
fn slow_call_rate_trips_on_slow_successes() {
    let (clock, b) = manual();
    let b = b
        .failure_rate(1.0, Window::Count(4))
        .slow_call_rate(0.5, Duration::from_millis(100))
        .minimum_calls(4)
        .build()
        .unwrap();
    b.try_acquire()
        .unwrap()
        .success_with_duration(Duration::from_millis(150));
    succeed(&b, 2);
    let p = b.try_acquire().unwrap();
    clock.advance(Duration::from_millis(100)); // measured by the permit
    p.success();
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.snapshot().slow_calls, 2);
}
