//! The fleet rate limiter's exact mode, timed beside a plain Redis `SET`
//! on the same loopback server in the same run: starts `redis-server` on a
//! free port, makes `n` decisions (default 20000) and `n` SETs, and prints
//! the round trips' percentiles.
//!
//! `cargo run -p failwell-benches --release --bin fleet_exact [n]`

use std::time::{Duration, Instant};

use failwell::rate_limit::RateLimiter;
use failwell_fleet::Fleet;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(20_000, |a| a.parse().expect("a number"));
    let server = failwell_benches::LoopbackRedis::start();
    let url = server.url.clone();
    let fleet = Fleet::connect(url.as_str()).unwrap();
    let limiter = fleet
        .exact_rate_limiter(
            "bench",
            RateLimiter::builder()
                .rate(1_000_000, Duration::from_secs(1))
                .burst(1_000_000),
        )
        .build()
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    for round in 0..2 {
        let mut exact = Vec::with_capacity(n);
        let mut set = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            limiter.check_n(1).unwrap().unwrap();
            exact.push(t.elapsed());
            let t = Instant::now();
            redis::cmd("SET")
                .arg("failwell-bench-plain")
                .arg(i)
                .query::<()>(&mut conn)
                .unwrap();
            set.push(t.elapsed());
        }
        if round == 0 {
            continue; // warm-up
        }
        for (what, mut v) in [("exact-mode decision (EVALSHA)", exact), ("plain SET", set)] {
            v.sort_unstable();
            let q = |f: f64| v[((v.len() - 1) as f64 * f) as usize];
            println!(
                "{what:>30}: {n} round trips, p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
                q(0.5),
                q(0.9),
                q(0.99),
                q(1.0)
            );
        }
    }
    drop(server);
}
