//! `fw_health_*`: the health registry, with C callbacks.

use std::ffi::{c_char, c_void, CStr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use fw::health::{HealthRegistry, Status};

use crate::boundary::*;
use crate::breaker::fw_breaker_t;

/// Core's names for settings, as the C API names them, for error messages.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[("interval", "interval_ns")];

/// A health registry with its background thread.
#[derive(Debug)]
pub struct fw_health_t {
    _opaque: (),
}

/// What a `fw_health_t` stands for.
#[derive(Debug)]
pub(crate) struct Health {
    pub(crate) registry: Arc<HealthRegistry>,
    /// Held shared by every check while it runs the caller's function;
    /// `fw_health_free` takes it exclusively and clears it, so once free
    /// returns no check runs with the caller's data again.
    checks_open: Arc<RwLock<bool>>,
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_health_t {
    type Target = Health;
}

/// Health: one of the `FW_HEALTH_*` constants.
pub type fw_health_status_t = u32;
/// Everything works.
pub const FW_HEALTH_HEALTHY: fw_health_status_t = 0;
/// A non-critical check fails (or an open breaker registered as such).
pub const FW_HEALTH_DEGRADED: fw_health_status_t = 1;
/// A critical check fails.
pub const FW_HEALTH_UNHEALTHY: fw_health_status_t = 2;

fn status_code(s: Status) -> fw_health_status_t {
    match s {
        Status::Healthy => FW_HEALTH_HEALTHY,
        Status::Degraded => FW_HEALTH_DEGRADED,
        Status::Unhealthy => FW_HEALTH_UNHEALTHY,
    }
}

/// A health check: returns 0 when healthy; otherwise writes a message
/// (NUL-terminated, at most `error_len` bytes) into `error` and returns
/// nonzero. Runs on a pool thread: must be thread-safe, must not unwind.
pub type fw_health_check_t = Option<
    unsafe extern "C" fn(user_data: *mut c_void, error: *mut c_char, error_len: usize) -> i32,
>;

/// Creates a health registry running a round every `interval_ns` (≥ 10 ms).
#[no_mangle]
pub unsafe extern "C" fn fw_health_new(
    interval_ns: u64,
    out: *mut *mut fw_health_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        match HealthRegistry::builder()
            .interval(Duration::from_nanos(interval_ns))
            .build()
        {
            Ok(h) => {
                out.write(new_handle(Health {
                    registry: Arc::new(h),
                    checks_open: Arc::new(RwLock::new(true)),
                }));
                FW_OK
            }
            Err(e) => config_error("fw_health_new", e, C_FIELDS),
        }
    })
}

/// Stops the registry's thread and frees it. NULL is a no-op. A check
/// still running (one that ran past its timeout included) is waited for:
/// when this returns, no check runs again, so each check's `user_data` may
/// be freed. A check that never returns makes this wait forever; a check
/// must not call it.
#[no_mangle]
pub unsafe extern "C" fn fw_health_free(health: *mut fw_health_t) {
    guard_void(|| {
        let Some(h) = borrow(health) else { return };
        // Waits for every running check, then keeps any later run (a
        // round already started) from calling the caller's function.
        *h.checks_open
            .write()
            .unwrap_or_else(PoisonError::into_inner) = false;
        // SAFETY: came from `fw_health_new`, freed once (the documented
        // contract); `h` is not used after.
        unsafe { free_handle(health) };
    });
}

/// Registers a check `name`, critical or not, given `timeout_ns` per run.
#[no_mangle]
pub unsafe extern "C" fn fw_health_register(
    health: *const fw_health_t,
    name: *const c_char,
    critical: bool,
    timeout_ns: u64,
    check: fw_health_check_t,
    user_data: *mut c_void,
) -> fw_status_t {
    guard(|| {
        let h = try_handle!(health);
        let name = try_cstr!(name).to_string_lossy().into_owned();
        let check = try_fn!(check);
        let data = user_data as usize; // the caller vouches for it
        let open = Arc::clone(&h.checks_open);
        let run = move || {
            let open = open.read().unwrap_or_else(PoisonError::into_inner);
            if !*open {
                return Err("the registry was freed".to_string());
            }
            let mut buf = vec![0u8; 256];
            // SAFETY: `check` is a valid C function (contract); `buf` has
            // the length we pass.
            let rc = unsafe {
                check(
                    data as *mut c_void,
                    buf.as_mut_ptr() as *mut c_char,
                    buf.len(),
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                buf[255] = 0;
                let msg = CStr::from_bytes_until_nul(&buf)
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Err(if msg.is_empty() {
                    format!("check returned {rc}")
                } else {
                    msg
                })
            }
        };
        match h
            .registry
            .register(name, critical, Duration::from_nanos(timeout_ns), run)
        {
            Ok(()) => FW_OK,
            Err(e) => config_error("fw_health_register", e, C_FIELDS),
        }
    })
}

/// Registers a breaker: while it is open the check reads `when_open`
/// (`FW_HEALTH_DEGRADED` or `FW_HEALTH_UNHEALTHY`).
#[no_mangle]
pub unsafe extern "C" fn fw_health_register_breaker(
    health: *const fw_health_t,
    name: *const c_char,
    breaker: *const fw_breaker_t,
    when_open: fw_health_status_t,
) -> fw_status_t {
    guard(|| {
        let h = try_handle!(health);
        let name = try_cstr!(name).to_string_lossy().into_owned();
        let Some(b) = share(breaker) else {
            return null_arg("fw_health_register_breaker", "breaker");
        };
        let when = match when_open {
            FW_HEALTH_DEGRADED => Status::Degraded,
            FW_HEALTH_UNHEALTHY => Status::Unhealthy,
            other => {
                return invalid(format!(
                    "fw_health_register_breaker: `when_open` {other} must be degraded or unhealthy"
                ))
            }
        };
        match h.registry.register_breaker(name, b.arc(), when) {
            Ok(()) => FW_OK,
            Err(e) => config_error("fw_health_register_breaker", e, C_FIELDS),
        }
    })
}

/// The aggregate of the last round (a cheap read), or of a round run now
/// if `run_now`.
#[no_mangle]
pub unsafe extern "C" fn fw_health_status(
    health: *const fw_health_t,
    run_now: bool,
    out: *mut fw_health_status_t,
) -> fw_status_t {
    guard(|| {
        let h = try_handle!(health);
        let out = try_out!(out);
        let r = if run_now {
            h.registry.check_now()
        } else {
            h.registry.report()
        };
        out.write(status_code(r.status));
        FW_OK
    })
}
