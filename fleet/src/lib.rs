//! failwell for a fleet: limits and verdicts shared by every instance of a
//! service through Redis, on the `redis` crate's synchronous API (no async
//! runtime), with explicit timeouts and failwell's own breaker around
//! Redis, so that Redis is one more dependency the service survives.
//!
//! What is here so far: the connection ([`Fleet`]: a small pool, connect,
//! read and write timeouts in milliseconds by default, scripts loaded on
//! every new connection and again if the server lost them) and the rate
//! limiter's **exact mode** ([`ExactRateLimiter`]): failwell's GCRA as one
//! Lua script on one key with the server's `TIME`, one round trip per
//! decision, never admitting more than the limit however many instances
//! ask and whatever their clocks say.
//!
//! ```no_run
//! use std::time::Duration;
//! use failwell::rate_limit::RateLimiter;
//! use failwell_fleet::Fleet;
//!
//! let fleet = Fleet::connect("redis://127.0.0.1:6379/")?;
//! // 1000 per second for every instance together, bursts of 50.
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
//! # Ok::<(), failwell_fleet::FleetError>(())
//! ```

mod client;
mod error;
mod exact;

pub use client::{
    Fleet, FleetBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IO_TIMEOUT, DEFAULT_KEY_PREFIX,
    DEFAULT_POOL_SIZE, GUARD_FAILURES, GUARD_OPEN_FOR, MAX_TIMEOUT,
};
pub use error::FleetError;
pub use exact::{ExactBuilder, ExactRateLimiter, ExactSnapshot, OnUnavailable};
