//! `fw_rate_limiter_*`: the GCRA rate limiter.

use std::time::Duration;

pub(crate) use failwell_fleet::AnyRateLimiter;
use fw::rate_limit::RateLimiter;

use crate::boundary::*;

/// Core's names for settings, as the C API names them (struct fields and
/// arguments), for error messages.
/// cbindgen:ignore
pub(crate) const C_FIELDS: &[(&str, &str)] = &[("rate", "requests/period_ns")];

/// A rate limiter. Thread-safe; free it once, after every thread is done.
#[derive(Debug)]
pub struct fw_rate_limiter_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_rate_limiter_t {
    type Target = AnyRateLimiter;
}

/// Rate limiter configuration.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_rate_limiter_config_t {
    /// Requests per period, ≥ 1 (no default: 0 is `FW_EINVAL`).
    pub requests: u64,
    /// The period in nanoseconds, > 0 (default 1 s).
    pub period_ns: u64,
    /// Burst, ≥ 1; 0 = `requests` (default 0).
    pub burst: u64,
    /// Read the precise clock instead of the coarse one (default false).
    /// The coarse reading (Linux's `CLOCK_MONOTONIC_COARSE`) costs a
    /// fraction as much and lags real time by up to one tick (1–4 ms), so
    /// over any real interval `e` the default admits at most `burst +
    /// rate · (e + tick)`; the precise clock makes it `burst + rate · e`.
    /// A fleet rate limiter ignores it (Redis's clock decides).
    pub precise: bool,
}

/// The defaults: no rate (set `requests`), per second, burst = requests.
#[no_mangle]
pub extern "C" fn fw_rate_limiter_config_default() -> fw_rate_limiter_config_t {
    fw_rate_limiter_config_t {
        requests: 0,
        period_ns: nanos(fw::rate_limit::DEFAULT_PERIOD),
        burst: 0,
        precise: false,
    }
}

/// Creates a rate limiter into `*out`. `config` must not be NULL (a rate
/// has no default).
#[no_mangle]
pub unsafe extern "C" fn fw_rate_limiter_new(
    config: *const fw_rate_limiter_config_t,
    out: *mut *mut fw_rate_limiter_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        // SAFETY: non-NULL `config` points to a valid config (contract).
        let Some(c) = (unsafe { config.as_ref() }) else {
            return invalid("fw_rate_limiter_new: `config` is NULL (a rate has no default)");
        };
        match builder_of(c).build() {
            Ok(l) => {
                out.write(new_handle::<fw_rate_limiter_t>(AnyRateLimiter::local(l)));
                FW_OK
            }
            Err(e) => config_error("fw_rate_limiter_new", e, C_FIELDS),
        }
    })
}

/// The core builder for a C configuration (burst 0: the default, `requests`).
pub(crate) fn builder_of(c: &fw_rate_limiter_config_t) -> fw::rate_limit::Builder {
    let b = RateLimiter::builder()
        .rate(c.requests, Duration::from_nanos(c.period_ns))
        .precise(c.precise);
    if c.burst > 0 {
        b.burst(c.burst)
    } else {
        b
    }
}

/// Frees a rate limiter. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_rate_limiter_free(limiter: *mut fw_rate_limiter_t) {
    // SAFETY: `limiter` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(limiter) });
}

/// Admits a request of cost `n` now (`FW_OK`), or `FW_REJECTED_RATE_LIMITED`
/// with `*retry_after_ns` (if not NULL) set to when it would conform, or
/// `FW_REJECTED_EXCEEDS_CAPACITY` if `n` is above the burst. Never blocks.
#[no_mangle]
pub unsafe extern "C" fn fw_rate_limiter_try_acquire(
    limiter: *const fw_rate_limiter_t,
    n: u32,
    retry_after_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        let l = try_handle!(limiter);
        match l.try_acquire_n(n) {
            Ok(()) => FW_OK,
            Err(r) => {
                put(retry_after_ns, wait_ns(r.retry_after()));
                rejected(r)
            }
        }
    })
}

/// Waits at most `timeout_ns` for a request of cost `n` to conform: the
/// slot is reserved at once and the thread sleeps until it (no spinning).
#[no_mangle]
pub unsafe extern "C" fn fw_rate_limiter_acquire_timeout(
    limiter: *const fw_rate_limiter_t,
    n: u32,
    timeout_ns: u64,
) -> fw_status_t {
    guard(|| {
        let l = try_handle!(limiter);
        match l.acquire_n_timeout(n, Duration::from_nanos(timeout_ns)) {
            Ok(()) => FW_OK,
            Err(r) => rejected(r),
        }
    })
}

/// Changes the live limiter to `*config` (the rate, `requests` per
/// `period_ns`, and the burst; 0 keeps the burst in force), all or
/// nothing, like every `fw_*_reconfigure`: an invalid config is `FW_EINVAL`
/// naming the field and changes nothing; every decision sees the old
/// configuration or the new one, never a mix. `precise` is fixed at build:
/// a different value is `FW_EINVAL` naming it. A limiter in a shared region
/// keeps the region's configuration: `FW_EINVAL` naming `reconfigure`; so
/// does a fleet limiter (every instance decides on the rate it was built
/// with).
#[no_mangle]
pub unsafe extern "C" fn fw_rate_limiter_reconfigure(
    limiter: *const fw_rate_limiter_t,
    config: *const fw_rate_limiter_config_t,
) -> fw_status_t {
    guard(|| {
        let l = try_handle!(limiter);
        let c = *try_ref!(config);
        let r = l.reconfigure(|b| {
            let b = b
                .rate(c.requests, Duration::from_nanos(c.period_ns))
                .precise(c.precise);
            if c.burst > 0 {
                b.burst(c.burst)
            } else {
                b
            }
        });
        match r {
            Ok(()) => FW_OK,
            Err(e) => config_error("fw_rate_limiter_reconfigure", e, C_FIELDS),
        }
    })
}

/// A rate limiter's counters.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_rate_limiter_snapshot_t {
    pub admitted: u64,
    pub rejected: u64,
    pub interval_ns: u64,
    pub burst: u64,
}

/// Copies the limiter's counters into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_rate_limiter_snapshot(
    limiter: *const fw_rate_limiter_t,
    out: *mut fw_rate_limiter_snapshot_t,
) -> fw_status_t {
    guard(|| {
        let l = try_handle!(limiter);
        let out = try_out!(out);
        let s = l.snapshot();
        out.write(fw_rate_limiter_snapshot_t {
            admitted: s.admitted,
            rejected: s.rejected,
            interval_ns: nanos(s.interval),
            burst: s.burst,
        });
        FW_OK
    })
}
