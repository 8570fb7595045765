//! Redis failing under load, against a real redis-server: four instance
//! processes calling a leased limiter, an exact limiter and a fleet
//! breaker as fast as they can while Redis is paused (SIGSTOP) for a
//! second, then flushed, then killed and restarted empty (no scripts: the
//! NOSCRIPT path). No call waits past the I/O timeout, every
//! fallback is counted (and the metrics say the same), the fleet stays
//! within its bound, and every primitive is back on Redis afterwards; and
//! a fleet breaker whose Redis pauses keeps deciding on its own and shares
//! verdicts again when Redis resumes.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use failwell::breaker::{CircuitBreaker, State};
use failwell::metrics::MetricsRegistry;
use failwell::rate_limit::RateLimiter;
use failwell_fleet::{metrics, Fleet, SYNC_EVERY};

mod common;
use common::{instance_args, run_instances_at, sample, Redis};

const RATE: u64 = 400;
const BURST: u64 = 40;
const INSTANCES: u32 = 4;
const IO: Duration = Duration::from_millis(50);

/// The instance side of the multi-process test: does nothing otherwise.
/// Prints tries, leased admissions, the slowest call in µs, the leased
/// and exact fallbacks (snapshot, then metrics), failed breaker syncs and
/// whether the leased limiter was back on leased tokens at the end.
#[test]
fn instance() {
    let Some((url, until)) = instance_args() else {
        return;
    };
    let fleet = Fleet::builder(url).io_timeout(IO).connect().unwrap();
    let limit = || {
        RateLimiter::builder()
            .rate(RATE, Duration::from_secs(1))
            .burst(BURST)
    };
    let leased = Arc::new(
        fleet
            .rate_limiter("chaos", limit())
            .instances(INSTANCES)
            .build()
            .unwrap(),
    );
    let exact = Arc::new(
        fleet
            .exact_rate_limiter("chaos-exact", limit())
            .instances(INSTANCES)
            .build()
            .unwrap(),
    );
    let breaker = Arc::new(
        fleet
            .circuit_breaker("chaos", CircuitBreaker::builder().consecutive_failures(50))
            .build()
            .unwrap(),
    );
    let registry = MetricsRegistry::new();
    metrics::register_leased(&registry, "leased", Arc::clone(&leased)).unwrap();
    metrics::register_exact(&registry, "exact", Arc::clone(&exact)).unwrap();
    metrics::register_breaker(&registry, "breaker", Arc::clone(&breaker)).unwrap();
    let (mut tries, mut admitted) = (0u64, 0u64);
    let mut slowest = Duration::ZERO;
    while SystemTime::now() < until {
        let t = Instant::now();
        tries += 1;
        admitted += leased.try_acquire().is_ok() as u64;
        if tries % 8 == 0 {
            let _ = exact.try_acquire();
        }
        if let Ok(p) = breaker.try_acquire() {
            p.success();
        }
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_micros(500));
    }
    // Back on Redis: a decision on leased tokens is no fallback.
    let f = leased.snapshot().fallbacks;
    let _ = leased.try_acquire();
    // And the exact limiter reaches the restarted server (its script
    // loaded again after NOSCRIPT).
    let back = (leased.snapshot().fallbacks == f && exact.check_n(1).is_ok()) as u64;
    let text = registry.render_prometheus();
    let ls = leased.snapshot();
    println!(
        "RESULT {tries} {admitted} {} {} {} {} {} {} {back}",
        slowest.as_micros(),
        ls.fallbacks,
        sample(&text, "failwell_fleet_limiter_fallbacks_total", "leased") as u64,
        exact.snapshot().fallbacks,
        sample(&text, "failwell_fleet_limiter_fallbacks_total", "exact") as u64,
        sample(
            &text,
            "failwell_fleet_breaker_failed_syncs_total",
            "breaker"
        ) as u64,
    );
}

#[test]
fn four_processes_ride_out_a_paused_flushed_killed_and_restarted_redis() {
    let mut redis = Redis::start();
    let url = redis.url();
    let chaos = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        redis.pause();
        std::thread::sleep(Duration::from_secs(1));
        redis.resume();
        std::thread::sleep(Duration::from_millis(700));
        redis.cmd(&["FLUSHALL"]);
        std::thread::sleep(Duration::from_millis(700));
        redis.kill();
        std::thread::sleep(Duration::from_millis(800));
        redis.restart(); // empty: no data, no scripts
        redis
    });
    let start = Instant::now();
    let per = run_instances_at(&url, &vec![Vec::new(); INSTANCES as usize], 7.0);
    let elapsed = start.elapsed().as_secs_f64();
    let _redis = chaos.join().unwrap();
    eprintln!("per instance [tries, admitted, slowest µs, leased fallbacks (snapshot, metrics), exact fallbacks (snapshot, metrics), failed syncs, back]: {per:?}");
    for r in &per {
        // The leased hot path never waits on Redis; an exact decision
        // waits at most a write and a read.
        assert!(
            r[2] < (2 * IO + Duration::from_millis(60)).as_micros() as u64,
            "a call took {} µs: {per:?}",
            r[2]
        );
        assert!(
            r[3] > 0 && r[3] == r[4],
            "leased fallbacks counted: {per:?}"
        );
        assert!(r[5] > 0 && r[5] == r[6], "exact fallbacks counted: {per:?}");
        assert!(r[7] > 0, "failed syncs counted: {per:?}");
        assert_eq!(r[8], 1, "back on leased tokens: {per:?}");
    }
    // The fleet's bucket admits at most burst + rate × time (the flush
    // and the restart give a burst each); each instance's local share
    // decides at most its share of that while Redis is paused or dead
    // (about 2.5 s with the timeouts and the guard's open second), plus
    // the tokens it held at each.
    let admitted: u64 = per.iter().map(|r| r[1]).sum();
    let bound =
        3.0 * BURST as f64 + RATE as f64 * (elapsed + 2.5) + (2 * INSTANCES as u64 * BURST) as f64;
    assert!(
        admitted as f64 <= bound,
        "{admitted} admitted > {bound:.0}: {per:?}"
    );
    assert!(
        admitted as f64 >= 0.6 * RATE as f64 * (elapsed - 1.0),
        "{admitted} admitted in {elapsed:.1} s: {per:?}"
    );
}

/// A fleet breaker whose Redis is paused: calls never wait, syncs fail
/// and are counted, a trip stays local; resumed, the next trip reaches
/// the other instance within a sync.
#[test]
fn a_paused_redis_leaves_the_fleet_breaker_deciding_alone_then_shared_again() {
    let redis = Redis::start();
    let make = || {
        Fleet::builder(redis.url())
            .io_timeout(IO)
            .connect()
            .unwrap()
            .circuit_breaker(
                "paused",
                CircuitBreaker::builder()
                    .consecutive_failures(2)
                    .open_for(Duration::from_secs(60)),
            )
            .build()
            .unwrap()
    };
    let (a, b) = (make(), make());
    redis.pause();
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    while t.elapsed() < SYNC_EVERY * 4 {
        let c = Instant::now();
        if let Ok(p) = b.try_acquire() {
            p.success();
        }
        slowest = slowest.max(c.elapsed());
    }
    // A call that waited on Redis would take an I/O timeout.
    assert!(slowest < IO, "a call took {slowest:?}");
    for _ in 0..2 {
        a.try_acquire().unwrap().failure();
    }
    assert_eq!(a.state(), State::Open, "trips on its own");
    std::thread::sleep(SYNC_EVERY * 3);
    assert_eq!(b.state(), State::Closed, "not told while Redis is paused");
    assert!(b.fleet_snapshot().failed_syncs > 0 && a.fleet_snapshot().failed_syncs > 0);
    redis.resume();
    // The vote reaches Redis once it answers (after failwell's breaker
    // around it lets a request through again) and the other instance
    // applies it.
    let t = Instant::now();
    while b.state() != State::Open {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the trip was not shared after the resume: {:?} {:?}",
            a.fleet_snapshot(),
            b.fleet_snapshot()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
