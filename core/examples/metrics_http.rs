//! Metrics and health over HTTP: a breaker, a bulkhead and a health
//! registry registered in one `MetricsRegistry`, served as `/metrics`
//! (the Prometheus text format) and `/health` (200 or 503 with a JSON
//! body) from a small server on loopback; the example scrapes both once
//! and prints them. With `--serve` it keeps serving (Ctrl-C to stop), so
//! `curl http://127.0.0.1:<port>/metrics` can be pointed at it.
//!
//! Run: `cargo run -p failwell --example metrics_http [-- --serve]`

mod support;

use std::sync::Arc;
use std::time::Duration;

use failwell::breaker::CircuitBreaker;
use failwell::bulkhead::Bulkhead;
use failwell::health::{HealthRegistry, HealthReport, Status};
use failwell::metrics::MetricsRegistry;

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The health report as the JSON a load balancer or a person reads.
fn health_json(r: &HealthReport) -> String {
    let checks: Vec<String> = r
        .checks
        .iter()
        .map(|c| {
            format!(
                r#"{{"name":{},"status":"{}","critical":{},"latency_ms":{:.3},"error":{}}}"#,
                json_string(&c.name),
                c.status,
                c.critical,
                c.latency.as_secs_f64() * 1e3,
                c.error.as_deref().map_or("null".to_string(), json_string)
            )
        })
        .collect();
    format!(
        r#"{{"status":"{}","round":{},"checks":[{}]}}"#,
        r.status,
        r.round,
        checks.join(",")
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .name("db")
            .consecutive_failures(3)
            .build()?,
    );
    let bulkhead = Arc::new(Bulkhead::builder().max_concurrent(16).build()?);
    let health = Arc::new(
        HealthRegistry::builder()
            .interval(Duration::from_secs(5))
            .build()?,
    );
    health.register_breaker("db", Arc::clone(&breaker), Status::Degraded)?;
    health.register("disk", true, Duration::from_secs(1), || Ok(()))?;
    assert_eq!(
        json_string("a \"quoted\"\n\\path"),
        r#""a \"quoted\"\u000a\\path""#
    );
    health.check_now();

    let metrics = Arc::new(MetricsRegistry::new());
    metrics.register_breaker("db", Arc::clone(&breaker))?;
    metrics.register_bulkhead("db", Arc::clone(&bulkhead))?;
    metrics.register_health("service", Arc::clone(&health))?;

    // Some traffic: 5 calls, 3 of them failing (the breaker opens).
    for i in 0..5 {
        let _ = bulkhead.call(|| breaker.call(|| if i < 3 { Err("timeout") } else { Ok(()) }));
    }
    health.check_now();

    let (m, h) = (Arc::clone(&metrics), Arc::clone(&health));
    let addr = support::serve(move |_, path| match path {
        "/metrics" => {
            let mut r = support::Reply::new(200, m.render_prometheus());
            r.headers
                .push(("content-type", "text/plain; version=0.0.4".into()));
            r
        }
        "/health" => {
            let report = h.report();
            // Degraded still serves traffic: only Unhealthy is a 503.
            let status = if report.status == Status::Unhealthy {
                503
            } else {
                200
            };
            let mut r = support::Reply::new(status, health_json(&report));
            r.headers.push(("content-type", "application/json".into()));
            r
        }
        _ => support::Reply::new(404, "try /metrics or /health"),
    })?;
    println!("serving http://{addr}/metrics and http://{addr}/health");

    let health_body = ureq::get(&format!("http://{addr}/health"))
        .call()?
        .into_string()?;
    println!("GET /health -> {health_body}");
    assert!(
        health_body.starts_with(r#"{"status":"degraded""#),
        "{health_body}"
    );

    let text = ureq::get(&format!("http://{addr}/metrics"))
        .call()?
        .into_string()?;
    let breaker_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("failwell_breaker_") && !l.starts_with('#'))
        .collect();
    println!(
        "GET /metrics -> {} lines; the breaker's:",
        text.lines().count()
    );
    for l in &breaker_lines {
        println!("  {l}");
    }
    assert!(text.contains("# TYPE failwell_breaker_calls_total counter"));
    assert!(text.contains("failwell_bulkhead_"));

    if std::env::args().any(|a| a == "--serve") {
        println!("serving until interrupted");
        loop {
            std::thread::park();
        }
    }
    Ok(())
}
