//! Retry specifications in virtual time.

use super::*;
use crate::clock::ManualClock;
use proptest::prelude::*;
use std::cell::{Cell, RefCell};

const MS: Duration = Duration::from_millis(1);

fn policy(attempts: u32, backoff: Backoff, jitter: Jitter) -> (ManualClock, Retry<ManualClock>) {
    let clock = ManualClock::new();
    let r = Builder::with_clock(clock.clone())
        .max_attempts(attempts)
        .backoff(backoff)
        .jitter(jitter)
        .seed(7)
        .build()
        .unwrap();
    (clock, r)
}

#[test]
fn backoffs_grow_as_documented_and_stop_at_their_cap() {
    let c = Backoff::Constant(5 * MS);
    assert_eq!((c.delay(1), c.delay(9)), (5 * MS, 5 * MS));
    let l = Backoff::Linear {
        initial: 10 * MS,
        step: 5 * MS,
        max: 22 * MS,
    };
    let ls: Vec<_> = (1..=4).map(|k| l.delay(k)).collect();
    assert_eq!(ls, vec![10 * MS, 15 * MS, 20 * MS, 22 * MS]);
    // The default shape: 100 ms doubling, capped at 10 s.
    let e = Backoff::exponential(100 * MS, 2.0, Duration::from_secs(10));
    let es: Vec<_> = (1..=9).map(|k| e.delay(k).as_millis()).collect();
    assert_eq!(
        es,
        vec![100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
    );
    assert_eq!(e.delay(u32::MAX), Duration::from_secs(10));
}

#[test]
fn retries_until_success_sleeping_the_backoff() {
    let (clock, r) = policy(
        5,
        Backoff::exponential(100 * MS, 2.0, Duration::from_secs(1)),
        Jitter::None,
    );
    let calls = Cell::new(0);
    let t0 = clock.now();
    let out: Result<u32, Error<&str>> = r.call(|| {
        calls.set(calls.get() + 1);
        if calls.get() < 4 {
            Err("boom")
        } else {
            Ok(calls.get())
        }
    });
    assert_eq!(out, Ok(4));
    assert_eq!(clock.now() - t0, 700_000_000, "100 + 200 + 400 ms");
    let s = r.snapshot();
    assert_eq!((s.calls, s.attempts, s.retries), (1, 4, 3));
}

#[test]
fn gives_up_with_the_last_error_after_max_attempts() {
    let (_, r) = policy(3, Backoff::Constant(MS), Jitter::None);
    let n = Cell::new(0);
    let out: Result<(), Error<u32>> = r.call(|| {
        n.set(n.get() + 1);
        Err(n.get())
    });
    assert_eq!(out, Err(Error::Inner(3)));
}

#[test]
fn a_predicate_chooses_what_to_retry_including_ok_values() {
    let (_, r) = policy(5, Backoff::Constant(MS), Jitter::None);
    let codes = RefCell::new(vec![503u16, 503, 200].into_iter());
    let out: Result<u16, Error<()>> = r.call_when(
        |res: &Result<u16, ()>| matches!(res, Ok(503)),
        || Ok(codes.borrow_mut().next().unwrap()),
    );
    assert_eq!(out, Ok(200));
    // A final error is not retried.
    let n = Cell::new(0);
    let out: Result<(), Error<&str>> = r.call_when(
        |res: &Result<(), &str>| res != &Err("not found"),
        || {
            n.set(n.get() + 1);
            Err("not found")
        },
    );
    assert_eq!((out, n.get()), (Err(Error::Inner("not found")), 1));
}

#[test]
fn the_hook_sees_each_retry_before_its_sleep() {
    let (_, r) = policy(3, Backoff::Constant(7 * MS), Jitter::None);
    let seen = RefCell::new(vec![]);
    let _ = r.run(
        None,
        |res: &Result<(), &str>| res.is_err(),
        |e| seen.borrow_mut().push((e.attempt, e.delay, *e.result)),
        || Err("x"),
    );
    assert_eq!(
        *seen.borrow(),
        vec![(1, 7 * MS, Err("x")), (2, 7 * MS, Err("x"))]
    );
}

#[test]
fn never_sleeps_past_the_deadline() {
    let (clock, r) = policy(10, Backoff::Constant(40 * MS), Jitter::None);
    let deadline = Deadline::after_on(&clock, 100 * MS);
    let n = Cell::new(0);
    let out: Result<(), Error<u32>> = r.run(
        Some(deadline),
        |res| res.is_err(),
        |_| {},
        || {
            n.set(n.get() + 1);
            Err(n.get())
        },
    );
    // Attempts at 0, 40, 80 ms; a fourth would start at 120 ms.
    assert_eq!(out, Err(Error::Inner(3)));
    assert!(
        !deadline.is_expired_on(&clock),
        "gave up instead of oversleeping"
    );
    // A deadline already past: no attempt at all.
    clock.advance(Duration::from_secs(1));
    let out: Result<(), Error<u32>> = r.run(Some(deadline), |_| true, |_| {}, || unreachable!());
    assert_eq!(out, Err(Error::Rejected(Rejected::DeadlineExceeded)));
    assert_eq!(r.snapshot().deadline_refusals, 1);
}

#[test]
fn max_elapsed_bounds_the_whole_loop() {
    let clock = ManualClock::new();
    let r = Builder::with_clock(clock.clone())
        .max_attempts(100)
        .max_elapsed(Duration::from_millis(250))
        .backoff(Backoff::Constant(100 * MS))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let n = Cell::new(0);
    let _: Result<(), Error<()>> = r.call(|| {
        n.set(n.get() + 1);
        Err(())
    });
    assert_eq!(n.get(), 3, "attempts at 0, 100, 200 ms");
}

#[test]
fn rejections_are_not_retried_unless_asked() {
    let (_, r) = policy(5, Backoff::Constant(MS), Jitter::None);
    let n = Cell::new(0);
    let open = Rejected::CircuitOpen {
        retry_after: Some(50 * MS),
    };
    let out: Result<(), Error<&str>> = r.call_protected(None, || {
        n.set(n.get() + 1);
        Err(Error::Rejected(open))
    });
    assert_eq!((out, n.get()), (Err(Error::Rejected(open)), 1));

    let clock = ManualClock::new();
    let r = Builder::with_clock(clock.clone())
        .max_attempts(3)
        .backoff(Backoff::Constant(MS))
        .jitter(Jitter::None)
        .retry_rejected(true)
        .build()
        .unwrap();
    let n = Cell::new(0);
    let t0 = clock.now();
    let out: Result<u32, Error<&str>> = r.call_protected(None, || {
        n.set(n.get() + 1);
        if n.get() == 1 {
            Err(Error::Rejected(open))
        } else if n.get() == 2 {
            Err(Error::Inner("flaky"))
        } else {
            Ok(9)
        }
    });
    assert_eq!(out, Ok(9));
    assert_eq!(
        clock.now() - t0,
        51_000_000,
        "waited out retry_after, then 1 ms"
    );
}

#[test]
fn an_exhausted_budget_refuses_retries() {
    let clock = ManualClock::new();
    let budget =
        Arc::new(RetryBudget::with(0.5, 0.0, Duration::from_secs(10), clock.clone()).unwrap());
    let r = Builder::with_clock(clock.clone())
        .max_attempts(10)
        .backoff(Backoff::Constant(MS))
        .jitter(Jitter::None)
        .budget(budget.clone())
        .build()
        .unwrap();
    // Two calls deposit one retry's worth: the first call gets it.
    budget.deposit();
    let out: Result<(), Error<()>> = r.call(|| Err(()));
    assert_eq!(out, Err(Error::Rejected(Rejected::RetryBudgetExhausted)));
    let s = r.snapshot();
    assert_eq!((s.retries, s.budget_refusals), (1, 1));
    assert_eq!(budget.refused(), 1);
}

#[test]
fn invalid_configuration_names_the_field() {
    let f = |b: Builder| b.build().unwrap_err().field();
    assert_eq!(f(Retry::builder().max_attempts(0)), "max_attempts");
    assert_eq!(
        f(Retry::builder().max_elapsed(Duration::ZERO)),
        "max_elapsed"
    );
    assert_eq!(
        f(Retry::builder().backoff(Backoff::exponential(MS, 0.5, Duration::from_secs(1)))),
        "backoff.multiplier"
    );
    assert_eq!(
        f(Retry::builder().backoff(Backoff::exponential(MS, f64::NAN, Duration::from_secs(1)))),
        "backoff.multiplier"
    );
    assert_eq!(
        f(Retry::builder().backoff(Backoff::exponential(Duration::ZERO, 2.0, MS))),
        "backoff.initial"
    );
    assert_eq!(
        f(Retry::builder().backoff(Backoff::exponential(10 * MS, 2.0, MS))),
        "backoff.max"
    );
    assert_eq!(f(Retry::builder().jitter(Jitter::Symmetric(1.5))), "jitter");
    let e = |r, m, t| {
        RetryBudget::with(r, m, t, ManualClock::new())
            .unwrap_err()
            .field()
    };
    assert_eq!(e(1.5, 3.0, Duration::from_secs(10)), "budget.ratio");
    assert_eq!(e(0.2, -1.0, Duration::from_secs(10)), "budget.min_per_sec");
    assert_eq!(e(0.2, 3.0, MS), "budget.ttl");
}

/// Mean of many seeded samples of one jitter at base 100 ms.
fn jitter_mean(j: Jitter) -> f64 {
    let b = Backoff::exponential(100 * MS, 2.0, Duration::from_secs(10));
    let rng = SharedRng::new(42);
    let n = 50_000;
    let sum: f64 = (0..n)
        .map(|_| {
            j.apply(100 * MS, 100 * MS, &b, rng.next_f64())
                .as_secs_f64()
        })
        .sum();
    sum / n as f64 * 1000.0
}

#[test]
fn jitter_means_match_their_formulas() {
    let close = |got: f64, want: f64| (got - want).abs() < want * 0.02;
    assert!(close(jitter_mean(Jitter::None), 100.0));
    assert!(
        close(jitter_mean(Jitter::Full), 50.0),
        "{}",
        jitter_mean(Jitter::Full)
    );
    assert!(close(jitter_mean(Jitter::Equal), 75.0));
    assert!(close(jitter_mean(Jitter::Symmetric(0.25)), 100.0));
    // Decorrelated from previous = initial = 100 ms: uniform in [100, 300).
    assert!(close(jitter_mean(Jitter::Decorrelated), 200.0));
}

proptest! {
    /// Every jitter stays within its documented bounds.
    #[test]
    fn jitter_stays_in_its_bounds(
        base_ms in 0u64..100_000, prev_ms in 0u64..100_000, u in 0.0f64..1.0, f in 0.0f64..=1.0,
    ) {
        let (base, prev) = (Duration::from_millis(base_ms), Duration::from_millis(prev_ms));
        let b = Backoff::exponential(10 * MS, 2.0, Duration::from_secs(60));
        let full = Jitter::Full.apply(base, prev, &b, u);
        prop_assert!(full <= base);
        let eq = Jitter::Equal.apply(base, prev, &b, u);
        prop_assert!(eq >= base / 2 && eq <= base);
        let sym = Jitter::Symmetric(f).apply(base, prev, &b, u);
        prop_assert!(sym.as_secs_f64() >= base.as_secs_f64() * (1.0 - f) - 1e-9);
        prop_assert!(sym.as_secs_f64() <= base.as_secs_f64() * (1.0 + f) + 1e-9);
        let dec = Jitter::Decorrelated.apply(base, prev, &b, u);
        prop_assert!(dec >= 10 * MS && dec <= Duration::from_secs(60));
        prop_assert!(dec <= prev.max(10 * MS) * 3);
        prop_assert_eq!(Jitter::None.apply(base, prev, &b, u), base);
    }

    /// Under sustained failure, with every call wanting many retries, the
    /// budget holds retries to its ratio of calls plus its floor (and the
    /// slack of one window's estimate), and does not starve below it.
    #[test]
    fn the_budget_holds_retries_to_its_ratio(
        calls_per_sec in 5u64..200, seconds in 20u64..120, ratio in 0.05f64..0.5,
    ) {
        let clock = ManualClock::new();
        let ttl = 10u64;
        let floor = 3.0;
        let budget = RetryBudget::with(ratio, floor, Duration::from_secs(ttl), clock.clone()).unwrap();
        let step = Duration::from_nanos(1_000_000_000 / calls_per_sec);
        let (mut calls, mut retries) = (0u64, 0u64);
        for _ in 0..seconds * calls_per_sec {
            clock.advance(step);
            budget.deposit();
            calls += 1;
            for _ in 0..5 {
                if budget.try_withdraw() { retries += 1 } else { break }
            }
        }
        let bound = ratio * calls as f64 + floor * (seconds + ttl) as f64
            + ratio * (calls_per_sec * ttl) as f64;
        prop_assert!((retries as f64) <= bound, "{} retries for {} calls (bound {})", retries, calls, bound);
        let floor_only = (ratio * calls as f64) * 0.7;
        prop_assert!((retries as f64) >= floor_only, "{} retries for {} calls: starved", retries, calls);
    }
}

#[test]
fn an_outside_loop_through_begin_and_next_matches_the_built_in_loop() {
    // Same seed, same clock steps: the delays core's loop sleeps and the
    // delays `Run::next` hands out are the same sequence.
    let backoff = Backoff::exponential(10 * MS, 2.0, Duration::from_secs(1));
    let (clock_a, a) = policy(5, backoff, Jitter::Full);
    let slept = RefCell::new(Vec::new());
    let out: Result<(), Error<()>> = a.run(
        None,
        |r| r.is_err(),
        |e| slept.borrow_mut().push(e.delay),
        || Err(()),
    );
    assert_eq!(out, Err(Error::Inner(())));
    let (clock_b, b) = policy(5, backoff, Jitter::Full);
    let mut run = b.begin(None).unwrap();
    let mut delays = Vec::new();
    assert_eq!(run.attempt(), 1);
    while let Some(d) = b.step(&mut run, Duration::ZERO).unwrap() {
        delays.push(d);
        clock_b.advance(d);
    }
    assert_eq!(run.attempt(), 5);
    assert_eq!(delays, *slept.borrow());
    assert_eq!(clock_a.now(), clock_b.now());
    assert_eq!(a.snapshot().retries, b.snapshot().retries);
    // `at_least` raises a delay (a rejection's retry_after).
    let mut run = b.begin(None).unwrap();
    assert_eq!(
        b.step(&mut run, Duration::from_secs(5)).unwrap(),
        Some(Duration::from_secs(5))
    );
}

#[test]
fn an_outside_loop_meets_the_deadline_and_the_budget() {
    let (clock, r) = policy(10, Backoff::Constant(40 * MS), Jitter::None);
    let deadline = Deadline::after_on(&clock, 100 * MS);
    let mut run = r.begin(Some(deadline)).unwrap();
    assert_eq!(r.step(&mut run, Duration::ZERO).unwrap(), Some(40 * MS));
    clock.advance(40 * MS);
    assert_eq!(r.step(&mut run, Duration::ZERO).unwrap(), Some(40 * MS));
    clock.advance(40 * MS);
    // 80 ms gone: a third sleep would overrun the 100 ms deadline.
    assert_eq!(r.step(&mut run, Duration::ZERO).unwrap(), None);
    clock.advance(40 * MS);
    assert_eq!(
        r.begin(Some(deadline)).unwrap_err(),
        Rejected::DeadlineExceeded
    );

    let budget =
        Arc::new(RetryBudget::with(0.5, 0.0, Duration::from_secs(10), clock.clone()).unwrap());
    let r = Builder::with_clock(clock.clone())
        .max_attempts(10)
        .backoff(Backoff::Constant(MS))
        .budget(budget)
        .build()
        .unwrap();
    let _first = r.begin(None).unwrap();
    let mut run = r.begin(None).unwrap();
    assert!(r.step(&mut run, Duration::ZERO).unwrap().is_some());
    assert_eq!(
        r.step(&mut run, Duration::ZERO),
        Err(Rejected::RetryBudgetExhausted)
    );
}

#[test]
fn a_run_survives_the_trip_through_raw_numbers() {
    let (clock, r) = policy(3, Backoff::Constant(40 * MS), Jitter::None);
    let deadline = Deadline::after_on(&clock, 100 * MS);
    let mut run = r.begin(Some(deadline)).unwrap();
    assert_eq!(r.step(&mut run, Duration::ZERO).unwrap(), Some(40 * MS));
    let mut back = Run::from_raw(run.into_raw());
    assert_eq!(back.attempt(), 2);
    assert_eq!(r.step(&mut back, Duration::ZERO).unwrap(), Some(40 * MS));
    assert_eq!(
        r.step(&mut back, Duration::ZERO).unwrap(),
        None,
        "3 attempts"
    );
    let none = r.begin(None).unwrap();
    assert_eq!(Run::from_raw(none.into_raw()).into_raw(), none.into_raw());
}

/// Calls deposited long ago never pay for retries now, however long the
/// gap — up to an exact multiple of the 32-bit epoch tags the budget once
/// used (2^32 epochs of its window, 136 years), where old counts read as
/// current.
#[test]
fn a_budget_forgets_old_calls_after_any_idle_gap() {
    let ttl = Duration::from_secs(1);
    for gap in [
        Duration::from_secs(3600),
        Duration::from_secs(10 * 365 * 24 * 3600),
        ttl * u32::MAX + ttl, // exactly 2^32 epochs
        ttl * u32::MAX * 2 + ttl * 2,
    ] {
        let clock = ManualClock::new();
        let b = RetryBudget::with(0.5, 0.0, ttl, clock.clone()).unwrap();
        for _ in 0..100 {
            b.deposit();
        }
        assert!(b.try_withdraw(), "50% of 100 calls");
        clock.advance(gap);
        assert!(!b.try_withdraw(), "no call in the window after {gap:?}");
        b.deposit();
        b.deposit();
        assert!(b.try_withdraw(), "new calls count again after {gap:?}");
    }
}

proptest! {
    /// The budget against a plain model, within one epoch (the previous one
    /// empty): a withdrawal succeeds exactly when the retries taken so far
    /// plus one fit `ratio × calls so far + min_per_sec × ttl`, and every
    /// refusal is counted.
    #[test]
    fn budget_matches_the_reference_model(
        ratio_pct in 0u32..=100,
        min_per_sec in 0u32..4,
        ops in proptest::collection::vec(any::<bool>(), 0..120),
    ) {
        let ratio = ratio_pct as f64 / 100.0;
        let ttl = Duration::from_secs(10);
        // At the start of epoch 7 of 10 s: the window is this epoch alone.
        let clock = ManualClock::starting_at(70_000_000_000);
        let b = RetryBudget::with(ratio, min_per_sec as f64, ttl, clock).unwrap();
        let (mut calls, mut retries, mut refused) = (0u64, 0u64, 0u64);
        for deposit in ops {
            if deposit {
                b.deposit();
                calls += 1;
            } else {
                let allowed = ratio * calls as f64 + min_per_sec as f64 * 10.0;
                let expect = retries as f64 + 1.0 <= allowed;
                prop_assert_eq!(b.try_withdraw(), expect, "calls {} retries {}", calls, retries);
                if expect { retries += 1 } else { refused += 1 }
            }
        }
        prop_assert_eq!(b.refused(), refused);
    }
}
