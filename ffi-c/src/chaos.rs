//! `fw_chaos_*` and `fw_throttler_*`: fault and latency injection, and the
//! SRE client-side adaptive throttler.

use std::time::Duration;

use fw::chaos::Chaos;
use fw::clock::MonotonicClock;
use fw::shed::Throttler;

use crate::boundary::*;

/// Core's setting names are this module's C names too.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[];

/// A fault and latency injector. Thread-safe.
#[derive(Debug)]
pub struct fw_chaos_t {
    inner: Chaos,
}

/// Chaos configuration.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_chaos_config_t {
    /// Fraction of calls that fail, in [0, 1] (default 0).
    pub fault_rate: f64,
    /// Fraction of calls delayed, in [0, 1] (default 0).
    pub latency_rate: f64,
    /// The delay (default 0).
    pub latency_ns: u64,
    /// Seed; 0 = a fresh random seed (default 0).
    pub seed: u64,
    /// Start switched on (default true).
    pub enabled: bool,
}

/// The defaults: nothing injected, enabled.
#[no_mangle]
pub extern "C" fn fw_chaos_config_default() -> fw_chaos_config_t {
    fw_chaos_config_t {
        fault_rate: 0.0,
        latency_rate: 0.0,
        latency_ns: 0,
        seed: 0,
        enabled: true,
    }
}

/// Creates an injector (`config` NULL: the defaults) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_new(
    config: *const fw_chaos_config_t,
    out: *mut *mut fw_chaos_t,
) -> fw_status_t {
    guard(|| {
        if out.is_null() {
            return invalid("fw_chaos_new: `out` is NULL");
        }
        let c = config_or(config, fw_chaos_config_default);
        let mut b = Chaos::builder()
            .fault_rate(c.fault_rate)
            .latency(c.latency_rate, Duration::from_nanos(c.latency_ns))
            .enabled(c.enabled);
        if c.seed != 0 {
            b = b.seed(c.seed);
        }
        match b.build() {
            Ok(ch) => {
                put(out, Box::into_raw(Box::new(fw_chaos_t { inner: ch })));
                FW_OK
            }
            Err(e) => config_error("fw_chaos_new", e, C_FIELDS),
        }
    })
}

/// Frees an injector. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_free(chaos: *mut fw_chaos_t) {
    if !chaos.is_null() {
        // SAFETY: came from `fw_chaos_new`, freed once.
        drop(unsafe { Box::from_raw(chaos) });
    }
}

/// Decides whether this call is to fail (`*out`), counting it if so.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_should_fail(
    chaos: *const fw_chaos_t,
    out: *mut bool,
) -> fw_status_t {
    guard(|| {
        // SAFETY: non-NULL pointers come from `fw_chaos_new`.
        let Some(c) = (unsafe { chaos.as_ref() }) else {
            return invalid("fw_chaos_should_fail: `chaos` is NULL");
        };
        if out.is_null() {
            return invalid("fw_chaos_should_fail: `out` is NULL");
        }
        put(out, c.inner.should_fail());
        FW_OK
    })
}

/// Sleeps the calling thread if this call is to be delayed.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_inject_latency(chaos: *const fw_chaos_t) -> fw_status_t {
    guard(|| {
        // SAFETY: non-NULL pointers come from `fw_chaos_new`.
        let Some(c) = (unsafe { chaos.as_ref() }) else {
            return invalid("fw_chaos_inject_latency: `chaos` is NULL");
        };
        c.inner.inject_latency();
        FW_OK
    })
}

/// Switches injection on or off.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_set_enabled(chaos: *const fw_chaos_t, on: bool) -> fw_status_t {
    guard(|| {
        // SAFETY: non-NULL pointers come from `fw_chaos_new`.
        let Some(c) = (unsafe { chaos.as_ref() }) else {
            return invalid("fw_chaos_set_enabled: `chaos` is NULL");
        };
        c.inner.set_enabled(on);
        FW_OK
    })
}

/// A client-side adaptive throttler. Thread-safe.
#[derive(Debug)]
pub struct fw_throttler_t {
    inner: Throttler<MonotonicClock>,
}

/// Creates a throttler with multiplier `k` (≥ 1; the SRE book's 2) over a
/// sliding window of `window_ns` (≥ 1 s; the book's 2 minutes); `seed` 0 =
/// a fresh random seed.
#[no_mangle]
pub unsafe extern "C" fn fw_throttler_new(
    k: f64,
    window_ns: u64,
    seed: u64,
    out: *mut *mut fw_throttler_t,
) -> fw_status_t {
    guard(|| {
        if out.is_null() {
            return invalid("fw_throttler_new: `out` is NULL");
        }
        match Throttler::with(
            k,
            Duration::from_nanos(window_ns),
            MonotonicClock,
            (seed != 0).then_some(seed),
        ) {
            Ok(t) => {
                put(out, Box::into_raw(Box::new(fw_throttler_t { inner: t })));
                FW_OK
            }
            Err(e) => config_error("fw_throttler_new", e, C_FIELDS),
        }
    })
}

/// Frees a throttler. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_throttler_free(throttler: *mut fw_throttler_t) {
    if !throttler.is_null() {
        // SAFETY: came from `fw_throttler_new`, freed once.
        drop(unsafe { Box::from_raw(throttler) });
    }
}

/// Counts a request and decides: `FW_OK` to send it, `FW_REJECTED_SHED` to
/// reject it locally.
#[no_mangle]
pub unsafe extern "C" fn fw_throttler_try_send(throttler: *const fw_throttler_t) -> fw_status_t {
    guard(|| {
        // SAFETY: non-NULL pointers come from `fw_throttler_new`.
        let Some(t) = (unsafe { throttler.as_ref() }) else {
            return invalid("fw_throttler_try_send: `throttler` is NULL");
        };
        match t.inner.try_send() {
            Ok(()) => FW_OK,
            Err(r) => rejected(r),
        }
    })
}

/// Reports that the backend accepted a request.
#[no_mangle]
pub unsafe extern "C" fn fw_throttler_accepted(throttler: *const fw_throttler_t) -> fw_status_t {
    guard(|| {
        // SAFETY: non-NULL pointers come from `fw_throttler_new`.
        let Some(t) = (unsafe { throttler.as_ref() }) else {
            return invalid("fw_throttler_accepted: `throttler` is NULL");
        };
        t.inner.accepted();
        FW_OK
    })
}
