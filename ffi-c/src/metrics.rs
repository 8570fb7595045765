//! `fw_metrics_*`: a registry of named instances rendered in the Prometheus
//! text format into a caller's buffer.

use std::ffi::c_char;
use std::sync::Arc;

use fw::metrics::MetricsRegistry;

use crate::boundary::*;
use crate::breaker::fw_breaker_t;
use crate::bulkhead::fw_bulkhead_t;
use crate::deadline::fw_timeout_pool_t;
use crate::degrade::fw_stale_cache_t;
use crate::health::fw_health_t;
use crate::rate_limit::fw_rate_limiter_t;
use crate::retry::fw_retry_t;
use crate::shed::fw_adaptive_limit_t;

/// Core's setting names are this module's C names too.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[];

/// A metrics registry. Thread-safe. Registered instances stay alive (their
/// memory is shared) until the registry is freed.
#[derive(Debug)]
pub struct fw_metrics_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_metrics_t {
    type Target = MetricsRegistry;
}

/// Creates an empty registry into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_new(out: *mut *mut fw_metrics_t) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        out.write(new_handle::<fw_metrics_t>(MetricsRegistry::new()));
        FW_OK
    })
}

/// Frees a registry. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_free(metrics: *mut fw_metrics_t) {
    // SAFETY: `metrics` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(metrics) });
}

/// The shared body of every `fw_metrics_register_*`: checks the registry,
/// the name and the handle, then registers through `add` with an owning
/// reference to what the handle stands for.
fn register<H: Handle>(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    handle: *const H,
    func: &str,
    arg: &str,
    add: impl FnOnce(&MetricsRegistry, String, Arc<H::Target>) -> Result<(), fw::ConfigError>,
) -> fw_status_t {
    guard(|| {
        let m = try_handle!(metrics, func);
        let instance = try_str!(instance, func);
        let Some(h) = share(handle) else {
            return null_arg(func, arg);
        };
        match add(m, instance.to_string(), h) {
            Ok(()) => FW_OK,
            Err(e) => config_error(func, e, C_FIELDS),
        }
    })
}

/// Registers a breaker under `instance` (a NUL-terminated UTF-8 name); a
/// fleet breaker's sync counts too (`failwell_fleet_breaker_*`).
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_register_breaker(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    breaker: *const fw_breaker_t,
) -> fw_status_t {
    register(
        metrics,
        instance,
        breaker,
        "fw_metrics_register_breaker",
        "breaker",
        |m, n, x| failwell_fleet::metrics::register_any_breaker(m, n, &x),
    )
}

/// Registers a bulkhead under `instance`.
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_register_bulkhead(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    bulkhead: *const fw_bulkhead_t,
) -> fw_status_t {
    register(
        metrics,
        instance,
        bulkhead,
        "fw_metrics_register_bulkhead",
        "bulkhead",
        |m, n, x| m.register_bulkhead(n, x),
    )
}

/// Registers a rate limiter under `instance`; a fleet limiter as
/// `failwell_fleet_limiter_*` (decisions, fallbacks, and in leased mode
/// its tokens and the instances counted).
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_register_rate_limiter(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    limiter: *const fw_rate_limiter_t,
) -> fw_status_t {
    register(
        metrics,
        instance,
        limiter,
        "fw_metrics_register_rate_limiter",
        "limiter",
        |m, n, x| failwell_fleet::metrics::register_any_rate_limiter(m, n, &x),
    )
}

/// Registers a retry policy under `instance`.
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_register_retry(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    retry: *const fw_retry_t,
) -> fw_status_t {
    register(
        metrics,
        instance,
        retry,
        "fw_metrics_register_retry",
        "retry",
        |m, n, x| m.register_retry(n, x),
    )
}

/// Registers an adaptive limit under `instance`.
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_register_adaptive_limit(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    limit: *const fw_adaptive_limit_t,
) -> fw_status_t {
    register(
        metrics,
        instance,
        limit,
        "fw_metrics_register_adaptive_limit",
        "limit",
        |m, n, x| m.register_adaptive_limit(n, x),
    )
}

/// Registers a health registry under `instance` (its aggregate and each
/// check, 0 healthy / 1 degraded / 2 unhealthy).
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_register_health(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    health: *const fw_health_t,
) -> fw_status_t {
    register(
        metrics,
        instance,
        health,
        "fw_metrics_register_health",
        "health",
        |m, n, x| m.register_health(n, Arc::clone(&x.registry)),
    )
}

/// Registers a stale cache under `instance` (fresh values stored, stale
/// values served, misses, entries). The registry keeps its own reference.
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_register_stale_cache(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    cache: *const fw_stale_cache_t,
) -> fw_status_t {
    register(
        metrics,
        instance,
        cache,
        "fw_metrics_register_stale_cache",
        "cache",
        |m, n, x| m.register_stale_cache(n, x),
    )
}

/// Registers a timeout pool under `instance` (threads, busy, abandoned
/// calls still running, refusals).
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_register_timeout_pool(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    pool: *const fw_timeout_pool_t,
) -> fw_status_t {
    register(
        metrics,
        instance,
        pool,
        "fw_metrics_register_timeout_pool",
        "pool",
        |m, n, x| m.register_timeout_pool(n, (*x).clone()),
    )
}

/// Renders every registered instance in the Prometheus text format into
/// `buf` (`len` bytes, NUL-terminated, truncated if too small) and writes
/// the size the whole text needs, NUL included, to `*needed` (if not
/// NULL): call with `buf = NULL, len = 0` to size the buffer. `buf` may be
/// NULL only with `len = 0`.
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_render(
    metrics: *const fw_metrics_t,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> fw_status_t {
    guard(|| {
        let m = try_handle!(metrics);
        if buf.is_null() && len > 0 {
            return invalid("fw_metrics_render: `buf` is NULL with a nonzero `len`");
        }
        let text = m.render_prometheus();
        put(needed, text.len() + 1);
        if !buf.is_null() && len > 0 {
            let n = text.len().min(len - 1);
            // SAFETY: `buf` has `len` writable bytes (contract); we write
            // `n + 1 <= len`.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, n);
                *buf.add(n) = 0;
            }
        }
        FW_OK
    })
}
