//! `fw_pipeline_*`: the layers composed in the fixed order, around a C
//! callback.

use std::ffi::c_void;
use std::time::Duration;

use std::sync::Arc;

use fw::breaker::Outcome;
use fw::bulkhead::Priority;
use fw::deadline::Deadline;
use fw::pipeline::{Attempt, Ended, Pipeline, Run};
use fw::Error;

use crate::boundary::*;
use crate::breaker::fw_breaker_t;
use crate::bulkhead::{fw_bulkhead_t, fw_priority_t, priority};
use crate::rate_limit::fw_rate_limiter_t;
use crate::retry::fw_retry_t;
use crate::shed::fw_adaptive_limit_t;

/// Core's names for settings, as the C API names them (struct fields and
/// arguments), for error messages.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[
    ("total_timeout", "total_timeout_ns"),
    ("attempt_timeout", "attempt_timeout_ns"),
];

/// Layers composed in the fixed order (outermost first): total deadline,
/// retry, breaker, rate limiter, adaptive limit, bulkhead, per-attempt
/// deadline. Thread-safe: one pipeline may serve every thread. Free it once,
/// after every thread is done with it.
#[derive(Debug)]
pub struct fw_pipeline_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_pipeline_t {
    type Target = Pipeline;
}

/// Pipeline configuration. Each layer is a handle, or NULL for none (every
/// layer is optional). The pipeline keeps its own reference to each layer,
/// so their handles may be freed before it; the layers stay shared with
/// any other user of the same handle.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_pipeline_config_t {
    /// The whole call, retries and their sleeps included, in nanoseconds
    /// (default 0: none).
    pub total_timeout_ns: u64,
    /// Retry failed attempts with this policy (default NULL).
    pub retry: *const fw_retry_t,
    /// Guard each attempt with this breaker (default NULL). A fleet
    /// breaker's sync with the fleet lasts as long as its own handle.
    pub breaker: *const fw_breaker_t,
    /// Admit each attempt through this rate limiter (default NULL; a fleet
    /// rate limiter is `FW_EINVAL`).
    pub rate_limiter: *const fw_rate_limiter_t,
    /// Admit each attempt through this adaptive limit (default NULL).
    pub adaptive_limit: *const fw_adaptive_limit_t,
    /// Hold a permit of this bulkhead while each attempt runs (default NULL).
    pub bulkhead: *const fw_bulkhead_t,
    /// Each attempt's own deadline, in nanoseconds, never later than the
    /// total one (default 0: the total deadline alone).
    pub attempt_timeout_ns: u64,
    /// The priority for the bulkhead and the adaptive limit (default
    /// `FW_PRIORITY_NORMAL`).
    pub priority: fw_priority_t,
}

/// The defaults: no layer, no deadline, normal priority.
#[no_mangle]
pub extern "C" fn fw_pipeline_config_default() -> fw_pipeline_config_t {
    fw_pipeline_config_t {
        total_timeout_ns: 0,
        retry: std::ptr::null(),
        breaker: std::ptr::null(),
        rate_limiter: std::ptr::null(),
        adaptive_limit: std::ptr::null(),
        bulkhead: std::ptr::null(),
        attempt_timeout_ns: 0,
        priority: 0,
    }
}

fn build(c: &fw_pipeline_config_t) -> Result<Pipeline, fw_status_t> {
    let mut b = Pipeline::builder();
    if c.total_timeout_ns > 0 {
        b = b.total_timeout(Duration::from_nanos(c.total_timeout_ns));
    }
    if c.attempt_timeout_ns > 0 {
        b = b.attempt_timeout(Duration::from_nanos(c.attempt_timeout_ns));
    }
    if let Some(r) = share(c.retry) {
        b = b.retry(r);
    }
    if let Some(x) = share(c.breaker) {
        b = b.breaker(x.arc());
    }
    if let Some(x) = share(c.rate_limiter) {
        let Some(l) = x.as_local() else {
            return Err(invalid(
                "fw_pipeline_new: rate_limiter: a fleet rate limiter is not a pipeline layer; call fw_rate_limiter_try_acquire before fw_pipeline_run",
            ));
        };
        b = b.rate_limiter(Arc::clone(l));
    }
    if let Some(x) = share(c.adaptive_limit) {
        b = b.adaptive_limit(x);
    }
    if let Some(x) = share(c.bulkhead) {
        b = b.bulkhead(x);
    }
    let Some(p) = priority(c.priority) else {
        return Err(invalid(format!(
            "fw_pipeline_new: invalid `priority`: {} is not an fw_priority_t",
            c.priority
        )));
    };
    if p != Priority::Normal {
        b = b.priority(p);
    }
    b.build()
        .map_err(|e| config_error("fw_pipeline_new", e, C_FIELDS))
}

/// Creates a pipeline (`config` NULL: no layer at all) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_pipeline_new(
    config: *const fw_pipeline_config_t,
    out: *mut *mut fw_pipeline_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        let c = config_or(config, fw_pipeline_config_default);
        match build(&c) {
            Ok(p) => {
                out.write(new_handle::<fw_pipeline_t>(p));
                FW_OK
            }
            Err(s) => s,
        }
    })
}

/// Frees a pipeline (and its references to its layers); runs in progress
/// (`fw_pipeline_begin`) keep it alive until they are freed. NULL is a
/// no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_pipeline_free(pipeline: *mut fw_pipeline_t) {
    // SAFETY: `pipeline` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(pipeline) });
}

/// The call a pipeline runs, once per attempt. `attempt` counts from 1;
/// `deadline_ns` is the attempt's deadline on failwell's monotonic clock
/// (see `fw_now_ns`, `fw_deadline_remaining`), `UINT64_MAX` when there is
/// none; the call must honour it (pass it to its client's timeout), or run
/// its blocking part through `fw_call_with_timeout`. It returns 0 on
/// success; a positive number for a failure of the dependency (counted by
/// the breaker, and retried; one returned after its deadline passed also
/// counts as a drop for the adaptive limit); a negative number for a
/// failure that is not the dependency's (a bad request: neither counted nor
/// retried). It must not unwind (throw) into failwell.
pub type fw_pipeline_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, attempt: u32, deadline_ns: u64) -> i32>;

/// Runs `f` through the pipeline's layers on the calling thread (sleeping
/// it between retries).
///
/// Returns `FW_OK` when an attempt returned 0; `FW_ECALL` when the last
/// attempt failed, its result in `*last_result`; or the refusal that ended
/// the call: `FW_REJECTED_CIRCUIT_OPEN`, `FW_REJECTED_RATE_LIMITED`,
/// `FW_REJECTED_SHED`, `FW_REJECTED_BULKHEAD_FULL`,
/// `FW_REJECTED_DEADLINE_EXCEEDED`, `FW_REJECTED_RETRY_BUDGET_EXHAUSTED`,
/// `FW_REJECTED_EXCEEDS_CAPACITY`. On a refusal `*retry_after_ns` (if not
/// NULL) is how long until the refusing layer may admit a call (an open
/// breaker's or a rate limiter's Retry-After), `UINT64_MAX` when that layer
/// names no time; on any other status it is 0. `*last_result` (if not NULL)
/// is the last attempt's result, 0 when none ran. The outermost layer,
/// graceful degradation, is the caller's: on a status other than `FW_OK`,
/// serve a fallback or a stale value (`fw_stale_cache_serve_stale`).
#[no_mangle]
pub unsafe extern "C" fn fw_pipeline_call(
    pipeline: *const fw_pipeline_t,
    f: fw_pipeline_fn,
    user_data: *mut c_void,
    last_result: *mut i32,
    retry_after_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        let p = try_handle!(pipeline);
        let f = try_fn!(f);
        let mut attempt = 0u32;
        let mut last = 0i32;
        let result = p.call_with(
            |r: &Result<(), i32>| match r {
                Ok(()) => outcome_of(0),
                Err(code) => outcome_of(*code),
            },
            |deadline| {
                attempt += 1;
                // SAFETY: `f` is a valid C function (contract); `user_data`
                // is passed back untouched.
                last = unsafe { f(user_data, attempt, deadline.as_nanos()) };
                if last == 0 {
                    Ok(())
                } else {
                    Err(last)
                }
            },
        );
        put(last_result, last);
        match result {
            Ok(()) => {
                put(retry_after_ns, 0);
                FW_OK
            }
            Err(Error::Inner(_)) => {
                put(retry_after_ns, 0);
                FW_ECALL
            }
            Err(Error::Rejected(r)) => {
                let wait = wait_ns(r.retry_after());
                put(retry_after_ns, wait);
                rejected(r)
            }
        }
    })
}

/// What a callback's result means: 0 success, > 0 the dependency's
/// failure, < 0 a failure that is not its fault (counted as neither).
fn outcome_of(result: i32) -> Outcome {
    match result {
        0 => Outcome::Success,
        r if r > 0 => Outcome::Failure,
        _ => Outcome::Ignore,
    }
}

/// One call through a pipeline in progress, for loops run outside failwell
/// (an event loop that sleeps with its own timer): `fw_pipeline_begin`,
/// then per attempt `fw_pipeline_admit`, the call, `fw_pipeline_finish`,
/// and `fw_pipeline_next` for whether and when to try again. Not
/// thread-safe: it belongs to one call (it may move between threads, used
/// by one at a time). It keeps its pipeline alive; free it with
/// `fw_pipeline_run_free`.
#[derive(Debug)]
pub struct fw_pipeline_run_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_owned`.
unsafe impl Owned for fw_pipeline_run_t {
    type Target = PipelineRun;
}

/// What a `fw_pipeline_run_t` stands for.
#[derive(Debug)]
pub(crate) struct PipelineRun {
    pipeline: Arc<Pipeline>,
    run: Run,
    /// The attempt admitted and not finished yet.
    attempt: Option<Attempt>,
    /// How the last attempt ended, for `fw_pipeline_next`.
    ended: Option<Ended>,
}

impl Drop for PipelineRun {
    fn drop(&mut self) {
        if let Some(a) = self.attempt.take() {
            self.pipeline.finish(a, Outcome::Ignore);
        }
    }
}

/// Starts one call through the pipeline into `*out`: fixes the total
/// deadline — the earlier of the pipeline's `total_timeout` from now and
/// `deadline_ns` (an instant from `fw_deadline_after`; 0 for none) — and
/// begins the retry run. `FW_REJECTED_DEADLINE_EXCEEDED` when the pipeline
/// has a retry policy and that deadline has passed (`*out` then NULL).
#[no_mangle]
pub unsafe extern "C" fn fw_pipeline_begin(
    pipeline: *const fw_pipeline_t,
    deadline_ns: u64,
    out: *mut *mut fw_pipeline_run_t,
) -> fw_status_t {
    guard(|| {
        let Some(p) = share(pipeline) else {
            return null_arg("fw_pipeline_begin", "pipeline");
        };
        let out = try_out!(out);
        let outer = (deadline_ns != 0).then(|| Deadline::at(deadline_ns));
        match p.begin(outer) {
            Ok(run) => {
                let r = PipelineRun {
                    pipeline: p,
                    run,
                    attempt: None,
                    ended: None,
                };
                out.write(new_owned(r));
                FW_OK
            }
            Err(rej) => {
                out.write(std::ptr::null_mut());
                rejected(rej)
            }
        }
    })
}

/// Admits the next attempt through the layers, in order (breaker, rate
/// limiter, adaptive limit, bulkhead). `FW_OK`: make the call now, bounded
/// by `*deadline_ns` (if not NULL; `UINT64_MAX` for none), then report it
/// with `fw_pipeline_finish`. A refusal (`FW_REJECTED_*`, what the layers
/// before it took given back uncounted): `*retry_after_ns` (if not NULL) is
/// the refusing layer's Retry-After, `UINT64_MAX` when it names none; ask
/// `fw_pipeline_next` whether to try again. `FW_EINVAL` while an admitted
/// attempt is not finished, and after `fw_pipeline_next` said to stop.
#[no_mangle]
pub unsafe extern "C" fn fw_pipeline_admit(
    run: *mut fw_pipeline_run_t,
    deadline_ns: *mut u64,
    retry_after_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        let r = try_owned!(run);
        if r.attempt.is_some() {
            return invalid("fw_pipeline_admit: the admitted attempt is not finished");
        }
        if r.run.is_stopped() {
            return invalid(
                "fw_pipeline_admit: fw_pipeline_next said to stop; the call has its answer",
            );
        }
        match r.pipeline.admit(&r.run) {
            Ok(a) => {
                put(deadline_ns, a.deadline().as_nanos());
                put(retry_after_ns, 0);
                r.attempt = Some(a);
                r.ended = None;
                FW_OK
            }
            Err(rej) => {
                put(retry_after_ns, wait_ns(rej.retry_after()));
                r.ended = Some(Ended::Refused(rej));
                rejected(rej)
            }
        }
    })
}

/// Reports the admitted attempt's result, as a `fw_pipeline_fn` would
/// return it: 0 success, > 0 a failure of the dependency (counted by the
/// breaker; retried), < 0 a failure that is not its fault (neither). Gives
/// the attempt's permits back. `FW_EINVAL` if no attempt is admitted.
#[no_mangle]
pub unsafe extern "C" fn fw_pipeline_finish(
    run: *mut fw_pipeline_run_t,
    result: i32,
) -> fw_status_t {
    guard(|| {
        let r = try_owned!(run);
        let Some(a) = r.attempt.take() else {
            return invalid("fw_pipeline_finish: no attempt is admitted");
        };
        let outcome = outcome_of(result);
        r.pipeline.finish(a, outcome);
        r.ended = Some(Ended::Outcome(outcome));
        FW_OK
    })
}

/// After an attempt was finished or refused: `FW_OK` — wait `*delay_ns`,
/// then admit the next attempt; `FW_ECALL` — stop: the call's answer is
/// that attempt's (its result, or its refusal; a success also ends here);
/// `FW_REJECTED_RETRY_BUDGET_EXHAUSTED` — the budget refused a retry.
/// Refusals are retried only if the retry policy says so, never sooner
/// than their Retry-After. Never blocks. `FW_EINVAL` before any attempt
/// ended, or while one is admitted.
#[no_mangle]
pub unsafe extern "C" fn fw_pipeline_next(
    run: *mut fw_pipeline_run_t,
    delay_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        let r = try_owned!(run);
        let delay_ns = try_out!(delay_ns);
        if r.attempt.is_some() {
            return invalid("fw_pipeline_next: the admitted attempt is not finished");
        }
        let Some(ended) = r.ended.take() else {
            return invalid("fw_pipeline_next: no attempt has ended since the last call");
        };
        match r.pipeline.next(&mut r.run, ended) {
            Ok(Some(d)) => {
                delay_ns.write(nanos(d));
                FW_OK
            }
            Ok(None) => FW_ECALL,
            Err(rej) => rejected(rej),
        }
    })
}

/// Frees a run; an attempt still admitted is finished as neither success
/// nor failure (its permits given back). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_pipeline_run_free(run: *mut fw_pipeline_run_t) {
    // SAFETY: `run` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_owned(run) });
}
