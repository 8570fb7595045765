//! The `tracing` feature: breaker transitions, listener panics, watchdog
//! findings (through the default reporter) and health changes arrive as
//! structured events with the documented targets, levels and fields.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use failwell::breaker::CircuitBreaker;
use failwell::clock::ManualClock;
use failwell::health::{HealthRegistry, Status};
use failwell::watchdog::Watchdog;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

#[derive(Debug, Clone)]
struct Seen {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

impl Seen {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or("<absent>")
    }
}

/// A subscriber that keeps every event (no spans: failwell opens none).
struct Collect(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Seen {
            target: event.metadata().target().to_string(),
            level: *event.metadata().level(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn events() -> Arc<Mutex<Vec<Seen>>> {
    static INSTALLED: Mutex<Option<Arc<Mutex<Vec<Seen>>>>> = Mutex::new(None);
    let mut g = INSTALLED.lock().unwrap();
    if let Some(e) = &*g {
        return Arc::clone(e);
    }
    let e = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::set_global_default(Collect(Arc::clone(&e))).unwrap();
    *g = Some(Arc::clone(&e));
    e
}

/// The events of `target` whose field `key` is `value`, waiting up to 5 s
/// for at least `n`.
fn wait_for(target: &str, key: &str, value: &str, n: usize) -> Vec<Seen> {
    let all = events();
    let start = Instant::now();
    loop {
        let got: Vec<Seen> = all
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.target == target && e.field(key) == value)
            .cloned()
            .collect();
        if got.len() >= n || start.elapsed() > Duration::from_secs(5) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn breaker_transitions_are_events_with_the_breaker_name() {
    events();
    let clock = ManualClock::new();
    let b = CircuitBreaker::builder()
        .name("payments")
        .consecutive_failures(2)
        .half_open_calls(1)
        .open_for(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(b.name(), Some("payments"));
    for _ in 0..2 {
        let _ = b.call(|| Err::<(), _>("down"));
    }
    clock.advance(Duration::from_secs(11));
    b.call(|| Ok::<_, ()>(())).unwrap();

    let got = wait_for("failwell::breaker", "breaker", "payments", 3);
    let steps: Vec<(Level, &str, &str)> = got
        .iter()
        .map(|e| (e.level, e.field("from"), e.field("to")))
        .collect();
    assert_eq!(
        steps,
        [
            (Level::WARN, "closed", "open"),
            (Level::INFO, "open", "half_open"),
            (Level::INFO, "half_open", "closed"),
        ],
        "{got:?}"
    );
    assert_eq!(got[0].field("generation"), "1");
    assert_eq!(got[0].field("message"), "circuit breaker opened");
}

#[test]
fn a_listener_panic_is_an_error_event() {
    events();
    let b = CircuitBreaker::builder()
        .name("panicky")
        .consecutive_failures(1)
        .build()
        .unwrap();
    b.add_listener(|_| panic!("listener bug"));
    let _ = b.call(|| Err::<(), _>("down"));
    let got: Vec<Seen> = wait_for("failwell::breaker", "breaker", "panicky", 2)
        .into_iter()
        .filter(|e| e.level == Level::ERROR)
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].field("message").contains("listener panicked"));
    assert_eq!(b.snapshot().listener_panics, 1);
}

#[test]
fn the_default_watchdog_reporter_writes_through_tracing() {
    events();
    let dog = Watchdog::builder()
        .tick(Duration::from_millis(20))
        .build()
        .unwrap();
    let beat = dog
        .heartbeat("tracing-consumer", Duration::from_millis(50))
        .unwrap();
    let got = wait_for("failwell::watchdog", "key", "stall:tracing-consumer", 1);
    assert_eq!(
        got.len(),
        1,
        "no stall event: {:?}",
        events().lock().unwrap()
    );
    assert_eq!(got[0].level, Level::WARN);
    assert_eq!(got[0].field("kind"), "stall");
    assert_eq!(got[0].field("cleared"), "false");
    assert!(got[0].field("message").contains("tracing-consumer"));
    beat.beat();
    let got = wait_for("failwell::watchdog", "key", "stall:tracing-consumer", 2);
    assert_eq!(got.len(), 2, "no cleared event: {got:?}");
    assert_eq!(
        (got[1].level, got[1].field("cleared")),
        (Level::INFO, "true")
    );
}

#[test]
fn health_changes_are_events_per_check_and_for_the_whole() {
    events();
    let failing = Arc::new(AtomicBool::new(true));
    let health = HealthRegistry::builder()
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let f = Arc::clone(&failing);
    health
        .register("tracing-db", true, Duration::from_secs(1), move || {
            if f.load(Ordering::SeqCst) {
                Err("connection refused".into())
            } else {
                Ok(())
            }
        })
        .unwrap();
    assert_eq!(health.check_now().status, Status::Unhealthy);
    health.check_now(); // no change, no event
    failing.store(false, Ordering::SeqCst);
    assert_eq!(health.check_now().status, Status::Healthy);

    let got = wait_for("failwell::health", "check", "tracing-db", 2);
    let steps: Vec<(Level, &str, &str, &str)> = got
        .iter()
        .map(|e| (e.level, e.field("from"), e.field("to"), e.field("error")))
        .collect();
    assert_eq!(
        steps,
        [
            (Level::WARN, "healthy", "unhealthy", "connection refused"),
            (Level::INFO, "unhealthy", "healthy", ""),
        ],
        "{got:?}"
    );
    // The aggregate too (check = ""), once each way for this registry.
    let whole = wait_for("failwell::health", "check", "", 2);
    assert!(whole.len() >= 2, "{whole:?}");
}
