//! Instance processes on one exact fleet limit, against a real
//! redis-server: together they never admit more than burst + rate × time,
//! and each one's admissions add up to what the fleet allowed — also when
//! their clocks are a second ahead and a second behind (libfaketime):
//! the limit runs on Redis's clock.

use std::time::{Duration, Instant, SystemTime};

use failwell::rate_limit::RateLimiter;
use failwell_fleet::Fleet;

mod common;
use common::{instance_args, run_instances, run_instances_with, Redis};

const RATE: u64 = 500;
const BURST: u64 = 25;

/// The instance side: does nothing in an ordinary test run.
#[test]
fn instance() {
    let Some((url, until)) = instance_args() else {
        return;
    };
    // How far this process's clock is from its parent's at its start, in
    // ms (printed + 10^6).
    let skew = std::env::var("FAILWELL_FLEET_SPAWNED_MS").map_or(0, |spawned| {
        let now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        now - spawned.parse::<i64>().unwrap()
    });
    let fleet = Fleet::connect(url).unwrap();
    let l = fleet
        .exact_rate_limiter(
            "procs",
            RateLimiter::builder()
                .rate(RATE, Duration::from_secs(1))
                .burst(BURST),
        )
        .build()
        .unwrap();
    let (mut tries, mut admitted) = (0u64, 0u64);
    while SystemTime::now() < until {
        tries += 1;
        admitted += l.try_acquire().is_ok() as u64;
    }
    assert_eq!(l.snapshot().fallbacks, 0, "Redis decided every request");
    println!("RESULT {tries} {admitted} {}", skew + 1_000_000);
}

#[test]
fn four_processes_never_exceed_one_exact_limit() {
    let redis = Redis::start();
    let start = Instant::now();
    let per: Vec<(u64, u64)> = run_instances(&redis, 4, 2.0)
        .into_iter()
        .map(|r| (r[0], r[1]))
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    let admitted: u64 = per.iter().map(|p| p.1).sum();
    let bound = BURST as f64 + RATE as f64 * elapsed;
    assert!(
        admitted as f64 <= bound + 1.0,
        "{admitted} admitted > {bound:.0}: {per:?}"
    );
    // Startup takes part of the window; most of the limit is used.
    assert!(admitted >= RATE, "{admitted}: {per:?}");
    assert!(
        per.iter().all(|p| p.1 > 0),
        "every instance was admitted: {per:?}"
    );
    eprintln!("4 processes, {RATE}/s burst {BURST}, {elapsed:.2} s: {admitted} admitted (bound {bound:.0}), {per:?}");
}

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn instances_with_clocks_a_second_apart_stay_exact() {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing (scripts/test.sh installs the Debian package faketime)"
    );
    let redis = Redis::start();
    let now_ms = || {
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .to_string()
    };
    let skewed = |offset: &str| {
        vec![
            ("LD_PRELOAD", LIBFAKETIME.to_string()),
            ("FAKETIME", offset.to_string()),
            ("FAILWELL_FLEET_SPAWNED_MS", now_ms()),
        ]
    };
    let start = Instant::now();
    // Each stops by its own clock: the one ahead a second early, the one
    // behind a second late.
    let per = run_instances_with(&redis, &[skewed("+1s"), skewed("-1s")], 2.0);
    let elapsed = start.elapsed().as_secs_f64();
    let skews: Vec<i64> = per.iter().map(|r| r[2] as i64 - 1_000_000).collect();
    assert!(
        (800..1500).contains(&skews[0]) && (-1200..-500).contains(&skews[1]),
        "the clocks were not skewed: {skews:?} ms"
    );
    let admitted: u64 = per.iter().map(|r| r[1]).sum();
    let bound = BURST as f64 + RATE as f64 * elapsed;
    assert!(
        admitted as f64 <= bound + 1.0,
        "{admitted} admitted > {bound:.0}: {per:?}"
    );
    assert!(admitted >= RATE, "{admitted}: {per:?}");
    eprintln!("clocks {skews:?} ms off, {elapsed:.2} s: {admitted} admitted (bound {bound:.0})");
}
