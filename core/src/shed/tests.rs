//! Load-shedding specifications, including a virtual-time simulation of a
//! server with `C` workers whose latency grows with queueing.

use super::*;
use crate::clock::ManualClock;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

const MS: u64 = 1_000_000;

/// What a simulation run observed after its warm-up.
#[derive(Debug)]
struct Outcome {
    mean_limit: f64,
    p50_latency: u64,
    p99_latency: u64,
    critical_shed: u64,
    normal_shed: u64,
}

/// The simulated dependency and the load offered to it.
#[derive(Debug, Clone, Copy)]
struct Server {
    /// Workers: the concurrency the server can take without queueing (C).
    workers: usize,
    /// Service time of one request, ns.
    service: u64,
    /// Spread of the service time, a fraction (uniform, seeded).
    noise: f64,
    /// Offered load, a multiple of the server's capacity (open loop).
    load: f64,
    /// Virtual seconds to run.
    seconds: u64,
    /// A request completing later than this after arriving is a drop.
    timeout: u64,
}

impl Server {
    fn with_workers(workers: usize) -> Self {
        Server {
            workers,
            service: 10 * MS,
            noise: 0.2,
            load: 3.0,
            seconds: 20,
            timeout: 100 * MS,
        }
    }
}

/// Offers the server's load for its seconds: requests wait in FIFO order
/// for a worker. One in ten requests is critical.
fn simulate(limit: &AdaptiveLimit<ManualClock>, clock: &ManualClock, server: Server) -> Outcome {
    let Server {
        workers,
        service,
        noise,
        load,
        seconds,
        timeout,
    } = server;
    let rng = crate::rng::SharedRng::new(11);
    let start = clock.now();
    let capacity_per_sec = workers as f64 * 1e9 / service as f64;
    let interarrival = (1e9 / (capacity_per_sec * load)) as u64;
    let end = start + seconds * 1_000_000_000;
    let warm = start + seconds * 1_000_000_000 / 2;
    // Completion events: (time, arrival time, permit index).
    let mut completions: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut free_at: BinaryHeap<Reverse<u64>> = (0..workers).map(|_| Reverse(start)).collect();
    let mut permits: Vec<Option<ShedPermit<'_, ManualClock>>> = Vec::new();
    let mut latencies = vec![];
    let (mut limit_sum, mut limit_n) = (0.0, 0u64);
    let (mut critical_shed, mut normal_shed) = (0, 0);
    let mut next_arrival = start;
    let mut i = 0u64;
    while next_arrival < end {
        // Complete everything due before the next arrival.
        while let Some(Reverse((t, arrived, idx))) = completions.peek().copied() {
            if t > next_arrival {
                break;
            }
            completions.pop();
            clock.set(t);
            let p = permits[idx].take().unwrap();
            let latency = t - arrived;
            if latency > timeout {
                p.dropped();
            } else {
                p.success_with_latency(Duration::from_nanos(latency));
            }
            if t >= warm {
                latencies.push(latency);
            }
        }
        clock.set(next_arrival);
        let critical = i % 10 == 0;
        let prio = if critical {
            Priority::Critical
        } else {
            Priority::Normal
        };
        match limit.try_acquire(prio) {
            Ok(p) => {
                let Reverse(worker_free) = free_at.pop().unwrap();
                let begin = worker_free.max(next_arrival);
                let jitter = 1.0 - noise + 2.0 * noise * rng.next_f64();
                let done = begin + (service as f64 * jitter) as u64;
                free_at.push(Reverse(done));
                permits.push(Some(p));
                completions.push(Reverse((done, next_arrival, permits.len() - 1)));
            }
            Err(_) if next_arrival >= warm => {
                if critical {
                    critical_shed += 1
                } else {
                    normal_shed += 1
                }
            }
            Err(_) => {}
        }
        if next_arrival >= warm && i % 100 == 0 {
            limit_sum += limit.limit() as f64;
            limit_n += 1;
        }
        next_arrival += interarrival;
        i += 1;
    }
    latencies.sort_unstable();
    let pct = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Outcome {
        mean_limit: limit_sum / limit_n as f64,
        p50_latency: pct(0.5),
        p99_latency: pct(0.99),
        critical_shed,
        normal_shed,
    }
}

fn adaptive(algorithm: Algorithm) -> (ManualClock, AdaptiveLimit<ManualClock>) {
    let clock = ManualClock::new();
    let l = Builder::with_clock(clock.clone())
        .algorithm(algorithm)
        .limits(1, 1000)
        .initial_limit(10)
        .build()
        .unwrap();
    (clock, l)
}

#[test]
fn gradient_settles_near_capacity_with_near_unloaded_latency() {
    for workers in [40, 200] {
        let (clock, l) = adaptive(Algorithm::gradient());
        let o = simulate(&l, &clock, Server::with_workers(workers));
        let c = workers as f64;
        assert!(
            (0.7 * c..=1.3 * c).contains(&o.mean_limit),
            "C = {workers}: {o:?}"
        );
        assert!(o.p50_latency <= 12 * MS, "C = {workers}: {o:?}");
        assert!(o.p99_latency <= 20 * MS, "C = {workers}: {o:?}");
        assert!(
            o.critical_shed * 10 < o.normal_shed,
            "critical traffic is shed last: {o:?}"
        );
    }
}

#[test]
fn aimd_settles_near_capacity_with_near_unloaded_latency() {
    for workers in [40, 200] {
        let (clock, l) = adaptive(Algorithm::Aimd {
            backoff_ratio: 0.9,
            latency_threshold: Duration::from_millis(12),
        });
        let o = simulate(&l, &clock, Server::with_workers(workers));
        let c = workers as f64;
        assert!(
            (0.7 * c..=1.3 * c).contains(&o.mean_limit),
            "C = {workers}: {o:?}"
        );
        assert!(o.p50_latency <= 12 * MS, "C = {workers}: {o:?}");
    }
}

#[test]
fn a_higher_tolerance_trades_latency_for_concurrency() {
    let run = |tolerance| {
        let (clock, l) = adaptive(Algorithm::Gradient {
            tolerance,
            smoothing: 0.2,
            queue_size: 4.0,
            long_window: 600,
        });
        simulate(&l, &clock, Server::with_workers(40))
    };
    let (strict, loose) = (run(1.0), run(1.5));
    assert!(
        loose.mean_limit > strict.mean_limit * 1.3,
        "{strict:?} {loose:?}"
    );
    assert!(
        loose.p50_latency > strict.p50_latency,
        "{strict:?} {loose:?}"
    );
}

#[test]
fn the_limit_follows_a_drop_in_capacity() {
    for algorithm in [
        Algorithm::gradient(),
        Algorithm::Aimd {
            backoff_ratio: 0.9,
            latency_threshold: Duration::from_millis(12),
        },
    ] {
        let (clock, l) = adaptive(algorithm);
        let before = simulate(&l, &clock, Server::with_workers(80));
        let after = simulate(&l, &clock, Server::with_workers(30));
        assert!(
            (56.0..=104.0).contains(&before.mean_limit),
            "{algorithm:?}: {before:?}"
        );
        assert!(
            (21.0..=39.0).contains(&after.mean_limit),
            "{algorithm:?}: {after:?}"
        );
    }
}

#[test]
fn drops_back_the_limit_off() {
    for algorithm in [
        Algorithm::gradient(),
        Algorithm::Aimd {
            backoff_ratio: 0.9,
            latency_threshold: Duration::from_secs(1),
        },
    ] {
        let clock = ManualClock::new();
        let l = Builder::with_clock(clock.clone())
            .algorithm(algorithm)
            .limits(1, 1000)
            .initial_limit(100)
            .build()
            .unwrap();
        // Windows of fast calls, each with one drop, at full use.
        for _ in 0..20 {
            let permits: Vec<_> = (0..l.limit())
                .map_while(|_| l.try_acquire(Priority::Critical).ok())
                .collect();
            for (i, p) in permits.into_iter().enumerate() {
                if i == 0 {
                    p.dropped();
                } else {
                    p.success_with_latency(Duration::from_millis(1));
                }
            }
        }
        let s = l.snapshot();
        assert!(s.limit < 50, "{algorithm:?}: {s:?}");
        assert!(s.drops >= 20);
    }
}

#[test]
fn normal_callers_leave_the_critical_share() {
    let clock = ManualClock::new();
    let l = Builder::with_clock(clock)
        .limits(10, 10)
        .initial_limit(10)
        .critical_fraction(0.2)
        .build()
        .unwrap();
    let normal: Vec<_> = (0..8)
        .map(|_| l.try_acquire(Priority::Normal).unwrap())
        .collect();
    assert_eq!(l.try_acquire(Priority::Normal).unwrap_err(), Rejected::Shed);
    let critical: Vec<_> = (0..2)
        .map(|_| l.try_acquire(Priority::Critical).unwrap())
        .collect();
    assert!(l.try_acquire(Priority::Critical).is_err());
    drop(normal);
    drop(critical);
    let s = l.snapshot();
    assert_eq!((s.in_flight, s.admitted, s.shed, s.drops), (0, 10, 2, 0));
}

#[test]
fn invalid_configuration_names_the_field() {
    let f = |b: Builder| b.build().unwrap_err().field();
    let b = AdaptiveLimit::builder;
    assert_eq!(f(b().limits(0, 10).initial_limit(5)), "min_limit");
    assert_eq!(f(b().limits(20, 10)), "min_limit");
    assert_eq!(f(b().max_limit(200).initial_limit(500)), "initial_limit");
    // An unset maximum makes room for the initial limit set.
    assert_eq!(b().initial_limit(500).build().unwrap().limit(), 500);
    assert_eq!(f(b().critical_fraction(1.0)), "critical_fraction");
    let aimd = |r, t| Algorithm::Aimd {
        backoff_ratio: r,
        latency_threshold: t,
    };
    assert_eq!(
        f(b().algorithm(aimd(1.0, Duration::from_secs(1)))),
        "backoff_ratio"
    );
    assert_eq!(
        f(b().algorithm(aimd(0.9, Duration::ZERO))),
        "latency_threshold"
    );
    let grad = |t, s, q, w| Algorithm::Gradient {
        tolerance: t,
        smoothing: s,
        queue_size: q,
        long_window: w,
    };
    assert_eq!(f(b().algorithm(grad(0.5, 0.2, 4.0, 600))), "tolerance");
    assert_eq!(f(b().algorithm(grad(f64::NAN, 0.2, 4.0, 600))), "tolerance");
    assert_eq!(f(b().algorithm(grad(1.0, 0.0, 4.0, 600))), "smoothing");
    assert_eq!(f(b().algorithm(grad(1.0, 0.2, -1.0, 600))), "queue_size");
    assert_eq!(f(b().algorithm(grad(1.0, 0.2, 4.0, 0))), "long_window");
    assert_eq!(
        Throttler::with(0.5, Duration::from_secs(60), ManualClock::new(), None)
            .unwrap_err()
            .field(),
        "k"
    );
    assert_eq!(
        Throttler::with(2.0, Duration::from_millis(10), ManualClock::new(), None)
            .unwrap_err()
            .field(),
        "window"
    );
}

#[test]
fn the_throttler_follows_the_sre_formula() {
    let clock = ManualClock::new();
    let t = Throttler::with(2.0, Duration::from_secs(120), clock.clone(), Some(5)).unwrap();
    // A healthy backend accepts everything: nothing is throttled.
    for _ in 0..1000 {
        t.try_send().unwrap();
        t.accepted();
    }
    assert_eq!(t.rejection_probability(), 0.0);
    assert_eq!(t.throttled(), 0);
    // The backend now accepts 10% of what is sent, for ten minutes.
    let (mut sent, mut local) = (0u64, 0u64);
    for i in 0..60_000u64 {
        clock.advance(Duration::from_millis(10));
        match t.try_send() {
            Ok(()) => {
                sent += 1;
                if i % 10 == 0 {
                    t.accepted();
                }
            }
            Err(e) => {
                assert_eq!(e, Rejected::Shed);
                local += 1;
            }
        }
    }
    // With every send accepted one time in ten, accepts ≈ sent / 10; the
    // formula settles where requests − 2·accepts ≈ p · requests.
    let p = t.rejection_probability();
    assert!(p > 0.5, "p = {p}");
    assert!(local > sent, "{local} throttled locally, {sent} sent");
    assert_eq!(t.throttled(), local);
}

#[test]
fn detached_tokens_count_like_permits() {
    let clock = ManualClock::new();
    let l = Builder::with_clock(clock.clone())
        .limits(2, 2)
        .initial_limit(2)
        .critical_fraction(0.0)
        .build()
        .unwrap();
    let a = l.try_acquire(Priority::Normal).unwrap().into_token();
    let b = l.try_acquire(Priority::Normal).unwrap().into_token();
    // Detached tokens still hold their slots.
    assert_eq!(l.try_acquire(Priority::Normal).unwrap_err(), Rejected::Shed);
    clock.advance(Duration::from_millis(3));
    l.record_token(a, ShedOutcome::Dropped);
    l.record_token(b, ShedOutcome::Ignore);
    let c = l.try_acquire(Priority::Normal).unwrap().into_token();
    l.record_token(c, ShedOutcome::SuccessWithLatency(Duration::from_millis(1)));
    let d = l.try_acquire(Priority::Normal).unwrap().into_token();
    l.record_token(d, ShedOutcome::Success);
    let s = l.snapshot();
    assert_eq!((s.in_flight, s.admitted, s.shed, s.drops), (0, 4, 1, 1));
}

#[test]
fn unset_defaults_follow_the_bounds_the_caller_set() {
    let limit = |b: Builder<ManualClock>| b.build().map(|l| l.limit());
    let b = || Builder::with_clock(ManualClock::new());
    assert_eq!(limit(b()), Ok(20));
    assert_eq!(limit(b().max_limit(5)), Ok(5), "min and initial follow max");
    assert_eq!(
        limit(b().min_limit(300)),
        Ok(300),
        "max and initial follow min"
    );
    assert_eq!(limit(b().limits(1, 10)), Ok(10));
    assert_eq!(limit(b().limits(30, 40)), Ok(30));
    assert_eq!(limit(b().max_limit(5).initial_limit(3)), Ok(3));
    let e = b().max_limit(5).initial_limit(6).build().unwrap_err();
    assert_eq!(
        e.field(),
        "initial_limit",
        "a value the caller set is checked"
    );
    let e = b().limits(5, 4).build().unwrap_err();
    assert_eq!(e.field(), "min_limit");
    assert_eq!(b().max_limit(0).build().unwrap_err().field(), "min_limit");
}

/// Requests counted long ago never throttle now, however long the gap (up
/// to exactly 2^32 windows, where 32-bit epoch tags once aliased).
#[test]
fn a_throttler_forgets_old_requests_after_any_idle_gap() {
    let window = Duration::from_secs(1);
    for gap in [
        Duration::from_secs(10 * 365 * 24 * 3600),
        window * u32::MAX + window,
    ] {
        let clock = ManualClock::new();
        let t = Throttler::with(2.0, window, clock.clone(), Some(1)).unwrap();
        for _ in 0..1000 {
            let _ = t.try_send();
        }
        assert!(t.rejection_probability() > 0.9);
        clock.advance(gap);
        assert_eq!(t.rejection_probability(), 0.0, "after {gap:?}");
    }
}

mod rule_props {
    use super::super::rule::{self, Algorithm, LimitState};
    use super::super::throttler::rejection_probability;
    use proptest::prelude::*;
    use std::time::Duration;

    fn state(estimate: f64, baseline: f64) -> LimitState {
        LimitState {
            window_samples: 0,
            window_latency: 0.0,
            window_in_flight: 0.0,
            window_dropped: false,
            estimate,
            baseline,
            samples: 10,
        }
    }

    proptest! {
        /// AIMD against its definition: a drop or a slow window multiplies
        /// by the ratio, a busy window adds one, an idle one keeps it.
        #[test]
        fn aimd_step_is_its_definition(
            est in 1.0f64..1000.0,
            latency_ms in 0.0f64..50.0,
            in_flight in 0.0f64..2000.0,
            dropped: bool,
            ratio in 0.5f64..0.99,
        ) {
            let a = Algorithm::Aimd { backoff_ratio: ratio, latency_threshold: Duration::from_millis(20) };
            let mut st = state(est, 0.0);
            let new = rule::step(&a, &mut st, latency_ms * 1e6, in_flight, dropped);
            let expect = if dropped || latency_ms * 1e6 > 20e6 {
                est * ratio
            } else if in_flight * 2.0 >= est {
                est + 1.0
            } else {
                est
            };
            prop_assert_eq!(new, expect);
        }

        /// Gradient: an application-limited window (under half the limit
        /// in use, nothing dropped) never moves the limit; a loaded one
        /// moves it at most by the smoothing toward `est × [0.25, 1] +
        /// queue`, and never to a negative or non-finite value.
        #[test]
        fn gradient_step_stays_within_its_bounds(
            est in 1.0f64..1000.0,
            baseline_ms in 0.1f64..50.0,
            latency_ms in 0.0f64..500.0,
            in_flight in 0.0f64..2000.0,
            dropped: bool,
        ) {
            let a = Algorithm::gradient();
            let mut st = state(est, baseline_ms * 1e6);
            let new = rule::step(&a, &mut st, latency_ms * 1e6, in_flight, dropped);
            prop_assert!(new.is_finite() && new >= 0.0);
            if !dropped && in_flight * 2.0 < est {
                prop_assert_eq!(new, est);
            } else {
                // smoothing 0.2, queue 4 (the defaults).
                let lo = est * 0.8 + (est * 0.25 + 4.0) * 0.2;
                let hi = est * 0.8 + (est + 4.0) * 0.2;
                prop_assert!(new >= lo - 1e-9 && new <= hi + 1e-9, "{} not in [{}, {}]", new, lo, hi);
            }
        }

        /// The SRE throttling rule: zero while accepts × K cover the
        /// requests, always in [0, 1), growing with the requests.
        #[test]
        fn throttler_probability_is_the_sre_formula(
            requests in 0.0f64..1e6,
            accepts in 0.0f64..1e6,
            k in 1.0f64..4.0,
        ) {
            let p = rejection_probability(requests, accepts, k);
            prop_assert!((0.0..1.0).contains(&p));
            if requests <= k * accepts {
                prop_assert_eq!(p, 0.0);
            } else {
                prop_assert!((p - (requests - k * accepts) / (requests + 1.0)).abs() < 1e-12);
                prop_assert!(rejection_probability(requests + 1.0, accepts, k) >= p);
            }
        }
    }
}
