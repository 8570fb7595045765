//! Configuration: validation, defaults and live reconfiguration.

use super::*;

#[test]
fn invalid_configuration_is_an_error_naming_the_field() {
    let field = |b: Builder| b.build().unwrap_err().field();
    let b = CircuitBreaker::builder;
    assert_eq!(field(b().consecutive_failures(0)), "consecutive_failures");
    assert_eq!(
        field(b().failure_rate(0.0, Window::Count(10))),
        "failure_rate_threshold"
    );
    assert_eq!(
        field(b().failure_rate(f64::NAN, Window::Count(10))),
        "failure_rate_threshold"
    );
    assert_eq!(
        field(b().failure_rate(1.5, Window::Count(10))),
        "failure_rate_threshold"
    );
    assert_eq!(field(b().failure_rate(0.5, Window::Count(0))), "window");
    let time = |ms, buckets| Window::Time {
        length: Duration::from_millis(ms),
        buckets,
    };
    assert_eq!(
        field(b().failure_rate(0.5, time(1000, 0))),
        "window.buckets"
    );
    assert_eq!(field(b().failure_rate(0.5, time(50, 10))), "window.length");
    assert_eq!(
        field(b().failure_rate(0.5, Window::Count(10)).minimum_calls(11)),
        "minimum_calls"
    );
    assert_eq!(field(b().minimum_calls(0)), "minimum_calls");
    assert_eq!(field(b().half_open_calls(0)), "half_open_calls");
    assert_eq!(field(b().half_open_calls(1024)), "half_open_calls");
    assert_eq!(field(b().open_for(Duration::ZERO)), "open_for");
    assert_eq!(
        field(b().half_open_max_wait(Duration::ZERO)),
        "half_open_max_wait"
    );
    assert_eq!(
        field(b().open_for_backoff(0.5, Duration::from_secs(100))),
        "open_for_multiplier"
    );
    assert_eq!(
        field(b().open_for_backoff(f64::INFINITY, Duration::from_secs(100))),
        "open_for_multiplier"
    );
    assert_eq!(
        field(b().open_for_backoff(2.0, Duration::from_secs(1))),
        "open_for_max"
    );
    assert_eq!(
        field(b().slow_call_rate(0.5, Duration::ZERO)),
        "slow_call_duration"
    );
    assert_eq!(
        field(b().slow_call_rate(-1.0, MS)),
        "slow_call_rate_threshold"
    );
}

#[test]
fn defaults_follow_resilience4j() {
    let b = CircuitBreaker::builder().build().unwrap();
    let c = b.config();
    assert_eq!(c.failure_rate, Some(0.5));
    assert_eq!(c.window, Some(Window::Count(100)));
    assert_eq!(c.minimum_calls, 100);
    assert_eq!(c.half_open_calls, 10);
    assert_eq!(c.open_for, 60_000_000_000);
    assert_eq!(c.consecutive_failures, None);
}

#[test]
fn reconfiguring_a_live_breaker_keeps_its_state() {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(3)
        .open_for(10 * MS)
        .half_open_calls(2)
        .build()
        .unwrap();
    fail(&b, 2);
    // Raise the threshold: the two failures already counted still count.
    b.reconfigure(|c| c.consecutive_failures(4)).unwrap();
    fail(&b, 1);
    assert_eq!(b.state(), State::Closed);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "4 in a row under the new threshold");
    // A longer open period applies to the next opening, not this one.
    b.reconfigure(|c| c.open_for(100 * MS).half_open_calls(1))
        .unwrap();
    assert!(b.retry_after().unwrap() <= 10 * MS);
    clock.advance(10 * MS);
    succeed(&b, 1); // one probe is enough now
    assert_eq!(b.state(), State::Closed);
    fail(&b, 4);
    assert_eq!(b.retry_after(), Some(100 * MS));
    let c = b.config();
    assert_eq!(
        (c.consecutive_failures, c.open_for, c.half_open_calls),
        (Some(4), 100_000_000, 1)
    );
    assert_eq!(b.snapshot().failures, 8, "counters survive");
}

#[test]
fn rate_thresholds_change_live() {
    let (_, b) = manual();
    let b = b
        .failure_rate(0.5, Window::Count(10))
        .minimum_calls(10)
        .build()
        .unwrap();
    b.reconfigure(|c| c.failure_rate(0.9, Window::Count(10)))
        .unwrap();
    succeed(&b, 2);
    fail(&b, 8);
    assert_eq!(b.state(), State::Closed, "80% is under the new 90%");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
    b.reset();
    b.reconfigure(|c| c.failure_rate_threshold(0.5).minimum_calls(2))
        .unwrap();
    fail(&b, 2);
    assert_eq!(b.state(), State::Open, "two failures suffice now");
}

#[test]
fn reconfiguration_cannot_change_the_structure_or_break_the_rules() {
    let (_, b) = manual();
    let b = b.consecutive_failures(3).build().unwrap();
    let e = b.reconfigure(|c| c.slow_call_rate(0.5, MS)).unwrap_err();
    assert_eq!(e.field(), "trip_policy");
    let e = b.reconfigure(|c| c.consecutive_failures(0)).unwrap_err();
    assert_eq!(e.field(), "consecutive_failures");
    let e = b.reconfigure(|c| c.open_for(Duration::ZERO)).unwrap_err();
    assert_eq!(e.field(), "open_for");
    let (_, r) = manual();
    let r = r.failure_rate(0.5, Window::Count(10)).build().unwrap();
    let e = r
        .reconfigure(|c| c.failure_rate(0.5, Window::Count(20)))
        .unwrap_err();
    assert_eq!(e.field(), "window");
    let e = r
        .reconfigure(|c| c.failure_rate(1.5, Window::Count(10)))
        .unwrap_err();
    assert_eq!(e.field(), "failure_rate_threshold");
    // A refused change leaves everything as it was.
    assert_eq!(r.config().failure_rate, Some(0.5));
    assert_eq!(b.config().consecutive_failures, Some(3));
}

#[test]
fn reconfiguring_while_threads_call_never_corrupts_counts() {
    let b = Arc::new(
        CircuitBreaker::builder()
            .failure_rate(1.0, Window::Count(1000))
            .build()
            .unwrap(),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (b, calls) = (Arc::clone(&b), Arc::clone(&calls));
            thread::spawn(move || {
                for _ in 0..50_000 {
                    b.try_acquire().expect("never trips").success();
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for i in 0..2_000u64 {
        let d = Duration::from_millis(1 + i % 50);
        b.reconfigure(|c| c.open_for(d).half_open_calls(1 + (i % 20) as u32))
            .unwrap();
    }
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(b.snapshot().successes, calls.load(Ordering::Relaxed) as u64);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn threshold_setters_keep_the_rest() {
    let (_, b) = manual();
    let b = b
        .failure_rate_threshold(0.25)
        .slow_call_threshold(0.5)
        .build()
        .unwrap();
    let c = b.config();
    assert_eq!(c.failure_rate, Some(0.25));
    assert_eq!(c.window, Some(Window::Count(100)));
    assert_eq!(
        (c.slow_call_rate, c.slow_call_duration),
        (Some(0.5), 60_000_000_000)
    );
    b.reconfigure(|c| c.slow_call_duration(MS)).unwrap();
    let c = b.config();
    assert_eq!(
        (c.slow_call_rate, c.slow_call_duration),
        (Some(0.5), 1_000_000)
    );
    let (_, d) = manual();
    let d = d
        .consecutive_failures(2)
        .slow_call_duration(MS)
        .build()
        .unwrap();
    assert_eq!(
        d.config().slow_call_rate,
        Some(1.0),
        "duration alone turns the policy on at 100%"
    );
}
