//! `fw_bulkhead_*`: the bulkhead.

use std::time::Duration;

use fw::bulkhead::{Bulkhead, BulkheadPermit, Config, Priority};

use crate::boundary::*;

/// Core's setting names are this module's C names too.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[];

/// A bulkhead. Thread-safe; free it once, after every thread is done with
/// it and every permit is released.
#[derive(Debug)]
pub struct fw_bulkhead_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_bulkhead_t {
    type Target = Bulkhead;
}

/// A permit from a bulkhead: a plain value (no allocation) the caller
/// keeps, e.g. on its stack, and gives back exactly once with
/// `fw_bulkhead_permit_release(&permit)`, which clears it, so releasing
/// the same variable again is a harmless `FW_EINVAL`. A copy of a permit
/// is the same permit: release one of the copies only. Release every
/// permit before freeing its bulkhead. May move between threads. Its field
/// is private to failwell.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_bulkhead_permit_t {
    pub _bulkhead: *const fw_bulkhead_t,
}

/// Who asks: one of the `FW_PRIORITY_*` constants (an integer type, so
/// that no value a caller passes can be undefined behaviour on the Rust
/// side; other values are `FW_EINVAL`).
pub type fw_priority_t = u32;
/// A normal caller: may not take the critical reserve.
pub const FW_PRIORITY_NORMAL: fw_priority_t = 0;
/// A critical caller: may take the critical reserve.
pub const FW_PRIORITY_CRITICAL: fw_priority_t = 1;

pub(crate) fn priority(p: fw_priority_t) -> Option<Priority> {
    match p {
        FW_PRIORITY_NORMAL => Some(Priority::Normal),
        FW_PRIORITY_CRITICAL => Some(Priority::Critical),
        _ => None,
    }
}

/// Bulkhead configuration.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_bulkhead_config_t {
    /// Permits out at most, 1..=2^31-1 (default 25).
    pub max_concurrent: u32,
    /// Of those, kept for critical callers, < max_concurrent (default 0).
    pub critical_reserve: u32,
}

/// The defaults.
#[no_mangle]
pub extern "C" fn fw_bulkhead_config_default() -> fw_bulkhead_config_t {
    let Config {
        max_concurrent,
        critical_reserve,
    } = Config::default();
    fw_bulkhead_config_t {
        max_concurrent,
        critical_reserve,
    }
}

/// Creates a bulkhead (`config` NULL: the defaults) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_new(
    config: *const fw_bulkhead_config_t,
    out: *mut *mut fw_bulkhead_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        let c = config_or(config, fw_bulkhead_config_default);
        match Bulkhead::builder()
            .max_concurrent(c.max_concurrent)
            .critical_reserve(c.critical_reserve)
            .build()
        {
            Ok(b) => {
                out.write(new_handle::<fw_bulkhead_t>(b));
                FW_OK
            }
            Err(e) => config_error("fw_bulkhead_new", e, C_FIELDS),
        }
    })
}

/// Frees a bulkhead. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_free(bulkhead: *mut fw_bulkhead_t) {
    // SAFETY: `bulkhead` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(bulkhead) });
}

/// Takes a permit now into `*out`, or returns `FW_REJECTED_BULKHEAD_FULL`;
/// never blocks, never allocates.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_try_acquire(
    bulkhead: *const fw_bulkhead_t,
    prio: fw_priority_t,
    out: *mut fw_bulkhead_permit_t,
) -> fw_status_t {
    guard(|| {
        // The common case makes no call: a normal caller's permit taken
        // (or refused).
        if let (Some(b), Some(o), FW_PRIORITY_NORMAL) = (borrow(bulkhead), Out::new(out), prio) {
            return hand_out(b.try_acquire(), bulkhead, o);
        }
        try_acquire_slow(bulkhead, prio, out)
    })
}

/// Every case of `fw_bulkhead_try_acquire` but a normal caller's, out of
/// line. An `extern "C"` function of its own, with its own guard: a call
/// that cannot unwind, so the export's fast path needs no landing pad and
/// ends in a tail call.
/// cbindgen:ignore
#[cold]
#[inline(never)]
extern "C" fn try_acquire_slow(
    bulkhead: *const fw_bulkhead_t,
    prio: fw_priority_t,
    out: *mut fw_bulkhead_permit_t,
) -> fw_status_t {
    guard(|| acquire(bulkhead, prio, None, out, "fw_bulkhead_try_acquire"))
}

/// Waits at most `timeout_ns` for a permit (sleeping, not spinning) into
/// `*out`; `UINT64_MAX` waits without bound.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_acquire_timeout(
    bulkhead: *const fw_bulkhead_t,
    prio: fw_priority_t,
    timeout_ns: u64,
    out: *mut fw_bulkhead_permit_t,
) -> fw_status_t {
    guard(|| {
        acquire(
            bulkhead,
            prio,
            Some(Duration::from_nanos(timeout_ns)),
            out,
            "fw_bulkhead_acquire_timeout",
        )
    })
}

/// Every case of the acquires but a normal caller's try.
#[cold]
#[inline(never)]
fn acquire(
    bulkhead: *const fw_bulkhead_t,
    prio: fw_priority_t,
    timeout: Option<Duration>,
    out: *mut fw_bulkhead_permit_t,
    name: &str,
) -> fw_status_t {
    let b = try_handle!(bulkhead, name);
    let out = try_out!(out, name);
    let Some(prio) = priority(prio) else {
        return invalid(format!("{name}: {prio} is not an fw_priority_t"));
    };
    let got = match timeout {
        None => b.try_acquire_with(prio),
        Some(d) => b.acquire_timeout_with(prio, d),
    };
    hand_out(got, bulkhead, out)
}

/// An acquire's answer in C's terms: a permit of `bulkhead`, detached
/// into `*out`, or the refusal's status.
#[inline(always)]
fn hand_out(
    got: Result<BulkheadPermit<'_>, fw::Rejected>,
    bulkhead: *const fw_bulkhead_t,
    out: Out<fw_bulkhead_permit_t>,
) -> fw_status_t {
    match got {
        Ok(p) => {
            p.detach();
            out.write(fw_bulkhead_permit_t {
                _bulkhead: bulkhead,
            });
            FW_OK
        }
        Err(r) => rejected(r),
    }
}

/// Gives back the permit in `*permit` and clears it. `FW_EINVAL` for a
/// NULL `permit` or one already released (cleared) or never acquired
/// (zeroed): releasing a permit twice through the same variable returns
/// nothing twice.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_permit_release(
    permit: *mut fw_bulkhead_permit_t,
) -> fw_status_t {
    guard(|| {
        // SAFETY: a non-NULL `permit` points to the caller's permit, which
        // no one else uses during the call (the documented contract).
        match unsafe { permit.as_mut() } {
            Some(p) => match borrow(p._bulkhead) {
                Some(b) => {
                    p._bulkhead = std::ptr::null();
                    b.release_detached();
                    FW_OK
                }
                None => not_held(),
            },
            None => release_null(),
        }
    })
}

/// `fw_bulkhead_permit_release` of a NULL `permit` (out of line and
/// unwind-free, like `try_acquire_slow`).
/// cbindgen:ignore
#[cold]
#[inline(never)]
extern "C" fn release_null() -> fw_status_t {
    guard(|| null_arg("fw_bulkhead_permit_release", "permit"))
}

/// `fw_bulkhead_permit_release` of a permit not held.
/// cbindgen:ignore
#[cold]
#[inline(never)]
extern "C" fn not_held() -> fw_status_t {
    guard(|| {
        invalid(
            "fw_bulkhead_permit_release: `permit` is not held (released already, or never acquired)",
        )
    })
}

/// Changes the live bulkhead to `*config` (the limit and the critical
/// reserve), all or nothing, like every `fw_*_reconfigure`: an invalid
/// config is `FW_EINVAL` naming the field and changes nothing. Permits out
/// stay out.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_reconfigure(
    bulkhead: *const fw_bulkhead_t,
    config: *const fw_bulkhead_config_t,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(bulkhead);
        let c = *try_ref!(config);
        let r = b.reconfigure(|b| {
            b.max_concurrent(c.max_concurrent)
                .critical_reserve(c.critical_reserve)
        });
        match r {
            Ok(()) => FW_OK,
            Err(e) => config_error("fw_bulkhead_reconfigure", e, C_FIELDS),
        }
    })
}

/// A bulkhead's counters.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_bulkhead_snapshot_t {
    pub max_concurrent: u64,
    pub available: u64,
    pub in_use: u64,
    pub waiting: u64,
    pub rejected: u64,
    pub peak: u64,
}

/// Copies the bulkhead's counters into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_snapshot(
    bulkhead: *const fw_bulkhead_t,
    out: *mut fw_bulkhead_snapshot_t,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(bulkhead);
        let out = try_out!(out);
        let s = b.snapshot();
        out.write(fw_bulkhead_snapshot_t {
            max_concurrent: s.max_concurrent,
            available: s.available,
            in_use: s.in_use,
            waiting: s.waiting,
            rejected: s.rejected,
            peak: s.peak,
        });
        FW_OK
    })
}
