//! `fw_retry_*`: retries with backoff and jitter, driving a C callback.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use fw::deadline::Deadline;
use fw::retry::{self, Backoff, Jitter, Retry, RetryBudget, Run};
use fw::Error;

use crate::boundary::*;

/// Core's names for settings, as the C API names them (struct fields and
/// arguments), for error messages.
/// cbindgen:ignore
pub(crate) const C_FIELDS: &[(&str, &str)] = &[
    ("backoff.initial", "initial_ns"),
    ("backoff.max", "max_ns"),
    ("backoff.multiplier", "multiplier"),
    ("max_elapsed", "max_elapsed_ns"),
    ("jitter", "jitter_fraction"),
    ("budget.ratio", "budget_ratio"),
    ("budget.min_per_sec", "budget_min_per_sec"),
];

/// A retry policy. Thread-safe: one policy may serve every thread.
#[derive(Debug)]
pub struct fw_retry_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_retry_t {
    type Target = Retry;
}

/// Backoff kind: one of the `FW_BACKOFF_*` constants.
pub type fw_backoff_t = u32;
/// `initial_ns` every time.
pub const FW_BACKOFF_CONSTANT: fw_backoff_t = 0;
/// `initial_ns + step_ns × (retry − 1)`, at most `max_ns`.
pub const FW_BACKOFF_LINEAR: fw_backoff_t = 1;
/// `initial_ns × multiplier^(retry − 1)`, at most `max_ns`.
pub const FW_BACKOFF_EXPONENTIAL: fw_backoff_t = 2;

/// Jitter kind: one of the `FW_JITTER_*` constants.
pub type fw_jitter_t = u32;
/// No jitter.
pub const FW_JITTER_NONE: fw_jitter_t = 0;
/// Uniform in [0, delay).
pub const FW_JITTER_FULL: fw_jitter_t = 1;
/// Uniform in [delay/2, delay).
pub const FW_JITTER_EQUAL: fw_jitter_t = 2;
/// AWS's decorrelated jitter.
pub const FW_JITTER_DECORRELATED: fw_jitter_t = 3;
/// Within ±`jitter_fraction` of the delay.
pub const FW_JITTER_SYMMETRIC: fw_jitter_t = 4;

/// Retry configuration. Durations in nanoseconds.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_retry_config_t {
    /// Attempts in all, ≥ 1 (default 3).
    pub max_attempts: u32,
    /// Give up rather than sleep past this long since the first attempt;
    /// 0 = no limit (default 0).
    pub max_elapsed_ns: u64,
    /// The backoff kind (default `FW_BACKOFF_EXPONENTIAL`).
    pub backoff: fw_backoff_t,
    /// First delay (default 100 ms).
    pub initial_ns: u64,
    /// Linear step (default 100 ms).
    pub step_ns: u64,
    /// Exponential growth, ≥ 1 (default 2).
    pub multiplier: f64,
    /// Cap (default 10 s).
    pub max_ns: u64,
    /// The jitter kind (default `FW_JITTER_FULL`).
    pub jitter: fw_jitter_t,
    /// For `FW_JITTER_SYMMETRIC`, in [0, 1] (default 0.25).
    pub jitter_fraction: f64,
    /// Seed for the jitter; 0 = a fresh random seed (default 0).
    pub seed: u64,
    /// Draw retries from a budget of this fraction of calls; < 0 = no
    /// budget (default -1).
    pub budget_ratio: f64,
    /// The budget's floor, retries per second, ≥ 0 (default 3).
    pub budget_min_per_sec: f64,
    /// Retry failwell's own refusals (an open breaker, a full bulkhead, a
    /// rate limit) when the policy drives a pipeline, no sooner than their
    /// Retry-After (default false: a refusal is final).
    pub retry_rejected: bool,
}

/// The defaults (core's: 100 ms doubling to 10 s, 3 attempts, full
/// jitter, no budget).
#[no_mangle]
pub extern "C" fn fw_retry_config_default() -> fw_retry_config_t {
    fw_retry_config_t {
        max_attempts: retry::DEFAULT_MAX_ATTEMPTS,
        max_elapsed_ns: 0,
        backoff: FW_BACKOFF_EXPONENTIAL,
        initial_ns: nanos(retry::DEFAULT_BACKOFF_INITIAL),
        step_ns: nanos(retry::DEFAULT_BACKOFF_INITIAL),
        multiplier: retry::DEFAULT_BACKOFF_MULTIPLIER,
        max_ns: nanos(retry::DEFAULT_BACKOFF_MAX),
        jitter: FW_JITTER_FULL,
        jitter_fraction: 0.25,
        seed: 0,
        budget_ratio: -1.0,
        budget_min_per_sec: retry::DEFAULT_BUDGET_MIN_PER_SECOND,
        retry_rejected: false,
    }
}

/// The core policy for a C configuration, errors naming `func`; with
/// `shared`, its budget instead of one made from the `budget_*` fields.
pub(crate) fn build(
    c: &fw_retry_config_t,
    func: &str,
    shared: Option<Arc<RetryBudget>>,
) -> Result<Retry, fw_status_t> {
    let ns = Duration::from_nanos;
    let backoff = match c.backoff {
        FW_BACKOFF_CONSTANT => Backoff::Constant(ns(c.initial_ns)),
        FW_BACKOFF_LINEAR => Backoff::Linear {
            initial: ns(c.initial_ns),
            step: ns(c.step_ns),
            max: ns(c.max_ns),
        },
        FW_BACKOFF_EXPONENTIAL => {
            Backoff::exponential(ns(c.initial_ns), c.multiplier, ns(c.max_ns))
        }
        other => {
            return Err(invalid(format!(
                "{func}: backoff: {other} is not an fw_backoff_t"
            )))
        }
    };
    let jitter = match c.jitter {
        FW_JITTER_NONE => Jitter::None,
        FW_JITTER_FULL => Jitter::Full,
        FW_JITTER_EQUAL => Jitter::Equal,
        FW_JITTER_DECORRELATED => Jitter::Decorrelated,
        FW_JITTER_SYMMETRIC => Jitter::Symmetric(c.jitter_fraction),
        other => {
            return Err(invalid(format!(
                "{func}: jitter: {other} is not an fw_jitter_t"
            )))
        }
    };
    let mut b = Retry::builder()
        .max_attempts(c.max_attempts)
        .backoff(backoff)
        .jitter(jitter)
        .retry_rejected(c.retry_rejected);
    if c.max_elapsed_ns > 0 {
        b = b.max_elapsed(ns(c.max_elapsed_ns));
    }
    if c.seed != 0 {
        b = b.seed(c.seed);
    }
    if let Some(budget) = shared {
        b = b.budget(budget);
    } else if c.budget_ratio >= 0.0 {
        let budget = RetryBudget::with(
            c.budget_ratio,
            c.budget_min_per_sec,
            retry::DEFAULT_BUDGET_TTL,
            fw::clock::MonotonicClock,
        )
        .map_err(|e| config_error(func, e, C_FIELDS))?;
        b = b.budget(Arc::new(budget));
    } else if c.budget_ratio.is_nan() {
        return Err(invalid(format!(
            "{func}: budget_ratio: must be in [0, 1], got NaN"
        )));
    }
    b.build().map_err(|e| config_error(func, e, C_FIELDS))
}

/// Creates a retry policy (`config` NULL: the defaults) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_retry_new(
    config: *const fw_retry_config_t,
    out: *mut *mut fw_retry_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        let c = config_or(config, fw_retry_config_default);
        match build(&c, "fw_retry_new", None) {
            Ok(r) => {
                out.write(new_handle::<fw_retry_t>(r));
                FW_OK
            }
            Err(s) => s,
        }
    })
}

/// Frees a retry policy. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_retry_free(retry: *mut fw_retry_t) {
    // SAFETY: `retry` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(retry) });
}

/// The delay after attempt `attempt` (1-based; 0 is `FW_EINVAL`): backoff
/// plus jitter, for callers that run their own loop. `previous_ns` is the previous delay
/// (for decorrelated jitter; 0 for the first).
#[no_mangle]
pub unsafe extern "C" fn fw_retry_delay(
    retry: *const fw_retry_t,
    attempt: u32,
    previous_ns: u64,
    out_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(retry);
        let out_ns = try_out!(out_ns);
        if attempt == 0 {
            return invalid("fw_retry_delay: `attempt` is 1-based, got 0");
        }
        let d = r.next_delay(attempt, Duration::from_nanos(previous_ns));
        out_ns.write(d.as_nanos() as u64);
        FW_OK
    })
}

/// The call a retry drives: returns 0 on success, a positive number for a
/// failure worth retrying, a negative number for a failure that is final.
/// `attempt` counts from 1. It must not unwind (throw) into failwell.
pub type fw_retry_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, attempt: u32) -> i32>;

/// Runs `f` under the policy, sleeping (the calling thread) between
/// attempts, never past `timeout_ns` from now (0 = no deadline).
///
/// Returns `FW_OK` when an attempt returned 0; `FW_ECALL` when the policy
/// gave up, with the last result in `*last_result` (if not NULL);
/// `FW_REJECTED_RETRY_BUDGET_EXHAUSTED` when the budget refused a retry;
/// `FW_REJECTED_DEADLINE_EXCEEDED` if no attempt could start.
#[no_mangle]
pub unsafe extern "C" fn fw_retry_call(
    retry: *const fw_retry_t,
    timeout_ns: u64,
    f: fw_retry_fn,
    user_data: *mut c_void,
    last_result: *mut i32,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(retry);
        let f = try_fn!(f);
        let deadline = (timeout_ns > 0).then(|| Deadline::after(Duration::from_nanos(timeout_ns)));
        let mut attempt = 0u32;
        let result = r.run(
            deadline,
            |res: &Result<i32, i32>| matches!(res, Err(code) if *code > 0),
            |_| {},
            || {
                attempt += 1;
                // SAFETY: `f` is a valid C function (contract); `user_data`
                // is passed back untouched.
                let code = unsafe { f(user_data, attempt) };
                if code == 0 {
                    Ok(0)
                } else {
                    Err(code)
                }
            },
        );
        match result {
            Ok(_) => {
                put(last_result, 0);
                FW_OK
            }
            Err(Error::Inner(code)) => {
                put(last_result, code);
                FW_ECALL
            }
            Err(Error::Rejected(rej)) => rejected(rej),
        }
    })
}

/// One call in progress under a retry policy, for loops run outside failwell
/// (an event loop that sleeps with its own timer): a plain value (no
/// allocation, nothing to free) whose fields are private to failwell.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_retry_run_t {
    pub _private: [u64; 4],
}

/// Starts one call under the policy (counts it, deposits into the budget)
/// into `*out`. `deadline_ns` is an instant from `fw_deadline_after`, or 0
/// for none; `FW_REJECTED_DEADLINE_EXCEEDED` if it has passed. After each
/// attempt that failed and may be retried, ask `fw_retry_next`.
#[no_mangle]
pub unsafe extern "C" fn fw_retry_begin(
    retry: *const fw_retry_t,
    deadline_ns: u64,
    out: *mut fw_retry_run_t,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(retry);
        let out = try_out!(out);
        let deadline = (deadline_ns != 0).then(|| Deadline::at(deadline_ns));
        match r.begin(deadline) {
            Ok(run) => {
                out.write(fw_retry_run_t {
                    _private: run.into_raw(),
                });
                FW_OK
            }
            Err(rej) => rejected(rej),
        }
    })
}

/// The attempt of `*run` failed and may be retried, no sooner than
/// `at_least_ns` (a server's Retry-After; 0 otherwise). `FW_OK`: wait
/// `*delay_ns`, then make the next attempt (`*run` is updated);
/// `FW_ECALL`: the policy gives up (attempts, elapsed time or the deadline
/// leave no room) — keep the last result; `FW_REJECTED_RETRY_BUDGET_EXHAUSTED`:
/// the budget refused. Never blocks.
#[no_mangle]
pub unsafe extern "C" fn fw_retry_next(
    retry: *const fw_retry_t,
    run: *mut fw_retry_run_t,
    at_least_ns: u64,
    delay_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(retry);
        let slot = try_mut!(run);
        let delay_ns = try_out!(delay_ns);
        let mut state = Run::from_raw(slot._private);
        let step = r.step(&mut state, Duration::from_nanos(at_least_ns));
        slot._private = state.into_raw();
        match step {
            Ok(Some(d)) => {
                delay_ns.write(nanos(d));
                FW_OK
            }
            Ok(None) => FW_ECALL,
            Err(rej) => rejected(rej),
        }
    })
}

/// A retry policy's counters.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_retry_snapshot_t {
    pub calls: u64,
    pub attempts: u64,
    pub retries: u64,
    pub budget_refusals: u64,
}

/// Copies the policy's counters into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_retry_snapshot(
    retry: *const fw_retry_t,
    out: *mut fw_retry_snapshot_t,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(retry);
        let out = try_out!(out);
        let s = r.snapshot();
        out.write(fw_retry_snapshot_t {
            calls: s.calls,
            attempts: s.attempts,
            retries: s.retries,
            budget_refusals: s.budget_refusals,
        });
        FW_OK
    })
}
