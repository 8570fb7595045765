//! The load generator: a fixed request rate, alternating between the two
//! endpoints, each request with a client-side timeout.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::timeline::Timeline;

/// The client's timeout on every request.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// One request as the client saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was sent, seconds from the start of the run.
    pub at: f64,
    /// `/dep` or `/local`.
    pub endpoint: &'static str,
    /// A 200 within the client's timeout.
    pub ok: bool,
    /// How long it took (the timeout, if it timed out), ms.
    pub latency_ms: f64,
    /// Served from the stale cache.
    pub stale: bool,
}

/// Sends `rate` requests per second to `base` for the whole timeline, then
/// waits for the last ones (at most the client timeout).
pub fn run(base: &str, timeline: Timeline, rate: f64) -> Vec<Sample> {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let agent = ureq::AgentBuilder::new()
        .timeout(CLIENT_TIMEOUT)
        .max_idle_connections(0)
        .build();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut handles = Vec::new();
    let mut i: u32 = 0;
    loop {
        let due = interval * i;
        if due >= timeline.total() {
            break;
        }
        let now = timeline.elapsed();
        if due > now {
            thread::sleep(due - now);
        }
        let endpoint = if i % 2 == 0 { "/dep" } else { "/local" };
        let (url, agent, samples) = (format!("{base}{endpoint}"), agent.clone(), samples.clone());
        let start = timeline.start;
        handles.push(thread::spawn(move || {
            let sent = Instant::now();
            let (ok, stale) = match agent.get(&url).call() {
                Ok(resp) => (
                    resp.status() == 200,
                    resp.header("x-failwell-stale").is_some(),
                ),
                Err(_) => (false, false),
            };
            let s = Sample {
                at: (sent - start).as_secs_f64(),
                endpoint,
                ok,
                latency_ms: sent.elapsed().as_secs_f64() * 1000.0,
                stale,
            };
            samples.lock().expect("unpoisoned").push(s);
        }));
        i += 1;
    }
    for h in handles {
        let _ = h.join();
    }
    let mut v = std::mem::take(&mut *samples.lock().expect("unpoisoned"));
    v.sort_by(|a, b| a.at.total_cmp(&b.at));
    v
}
