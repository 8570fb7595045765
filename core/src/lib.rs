//! failwell: fault-tolerance primitives for synchronous, threaded Rust —
//! and, through its C ABI and Python module, for C, C++ and Python.
//!
//! - [`breaker::CircuitBreaker`]: fail fast while a dependency is sick.
//! - [`bulkhead::Bulkhead`]: bound the concurrency spent on one dependency,
//!   with a reserve for critical callers.
//! - [`rate_limit::RateLimiter`]: GCRA on one atomic word.
//! - [`retry::Retry`]: backoff, jitter, deadlines and a shared budget.
//! - [`deadline::Deadline`]: propagated timeouts, and timed calls on a
//!   bounded pool.
//! - [`shed::AdaptiveLimit`] and [`shed::Throttler`]: adaptive load
//!   shedding, critical traffic last.
//! - [`degrade`]: fallback, and a stale-while-error cache.
//! - [`pipeline::Pipeline`]: all of the above around one call, in the
//!   recommended order.
//! - [`chaos::Chaos`]: seeded fault and latency injection.
//! - [`health::HealthRegistry`]: checks run in the background, read cheaply.
//! - [`metrics::MetricsRegistry`]: Prometheus text exposition of them all.
//! - [`watchdog::Watchdog`]: stalls, deadlocks and leaks, found on an OS
//!   thread; [`lock::lock_both`] locks in one global order.
//!
//! Hot paths are a few atomic operations on cache-padded words, with no lock,
//! no system call and no allocation; blocking waits are OS-thread waits with
//! deadlines. Time is read through [`clock::Clock`], so tests drive it by
//! hand with [`clock::ManualClock`].
//!
//! ```
//! use std::time::Duration;
//! use failwell::breaker::CircuitBreaker;
//! use failwell::bulkhead::Bulkhead;
//! use failwell::Error;
//!
//! let breaker = CircuitBreaker::builder()
//!     .consecutive_failures(5)
//!     .open_for(Duration::from_secs(10))
//!     .build()?;
//! let bulkhead = Bulkhead::builder().max_concurrent(32).build()?;
//!
//! let answer: Result<u32, Error<std::io::Error>> = bulkhead
//!     .call(|| breaker.call(|| Ok(42)))
//!     .map_err(Error::Rejected)
//!     .and_then(|r| r);
//! assert_eq!(answer.unwrap(), 42);
//! # Ok::<(), failwell::ConfigError>(())
//! ```

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod breaker;
pub mod bulkhead;
pub mod chaos;
pub mod clock;
mod counter;
pub mod deadline;
pub mod degrade;
mod error;
mod fork;
pub mod health;
pub mod lock;
pub mod metrics;
pub mod pipeline;
pub mod rate_limit;
#[cfg(all(unix, not(failwell_loom)))]
pub mod region;
pub mod retry;
mod rng;
pub mod shed;
mod sync;
pub mod watchdog;
mod words;

pub use error::{ConfigError, Error, Rejected};

/// How many `fork()`s separate this process from the first one that
/// asked: 0 there, one more in each child (a `pthread_atfork` handler
/// counts them; always 0 off Unix). One load after the first call, for
/// code outside this crate that keeps per-process state beside failwell's
/// (a connection pool, a background thread) and must notice it is running
/// in a child. Call it once before forking for the count to start there.
#[inline]
pub fn fork_generation() -> u64 {
    fork::generation()
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
