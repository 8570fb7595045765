//! The host region with real processes: this test binary runs itself as
//! the worker processes (the `worker` test, which does nothing unless
//! `FAILWELL_REGION_WORKER` says what to do), and checks what they did
//! through counts each reports on its own, independent of the region.

#![cfg(all(unix, not(failwell_loom)))]

use std::process::Child;
use std::time::{Duration, Instant};

use failwell::rate_limit::RateLimiter;
use failwell::region::Region;

mod common;
use common::{result, spawn, worker_role, Scratch};

fn limiter_builder(rate: u64, burst: u64) -> failwell::rate_limit::Builder {
    RateLimiter::builder()
        .rate(rate, Duration::from_secs(1))
        .burst(burst)
}

/// The worker side. Does nothing in an ordinary test run.
#[test]
fn worker() {
    let Some((role, args)) = worker_role() else {
        return;
    };
    let n = |i: usize| args[i].parse::<u64>().unwrap();
    let region = Region::open(&args[0], 1 << 20).expect("worker opens the region");
    match role.as_str() {
        // region, rate, burst, run-until (ms since the epoch): try as fast
        // as possible; report tries and admissions.
        "limit" => {
            let l = region
                .rate_limiter("api", limiter_builder(n(1), n(2)))
                .unwrap();
            let until = std::time::UNIX_EPOCH + Duration::from_millis(n(3));
            let (mut tries, mut admitted) = (0u64, 0u64);
            while std::time::SystemTime::now() < until {
                for _ in 0..64 {
                    tries += 1;
                    admitted += l.try_acquire().is_ok() as u64;
                }
            }
            println!("RESULT {tries} {admitted}");
        }
        // region, count: take `count` of a slow limiter's burst and exit.
        "take" => {
            let l = region
                .rate_limiter(
                    "slow",
                    RateLimiter::builder()
                        .rate(1, Duration::from_secs(3600))
                        .burst(10),
                )
                .unwrap();
            let taken = (0..n(1)).filter(|_| l.try_acquire().is_ok()).count();
            println!("RESULT {taken}");
        }
        // region, tries: withdraw from a host-wide retry budget.
        "withdraw" => {
            let b = region
                .retry_budget("retries", 0.0, 0.05, Duration::from_secs(3600))
                .unwrap();
            let got = (0..n(1)).filter(|_| b.try_withdraw()).count();
            println!("RESULT {got}");
        }
        // region: make slots with fresh names as fast as possible, until
        // killed (the region lock is taken and released for each).
        "churn" => {
            for i in 0.. {
                let slot = format!("c{}-{i}", std::process::id());
                if region.rate_limiter(&slot, limiter_builder(1, 1)).is_err() {
                    // Full: start over in a new file would hide nothing;
                    // keep asking for an existing one (still the lock).
                    let _ = region.attach_rate_limiter("api").map(|l| l.snapshot());
                }
            }
        }
        other => panic!("unknown worker role {other}"),
    }
}

/// Eight processes on one host-wide limit of 2000/s with a burst of 50,
/// for about a second and a half: together they are admitted no more than
/// the burst plus the rate over the time they ran (+1 %), and not much
/// less; the limiter's own count of admissions agrees with the workers'.
#[test]
fn eight_processes_share_one_exact_limit() {
    let s = Scratch::new("limit");
    let region = Region::open(&s.0, 1 << 20).unwrap();
    let (rate, burst) = (2000u64, 50u64);
    let l = region
        .rate_limiter("api", limiter_builder(rate, burst))
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let start = Instant::now();
    let until = now_ms + 1500;
    let args = [
        s.0.clone(),
        rate.to_string(),
        burst.to_string(),
        until.to_string(),
    ];
    let workers: Vec<Child> = (0..8).map(|_| spawn("limit", &args)).collect();
    let results: Vec<Vec<u64>> = workers.into_iter().map(result).collect();
    let elapsed = start.elapsed();
    let tries: u64 = results.iter().map(|r| r[0]).sum();
    let admitted: u64 = results.iter().map(|r| r[1]).sum();
    let bound = burst + (rate as f64 * elapsed.as_secs_f64() * 1.01) as u64;
    eprintln!("8 processes: {tries} tries, {admitted} admitted in {elapsed:?} (bound {bound})");
    assert!(tries >= 1_000_000, "{tries} operations in all");
    assert!(admitted <= bound, "{admitted} admitted, at most {bound}");
    // The workers ran at least 1 s of the 1.5 (start-up included).
    assert!(admitted >= rate, "{admitted} admitted, at least {rate}");
    let snap = l.snapshot();
    assert_eq!(
        snap.admitted, admitted,
        "the region's count is the workers' sum"
    );
    assert_eq!(snap.admitted + snap.rejected, tries);
    assert!(
        results.iter().all(|r| r[1] > 0),
        "every worker was admitted: {results:?}"
    );
}

/// A process creates the region and takes 4 of a limiter's burst of 10,
/// then exits; the region outlives it: a later process attaches and finds
/// 6 left, and another worker after it none.
#[test]
fn state_outlives_the_process_that_created_it() {
    let s = Scratch::new("outlive");
    assert_eq!(result(spawn("take", &[s.0.clone(), "4".into()])), [4]);
    let region = Region::open(&s.0, 1 << 20).unwrap();
    let l = region.attach_rate_limiter("slow").unwrap();
    assert_eq!(l.snapshot().admitted, 4);
    assert_eq!(result(spawn("take", &[s.0.clone(), "20".into()])), [6]);
    assert!(l.try_acquire().is_err());
}

/// Workers making slots are killed with SIGKILL at random moments, a
/// hundred times, often while they hold the region lock: every time, this
/// process then finds the region usable at once (the kernel dropped the
/// dead worker's record lock; no slot is half made) and a limiter in it
/// keeps its count.
#[test]
fn workers_killed_while_making_slots_leave_nothing_held() {
    let s = Scratch::new("kill");
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let hourly = || {
        RateLimiter::builder()
            .rate(1, Duration::from_secs(3600))
            .burst(1)
    };
    let l = region.rate_limiter("api", hourly()).unwrap();
    assert!(l.try_acquire().is_ok());
    let mut seed = std::process::id() as u64;
    for round in 0..100 {
        let mut child = spawn("churn", std::slice::from_ref(&s.0));
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_micros(2000 + (seed >> 33) % 20_000));
        child.kill().unwrap();
        child.wait().unwrap();
        let started = Instant::now();
        let names = region.names();
        let slot = format!("after-{round}");
        match region.rate_limiter(&slot, limiter_builder(1, 1)) {
            Ok(_) | Err(failwell::region::RegionError::Full { .. }) => {}
            Err(e) => panic!("round {round}: {e}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "round {round}: the region lock was held"
        );
        assert!(
            names.iter().all(|n| !n.is_empty()),
            "round {round}: a half-made slot"
        );
        assert!(
            l.try_acquire().is_err(),
            "round {round}: the limiter kept its state"
        );
    }
    assert_eq!(
        region
            .attach_rate_limiter("api")
            .unwrap()
            .snapshot()
            .admitted,
        1
    );
}

/// Eight processes withdraw from one host-wide retry budget of 0.05
/// retries per second over an hour (180 retries): together they get
/// exactly 180, not 180 each.
#[test]
fn eight_processes_share_one_retry_budget() {
    use failwell::clock::{Clock, MonotonicClock};
    let s = Scratch::new("budget");
    let region = Region::open(&s.0, 1 << 20).unwrap();
    let b = region
        .retry_budget("retries", 0.0, 0.05, Duration::from_secs(3600))
        .unwrap();
    let epoch = || MonotonicClock.now_coarse() / 3_600_000_000_000;
    let before = epoch();
    let workers: Vec<Child> = (0..8)
        .map(|_| spawn("withdraw", &[s.0.clone(), "1000".into()]))
        .collect();
    let got: u64 = workers.into_iter().map(|w| result(w)[0]).sum();
    if epoch() == before {
        assert_eq!(got, 180, "one allowance for the host");
    } else {
        assert!(got <= 360, "{got} across an epoch boundary");
    }
    assert_eq!(b.refused(), 8 * 1000 - got);
}
