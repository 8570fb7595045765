//! loom models of the circuit breaker's lock-free paths.
//!
//! Run with `RUSTFLAGS="--cfg failwell_loom" LOOM_MAX_PREEMPTIONS=2 cargo
//! test -p failwell-loom-tests --release`.
#![cfg(failwell_loom)]

use std::time::Duration;

use failwell::breaker::{Builder, CircuitBreaker, State, Window};
use failwell::clock::ManualClock;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// A breaker tripped by one failure whose open period has just ended: the
/// next callers are half-open probes, at most `probes` of them.
fn ready_to_probe(probes: u32) -> Arc<CircuitBreaker<ManualClock>> {
    let clock = ManualClock::new();
    let b = Builder::with_clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_nanos(1))
        .half_open_calls(probes)
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    clock.advance(Duration::from_nanos(1));
    Arc::new(b)
}

/// Three callers race at the end of the open period; half-open admits
/// exactly `half_open_calls` of them (here 2) while they hold their permits.
#[test]
fn half_open_admits_at_most_its_probes() {
    loom::model(|| {
        let b = ready_to_probe(2);
        let admitted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (b, admitted) = (b.clone(), admitted.clone());
                thread::spawn(move || {
                    if let Ok(p) = b.try_acquire() {
                        assert_eq!(p.state(), State::HalfOpen);
                        admitted.fetch_add(1, SeqCst);
                        // Hold the slot for the rest of the model.
                        std::mem::forget(p);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(admitted.load(SeqCst), 2);
        assert_eq!(b.state(), State::HalfOpen);
    });
}

/// Two failing calls at once, the second of which trips the breaker: it
/// opens exactly once, and the listener hears of it once.
#[test]
fn concurrent_failures_trip_exactly_once() {
    loom::model(|| {
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(ManualClock::new())
                .failure_rate(0.5, Window::Count(4))
                .minimum_calls(2)
                .build()
                .unwrap(),
        );
        let opened = Arc::new(AtomicUsize::new(0));
        {
            let opened = opened.clone();
            b.add_listener(move |t| {
                if t.to == State::Open {
                    opened.fetch_add(1, SeqCst);
                }
            });
        }
        // Take both permits first so that both calls are admitted.
        let tokens = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (b, tokens) = (b.clone(), tokens.clone());
                thread::spawn(move || {
                    let p = b.try_acquire().expect("closed");
                    tokens.fetch_add(1, SeqCst);
                    while tokens.load(SeqCst) < 2 {
                        thread::yield_now();
                    }
                    p.failure();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(b.state(), State::Open);
        assert_eq!(opened.load(SeqCst), 1);
        let s = b.snapshot();
        assert_eq!((s.opened, s.transitions), (1, 1));
    });
}

/// A failure recorded on a permit from the generation before a reset never
/// shows in the new generation's window or consecutive count.
#[test]
fn an_old_generation_permit_does_not_change_new_counts() {
    loom::model(|| {
        let b = Arc::new(
            CircuitBreaker::builder()
                .clock(ManualClock::new())
                .failure_rate(1.0, Window::Count(2))
                .consecutive_failures(3)
                .minimum_calls(2)
                .build()
                .unwrap(),
        );
        let old = {
            let b = b.clone();
            thread::spawn(move || {
                let p = b.try_acquire().expect("closed");
                let gen = p.generation();
                p.failure();
                gen
            })
        };
        let fresh = {
            let b = b.clone();
            thread::spawn(move || {
                b.reset();
                let p = b.try_acquire().expect("closed");
                let gen = p.generation();
                p.success();
                gen
            })
        };
        let old_gen = old.join().unwrap();
        let fresh_gen = fresh.join().unwrap();
        let s = b.snapshot();
        assert_eq!(s.generation, fresh_gen);
        if old_gen == fresh_gen {
            // The old thread's permit was taken after the reset.
            assert_eq!((s.window_calls, s.failure_rate), (2, 0.5));
            assert!(s.consecutive_failures <= 1);
        } else {
            assert_eq!((s.window_calls, s.consecutive_failures), (1, 0));
            assert_eq!(s.failure_rate, 0.0);
        }
        assert_eq!(s.failures, 1, "cumulative metrics count it either way");
    });
}

/// A probe dropped unrecorded frees its slot for a racing caller, and a
/// probe's verdict races with a late caller without over-admitting.
#[test]
fn dropped_probe_frees_its_slot_under_races() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = Builder::with_clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::from_nanos(1))
            .half_open_calls(1)
            .build()
            .unwrap();
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_nanos(1));
        let b = Arc::new(b);
        let first = b.try_acquire().expect("the first caller probes");
        let out = Arc::new(AtomicUsize::new(1));
        let racer = {
            let (b, out) = (b.clone(), out.clone());
            thread::spawn(move || {
                if let Ok(p) = b.try_acquire() {
                    let n = out.fetch_add(1, SeqCst) + 1;
                    assert!(n <= 1, "two probes out with a limit of one");
                    out.fetch_sub(1, SeqCst);
                    p.success();
                }
            })
        };
        out.fetch_sub(1, SeqCst);
        drop(first);
        racer.join().unwrap();
        let s = b.snapshot();
        assert_eq!(s.ignored, 1);
        assert!(matches!(s.state, State::HalfOpen | State::Closed));
    });
}

/// A reconfiguration racing half-open probes: the probe limit in force is
/// the old or the new one, never more; the half-open reaches a verdict under
/// one of them; the state word's probe accounting stays consistent (every
/// admitted probe's outcome is counted once and the breaker closes).
#[test]
fn reconfiguring_during_half_open_admits_under_the_old_or_new_limit() {
    loom::model(|| {
        let b = ready_to_probe(2);
        let admitted = Arc::new(AtomicUsize::new(0));
        let changer = {
            let b = b.clone();
            thread::spawn(move || b.reconfigure(|c| c.half_open_calls(1)).unwrap())
        };
        let probes: Vec<_> = (0..2)
            .map(|_| {
                let (b, admitted) = (b.clone(), admitted.clone());
                thread::spawn(move || {
                    if let Ok(p) = b.try_acquire() {
                        admitted.fetch_add(1, SeqCst);
                        p.success();
                    }
                })
            })
            .collect();
        changer.join().unwrap();
        for t in probes {
            t.join().unwrap();
        }
        let n = admitted.load(SeqCst);
        assert!((1..=2).contains(&n), "admitted {n}");
        assert_eq!(b.config().half_open_calls(), 1);
        // Every admitted probe succeeded: the verdict under either limit
        // is Closed once the limit in force has been reached, which the
        // last probe, seeing limit 1, always reaches.
        assert_eq!(b.state(), State::Closed);
    });
}
