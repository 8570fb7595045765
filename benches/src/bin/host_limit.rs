//! A host-wide rate limit across worker processes, measured: `workers`
//! processes (default 8) each try as fast as they can for `secs` seconds
//! (default 10) against a limit of `rate` per second (default 100, burst
//! 10), once on one limiter in a host region and once on a limiter of
//! each process's own, and the admissions are counted by each worker.
//!
//! `cargo run -p failwell-benches --release --bin host_limit [workers rate secs]`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use failwell::rate_limit::RateLimiter;
use failwell::region::Region;

const BURST: u64 = 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        return worker(&args[2..]);
    }
    let n = |i: usize, d: u64| args.get(i).map_or(d, |a| a.parse().expect("a number"));
    let (workers, rate, secs) = (n(1, 8), n(2, 100), n(3, 10));
    let name = format!("failwell-host-limit-{}", std::process::id());
    let _ = Region::unlink(&name);
    for mode in ["shared", "own"] {
        let until = SystemTime::now() + Duration::from_secs(secs);
        let until_ms = until
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .to_string();
        let start = Instant::now();
        let children: Vec<_> = (0..workers)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .args(["worker", mode, &name, &rate.to_string(), &until_ms])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("worker starts")
            })
            .collect();
        let mut tries = 0u64;
        let mut admitted = 0u64;
        for c in children {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let mut it = text.split_whitespace().map(|w| w.parse::<u64>().unwrap());
            tries += it.next().unwrap();
            admitted += it.next().unwrap();
        }
        let elapsed = start.elapsed().as_secs_f64();
        let one_limit = BURST as f64 + rate as f64 * elapsed;
        println!(
            "{mode:>6}: {workers} processes, {rate}/s burst {BURST}, {elapsed:.2} s: {tries} tries, \
             {admitted} admitted = {:.3} x one limit (burst + rate x time = {one_limit:.0})",
            admitted as f64 / one_limit
        );
    }
    let _ = Region::unlink(&name);
}

fn worker(args: &[String]) {
    let rate: u64 = args[2].parse().unwrap();
    let until = UNIX_EPOCH + Duration::from_millis(args[3].parse().unwrap());
    let builder = RateLimiter::builder()
        .rate(rate, Duration::from_secs(1))
        .burst(BURST);
    let limiter = if args[0] == "shared" {
        Region::open(&args[1], 1 << 20)
            .unwrap()
            .rate_limiter("api", builder)
            .unwrap()
    } else {
        builder.build().unwrap()
    };
    let (mut tries, mut admitted) = (0u64, 0u64);
    while SystemTime::now() < until {
        for _ in 0..64 {
            tries += 1;
            admitted += limiter.try_acquire().is_ok() as u64;
        }
    }
    println!("{tries} {admitted}");
}
