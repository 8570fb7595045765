use std::time::Duration;

use failwell::breaker::CircuitBreaker;
use failwell::rate_limit::RateLimiter;
use failwell_fleet::{Fleet, FleetError, OnUnavailable};

fn main() -> Result<(), FleetError> {
    let url = std::env::var("FAILWELL_REDIS_URL");
    // 100 ms to connect, 50 ms for each read or write; FleetError if
    // Redis does not answer (`Fleet::builder(url).open()` does not ask).
    let fleet = Fleet::connect(url.as_deref().unwrap_or("redis://127.0.0.1:6379/"))?;

    // 1000 requests a second for all instances together, decided locally.
    let api = fleet
        .rate_limiter(
            "api",
            RateLimiter::builder().rate(1000, Duration::from_secs(1)),
        )
        .instances(20) // this one's share until the live ones are counted
        .build()?;
    println!("api: {:?}", api.try_acquire());

    // An upstream's quota, decided by Redis on each call; refused (not
    // guessed) while Redis is unreachable.
    let quota = fleet
        .exact_rate_limiter(
            "upstream",
            RateLimiter::builder().rate(100, Duration::from_secs(60)),
        )
        .on_unavailable(OnUnavailable::FailClosed)
        .build()?;
    println!("quota: {:?}", quota.try_acquire());

    // One verdict about a dependency for every instance; two must agree.
    let payments = fleet
        .circuit_breaker(
            "payments",
            CircuitBreaker::builder().consecutive_failures(5),
        )
        .quorum(2)
        .build()?;
    let charged = payments.call(|| Ok::<_, std::io::Error>("charged"));
    println!("payments: {:?}", charged.map_err(|e| e.to_string()));
    Ok(())
}
