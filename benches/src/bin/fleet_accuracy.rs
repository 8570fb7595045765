//! Fleet accuracy of the leased-mode rate limiter: `n` instance processes
//! (4, 8 and 32 by default) share 1000/s (burst 1000) through one loopback
//! `redis-server` for `secs` seconds (default 10), each offering about
//! twice its share (a call every `n`/2 ms); admissions are counted by each
//! instance, and the server's client command count gives the Redis
//! commands per instance per second.
//!
//! `cargo run -p failwell-benches --release --bin fleet_accuracy [secs [n...]]`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use failwell::rate_limit::RateLimiter;
use failwell_fleet::Fleet;

const RATE: u64 = 1000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        return worker(&args[2..]);
    }
    let secs: u64 = args.get(1).map_or(10, |a| a.parse().expect("seconds"));
    let counts: Vec<u64> = if args.len() > 2 {
        args[2..]
            .iter()
            .map(|a| a.parse().expect("a count"))
            .collect()
    } else {
        vec![4, 8, 32]
    };
    let server = failwell_benches::LoopbackRedis::start();
    let url = server.url.clone();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut admin = client.get_connection().unwrap();
    for n in counts {
        let name = format!("accuracy-{n}");
        let before = client_commands(&mut admin);
        let until = SystemTime::now() + Duration::from_secs(secs);
        let until_ms = until
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .to_string();
        let start = Instant::now();
        let children: Vec<_> = (0..n)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .args(["worker", &url, &name, &n.to_string(), &until_ms])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("worker starts")
            })
            .collect();
        let mut admitted = 0u64;
        let mut fallbacks = 0u64;
        for c in children {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let mut it = text.split_whitespace().map(|w| w.parse::<u64>().unwrap());
            admitted += it.next().unwrap();
            fallbacks += it.next().unwrap();
        }
        let elapsed = start.elapsed().as_secs_f64();
        let commands = client_commands(&mut admin) - before;
        let allowed = RATE as f64 * elapsed + RATE as f64;
        println!(
            "{n:>3} instances, {RATE}/s burst {RATE}, {elapsed:.2} s: {admitted} admitted of {allowed:.0} allowed \
             (rate x time + burst) = {:.1} % ({:.1} % of rate x time), {:.1} Redis commands/s per instance, {fallbacks} fallbacks",
            100.0 * admitted as f64 / allowed,
            100.0 * admitted as f64 / (RATE as f64 * elapsed),
            commands as f64 / n as f64 / elapsed,
        );
    }
    drop(server);
}

/// EVAL, EVALSHA and SCRIPT calls so far (not the commands scripts ran).
fn client_commands(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(c).unwrap();
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter(|l| l.starts_with("eval") || l.starts_with("script"))
        .filter_map(|l| {
            l.split_once("calls=")?
                .1
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn worker(args: &[String]) {
    let (url, name) = (&args[0], &args[1]);
    let n: u64 = args[2].parse().unwrap();
    let until = UNIX_EPOCH + Duration::from_millis(args[3].parse().unwrap());
    let fleet = Fleet::connect(url.as_str()).unwrap();
    let l = fleet
        .rate_limiter(
            name,
            RateLimiter::builder().rate(RATE, Duration::from_secs(1)),
        )
        .instances(n as u32)
        .build()
        .unwrap();
    // About twice this instance's share: a call every n/2 ms.
    let gap = Duration::from_micros(500 * n);
    let mut admitted = 0u64;
    while SystemTime::now() < until {
        admitted += l.try_acquire().is_ok() as u64;
        std::thread::sleep(gap);
    }
    println!("{admitted} {}", l.snapshot().fallbacks);
}
