//! `fw_metrics_*`: a registry of named instances rendered in the Prometheus
//! text format into a caller's buffer.

use std::ffi::{c_char, CStr};

use fw::metrics::MetricsRegistry;

use crate::boundary::*;
use crate::breaker::fw_breaker_t;
use crate::bulkhead::fw_bulkhead_t;
use crate::deadline::fw_timeout_pool_t;
use crate::degrade::fw_stale_cache_t;
use crate::rate_limit::fw_rate_limiter_t;
use crate::retry::fw_retry_t;
use crate::shed::fw_adaptive_limit_t;
use crate::watch::fw_health_t;

/// Core's setting names are this module's C names too.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[];

/// A metrics registry. Thread-safe. Registered instances stay alive (their
/// memory is shared) until the registry is freed.
#[derive(Debug)]
pub struct fw_metrics_t {
    inner: MetricsRegistry,
}

/// Creates an empty registry into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_new(out: *mut *mut fw_metrics_t) -> fw_status_t {
    guard(|| {
        if out.is_null() {
            return invalid("fw_metrics_new: `out` is NULL");
        }
        put(
            out,
            Box::into_raw(Box::new(fw_metrics_t {
                inner: MetricsRegistry::new(),
            })),
        );
        FW_OK
    })
}

/// Frees a registry. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_free(metrics: *mut fw_metrics_t) {
    if !metrics.is_null() {
        // SAFETY: came from `fw_metrics_new`, freed once.
        drop(unsafe { Box::from_raw(metrics) });
    }
}

/// The registry and the instance name, or the status to return.
fn args<'a>(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    name: &str,
) -> Result<(&'a fw_metrics_t, String), fw_status_t> {
    // SAFETY: non-NULL pointers come from `fw_metrics_new`.
    let Some(m) = (unsafe { metrics.as_ref() }) else {
        return Err(invalid(format!("{name}: `metrics` is NULL")));
    };
    if instance.is_null() {
        return Err(invalid(format!("{name}: `instance` is NULL")));
    }
    // SAFETY: a non-NULL `instance` is a NUL-terminated string (contract).
    let s = unsafe { CStr::from_ptr(instance) };
    match s.to_str() {
        Ok(v) => Ok((m, v.to_string())),
        Err(_) => Err(invalid(format!("{name}: `instance` is not UTF-8"))),
    }
}

/// The shared body of every `fw_metrics_register_*`: checks the registry,
/// the name and the handle, then registers through `add`.
fn register<H>(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    handle: *const H,
    name: &str,
    add: impl FnOnce(&MetricsRegistry, String, &H) -> Result<(), fw::ConfigError>,
) -> fw_status_t {
    guard(|| {
        let (m, instance) = match args(metrics, instance, name) {
            Ok(v) => v,
            Err(s) => return s,
        };
        // SAFETY: non-NULL handles come from their `fw_*_new` and are live.
        let Some(h) = (unsafe { handle.as_ref() }) else {
            return invalid(format!("{name}: the handle is NULL"));
        };
        match add(&m.inner, instance, h) {
            Ok(()) => FW_OK,
            Err(e) => config_error(name, e, C_FIELDS),
        }
    })
}

/// Registers a breaker under `instance` (a NUL-terminated UTF-8 name).
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
        |m, n, b| m.register_breaker(n, b.inner.clone()),
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
        |m, n, b| m.register_bulkhead(n, b.inner.clone()),
    )
}

/// Registers a rate limiter under `instance`.
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
        |m, n, l| m.register_rate_limiter(n, l.inner.clone()),
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
        |m, n, r| m.register_retry(n, r.inner.clone()),
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
        |m, n, l| m.register_adaptive_limit(n, l.inner.clone()),
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
        |m, n, h| m.register_health(n, h.inner.clone()),
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
        |m, n, c| m.register_stale_cache(n, c.inner.clone()),
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
        |m, n, p| m.register_timeout_pool(n, p.inner.clone()),
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
        // SAFETY: non-NULL pointers come from `fw_metrics_new`.
        let Some(m) = (unsafe { metrics.as_ref() }) else {
            return invalid("fw_metrics_render: `metrics` is NULL");
        };
        if buf.is_null() && len > 0 {
            return invalid("fw_metrics_render: `buf` is NULL with a nonzero `len`");
        }
        let text = m.inner.render_prometheus();
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
