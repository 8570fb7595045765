//! Shared bulkheads with real processes: eight workers on one host-wide
//! limit, checked by a count of their own in memory outside the region;
//! workers killed with SIGKILL while they take and give back permits,
//! hundreds of times, every permit back within a second; waits across
//! processes; a worker that exits holding permits.

#![cfg(all(unix, not(failwell_loom)))]

use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use failwell::bulkhead::{Config, Priority};
use failwell::region::Region;

mod common;
use common::{ready, result, spawn, tally, worker_role, Scratch};

/// Counters in a shared file of their own, outside any region
/// (`common::tally`): how many workers are inside the bulkhead now and
/// the most ever (each thread counts itself in before it counts itself
/// out, so the count never goes below zero).
struct Tally {
    words: &'static [AtomicU64],
    path: String,
}

impl Tally {
    fn create(path: &str) -> Tally {
        Tally {
            words: tally(path),
            path: path.into(),
        }
    }

    fn inside(&self) -> &AtomicU64 {
        &self.words[0]
    }

    fn most(&self) -> &AtomicU64 {
        &self.words[1]
    }
}

fn config(max: u32, reserve: u32) -> Config {
    Config {
        max_concurrent: max,
        critical_reserve: reserve,
    }
}

/// The worker side. Does nothing in an ordinary test run.
#[test]
fn worker() {
    let Some((role, args)) = worker_role() else {
        return;
    };
    let n = |i: usize| args[i].parse::<u64>().unwrap();
    let region = Region::open(&args[0], 4 << 20).expect("worker opens the region");
    match role.as_str() {
        // region, tally file, max, reserve, ops per thread, threads: take
        // and give back as fast as possible, a few timed waits among the
        // tries, one in 8 critical; count inside the tally.
        "stress" => {
            let b = region
                .bulkhead("db", config(n(2) as u32, n(3) as u32))
                .unwrap();
            let tally = Tally::create(&args[1]);
            let max = n(2);
            let (ops, threads) = (n(4), n(5));
            let got = AtomicU64::new(0);
            let violations = AtomicU64::new(0);
            std::thread::scope(|s| {
                for t in 0..threads {
                    let (b, tally, got, violations) = (&b, &tally, &got, &violations);
                    s.spawn(move || {
                        for i in 0..ops {
                            let prio = if (i + t) % 8 == 0 {
                                Priority::Critical
                            } else {
                                Priority::Normal
                            };
                            let permit = if i % 64 == 0 {
                                b.acquire_timeout_with(prio, Duration::from_millis(1))
                            } else {
                                b.try_acquire_with(prio)
                            };
                            if let Ok(p) = permit {
                                let now = tally.inside().fetch_add(1, SeqCst) + 1;
                                tally.most().fetch_max(now, SeqCst);
                                if now > max {
                                    violations.fetch_add(1, SeqCst);
                                }
                                std::hint::spin_loop();
                                tally.inside().fetch_sub(1, SeqCst);
                                drop(p);
                                got.fetch_add(1, SeqCst);
                            }
                        }
                    });
                }
            });
            println!(
                "RESULT {} {} {}",
                ops * threads,
                got.load(SeqCst),
                violations.load(SeqCst)
            );
        }
        // region, max, threads, held: `threads` threads take and give back
        // at full speed; one more permit is held throughout. Prints READY,
        // then runs until killed.
        "churn" => {
            let b = region.bulkhead("chaos", config(n(1) as u32, 0)).unwrap();
            // Earlier workers may be churning already: wait for the held one.
            let _held: Vec<_> = (0..n(3))
                .map(|_| b.acquire_timeout(Duration::from_secs(10)).unwrap())
                .collect();
            println!("READY");
            std::thread::scope(|s| {
                for _ in 0..n(2) {
                    s.spawn(|| loop {
                        if let Ok(p) = b.try_acquire() {
                            drop(p);
                        }
                    });
                }
            });
        }
        // region, count, then: hold `count` permits, print READY, and then
        // either sleep (until killed) or exit at once holding them.
        "hold" => {
            let b = region.bulkhead("held", config(4, 0)).unwrap();
            let held: Vec<_> = (0..n(1)).map(|_| b.try_acquire().unwrap()).collect();
            println!("READY");
            if args[2] == "exit" {
                std::mem::forget(held);
                std::process::exit(0);
            }
            let release_after = n(3);
            std::thread::sleep(Duration::from_millis(release_after));
            drop(held);
            println!("RESULT 0");
        }
        other => panic!("unknown worker role {other}"),
    }
}

/// Eight processes of four threads each, 1.28·10^6 tries in all, on one
/// host-wide bulkhead of 5 with 1 reserved: a count of their own, kept
/// outside the region, never sees more than 5 inside; the bulkhead's
/// counts agree with the workers'; every permit is back at the end.
#[test]
fn eight_processes_never_hold_more_than_the_limit() {
    let s = Scratch::new("bh-stress");
    let tally_path = format!("/dev/shm/{}-tally", s.0);
    let tally = Tally::create(&tally_path);
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let b = region.bulkhead("db", config(5, 1)).unwrap();
    let args: Vec<String> = [&s.0, &tally_path, "5", "1", "40000", "4"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let started = Instant::now();
    let workers: Vec<Child> = (0..8).map(|_| spawn("stress", &args)).collect();
    let results: Vec<Vec<u64>> = workers.into_iter().map(result).collect();
    let tries: u64 = results.iter().map(|r| r[0]).sum();
    let got: u64 = results.iter().map(|r| r[1]).sum();
    let violations: u64 = results.iter().map(|r| r[2]).sum();
    eprintln!(
        "8 processes: {tries} tries, {got} permits in {:?}, most inside {}",
        started.elapsed(),
        tally.most().load(SeqCst)
    );
    assert!(tries >= 1_000_000);
    assert_eq!(violations, 0);
    assert!(tally.most().load(SeqCst) <= 5);
    assert!(got > 0 && results.iter().all(|r| r[1] > 0), "{results:?}");
    let snap = b.snapshot();
    assert_eq!((snap.available, snap.in_use), (5, 0), "every permit back");
    assert_eq!(
        snap.rejected,
        tries - got,
        "one rejection count for the host"
    );
    assert_eq!(snap.peak, 5);
    let _ = std::fs::remove_file(&tally.path);
}

/// Fifty rounds: four worker processes take and give back permits at full
/// speed on two threads each (one also holding a permit throughout), and
/// are killed with SIGKILL at a random moment — 200 kills, many of them
/// between a permit word's update and its ledger entry. After each round
/// every permit is back within a second (the dead are zombies until
/// waited for: a zombie counts as dead), never one more than the limit.
#[test]
fn permits_of_workers_killed_with_sigkill_come_back_within_a_second() {
    let s = Scratch::new("bh-chaos");
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let max = 6u32;
    let b = region.bulkhead("chaos", config(max, 0)).unwrap();
    let mut seed = std::process::id() as u64 | 1;
    let mut slowest = Duration::ZERO;
    for round in 0..50 {
        let mut workers: Vec<Child> = (0..4)
            .map(|w| {
                let held = if w == 0 { "1" } else { "0" };
                spawn(
                    "churn",
                    &[s.0.clone(), max.to_string(), "2".into(), held.into()],
                )
            })
            .collect();
        for w in &mut workers {
            ready(w);
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(5 + seed % 40));
        for w in &mut workers {
            w.kill().unwrap();
        }
        let killed = Instant::now();
        loop {
            let a = b.snapshot().available;
            assert!(a <= max as u64, "round {round}: {a} available of {max}");
            if a == max as u64 {
                break;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(1),
                "round {round}: {a} of {max} back after 1 s"
            );
            // A caller that finds the bulkhead full reaps when due.
            drop(b.try_acquire());
            std::thread::sleep(Duration::from_millis(2));
        }
        slowest = slowest.max(killed.elapsed());
        for mut w in workers {
            w.wait().unwrap();
        }
    }
    eprintln!("200 workers killed: every permit back, slowest round {slowest:?}");
    let held: Vec<_> = (0..max).map(|_| b.try_acquire().unwrap()).collect();
    assert!(b.try_acquire().is_err(), "exactly {max}, none extra");
    drop(held);
}

/// A process waiting in `acquire_timeout` gets the permit another process
/// gives back, long before its timeout; with the holder holding on, the
/// wait times out on time.
#[test]
fn a_wait_ends_when_another_process_gives_a_permit_back() {
    let s = Scratch::new("bh-wait");
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let b = region.bulkhead("held", config(4, 0)).unwrap();
    let mut holder = spawn(
        "hold",
        &[s.0.clone(), "4".into(), "sleep".into(), "300".into()],
    );
    ready(&mut holder);
    let t0 = Instant::now();
    assert!(b.acquire_timeout(Duration::from_millis(50)).is_err());
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(50) && waited < Duration::from_millis(250));
    let p = b.acquire_timeout(Duration::from_secs(10)).unwrap();
    let waited = t0.elapsed();
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    drop(p);
    assert_eq!(result(holder), [0]);
    assert_eq!(b.snapshot().available, 4);
}

/// A process that exits (normally, not killed) holding permits gives them
/// back too, through the reaper; a process attaching after it is gone
/// finds the bulkhead whole.
#[test]
fn a_process_that_exits_holding_permits_gives_them_back() {
    let s = Scratch::new("bh-exit");
    let mut holder = spawn(
        "hold",
        &[s.0.clone(), "3".into(), "exit".into(), "0".into()],
    );
    ready(&mut holder);
    assert!(holder.wait().unwrap().success());
    let region = Region::open(&s.0, 4 << 20).unwrap();
    let b = region.attach_bulkhead("held").unwrap();
    let t0 = Instant::now();
    while b.snapshot().available < 4 {
        assert!(t0.elapsed() < Duration::from_secs(1));
        drop(b.try_acquire());
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(b.config().max_concurrent, 4);
}
