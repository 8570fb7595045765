//! The resilient HTTP client: every request to a host goes through one
//! failwell pipeline — a total deadline, retries with backoff and jitter
//! under a retry budget, a circuit breaker, a rate limiter and a
//! per-attempt timeout — around a `ureq` call. Connection errors, timeouts
//! and 5xx answers count as failures (retried, and counted by the
//! breaker); 4xx answers are the caller's problem, returned as they are,
//! never retried. Only idempotent methods are retried. A `Retry-After` on
//! a 429 or 503 is honoured when it fits in the deadline.
//!
//! The example starts a flaky server on loopback (the first two requests
//! fail with 503) and calls it.
//!
//! Run: `cargo run -p failwell --example http_pipeline`

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use failwell::breaker::{CircuitBreaker, Outcome};
use failwell::pipeline::{Ended, Pipeline};
use failwell::rate_limit::RateLimiter;
use failwell::retry::{Backoff, Jitter, Retry, RetryBudget};
use failwell::Rejected;

/// What a call returns: the status and body of an answer, whatever its
/// status.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

#[derive(Debug)]
enum Failed {
    /// failwell refused (breaker open, rate limited, deadline passed...).
    Refused(Rejected),
    /// No answer: connection refused, reset, timed out.
    Transport(String),
    /// The last answer, a 5xx, after the retries were spent.
    Status(Answer),
}

/// One host's client: the pipeline and the HTTP agent.
struct HostClient {
    base: String,
    agent: ureq::Agent,
    pipeline: Pipeline,
}

impl HostClient {
    fn new(base: String) -> Result<Self, failwell::ConfigError> {
        let pipeline = Pipeline::builder()
            .total_timeout(Duration::from_secs(5))
            .retry(Arc::new(
                Retry::builder()
                    .max_attempts(4)
                    .backoff(Backoff::exponential(
                        Duration::from_millis(20),
                        2.0,
                        Duration::from_secs(1),
                    ))
                    .jitter(Jitter::Full)
                    .budget(Arc::new(RetryBudget::new()))
                    .build()?,
            ))
            .breaker(Arc::new(
                CircuitBreaker::builder()
                    .name("example-host")
                    .consecutive_failures(10)
                    .build()?,
            ))
            .rate_limiter(Arc::new(
                RateLimiter::builder()
                    .rate(100, Duration::from_secs(1))
                    .burst(10)
                    .build()?,
            ))
            .attempt_timeout(Duration::from_secs(1))
            .build()?;
        let agent = ureq::AgentBuilder::new().build();
        Ok(HostClient {
            base,
            agent,
            pipeline,
        })
    }

    /// One HTTP attempt within `remaining`: any answer is `Ok`, no answer
    /// is `Err`.
    fn attempt(&self, method: &str, path: &str, remaining: Duration) -> Result<Answer, String> {
        let request = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .timeout(remaining);
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(t.to_string()),
        };
        let status = response.status();
        let retry_after = response
            .header("retry-after")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.into_string().map_err(|e| e.to_string())?;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// Sends `method path` through the pipeline, driving its steps so that
    /// a `Retry-After` can stretch the wait before the next attempt.
    fn send(&self, method: &str, path: &str) -> Result<Answer, Failed> {
        let idempotent = matches!(method, "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS");
        let mut run = self.pipeline.begin(None).map_err(Failed::Refused)?;
        loop {
            let (result, ended) = match self.pipeline.admit(&run) {
                Err(refused) => (Err(Failed::Refused(refused)), Ended::Refused(refused)),
                Ok(attempt) => {
                    let result = self.attempt(method, path, attempt.deadline().remaining());
                    let outcome = match &result {
                        Ok(a) if a.status >= 500 => Outcome::Failure,
                        Ok(_) => Outcome::Success, // 2xx, 3xx, 4xx: the host works
                        Err(_) => Outcome::Failure,
                    };
                    self.pipeline.finish(attempt, outcome);
                    let result = match result {
                        Ok(a) if a.status >= 500 => Err(Failed::Status(a)),
                        Ok(a) => return Ok(a),
                        Err(e) => Err(Failed::Transport(e)),
                    };
                    if !idempotent {
                        return result; // counted by the breaker, never retried
                    }
                    (result, Ended::Outcome(outcome))
                }
            };
            let asked = match &result {
                Err(Failed::Status(a)) => a.retry_after,
                _ => None,
            };
            match self.pipeline.next(&mut run, ended) {
                Ok(Some(delay)) => {
                    let wait = delay.max(asked.unwrap_or_default());
                    if wait >= run.deadline().remaining() {
                        return result; // Retry-After past the deadline: give up now
                    }
                    println!(
                        "  attempt {} failed ({}), next in {wait:?}",
                        run.attempt() - 1,
                        describe(&result)
                    );
                    std::thread::sleep(wait);
                }
                Ok(None) => return result,
                Err(refused) => return Err(Failed::Refused(refused)),
            }
        }
    }
}

fn describe(r: &Result<Answer, Failed>) -> String {
    match r {
        Ok(a) => format!("{}", a.status),
        Err(Failed::Status(a)) => format!("{}", a.status),
        Err(Failed::Transport(e)) => e.clone(),
        Err(Failed::Refused(r)) => r.to_string(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hits = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&hits);
    let addr = support::serve(move |_method, path| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        match path {
            "/missing" => support::Reply::new(404, "no such item"),
            _ if n < 2 => {
                let mut r = support::Reply::new(503, "overloaded");
                r.headers.push(("retry-after", "0".into()));
                r
            }
            _ => support::Reply::new(200, "item 42"),
        }
    })?;
    let client = HostClient::new(format!("http://{addr}"))?;

    println!("GET /item (the server fails twice with 503):");
    let answer = client.send("GET", "/item").map_err(|e| format!("{e:?}"))?;
    println!(
        "  {} {:?} after {} requests",
        answer.status,
        answer.body,
        hits.load(Ordering::SeqCst)
    );
    assert_eq!((answer.status, hits.load(Ordering::SeqCst)), (200, 3));

    println!("GET /missing (a 404 is an answer, not a failure):");
    let answer = client
        .send("GET", "/missing")
        .map_err(|e| format!("{e:?}"))?;
    println!("  {} {:?}, not retried", answer.status, answer.body);
    assert_eq!((answer.status, hits.load(Ordering::SeqCst)), (404, 4));

    println!("POST /order while the server fails (not idempotent: one attempt):");
    hits.store(0, Ordering::SeqCst);
    match client.send("POST", "/order") {
        Err(Failed::Status(a)) => println!("  {} {:?}, not retried", a.status, a.body),
        other => panic!("expected the 503, got {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    Ok(())
}
