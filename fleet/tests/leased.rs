//! The leased-mode fleet rate limiter against a real redis-server: one
//! instance and four instance processes stay within burst + rate × time
//! and use most of it when the demand is there, at no more than about ten
//! Redis commands per instance per second; an idle instance gives its
//! tokens back; a dead Redis leaves every call on the local share, never
//! blocking; a restarted one is leased from again.

use std::time::{Duration, Instant, SystemTime};

use failwell::rate_limit::RateLimiter;
use failwell::Rejected;
use failwell_fleet::{Fleet, OnUnavailable, LEASE_TICK};

mod common;
use common::{instance_args, run_instances, sample, Redis};

fn limit(rate: u64, burst: u64) -> failwell::rate_limit::Builder {
    RateLimiter::builder()
        .rate(rate, Duration::from_secs(1))
        .burst(burst)
}

/// Commands clients sent (not the ones scripts ran): the calls of EVAL,
/// EVALSHA and SCRIPT, from INFO commandstats.
fn client_commands(redis: &Redis) -> u64 {
    let info = match redis.cmd(&["INFO", "commandstats"]) {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("{other:?}"),
    };
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter(|l| l.starts_with("eval") || l.starts_with("script"))
        .filter_map(|l| {
            let calls = l.split_once("calls=")?.1;
            calls.split(',').next()?.parse::<u64>().ok()
        })
        .sum()
}

/// The instance side of the multi-process test: does nothing otherwise.
#[test]
fn instance() {
    let Some((url, until)) = instance_args() else {
        return;
    };
    let fleet = Fleet::connect(url).unwrap();
    let l = fleet
        .rate_limiter("procs", limit(500, 25))
        .instances(4)
        .build()
        .unwrap();
    // Demand of about 250/s per instance (1000/s for the fleet, twice the
    // limit), as a service makes calls: not a spinning loop, which on two
    // cores would starve the leasing threads.
    let mut admitted = 0u64;
    while SystemTime::now() < until {
        admitted += l.try_acquire().is_ok() as u64;
        std::thread::sleep(Duration::from_millis(4));
    }
    let s = l.snapshot();
    assert_eq!(s.admitted, admitted);
    println!("RESULT {admitted} {} {}", s.instances, s.fallbacks);
}

#[test]
fn four_processes_stay_within_the_limit_and_use_most_of_it() {
    let redis = Redis::start();
    let before = client_commands(&redis);
    let secs = 4.0;
    let start = Instant::now();
    let per = run_instances(&redis, 4, secs);
    let elapsed = start.elapsed().as_secs_f64();
    let commands = client_commands(&redis) - before;
    let admitted: u64 = per.iter().map(|r| r[0]).sum();
    let bound = 25.0 + 500.0 * elapsed;
    assert!(
        admitted as f64 <= bound + 1.0,
        "{admitted} > {bound:.0}: {per:?}"
    );
    assert!(
        admitted as f64 >= 0.8 * 500.0 * (secs - 0.5),
        "{admitted} admitted: {per:?}"
    );
    assert!(per.iter().all(|r| r[2] == 0), "no fallback: {per:?}");
    assert!(
        per.iter().all(|r| r[1] == 4),
        "four instances counted: {per:?}"
    );
    let per_instance_per_sec = commands as f64 / 4.0 / elapsed;
    assert!(
        per_instance_per_sec <= 12.0,
        "{per_instance_per_sec:.1} commands/s per instance"
    );
    eprintln!(
        "leased, 4 processes, 500/s burst 25, {elapsed:.2} s: {admitted} admitted (bound {bound:.0}, {:.1} %), {per_instance_per_sec:.1} Redis commands/s per instance",
        100.0 * admitted as f64 / (500.0 * elapsed)
    );
}

#[test]
fn an_idle_instance_gives_its_tokens_back() {
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    let a = fleet.rate_limiter("idle", limit(100, 40)).build().unwrap();
    // Demand on a: it leases ahead.
    let t = Instant::now();
    while t.elapsed() < LEASE_TICK * 5 {
        let _ = a.try_acquire();
        std::thread::sleep(Duration::from_micros(200));
    }
    let held = a.snapshot().held;
    // Idle: within a few ticks it keeps at most the minimum and gives the
    // rest back.
    std::thread::sleep(LEASE_TICK * 6);
    let s = a.snapshot();
    assert!(s.held <= 2, "{held} held, then {s:?}");
    assert!(s.returned > 0 || held <= 2, "{s:?}");
    // Dropped: everything back; another instance finds the bucket's room.
    drop(a);
    let b = fleet.rate_limiter("idle", limit(100, 40)).build().unwrap();
    std::thread::sleep(LEASE_TICK * 3);
    let mut got = 0;
    let t = Instant::now();
    while t.elapsed() < LEASE_TICK * 4 {
        got += b.try_acquire().is_ok() as u32;
    }
    assert!(
        got >= 20,
        "{got} admitted after the idle instance gave back"
    );
}

#[test]
fn a_dead_redis_leaves_calls_on_the_local_share_and_a_restarted_one_is_used_again() {
    let mut redis = Redis::start();
    let fleet = Fleet::builder(redis.url())
        .io_timeout(Duration::from_millis(50))
        .connect()
        .unwrap();
    let l = fleet
        .rate_limiter("dead", limit(100, 10))
        .instances(2)
        .build()
        .unwrap();
    std::thread::sleep(LEASE_TICK * 2);
    redis.kill();
    std::thread::sleep(LEASE_TICK * 3); // a lease fails: local mode
    let mut slowest = Duration::ZERO;
    let mut admitted = 0;
    let began = Instant::now();
    for _ in 0..200 {
        let t = Instant::now();
        admitted += l.try_acquire().is_ok() as u32;
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    let s = l.snapshot();
    assert!(
        slowest < Duration::from_millis(5),
        "a call took {slowest:?}"
    );
    assert!(s.fallbacks > 0 && s.redis_errors > 0, "{s:?}");
    // The local share of the live instances counted last (this one: the
    // whole limit), 10 at once then 100/s, plus the tokens held.
    let n = s.instances as f64;
    let share = 10.0 / n + 100.0 / n * began.elapsed().as_secs_f64() + 20.0;
    assert!(
        (admitted as f64) <= share + 1.0,
        "{admitted} > {share:.0}: {s:?}"
    );
    redis.restart();
    let t = Instant::now();
    loop {
        let before = l.snapshot().leased;
        std::thread::sleep(LEASE_TICK * 2);
        let _ = l.try_acquire();
        if l.snapshot().leased > before {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "not leasing again");
    }
    let f = l.snapshot().fallbacks;
    std::thread::sleep(LEASE_TICK * 2);
    for _ in 0..5 {
        let _ = l.try_acquire();
    }
    assert_eq!(l.snapshot().fallbacks, f, "back on leased tokens");
}

#[test]
fn one_instance_is_held_to_the_limit() {
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    let l = fleet.rate_limiter("one", limit(200, 20)).build().unwrap();
    let start = Instant::now();
    let mut admitted = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        admitted += l.try_acquire().is_ok() as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let bound = 20.0 + 200.0 * elapsed;
    assert!(admitted as f64 <= bound + 1.0, "{admitted} > {bound:.0}");
    assert!(admitted as f64 >= 0.8 * 200.0 * elapsed, "{admitted}");
    assert_eq!(l.snapshot().instances, 1);
    assert_eq!(
        l.try_acquire_n(21),
        Err(failwell::Rejected::ExceedsCapacity {
            requested: 21,
            capacity: 20
        })
    );
    assert_eq!(l.try_acquire_n(0), Ok(()));
}

/// 5·10^7 per second (an interval of 20 ns): the bucket counts
/// nanoseconds exactly, so leases are not rounded down to a coarser
/// clock's rate (a quarter-microsecond unit capped them at 4·10^6/s).
#[test]
fn a_high_rate_is_not_rounded_down() {
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    let l = fleet
        .rate_limiter("fast", limit(50_000_000, 50_000_000))
        .build()
        .unwrap();
    let start = Instant::now();
    let (mut calls, mut admitted) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..1000 {
            admitted += l.try_acquire().is_ok() as u64;
        }
        calls += 1000;
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert!(admitted as f64 <= 5e7 * (1.0 + elapsed) + 1.0);
    assert!(
        admitted >= 12_000_000 || admitted as f64 >= 0.6 * calls as f64,
        "{admitted} of {calls} calls admitted in {elapsed:.2} s"
    );
}

/// The value of `name{instance="<instance>"}` in a Prometheus text.
#[test]
fn metrics_say_what_redis_and_the_limiter_did() {
    let mut redis = Redis::start();
    let fleet = Fleet::builder(redis.url())
        .io_timeout(Duration::from_millis(50))
        .connect()
        .unwrap();
    let l = std::sync::Arc::new(
        fleet
            .rate_limiter("metered", limit(100, 10))
            .build()
            .unwrap(),
    );
    let registry = failwell::metrics::MetricsRegistry::new();
    failwell_fleet::metrics::register_fleet(&registry, "redis", &fleet).unwrap();
    failwell_fleet::metrics::register_leased(&registry, "api", l.clone()).unwrap();
    std::thread::sleep(LEASE_TICK * 3);
    for _ in 0..5 {
        let _ = l.try_acquire();
    }
    let text = registry.render_prometheus();
    assert!(sample(&text, "failwell_fleet_redis_requests_total", "redis") >= 3.0);
    assert!(sample(&text, "failwell_fleet_redis_seconds_total", "redis") > 0.0);
    assert_eq!(
        sample(&text, "failwell_fleet_redis_guard_open", "redis"),
        0.0
    );
    assert_eq!(
        sample(&text, "failwell_fleet_limiter_instances", "api"),
        1.0
    );
    let leased = sample(&text, "failwell_fleet_limiter_leased_tokens_total", "api");
    let leases = sample(&text, "failwell_fleet_limiter_leases_total", "api");
    assert!(
        leased >= 1.0 && leases >= 3.0,
        "{leased} tokens in {leases} leases"
    );
    let last = sample(&text, "failwell_fleet_limiter_last_lease_tokens", "api");
    assert!(last <= leased, "{last}");
    let s = l.snapshot();
    assert!(
        s.leases >= leases as u64 && s.last_lease <= s.leased,
        "{s:?}"
    );
    let decided = sample(&text, "failwell_fleet_limiter_admitted_total", "api")
        + sample(&text, "failwell_fleet_limiter_rejected_total", "api");
    assert_eq!(decided, 5.0);
    redis.kill();
    std::thread::sleep(LEASE_TICK * 6); // failing leases open the guard
    for _ in 0..5 {
        let _ = l.try_acquire();
    }
    let text = registry.render_prometheus();
    assert!(sample(&text, "failwell_fleet_redis_failures_total", "redis") >= 1.0);
    assert!(sample(&text, "failwell_fleet_limiter_fallbacks_total", "api") >= 5.0);
    assert!(
        sample(&text, "failwell_fleet_redis_refused_total", "redis") >= 1.0
            || sample(&text, "failwell_fleet_redis_guard_open", "redis") == 1.0
    );
}

/// A service that starts while Redis is down: `open` does not reach it,
/// the limiters decide on their fallbacks, and once a server answers on
/// that port they use it, with no restart.
#[test]
fn a_fleet_opened_while_redis_is_down_uses_it_once_it_is_up() {
    let port = Redis::free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    assert!(Fleet::connect(url.as_str()).is_err(), "nothing listens yet");
    let fleet = Fleet::builder(url.as_str()).open().unwrap();
    let leased = fleet.rate_limiter("late", limit(100, 10)).build().unwrap();
    let exact = fleet
        .exact_rate_limiter("late-exact", limit(100, 10))
        .build()
        .unwrap();
    let _ = leased.try_acquire();
    assert!(exact.try_acquire().is_ok(), "the local share decides");
    assert!(exact.snapshot().fallbacks >= 1);
    let _redis = Redis::start_on(port);
    let t = Instant::now();
    while exact.check_n(1).is_err() || leased.snapshot().leased == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{:?}",
            leased.snapshot()
        );
        std::thread::sleep(LEASE_TICK);
    }
}

#[test]
fn fail_open_and_fail_closed_decide_while_redis_is_down() {
    let mut redis = Redis::start();
    let fleet = Fleet::builder(redis.url())
        .io_timeout(Duration::from_millis(50))
        .connect()
        .unwrap();
    let open = fleet
        .rate_limiter("fo", limit(10, 2))
        .on_unavailable(OnUnavailable::FailOpen)
        .build()
        .unwrap();
    let closed = fleet
        .rate_limiter("fc", limit(1000, 100))
        .on_unavailable(OnUnavailable::FailClosed)
        .build()
        .unwrap();
    std::thread::sleep(LEASE_TICK * 2);
    assert!(
        closed.try_acquire().is_ok(),
        "leased tokens while Redis is up"
    );
    redis.kill();
    let t = Instant::now();
    while open.snapshot().redis_errors == 0 || closed.snapshot().redis_errors == 0 {
        assert!(t.elapsed() < Duration::from_secs(3), "no failed lease");
        std::thread::sleep(LEASE_TICK / 2);
    }
    // Far above the limit of 10/s: every one admitted.
    for _ in 0..100 {
        assert_eq!(open.try_acquire(), Ok(()));
    }
    for _ in 0..100 {
        assert_eq!(
            closed.try_acquire(),
            Err(Rejected::RateLimited {
                retry_after: LEASE_TICK
            })
        );
    }
    let (o, c) = (open.snapshot(), closed.snapshot());
    assert!(o.fallbacks >= 100 && c.fallbacks >= 100, "{o:?} {c:?}");
    assert!(c.rejected >= 100, "{c:?}");
    // A waiting acquire on a fail-closed limiter gives up at its timeout.
    let t = Instant::now();
    assert!(closed
        .acquire_n_timeout(1, Duration::from_millis(60))
        .is_err());
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(60) && waited < Duration::from_millis(200),
        "{waited:?}"
    );
}

#[test]
fn a_waiting_acquire_gets_tokens_from_the_next_lease_or_gives_up_in_time() {
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    // 20/s, burst 2: after the burst, about one every 50 ms.
    let l = fleet.rate_limiter("wait", limit(20, 2)).build().unwrap();
    assert_eq!((l.burst(), l.interval()), (2, Duration::from_millis(50)));
    let t = Instant::now();
    let mut got = 0;
    while t.elapsed() < Duration::from_secs(1) {
        got += l.acquire_n_timeout(1, Duration::from_millis(500)).is_ok() as u32;
    }
    // A second of waiting callers: the burst and about 20 more (the
    // bucket's rate), never more.
    assert!((12..=23).contains(&got), "{got}");
    assert_eq!(
        l.acquire_n_timeout(3, Duration::from_secs(5)),
        Err(Rejected::ExceedsCapacity {
            requested: 3,
            capacity: 2
        })
    );
    // Zero: one try, no wait.
    let t = Instant::now();
    let _ = l.acquire_n_timeout(1, Duration::ZERO);
    assert!(t.elapsed() < Duration::from_millis(20));
}
