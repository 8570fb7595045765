//! `fw_deadline_*` and `fw_call_default_pool`: deadlines on the monotonic
//! clock, and timed calls for code that cannot take one.

use std::ffi::c_void;
use std::time::Duration;

use fw::clock::{Clock, MonotonicClock};
use fw::deadline::{default_pool, Deadline, TimeoutPool};

use crate::boundary::*;

/// Core's names for settings, as the C API names them (struct fields and
/// arguments), for error messages.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[("idle_timeout", "idle_timeout_ns")];

/// Now, in nanoseconds of the monotonic clock failwell reads
/// (`CLOCK_MONOTONIC` on Unix).
#[no_mangle]
pub unsafe extern "C" fn fw_now_ns(out: *mut u64) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        out.write(MonotonicClock.now());
        FW_OK
    })
}

/// The deadline `timeout_ns` from now (saturating), for passing down.
#[no_mangle]
pub unsafe extern "C" fn fw_deadline_after(timeout_ns: u64, out: *mut u64) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        out.write(Deadline::after(Duration::from_nanos(timeout_ns)).as_nanos());
        FW_OK
    })
}

/// Time left until `deadline_ns` (0 once passed).
#[no_mangle]
pub unsafe extern "C" fn fw_deadline_remaining(deadline_ns: u64, out_ns: *mut u64) -> fw_status_t {
    guard(|| {
        let out_ns = try_out!(out_ns);
        out_ns.write(Deadline::at(deadline_ns).remaining().as_nanos() as u64);
        FW_OK
    })
}

/// A call that cannot take a deadline: returns its result code.
pub type fw_timed_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> i32>;

/// Runs `f(user_data)` on failwell's default helper pool (64 threads) and
/// waits for it until `deadline_ns`. `FW_OK` with its result in `*result`;
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
        run_on(
            default_pool(),
            "fw_call_with_timeout",
            deadline_ns,
            f,
            user_data,
            result,
        )
    })
}

/// The body of `fw_call_with_timeout` and `fw_timeout_pool_call`.
fn run_on(
    pool: &TimeoutPool,
    name: &str,
    deadline_ns: u64,
    f: fw_timed_fn,
    user_data: *mut c_void,
    result: *mut i32,
) -> fw_status_t {
    let f = try_fn!(f, name);
    let result = try_out!(result, name);
    let data = user_data as usize; // the caller vouches for it
                                   // `start` then `wait`, not `TimeoutPool::run`: the latter does not run
                                   // `f` at all when the deadline has passed, which would leave the caller
                                   // unable to tell whether `f` (and its `user_data`) is done.
    let deadline = Deadline::at(deadline_ns);
    let late = deadline.is_expired();
    let started = pool.start(move || {
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
            result.write(code);
            FW_OK
        }
        Err(r) => rejected(r),
    }
}

/// A bounded pool of helper threads for calls that cannot take a deadline
/// (`fw_call_with_timeout` uses a default one). Thread-safe; free it once.
#[derive(Debug)]
pub struct fw_timeout_pool_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_timeout_pool_t {
    type Target = TimeoutPool;
}

/// A timeout pool's counters.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct fw_timeout_pool_snapshot_t {
    /// The most worker threads the pool runs.
    pub max_threads: u64,
    /// Worker threads alive now.
    pub threads: u64,
    /// Calls running or queued now (abandoned ones included).
    pub busy: u64,
    /// Calls whose caller got their result.
    pub completed: u64,
    /// Calls whose caller gave up at the deadline (abandoned).
    pub timed_out: u64,
    /// Abandoned calls still running, each holding a worker.
    pub abandoned_running: u64,
    /// Calls refused because every worker was busy.
    pub rejected: u64,
}

/// Creates a pool of at most `max_threads` workers (1 ..= 4096), started on
/// demand, that exit after `idle_timeout_ns` without work (0: 60 s).
#[no_mangle]
pub unsafe extern "C" fn fw_timeout_pool_new(
    max_threads: u32,
    idle_timeout_ns: u64,
    out: *mut *mut fw_timeout_pool_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        let idle = if idle_timeout_ns == 0 {
            fw::deadline::DEFAULT_IDLE_TIMEOUT
        } else {
            Duration::from_nanos(idle_timeout_ns)
        };
        match TimeoutPool::with_idle_timeout(max_threads as usize, idle) {
            Ok(inner) => {
                out.write(new_handle::<fw_timeout_pool_t>(inner));
                FW_OK
            }
            Err(e) => config_error("fw_timeout_pool_new", e, C_FIELDS),
        }
    })
}

/// Frees a pool. Idle workers exit; a worker in an abandoned call exits
/// when that call returns. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_timeout_pool_free(pool: *mut fw_timeout_pool_t) {
    // SAFETY: `pool` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(pool) });
}

/// `fw_call_with_timeout` on this pool (same statuses and ownership rule).
#[no_mangle]
pub unsafe extern "C" fn fw_timeout_pool_call(
    pool: *const fw_timeout_pool_t,
    deadline_ns: u64,
    f: fw_timed_fn,
    user_data: *mut c_void,
    result: *mut i32,
) -> fw_status_t {
    guard(|| {
        let p = try_handle!(pool);
        run_on(p, "fw_timeout_pool_call", deadline_ns, f, user_data, result)
    })
}

/// Copies the pool's counters into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_timeout_pool_snapshot(
    pool: *const fw_timeout_pool_t,
    out: *mut fw_timeout_pool_snapshot_t,
) -> fw_status_t {
    guard(|| {
        let p = try_handle!(pool);
        let out = try_out!(out);
        let s = p.snapshot();
        out.write(fw_timeout_pool_snapshot_t {
            max_threads: s.max_threads,
            threads: s.threads,
            busy: s.busy,
            completed: s.completed,
            timed_out: s.timed_out,
            abandoned_running: s.abandoned_running,
            rejected: s.rejected,
        });
        FW_OK
    })
}
