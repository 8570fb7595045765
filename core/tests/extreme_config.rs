//! Every configuration a builder accepts runs without panicking: each
//! primitive is built from arbitrary values — zero, one, `u32::MAX`,
//! `Duration::MAX`, NaN, infinities, negative numbers — and, when the
//! builder accepts them, driven through a few operations and clock
//! advances of up to the whole `u64` timeline. A refused value is a
//! `ConfigError` that names a field; an accepted one never panics.

use std::sync::Arc;
use std::time::Duration;

use failwell::breaker::{Builder as BreakerBuilder, Window};
use failwell::bulkhead::{Bulkhead, Priority};
use failwell::chaos::Builder as ChaosBuilder;
use failwell::clock::{Clock, ManualClock};
use failwell::deadline::Deadline;
use failwell::degrade::Builder as CacheBuilder;
use failwell::rate_limit::Builder as LimiterBuilder;
use failwell::retry::{Backoff, Builder as RetryBuilder, Jitter, RetryBudget};
use failwell::shed::{Algorithm, Builder as ShedBuilder, ShedOutcome, Throttler};
use failwell::ConfigError;
use proptest::prelude::*;

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_millis(10)),
        Just(Duration::from_secs(1)),
        Just(Duration::from_secs(3600 * 24 * 365 * 100)),
        Just(Duration::from_nanos(u64::MAX)),
        Just(Duration::new(u64::MAX / 2, 0)),
        Just(Duration::MAX),
        any::<u64>().prop_map(Duration::from_nanos),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(2),
        Just(1023),
        Just(1024),
        Just(i32::MAX as u32),
        Just(u32::MAX),
        any::<u32>()
    ]
}

fn big() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(u32::MAX as u64),
        Just(u64::MAX),
        any::<u64>()
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(0.5),
        Just(1.0),
        Just(1.5),
        Just(2.0),
        Just(-1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE),
        Just(f64::MAX),
        any::<f64>(),
    ]
}

/// Clock advances from nothing to the rest of the timeline.
fn advances() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(
        prop_oneof![
            0u64..1_000_000_000,
            Just(u64::MAX / 2),
            Just(u64::MAX),
            any::<u64>()
        ],
        0..4,
    )
}

fn named(e: ConfigError) {
    assert!(!e.field().is_empty(), "{e}");
    assert!(!e.to_string().is_empty());
}

fn window() -> impl Strategy<Value = Window> {
    prop_oneof![
        count().prop_map(Window::Count),
        (duration(), count()).prop_map(|(length, buckets)| Window::Time { length, buckets }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn breakers(
        consecutive in prop::option::of(count()),
        rate in prop::option::of((float(), window())),
        slow in prop::option::of((float(), duration())),
        minimum in count(),
        half_open in count(),
        max_wait in duration(),
        open_for in duration(),
        backoff in prop::option::of((float(), duration())),
        steps in advances(),
    ) {
        let clock = ManualClock::new();
        let mut b = BreakerBuilder::with_clock(clock.clone());
        if let Some(n) = consecutive { b = b.consecutive_failures(n); }
        if let Some((t, w)) = rate { b = b.failure_rate(t, w); }
        if let Some((t, d)) = slow { b = b.slow_call_rate(t, d); }
        b = b.minimum_calls(minimum).half_open_calls(half_open).half_open_max_wait(max_wait).open_for(open_for);
        if let Some((m, max)) = backoff { b = b.open_for_backoff(m, max); }
        let breaker = match b.build() { Ok(b) => b, Err(e) => { named(e); return Ok(()); } };
        for step in steps {
            for _ in 0..3 {
                if let Ok(p) = breaker.try_acquire() { p.failure_with_duration(Duration::MAX) }
            }
            if let Ok(p) = breaker.try_acquire() { p.success() }
            let _ = breaker.retry_after();
            let _ = breaker.snapshot();
            clock.advance(Duration::from_nanos(step));
        }
        breaker.open_for(Duration::MAX);
        let _ = breaker.try_acquire();
        let _ = breaker.reconfigure(|c| c.open_for(Duration::MAX).half_open_max_wait(Duration::MAX));
        clock.set(u64::MAX);
        let _ = breaker.try_acquire().map(|p| p.success());
        let _ = breaker.retry_after();
    }

    #[test]
    fn bulkheads(max in count(), reserve in count(), timeout in duration()) {
        let b = match Bulkhead::builder().max_concurrent(max).critical_reserve(reserve).build() {
            Ok(b) => b, Err(e) => { named(e); return Ok(()); }
        };
        let held: Vec<_> = (0..3).filter_map(|_| b.try_acquire().ok()).collect();
        let short = timeout.min(Duration::from_millis(2));
        let _ = b.acquire_timeout_with(Priority::Critical, short);
        drop(held);
        let _p = b.acquire_timeout(timeout).expect("a permit is free");
        let _ = b.reconfigure(|c| c.max_concurrent(max.saturating_add(1)));
        let _ = b.snapshot();
    }

    #[test]
    fn rate_limiters(
        requests in big(), period in duration(), burst in prop::option::of(big()),
        precise in any::<bool>(), n in count(), steps in advances(),
    ) {
        let clock = ManualClock::new();
        let mut b = LimiterBuilder::with_clock(clock.clone()).rate(requests, period).precise(precise);
        if let Some(burst) = burst { b = b.burst(burst); }
        let l = match b.build() { Ok(l) => l, Err(e) => { named(e); return Ok(()); } };
        for step in steps {
            let _ = l.try_acquire();
            let _ = l.try_acquire_n(n);
            let _ = l.next_ready();
            let _ = l.acquire_n_timeout(n.min(3), Duration::ZERO);
            clock.advance(Duration::from_nanos(step));
        }
        let _ = l.set_rate(requests, period);
        let _ = l.set_burst(u64::MAX);
        let _ = l.snapshot();
    }

    #[test]
    fn retries(
        attempts in count(),
        elapsed in prop::option::of(duration()),
        backoff in prop_oneof![
            duration().prop_map(Backoff::Constant),
            (duration(), duration(), duration()).prop_map(|(initial, step, max)| Backoff::Linear { initial, step, max }),
            (duration(), float(), duration()).prop_map(|(i, m, max)| Backoff::exponential(i, m, max)),
        ],
        jitter in prop_oneof![
            Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::Decorrelated),
            float().prop_map(Jitter::Symmetric),
        ],
        budget in prop::option::of((float(), float(), duration())),
        seed in any::<u64>(),
    ) {
        let clock = ManualClock::new();
        let mut b = RetryBuilder::with_clock(clock.clone())
            .max_attempts(attempts.min(6)).backoff(backoff).jitter(jitter).seed(seed);
        if let Some(d) = elapsed { b = b.max_elapsed(d); }
        if let Some((ratio, floor, ttl)) = budget {
            match RetryBudget::with(ratio, floor, ttl, clock.clone()) {
                Ok(budget) => {
                    budget.deposit();
                    let _ = budget.try_withdraw();
                    b = b.budget(Arc::new(budget));
                }
                Err(e) => named(e),
            }
        }
        let r = match b.build() { Ok(r) => r, Err(e) => { named(e); return Ok(()); } };
        let mut prev = Duration::ZERO;
        for attempt in [0, 1, 2, 3, 64, 4096, u32::MAX] {
            prev = r.next_delay(attempt, prev);
        }
        let _ = r.call(|| Err::<(), _>("down"));
        let _ = r.call(|| Ok::<_, ()>(1));
        let _ = r.snapshot();
    }

    #[test]
    fn adaptive_limits(
        algorithm in prop_oneof![
            (float(), duration()).prop_map(|(backoff_ratio, latency_threshold)| Algorithm::Aimd { backoff_ratio, latency_threshold }),
            (float(), float(), float(), count()).prop_map(|(tolerance, smoothing, queue_size, long_window)| Algorithm::Gradient { tolerance, smoothing, queue_size, long_window }),
        ],
        initial in count(), min in count(), max in count(), critical in float(),
        latencies in prop::collection::vec(duration(), 1..40),
    ) {
        let clock = ManualClock::new();
        let l = match ShedBuilder::with_clock(clock.clone()).algorithm(algorithm)
            .initial_limit(initial).limits(min, max).critical_fraction(critical).build() {
            Ok(l) => l, Err(e) => { named(e); return Ok(()); }
        };
        for (i, d) in latencies.into_iter().enumerate() {
            let p = l.try_acquire(if i % 3 == 0 { Priority::Critical } else { Priority::Normal });
            if let Ok(p) = p {
                match i % 4 {
                    0 => p.dropped(),
                    1 => p.success(),
                    _ => p.success_with_latency(d),
                }
            }
            clock.advance(d.min(Duration::from_secs(3600)));
            let _ = l.limit();
        }
        let _ = l.snapshot();
        let t = l.try_acquire(Priority::Normal).map(|p| p.into_token());
        if let Ok(t) = t { l.record_token(t, ShedOutcome::Dropped) }
    }

    #[test]
    fn throttlers_chaos_caches_and_deadlines(
        k in float(), window in duration(), rate in float(), delay in duration(),
        max_stale in duration(), capacity in prop_oneof![Just(0usize), Just(1), Just(usize::MAX), any::<usize>()],
        d in duration(), steps in advances(),
    ) {
        let clock = ManualClock::new();
        match Throttler::with(k, window, clock.clone(), Some(1)) {
            Ok(t) => {
                for step in &steps {
                    let _ = t.try_send();
                    t.accepted();
                    clock.advance(Duration::from_nanos(*step));
                }
                let _ = t.rejection_probability();
            }
            Err(e) => named(e),
        }
        match ChaosBuilder::with_clock(clock.clone()).fault_rate(rate).latency(rate, delay).seed(3).build() {
            Ok(c) => {
                let _ = c.should_fail();
                let _ = c.injected_latency();
                c.inject_latency();
                let _ = c.set_latency(rate, Duration::MAX);
                c.inject_latency();
            }
            Err(e) => named(e),
        }
        match CacheBuilder::with_clock(clock.clone()).max_stale(max_stale).capacity(capacity).build::<u32, u32>() {
            Ok(cache) => {
                cache.put_fresh(1, 1);
                for step in &steps {
                    clock.advance(Duration::from_nanos(*step));
                    let _ = cache.serve_stale(&1, "down");
                    let _ = cache.get_or_fetch(2, || Err::<u32, _>("down"));
                }
                let _ = cache.snapshot();
            }
            Err(e) => named(e),
        }
        let deadline = Deadline::after_on(&clock, d);
        let _ = deadline.child(Duration::MAX).min(Deadline::never()).remaining_on(&clock);
        let _ = deadline.is_expired_on(&clock);
        let _ = Deadline::at(clock.now()).child(d);
    }
}

/// Background threads built with the longest intervals a builder accepts
/// keep running (and stop on drop) instead of dying on `Instant + Duration`
/// overflow.
#[test]
fn background_threads_accept_duration_max() {
    use failwell::deadline::TimeoutPool;
    use failwell::health::{HealthRegistry, Status};
    use failwell::watchdog::Watchdog;

    // Count panics on failwell's own threads (they would die silently).
    static THREAD_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("failwell"))
        {
            THREAD_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        default_hook(info);
    }));
    let settle = || std::thread::sleep(Duration::from_millis(50));

    let started = std::time::Instant::now();
    let w = Watchdog::builder()
        .tick(Duration::MAX)
        .build()
        .expect("Duration::MAX is a valid tick: it never comes");
    let beat = w.heartbeat("work", Duration::MAX).unwrap();
    beat.beat();
    settle();
    assert_eq!(w.snapshot().ticks, 0);
    drop(beat);
    w.shutdown();

    let h = HealthRegistry::builder()
        .interval(Duration::MAX)
        .build()
        .expect("Duration::MAX is a valid interval");
    h.register("db", true, Duration::MAX, || Ok(())).unwrap();
    h.register("cache", false, Duration::from_nanos(1), || Ok(()))
        .unwrap();
    settle();
    let report = h.check_now();
    assert_eq!(report.checks.len(), 2);
    assert_ne!(report.checks[0].status, Status::Unhealthy);
    drop(h);

    let pool = TimeoutPool::with_idle_timeout(2, Duration::MAX).unwrap();
    assert_eq!(pool.run(Deadline::after(Duration::MAX), || 7), Ok(7));
    assert_eq!(pool.run(Deadline::never(), || 8), Ok(8));
    settle();
    drop(pool);
    assert_eq!(
        THREAD_PANICS.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no failwell thread panicked"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "every thread stopped when asked"
    );
}
