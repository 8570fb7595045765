//! The C ABI of failwell. It holds no logic: it translates C types,
//! statuses and ownership to and from the core crate.
//!
//! Conventions: prefix `fw_`; opaque handles made
//! by `fw_<thing>_new(const fw_<thing>_config_t *, fw_<thing>_t **out)` and
//! freed by `fw_<thing>_free` (NULL-safe); every function returns an
//! `fw_status_t` and writes values through out-parameters; a NULL or invalid
//! argument is `FW_EINVAL` with a message readable by `fw_last_error`; no
//! panic crosses the boundary (`FW_EPANIC`). Every handle is thread-safe
//! unless its documentation says otherwise.
//!
//! It covers the circuit breaker, the bulkhead, the rate limiter, retry,
//! deadlines and timed calls, the adaptive limit and the SRE throttler,
//! chaos injection, the watchdog, health checks and metrics rendering,
//! host regions (shared memory) holding primitives shared by the
//! processes of a host, and the fleet (Redis) holding rate limits and
//! breaker verdicts shared by every instance of a service.

#![allow(non_camel_case_types)]
// Every export dereferences caller-supplied pointers; each function's doc
// states what it requires, and each unsafe block has its SAFETY note.
#![allow(clippy::missing_safety_doc)]

mod boundary;
pub mod breaker;
pub mod bulkhead;
pub mod chaos;
pub mod deadline;
pub mod degrade;
pub mod events;
pub mod fleet;
pub mod health;
pub mod metrics;
pub mod pipeline;
pub mod rate_limit;
#[cfg(unix)]
pub mod region;
pub mod retry;
pub mod shed;
pub mod version;
pub mod watchdog;

pub use boundary::*;

/// Benchmark hook (feature `bench`, not in the header): runs `iterations`
/// closed-breaker passes through the Rust API on the breaker behind the
/// handle, so the C benchmark can time the same pass both ways in one run.
/// cbindgen:ignore
#[cfg(feature = "bench")]
#[no_mangle]
pub unsafe extern "C" fn fw_bench_rust_closed_pass(
    breaker: *const breaker::fw_breaker_t,
    iterations: u64,
) -> u64 {
    let Some(b) = boundary::borrow(breaker) else {
        return 0;
    };
    let mut ok = 0;
    for _ in 0..iterations {
        if let Ok(p) = b.try_acquire() {
            p.success();
            ok += 1;
        }
    }
    ok
}

/// Benchmark hook (feature `bench`, not in the header): `iterations`
/// bulkhead passes (a normal permit taken and given back) through the Rust
/// API on the bulkhead behind the handle, beside the same pass through the
/// C ABI.
/// cbindgen:ignore
#[cfg(feature = "bench")]
#[no_mangle]
pub unsafe extern "C" fn fw_bench_rust_bulkhead_pass(
    bulkhead: *const bulkhead::fw_bulkhead_t,
    iterations: u64,
) -> u64 {
    let Some(b) = boundary::borrow(bulkhead) else {
        return 0;
    };
    let mut ok = 0;
    for _ in 0..iterations {
        if let Ok(p) = b.try_acquire() {
            drop(std::hint::black_box(p));
            ok += 1;
        }
    }
    ok
}
