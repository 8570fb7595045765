//! Four instance processes on one exact fleet limit, against a real
//! redis-server: together they never admit more than burst + rate × time,
//! and each one's admissions add up to what the fleet allowed.

use std::time::{Duration, Instant, SystemTime};

use failwell::rate_limit::RateLimiter;
use failwell_fleet::Fleet;

mod common;
use common::{instance_args, run_instances, Redis};

const RATE: u64 = 500;
const BURST: u64 = 25;

/// The instance side: does nothing in an ordinary test run.
#[test]
fn instance() {
    let Some((url, until)) = instance_args() else {
        return;
    };
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
    println!("RESULT {tries} {admitted}");
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
