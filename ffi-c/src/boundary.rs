//! The boundary: status codes, the per-thread last error, and the one
//! panic guard every export runs inside.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
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
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_fw_epanic_with_its_message() {
        // Quiet the default hook's report of the deliberate panic.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let last = || {
            let mut buf = [0 as c_char; 64];
            // SAFETY: a writable buffer of its length.
            let need = unsafe { fw_last_error(buf.as_mut_ptr(), buf.len()) };
            // SAFETY: fw_last_error NUL-terminates within the buffer.
            let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(need, msg.len() + 1);
            msg
        };
        let s = guard(|| panic!("deliberate"));
        let first = last();
        let s2 = guard(|| std::panic::panic_any(7u8));
        std::panic::set_hook(hook);
        assert_eq!((s, s2), (FW_EPANIC, FW_EPANIC));
        assert_eq!(first, "failwell panicked: deliberate");
        assert_eq!(last(), "failwell panicked: unknown panic");
        assert_eq!(guard(|| FW_OK), FW_OK);
    }
}
