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
