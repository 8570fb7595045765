//! Many threads, many generations: invariants checked with independent counters.

use super::*;

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
