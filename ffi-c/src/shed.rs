//! `fw_adaptive_limit_*`: the adaptive concurrency limit.

use std::sync::Arc;
use std::time::Duration;

use fw::shed::{self, AdaptiveLimit, Algorithm, ShedOutcome, ShedToken};

use crate::boundary::*;
use crate::bulkhead::{fw_priority_t, priority};

/// Core's names for settings, as the C API names them (struct fields and
/// arguments), for error messages.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[("latency_threshold", "latency_threshold_ns")];

/// An adaptive concurrency limit. Thread-safe.
#[derive(Debug)]
pub struct fw_adaptive_limit_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_adaptive_limit_t {
    type Target = AdaptiveLimit;
}

/// A permit of an adaptive limit; consumed by exactly one of
/// `fw_adaptive_permit_success`, `fw_adaptive_permit_dropped`,
/// `fw_adaptive_permit_release`.
#[derive(Debug)]
pub struct fw_adaptive_permit_t {
    _opaque: (),
}

/// What a `fw_adaptive_permit_t` stands for.
#[derive(Debug)]
pub(crate) struct AdaptivePermit {
    token: ShedToken,
    limit: Arc<AdaptiveLimit>,
}

// SAFETY: never constructed; its pointers come from `new_owned`.
unsafe impl Owned for fw_adaptive_permit_t {
    type Target = AdaptivePermit;
}

/// Algorithm: one of the `FW_ALGORITHM_*` constants.
pub type fw_algorithm_t = u32;
/// Netflix's Gradient2 update against an unloaded baseline (default).
pub const FW_ALGORITHM_GRADIENT: fw_algorithm_t = 0;
/// Additive increase, multiplicative decrease on drops or slow windows.
pub const FW_ALGORITHM_AIMD: fw_algorithm_t = 1;

/// Adaptive limit configuration.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_adaptive_limit_config_t {
    /// The algorithm (default `FW_ALGORITHM_GRADIENT`).
    pub algorithm: fw_algorithm_t,
    /// Starting limit (default 20).
    pub initial_limit: u32,
    /// Bounds of the limit (default 20 and 200).
    pub min_limit: u32,
    pub max_limit: u32,
    /// Share of the limit only critical callers may use, in [0, 1)
    /// (default 0.1).
    pub critical_fraction: f64,
    /// Gradient: latency tolerance ≥ 1 (default 1.0).
    pub tolerance: f64,
    /// AIMD: multiplicative decrease in [0.5, 1) (default 0.9).
    pub backoff_ratio: f64,
    /// AIMD: a window slower than this backs off; required with
    /// `FW_ALGORITHM_AIMD` (default 0: none — no value suits every
    /// dependency; set it a little above the unloaded latency).
    pub latency_threshold_ns: u64,
}

/// The defaults (Netflix concurrency-limits').
#[no_mangle]
pub extern "C" fn fw_adaptive_limit_config_default() -> fw_adaptive_limit_config_t {
    fw_adaptive_limit_config_t {
        algorithm: FW_ALGORITHM_GRADIENT,
        initial_limit: shed::DEFAULT_INITIAL,
        min_limit: shed::DEFAULT_MIN,
        max_limit: shed::DEFAULT_MAX,
        critical_fraction: shed::DEFAULT_CRITICAL_FRACTION,
        tolerance: shed::DEFAULT_GRADIENT_TOLERANCE,
        backoff_ratio: shed::DEFAULT_AIMD_BACKOFF_RATIO,
        latency_threshold_ns: 0,
    }
}

/// Creates an adaptive limit (`config` NULL: the defaults) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_adaptive_limit_new(
    config: *const fw_adaptive_limit_config_t,
    out: *mut *mut fw_adaptive_limit_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        let c = config_or(config, fw_adaptive_limit_config_default);
        let algorithm = match c.algorithm {
            FW_ALGORITHM_GRADIENT => match Algorithm::gradient() {
                Algorithm::Gradient {
                    smoothing,
                    queue_size,
                    long_window,
                    ..
                } => Algorithm::Gradient {
                    tolerance: c.tolerance,
                    smoothing,
                    queue_size,
                    long_window,
                },
                other => other,
            },
            FW_ALGORITHM_AIMD => Algorithm::Aimd {
                backoff_ratio: c.backoff_ratio,
                latency_threshold: Duration::from_nanos(c.latency_threshold_ns),
            },
            other => {
                return invalid(format!(
                    "fw_adaptive_limit_new: {other} is not an fw_algorithm_t"
                ))
            }
        };
        match AdaptiveLimit::builder()
            .algorithm(algorithm)
            .limits(c.min_limit, c.max_limit)
            .initial_limit(c.initial_limit)
            .critical_fraction(c.critical_fraction)
            .build()
        {
            Ok(l) => {
                out.write(new_handle::<fw_adaptive_limit_t>(l));
                FW_OK
            }
            Err(e) => config_error("fw_adaptive_limit_new", e, C_FIELDS),
        }
    })
}

/// Frees an adaptive limit. NULL is a no-op. Outstanding permits keep it
/// alive.
#[no_mangle]
pub unsafe extern "C" fn fw_adaptive_limit_free(limit: *mut fw_adaptive_limit_t) {
    // SAFETY: `limit` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(limit) });
}

/// Takes a permit if the limit allows `prio` one now, else
/// `FW_REJECTED_SHED`.
#[no_mangle]
pub unsafe extern "C" fn fw_adaptive_limit_try_acquire(
    limit: *const fw_adaptive_limit_t,
    prio: fw_priority_t,
    out: *mut *mut fw_adaptive_permit_t,
) -> fw_status_t {
    guard(|| {
        let Some(l) = share(limit) else {
            return null_arg("fw_adaptive_limit_try_acquire", "limit");
        };
        let out = try_out!(out);
        let Some(p) = priority(prio) else {
            return invalid(format!(
                "fw_adaptive_limit_try_acquire: {prio} is not an fw_priority_t"
            ));
        };
        let token = match l.try_acquire(p) {
            Ok(permit) => permit.into_token(),
            Err(r) => return rejected(r),
        };
        out.write(new_owned(AdaptivePermit { token, limit: l }));
        FW_OK
    })
}

/// How an adaptive permit ends.
fn finish(permit: *mut fw_adaptive_permit_t, name: &str, how: ShedOutcome) -> fw_status_t {
    guard(|| {
        if permit.is_null() {
            return null_arg(name, "permit");
        }
        // SAFETY: came from `fw_adaptive_limit_try_acquire`, consumed once
        // (the documented contract).
        let h = unsafe { take_owned(permit) };
        h.limit.record_token(h.token, how);
        FW_OK
    })
}

/// The call completed; its latency (from the permit) is a sample. This and
/// `fw_adaptive_permit_dropped` / `_release` free the permit: end each
/// permit exactly once (a second end is a use-after-free that failwell
/// cannot detect; a NULL permit is `FW_EINVAL`).
#[no_mangle]
pub unsafe extern "C" fn fw_adaptive_permit_success(
    permit: *mut fw_adaptive_permit_t,
) -> fw_status_t {
    finish(permit, "fw_adaptive_permit_success", ShedOutcome::Success)
}

/// The call was dropped (timed out, overloaded): the limit backs off.
#[no_mangle]
pub unsafe extern "C" fn fw_adaptive_permit_dropped(
    permit: *mut fw_adaptive_permit_t,
) -> fw_status_t {
    finish(permit, "fw_adaptive_permit_dropped", ShedOutcome::Dropped)
}

/// Returns the permit without a sample.
#[no_mangle]
pub unsafe extern "C" fn fw_adaptive_permit_release(
    permit: *mut fw_adaptive_permit_t,
) -> fw_status_t {
    finish(permit, "fw_adaptive_permit_release", ShedOutcome::Ignore)
}

/// The current limit and permits in flight (both outputs required).
#[no_mangle]
pub unsafe extern "C" fn fw_adaptive_limit_get(
    limit: *const fw_adaptive_limit_t,
    limit_out: *mut u64,
    in_flight_out: *mut u64,
) -> fw_status_t {
    guard(|| {
        let l = try_handle!(limit);
        let limit_out = try_out!(limit_out);
        let in_flight_out = try_out!(in_flight_out);
        let s = l.snapshot();
        limit_out.write(s.limit);
        in_flight_out.write(s.in_flight);
        FW_OK
    })
}
