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
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_chaos_t {
    type Target = Chaos;
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
        let out = try_out!(out);
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
                out.write(new_handle::<fw_chaos_t>(ch));
                FW_OK
            }
            Err(e) => config_error("fw_chaos_new", e, C_FIELDS),
        }
    })
}

/// Changes the live injector's rates, delay and switch to those of
/// `*config`, all or nothing: an invalid value is `FW_EINVAL` naming the
/// field and changes nothing. The seed is fixed at build: `config->seed`
/// must be 0.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_reconfigure(
    chaos: *const fw_chaos_t,
    config: *const fw_chaos_config_t,
) -> fw_status_t {
    guard(|| {
        let ch = try_handle!(chaos);
        let c = *try_ref!(config);
        let r = ch.reconfigure(|b| {
            let b = b
                .fault_rate(c.fault_rate)
                .latency(c.latency_rate, Duration::from_nanos(c.latency_ns))
                .enabled(c.enabled);
            if c.seed != 0 {
                b.seed(c.seed)
            } else {
                b
            }
        });
        match r {
            Ok(()) => FW_OK,
            Err(e) => config_error("fw_chaos_reconfigure", e, C_FIELDS),
        }
    })
}

/// Frees an injector. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_free(chaos: *mut fw_chaos_t) {
    // SAFETY: `chaos` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(chaos) });
}

/// Decides whether this call is to fail (`*out`), counting it if so.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_should_fail(
    chaos: *const fw_chaos_t,
    out: *mut bool,
) -> fw_status_t {
    guard(|| {
        let c = try_handle!(chaos);
        let out = try_out!(out);
        out.write(c.should_fail());
        FW_OK
    })
}

/// Sleeps the calling thread if this call is to be delayed.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_inject_latency(chaos: *const fw_chaos_t) -> fw_status_t {
    guard(|| {
        let c = try_handle!(chaos);
        c.inject_latency();
        FW_OK
    })
}

/// Switches injection on or off.
#[no_mangle]
pub unsafe extern "C" fn fw_chaos_set_enabled(chaos: *const fw_chaos_t, on: bool) -> fw_status_t {
    guard(|| {
        let c = try_handle!(chaos);
        c.set_enabled(on);
        FW_OK
    })
}

/// A client-side adaptive throttler. Thread-safe.
#[derive(Debug)]
pub struct fw_throttler_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_throttler_t {
    type Target = Throttler<MonotonicClock>;
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
        let out = try_out!(out);
        match Throttler::with(
            k,
            Duration::from_nanos(window_ns),
            MonotonicClock,
            (seed != 0).then_some(seed),
        ) {
            Ok(t) => {
                out.write(new_handle::<fw_throttler_t>(t));
                FW_OK
            }
            Err(e) => config_error("fw_throttler_new", e, C_FIELDS),
        }
    })
}

/// Frees a throttler. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_throttler_free(throttler: *mut fw_throttler_t) {
    // SAFETY: `throttler` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(throttler) });
}

/// Counts a request and decides: `FW_OK` to send it, `FW_REJECTED_SHED` to
/// reject it locally.
#[no_mangle]
pub unsafe extern "C" fn fw_throttler_try_send(throttler: *const fw_throttler_t) -> fw_status_t {
    guard(|| {
        let t = try_handle!(throttler);
        match t.try_send() {
            Ok(()) => FW_OK,
            Err(r) => rejected(r),
        }
    })
}

/// Reports that the backend accepted a request.
#[no_mangle]
pub unsafe extern "C" fn fw_throttler_accepted(throttler: *const fw_throttler_t) -> fw_status_t {
    guard(|| {
        let t = try_handle!(throttler);
        t.accepted();
        FW_OK
    })
}
