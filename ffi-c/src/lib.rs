//! The C ABI of failwell. It holds no logic: it translates C types,
//! statuses and ownership to and from the core crate.
//!
//! Conventions (DESIGN.md, "The C ABI"): prefix `fw_`; opaque handles made
//! by `fw_<thing>_new(const fw_<thing>_config_t *, fw_<thing>_t **out)` and
//! freed by `fw_<thing>_free` (NULL-safe); every function returns an
//! `fw_status_t` and writes values through out-parameters; a NULL or invalid
//! argument is `FW_EINVAL` with a message readable by `fw_last_error`; no
//! panic crosses the boundary (`FW_EPANIC`). Every handle is thread-safe
//! unless its documentation says otherwise.
//!
//! It covers the circuit breaker, the bulkhead, the rate limiter, retry,
//! deadlines and timed calls, the adaptive limit, the watchdog, health
//! checks and metrics rendering.

#![allow(non_camel_case_types)]
// Every export dereferences caller-supplied pointers; each function's doc
// states what it requires, and each unsafe block has its SAFETY note.
#![allow(clippy::missing_safety_doc)]

mod boundary;
pub mod breaker;
pub mod bulkhead;
pub mod deadline;
pub mod metrics;
pub mod rate_limit;
pub mod retry;
pub mod shed;
pub mod watch;

pub use boundary::*;
