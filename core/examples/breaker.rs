//! A circuit breaker around a flaky call: it opens after five failures in a
//! row, fails fast while the dependency is down (the call is not made),
//! lets one probe through after `open_for`, and closes when it succeeds.
//!
//! Run: `cargo run -p failwell --example breaker`

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use failwell::breaker::{CircuitBreaker, State};
use failwell::{Error, Rejected};

/// The dependency: down until `up` is set; counts the calls that reach it.
struct Dependency {
    up: AtomicBool,
    reached: AtomicU32,
}

impl Dependency {
    fn get(&self, key: &str) -> Result<String, std::io::Error> {
        self.reached.fetch_add(1, Ordering::Relaxed);
        if self.up.load(Ordering::Relaxed) {
            Ok(format!("value of {key}"))
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused",
            ))
        }
    }
}

fn main() -> Result<(), failwell::ConfigError> {
    let breaker = CircuitBreaker::builder()
        .name("inventory")
        .consecutive_failures(5)
        .half_open_calls(1)
        .open_for(Duration::from_millis(200))
        .build()?;
    breaker.add_listener(|t| println!("  breaker: {} -> {}", t.from, t.to));
    let dep = Dependency {
        up: AtomicBool::new(false),
        reached: AtomicU32::new(0),
    };

    println!("the dependency is down; 20 calls:");
    let (mut failed, mut fast) = (0, 0);
    for _ in 0..20 {
        match breaker.call(|| dep.get("sku-1")) {
            Ok(_) => unreachable!("the dependency is down"),
            Err(Error::Inner(_)) => failed += 1, // reached it, failed
            Err(Error::Rejected(Rejected::CircuitOpen { .. })) => fast += 1, // not made
            Err(Error::Rejected(other)) => panic!("unexpected refusal: {other}"),
        }
    }
    println!("  {failed} failed at the dependency, {fast} refused at once");
    assert_eq!((failed, fast), (5, 15));
    assert_eq!(breaker.state(), State::Open);
    let wait = breaker.retry_after().expect("open: a retry time");
    println!("  retry after {wait:?}");

    println!("the dependency recovers; after open_for one probe goes through:");
    dep.up.store(true, Ordering::Relaxed);
    std::thread::sleep(wait + Duration::from_millis(10));
    let value = breaker
        .call(|| dep.get("sku-1"))
        .expect("the probe succeeds");
    println!("  got {value:?}");
    assert_eq!(breaker.state(), State::Closed);
    println!(
        "the dependency was reached {} times in 21 calls",
        dep.reached.load(Ordering::Relaxed)
    );
    assert_eq!(dep.reached.load(Ordering::Relaxed), 6);
    Ok(())
}
