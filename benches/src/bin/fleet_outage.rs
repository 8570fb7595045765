//! Outage discovery across a fleet: `n` instance processes (4 by default)
//! call a dependency that fails every call, each at `rate` calls a second
//! (10 by default), for 4 s; the calls that reached the dependency are
//! counted, with per-instance breakers (failwell's in-process
//! `CircuitBreaker`) and with one fleet breaker through a loopback
//! `redis-server`, under two policies: 5 consecutive failures, and a
//! failure rate of 50 % over at least 20 calls in a 10 s window.
//!
//! `cargo run -p failwell-benches --release --bin fleet_outage [n [rate]]`

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use failwell::breaker::{Builder, CircuitBreaker, Window};
use failwell_fleet::Fleet;

const SECS: u64 = 4;

fn policy(name: &str) -> Builder {
    let b = CircuitBreaker::builder().open_for(Duration::from_secs(60));
    match name {
        "consecutive" => b.consecutive_failures(5),
        _ => b
            .failure_rate(0.5, Window::time(Duration::from_secs(10)))
            .minimum_calls(20),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        return worker(&args[2..]);
    }
    let n: usize = args.get(1).map_or(4, |a| a.parse().expect("instances"));
    let rate: u64 = args.get(2).map_or(10, |a| a.parse().expect("calls/s"));
    let server = failwell_benches::LoopbackRedis::start();
    for policy_name in ["consecutive", "rate"] {
        let mut row = Vec::new();
        for mode in ["local", "fleet"] {
            let until_ms = (SystemTime::now() + Duration::from_secs(SECS))
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
                .to_string();
            let name = format!("outage-{policy_name}");
            let children: Vec<_> = (0..n)
                .map(|_| {
                    Command::new(std::env::current_exe().unwrap())
                        .args([
                            "worker",
                            &server.url,
                            &name,
                            mode,
                            policy_name,
                            &rate.to_string(),
                            &until_ms,
                        ])
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("worker starts")
                })
                .collect();
            let mut calls = Vec::new();
            for c in children {
                let out = c.wait_with_output().unwrap();
                let text = String::from_utf8(out.stdout).unwrap();
                calls.push(text.trim().parse::<u64>().expect("a count"));
            }
            row.push((mode, calls.iter().sum::<u64>(), calls));
        }
        let (local, fleet) = (row[0].1, row[1].1);
        println!(
            "{policy_name:>11}: {n} instances x {rate}/s, calls to the dead dependency: per-instance {local} {:?}, fleet {fleet} {:?} ({:.2}x)",
            row[0].2,
            row[1].2,
            fleet as f64 / local as f64
        );
    }
    drop(server);
}

fn worker(args: &[String]) {
    let (url, name, mode, policy_name) = (&args[0], &args[1], &args[2], &args[3]);
    let rate: u64 = args[4].parse().unwrap();
    let until = UNIX_EPOCH + Duration::from_millis(args[5].parse().unwrap());
    let gap = Duration::from_secs(1) / rate as u32;
    let mut reached = 0u64;
    let mut call = |b: &CircuitBreaker| {
        if let Ok(p) = b.try_acquire() {
            reached += 1;
            p.failure();
        }
    };
    if mode == "fleet" {
        let fleet = Fleet::connect(url.as_str()).unwrap();
        let b = fleet
            .circuit_breaker(name, policy(policy_name))
            .build()
            .unwrap();
        while SystemTime::now() < until {
            call(b.breaker());
            std::thread::sleep(gap);
        }
    } else {
        let b = policy(policy_name).build().unwrap();
        while SystemTime::now() < until {
            call(&b);
            std::thread::sleep(gap);
        }
    }
    println!("{reached}");
}
