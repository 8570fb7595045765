//! Rate-limiter specifications: unit tests in virtual time, property tests
//! against a leaky-bucket reference and the admission bound, and a
//! multi-threaded stress test.

use super::*;
use crate::clock::ManualClock;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

const MS: Duration = Duration::from_millis(1);

fn limiter(per_sec: u64, burst: u64) -> (ManualClock, RateLimiter<ManualClock>) {
    let clock = ManualClock::new();
    let l = Builder::with_clock(clock.clone())
        .rate(per_sec, Duration::from_secs(1))
        .burst(burst)
        .build()
        .unwrap();
    (clock, l)
}

#[test]
fn admits_a_burst_then_one_per_interval() {
    let (clock, l) = limiter(100, 3); // one every 10 ms
    for _ in 0..3 {
        l.try_acquire().unwrap();
    }
    assert_eq!(
        l.try_acquire(),
        Err(Rejected::RateLimited {
            retry_after: 10 * MS
        })
    );
    clock.advance(9 * MS);
    assert_eq!(
        l.try_acquire(),
        Err(Rejected::RateLimited { retry_after: MS })
    );
    clock.advance(MS);
    l.try_acquire().unwrap();
    assert!(l.try_acquire().is_err());
    clock.advance(Duration::from_secs(5)); // a long quiet period refills only the burst
    for _ in 0..3 {
        l.try_acquire().unwrap();
    }
    assert!(l.try_acquire().is_err());
    let s = l.snapshot();
    assert_eq!((s.admitted, s.rejected, s.burst), (7, 4, 3));
    assert_eq!(s.interval, 10 * MS);
}

#[test]
fn weighted_requests_cost_their_weight() {
    let (clock, l) = limiter(1000, 10); // one per ms
    l.try_acquire_n(0).unwrap();
    l.try_acquire_n(7).unwrap();
    assert_eq!(
        l.try_acquire_n(4),
        Err(Rejected::RateLimited { retry_after: MS })
    );
    l.try_acquire_n(3).unwrap();
    assert_eq!(
        l.try_acquire_n(11),
        Err(Rejected::ExceedsCapacity {
            requested: 11,
            capacity: 10
        })
    );
    clock.advance(5 * MS);
    l.try_acquire_n(5).unwrap();
}

#[test]
fn next_ready_says_when_one_request_conforms() {
    let (clock, l) = limiter(10, 1); // one per 100 ms
    assert_eq!(l.next_ready(), Duration::ZERO);
    l.try_acquire().unwrap();
    assert_eq!(l.next_ready(), 100 * MS);
    clock.advance(40 * MS);
    assert_eq!(l.next_ready(), 60 * MS);
}

#[test]
fn blocking_acquire_reserves_a_slot_and_sleeps_until_it() {
    let (clock, l) = limiter(10, 1);
    l.try_acquire().unwrap();
    let t0 = clock.now();
    l.acquire_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(clock.now() - t0, 100_000_000, "slept exactly to the slot");
    // The next slot is 100 ms away: a 50 ms timeout fails at once.
    let t1 = clock.now();
    assert_eq!(
        l.acquire_timeout(50 * MS),
        Err(Rejected::RateLimited {
            retry_after: 100 * MS
        })
    );
    assert_eq!(clock.now(), t1, "no sleep when the slot is out of reach");
}

#[test]
fn blocking_acquire_with_the_real_clock_sleeps() {
    let l = RateLimiter::builder()
        .rate(50, Duration::from_secs(1)) // one per 20 ms
        .burst(1)
        .precise(true)
        .build()
        .unwrap();
    l.try_acquire().unwrap();
    let t = std::time::Instant::now();
    l.acquire_timeout(Duration::from_secs(5)).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(15));
}

#[test]
fn live_reconfiguration_keeps_state() {
    let (clock, l) = limiter(100, 2);
    l.try_acquire().unwrap();
    l.try_acquire().unwrap();
    l.set_rate(1000, Duration::from_secs(1)).unwrap(); // one per ms, burst 2
    assert_eq!(l.snapshot().burst, 2);
    clock.advance(10 * MS);
    l.set_burst(5).unwrap();
    // The debt taken at the old rate (TAT 20 ms ahead of the start) stays:
    // the next request at 1 ms per request and a 5 ms burst conforms at
    // 21 ms - 5 ms = 16 ms, 6 ms from now.
    assert_eq!(
        l.try_acquire(),
        Err(Rejected::RateLimited {
            retry_after: 6 * MS
        })
    );
    clock.advance(10 * MS); // the debt is paid: a full burst of 5
    for _ in 0..5 {
        l.try_acquire().unwrap();
    }
    assert!(l.try_acquire().is_err());
}

#[test]
fn invalid_configuration_names_the_field() {
    let err = |b: Builder| b.build().unwrap_err().field();
    assert_eq!(err(RateLimiter::builder()), "rate");
    assert_eq!(err(RateLimiter::builder().rate(0, MS)), "rate");
    assert_eq!(err(RateLimiter::builder().rate(1, Duration::ZERO)), "rate");
    assert_eq!(err(RateLimiter::builder().rate(1, MS).burst(0)), "burst");
    assert_eq!(
        err(RateLimiter::builder()
            .rate(1, Duration::from_secs(1))
            .burst(u64::MAX / 2)),
        "burst"
    );
    let (_, l) = limiter(10, 1);
    assert_eq!(l.set_rate(0, MS).unwrap_err().field(), "rate");
    assert_eq!(l.set_burst(0).unwrap_err().field(), "burst");
}

#[test]
fn the_interval_rounds_up_so_the_rate_is_never_exceeded() {
    let (_, l) = limiter(3, 1);
    assert_eq!(l.snapshot().interval, Duration::from_nanos(333_333_334));
}

/// ≥ 2 threads, ≥ 10^6 calls at one instant: exactly the burst is admitted,
/// counted independently.
#[test]
fn stress_concurrent_callers_never_exceed_the_burst() {
    const THREADS: usize = 4;
    const OPS: usize = 250_000;
    let (clock, l) = limiter(1000, 500);
    let l = Arc::new(l);
    let admitted = Arc::new(StdAtomicU64::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (l, admitted, clock) = (l.clone(), admitted.clone(), clock.clone());
            thread::spawn(move || {
                for i in 0..OPS {
                    if t == 0 && i % 1000 == 0 {
                        clock.advance(MS); // refills one request
                    }
                    if l.try_acquire().is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n = admitted.load(Ordering::Relaxed);
    // 250 advances of 1 ms at 1 per ms: at most burst + 250.
    assert!(n <= 500 + 250, "{n} admitted");
    assert!(n >= 500, "{n} admitted");
    let s = l.snapshot();
    assert_eq!(s.admitted, n);
    assert_eq!(s.admitted + s.rejected, (THREADS * OPS) as u64);
}

/// A leaky bucket, the reference: the level (in nanoseconds of work) drains
/// one nanosecond per nanosecond; a request adds `n · T` if the level stays
/// within `burst · T`.
struct LeakyBucket {
    level: u64,
    last: u64,
    interval: u64,
    limit: u64,
}

impl LeakyBucket {
    fn offer(&mut self, now: u64, n: u64) -> Result<(), u64> {
        self.level = self.level.saturating_sub(now - self.last);
        self.last = now;
        let after = self.level + n * self.interval;
        if after <= self.limit {
            self.level = after;
            Ok(())
        } else {
            Err(after - self.limit)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The limiter agrees with a leaky bucket on every verdict and wait, and
    /// no window of time admits more than `burst + elapsed / T`.
    #[test]
    fn matches_a_leaky_bucket_and_never_exceeds_the_bound(
        per_sec in 1u64..2000,
        burst in 1u64..20,
        ops in prop::collection::vec((0u64..30_000_000, 0u32..5), 1..300),
    ) {
        let (clock, l) = limiter(per_sec, burst);
        let interval = 1_000_000_000u64.div_ceil(per_sec);
        let mut reference = LeakyBucket { level: 0, last: clock.now(), interval, limit: burst * interval };
        let mut admitted: Vec<(u64, u64)> = vec![];
        for (advance, n) in ops {
            clock.advance(Duration::from_nanos(advance));
            let now = clock.now();
            let got = l.try_acquire_n(n);
            let want = if n as u64 > burst {
                Err(Rejected::ExceedsCapacity { requested: n, capacity: burst as u32 })
            } else {
                reference.offer(now, n as u64).map_err(|w| Rejected::RateLimited { retry_after: Duration::from_nanos(w) })
            };
            prop_assert_eq!(got, want);
            if got.is_ok() && n > 0 {
                admitted.push((now, n as u64));
            }
        }
        for i in 0..admitted.len() {
            let mut total = 0;
            for j in i..admitted.len() {
                total += admitted[j].1;
                let elapsed = admitted[j].0 - admitted[i].0;
                prop_assert!(total <= burst + elapsed / interval,
                    "{} admitted in {} ns with burst {} and T {}", total, elapsed, burst, interval);
            }
        }
    }

    /// The pure rule: a conforming request moves TAT by exactly its cost
    /// from max(TAT, now), and a refusal's wait is exactly what makes it
    /// conform.
    #[test]
    fn gcra_rule_is_exact(tat in 0u64..1 << 40, now in 0u64..1 << 40, n in 0u64..50, t in 1u64..1_000_000, burst in 1u64..50) {
        let (cost, limit) = (n * t, burst * t);
        if cost > limit {
            // More than the burst: no amount of waiting makes it conform.
            prop_assert!(gcra(tat, now.max(tat) + limit * 4, cost, limit).is_err());
            return Ok(());
        }
        match gcra(tat, now, cost, limit) {
            Ok(new_tat) => {
                prop_assert_eq!(new_tat, tat.max(now) + cost);
                prop_assert!(new_tat <= now + limit);
            }
            Err(wait) => {
                prop_assert!(wait > 0);
                prop_assert!(gcra(tat, now + wait, cost, limit).is_ok());
                prop_assert!(gcra(tat, now + wait - 1, cost, limit).is_err());
            }
        }
    }
}

#[test]
fn near_the_end_of_the_timeline_nothing_is_over_admitted() {
    for start in [u64::MAX - 5 * 10_000_000, u64::MAX - 1, u64::MAX] {
        let clock = ManualClock::starting_at(start);
        let l = Builder::with_clock(clock.clone())
            .rate(100, Duration::from_secs(1))
            .burst(3)
            .build()
            .unwrap();
        let admitted = (0..1000).filter(|_| l.try_acquire().is_ok()).count();
        assert!(admitted <= 3, "{admitted} admitted at {start}");
        let waited = (0..1000)
            .filter(|_| l.acquire_timeout(Duration::MAX).is_ok())
            .count();
        assert!(
            admitted + waited <= 5,
            "{waited} more by waiting at {start}"
        );
        clock.set(u64::MAX);
        let late = (0..1000).filter(|_| l.try_acquire().is_ok()).count();
        assert!(admitted + waited + late <= 8, "{late} more at the end");
    }
}

#[test]
fn the_rule_never_overflows() {
    for (tat, now, cost, limit) in [
        (u64::MAX, 0, 1, 10),
        (u64::MAX - 1, u64::MAX - 1, 1, u64::MAX),
        (0, u64::MAX, u64::MAX, u64::MAX),
        (u64::MAX, u64::MAX, 0, 0),
    ] {
        match gcra(tat, now, cost, limit) {
            Ok(new_tat) => assert!(new_tat >= now && new_tat - now <= limit),
            Err(wait) => assert!(wait > 0),
        }
    }
    assert_eq!(gcra(u64::MAX, u64::MAX, 1, u64::MAX), Err(u64::MAX));
}

#[test]
fn an_idle_gap_of_years_refills_only_the_burst() {
    let (clock, l) = limiter(10, 2);
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    let admitted = (0..100).filter(|_| l.try_acquire().is_ok()).count();
    assert_eq!(admitted, 2);
}

#[test]
fn a_rate_that_whole_nanoseconds_cannot_represent_is_refused() {
    let b = || Builder::with_clock(ManualClock::new());
    for (requests, period) in [
        (1u64 << 31, Duration::from_secs(1)), // would become 10^9/s
        (2_000_000_000, Duration::from_secs(1)),
        (300_000_000, Duration::from_secs(1)), // 3.33 ns would become 4 ns
        (3, Duration::from_nanos(1)),
    ] {
        let e = b().rate(requests, period).build().unwrap_err();
        assert_eq!(e.field(), "rate", "{requests} per {period:?}");
        assert!(e.to_string().contains("1 %"), "{e}");
    }
    for (requests, period) in [
        (1_000_000_000u64, Duration::from_secs(1)),
        (200_000_000, Duration::from_secs(1)),
        (3, Duration::from_secs(1)),
        (1, Duration::from_nanos(1)),
        (7, Duration::from_micros(1)), // 142.86 ns -> 143: 0.1 % slower
    ] {
        assert!(
            b().rate(requests, period).build().is_ok(),
            "{requests} per {period:?}"
        );
    }
}

#[test]
fn reconfiguration_is_all_or_nothing() {
    let (_, l) = limiter(100, 10);
    let before = l.snapshot();
    let e = l
        .reconfigure(|b| b.rate(1000, Duration::from_secs(1)).burst(0))
        .unwrap_err();
    assert_eq!(e.field(), "burst");
    assert_eq!(l.snapshot(), before, "a refused change changes nothing");
    let e = l
        .reconfigure(|b| b.rate(0, Duration::from_secs(1)))
        .unwrap_err();
    assert_eq!(e.field(), "rate");
    assert_eq!(l.snapshot(), before);
    let e = l.reconfigure(|b| b.precise(true)).unwrap_err();
    assert_eq!(e.field(), "precise");
    l.reconfigure(|b| b.rate(1000, Duration::from_secs(1)).burst(50))
        .unwrap();
    let s = l.snapshot();
    assert_eq!((s.interval, s.burst), (Duration::from_millis(1), 50));
    l.set_rate(10, Duration::from_secs(1)).unwrap();
    let s = l.snapshot();
    assert_eq!(
        (s.interval, s.burst),
        (Duration::from_millis(100), 50),
        "the burst stays"
    );
}

/// Reconfigurations racing decisions: every decision sees one whole
/// configuration, so a request that fits both never reads as larger than
/// the burst.
#[test]
fn stress_a_racing_reconfiguration_never_mixes_two_configurations() {
    let clock = ManualClock::new();
    let l = Arc::new(
        Builder::with_clock(clock)
            .rate(1, Duration::from_secs(1))
            .burst(10)
            .build()
            .unwrap(),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (l, stop) = (l.clone(), stop.clone());
        thread::spawn(move || {
            let mut fast = false;
            while !stop.load(Ordering::Relaxed) {
                // Both configurations admit a cost of 10: 1/s with burst 10
                // (limit 10 s) and 1000/s with burst 10 (limit 10 ms). A mix
                // (1 s interval, 10 ms limit) would refuse it as too large.
                let r = if fast { 1 } else { 1000 };
                l.reconfigure(|b| b.rate(r, Duration::from_secs(1)).burst(10))
                    .unwrap();
                fast = !fast;
            }
        })
    };
    for _ in 0..200_000 {
        if let Err(Rejected::ExceedsCapacity { .. }) = l.try_acquire_n(10) {
            panic!("a decision mixed two configurations");
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn a_request_larger_than_the_burst_counts_as_refused() {
    let (_, l) = limiter(10, 2);
    assert!(matches!(
        l.try_acquire_n(3),
        Err(Rejected::ExceedsCapacity {
            requested: 3,
            capacity: 2
        })
    ));
    assert!(l.acquire_n_timeout(5, Duration::ZERO).is_err());
    assert_eq!(
        l.snapshot().rejected,
        8,
        "each refused call counts its cost"
    );
}

#[test]
fn gcra_params_are_the_validated_interval_and_tolerance() {
    let b = RateLimiter::builder()
        .rate(100, Duration::from_secs(1))
        .burst(10);
    assert_eq!(b.gcra_params().unwrap(), (10_000_000, 100_000_000));
    // The default burst: the requests of one period.
    let b = RateLimiter::builder().rate(3, Duration::from_secs(1));
    assert_eq!(b.gcra_params().unwrap(), (333_333_334, 1_000_000_002));
    let e = RateLimiter::builder().gcra_params().unwrap_err();
    assert_eq!(e.field(), "rate");
    let e = RateLimiter::builder()
        .rate(1, Duration::from_secs(1))
        .burst(0)
        .gcra_params()
        .unwrap_err();
    assert_eq!(e.field(), "burst");
}
