//! failwell for a fleet: limits and verdicts shared by every instance of a
//! service through Redis, on the `redis` crate's synchronous API (no async
//! runtime), with explicit timeouts and failwell's own breaker around
//! Redis, so that Redis is one more dependency the service survives.
//!
//! What is here: the connection ([`Fleet`]: a small pool, connect,
//! read and write timeouts in milliseconds by default, scripts loaded when
//! a primitive is made and again if the server lost them) and the fleet
//! rate limiter in its two modes, on one bucket in Redis (failwell's GCRA
//! with the server's `TIME`, so the instances' clocks do not matter):
//!
//! - **leased** (the default, [`Fleet::rate_limiter`] →
//!   [`LeasedRateLimiter`]): each decision is a local atomic operation on
//!   tokens a background thread leases from the bucket about 9 times a
//!   second, sized to the instance's demand and share; never more than
//!   the limit plus the burst fleet-wide;
//! - **exact** ([`Fleet::exact_rate_limiter`] → [`ExactRateLimiter`]): one
//!   round trip per decision, never admitting more than the limit however
//!   many instances ask.
//!
//! and the fleet circuit breaker ([`Fleet::circuit_breaker`] →
//! [`FleetBreaker`]): calls are admitted by an ordinary local breaker; a
//! background thread reports its trips and counts and applies the
//! fleet's verdict, so every instance refuses within a sync interval
//! (200 ms by default) after any instance (or a quorum of them) trips,
//! and one instance runs the half-open probes for all.
//!
//! ```no_run
//! use std::time::Duration;
//! use failwell::rate_limit::RateLimiter;
//! use failwell_fleet::Fleet;
//!
//! let fleet = Fleet::connect("redis://127.0.0.1:6379/")?;
//! // 1000 per second for every instance together; decided locally.
//! let api = fleet
//!     .rate_limiter("api", RateLimiter::builder().rate(1000, Duration::from_secs(1)))
//!     .instances(20) // the share until the instances are counted
//!     .build()?;
//! if api.try_acquire().is_ok() { /* serve */ }
//!
//! // The same, decided by Redis on every call, bursts of 50.
//! let quota = fleet
//!     .exact_rate_limiter(
//!         "upstream-quota",
//!         RateLimiter::builder().rate(1000, Duration::from_secs(1)).burst(50),
//!     )
//!     .instances(20) // while Redis is down, each decides on 1/20 of it
//!     .build()?;
//! match quota.try_acquire() {
//!     Ok(()) => { /* call the upstream */ }
//!     Err(refused) => println!("not now: {refused}"),
//! }
//!
//! // One verdict about a dependency for every instance.
//! let payments = fleet
//!     .circuit_breaker(
//!         "payments",
//!         failwell::breaker::CircuitBreaker::builder().consecutive_failures(5),
//!     )
//!     .build()?;
//! let _ = payments.call(|| Ok::<_, std::io::Error>("charged"));
//! # Ok::<(), failwell_fleet::FleetError>(())
//! ```

mod any;
mod breaker;
mod client;
mod error;
mod exact;
mod leased;
pub mod metrics;

pub use any::{AnyBreaker, AnyRateLimiter};
pub use breaker::{
    FleetBreaker, FleetBreakerBuilder, FleetBreakerSnapshot, DEFAULT_FLEET_WINDOW,
    DEFAULT_PROBE_CLAIM, SYNC_EVERY,
};
pub use client::{
    Fleet, FleetBuilder, FleetSnapshot, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT,
    DEFAULT_KEY_PREFIX, DEFAULT_POOL_SIZE, GUARD_FAILURES, GUARD_OPEN_FOR, MAX_TIMEOUT,
};
pub use error::FleetError;
pub use exact::{ExactBuilder, ExactRateLimiter, ExactSnapshot, OnUnavailable};
pub use leased::{LeasedBuilder, LeasedRateLimiter, LeasedSnapshot, INSTANCE_TTL, LEASE_TICK};
