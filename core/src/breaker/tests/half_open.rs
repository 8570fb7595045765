//! The open period and half-open: probes, verdicts, bounds and hints.

use super::*;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn open_period_ends_with_the_first_caller_as_probe() {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(1)
        .open_for(Duration::from_secs(10))
        .half_open_calls(1)
        .build()
        .unwrap();
    fail(&b, 1);
    clock.advance(Duration::from_secs(4));
    assert_eq!(
        b.try_acquire().unwrap_err(),
        Rejected::CircuitOpen {
            retry_after: Some(Duration::from_secs(6))
        }
    );
    assert_eq!(b.retry_after(), Some(Duration::from_secs(6)));
    clock.advance(Duration::from_secs(6));
    assert_eq!(b.state(), State::Open, "no timer: the state moves lazily");
    let probe = b.try_acquire().expect("first caller probes");
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(probe.state(), State::HalfOpen);
    assert!(b.try_acquire().is_err(), "one probe only");
    probe.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn half_open_admits_at_most_its_probes_and_closes_on_successes() {
    let (_clock, b) = ready_to_probe(3);
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
    assert!(b.try_acquire().is_err());
    let mut probes = probes.into_iter();
    probes.next().unwrap().success();
    assert!(b.try_acquire().is_err(), "a finished probe is not replaced");
    probes.next().unwrap().success();
    assert_eq!(b.state(), State::HalfOpen);
    probes.next().unwrap().success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn half_open_reopens_on_a_failure_under_the_consecutive_policy() {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(2)
        .open_for(MS)
        .half_open_calls(3)
        .build()
        .unwrap();
    fail(&b, 2);
    clock.advance(MS);
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    p1.success();
    p2.failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn half_open_under_a_rate_policy_judges_the_probes_rate() {
    let (clock, b) = manual();
    let b = b
        .failure_rate(0.5, Window::Count(2))
        .minimum_calls(2)
        .open_for(MS)
        .half_open_calls(4)
        .build()
        .unwrap();
    fail(&b, 2);
    clock.advance(MS);
    succeed(&b, 2);
    fail(&b, 1);
    assert_eq!(b.state(), State::HalfOpen, "1 of 4 cannot decide yet");
    succeed(&b, 1);
    assert_eq!(b.state(), State::Closed, "1 of 4 failed < 50%");

    fail(&b, 2);
    clock.advance(MS);
    fail(&b, 2);
    assert_eq!(b.state(), State::Open, "2 of 4 already reach 50%");
}

#[test]
fn half_open_without_verdict_reopens_after_its_bound() {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(1)
        .open_for(MS)
        .half_open_calls(1)
        .half_open_max_wait(Duration::from_secs(2))
        .build()
        .unwrap();
    fail(&b, 1);
    clock.advance(MS);
    let hung = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        b.try_acquire().unwrap_err(),
        Rejected::CircuitOpen {
            retry_after: Some(Duration::from_secs(1))
        }
    );
    clock.advance(Duration::from_secs(1));
    assert!(b.try_acquire().is_err());
    assert_eq!(b.state(), State::Open);
    hung.success();
    assert_eq!(b.state(), State::Open, "the late probe's verdict is stale");
}

#[test]
fn open_period_grows_on_repeated_trips_up_to_its_cap() {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .open_for_backoff(2.0, Duration::from_secs(3))
        .half_open_calls(1)
        .build()
        .unwrap();
    fail(&b, 1);
    let mut seen = vec![];
    for _ in 0..3 {
        seen.push(b.retry_after().unwrap());
        clock.advance(seen[seen.len() - 1]);
        fail(&b, 1); // the probe fails
    }
    seen.push(b.retry_after().unwrap());
    let s = |n| Duration::from_secs(n);
    assert_eq!(seen, vec![s(1), s(2), s(3), s(3)]);
    clock.advance(s(3));
    succeed(&b, 1);
    assert_eq!(b.state(), State::Closed);
    fail(&b, 1);
    assert_eq!(b.retry_after(), Some(s(1)), "a close resets the growth");
}

#[test]
fn open_until_honours_a_named_instant() {
    let (clock, b) = manual();
    let b = b.build().unwrap();
    b.open_until(clock.now() + 5_000_000_000);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.retry_after(), Some(Duration::from_secs(5)));
    clock.advance(Duration::from_secs(5));
    let p = b.try_acquire().unwrap();
    assert_eq!(p.state(), State::HalfOpen);
    b.open_for(Duration::from_secs(2));
    assert_eq!(b.retry_after(), Some(Duration::from_secs(2)));
}

/// `hold_open_until` moves an Open breaker's deadline both ways with no
/// transition, and refuses to touch any other state.
#[test]
fn hold_open_moves_only_an_open_deadline_without_a_transition() {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(1)
        .half_open_calls(1)
        .build()
        .unwrap();
    let heard = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&heard);
    b.add_listener(move |_| {
        h.fetch_add(1, Ordering::SeqCst);
    });
    assert!(!b.hold_open_for(s(5)), "closed: nothing to hold");
    assert_eq!(b.state(), State::Closed);
    fail(&b, 1);
    let (gen, transitions) = (b.snapshot().generation, b.snapshot().transitions);
    assert_eq!(heard.load(Ordering::SeqCst), 1);
    assert!(b.hold_open_for(s(3600 * 24 * 365)), "a year later");
    assert_eq!(b.retry_after(), Some(s(3600 * 24 * 365)));
    clock.advance(s(60 * 60 * 24 * 364));
    assert!(b.try_acquire().is_err(), "still held after 364 days");
    assert!(b.hold_open_until(clock.now()), "earlier: due now");
    assert_eq!(b.retry_after(), Some(Duration::ZERO));
    assert_eq!(b.snapshot().generation, gen, "no new generation");
    assert_eq!(b.snapshot().transitions, transitions);
    assert_eq!(heard.load(Ordering::SeqCst), 1, "no listener call");
    let probe = b.try_acquire().expect("due: the first caller probes");
    assert!(!b.hold_open_for(s(10)), "half-open is never cut short");
    assert_eq!(b.state(), State::HalfOpen);
    probe.failure();
    assert!(b.hold_open_until(u64::MAX), "the clock's end");
    clock.advance(s(3600 * 24 * 365 * 100));
    assert!(b.try_acquire().is_err());
    b.force_open();
    assert!(!b.hold_open_for(Duration::ZERO), "forced open stays forced");
    assert_eq!(b.retry_after(), None);
}

/// A caller that saw the deadline pass races a hold that moves it later:
/// under the transition lock the probe re-reads the deadline, so either
/// the hold came first and the caller is refused, or the probe did and
/// the hold is refused. Never both a half-open and a successful hold.
#[test]
fn a_hold_and_a_probe_racing_never_both_win() {
    for _ in 0..200 {
        let (clock, b) = manual();
        let b = Arc::new(
            b.consecutive_failures(1)
                .half_open_calls(1)
                .build()
                .unwrap(),
        );
        fail(&b, 1);
        clock.advance(s(60));
        let b2 = Arc::clone(&b);
        let prober = thread::spawn(move || b2.try_acquire().map(|p| p.into_token()).is_ok());
        let held = b.hold_open_for(s(3600));
        let probed = prober.join().unwrap();
        assert!(held != probed, "held {held}, probed {probed}");
        assert_eq!(
            b.state(),
            if probed { State::HalfOpen } else { State::Open }
        );
    }
}

#[test]
fn lowering_the_probe_limit_decides_a_waiting_half_open() {
    let (_, b) = ready_to_probe(2);
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::HalfOpen, "1 of 2 probes");
    b.reconfigure(|c| c.half_open_calls(1)).unwrap();
    assert_eq!(b.state(), State::Closed, "1 of 1: decided at once");
}

/// A half-open whose probe slots are all taken may close in milliseconds:
/// its refusal says to come back about as long as the probes have run,
/// never the whole `half_open_max_wait` (60 s by default) at once.
#[test]
fn a_busy_half_open_gives_an_honest_retry_after() {
    let (clock, b) = ready_to_probe(1);
    let probe = b.try_acquire().unwrap();
    let hint = |b: &CircuitBreaker<ManualClock>| match b.try_acquire() {
        Err(Rejected::CircuitOpen { retry_after }) => retry_after.unwrap(),
        other => panic!("expected a refusal, got {:?}", other.map(|p| p.state())),
    };
    assert_eq!(hint(&b), MS, "at least 1 ms");
    assert_eq!(b.retry_after(), Some(MS));
    clock.advance(Duration::from_millis(40));
    assert_eq!(
        hint(&b),
        Duration::from_millis(40),
        "as long as the probes ran"
    );
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        hint(&b),
        Duration::from_secs(60) - Duration::from_millis(59_040),
        "never past the bound"
    );
    probe.success();
    assert_eq!(b.state(), State::Closed);
}
