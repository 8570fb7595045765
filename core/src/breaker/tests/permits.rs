//! Permits, tokens, owned permits and the closed fast paths.

use super::*;

#[test]
fn an_old_generation_permit_does_not_count_in_the_new_one() {
    let (clock, b) = manual();
    let b = b
        .failure_rate(0.5, Window::Count(4))
        .minimum_calls(2)
        .open_for(MS)
        .half_open_calls(1)
        .build()
        .unwrap();
    let old: Vec<_> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
    fail(&b, 2);
    assert_eq!(b.state(), State::Open);
    clock.advance(MS);
    succeed(&b, 1); // probe closes it
    assert_eq!(b.state(), State::Closed);
    for p in old {
        p.failure();
    }
    let s = b.snapshot();
    assert_eq!(s.window_calls, 0);
    assert_eq!(s.state, State::Closed);
    assert_eq!(s.failures, 5, "cumulative metrics keep them");
}

#[test]
fn a_dropped_permit_frees_its_half_open_slot() {
    let (_clock, b) = ready_to_probe(1);
    let p = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(p);
    assert_eq!(b.snapshot().ignored, 1);
    b.try_acquire().expect("slot freed").success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn classifier_can_fail_ok_values_and_ignore_errors() {
    let (_, b) = manual();
    let b = b.consecutive_failures(2).build().unwrap();
    let classify = |r: &Result<u16, u16>| match r {
        Ok(503) => Outcome::Failure,
        Err(404) => Outcome::Ignore,
        Err(_) => Outcome::Failure,
        Ok(_) => Outcome::Success,
    };
    assert_eq!(b.call_with(classify, || Ok(503)), Ok(503));
    assert_eq!(b.call_with(classify, || Err(404)), Err(Error::Inner(404)));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.call_with(classify, || Ok(503)), Ok(503));
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.call_with(classify, || Ok(200)),
        Err(Error::Rejected(Rejected::CircuitOpen {
            retry_after: Some(Duration::from_secs(60))
        }))
    );
    let s = b.snapshot();
    assert_eq!((s.failures, s.ignored, s.rejected), (2, 1, 1));
}

#[test]
fn a_panic_inside_call_returns_the_permit_and_leaves_the_breaker_usable() {
    let (_clock, b) = ready_to_probe(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), Error<()>> = b.call(|| panic!("boom"));
    }));
    assert!(r.is_err());
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.call(|| Ok::<_, ()>(1)), Ok(1), "the probe slot came back");
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_detached_token_records_like_its_permit() {
    let (_clock, b) = ready_to_probe(2);
    let t1 = b.try_acquire().unwrap().into_token();
    let t2 = b.try_acquire().unwrap().into_token();
    assert_eq!(t1.state(), State::HalfOpen);
    assert!(b.try_acquire().is_err(), "both probe slots held by tokens");
    b.record_token(t1, Outcome::Ignore, None);
    let t3 = b.try_acquire().unwrap().into_token();
    b.record_token(t2, Outcome::Success, None);
    assert_eq!(b.state(), State::HalfOpen, "one success of two probes");
    b.record_token(t3, Outcome::Success, Some(Duration::from_millis(1)));
    assert_eq!(b.state(), State::Closed);
    // Closed: tokens feed the windows too.
    let t = b.try_acquire().unwrap().into_token();
    b.record_token(t, Outcome::Failure, None);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn recording_a_token_many_times_never_overflows_the_probe_counters() {
    let (_clock, b) = ready_to_probe(1023);
    let t = b.try_acquire().unwrap().into_token();
    for _ in 0..5000 {
        b.record_token(t, Outcome::Success, None);
    }
    // One probe issued: at most one outcome counted; the word is intact.
    assert_eq!(b.state(), State::HalfOpen);
    let w = Word(b.state.word.load(Relaxed));
    assert_eq!((w.issued(), w.successes(), w.failures()), (1, 1, 0));
}

#[test]
fn the_closed_fast_path_alone_answers_only_in_closed() {
    let (clock, b) = ready_to_probe(1);
    assert!(
        b.try_acquire_closed().is_none(),
        "open (due to probe): not closed"
    );
    clock.advance(MS);
    let probe = b.try_acquire().unwrap();
    assert_eq!(probe.state(), State::HalfOpen);
    assert!(b.try_acquire_closed().is_none());
    probe.success();
    let t = b.try_acquire_closed().expect("closed");
    assert_eq!(t.state(), State::Closed);
    b.record_token(t, Outcome::Failure, None);
    assert_eq!(b.state(), State::Open, "a token from the fast path counts");
    b.disable();
    assert!(
        b.try_acquire_closed().is_none(),
        "disabled goes the full way"
    );
}

#[test]
fn the_closed_fast_paths_leave_slow_call_policies_to_the_full_path() {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(2)
        .slow_call_duration(MS)
        .build()
        .unwrap();
    assert!(
        b.try_acquire_closed().is_none(),
        "a slow-call policy must time the call: the full path"
    );
    let t = b.try_acquire().unwrap().into_token();
    clock.advance(2 * MS);
    assert_eq!(
        b.try_record_closed_success(t),
        Err(t),
        "a success that may be slow is not the fast path's to record"
    );
    assert_eq!(b.snapshot().calls, 0, "nothing recorded on refusal");
    b.record_token(t, Outcome::Success, None);
    assert_eq!(b.snapshot().slow_calls, 1, "the full path measured it slow");
}

#[test]
fn the_closed_success_fast_path_records_as_record_token_does() {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(2)
        .failure_rate(0.9, Window::Count(10))
        .open_for(MS)
        .half_open_calls(1)
        .build()
        .unwrap();
    let t = b.try_acquire_closed().unwrap();
    b.record_token(t, Outcome::Failure, None);
    assert_eq!(b.snapshot().consecutive_failures, 1);
    let t = b.try_acquire_closed().unwrap();
    assert_eq!(b.try_record_closed_success(t), Ok(()));
    let s = b.snapshot();
    assert_eq!(s.consecutive_failures, 0, "a success clears the run");
    assert_eq!((s.calls, s.successes, s.window_calls), (2, 1, 2));
    let early = b.try_acquire_closed().unwrap();
    fail(&b, 2);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.try_record_closed_success(early),
        Ok(()),
        "a closed token of an ended generation is taken, counted, kept out of the windows"
    );
    let s = b.snapshot();
    assert_eq!((s.state, s.calls, s.window_calls), (State::Open, 5, 0));
    clock.advance(MS);
    let probe = b.try_acquire().unwrap().into_token();
    assert_eq!(probe.state(), State::HalfOpen);
    assert_eq!(
        b.try_record_closed_success(probe),
        Err(probe),
        "a probe is not the fast path's"
    );
    assert_eq!(b.state(), State::HalfOpen, "nothing recorded on refusal");
    b.record_token(probe, Outcome::Success, None);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn owned_permits_record_once_and_free_their_probe_when_dropped() {
    let clock = ManualClock::new();
    let b = Arc::new(
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .half_open_calls(1)
            .open_for(Duration::from_secs(1))
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let mut p = b.try_acquire_owned().unwrap();
    assert_eq!(
        (p.state(), p.generation(), p.is_recorded()),
        (State::Closed, 0, false)
    );
    assert!(p.failure());
    assert!(!p.success(), "a second outcome is ignored");
    assert!(p.is_recorded());
    drop(p);
    let s = b.snapshot();
    assert_eq!(
        (s.state, s.failures, s.successes, s.ignored),
        (State::Open, 1, 0, 0)
    );
    assert!(matches!(
        b.try_acquire_owned().unwrap_err(),
        Rejected::CircuitOpen { .. }
    ));
    clock.advance(Duration::from_secs(1));
    let probe = b.try_acquire_owned().unwrap();
    assert_eq!(probe.state(), State::HalfOpen);
    assert!(
        b.try_acquire_owned().is_err(),
        "the one probe slot is taken"
    );
    // Moved to another thread and dropped there unrecorded: the slot comes
    // back and the probe counts as ignored.
    std::thread::spawn(move || drop(probe)).join().unwrap();
    assert_eq!(b.snapshot().ignored, 1);
    let weak = Arc::downgrade(&b);
    let mut probe = b.try_acquire_owned().unwrap();
    drop(b);
    assert!(weak.upgrade().is_some(), "a live permit keeps its breaker");
    assert!(probe.success_with_duration(Duration::from_millis(3)));
    assert_eq!(probe.breaker().state(), State::Closed);
    drop(probe);
    assert!(weak.upgrade().is_none());
}
