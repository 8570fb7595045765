//! `fw_bulkhead_*`: the bulkhead.

use std::sync::Arc;
use std::time::Duration;

use fw::bulkhead::{Bulkhead, Priority};

use crate::boundary::*;

/// Core's setting names are this module's C names too.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[];

/// A bulkhead. Thread-safe; free it once, after every thread is done with
/// it (outstanding permits keep its memory alive).
#[derive(Debug)]
pub struct fw_bulkhead_t {
    pub(crate) inner: Arc<Bulkhead>,
}

/// A permit from a bulkhead; returned (and freed) by
/// `fw_bulkhead_permit_release`, exactly once. May move between threads.
#[derive(Debug)]
pub struct fw_bulkhead_permit_t {
    bulkhead: Arc<Bulkhead>,
}

impl Drop for fw_bulkhead_permit_t {
    fn drop(&mut self) {
        self.bulkhead.release_detached();
    }
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
    fw_bulkhead_config_t {
        max_concurrent: 25,
        critical_reserve: 0,
    }
}

/// Creates a bulkhead (`config` NULL: the defaults) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_new(
    config: *const fw_bulkhead_config_t,
    out: *mut *mut fw_bulkhead_t,
) -> fw_status_t {
    guard(|| {
        if out.is_null() {
            return invalid("fw_bulkhead_new: `out` is NULL");
        }
        let c = config_or(config, fw_bulkhead_config_default);
        match Bulkhead::builder()
            .max_concurrent(c.max_concurrent)
            .critical_reserve(c.critical_reserve)
            .build()
        {
            Ok(b) => {
                put(
                    out,
                    Box::into_raw(Box::new(fw_bulkhead_t { inner: Arc::new(b) })),
                );
                FW_OK
            }
            Err(e) => config_error("fw_bulkhead_new", e, C_FIELDS),
        }
    })
}

/// Frees a bulkhead. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_free(bulkhead: *mut fw_bulkhead_t) {
    if !bulkhead.is_null() {
        // SAFETY: came from `fw_bulkhead_new`, freed once.
        drop(unsafe { Box::from_raw(bulkhead) });
    }
}

fn handle<'a>(b: *const fw_bulkhead_t) -> Option<&'a fw_bulkhead_t> {
    // SAFETY: non-NULL pointers come from `fw_bulkhead_new` and are live.
    unsafe { b.as_ref() }
}

/// Takes a permit now or returns `FW_REJECTED_BULKHEAD_FULL`; never blocks.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_try_acquire(
    bulkhead: *const fw_bulkhead_t,
    prio: fw_priority_t,
    out: *mut *mut fw_bulkhead_permit_t,
) -> fw_status_t {
    // SAFETY: forwarded contract; a zero timeout never waits.
    unsafe { acquire(bulkhead, prio, None, out, "fw_bulkhead_try_acquire") }
}

/// Waits at most `timeout_ns` for a permit (sleeping, not spinning).
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_acquire_timeout(
    bulkhead: *const fw_bulkhead_t,
    prio: fw_priority_t,
    timeout_ns: u64,
    out: *mut *mut fw_bulkhead_permit_t,
) -> fw_status_t {
    // SAFETY: forwarded contract.
    unsafe {
        acquire(
            bulkhead,
            prio,
            Some(Duration::from_nanos(timeout_ns)),
            out,
            "fw_bulkhead_acquire_timeout",
        )
    }
}

unsafe fn acquire(
    bulkhead: *const fw_bulkhead_t,
    prio: fw_priority_t,
    timeout: Option<Duration>,
    out: *mut *mut fw_bulkhead_permit_t,
    name: &str,
) -> fw_status_t {
    guard(|| {
        let Some(b) = handle(bulkhead) else {
            return invalid(format!("{name}: `bulkhead` is NULL"));
        };
        if out.is_null() {
            return invalid(format!("{name}: `out` is NULL"));
        }
        let Some(prio) = priority(prio) else {
            return invalid(format!("{name}: {prio} is not an fw_priority_t"));
        };
        let got = match timeout {
            None => b.inner.try_acquire_with(prio),
            Some(d) => b.inner.acquire_timeout_with(prio, d),
        };
        match got {
            Ok(p) => {
                p.detach();
                let h = fw_bulkhead_permit_t {
                    bulkhead: Arc::clone(&b.inner),
                };
                put(out, Box::into_raw(Box::new(h)));
                FW_OK
            }
            Err(r) => rejected(r),
        }
    })
}

/// Returns a permit and frees it. NULL is `FW_EINVAL`. The permit is a
/// pointer to memory this call frees, so releasing it a second time (or
/// using it after) is a use-after-free that failwell cannot detect:
/// release each permit exactly once, and set your copy to NULL (a NULL
/// permit is a harmless `FW_EINVAL`).
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_permit_release(
    permit: *mut fw_bulkhead_permit_t,
) -> fw_status_t {
    guard(|| {
        if permit.is_null() {
            return invalid("fw_bulkhead_permit_release: `permit` is NULL");
        }
        // SAFETY: came from an acquire, released once; its Drop returns it.
        drop(unsafe { Box::from_raw(permit) });
        FW_OK
    })
}

/// Changes the limit and the critical reserve on the live bulkhead, all or
/// nothing: an invalid pair is `FW_EINVAL` with a message and changes
/// nothing. Permits out stay out.
#[no_mangle]
pub unsafe extern "C" fn fw_bulkhead_reconfigure(
    bulkhead: *const fw_bulkhead_t,
    max_concurrent: u32,
    critical_reserve: u32,
) -> fw_status_t {
    guard(|| {
        let Some(b) = handle(bulkhead) else {
            return invalid("fw_bulkhead_reconfigure: `bulkhead` is NULL");
        };
        let r = b.inner.reconfigure(|c| {
            c.max_concurrent(max_concurrent)
                .critical_reserve(critical_reserve)
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
        let Some(b) = handle(bulkhead) else {
            return invalid("fw_bulkhead_snapshot: `bulkhead` is NULL");
        };
        if out.is_null() {
            return invalid("fw_bulkhead_snapshot: `out` is NULL");
        }
        let s = b.inner.snapshot();
        put(
            out,
            fw_bulkhead_snapshot_t {
                max_concurrent: s.max_concurrent,
                available: s.available,
                in_use: s.in_use,
                waiting: s.waiting,
                rejected: s.rejected,
                peak: s.peak,
            },
        );
        FW_OK
    })
}
