//! `fw_breaker_*`: the circuit breaker.

use std::ffi::{c_void, CString};
use std::time::Duration;

pub(crate) use failwell_fleet::AnyBreaker;

use fw::breaker::{
    CircuitBreaker, Outcome, PermitToken, Settings, State, Window, DEFAULT_WINDOW_BUCKETS,
    DEFAULT_WINDOW_CALLS,
};

use crate::boundary::*;
use crate::events::{fw_callback_t, fw_event_t, FW_EVENT_BREAKER_TRANSITION};

/// Core's names for settings, as the C API names them (struct fields and
/// arguments), for error messages.
/// cbindgen:ignore
pub(crate) const C_FIELDS: &[(&str, &str)] = &[
    ("failure_rate_threshold", "failure_rate"),
    ("slow_call_rate_threshold", "slow_call_rate"),
    ("window", "window_calls"),
    ("window.length", "window_ms"),
    ("window.buckets", "window_buckets"),
    ("slow_call_duration", "slow_call_ms"),
    ("half_open_max_wait", "half_open_max_wait_ms"),
    ("open_for", "open_for_ms"),
    ("open_for_max", "open_for_max_ms"),
    (
        "trip_policy",
        "consecutive_failures/failure_rate/slow_call_rate",
    ),
];

/// A circuit breaker. Thread-safe: share the pointer between threads; free
/// it once, after every thread is done with it and its permits.
#[derive(Debug)]
pub struct fw_breaker_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_breaker_t {
    type Target = AnyBreaker;
}

/// A permit from a breaker: a plain value (no allocation), to be recorded
/// exactly once on the breaker it came from with `fw_breaker_record` (or
/// `fw_breaker_success` / `_failure` / `_ignore`). Its fields are private
/// to failwell. A permit never recorded keeps its half-open slot until that
/// half-open ends; recording one twice may count it twice but never
/// corrupts the breaker.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_breaker_permit_t {
    pub _word: u64,
    pub _start: u64,
}

/// A breaker's state.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum fw_breaker_state_t {
    FW_BREAKER_CLOSED = 0,
    FW_BREAKER_OPEN = 1,
    FW_BREAKER_HALF_OPEN = 2,
    FW_BREAKER_FORCED_OPEN = 3,
    FW_BREAKER_DISABLED = 4,
    FW_BREAKER_METRICS_ONLY = 5,
}

fn state(s: State) -> fw_breaker_state_t {
    use fw_breaker_state_t::*;
    match s {
        State::Closed => FW_BREAKER_CLOSED,
        State::Open => FW_BREAKER_OPEN,
        State::HalfOpen => FW_BREAKER_HALF_OPEN,
        State::ForcedOpen => FW_BREAKER_FORCED_OPEN,
        State::Disabled => FW_BREAKER_DISABLED,
        State::MetricsOnly => FW_BREAKER_METRICS_ONLY,
    }
}

/// How a call went: one of the `FW_OUTCOME_*` constants (an integer type, so that no value a caller passes can be
/// undefined behaviour on the Rust side; other values are `FW_EINVAL`).
pub type fw_outcome_t = u32;

/// The call succeeded.
pub const FW_OUTCOME_SUCCESS: fw_outcome_t = 0;
/// The call failed.
pub const FW_OUTCOME_FAILURE: fw_outcome_t = 1;
/// Neither: not counted; frees a half-open probe slot.
pub const FW_OUTCOME_IGNORE: fw_outcome_t = 2;

/// Breaker configuration. Start from `fw_breaker_config_default()`; a zero
/// in a policy's field turns that policy off. Durations in milliseconds.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_breaker_config_t {
    /// Trip after this many failures in a row; 0 = off (default 0).
    pub consecutive_failures: u32,
    /// Trip when the window's failure rate reaches this, in (0, 1]; 0 = off
    /// (default 0.5).
    pub failure_rate: f64,
    /// Count window: the last N calls (default 100). Used when
    /// `window_ms` is 0.
    pub window_calls: u32,
    /// Time window length; 0 = use the count window (default 0).
    pub window_ms: u64,
    /// Buckets of the time window (default 10).
    pub window_buckets: u32,
    /// Trip when the window's slow-call rate reaches this, in (0, 1]; 0 =
    /// off (default 0).
    pub slow_call_rate: f64,
    /// A call at least this long is slow (default 60000).
    pub slow_call_ms: u64,
    /// Fewest calls before a rate may trip; 0 = the default (the count
    /// window's size up to 100, or 100).
    pub minimum_calls: u32,
    /// Probes admitted in half-open, 1..=1023 (default 10).
    pub half_open_calls: u32,
    /// Half-open without a verdict this long reopens (default 60000).
    pub half_open_max_wait_ms: u64,
    /// Open period (default 60000).
    pub open_for_ms: u64,
    /// Growth of the open period per consecutive trip, ≥ 1 (default 1).
    pub open_for_multiplier: f64,
    /// Cap of the open period; 0 = `open_for_ms` (default 0).
    pub open_for_max_ms: u64,
}

/// The defaults (resilience4j's; see the Rust docs of `Builder`): core's
/// `Settings::default()` in C's units.
#[no_mangle]
pub extern "C" fn fw_breaker_config_default() -> fw_breaker_config_t {
    to_c(&Settings::default())
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn ms_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Core's plain settings in C's fields and units.
fn to_c(s: &Settings) -> fw_breaker_config_t {
    let (window_calls, window_ms, window_buckets) = match s.window {
        Window::Count(n) => (n, 0, DEFAULT_WINDOW_BUCKETS),
        Window::Time { length, buckets } => (DEFAULT_WINDOW_CALLS, ms_of(length), buckets),
    };
    fw_breaker_config_t {
        consecutive_failures: s.consecutive_failures,
        failure_rate: s.failure_rate,
        window_calls,
        window_ms,
        window_buckets,
        slow_call_rate: s.slow_call_rate,
        slow_call_ms: ms_of(s.slow_call_duration),
        minimum_calls: s.minimum_calls,
        half_open_calls: s.half_open_calls,
        half_open_max_wait_ms: ms_of(s.half_open_max_wait),
        open_for_ms: ms_of(s.open_for),
        open_for_multiplier: s.open_for_multiplier,
        open_for_max_ms: ms_of(s.open_for_max),
    }
}

/// A C configuration as core's plain settings (a time window when
/// `window_ms` is set, else the count window).
pub(crate) fn from_c(c: &fw_breaker_config_t) -> Settings {
    Settings {
        consecutive_failures: c.consecutive_failures,
        failure_rate: c.failure_rate,
        window: if c.window_ms > 0 {
            Window::Time {
                length: ms(c.window_ms),
                buckets: c.window_buckets,
            }
        } else {
            Window::Count(c.window_calls)
        },
        slow_call_rate: c.slow_call_rate,
        slow_call_duration: ms(c.slow_call_ms),
        minimum_calls: c.minimum_calls,
        half_open_calls: c.half_open_calls,
        half_open_max_wait: ms(c.half_open_max_wait_ms),
        open_for: ms(c.open_for_ms),
        open_for_multiplier: c.open_for_multiplier,
        open_for_max: ms(c.open_for_max_ms),
    }
}

fn build(c: &fw_breaker_config_t) -> Result<CircuitBreaker, fw::ConfigError> {
    from_c(c).builder()?.build()
}

/// Changes a live breaker's thresholds, counts and durations to those of
/// `*config`, keeping its state and counts (start from
/// `fw_breaker_config_get`). Which policies are on (zero or not) and the
/// window must stay as built: changing them is `FW_EINVAL` naming
/// `trip_policy` or `window`, as is any invalid value; a refused change
/// changes nothing. A breaker in a host region or in the fleet keeps the
/// configuration it was built with (`FW_EINVAL`). Thread-safe; callers
/// are not blocked.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_reconfigure(
    breaker: *const fw_breaker_t,
    config: *const fw_breaker_config_t,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        let c = try_ref!(config);
        let wanted = match from_c(c).builder() {
            Ok(w) => w,
            Err(e) => return config_error("fw_breaker_reconfigure", e, C_FIELDS),
        };
        match AnyBreaker::reconfigure(b, |_| wanted) {
            Ok(()) => FW_OK,
            Err(e) => config_error("fw_breaker_reconfigure", e, C_FIELDS),
        }
    })
}

/// Writes the configuration in force into `*out` (a policy that is off
/// reads 0).
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_config_get(
    breaker: *const fw_breaker_t,
    out: *mut fw_breaker_config_t,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        let out = try_out!(out);
        out.write(to_c(&Settings::from_config(&b.config())));
        FW_OK
    })
}

/// Creates a breaker. `config` may be NULL for the defaults. Writes the new
/// handle to `*out`. `FW_EINVAL` (and a message naming the field) for an
/// invalid configuration or a NULL `out`.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_new(
    config: *const fw_breaker_config_t,
    out: *mut *mut fw_breaker_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        let c = config_or(config, fw_breaker_config_default);
        match build(&c) {
            Ok(b) => {
                out.write(new_handle::<fw_breaker_t>(AnyBreaker::local(b)));
                FW_OK
            }
            Err(e) => config_error("fw_breaker_new", e, C_FIELDS),
        }
    })
}

/// Frees a breaker made by `fw_breaker_new`. NULL is a no-op. Record
/// every permit first: a permit is recorded on its breaker.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_free(breaker: *mut fw_breaker_t) {
    // SAFETY: `breaker` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(breaker) });
}

/// Asks to make a call. On `FW_OK`, `*permit` is a permit to record; on
/// `FW_REJECTED_CIRCUIT_OPEN`, `*retry_after_ns` (if not NULL) is how long
/// until a probe may pass, or `UINT64_MAX` when unknown (forced open).
/// Never blocks, never allocates.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_acquire(
    breaker: *const fw_breaker_t,
    permit: *mut fw_breaker_permit_t,
    retry_after_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        // The closed fast path makes no call; everything else (the checks'
        // messages included, and a fleet breaker, whose fork check may
        // start a thread) is one out-of-line call, so the export needs no
        // stack frame on the fast path.
        let local = borrow(breaker).and_then(AnyBreaker::local_only);
        if let (Some(b), Some(out)) = (local, Out::new(permit)) {
            if let Some(t) = b.try_acquire_closed() {
                let (word, start) = t.into_raw();
                out.write(fw_breaker_permit_t {
                    _word: word,
                    _start: start,
                });
                return FW_OK;
            }
        }
        acquire_slow(breaker, permit, retry_after_ns)
    })
}

/// Every case of `fw_breaker_acquire` but Closed, out of line.
#[cold]
#[inline(never)]
fn acquire_slow(
    breaker: *const fw_breaker_t,
    permit: *mut fw_breaker_permit_t,
    retry_after_ns: *mut u64,
) -> fw_status_t {
    let b = try_handle!(breaker, "fw_breaker_acquire");
    let permit = try_out!(permit, "fw_breaker_acquire");
    match b.try_acquire() {
        Ok(p) => {
            let (word, start) = p.into_token().into_raw();
            permit.write(fw_breaker_permit_t {
                _word: word,
                _start: start,
            });
            FW_OK
        }
        Err(r) => {
            let wait = wait_ns(r.retry_after());
            put(retry_after_ns, wait);
            rejected(r)
        }
    }
}

/// Records how the call behind `permit` went. `duration_ns < 0` lets the
/// breaker measure the duration itself (for the slow-call policy).
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_record(
    breaker: *const fw_breaker_t,
    permit: *const fw_breaker_permit_t,
    outcome: fw_outcome_t,
    duration_ns: i64,
) -> fw_status_t {
    guard(|| {
        if outcome == FW_OUTCOME_SUCCESS
            && duration_ns < 0
            && recorded_closed_success(breaker, permit)
        {
            return FW_OK;
        }
        record_slow("fw_breaker_record", breaker, permit, outcome, duration_ns)
    })
}

/// The fast path of `fw_breaker_record` and `fw_breaker_success`: records a
/// success taken in Closed (on a breaker with no slow-call policy) and
/// returns true; false, recording nothing, in every other case. It makes no
/// call, so neither export needs a stack frame for it.
#[inline(always)]
fn recorded_closed_success(
    breaker: *const fw_breaker_t,
    permit: *const fw_breaker_permit_t,
) -> bool {
    let local = borrow(breaker).and_then(AnyBreaker::local_only);
    // SAFETY: a non-NULL `permit` points to a permit (contract).
    match (local, unsafe { permit.as_ref() }) {
        (Some(b), Some(p)) => b
            .try_record_closed_success(PermitToken::from_raw(p._word, p._start))
            .is_ok(),
        _ => false,
    }
}

/// Every case of `fw_breaker_record` but a closed success, out of line
/// (and marked cold so the closed success falls through); `func` is the
/// export called, for messages.
#[cold]
#[inline(never)]
fn record_slow(
    func: &'static str,
    breaker: *const fw_breaker_t,
    permit: *const fw_breaker_permit_t,
    outcome: fw_outcome_t,
    duration_ns: i64,
) -> fw_status_t {
    let b = try_handle!(breaker, func);
    let p = try_ref!(permit, func);
    let outcome = match outcome {
        FW_OUTCOME_SUCCESS => Outcome::Success,
        FW_OUTCOME_FAILURE => Outcome::Failure,
        FW_OUTCOME_IGNORE => Outcome::Ignore,
        other => return bad_outcome(other),
    };
    let d = u64::try_from(duration_ns).ok().map(Duration::from_nanos);
    b.record_token(PermitToken::from_raw(p._word, p._start), outcome, d);
    FW_OK
}

#[cold]
#[inline(never)]
fn bad_outcome(other: fw_outcome_t) -> fw_status_t {
    invalid(format!("fw_breaker_record: {other} is not an fw_outcome_t"))
}

/// `fw_breaker_record(breaker, permit, FW_OUTCOME_SUCCESS, -1)`.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_success(
    breaker: *const fw_breaker_t,
    permit: *const fw_breaker_permit_t,
) -> fw_status_t {
    // Its own copy of the fast path rather than a jump to
    // `fw_breaker_record`: this is the call every closed pass makes.
    guard(|| {
        if recorded_closed_success(breaker, permit) {
            return FW_OK;
        }
        record_slow(
            "fw_breaker_success",
            breaker,
            permit,
            FW_OUTCOME_SUCCESS,
            -1,
        )
    })
}

/// `fw_breaker_record(breaker, permit, FW_OUTCOME_FAILURE, -1)`.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_failure(
    breaker: *const fw_breaker_t,
    permit: *const fw_breaker_permit_t,
) -> fw_status_t {
    guard(|| {
        record_slow(
            "fw_breaker_failure",
            breaker,
            permit,
            FW_OUTCOME_FAILURE,
            -1,
        )
    })
}

/// `fw_breaker_record(breaker, permit, FW_OUTCOME_IGNORE, -1)`: not counted;
/// frees its half-open slot.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_ignore(
    breaker: *const fw_breaker_t,
    permit: *const fw_breaker_permit_t,
) -> fw_status_t {
    guard(|| record_slow("fw_breaker_ignore", breaker, permit, FW_OUTCOME_IGNORE, -1))
}

/// The current state. Never blocks.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_state(
    breaker: *const fw_breaker_t,
    out: *mut fw_breaker_state_t,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        let out = try_out!(out);
        out.write(state(b.state()));
        FW_OK
    })
}

/// How long until a call would be admitted: 0 if now, `UINT64_MAX` if only
/// a manual change can admit one.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_retry_after(
    breaker: *const fw_breaker_t,
    out_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        let out_ns = try_out!(out_ns);
        out_ns.write(wait_ns(b.retry_after()));
        FW_OK
    })
}

/// A manual state change: one of the `FW_BREAKER_*` change constants (an integer type, so that no value a caller passes can be
/// undefined behaviour on the Rust side; other values are `FW_EINVAL`).
pub type fw_breaker_manual_t = u32;

/// Reject everything until another manual change.
pub const FW_BREAKER_FORCE_OPEN: fw_breaker_manual_t = 0;
/// Pass everything, count nothing.
pub const FW_BREAKER_DISABLE: fw_breaker_manual_t = 1;
/// Pass everything, count, never trip.
pub const FW_BREAKER_METRICS_ONLY_MODE: fw_breaker_manual_t = 2;
/// Back to closed with empty windows.
pub const FW_BREAKER_RESET: fw_breaker_manual_t = 3;

/// Applies a manual state change.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_set_manual(
    breaker: *const fw_breaker_t,
    change: fw_breaker_manual_t,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        match change {
            FW_BREAKER_FORCE_OPEN => b.force_open(),
            FW_BREAKER_DISABLE => b.disable(),
            FW_BREAKER_METRICS_ONLY_MODE => b.metrics_only(),
            FW_BREAKER_RESET => b.reset(),
            other => {
                return invalid(format!(
                    "fw_breaker_set_manual: {other} is not an fw_breaker_manual_t"
                ))
            }
        }
        FW_OK
    })
}

/// Opens the breaker for `duration_ns` from now (a server's `Retry-After`);
/// then the first caller becomes a half-open probe.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_open_for(
    breaker: *const fw_breaker_t,
    duration_ns: u64,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        b.open_for(Duration::from_nanos(duration_ns));
        FW_OK
    })
}

/// Counters of a breaker; see the Rust `Snapshot` for each field.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_breaker_snapshot_t {
    pub state: fw_breaker_state_t,
    pub calls: u64,
    pub successes: u64,
    pub failures: u64,
    pub slow_calls: u64,
    pub rejected: u64,
    pub ignored: u64,
    pub transitions: u64,
    pub opened: u64,
    pub window_calls: u64,
    pub failure_rate: f64,
    pub slow_call_rate: f64,
    /// The generation (one more at every transition).
    pub generation: u64,
    /// Failures in a row in the current generation.
    pub consecutive_failures: u64,
    /// Listener calls that panicked (caught and counted).
    pub listener_panics: u64,
}

/// Copies the breaker's counters into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_snapshot(
    breaker: *const fw_breaker_t,
    out: *mut fw_breaker_snapshot_t,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        let out = try_out!(out);
        let s = b.snapshot();
        out.write(fw_breaker_snapshot_t {
            state: state(s.state),
            calls: s.calls,
            successes: s.successes,
            failures: s.failures,
            slow_calls: s.slow_calls,
            rejected: s.rejected,
            ignored: s.ignored,
            transitions: s.transitions,
            opened: s.opened,
            window_calls: s.window_calls,
            failure_rate: s.failure_rate,
            slow_call_rate: s.slow_call_rate,
            generation: s.generation,
            consecutive_failures: s.consecutive_failures,
            listener_panics: s.listener_panics,
        });
        FW_OK
    })
}

/// The event a listener gets for transition `t`, and the string it points
/// to (kept alive by the caller for the call).
fn transition_event(t: &fw::breaker::Transition) -> (fw_event_t, CString) {
    let text = CString::new(format!("breaker {} -> {}", t.from, t.to)).unwrap_or_default();
    let mut e = fw_event_t::empty(FW_EVENT_BREAKER_TRANSITION, t.at_nanos, text.as_ptr());
    e.from = state(t.from);
    e.to = state(t.to);
    (e, text)
}

/// Registers a transition listener with `user_data` (passed back
/// untouched): it receives `FW_EVENT_BREAKER_TRANSITION` events on the
/// thread that made the change, after the breaker's lock is released. It
/// must not free the breaker. `user_data` must stay valid for as long as
/// the breaker lives (pipelines and registries holding the breaker keep it
/// alive); for a listener that can be removed, or whose `user_data` the
/// library should free, use `fw_breaker_add_listener_owned`.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_add_listener(
    breaker: *const fw_breaker_t,
    listener: fw_callback_t,
    user_data: *mut c_void,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        let f = try_fn!(listener);
        // Owned by no one: nothing to free (the caller keeps `user_data`).
        listen(b, f, OwnedUserData::new(user_data, None));
        FW_OK
    })
}

/// Registers C listener `f` with `user_data` on `b`; the closure owns
/// `user_data` (freed, if `user_data` says how, after its last call).
fn listen(
    b: &AnyBreaker,
    f: unsafe extern "C" fn(event: *const fw_event_t, user_data: *mut c_void),
    owned: OwnedUserData,
) -> fw::breaker::ListenerId {
    b.add_listener(move |t| {
        // The whole of `owned` is the closure's (not only its `data`
        // field, as a disjoint capture would take): it is freed with the
        // closure, after the last call.
        let owned = &owned;
        let (e, _text) = transition_event(t);
        // SAFETY: `f` is a valid C function pointer (contract); `e` and its
        // string live for the call; `owned` is not freed while the closure
        // holding it can run.
        unsafe { f(&e, owned.data as *mut c_void) };
    })
}

/// `user_data` with the function that frees it, called once when the
/// listener holding it is gone.
struct OwnedUserData {
    data: usize,
    free: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
}

impl OwnedUserData {
    /// The caller vouches for the thread safety of `user_data`.
    fn new(user_data: *mut c_void, free: Option<unsafe extern "C" fn(*mut c_void)>) -> Self {
        OwnedUserData {
            data: user_data as usize,
            free,
        }
    }
}

impl Drop for OwnedUserData {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: `free` is a valid C function pointer (contract), given
            // the `user_data` registered with it, once: this value is
            // dropped once, when no call of the listener runs any more.
            unsafe { free(self.data as *mut c_void) };
        }
    }
}

/// As `fw_breaker_add_listener`, but the library owns `user_data`:
/// `free_user_data(user_data)` (if not NULL) is called exactly once, after
/// the listener's last call, when it is removed
/// (`fw_breaker_remove_listener`, once a call running at that moment has
/// returned) or when the breaker is freed by its last holder. `*out_id`
/// (never 0) identifies the listener for `fw_breaker_remove_listener`. On
/// an error nothing is registered and `free_user_data` is not called.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_add_listener_owned(
    breaker: *const fw_breaker_t,
    listener: fw_callback_t,
    user_data: *mut c_void,
    free_user_data: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    out_id: *mut u64,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        let f = try_fn!(listener);
        let out = try_out!(out_id);
        let id = listen(b, f, OwnedUserData::new(user_data, free_user_data));
        out.write(id.into_raw());
        FW_OK
    })
}

/// Removes the listener `id` (from `fw_breaker_add_listener_owned`):
/// `*out_removed` (may be NULL) says whether it was registered. It gets no
/// call that starts after this returns; a call already running finishes,
/// and then its `free_user_data` runs.
#[no_mangle]
pub unsafe extern "C" fn fw_breaker_remove_listener(
    breaker: *const fw_breaker_t,
    id: u64,
    out_removed: *mut bool,
) -> fw_status_t {
    guard(|| {
        let b = try_handle!(breaker);
        let removed = b.remove_listener(fw::breaker::ListenerId::from_raw(id));
        // SAFETY: a non-NULL out-parameter is valid and writable (contract).
        if let Some(out) = unsafe { out_removed.as_mut() } {
            *out = removed;
        }
        FW_OK
    })
}
