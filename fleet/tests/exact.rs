//! The exact-mode fleet rate limiter against a real redis-server: exact
//! admissions and retry hints, several instances on one limit, the script
//! cache emptied and the server restarted, Redis killed and paused under
//! load (no call waits past the timeouts; the fallbacks decide and are
//! counted), and every bad setting named.

use std::time::{Duration, Instant};

use failwell::rate_limit::RateLimiter;
use failwell::Rejected;
use failwell_fleet::{Fleet, FleetError, OnUnavailable, GUARD_OPEN_FOR};

mod common;
use common::Redis;

fn per_hour(n: u64, burst: u64) -> failwell::rate_limit::Builder {
    RateLimiter::builder()
        .rate(n, Duration::from_secs(3600))
        .burst(burst)
}

#[test]
fn admits_the_burst_then_says_when_to_come_back() {
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    let l = fleet
        .exact_rate_limiter("hourly", per_hour(10, 5))
        .build()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(l.try_acquire(), Ok(()));
    }
    match l.try_acquire() {
        // One request every 360 s: the sixth conforms 360 s after the burst.
        Err(Rejected::RateLimited { retry_after }) => assert!(
            retry_after > Duration::from_secs(359) && retry_after <= Duration::from_secs(360),
            "{retry_after:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        l.try_acquire_n(6),
        Err(Rejected::ExceedsCapacity {
            requested: 6,
            capacity: 5
        })
    );
    assert_eq!(l.try_acquire_n(0), Ok(()));
    let s = l.snapshot();
    assert_eq!((s.admitted, s.rejected, s.fallbacks), (5, 7, 0));
    // The state is one key that expires when the limiter is idle again.
    let ttl = redis.cmd(&["PTTL", l.key()]);
    assert!(
        matches!(ttl, redis::Value::Int(ms) if ms > 1_700_000 && ms <= 1_800_001),
        "{ttl:?}"
    );
    assert_eq!(l.key(), "failwell:rl:{hourly}");
}

#[test]
fn instances_share_one_exact_limit() {
    let redis = Redis::start();
    let (rate, burst) = (200u64, 20u64);
    let start = Instant::now();
    let until = start + Duration::from_millis(1500);
    let admitted: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let url = redis.url();
                s.spawn(move || {
                    // Each thread an instance: a connection and a limiter of its own.
                    let fleet = Fleet::connect(url).unwrap();
                    let l = fleet
                        .exact_rate_limiter(
                            "shared",
                            RateLimiter::builder()
                                .rate(rate, Duration::from_secs(1))
                                .burst(burst),
                        )
                        .build()
                        .unwrap();
                    let mut n = 0;
                    while Instant::now() < until {
                        n += l.try_acquire().is_ok() as u64;
                    }
                    assert_eq!(l.snapshot().fallbacks, 0);
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let bound = burst as f64 + rate as f64 * elapsed;
    assert!(admitted as f64 <= bound + 1.0, "{admitted} > {bound}");
    assert!(admitted as f64 >= 0.8 * rate as f64 * 1.5, "{admitted}");
}

#[test]
fn an_emptied_script_cache_and_a_restarted_server_are_recovered_from() {
    let mut redis = Redis::start();
    let fleet = Fleet::builder(redis.url())
        .io_timeout(Duration::from_millis(200))
        .connect()
        .unwrap();
    let l = fleet
        .exact_rate_limiter("flushed", per_hour(10, 3))
        .build()
        .unwrap();
    assert_eq!(l.check_n(1).unwrap(), Ok(()));
    redis.cmd(&["SCRIPT", "FLUSH"]);
    assert_eq!(l.check_n(1).unwrap(), Ok(()), "NOSCRIPT: loaded again");
    // A restart empties everything and breaks the pooled connections.
    redis.restart();
    let t = Instant::now();
    loop {
        match l.check_n(1) {
            Ok(d) => {
                assert_eq!(d, Ok(()), "an empty server: a fresh limit");
                break;
            }
            Err(e) => assert!(e.is_unavailable(), "{e}"),
        }
        assert!(
            t.elapsed() < GUARD_OPEN_FOR * 3,
            "not recovered in {:?}",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    redis.cmd(&["FLUSHALL"]);
    for _ in 0..3 {
        assert_eq!(l.check_n(1).unwrap(), Ok(()), "flushed: the burst again");
    }
    assert!(l.check_n(1).unwrap().is_err());
}

/// Calls made while Redis is dead, then paused: each returns within the
/// I/O timeouts (a fresh connection to a paused server sends nothing
/// before the request, so it costs no connect timeout on top), later ones
/// at once (failwell's breaker around Redis), and the fallback decides.
#[test]
fn a_dead_or_paused_redis_never_holds_a_call_past_the_timeouts() {
    let mut redis = Redis::start();
    let io = Duration::from_millis(50);
    let connect = Duration::from_millis(100);
    let fleet = Fleet::builder(redis.url())
        .io_timeout(io)
        .connect_timeout(connect)
        .connect()
        .unwrap();
    let make = |name: &str, o: OnUnavailable| {
        fleet
            .exact_rate_limiter(
                name,
                RateLimiter::builder()
                    .rate(100, Duration::from_secs(1))
                    .burst(8),
            )
            .instances(4)
            .on_unavailable(o)
            .build()
            .unwrap()
    };
    let local = make("local", OnUnavailable::Local);
    let open = make("open", OnUnavailable::FailOpen);
    let closed = make("closed", OnUnavailable::FailClosed);
    let bound = 2 * io + Duration::from_millis(60);
    for (what, stop) in [("paused", true), ("killed", false)] {
        if stop {
            redis.pause();
        } else {
            redis.kill();
        }
        let mut slowest = Duration::ZERO;
        let mut admitted = 0;
        let began = Instant::now();
        for _ in 0..20 {
            let t = Instant::now();
            admitted += local.try_acquire().is_ok() as u32;
            slowest = slowest.max(t.elapsed());
        }
        assert!(slowest < bound, "{what}: a call took {slowest:?}");
        // The instance's share: a burst of 8 / 4 = 2, then 100 / 4 = 25/s.
        let share = 2.0 + 25.0 * began.elapsed().as_secs_f64();
        assert!(
            admitted >= 2 && admitted as f64 <= share + 1.0,
            "{what}: the local share decided: {admitted} admitted, share {share:.1}"
        );
        assert_eq!(open.try_acquire(), Ok(()));
        assert!(matches!(
            closed.try_acquire(),
            Err(Rejected::RateLimited { .. })
        ));
        assert!(matches!(
            local.check_n(1),
            Err(FleetError::Unavailable { .. } | FleetError::Redis { .. })
        ));
        if stop {
            redis.resume();
        } else {
            redis.restart();
        }
        let t = Instant::now();
        while local.check_n(1).is_err() {
            assert!(t.elapsed() < GUARD_OPEN_FOR * 3, "{what}: not recovered");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(local.snapshot().fallbacks >= 40);
    assert!(open.snapshot().fallbacks >= 2 && closed.snapshot().fallbacks >= 2);
}

#[test]
fn bad_settings_are_named() {
    let field = |e: FleetError| match e {
        FleetError::Config(c) => c.field(),
        other => panic!("{other:?}"),
    };
    let b = || Fleet::builder("redis://127.0.0.1:1/");
    assert_eq!(
        field(b().io_timeout(Duration::ZERO).connect().unwrap_err()),
        "io_timeout"
    );
    assert_eq!(
        field(b().connect_timeout(Duration::MAX).connect().unwrap_err()),
        "connect_timeout"
    );
    assert_eq!(field(b().pool_size(0).connect().unwrap_err()), "pool_size");
    assert!(matches!(
        Fleet::connect("http://nowhere/").unwrap_err(),
        FleetError::Url { .. }
    ));
    // Nothing listens on port 1: refused at once, within the timeout.
    let t = Instant::now();
    let e = b().connect().unwrap_err();
    assert!(matches!(e, FleetError::Redis { op: "connect", .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(1));
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    let e = fleet
        .exact_rate_limiter("x", per_hour(10, 5))
        .instances(0)
        .build()
        .unwrap_err();
    assert_eq!(field(e), "instances");
    let e = fleet
        .exact_rate_limiter("", per_hour(10, 5))
        .build()
        .unwrap_err();
    assert_eq!(field(e), "name");
    let e = fleet
        .exact_rate_limiter(
            "x",
            RateLimiter::builder()
                .burst(0)
                .rate(1, Duration::from_secs(1)),
        )
        .build()
        .unwrap_err();
    assert_eq!(field(e), "burst");
    // More tolerance than a Lua number counts in nanoseconds (~104 days).
    let daily = RateLimiter::builder()
        .rate(1, Duration::from_secs(86_400))
        .burst(200);
    let e = fleet
        .exact_rate_limiter("x", daily.clone())
        .build()
        .unwrap_err();
    assert_eq!(field(e), "burst");
    assert_eq!(
        field(fleet.rate_limiter("x", daily).build().unwrap_err()),
        "burst"
    );
    assert!(fleet.ping().unwrap() < Duration::from_secs(1));
}

#[test]
fn a_waiting_acquire_sleeps_the_wait_redis_names_or_refuses_at_once() {
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    // 10/s, burst 1: one every 100 ms.
    let l = fleet
        .exact_rate_limiter(
            "wait",
            RateLimiter::builder()
                .rate(10, Duration::from_secs(1))
                .burst(1),
        )
        .build()
        .unwrap();
    assert_eq!((l.burst(), l.interval()), (1, Duration::from_millis(100)));
    assert_eq!(l.try_acquire(), Ok(()));
    let t = Instant::now();
    assert_eq!(l.acquire_n_timeout(1, Duration::from_millis(500)), Ok(()));
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(80) && waited < Duration::from_millis(300),
        "{waited:?}"
    );
    // The next conforms in about 100 ms: a 20 ms wait refuses at once.
    let t = Instant::now();
    match l.acquire_n_timeout(1, Duration::from_millis(20)) {
        Err(Rejected::RateLimited { retry_after }) => {
            assert!(retry_after > Duration::from_millis(20), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_millis(20), "{:?}", t.elapsed());
    assert!(matches!(
        l.acquire_n_timeout(2, Duration::from_secs(1)),
        Err(Rejected::ExceedsCapacity { .. })
    ));
}
