//! Manual states and transition listeners.

use super::*;

#[test]
fn manual_states_and_reset() {
    let (_, b) = manual();
    let b = b.consecutive_failures(1).build().unwrap();
    b.force_open();
    assert_eq!(
        b.try_acquire().unwrap_err(),
        Rejected::CircuitOpen { retry_after: None }
    );
    assert_eq!(b.retry_after(), None);
    b.disable();
    fail(&b, 5);
    assert_eq!(b.state(), State::Disabled);
    assert_eq!(b.snapshot().failures, 0, "disabled counts nothing");
    b.metrics_only();
    fail(&b, 3);
    assert_eq!(b.state(), State::MetricsOnly, "never trips");
    assert_eq!(b.snapshot().consecutive_failures, 3);
    b.reset();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        b.snapshot().consecutive_failures,
        0,
        "reset empties windows"
    );
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn listeners_see_each_transition_once_and_may_panic() {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(1)
        .open_for(MS)
        .half_open_calls(1)
        .build()
        .unwrap();
    let seen = Arc::new(parking_lot::Mutex::new(vec![]));
    let s2 = seen.clone();
    b.add_listener(move |t| s2.lock().push((t.from, t.to)));
    let bad = b.add_listener(|_| panic!("listener bug"));
    fail(&b, 1);
    clock.advance(MS);
    succeed(&b, 1);
    assert!(b.remove_listener(bad));
    assert!(!b.remove_listener(bad));
    b.force_open();
    assert_eq!(
        *seen.lock(),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed),
            (State::Closed, State::ForcedOpen),
        ]
    );
    let s = b.snapshot();
    assert_eq!((s.transitions, s.opened, s.listener_panics), (4, 1, 3));
}
