//! Four instance processes on one exact fleet limit, against a real
//! redis-server: together they never admit more than burst + rate × time,
//! and each one's admissions add up to what the fleet allowed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use failwell::rate_limit::RateLimiter;
use failwell_fleet::Fleet;

mod common;
use common::Redis;

const RATE: u64 = 500;
const BURST: u64 = 25;

/// The instance side: does nothing in an ordinary test run.
#[test]
fn instance() {
    let (Ok(url), Ok(until)) = (
        std::env::var("FAILWELL_FLEET_URL"),
        std::env::var("FAILWELL_FLEET_UNTIL_MS"),
    ) else {
        return;
    };
    let until = UNIX_EPOCH + Duration::from_millis(until.parse().unwrap());
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
    let until = SystemTime::now() + Duration::from_secs(2);
    let until_ms = until.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "instance", "--nocapture", "--test-threads", "1"])
                .env("FAILWELL_FLEET_URL", redis.url())
                .env("FAILWELL_FLEET_UNTIL_MS", until_ms.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut per = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let r: Vec<u64> = text
            .lines()
            .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r.to_owned()))
            .unwrap_or_else(|| panic!("no RESULT in {text:?}"))
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        per.push((r[0], r[1]));
    }
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
