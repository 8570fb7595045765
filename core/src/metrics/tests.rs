//! The exposition round-trips through an independent Prometheus parser.

use super::*;
use crate::breaker::Window;
use crate::bulkhead::Priority;
use crate::deadline::Deadline;
use std::time::Duration;

fn parse(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("valid exposition")
}

fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {metric} {labels:?}"));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("unexpected value {other:?}"),
    }
}

#[test]
fn the_prometheus_text_round_trips_through_a_parser() {
    let m = MetricsRegistry::new();
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .failure_rate(0.5, Window::Count(10))
            .minimum_calls(4)
            .build()
            .unwrap(),
    );
    let bulkhead = Arc::new(Bulkhead::builder().max_concurrent(3).build().unwrap());
    let limiter = Arc::new(
        RateLimiter::builder()
            .rate(10, Duration::from_secs(1))
            .burst(2)
            .build()
            .unwrap(),
    );
    let retry = Arc::new(
        Retry::builder()
            .max_attempts(3)
            .backoff(crate::retry::Backoff::Constant(Duration::ZERO))
            .build()
            .unwrap(),
    );
    let adaptive = Arc::new(AdaptiveLimit::builder().build().unwrap());
    let pool = TimeoutPool::new(2).unwrap();
    let health = Arc::new(
        HealthRegistry::builder()
            .interval(Duration::from_secs(3600))
            .build()
            .unwrap(),
    );
    health
        .register(
            "cache",
            false,
            Duration::from_secs(1),
            || Err("down".into()),
        )
        .unwrap();
    health.check_now();
    m.register_breaker("db", breaker.clone()).unwrap();
    m.register_bulkhead("db", bulkhead.clone()).unwrap();
    m.register_rate_limiter("api", limiter.clone()).unwrap();
    m.register_retry("db", retry.clone()).unwrap();
    m.register_adaptive_limit("db", adaptive.clone()).unwrap();
    m.register_timeout_pool("blocking", pool.clone()).unwrap();
    m.register_health("service", health.clone()).unwrap();

    // Activity: success, failure, success, failure trips the breaker (50%
    // of 4 calls, the minimum); the next three calls are rejected.
    for i in 0..6 {
        let _ = breaker.call(|| if i % 2 == 0 { Ok(()) } else { Err(()) });
    }
    let _ = breaker.call(|| Ok::<_, ()>(()));
    let _held = bulkhead.try_acquire().unwrap();
    for _ in 0..3 {
        let _ = limiter.try_acquire();
    }
    let mut n = 0;
    let _: Result<(), crate::Error<()>> = retry.call(|| {
        n += 1;
        if n < 3 {
            Err(())
        } else {
            Ok(())
        }
    });
    adaptive.try_acquire(Priority::Normal).unwrap().success();
    pool.run(Deadline::after(Duration::from_secs(5)), || ())
        .unwrap();

    let text = m.render_prometheus();
    let scrape = parse(&text);
    let db = [("instance", "db")];
    assert_eq!(value(&scrape, "failwell_breaker_calls_total", &db), 4.0);
    assert_eq!(value(&scrape, "failwell_breaker_failures_total", &db), 2.0);
    assert_eq!(value(&scrape, "failwell_breaker_successes_total", &db), 2.0);
    assert_eq!(value(&scrape, "failwell_breaker_rejected_total", &db), 3.0);
    assert_eq!(value(&scrape, "failwell_breaker_opened_total", &db), 1.0);
    assert_eq!(
        value(
            &scrape,
            "failwell_breaker_state",
            &[("instance", "db"), ("state", "open")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "failwell_breaker_state",
            &[("instance", "db"), ("state", "closed")]
        ),
        0.0
    );
    assert_eq!(value(&scrape, "failwell_bulkhead_in_use", &db), 1.0);
    assert_eq!(value(&scrape, "failwell_bulkhead_max_concurrent", &db), 3.0);
    let api = [("instance", "api")];
    assert_eq!(
        value(&scrape, "failwell_rate_limiter_admitted_total", &api),
        2.0
    );
    assert_eq!(
        value(&scrape, "failwell_rate_limiter_rejected_total", &api),
        1.0
    );
    assert_eq!(value(&scrape, "failwell_retry_retries_total", &db), 2.0);
    assert_eq!(value(&scrape, "failwell_retry_attempts_total", &db), 3.0);
    assert_eq!(value(&scrape, "failwell_adaptive_limit", &db), 20.0);
    assert_eq!(
        value(
            &scrape,
            "failwell_timeout_pool_busy",
            &[("instance", "blocking")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &scrape,
            "failwell_health_status",
            &[("instance", "service")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "failwell_health_check_status",
            &[("instance", "service"), ("check", "cache")]
        ),
        1.0
    );
    if cfg!(target_os = "linux") {
        assert!(value(&scrape, "failwell_process_threads", &[]) >= 1.0);
    }
    // Every family has its HELP and TYPE line.
    for name in m.collect().families.keys() {
        assert!(scrape.docs.contains_key(*name), "no HELP for {name}");
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "no TYPE for {name}"
        );
    }
    // The error rate of the window.
    assert_eq!(
        value(&scrape, "failwell_breaker_failure_rate", &db),
        0.0,
        "a new generation opened"
    );
}

#[test]
fn a_stale_cache_reports_what_it_served() {
    let m = MetricsRegistry::new();
    let cache = Arc::new(
        crate::degrade::StaleCache::builder()
            .max_stale(Duration::from_secs(60))
            .build::<&'static str, u32>()
            .unwrap(),
    );
    m.register_stale_cache("users", cache.clone()).unwrap();
    let _ = cache.get_or_fetch("a", || Ok::<_, ()>(1));
    let _ = cache.get_or_fetch("a", || Err::<u32, _>(()));
    let _ = cache.get_or_fetch("a", || Err::<u32, _>(()));
    let _ = cache.get_or_fetch("b", || Err::<u32, _>(()));
    let scrape = parse(&m.render_prometheus());
    let i = [("instance", "users")];
    assert_eq!(value(&scrape, "failwell_stale_cache_fresh_total", &i), 1.0);
    assert_eq!(value(&scrape, "failwell_stale_cache_stale_total", &i), 2.0);
    assert_eq!(value(&scrape, "failwell_stale_cache_misses_total", &i), 1.0);
    assert_eq!(value(&scrape, "failwell_stale_cache_entries", &i), 1.0);
    assert!(
        m.register_stale_cache("users", cache).is_err(),
        "one name, once"
    );
}

#[test]
fn label_values_are_escaped() {
    let m = MetricsRegistry::new();
    let b = Arc::new(Bulkhead::builder().build().unwrap());
    m.register_bulkhead("we\"ird\\name", b).unwrap();
    let text = m.render_prometheus();
    // The spec's escapes (the parser hands label values back as written).
    assert!(
        text.contains(r#"failwell_bulkhead_in_use{instance="we\"ird\\name"} 0"#),
        "{text}"
    );
    let scrape = parse(&text);
    assert_eq!(
        value(
            &scrape,
            "failwell_bulkhead_in_use",
            &[("instance", r#"we\"ird\\name"#)]
        ),
        0.0
    );
}

#[test]
fn duplicate_or_empty_names_are_refused() {
    let m = MetricsRegistry::new();
    let b = Arc::new(Bulkhead::builder().build().unwrap());
    m.register_bulkhead("x", b.clone()).unwrap();
    assert_eq!(
        m.register_bulkhead("x", b.clone()).unwrap_err().field(),
        "instance"
    );
    assert_eq!(m.register_bulkhead("", b).unwrap_err().field(), "instance");
}

#[cfg(feature = "metrics")]
#[test]
fn values_are_mirrored_into_the_metrics_facade() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let m = MetricsRegistry::new();
    let b = Arc::new(Bulkhead::builder().max_concurrent(7).build().unwrap());
    let _ = b.try_acquire();
    m.register_bulkhead("pool", b).unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || m.report_to_metrics());
    let found: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, _, _, _)| key.key().name() == "failwell_bulkhead_max_concurrent")
        .collect();
    assert_eq!(found.len(), 1);
    let (key, _, _, value) = &found[0];
    assert_eq!(*value, DebugValue::Gauge(7.0.into()));
    assert!(key
        .key()
        .labels()
        .any(|l| l.key() == "instance" && l.value() == "pool"));
}

#[test]
fn a_source_of_another_crate_is_collected_and_named_once() {
    let r = MetricsRegistry::new();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(3));
    let h = hits.clone();
    r.register_source("edge", "fleet_limiter", move |x, i| {
        x.counter(
            "failwell_fleet_admitted_total",
            "Admitted.",
            i,
            h.load(std::sync::atomic::Ordering::Relaxed),
        );
        x.gauge("failwell_fleet_instances", "Live instances.", i, 4.0);
    })
    .unwrap();
    let s = parse(&r.render_prometheus());
    assert_eq!(
        value(&s, "failwell_fleet_admitted_total", &[("instance", "edge")]),
        3.0
    );
    assert_eq!(
        value(&s, "failwell_fleet_instances", &[("instance", "edge")]),
        4.0
    );
    hits.store(5, std::sync::atomic::Ordering::Relaxed);
    let s = parse(&r.render_prometheus());
    assert_eq!(
        value(&s, "failwell_fleet_admitted_total", &[("instance", "edge")]),
        5.0
    );
    let e = r
        .register_source("edge", "fleet_limiter", |_, _| {})
        .unwrap_err();
    assert_eq!(e.field(), "instance");
    assert!(r.register_source("", "fleet_limiter", |_, _| {}).is_err());
    assert!(r.register_source("edge", "other_kind", |_, _| {}).is_ok());
}
