//! `fw_deadline_*` and `fw_call_default_pool`: deadlines on the monotonic
//! clock, and timed calls for code that cannot take one.

use std::ffi::c_void;
use std::time::Duration;

use fw::clock::{Clock, MonotonicClock};
use fw::deadline::{default_pool, Deadline};

use crate::boundary::*;

/// Now, in nanoseconds of the monotonic clock failwell reads
/// (`CLOCK_MONOTONIC` on Unix).
#[no_mangle]
pub unsafe extern "C" fn fw_now_ns(out: *mut u64) -> fw_status_t {
    guard(|| {
        if out.is_null() {
            return invalid("fw_now_ns: `out` is NULL");
        }
        put(out, MonotonicClock.now());
        FW_OK
    })
}

/// The deadline `timeout_ns` from now (saturating), for passing down.
#[no_mangle]
pub unsafe extern "C" fn fw_deadline_after(timeout_ns: u64, out: *mut u64) -> fw_status_t {
    guard(|| {
        if out.is_null() {
            return invalid("fw_deadline_after: `out` is NULL");
        }
        put(
            out,
            Deadline::after(Duration::from_nanos(timeout_ns)).as_nanos(),
        );
        FW_OK
    })
}

/// Time left until `deadline_ns` (0 once passed).
#[no_mangle]
pub unsafe extern "C" fn fw_deadline_remaining(deadline_ns: u64, out_ns: *mut u64) -> fw_status_t {
    guard(|| {
        if out_ns.is_null() {
            return invalid("fw_deadline_remaining: `out_ns` is NULL");
        }
        put(
            out_ns,
            Deadline::at(deadline_ns).remaining().as_nanos() as u64,
        );
        FW_OK
    })
}

/// A call that cannot take a deadline: returns its result code.
pub type fw_timed_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> i32>;

/// Runs `f(user_data)` on failwell's bounded helper pool and waits for it
/// until `deadline_ns`. `FW_OK` with its result in `*result`;
/// `FW_REJECTED_DEADLINE_EXCEEDED` if the deadline passes first (or had
/// passed already) — the call keeps running on its worker (it cannot be
/// interrupted) and is counted as abandoned, so `user_data` must stay valid
/// until it returns; `FW_REJECTED_BULKHEAD_FULL` if every worker is busy.
/// Ownership is simple: `f` runs exactly once unless the status is
/// `FW_REJECTED_BULKHEAD_FULL` or `FW_EINVAL`, when it never runs — so `f`
/// may free `user_data` itself. `f` must be thread-safe and must not unwind
/// into failwell.
#[no_mangle]
pub unsafe extern "C" fn fw_call_with_timeout(
    deadline_ns: u64,
    f: fw_timed_fn,
    user_data: *mut c_void,
    result: *mut i32,
) -> fw_status_t {
    guard(|| {
        let Some(f) = f else {
            return invalid("fw_call_with_timeout: `f` is NULL");
        };
        let data = user_data as usize; // the caller vouches for it
                                       // `start` then `wait`, not `with_timeout`: the latter does not run
                                       // `f` at all when the deadline has passed, which would leave the
                                       // caller unable to tell whether `f` (and its `user_data`) is done.
        let deadline = Deadline::at(deadline_ns);
        let late = deadline.is_expired();
        let started = default_pool().start(move || {
            // SAFETY: `f` is a valid C function (contract).
            unsafe { f(data as *mut c_void) }
        });
        let outcome = match started {
            // Already late: `f` runs, abandoned, and the answer is the same
            // however fast it is.
            Ok(pending) if late => {
                drop(pending);
                Err(fw::Rejected::DeadlineExceeded)
            }
            Ok(pending) => pending.wait(deadline),
            Err(r) => Err(r),
        };
        match outcome {
            Ok(code) => {
                put(result, code);
                FW_OK
            }
            Err(r) => rejected(r),
        }
    })
}
