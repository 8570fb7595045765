//! The fleet circuit breaker against a real redis-server, with several
//! instances (each its own `Fleet` connection and instance id) in one
//! process and four instance processes: one instance's trip opens all of
//! them within a sync; the fleet's counts trip it when no instance alone
//! would; a quorum keeps one instance from opening the fleet; at most
//! `half_open_calls` probes run fleet-wide and their verdict closes (or
//! reopens) every instance; a dead, restarted or flushed Redis leaves
//! each breaker working on its own and the fleet's verdict comes back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use failwell::breaker::{CircuitBreaker, State, Window};
use failwell_fleet::{Fleet, FleetBreaker, FleetError, SYNC_EVERY};

mod common;
use common::{instance_args, run_instances, sample, Redis};

fn instances(
    redis: &Redis,
    name: &str,
    n: usize,
    local: impl Fn() -> failwell::breaker::Builder,
    quorum: u32,
) -> Vec<FleetBreaker> {
    (0..n)
        .map(|_| {
            Fleet::connect(redis.url())
                .unwrap()
                .circuit_breaker(name, local())
                .quorum(quorum)
                .build()
                .unwrap()
        })
        .collect()
}

fn fail(b: &FleetBreaker, n: usize) {
    for _ in 0..n {
        if let Ok(p) = b.try_acquire() {
            p.failure();
        }
    }
}

/// Waits until `f` holds, at most `limit`; how long it took.
fn until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn refuses(b: &FleetBreaker) -> bool {
    b.try_acquire().is_err()
}

/// Sync interval at most 1.3 × `SYNC_EVERY`, plus round trips and a
/// loaded two-core machine.
fn propagation() -> Duration {
    SYNC_EVERY.mul_f64(1.3) + Duration::from_millis(400)
}

#[test]
fn one_trip_opens_every_instance_within_a_sync() {
    let redis = Redis::start();
    let local = || {
        CircuitBreaker::builder()
            .consecutive_failures(3)
            .open_for(Duration::from_secs(60))
    };
    let bs = instances(&redis, "trip", 4, local, 1);
    assert!(bs.iter().all(|b| b.try_acquire().is_ok()));
    fail(&bs[0], 3);
    assert_eq!(bs[0].state(), State::Open, "its own breaker, at once");
    let took =
        until(Duration::from_secs(5), || bs.iter().all(refuses)).expect("every instance refuses");
    assert!(took < propagation(), "took {took:?}");
    for b in &bs[1..] {
        let s = b.fleet_snapshot();
        assert!(s.fleet_open, "{s:?}");
        assert_eq!(s.opens_applied, 1, "{s:?}");
        // Held open for the fleet's 60 s (and its probe claim).
        let left = b.retry_after().unwrap();
        assert!(left > Duration::from_secs(55), "{left:?}");
    }
    assert_eq!(bs[0].fleet_snapshot().votes, 1);
}

/// Each instance sees 8 failing calls of a policy that needs 20: none
/// trips on its own, the fleet's 32 in its window do.
#[test]
fn the_fleets_counts_trip_it_when_no_instance_alone_would() {
    let redis = Redis::start();
    let local = || {
        CircuitBreaker::builder()
            .failure_rate(0.5, Window::time(Duration::from_secs(10)))
            .minimum_calls(20)
            .open_for(Duration::from_secs(30))
    };
    let bs = instances(&redis, "counts", 4, local, 1);
    for b in &bs {
        fail(b, 8);
        assert_eq!(b.state(), State::Closed, "8 of 20: not on its own");
    }
    let took = until(Duration::from_secs(5), || bs.iter().all(refuses));
    assert!(took.is_some(), "the fleet's 32 failures open it");
    assert!(bs.iter().all(|b| b.fleet_snapshot().votes == 0));
    // A lone instance with the same counts never opens.
    let redis2 = Redis::start();
    let lone = instances(&redis2, "counts", 1, local, 1);
    fail(&lone[0], 8);
    std::thread::sleep(propagation());
    assert_eq!(lone[0].state(), State::Closed);
}

/// Under a policy of 5 failures in a row, 4 instances with runs of 2
/// each (8 in all, no success between) open the fleet; runs broken by a
/// success do not add up.
#[test]
fn the_instances_runs_of_failures_add_up() {
    let redis = Redis::start();
    let local = || {
        CircuitBreaker::builder()
            .consecutive_failures(5)
            .open_for(Duration::from_secs(30))
    };
    let broken = instances(&redis, "runs-broken", 4, local, 1);
    for b in &broken {
        fail(b, 2);
        b.try_acquire().unwrap().success();
    }
    std::thread::sleep(propagation());
    assert!(broken.iter().all(|b| b.state() == State::Closed));
    let bs = instances(&redis, "runs", 4, local, 1);
    for b in &bs {
        fail(b, 2);
        assert_eq!(b.state(), State::Closed, "2 of 5: not on its own");
    }
    let took = until(Duration::from_secs(5), || bs.iter().all(refuses));
    assert!(
        took.is_some(),
        "8 failures in a row across the fleet open it"
    );
}

#[test]
fn a_quorum_keeps_one_instance_from_opening_the_fleet() {
    let redis = Redis::start();
    let local = || {
        CircuitBreaker::builder()
            .consecutive_failures(2)
            .failure_rate(0.5, Window::time(Duration::from_secs(10)))
            .minimum_calls(10)
            .open_for(Duration::from_secs(60))
    };
    let bs = instances(&redis, "quorum", 3, local, 2);
    // One instance fails everything: its breaker opens, nobody else's, by
    // its trip or by the fleet's counts (its 12 failures of 12 calls are
    // above the rate, but reported by one instance of the 2 needed).
    for _ in 0..6 {
        fail(&bs[0], 2);
        bs[0].reset();
    }
    fail(&bs[0], 2);
    std::thread::sleep(propagation() * 2);
    assert_eq!(bs[0].state(), State::Open);
    assert!(bs[1..].iter().all(|b| b.state() == State::Closed));
    assert!(!bs[1].fleet_snapshot().fleet_open);
    // A second instance agrees: the fleet opens.
    fail(&bs[1], 2);
    let took = until(Duration::from_secs(5), || refuses(&bs[2]));
    assert!(took.is_some(), "two of three trips open the fleet");
}

/// Reopening after a failed probe lasts 4 × longer.
fn probing(open_for: Duration, probes: u32) -> impl Fn() -> failwell::breaker::Builder {
    move || {
        CircuitBreaker::builder()
            .consecutive_failures(1)
            .open_for(open_for)
            .open_for_backoff(4.0, Duration::from_secs(60))
            .half_open_calls(probes)
    }
}

/// Every instance calls as fast as it can while the fleet half-opens:
/// at most `half_open_calls` (2) probes are admitted in all, on one
/// instance; a probe verdict of success closes every instance, one of
/// failure reopens the fleet with a new generation.
#[test]
fn at_most_half_open_calls_probe_fleet_wide_and_their_verdict_is_everyones() {
    let redis = Redis::start();
    let bs: Vec<Arc<FleetBreaker>> = instances(
        &redis,
        "probes",
        4,
        probing(Duration::from_millis(600), 2),
        1,
    )
    .into_iter()
    .map(Arc::new)
    .collect();
    fail(&bs[0], 1);
    until(Duration::from_secs(5), || bs.iter().all(|b| refuses(b))).expect("all open");
    let gen = bs[1].fleet_snapshot().fleet_generation;
    for round in 0..2 {
        // Each instance's callers: probes are recorded as `verdict` after
        // all have been let in (so none is replaced while others run).
        let stop = Arc::new(AtomicBool::new(false));
        let probes = Arc::new(AtomicU64::new(0));
        let verdict_ok = round == 1;
        let threads: Vec<_> = bs
            .iter()
            .map(|b| {
                let (b, stop, probes) = (Arc::clone(b), Arc::clone(&stop), Arc::clone(&probes));
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    while !stop.load(Relaxed) {
                        if let Ok(p) = b.try_acquire() {
                            if p.state() == State::HalfOpen {
                                probes.fetch_add(1, Relaxed);
                                held.push(p.into_token());
                            } else {
                                p.ignore();
                            }
                        }
                        if held.len() == 2 || (!held.is_empty() && probes.load(Relaxed) >= 2) {
                            for t in held.drain(..) {
                                let outcome = if verdict_ok {
                                    failwell::breaker::Outcome::Success
                                } else {
                                    failwell::breaker::Outcome::Failure
                                };
                                b.breaker().record_token(t, outcome, None);
                            }
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
            })
            .collect();
        let decided = until(Duration::from_secs(10), || {
            let s = bs[2].fleet_snapshot();
            s.fleet_generation > gen + round as u64
        });
        // Let every instance apply it, still calling.
        std::thread::sleep(propagation());
        stop.store(true, Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        assert!(
            decided.is_some(),
            "round {round}: a probe verdict was reached"
        );
        let n = probes.load(Relaxed);
        assert!((1..=2).contains(&n), "round {round}: {n} probes fleet-wide");
        let owners: u64 = bs.iter().map(|b| b.fleet_snapshot().probes_owned).sum();
        assert!(owners as usize > round, "{owners}");
        if verdict_ok {
            assert!(bs.iter().all(|b| b.state() == State::Closed));
            assert!(bs.iter().all(|b| !b.fleet_snapshot().fleet_open));
        } else {
            // Reopened: everyone refuses again, for the next round.
            assert!(bs.iter().all(|b| refuses(b)));
            assert!(bs[3].fleet_snapshot().fleet_open);
        }
    }
}

/// The owner of the probes gets no call: it gives them up before its
/// claim lapses, another instance probes and closes the fleet.
#[test]
fn an_idle_probe_owner_hands_the_probes_over() {
    let redis = Redis::start();
    let local = probing(Duration::from_millis(300), 1);
    let bs: Vec<FleetBreaker> = (0..3)
        .map(|_| {
            Fleet::connect(redis.url())
                .unwrap()
                .circuit_breaker("handover", local())
                .probe_claim(Duration::from_millis(800))
                .build()
                .unwrap()
        })
        .collect();
    fail(&bs[0], 1);
    until(Duration::from_secs(5), || bs.iter().all(refuses)).expect("all open");
    // Only instance 2 calls (and its probe succeeds), whoever owns.
    let closed = until(Duration::from_secs(10), || {
        if let Ok(p) = bs[2].try_acquire() {
            p.success();
        }
        bs.iter().all(|b| b.state() == State::Closed)
    });
    assert!(
        closed.is_some(),
        "{:?}",
        bs.iter().map(|b| b.fleet_snapshot()).collect::<Vec<_>>()
    );
}

/// Redis dies: calls never wait on it, each breaker trips and probes on
/// its own, failed syncs are counted. Restarted empty (no scripts, no
/// state), the fleet's verdict is shared again without a restart; a
/// flush of an open fleet starts it over closed, and nobody stays held.
#[test]
fn a_dead_restarted_or_flushed_redis_leaves_the_breakers_working() {
    let mut redis = Redis::start();
    let local = probing(Duration::from_millis(300), 1);
    let bs = instances(&redis, "outage", 3, local, 1);
    redis.kill();
    std::thread::sleep(propagation());
    let t = Instant::now();
    for _ in 0..1000 {
        if let Ok(p) = bs[1].try_acquire() {
            p.success();
        }
    }
    assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
    fail(&bs[0], 1);
    assert_eq!(bs[0].state(), State::Open, "trips on its own");
    std::thread::sleep(propagation());
    assert_eq!(bs[1].state(), State::Closed, "no fleet: not told");
    until(Duration::from_secs(3), || {
        bs[1].fleet_snapshot().failed_syncs > 0
    })
    .unwrap();
    // Its own probe closes it, with no fleet.
    std::thread::sleep(Duration::from_millis(350));
    bs[0].try_acquire().expect("its own probe").success();
    assert_eq!(bs[0].state(), State::Closed);

    redis.restart();
    // failwell's breaker around Redis waits out its open second first.
    let synced = until(Duration::from_secs(5), || {
        bs.iter()
            .all(|b| b.fleet_snapshot().syncs > 1 && !b.fleet_snapshot().fleet_open)
    });
    assert!(synced.is_some());
    let before: Vec<u64> = bs.iter().map(|b| b.fleet_snapshot().syncs).collect();
    std::thread::sleep(propagation());
    for (b, s) in bs.iter().zip(before) {
        assert!(b.fleet_snapshot().syncs > s, "syncing again");
    }
    fail(&bs[2], 1);
    let took = until(Duration::from_secs(5), || bs.iter().all(refuses));
    assert!(took.is_some(), "shared again after the restart");

    // Flushed while open: a new epoch, closed; the held instances close.
    redis.cmd(&["FLUSHALL"]);
    let reopened = until(Duration::from_secs(5), || {
        bs[..2].iter().all(|b| b.state() == State::Closed)
    });
    assert!(reopened.is_some(), "not held by a verdict nobody has");
}

#[test]
fn bad_settings_are_named() {
    let redis = Redis::start();
    let fleet = Fleet::connect(redis.url()).unwrap();
    let named = |r: Result<FleetBreaker, FleetError>, field: &str| match r {
        Err(FleetError::Config(c)) => assert_eq!(c.field(), field, "{c}"),
        other => panic!("expected a ConfigError for {field}, got {other:?}"),
    };
    let b = || CircuitBreaker::builder().consecutive_failures(1);
    named(fleet.circuit_breaker("", b()).build(), "name");
    named(fleet.circuit_breaker(&"x".repeat(201), b()).build(), "name");
    named(fleet.circuit_breaker("q", b()).quorum(0).build(), "quorum");
    named(
        fleet.circuit_breaker("q", b()).quorum(u32::MAX).build(),
        "quorum",
    );
    named(
        fleet
            .circuit_breaker("s", b())
            .sync_every(Duration::ZERO)
            .build(),
        "sync_every",
    );
    named(
        fleet
            .circuit_breaker("s", b())
            .sync_every(Duration::MAX)
            .build(),
        "sync_every",
    );
    named(
        fleet
            .circuit_breaker("c", b())
            .probe_claim(Duration::from_millis(500))
            .build(),
        "probe_claim",
    );
    named(
        fleet
            .circuit_breaker("c", b())
            .probe_claim(Duration::MAX)
            .build(),
        "probe_claim",
    );
    named(
        fleet
            .circuit_breaker("w", b())
            .window(Duration::ZERO)
            .build(),
        "window",
    );
    named(
        fleet
            .circuit_breaker("w", b())
            .window(Duration::MAX)
            .build(),
        "window",
    );
    named(
        fleet.circuit_breaker("l", b().half_open_calls(0)).build(),
        "half_open_calls",
    );
    // A Redis that is not there is no error: the breaker is local until it is.
    let gone = Fleet::builder("redis://127.0.0.1:1/").open().unwrap();
    let t = Instant::now();
    let lone = gone.circuit_breaker("later", b()).build().unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(lone.try_acquire().is_ok());
}

/// The instance side of the multi-process test: a dependency that fails
/// every call, 10 calls a second, a policy of 50 % over at least 20 calls;
/// prints the calls that reached it and the fleet openings applied.
#[test]
fn instance() {
    let Some((url, until_t)) = instance_args() else {
        return;
    };
    let b = Fleet::connect(url)
        .unwrap()
        .circuit_breaker(
            "procs",
            CircuitBreaker::builder()
                .failure_rate(0.5, Window::time(Duration::from_secs(10)))
                .minimum_calls(20)
                .open_for(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    let mut reached = 0u64;
    while std::time::SystemTime::now() < until_t {
        if let Ok(p) = b.try_acquire() {
            reached += 1;
            p.failure();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("RESULT {reached} {}", b.fleet_snapshot().opens_applied);
}

/// Four instance processes against a dead dependency: four independent
/// breakers would each send their 20 calls (80) before opening; the
/// fleet's counts open all four after 20 in all, plus what is sent while
/// the counts and the verdict travel (a sync each way, at 40 calls a
/// second for the fleet).
#[test]
fn four_processes_share_one_outage() {
    let redis = Redis::start();
    let results = run_instances(&redis, 4, 4.0);
    let reached: u64 = results.iter().map(|r| r[0]).sum();
    eprintln!("calls that reached the dependency, per instance: {results:?}");
    assert!(reached >= 20, "{results:?}");
    assert!(reached <= 60, "{results:?}");
    let applied: u64 = results.iter().map(|r| r[1]).sum();
    assert!(
        applied >= 3,
        "the others were opened by the fleet: {results:?}"
    );
}

/// The metrics say what the syncs did: a trip elsewhere applied here,
/// then a dead Redis counted as failed syncs.
#[test]
fn metrics_say_what_the_syncs_did() {
    let mut redis = Redis::start();
    let local = || CircuitBreaker::builder().consecutive_failures(1);
    let mut bs = instances(&redis, "metered", 2, local, 1);
    let watched = Arc::new(bs.pop().unwrap());
    let registry = failwell::metrics::MetricsRegistry::new();
    failwell_fleet::metrics::register_breaker(&registry, "payments", Arc::clone(&watched)).unwrap();
    fail(&bs[0], 1);
    until(Duration::from_secs(5), || refuses(&watched)).expect("opened by the fleet");
    let text = registry.render_prometheus();
    assert!(sample(&text, "failwell_fleet_breaker_syncs_total", "payments") >= 1.0);
    assert_eq!(
        sample(&text, "failwell_fleet_breaker_fleet_open", "payments"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "failwell_fleet_breaker_opens_applied_total",
            "payments"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "failwell_fleet_breaker_votes_total", "payments"),
        0.0
    );
    assert!(sample(&text, "failwell_fleet_breaker_fleet_generation", "payments") >= 1.0);
    redis.kill();
    until(Duration::from_secs(3), || {
        watched.fleet_snapshot().failed_syncs >= 2
    })
    .unwrap();
    let text = registry.render_prometheus();
    assert!(
        sample(
            &text,
            "failwell_fleet_breaker_failed_syncs_total",
            "payments"
        ) >= 2.0
    );
}

/// `on_unavailable`: while the syncs fail, a fail-closed breaker refuses
/// every call and a fail-open one admits every call (counting them); a
/// breaker the user forced open stays as the user set it; once Redis
/// answers, each is closed and follows the fleet again.
#[test]
fn fail_open_and_fail_closed_breakers_while_redis_is_down() {
    use failwell_fleet::OnUnavailable;
    let mut redis = Redis::start();
    let fleet = Fleet::builder(redis.url())
        .io_timeout(Duration::from_millis(50))
        .connect()
        .unwrap();
    let make = |name: &str, o: OnUnavailable| {
        fleet
            .circuit_breaker(name, CircuitBreaker::builder().consecutive_failures(2))
            .on_unavailable(o)
            .build()
            .unwrap()
    };
    let closed = make("fail-closed", OnUnavailable::FailClosed);
    let open = make("fail-open", OnUnavailable::FailOpen);
    let local = make("local", OnUnavailable::Local);
    let manual = make("manual", OnUnavailable::FailOpen);
    manual.force_open();
    assert!(closed.try_acquire().is_ok() && open.try_acquire().is_ok());
    assert!(!closed.fleet_snapshot().degraded);
    redis.kill();
    until(Duration::from_secs(3), || {
        closed.fleet_snapshot().degraded && open.fleet_snapshot().degraded
    })
    .expect("a failed sync applies the fallback");
    assert_eq!(closed.state(), State::ForcedOpen);
    assert!(refuses(&closed));
    assert_eq!(open.state(), State::MetricsOnly);
    for _ in 0..5 {
        open.try_acquire().expect("fail-open admits").failure();
    }
    assert_eq!(open.state(), State::MetricsOnly, "failures do not open it");
    assert_eq!(local.state(), State::Closed);
    assert!(!local.fleet_snapshot().degraded);
    assert_eq!(manual.state(), State::ForcedOpen);
    assert!(!manual.fleet_snapshot().degraded, "the user's state");

    redis.restart();
    until(Duration::from_secs(5), || {
        !closed.fleet_snapshot().degraded && !open.fleet_snapshot().degraded
    })
    .expect("a sync that reaches Redis undoes it");
    assert_eq!(closed.state(), State::Closed);
    // The fail-open breaker's five failures reach the fleet with the
    // first sync (within the fleet window), and open it.
    until(propagation(), || open.state() == State::Open).expect("its failures reported");
    assert_eq!(open.fleet_snapshot().opens_applied, 1);
    assert_eq!(manual.state(), State::ForcedOpen, "still the user's");
    // And the fleet decides again: a trip reaches another instance.
    let other = Fleet::connect(redis.url())
        .unwrap()
        .circuit_breaker(
            "fail-closed",
            CircuitBreaker::builder().consecutive_failures(2),
        )
        .on_unavailable(OnUnavailable::FailClosed)
        .build()
        .unwrap();
    fail(&other, 2);
    until(propagation() * 2, || refuses(&closed)).expect("the fleet's verdict again");
    assert_eq!(closed.state(), State::Open);
}

/// Calls made during an outage longer than the fleet window are not
/// reported as new when Redis is back: they would open the fleet on a
/// dependency that may have recovered meanwhile.
#[test]
fn an_outage_longer_than_the_window_reports_no_stale_counts() {
    let mut redis = Redis::start();
    let policy = || {
        CircuitBreaker::builder()
            .failure_rate(0.5, Window::Count(100))
            .minimum_calls(4)
    };
    let make = || {
        Fleet::builder(redis.url())
            .io_timeout(Duration::from_millis(50))
            .connect()
            .unwrap()
            .circuit_breaker("stale", policy())
            .window(Duration::from_millis(400))
            .build()
            .unwrap()
    };
    let (a, b) = (make(), make());
    redis.kill();
    // Below the local minimum each; together 4 calls, 4 failures: had
    // they been reported as new on recovery, within one window, the
    // fleet would open.
    fail(&a, 2);
    fail(&b, 2);
    assert_eq!((a.state(), b.state()), (State::Closed, State::Closed));
    std::thread::sleep(Duration::from_millis(800));
    redis.restart();
    until(Duration::from_secs(5), || {
        a.fleet_snapshot().syncs > 1 && b.fleet_snapshot().syncs > 1
    })
    .expect("syncing again");
    std::thread::sleep(propagation());
    assert_eq!(
        (a.state(), b.state()),
        (State::Closed, State::Closed),
        "{:?} {:?}",
        a.fleet_snapshot(),
        b.fleet_snapshot()
    );
}
