//! `fw_watchdog_*`, `fw_heartbeat_*` and `fw_health_*`: the watchdog and
//! the health registry, with C callbacks.

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::Arc;
use std::time::Duration;

use fw::health::{HealthRegistry, Status};
use fw::lock::Mutex;
use fw::watchdog::{Finding, FindingKind, GaugeGuard, Growth, Heartbeat, Watchdog};

use crate::boundary::*;
use crate::breaker::fw_breaker_t;
use crate::deadline::fw_timeout_pool_t;
use crate::events::*;
use fw::clock::{Clock, MonotonicClock};

/// Core's names for settings, as the C API names them (struct fields and
/// arguments), for error messages.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[
    ("tick", "tick_ns"),
    ("interval", "interval_ns"),
    ("idle_timeout", "idle_timeout_ns"),
];

/// A watchdog: one OS thread, stopped and joined by `fw_watchdog_free`.
#[derive(Debug)]
pub struct fw_watchdog_t {
    inner: Arc<Watchdog>,
}

/// A registered heartbeat; `fw_heartbeat_free` unregisters it. Beating is
/// thread-safe.
#[derive(Debug)]
pub struct fw_heartbeat_t {
    inner: Heartbeat,
}

/// Watchdog configuration.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_watchdog_config_t {
    /// How often it looks (≥ 1 ms; default 1 s).
    pub tick_ns: u64,
    /// Thread leak: more than this × the threads at start; 0 = off
    /// (default 2).
    pub thread_leak_factor: f64,
    /// Thread leak: more than this many threads; 0 = no ceiling (default 0).
    pub thread_ceiling: u64,
    /// Look for lock cycles (needs the library built with the
    /// `deadlock-detection` feature; default false).
    pub deadlock_detection: bool,
}

/// The defaults.
#[no_mangle]
pub extern "C" fn fw_watchdog_config_default() -> fw_watchdog_config_t {
    fw_watchdog_config_t {
        tick_ns: 1_000_000_000,
        thread_leak_factor: 2.0,
        thread_ceiling: 0,
        deadlock_detection: false,
    }
}

fn deliver(f: &Finding, cb: unsafe extern "C" fn(*const fw_event_t, *mut c_void), data: usize) {
    let (kind, name, value, limit) = match &f.kind {
        FindingKind::Stall {
            name,
            silent_for,
            timeout,
            ..
        } => (
            FW_FINDING_STALL,
            Some(name.clone()),
            silent_for.as_nanos() as u64,
            timeout.as_nanos() as u64,
        ),
        FindingKind::Deadlock { threads } => (FW_FINDING_DEADLOCK, None, threads.len() as u64, 0),
        FindingKind::ThreadLeak { threads, limit, .. } => {
            (FW_FINDING_THREAD_LEAK, None, *threads, *limit)
        }
        FindingKind::GaugeLeak {
            name, value, limit, ..
        } => (FW_FINDING_GAUGE_LEAK, Some(name.clone()), *value, *limit),
        _ => (0, None, 0, 0),
    };
    let name = name.and_then(|n| CString::new(n).ok());
    let description = CString::new(f.to_string().replace('\0', "")).unwrap_or_default();
    let mut e = fw_event_t::empty(
        FW_EVENT_WATCHDOG_FINDING,
        MonotonicClock.now(),
        description.as_ptr(),
    );
    e.finding = kind;
    e.cleared = f.cleared;
    e.name = name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr());
    e.value = value;
    e.limit = limit;
    e.lasted_ns = f.lasted.as_nanos() as u64;
    // SAFETY: `cb` is a valid C function (contract); `e` and its strings
    // live for the call.
    unsafe { cb(&e, data as *mut c_void) };
}

/// Starts a watchdog (`config` NULL: the defaults) reporting
/// `FW_EVENT_WATCHDOG_FINDING` events to `callback` (NULL: to standard
/// error), on the watchdog's thread, into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_watchdog_new(
    config: *const fw_watchdog_config_t,
    callback: fw_callback_t,
    user_data: *mut c_void,
    out: *mut *mut fw_watchdog_t,
) -> fw_status_t {
    guard(|| {
        if out.is_null() {
            return invalid("fw_watchdog_new: `out` is NULL");
        }
        let c = config_or(config, fw_watchdog_config_default);
        let mut b = Watchdog::builder()
            .tick(Duration::from_nanos(c.tick_ns))
            .deadlock_detection(c.deadlock_detection);
        b = if c.thread_leak_factor == 0.0 {
            b.no_thread_leak_check()
        } else {
            b.thread_leak(
                c.thread_leak_factor,
                (c.thread_ceiling > 0).then_some(c.thread_ceiling),
            )
        };
        if let Some(cb) = callback {
            let data = user_data as usize; // the caller vouches for it
            b = b.on_finding(move |f| deliver(f, cb, data));
        }
        match b.build() {
            Ok(w) => {
                put(
                    out,
                    Box::into_raw(Box::new(fw_watchdog_t { inner: Arc::new(w) })),
                );
                FW_OK
            }
            Err(e) => config_error("fw_watchdog_new", e, C_FIELDS),
        }
    })
}

/// Stops the watchdog, joins its thread and frees it. NULL is a no-op.
/// Heartbeats registered with it must be freed first or after; both are
/// safe.
#[no_mangle]
pub unsafe extern "C" fn fw_watchdog_free(watchdog: *mut fw_watchdog_t) {
    if !watchdog.is_null() {
        // SAFETY: came from `fw_watchdog_new`, freed once.
        drop(unsafe { Box::from_raw(watchdog) });
    }
}

/// Registers a heartbeat `name` that must beat every `timeout_ns`.
#[no_mangle]
pub unsafe extern "C" fn fw_watchdog_heartbeat(
    watchdog: *const fw_watchdog_t,
    name: *const c_char,
    timeout_ns: u64,
    out: *mut *mut fw_heartbeat_t,
) -> fw_status_t {
    guard(|| {
        // SAFETY: non-NULL pointers come from `fw_watchdog_new`.
        let Some(w) = (unsafe { watchdog.as_ref() }) else {
            return invalid("fw_watchdog_heartbeat: `watchdog` is NULL");
        };
        if name.is_null() || out.is_null() {
            return invalid("fw_watchdog_heartbeat: `name` or `out` is NULL");
        }
        if timeout_ns == 0 {
            return invalid("fw_watchdog_heartbeat: `timeout_ns` must be > 0");
        }
        // SAFETY: a non-NULL `name` is NUL-terminated (contract).
        let name = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        let hb = w.inner.heartbeat(name, Duration::from_nanos(timeout_ns));
        put(out, Box::into_raw(Box::new(fw_heartbeat_t { inner: hb })));
        FW_OK
    })
}

/// Proves progress now.
#[no_mangle]
pub unsafe extern "C" fn fw_heartbeat_beat(heartbeat: *const fw_heartbeat_t) -> fw_status_t {
    guard(|| {
        // SAFETY: non-NULL pointers come from `fw_watchdog_heartbeat`.
        let Some(h) = (unsafe { heartbeat.as_ref() }) else {
            return invalid("fw_heartbeat_beat: `heartbeat` is NULL");
        };
        h.inner.beat();
        FW_OK
    })
}

/// Unregisters and frees a heartbeat. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_heartbeat_free(heartbeat: *mut fw_heartbeat_t) {
    if !heartbeat.is_null() {
        // SAFETY: came from `fw_watchdog_heartbeat`, freed once.
        drop(unsafe { Box::from_raw(heartbeat) });
    }
}

/// Reads a gauge: returns the count now (open connections, descriptors,
/// queue length). Called on the watchdog's thread; must be thread-safe and
/// must not unwind into failwell.
pub type fw_gauge_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> u64>;

/// A registered gauge; `fw_gauge_free` unregisters it.
#[derive(Debug)]
pub struct fw_gauge_t {
    // Field order: the guard unregisters first; then `live` makes sure no
    // read is running or will run.
    _guard: GaugeGuard,
    live: Arc<Mutex<bool>>,
}

/// Registers a gauge `name`: `read(user_data)` on every tick, reported as a
/// `FW_FINDING_GAUGE_LEAK` finding when above `factor` × `baseline`
/// (`factor` greater than 1; 0 = no growth limit) or above `ceiling` (0 =
/// none); at least one of the two must be set. `user_data` must stay valid until
/// `fw_gauge_free` returns: after that, `read` is not running and is never
/// called again.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn fw_watchdog_gauge(
    watchdog: *const fw_watchdog_t,
    name: *const c_char,
    read: fw_gauge_fn,
    user_data: *mut c_void,
    baseline: u64,
    factor: f64,
    ceiling: u64,
    out: *mut *mut fw_gauge_t,
) -> fw_status_t {
    guard(|| {
        // SAFETY: non-NULL pointers come from `fw_watchdog_new`.
        let Some(w) = (unsafe { watchdog.as_ref() }) else {
            return invalid("fw_watchdog_gauge: `watchdog` is NULL");
        };
        if name.is_null() || out.is_null() {
            return invalid("fw_watchdog_gauge: `name` or `out` is NULL");
        }
        let Some(read) = read else {
            return invalid("fw_watchdog_gauge: `read` is NULL");
        };
        let ceiling = (ceiling != 0).then_some(ceiling);
        let growth = if factor == 0.0 {
            match ceiling {
                Some(c) => Growth::ceiling_only(c),
                None => return invalid(
                    "fw_watchdog_gauge: `factor` and `ceiling` are both 0: nothing could be a leak",
                ),
            }
        } else {
            match Growth::new("factor", baseline, factor, ceiling) {
                Ok(g) => g,
                Err(e) => return config_error("fw_watchdog_gauge", e, C_FIELDS),
            }
        };
        // SAFETY: a non-NULL `name` is NUL-terminated (contract).
        let name = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        let live = Arc::new(Mutex::new(true));
        let reading = Arc::clone(&live);
        let data = user_data as usize; // the caller vouches for it
        let g = w.inner.gauge(name, growth, move || {
            // Held across the read, so `fw_gauge_free` waits for it.
            let alive = reading.lock();
            if *alive {
                // SAFETY: `read` is a valid C function and `user_data` is
                // valid until `fw_gauge_free` has cleared `alive` (contract).
                unsafe { read(data as *mut c_void) }
            } else {
                0
            }
        });
        put(out, Box::into_raw(Box::new(fw_gauge_t { _guard: g, live })));
        FW_OK
    })
}

/// Reports abandoned calls still running on `pool` (each holds a worker)
/// as a gauge leak named `name` when there are more than `max_abandoned`.
#[no_mangle]
pub unsafe extern "C" fn fw_watchdog_watch_pool(
    watchdog: *const fw_watchdog_t,
    name: *const c_char,
    pool: *const fw_timeout_pool_t,
    max_abandoned: u64,
    out: *mut *mut fw_gauge_t,
) -> fw_status_t {
    guard(|| {
        // SAFETY: non-NULL pointers come from their `_new` functions.
        let (Some(w), Some(p)) = (unsafe { watchdog.as_ref() }, unsafe { pool.as_ref() }) else {
            return invalid("fw_watchdog_watch_pool: `watchdog` or `pool` is NULL");
        };
        if name.is_null() || out.is_null() {
            return invalid("fw_watchdog_watch_pool: `name` or `out` is NULL");
        }
        // SAFETY: a non-NULL `name` is NUL-terminated (contract).
        let name = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        let g = w.inner.watch_pool(name, p.inner.clone(), max_abandoned);
        put(
            out,
            Box::into_raw(Box::new(fw_gauge_t {
                _guard: g,
                live: Arc::new(Mutex::new(true)),
            })),
        );
        FW_OK
    })
}

/// Unregisters and frees a gauge; when it returns, its `read` is not
/// running and will not be called again. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_gauge_free(gauge: *mut fw_gauge_t) {
    if !gauge.is_null() {
        // SAFETY: came from `fw_watchdog_gauge` / `_watch_pool`, freed once.
        let g = unsafe { Box::from_raw(gauge) };
        let fw_gauge_t { _guard, live } = *g;
        drop(_guard);
        // Waits for a read in progress; later reads see `false`.
        *live.lock() = false;
    }
}

/// A health registry with its background thread.
#[derive(Debug)]
pub struct fw_health_t {
    pub(crate) inner: Arc<HealthRegistry>,
    /// Held shared by every check while it runs the caller's function;
    /// `fw_health_free` takes it exclusively and clears it, so once free
    /// returns no check runs with the caller's data again.
    checks_open: Arc<std::sync::RwLock<bool>>,
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
        if out.is_null() {
            return invalid("fw_health_new: `out` is NULL");
        }
        match HealthRegistry::builder()
            .interval(Duration::from_nanos(interval_ns))
            .build()
        {
            Ok(h) => {
                put(
                    out,
                    Box::into_raw(Box::new(fw_health_t {
                        inner: Arc::new(h),
                        checks_open: Arc::new(std::sync::RwLock::new(true)),
                    })),
                );
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
    if !health.is_null() {
        // SAFETY: came from `fw_health_new`, freed once.
        let h = unsafe { Box::from_raw(health) };
        // Waits for every running check, then keeps any later run (a
        // round already started) from calling the caller's function.
        *h.checks_open
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = false;
        drop(h);
    }
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
        // SAFETY: non-NULL pointers come from `fw_health_new`.
        let Some(h) = (unsafe { health.as_ref() }) else {
            return invalid("fw_health_register: `health` is NULL");
        };
        let Some(check) = check else {
            return invalid("fw_health_register: `check` is NULL");
        };
        if name.is_null() {
            return invalid("fw_health_register: `name` is NULL");
        }
        // SAFETY: a non-NULL `name` is NUL-terminated (contract).
        let name = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        let data = user_data as usize; // the caller vouches for it
        let open = Arc::clone(&h.checks_open);
        let run = move || {
            let open = open
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
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
            .inner
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
        // SAFETY: non-NULL pointers come from their `_new` functions.
        let (Some(h), Some(b)) = (unsafe { health.as_ref() }, unsafe { breaker.as_ref() }) else {
            return invalid("fw_health_register_breaker: `health` or `breaker` is NULL");
        };
        if name.is_null() {
            return invalid("fw_health_register_breaker: `name` is NULL");
        }
        let when = match when_open {
            FW_HEALTH_DEGRADED => Status::Degraded,
            FW_HEALTH_UNHEALTHY => Status::Unhealthy,
            other => {
                return invalid(format!(
                    "fw_health_register_breaker: `when_open` {other} must be degraded or unhealthy"
                ))
            }
        };
        // SAFETY: a non-NULL `name` is NUL-terminated (contract).
        let name = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        match h.inner.register_breaker(name, b.inner.clone(), when) {
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
        // SAFETY: non-NULL pointers come from `fw_health_new`.
        let Some(h) = (unsafe { health.as_ref() }) else {
            return invalid("fw_health_status: `health` is NULL");
        };
        if out.is_null() {
            return invalid("fw_health_status: `out` is NULL");
        }
        let r = if run_now {
            h.inner.check_now()
        } else {
            h.inner.report()
        };
        put(out, status_code(r.status));
        FW_OK
    })
}
