//! Breaker specifications: unit tests in virtual time, a property test
//! against a plain reference model, and multi-threaded stress tests.

use super::*;
use crate::clock::ManualClock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

const MS: Duration = Duration::from_millis(1);

fn manual() -> (ManualClock, Builder<ManualClock>) {
    let clock = ManualClock::new();
    (clock.clone(), Builder::with_clock(clock))
}

fn fail(b: &CircuitBreaker<ManualClock>, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("admitted").failure();
    }
}

fn succeed(b: &CircuitBreaker<ManualClock>, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("admitted").success();
    }
}

/// A breaker tripped by one failure whose 1 ms open period has just ended:
/// the next caller becomes the first of `probes` half-open probes.
fn ready_to_probe(probes: u32) -> (ManualClock, CircuitBreaker<ManualClock>) {
    let (clock, b) = manual();
    let b = b
        .consecutive_failures(1)
        .open_for(MS)
        .half_open_calls(probes)
        .build()
        .unwrap();
    fail(&b, 1);
    clock.advance(MS);
    (clock, b)
}

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
fn generations_keep_counting_across_the_tag_refresh() {
    // Drive the generation past several refresh points and through the
    // 21-bit wrap-around; the windows must keep counting correctly.
    let (clock, b) = manual();
    let b = b
        .failure_rate(0.5, Window::Count(8))
        .consecutive_failures(3)
        .minimum_calls(4)
        .open_for(MS)
        .build()
        .unwrap();
    succeed(&b, 8); // slots and counters tagged with generation 0
    let target = (1u64 << 21) + 3;
    while b.snapshot().transitions < target {
        b.force_open();
        b.reset();
    }
    fail(&b, 2);
    succeed(&b, 1);
    let s = b.snapshot();
    assert_eq!((s.window_calls, s.consecutive_failures), (3, 0));
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "2 of 4 failed");
    clock.advance(MS);
}

/// Counts probes out per half-open generation: a slot holds
/// `[generation:32 | count:32]`; a slot busy with another live generation
/// (possible only after 2^16 transitions) skips the check for that probe.
struct ProbeCounter(Vec<std::sync::atomic::AtomicU64>);

impl ProbeCounter {
    fn enter(&self, gen: u64) -> Option<u64> {
        let slot = &self.0[(gen & 0xFFFF) as usize];
        let mut cur = slot.load(Ordering::SeqCst);
        loop {
            let new = if cur >> 32 == gen {
                cur + 1
            } else if cur & 0xFFFF_FFFF == 0 {
                (gen << 32) | 1
            } else {
                return None;
            };
            match slot.compare_exchange(cur, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Some(new & 0xFFFF_FFFF),
                Err(a) => cur = a,
            }
        }
    }

    fn leave(&self, gen: u64) {
        self.0[(gen & 0xFFFF) as usize].fetch_sub(1, Ordering::SeqCst);
    }
}

/// ≥ 2 threads, ≥ 10^6 operations: no half-open period ever has more probes
/// out than allowed, checked with independent counters.
#[test]
fn stress_half_open_never_admits_more_probes_than_allowed() {
    const THREADS: usize = 4;
    const OPS: usize = 250_000;
    const PROBES: u64 = 3;
    let clock = ManualClock::new();
    let b = Arc::new(
        Builder::with_clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::from_nanos(1))
            .half_open_calls(PROBES as u32)
            .build()
            .unwrap(),
    );
    let probes = Arc::new(ProbeCounter(
        (0..1 << 16).map(|_| Default::default()).collect(),
    ));
    let checked = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (b, probes, clock, checked) =
                (b.clone(), probes.clone(), clock.clone(), checked.clone());
            thread::spawn(move || {
                let mut x = t as u64 + 1;
                for _ in 0..OPS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    clock.advance(Duration::from_nanos(1));
                    let Ok(p) = b.try_acquire() else { continue };
                    let gen = p.generation();
                    let entered = if p.state() == State::HalfOpen {
                        probes.enter(gen)
                    } else {
                        None
                    };
                    if let Some(n) = entered {
                        checked.fetch_add(1, Ordering::Relaxed);
                        assert!(n <= PROBES, "{n} probes out in generation {gen}");
                        // Leave before recording: after that the slot is free.
                        probes.leave(gen);
                    }
                    match x % 4 {
                        0 => p.failure(),
                        1 => drop(p),
                        _ => p.success(),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = b.snapshot();
    assert!(s.transitions > 100, "the run exercised transitions");
    assert!(
        checked.load(Ordering::Relaxed) > 1000,
        "probes were checked"
    );
    assert_eq!(
        s.calls + s.ignored + s.rejected,
        (THREADS * OPS) as u64,
        "every call is accounted for exactly once"
    );
}

#[test]
fn stress_closed_path_counts_every_outcome() {
    const THREADS: usize = 4;
    const OPS: usize = 250_000;
    let b = Arc::new(
        CircuitBreaker::builder()
            .failure_rate(1.0, Window::Count(100))
            .build()
            .unwrap(),
    );
    let failures = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (b, failures) = (b.clone(), failures.clone());
            thread::spawn(move || {
                for i in 0..OPS {
                    let p = b.try_acquire().unwrap();
                    if (i + t) % 3 == 0 {
                        failures.fetch_add(1, Ordering::Relaxed);
                        p.failure();
                    } else {
                        p.success();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = b.snapshot();
    assert_eq!(s.state, State::Closed, "33% < 100%");
    assert_eq!(s.calls, (THREADS * OPS) as u64);
    assert_eq!(s.failures, failures.load(Ordering::Relaxed) as u64);
    assert_eq!(s.window_calls, 100);
    let window_failures = (s.failure_rate * 100.0).round() as u64;
    assert!((25..=45).contains(&window_failures), "{window_failures}");
}

mod model;
mod rule;
mod settings;
mod wrap;

/// Calls counted per thread stripe add up exactly in the time window.
#[test]
fn stress_time_window_counts_every_call_across_threads() {
    const THREADS: usize = 4;
    const OPS: usize = 250_000;
    let clock = ManualClock::new();
    let b = Arc::new(
        Builder::with_clock(clock.clone())
            .failure_rate(
                1.0,
                Window::Time {
                    length: Duration::from_secs(10),
                    buckets: 10,
                },
            )
            .build()
            .unwrap(),
    );
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let b = b.clone();
            thread::spawn(move || {
                for i in 0..OPS {
                    let p = b.try_acquire().unwrap();
                    if (i + t) % 4 == 0 {
                        p.failure();
                    } else {
                        p.success();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = b.snapshot();
    assert_eq!(s.window_calls, (THREADS * OPS) as u64);
    assert_eq!(s.failure_rate, 0.25);
    clock.advance(Duration::from_secs(10));
    assert_eq!(b.snapshot().window_calls, 0, "all of it aged out");
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
