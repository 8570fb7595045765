//! The boundary: status codes, the per-thread last error, the one panic
//! guard every export runs inside, and the one ceremony for pointer
//! arguments.
//!
//! Handles: every opaque `fw_<thing>_t` implements [`Handle`]; the pointer
//! C holds is `Arc::into_raw` of the Rust value behind it, cast (one
//! allocation, one hop; rustls-ffi's pattern). [`new_handle`] makes one,
//! [`free_handle`] drops it, [`try_handle!`] borrows it, [`share`] takes
//! another owning reference (a pipeline holding a bulkhead the caller
//! holds too).
//!
//! Arguments: [`try_handle!`], [`try_ref!`] and [`try_out!`] turn a pointer
//! argument into a reference or an out-slot, or return `FW_EINVAL` with a
//! message naming the export called and the argument ("fw_bulkhead_snapshot:
//! `out` is NULL"). The export's name is found from the enclosing function
//! (or passed, in a helper shared by several exports).

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use fw::{ConfigError, Rejected};

/// What a failwell call did: one of the `FW_*` status constants. `FW_OK`
/// is 0; refusals are small positive numbers; errors are 100 and above.
/// (An integer type, not a C enum, so that no value a caller passes can be
/// undefined behaviour on the Rust side.)
pub type fw_status_t = i32;

/// Success.
pub const FW_OK: fw_status_t = 0;
/// A circuit breaker is open; `retry_after` says for how long if known.
pub const FW_REJECTED_CIRCUIT_OPEN: fw_status_t = 1;
/// A bulkhead had no permit free.
pub const FW_REJECTED_BULKHEAD_FULL: fw_status_t = 2;
/// A rate limiter refused.
pub const FW_REJECTED_RATE_LIMITED: fw_status_t = 3;
/// Load shedding refused.
pub const FW_REJECTED_SHED: fw_status_t = 4;
/// The deadline passed.
pub const FW_REJECTED_DEADLINE_EXCEEDED: fw_status_t = 5;
/// The retry budget is exhausted.
pub const FW_REJECTED_RETRY_BUDGET_EXHAUSTED: fw_status_t = 6;
/// The request can never be admitted (cost above capacity).
pub const FW_REJECTED_EXCEEDS_CAPACITY: fw_status_t = 7;
/// A NULL or invalid argument, or an invalid configuration; see
/// `fw_last_error`.
pub const FW_EINVAL: fw_status_t = 100;
/// failwell panicked (a bug); see `fw_last_error`.
pub const FW_EPANIC: fw_status_t = 101;
/// The protected call itself failed (e.g. `fw_retry_call` gave up); its
/// last result is reported through an out-parameter.
pub const FW_ECALL: fw_status_t = 102;
/// A system call failed (opening, reserving or mapping a region's file);
/// `fw_last_error` has the system's message.
pub const FW_EIO: fw_status_t = 103;
/// A shared region refused: the file is not a region or has another
/// layout version, the region is full, or the slot's name is taken by
/// another kind or another configuration, or (attaching) absent; see
/// `fw_last_error`.
pub const FW_EREGION: fw_status_t = 104;
/// The fleet's Redis is unreachable, slow (past the fleet's timeouts),
/// answered an error, or failwell's breaker around it is open; see
/// `fw_last_error`.
pub const FW_EFLEET: fw_status_t = 105;

/// The status of a refusal.
pub(crate) fn rejected(r: Rejected) -> fw_status_t {
    {
        match r {
            Rejected::CircuitOpen { .. } => FW_REJECTED_CIRCUIT_OPEN,
            Rejected::BulkheadFull => FW_REJECTED_BULKHEAD_FULL,
            Rejected::RateLimited { .. } => FW_REJECTED_RATE_LIMITED,
            Rejected::Shed => FW_REJECTED_SHED,
            Rejected::DeadlineExceeded => FW_REJECTED_DEADLINE_EXCEEDED,
            Rejected::RetryBudgetExhausted => FW_REJECTED_RETRY_BUDGET_EXHAUSTED,
            Rejected::ExceedsCapacity { .. } => FW_REJECTED_EXCEEDS_CAPACITY,
            _ => FW_EINVAL,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Records `msg` as this thread's last error and returns `FW_EINVAL`.
#[cold]
#[inline(never)]
pub(crate) fn invalid(msg: impl Into<String>) -> fw_status_t {
    set_last_error(msg.into());
    FW_EINVAL
}

/// A refused configuration as `FW_EINVAL`, its message naming the C
/// function called and the C field or argument (`c_fields` maps core's
/// setting names to the C names where they differ).
#[cold]
#[inline(never)]
pub(crate) fn config_error(func: &str, e: ConfigError, c_fields: &[(&str, &str)]) -> fw_status_t {
    let field = c_fields
        .iter()
        .find(|(core, _)| *core == e.field())
        .map_or(e.field(), |(_, c)| c);
    invalid(format!("{func}: {field}: {}", e.problem()))
}

#[cold]
fn set_last_error(msg: String) {
    LAST_ERROR.with(|l| {
        let mut v = msg.into_bytes();
        v.retain(|b| *b != 0);
        *l.borrow_mut() = v;
    });
}

/// Runs an export's body; a panic becomes `FW_EPANIC` with its message as
/// the last error.
#[inline(always)]
pub(crate) fn guard(f: impl FnOnce() -> fw_status_t) -> fw_status_t {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(s) => s,
        Err(p) => panicked(p),
    }
}

/// A panic caught at the boundary, as `FW_EPANIC` and the last error.
#[cold]
#[inline(never)]
fn panicked(p: Box<dyn std::any::Any + Send>) -> fw_status_t {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    set_last_error(format!("failwell panicked: {msg}"));
    FW_EPANIC
}

/// Runs a `void` export's body (a `*_free`): a panic is caught, recorded
/// as the last error and goes no further.
#[inline]
pub(crate) fn guard_void(f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        panicked(p);
    }
}

/// An opaque C handle type standing for a Rust value kept in an `Arc`.
///
/// # Safety
/// An implementor is an opaque marker, never constructed: the only values
/// of it that exist are pointers made by [`new_handle`], which point at a
/// live `Self::Target` inside an `Arc` until [`free_handle`].
pub(crate) unsafe trait Handle {
    /// The Rust value behind the handle.
    type Target: Send + Sync;
}

/// A new handle owning `value`.
pub(crate) fn new_handle<H: Handle>(value: H::Target) -> *mut H {
    Arc::into_raw(Arc::new(value)) as *mut H
}

/// Drops the handle's reference to its value (NULL is a no-op); other
/// owning references ([`share`]) keep it alive.
///
/// # Safety
/// `h` is NULL or came from [`new_handle`] and is freed once (the
/// documented contract of every `*_free`).
pub(crate) unsafe fn free_handle<H: Handle>(h: *mut H) {
    if !h.is_null() {
        // SAFETY: per this function's contract, `h` is `Arc::into_raw` of
        // an `Arc<H::Target>` whose reference the caller gives up here.
        drop(unsafe { Arc::from_raw(h as *const H::Target) });
    }
}

/// The value behind a handle, or `None` for NULL.
#[inline(always)]
pub(crate) fn borrow<'a, H: Handle>(h: *const H) -> Option<&'a H::Target> {
    // SAFETY: a non-NULL handle came from `new_handle` and is not freed
    // while the caller uses it (the documented contract of every export).
    unsafe { (h as *const H::Target).as_ref() }
}

/// Another owning reference to the value behind a handle, or `None` for
/// NULL.
pub(crate) fn share<H: Handle>(h: *const H) -> Option<Arc<H::Target>> {
    if h.is_null() {
        return None;
    }
    let p = h as *const H::Target;
    // SAFETY: as in `borrow`; the handle's own reference stays, and the
    // count goes up by the one returned.
    unsafe {
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

/// An opaque C handle type for a value one caller uses at a time (a
/// pipeline run, an adaptive-limit permit): owned through `Box::into_raw`,
/// borrowed mutably.
///
/// # Safety
/// As for [`Handle`]: never constructed; its pointers come from
/// [`new_owned`] and point at a live `Self::Target` until [`free_owned`].
pub(crate) unsafe trait Owned {
    /// The Rust value behind the handle.
    type Target: Send;
}

/// A new exclusive handle owning `value`.
pub(crate) fn new_owned<H: Owned>(value: H::Target) -> *mut H {
    Box::into_raw(Box::new(value)) as *mut H
}

/// Frees an exclusive handle (NULL is a no-op).
///
/// # Safety
/// `h` is NULL or came from [`new_owned`] and is freed once.
pub(crate) unsafe fn free_owned<H: Owned>(h: *mut H) {
    if !h.is_null() {
        // SAFETY: per this function's contract.
        drop(unsafe { Box::from_raw(h as *mut H::Target) });
    }
}

/// The value behind an exclusive handle, or `None` for NULL.
#[inline(always)]
pub(crate) fn borrow_owned<'a, H: Owned>(h: *mut H) -> Option<&'a mut H::Target> {
    // SAFETY: a non-NULL handle came from `new_owned`, is not freed, and
    // is used by one thread at a time (the documented contract).
    unsafe { (h as *mut H::Target).as_mut() }
}

/// Takes the value out of an exclusive handle and frees the handle.
///
/// # Safety
/// As for [`free_owned`]; `h` is not NULL.
pub(crate) unsafe fn take_owned<H: Owned>(h: *mut H) -> H::Target {
    // SAFETY: per this function's contract.
    *unsafe { Box::from_raw(h as *mut H::Target) }
}

/// A checked, non-NULL out-parameter.
#[derive(Debug)]
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// The slot behind `p`, or `None` for NULL.
    #[inline(always)]
    pub(crate) fn new(p: *mut T) -> Option<Self> {
        NonNull::new(p).map(Out)
    }

    /// Writes `value` into the slot.
    #[inline(always)]
    pub(crate) fn write(self, value: T) {
        // SAFETY: a non-NULL out-parameter is valid, aligned and writable
        // for a `T` (the documented contract of every export).
        unsafe { self.0.as_ptr().write(value) };
    }
}

/// The export a `type_name` path was taken in: its last segment that
/// names a C export (`fw_…`), or the whole path.
#[cold]
pub(crate) fn export_of(path: &'static str) -> &'static str {
    path.rsplit("::")
        .find(|seg| seg.starts_with("fw_"))
        .unwrap_or(path)
}

/// The type name of a value's type (`type_name_of_val`, for Rust 1.75).
pub(crate) fn type_name_of<T>(_: &T) -> &'static str {
    std::any::type_name::<T>()
}

/// A NULL argument, as `FW_EINVAL` and a message naming export and argument.
#[cold]
#[inline(never)]
pub(crate) fn null_arg(func: &str, arg: &str) -> fw_status_t {
    invalid(format!("{func}: `{arg}` is NULL"))
}

/// The name of the export this is used in (see [`export_of`]).
macro_rules! this_export {
    () => {{
        fn here() {}
        $crate::boundary::export_of($crate::boundary::type_name_of(&here))
    }};
}
pub(crate) use this_export;

/// `try_handle!(h)`: the value behind handle argument `h`, or return
/// `FW_EINVAL` naming the export and `h`; `try_handle!(h, func)` names
/// `func` instead (in a helper shared by several exports).
macro_rules! try_handle {
    ($h:ident) => {
        $crate::boundary::try_handle!($h, $crate::boundary::this_export!())
    };
    ($h:ident, $func:expr) => {
        match $crate::boundary::borrow($h) {
            Some(v) => v,
            None => return $crate::boundary::null_arg($func, stringify!($h)),
        }
    };
}
pub(crate) use try_handle;

/// `try_owned!(h)`: the value behind exclusive handle argument `h`
/// (mutably), or return `FW_EINVAL` naming the export and `h`.
macro_rules! try_owned {
    ($h:ident) => {
        $crate::boundary::try_owned!($h, $crate::boundary::this_export!())
    };
    ($h:ident, $func:expr) => {
        match $crate::boundary::borrow_owned($h) {
            Some(v) => v,
            None => return $crate::boundary::null_arg($func, stringify!($h)),
        }
    };
}
pub(crate) use try_owned;

/// `try_ref!(p)`: the value behind plain pointer argument `p` (a config,
/// a permit), or return `FW_EINVAL` naming the export and `p`.
macro_rules! try_ref {
    ($p:ident) => {
        $crate::boundary::try_ref!($p, $crate::boundary::this_export!())
    };
    ($p:ident, $func:expr) => {
        // SAFETY: a non-NULL pointer argument points to a valid value of
        // its type (the documented contract of every export).
        match unsafe { $p.as_ref() } {
            Some(v) => v,
            None => return $crate::boundary::null_arg($func, stringify!($p)),
        }
    };
}
pub(crate) use try_ref;

/// `try_mut!(p)`: as [`try_ref!`], for a pointer the export writes through
/// and reads (a caller's permit it clears).
macro_rules! try_mut {
    ($p:ident) => {
        $crate::boundary::try_mut!($p, $crate::boundary::this_export!())
    };
    ($p:ident, $func:expr) => {
        // SAFETY: a non-NULL pointer argument points to a valid, writable
        // value of its type that no one else uses during the call (the
        // documented contract of every export).
        match unsafe { $p.as_mut() } {
            Some(v) => v,
            None => return $crate::boundary::null_arg($func, stringify!($p)),
        }
    };
}
pub(crate) use try_mut;

/// `try_out!(p)`: the out-slot behind required out-parameter `p`, or
/// return `FW_EINVAL` naming the export and `p`.
macro_rules! try_out {
    ($p:ident) => {
        $crate::boundary::try_out!($p, $crate::boundary::this_export!())
    };
    ($p:ident, $func:expr) => {
        match $crate::boundary::Out::new($p) {
            Some(o) => o,
            None => return $crate::boundary::null_arg($func, stringify!($p)),
        }
    };
}
pub(crate) use try_out;

/// `try_fn!(f)`: the C function behind nullable function-pointer argument
/// `f` (an `Option<extern "C" fn …>`), or return `FW_EINVAL` naming the
/// export and `f`.
macro_rules! try_fn {
    ($f:ident) => {
        $crate::boundary::try_fn!($f, $crate::boundary::this_export!())
    };
    ($f:ident, $func:expr) => {
        match $f {
            Some(f) => f,
            None => return $crate::boundary::null_arg($func, stringify!($f)),
        }
    };
}
pub(crate) use try_fn;

/// `try_cstr!(p)`: the NUL-terminated string behind argument `p` as a
/// `&CStr`, or return `FW_EINVAL` naming the export and `p`.
macro_rules! try_cstr {
    ($p:ident) => {
        $crate::boundary::try_cstr!($p, $crate::boundary::this_export!())
    };
    ($p:ident, $func:expr) => {
        if $p.is_null() {
            return $crate::boundary::null_arg($func, stringify!($p));
        } else {
            // SAFETY: a non-NULL string argument is NUL-terminated and
            // valid for the call (the documented contract of every export).
            unsafe { std::ffi::CStr::from_ptr($p) }
        }
    };
}
pub(crate) use try_cstr;

/// `try_str!(p)`: as [`try_cstr!`], as UTF-8 `&str`, or return `FW_EINVAL`
/// saying `p` is not UTF-8.
macro_rules! try_str {
    ($p:ident) => {
        $crate::boundary::try_str!($p, $crate::boundary::this_export!())
    };
    ($p:ident, $func:expr) => {
        match $crate::boundary::try_cstr!($p, $func).to_str() {
            Ok(s) => s,
            Err(_) => {
                return $crate::boundary::invalid(format!(
                    "{}: `{}` is not UTF-8",
                    $func,
                    stringify!($p)
                ))
            }
        }
    };
}
pub(crate) use try_str;

/// The configuration behind `config`, or `default()` when it is NULL.
pub(crate) fn config_or<T: Copy>(config: *const T, default: extern "C" fn() -> T) -> T {
    // SAFETY: a non-NULL `config` points to a valid, initialised config
    // (the documented contract of every `fw_*_new`).
    unsafe { config.as_ref() }
        .copied()
        .unwrap_or_else(|| default())
}

/// A duration in nanoseconds, saturating at `UINT64_MAX`.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A wait as the C API reports it (a Retry-After): nanoseconds, or
/// `UINT64_MAX` when none is named.
pub(crate) fn wait_ns(d: Option<Duration>) -> u64 {
    d.map_or(u64::MAX, nanos)
}

/// Writes through `out` if it is not NULL.
#[inline]
pub(crate) fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: the caller passes NULL or a valid, aligned, writable
        // pointer to a `T` (the documented contract of every out-parameter).
        unsafe { out.write(value) };
    }
}

/// The name of a status, e.g. `"FW_REJECTED_CIRCUIT_OPEN"`, or
/// `"FW_UNKNOWN_STATUS"`; a static string, never NULL.
#[no_mangle]
pub extern "C" fn fw_status_str(status: fw_status_t) -> *const c_char {
    let s: &'static CStr = match status {
        FW_OK => c"FW_OK",
        FW_REJECTED_CIRCUIT_OPEN => c"FW_REJECTED_CIRCUIT_OPEN",
        FW_REJECTED_BULKHEAD_FULL => c"FW_REJECTED_BULKHEAD_FULL",
        FW_REJECTED_RATE_LIMITED => c"FW_REJECTED_RATE_LIMITED",
        FW_REJECTED_SHED => c"FW_REJECTED_SHED",
        FW_REJECTED_DEADLINE_EXCEEDED => c"FW_REJECTED_DEADLINE_EXCEEDED",
        FW_REJECTED_RETRY_BUDGET_EXHAUSTED => c"FW_REJECTED_RETRY_BUDGET_EXHAUSTED",
        FW_REJECTED_EXCEEDS_CAPACITY => c"FW_REJECTED_EXCEEDS_CAPACITY",
        FW_EINVAL => c"FW_EINVAL",
        FW_EPANIC => c"FW_EPANIC",
        FW_ECALL => c"FW_ECALL",
        FW_EIO => c"FW_EIO",
        FW_EREGION => c"FW_EREGION",
        FW_EFLEET => c"FW_EFLEET",
        _ => c"FW_UNKNOWN_STATUS",
    };
    s.as_ptr()
}

/// Copies this thread's last error message into `buf` (at most `len` bytes
/// including the terminating NUL; truncated if longer) and returns the
/// length the whole message needs, NUL included — the usual required-size
/// protocol: call with `buf = NULL, len = 0` to size the buffer. Returns 1
/// (an empty string) when there was no error. Thread-safe: each thread has
/// its own last error.
#[no_mangle]
pub unsafe extern "C" fn fw_last_error(buf: *mut c_char, len: usize) -> usize {
    LAST_ERROR.with(|l| {
        let msg = l.borrow();
        let needed = msg.len() + 1;
        if !buf.is_null() && len > 0 {
            let n = msg.len().min(len - 1);
            // SAFETY: the caller passes a writable buffer of at least `len`
            // bytes; we write `n + 1 <= len` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(msg.as_ptr(), buf as *mut u8, n);
                *buf.add(n) = 0;
            }
        }
        needed
    })
}

#[cfg(test)]
mod tests;
