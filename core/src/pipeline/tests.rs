//! Pipeline specifications in virtual time: the order of the layers and
//! what each sees.

use super::*;
use crate::breaker::{Builder as BreakerBuilder, State};
use crate::clock::ManualClock;
use crate::rate_limit::Builder as LimiterBuilder;
use crate::retry::{Backoff, Builder as RetryBuilder, Jitter};
use std::cell::Cell;

const MS: Duration = Duration::from_millis(1);

struct Layers {
    clock: ManualClock,
    breaker: Arc<CircuitBreaker<ManualClock>>,
    limiter: Arc<RateLimiter<ManualClock>>,
    bulkhead: Arc<Bulkhead>,
    retry: Arc<Retry<ManualClock>>,
}

fn layers(attempts: u32) -> Layers {
    layers_tripping_after(attempts, 3)
}

fn layers_tripping_after(attempts: u32, failures: u32) -> Layers {
    let clock = ManualClock::new();
    Layers {
        breaker: Arc::new(
            BreakerBuilder::with_clock(clock.clone())
                .consecutive_failures(failures)
                .open_for(Duration::from_secs(10))
                .build()
                .unwrap(),
        ),
        limiter: Arc::new(
            LimiterBuilder::with_clock(clock.clone())
                .rate(1000, Duration::from_secs(1))
                .burst(100)
                .build()
                .unwrap(),
        ),
        bulkhead: Arc::new(Bulkhead::builder().max_concurrent(1).build().unwrap()),
        retry: Arc::new(
            RetryBuilder::with_clock(clock.clone())
                .max_attempts(attempts)
                .backoff(Backoff::Constant(10 * MS))
                .jitter(Jitter::None)
                .build()
                .unwrap(),
        ),
        clock,
    }
}

fn pipeline(l: &Layers) -> Pipeline<ManualClock> {
    Builder::with_clock(l.clock.clone())
        .total_timeout(Duration::from_secs(1))
        .retry(l.retry.clone())
        .breaker(l.breaker.clone())
        .rate_limiter(l.limiter.clone())
        .bulkhead(l.bulkhead.clone())
        .attempt_timeout(100 * MS)
        .build()
        .unwrap()
}

#[test]
fn no_layers_is_a_plain_call() {
    let p = Pipeline::builder().build().unwrap();
    assert_eq!(
        p.call(|d| {
            assert!(d.is_never());
            Ok::<_, ()>(5)
        }),
        Ok(5)
    );
    assert_eq!(p.call(|_| Err::<(), _>("e")), Err(Error::Inner("e")));
}

#[test]
fn failures_are_retried_and_counted_by_the_breaker() {
    let l = layers(3);
    let p = pipeline(&l);
    let n = Cell::new(0);
    let r = p.call(|_| {
        n.set(n.get() + 1);
        if n.get() < 3 {
            Err("flaky")
        } else {
            Ok(n.get())
        }
    });
    assert_eq!(r, Ok(3));
    let b = l.breaker.snapshot();
    assert_eq!((b.failures, b.successes), (2, 1));
    assert_eq!(
        l.limiter.snapshot().admitted,
        3,
        "each attempt passed the limiter"
    );
    assert_eq!(l.retry.snapshot().retries, 2);
}

#[test]
fn an_open_breaker_stops_the_call_before_the_limiters_and_is_not_retried() {
    let l = layers(5);
    let p = pipeline(&l);
    l.breaker.force_open();
    let called = Cell::new(false);
    let r = p.call(|_| {
        called.set(true);
        Ok::<_, ()>(())
    });
    assert_eq!(
        r,
        Err(Error::Rejected(Rejected::CircuitOpen { retry_after: None }))
    );
    assert!(!called.get());
    assert_eq!(
        l.limiter.snapshot().admitted,
        0,
        "the limiter was never asked"
    );
    assert_eq!(l.retry.snapshot().retries, 0, "a rejection is not retried");
}

#[test]
fn a_full_bulkhead_does_not_count_against_the_dependency() {
    let l = layers(1);
    let p = pipeline(&l);
    let _held = l.bulkhead.try_acquire().unwrap();
    let r = p.call(|_| Ok::<_, ()>(()));
    assert_eq!(r, Err(Error::Rejected(Rejected::BulkheadFull)));
    let b = l.breaker.snapshot();
    assert_eq!((b.failures, b.ignored, b.state), (0, 1, State::Closed));
}

#[test]
fn the_classifier_decides_what_fails_and_what_is_retried() {
    let l = layers(3);
    let p = pipeline(&l);
    let classify = |r: &Result<u16, u16>| match r {
        Ok(503) => Outcome::Failure,
        Err(404) => Outcome::Ignore,
        Err(_) => Outcome::Failure,
        Ok(_) => Outcome::Success,
    };
    let codes = Cell::new(0);
    let r = p.call_with(classify, |_| {
        codes.set(codes.get() + 1);
        Ok(if codes.get() < 3 { 503 } else { 200 })
    });
    assert_eq!(r, Ok(200), "503 is retried");
    let n = Cell::new(0);
    let r = p.call_with(classify, |_| {
        n.set(n.get() + 1);
        Err(404)
    });
    assert_eq!(
        (r, n.get()),
        (Err(Error::Inner(404)), 1),
        "an ignored error is final"
    );
    assert_eq!(l.breaker.snapshot().failures, 2);
}

#[test]
fn attempts_get_their_deadline_within_the_total() {
    let l = layers_tripping_after(10, 100);
    let p = pipeline(&l);
    let clock = l.clock.clone();
    let deadlines = std::cell::RefCell::new(vec![]);
    let r = p.call(|d| {
        deadlines.borrow_mut().push(d.remaining_on(&clock));
        clock.advance(300 * MS); // each attempt overruns its 100 ms
        Err::<(), _>("slow")
    });
    // Attempts at 0, 310, 620 and 930 ms, the last one cut to the 70 ms
    // left of the 1 s total; then no time is left for a fifth, and the
    // retry gives up with the last error.
    assert_eq!(r, Err(Error::Inner("slow")));
    assert_eq!(
        *deadlines.borrow(),
        vec![100 * MS, 100 * MS, 100 * MS, 70 * MS]
    );
}

#[test]
fn call_or_else_falls_back_when_everything_fails() {
    let l = layers_tripping_after(2, 100);
    let p = pipeline(&l);
    let r = p.call_or_else(
        |_| Err::<&str, _>("down"),
        |e| {
            assert_eq!(*e, Error::Inner("down"));
            Some("cached")
        },
    );
    assert_eq!(r, Ok("cached"));
    let r = p.call_or_else(|_| Err::<&str, _>("down"), |_| None);
    assert_eq!(r, Err(Error::Inner("down")));
}

#[test]
fn invalid_configuration_names_the_field() {
    let e = Pipeline::builder()
        .total_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "total_timeout");
    let e = Pipeline::builder()
        .attempt_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "attempt_timeout");
}

fn adaptive(clock: &ManualClock, limit: u32) -> Arc<AdaptiveLimit<ManualClock>> {
    Arc::new(
        crate::shed::Builder::with_clock(clock.clone())
            .algorithm(crate::shed::Algorithm::Aimd {
                backoff_ratio: 0.5,
                latency_threshold: Duration::from_secs(10),
            })
            .limits(1, limit)
            .initial_limit(limit)
            .critical_fraction(0.0)
            .build()
            .unwrap(),
    )
}

#[test]
fn the_step_api_drives_the_same_call_as_call_with() {
    let l = layers(3);
    let p = pipeline(&l);
    let mut run = p.begin(None).unwrap();
    assert_eq!(
        run.deadline().remaining_on(&l.clock),
        Duration::from_secs(1)
    );
    assert_eq!(run.attempt(), 1);
    let a = p.admit(&run).unwrap();
    assert_eq!(a.deadline().remaining_on(&l.clock), 100 * MS);
    assert_eq!(
        l.bulkhead.snapshot().available,
        0,
        "the attempt holds the permit"
    );
    p.finish(a, Outcome::Failure);
    assert_eq!(l.bulkhead.snapshot().available, 1, "finish gives it back");
    assert_eq!(
        p.next(&mut run, Ended::Outcome(Outcome::Failure)),
        Ok(Some(10 * MS)),
        "the retry's backoff"
    );
    assert_eq!(run.attempt(), 2);
    l.clock.advance(10 * MS);
    let a = p.admit(&run).unwrap();
    p.finish(a, Outcome::Success);
    assert_eq!(p.next(&mut run, Ended::Outcome(Outcome::Success)), Ok(None));
    let b = l.breaker.snapshot();
    assert_eq!((b.failures, b.successes), (1, 1));
    assert_eq!(l.limiter.snapshot().admitted, 2);
    assert_eq!(l.retry.snapshot().retries, 1);
}

#[test]
fn a_refused_admission_gives_back_what_it_took() {
    let clock = ManualClock::new();
    let breaker = Arc::new(
        BreakerBuilder::with_clock(clock.clone())
            .consecutive_failures(1)
            .build()
            .unwrap(),
    );
    let shed = adaptive(&clock, 4);
    let bulkhead = Arc::new(Bulkhead::builder().max_concurrent(1).build().unwrap());
    let p = Builder::with_clock(clock.clone())
        .breaker(breaker.clone())
        .adaptive_limit(shed.clone())
        .bulkhead(bulkhead.clone())
        .build()
        .unwrap();
    let held = bulkhead.try_acquire().unwrap();
    let run = p.begin(None).unwrap();
    assert_eq!(p.admit(&run).unwrap_err(), Rejected::BulkheadFull);
    assert_eq!(breaker.snapshot().ignored, 1, "the breaker permit: ignored");
    let s = shed.snapshot();
    assert_eq!((s.in_flight, s.drops), (0, 0), "the shed permit: returned");
    drop(held);
    let a = p.admit(&run).unwrap();
    assert_eq!(shed.snapshot().in_flight, 1);
    p.finish(a, Outcome::Success);
    let s = shed.snapshot();
    assert_eq!((s.in_flight, s.drops, s.limit), (0, 0, 4));
    assert_eq!(bulkhead.snapshot().available, 1);
}

#[test]
fn a_failure_past_its_deadline_is_a_drop_for_the_adaptive_limit() {
    let clock = ManualClock::new();
    let shed = adaptive(&clock, 4);
    let p = Builder::with_clock(clock.clone())
        .adaptive_limit(shed.clone())
        .attempt_timeout(100 * MS)
        .build()
        .unwrap();
    let run = p.begin(None).unwrap();
    let a = p.admit(&run).unwrap();
    clock.advance(50 * MS);
    p.finish(a, Outcome::Failure);
    assert_eq!(
        shed.snapshot().drops,
        0,
        "failed in time: the dependency's error"
    );
    let a = p.admit(&run).unwrap();
    clock.advance(150 * MS);
    p.finish(a, Outcome::Failure);
    assert_eq!(shed.snapshot().drops, 1, "out of time: overload");
}

#[test]
fn the_callers_deadline_bounds_the_total_and_refusals_are_retried_only_if_asked() {
    let clock = ManualClock::new();
    let retry = Arc::new(
        RetryBuilder::with_clock(clock.clone())
            .max_attempts(3)
            .backoff(Backoff::Constant(MS))
            .jitter(Jitter::None)
            .retry_rejected(true)
            .build()
            .unwrap(),
    );
    let limiter = Arc::new(
        LimiterBuilder::with_clock(clock.clone())
            .rate(1, Duration::from_secs(1))
            .burst(1)
            .build()
            .unwrap(),
    );
    let p = Builder::with_clock(clock.clone())
        .total_timeout(Duration::from_secs(10))
        .retry(retry)
        .rate_limiter(limiter)
        .build()
        .unwrap();
    let outer = Deadline::after_on(&clock, Duration::from_secs(5));
    let mut run = p.begin(Some(outer)).unwrap();
    assert_eq!(run.deadline(), outer, "the earlier of the two");
    let a = p.admit(&run).unwrap();
    p.finish(a, Outcome::Success);
    let refused = p.admit(&run).unwrap_err();
    assert!(matches!(refused, Rejected::RateLimited { .. }));
    assert_eq!(
        p.next(&mut run, Ended::Refused(refused)),
        Ok(refused.retry_after()),
        "retried no sooner than the limiter's retry_after"
    );
    clock.advance(Duration::from_secs(6));
    assert_eq!(p.admit(&run).unwrap_err(), Rejected::DeadlineExceeded);
    assert_eq!(
        p.begin(Some(Deadline::at(0))).unwrap_err(),
        Rejected::DeadlineExceeded,
        "a call whose deadline has passed never starts"
    );
    let no_retry = Builder::with_clock(clock.clone()).build().unwrap();
    let mut run = no_retry.begin(None).unwrap();
    assert_eq!(run.attempt(), 1);
    assert_eq!(
        no_retry.next(&mut run, Ended::Outcome(Outcome::Failure)),
        Ok(None),
        "no retry policy: one attempt"
    );
}

#[test]
fn a_panicking_call_gives_its_permits_back() {
    let l = layers(3);
    let p = pipeline(&l);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.call(|_| -> Result<(), ()> { panic!("bug in the call") })
    }));
    assert!(r.is_err(), "the panic propagates");
    assert_eq!(
        l.bulkhead.snapshot().available,
        1,
        "the bulkhead permit returned"
    );
    let b = l.breaker.snapshot();
    assert_eq!((b.ignored, b.failures), (1, 0), "counted as neither");
    assert_eq!(
        p.call(|_| Ok::<_, ()>(1)),
        Ok(1),
        "the pipeline still works"
    );
}
