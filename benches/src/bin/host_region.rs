//! Host-region figures, each beside its in-process twin in the same run:
//!
//! - `outage [workers rounds]`: `workers` processes (default 8) start
//!   calling a dependency that is down at the same instant, through a
//!   breaker that trips after 5 failures in a row — one breaker in a host
//!   region, then a breaker of each process's own — and each counts the
//!   calls it made before its breaker refused.
//! - `costs [ops]`: nanoseconds per closed breaker pass (`call` with `Ok`)
//!   and per bulkhead `try_acquire` + release, on a shared and on an
//!   in-process primitive, in 1 process and in 2 processes at once (the
//!   in-process twin: each process its own).
//! - `wake [rounds]`: how long after a release in one process a waiter
//!   blocked in `acquire_timeout` in another process holds the permit.
//! - `count <breaker|bulkhead> <shared|local> <n>`: `n` operations and
//!   nothing else, for instruction counts under callgrind (run it for two
//!   `n` and divide the difference).
//!
//! `cargo run -p failwell-benches --release --bin host_region -- <mode>`

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use failwell::breaker::CircuitBreaker;
use failwell::bulkhead::{Bulkhead, Config};
use failwell::clock::{Clock, MonotonicClock};
use failwell::region::Region;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = |i: usize, d: u64| args.get(i).map_or(d, |a| a.parse().expect("a number"));
    match args.first().map(String::as_str) {
        Some("outage") => outage(n(1, 8), n(2, 5)),
        Some("costs") => costs(n(1, 20_000_000)),
        Some("wake") => wake(n(1, 200)),
        Some("count") => count(&args[1], &args[2], n(3, 100_000)),
        Some("worker") => worker(&args[1..]),
        _ => {
            eprintln!("usage: host_region outage|costs|wake|count ...");
            std::process::exit(2);
        }
    }
}

fn scratch(tag: &str) -> String {
    let name = format!("failwell-bench-{tag}-{}", std::process::id());
    let _ = Region::unlink(&name);
    name
}

fn breaker(mode: &str, region: &str, consecutive: u32) -> CircuitBreaker {
    let b = CircuitBreaker::builder()
        .consecutive_failures(consecutive)
        .open_for(Duration::from_secs(3600));
    if mode == "shared" {
        Region::open(region, 1 << 20)
            .unwrap()
            .circuit_breaker("dep", b)
            .unwrap()
    } else {
        b.build().unwrap()
    }
}

fn bulkhead(mode: &str, region: &str, max: u32) -> Bulkhead {
    let c = Config {
        max_concurrent: max,
        critical_reserve: 0,
    };
    if mode == "shared" {
        Region::open(region, 1 << 20)
            .unwrap()
            .bulkhead("pool", c)
            .unwrap()
    } else {
        Bulkhead::builder()
            .max_concurrent(c.max_concurrent)
            .build()
            .unwrap()
    }
}

fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .arg("worker")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("worker starts")
}

fn outage(workers: u64, rounds: u64) {
    for mode in ["shared", "own"] {
        let mut all = Vec::new();
        for _ in 0..rounds {
            let region = scratch("outage");
            // Every worker attached by then; all start at the same instant.
            let start = SystemTime::now() + Duration::from_millis(300);
            let start_ms = start
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
                .to_string();
            let children: Vec<_> = (0..workers)
                .map(|_| spawn(&["outage", mode, &region, &start_ms]))
                .collect();
            let calls: u64 = children
                .into_iter()
                .map(|c| {
                    let out = c.wait_with_output().unwrap();
                    String::from_utf8(out.stdout)
                        .unwrap()
                        .trim()
                        .parse::<u64>()
                        .unwrap()
                })
                .sum();
            all.push(calls);
            let _ = Region::unlink(&region);
        }
        println!(
            "outage, {workers} processes, consecutive_failures=5, breaker {mode:>6}: calls that reached the dead dependency per round {all:?}"
        );
    }
}

fn costs(ops: u64) {
    for what in ["breaker", "bulkhead"] {
        for mode in ["local", "shared"] {
            for procs in [1, 2] {
                let region = scratch("costs");
                if mode == "shared" {
                    // Made here, so the workers only attach.
                    let _ = (breaker(mode, &region, 5), bulkhead(mode, &region, 1 << 20));
                }
                let children: Vec<_> = (0..procs)
                    .map(|_| spawn(&["costs", what, mode, &region, &ops.to_string()]))
                    .collect();
                let ns: Vec<String> = children
                    .into_iter()
                    .map(|c| {
                        let out = c.wait_with_output().unwrap();
                        String::from_utf8(out.stdout).unwrap().trim().to_string()
                    })
                    .collect();
                println!(
                    "{what:>8} {mode:>6}, {procs} process(es): ns per op {}",
                    ns.join(" / ")
                );
                let _ = Region::unlink(&region);
            }
        }
    }
}

fn wake(rounds: u64) {
    // The in-process twin: a waiter thread on an in-process bulkhead.
    let b = std::sync::Arc::new(bulkhead("local", "", 1));
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (at_tx, at_rx) = std::sync::mpsc::channel::<u64>();
    let waiter = {
        let b = b.clone();
        std::thread::spawn(move || {
            while go_rx.recv().is_ok() {
                let p = b.acquire_timeout(Duration::from_secs(5)).unwrap();
                let at = MonotonicClock.now();
                drop(p);
                at_tx.send(at).unwrap();
            }
        })
    };
    let lat = wake_rounds(
        rounds,
        &b,
        |_| go_tx.send(()).unwrap(),
        || at_rx.recv().unwrap(),
    );
    drop(go_tx);
    waiter.join().unwrap();
    report("in-process (a thread)", rounds, lat);

    let region = scratch("wake");
    let b = bulkhead("shared", &region, 1);
    let mut child = spawn(&["wake", &region]);
    let mut to = child.stdin.take().unwrap();
    let mut from = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let lat = wake_rounds(
        rounds,
        &b,
        |_| {
            writeln!(to, "go").unwrap();
            to.flush().unwrap();
        },
        || {
            line.clear();
            from.read_line(&mut line).unwrap();
            line.trim().parse().unwrap()
        },
    );
    drop(to);
    child.wait().unwrap();
    report("cross-process (a host region)", rounds, lat);
    let _ = Region::unlink(&region);
}

/// `rounds` times: holds `b`'s only permit, tells the waiter to wait,
/// lets it fall asleep, releases, and reads when the waiter got it.
fn wake_rounds(
    rounds: u64,
    b: &Bulkhead,
    mut go: impl FnMut(u64),
    mut got: impl FnMut() -> u64,
) -> Vec<u64> {
    let mut lat = Vec::new();
    for i in 0..rounds {
        let p = b.try_acquire().expect("the waiter gave it back");
        go(i);
        std::thread::sleep(Duration::from_millis(10)); // the waiter is asleep
        let released = MonotonicClock.now();
        drop(p);
        lat.push(got().saturating_sub(released));
    }
    lat
}

fn report(what: &str, rounds: u64, mut lat: Vec<u64>) {
    lat.sort_unstable();
    let q = |f: f64| Duration::from_nanos(lat[((lat.len() - 1) as f64 * f) as usize]);
    println!(
        "wake-up {what}, {rounds} rounds: median {:?}, p90 {:?}, p99 {:?}, max {:?}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
}

fn count(what: &str, mode: &str, n: u64) {
    let region = scratch("count");
    if what == "breaker" {
        let b = breaker(mode, &region, 5);
        for i in 0..n {
            let r: Result<u64, failwell::Error<()>> = b.call(|| Ok(std::hint::black_box(i)));
            std::hint::black_box(r.is_ok());
        }
    } else {
        let b = bulkhead(mode, &region, 1 << 20);
        for _ in 0..n {
            std::hint::black_box(b.try_acquire().is_ok());
        }
    }
    let _ = Region::unlink(&region);
}

fn worker(args: &[String]) {
    match args[0].as_str() {
        "outage" => {
            let b = breaker(&args[1], &args[2], 5);
            let start = UNIX_EPOCH + Duration::from_millis(args[3].parse().unwrap());
            while SystemTime::now() < start {
                std::hint::spin_loop();
            }
            let mut calls = 0u64;
            while let Ok(p) = b.try_acquire() {
                calls += 1;
                p.failure(); // the dependency is down
            }
            println!("{calls}");
        }
        "costs" => {
            let (what, mode, region) = (&args[1], &args[2], &args[3]);
            let ops: u64 = args[4].parse().unwrap();
            let t = if what == "breaker" {
                let b = breaker(mode, region, 5);
                let t = Instant::now();
                for i in 0..ops {
                    let r: Result<u64, failwell::Error<()>> =
                        b.call(|| Ok(std::hint::black_box(i)));
                    std::hint::black_box(r.is_ok());
                }
                t.elapsed()
            } else {
                let b = bulkhead(mode, region, 1 << 20);
                let t = Instant::now();
                for _ in 0..ops {
                    std::hint::black_box(b.try_acquire().is_ok());
                }
                t.elapsed()
            };
            println!("{:.2}", t.as_nanos() as f64 / ops as f64);
        }
        "wake" => {
            let b = Region::open(&args[1], 1 << 20)
                .unwrap()
                .attach_bulkhead("pool")
                .unwrap();
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                if line.is_err() {
                    break;
                }
                let p = b.acquire_timeout(Duration::from_secs(5)).unwrap();
                let at = MonotonicClock.now();
                drop(p);
                println!("{at}");
                std::io::stdout().flush().unwrap();
            }
        }
        other => panic!("unknown worker {other}"),
    }
}
