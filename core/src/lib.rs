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

//! # Cargo features
//!
//! None is on by default.
//!
//! - `deadlock-detection`: the [`watchdog::Watchdog`] asks parking_lot for
//!   lock cycles on every tick
//!   ([`watchdog::Builder::deadlock_detection`]). It turns on parking_lot's
//!   own detection, which adds bookkeeping to every parking_lot lock in the
//!   program: meant for tests, staging and debugging. Its dependencies
//!   (`backtrace`, `petgraph`) need Rust 1.88; the rest of the crate, 1.75.
//! - `metrics`: [`metrics::MetricsRegistry::report_to_metrics`] mirrors
//!   every value into the [`metrics`](https://docs.rs/metrics) crate
//!   facade, for services that already export through a `metrics`
//!   recorder.
//! - `tracing`: structured [`tracing`](https://docs.rs/tracing) events on
//!   cold paths only (never on a closed pass, an acquire or a check):
//!   - target `failwell::breaker`: every transition, made in this process
//!     (warn when it opens, info otherwise; fields `breaker` — the
//!     builder's [`name`](breaker::Builder::name), or a host region's name
//!     for it —, `from`, `to`, `generation`), and a listener's panic
//!     (error);
//!   - target `failwell::watchdog`: the default reporter's findings (warn;
//!     error for a deadlock, with its `backtraces`; info when one clears;
//!     fields `kind`, `key`, `lasted_ms`, `cleared`) instead of a line on
//!     standard error, and an `on_finding` callback's panic (error);
//!   - target `failwell::health`: each check whose status changed between
//!     rounds, and the aggregate (`check` empty), with `from`, `to` and
//!     `error` (warn when worse, info when better).
//!
//! # Platforms
//!
//! Built and tested on Linux. [`region`] (state shared by the processes of
//! a host) needs a Unix (`shm_open`, `mmap`) and does not exist elsewhere;
//! Windows is not supported (nothing is tested there).

#![cfg_attr(docsrs, feature(doc_cfg))]
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
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod region;
pub mod retry;
mod rng;
pub mod shed;
mod sync;
mod trace;
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
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
