//! `fw_watchdog_*`, `fw_heartbeat_*` and `fw_gauge_*`: the watchdog, with
//! C callbacks.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;
use std::time::Duration;

use fw::clock::{Clock, MonotonicClock};
use fw::lock::Mutex;
use fw::watchdog::{Finding, FindingKind, GaugeGuard, Growth, Heartbeat, Watchdog};

use crate::boundary::*;
use crate::deadline::fw_timeout_pool_t;
use crate::events::*;

/// Core's names for settings, as the C API names them (struct fields and
/// arguments), for error messages.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[
    ("tick", "tick_ns"),
    ("idle_timeout", "idle_timeout_ns"),
    ("timeout", "timeout_ns"),
];

/// A watchdog: one OS thread, stopped and joined by `fw_watchdog_free`.
#[derive(Debug)]
pub struct fw_watchdog_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_watchdog_t {
    type Target = Watchdog;
}

/// A registered heartbeat; `fw_heartbeat_free` unregisters it. Beating is
/// thread-safe.
#[derive(Debug)]
pub struct fw_heartbeat_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_heartbeat_t {
    type Target = Heartbeat;
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
        tick_ns: nanos(fw::watchdog::DEFAULT_TICK),
        thread_leak_factor: fw::watchdog::DEFAULT_THREAD_LEAK_FACTOR,
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
        let out = try_out!(out);
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
                out.write(new_handle(w));
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
    // SAFETY: `watchdog` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(watchdog) });
}

/// Registers a heartbeat `name` that must beat every `timeout_ns` (> 0:
/// zero is `FW_EINVAL` naming `timeout_ns`).
#[no_mangle]
pub unsafe extern "C" fn fw_watchdog_heartbeat(
    watchdog: *const fw_watchdog_t,
    name: *const c_char,
    timeout_ns: u64,
    out: *mut *mut fw_heartbeat_t,
) -> fw_status_t {
    guard(|| {
        let w = try_handle!(watchdog);
        let name = try_cstr!(name).to_string_lossy().into_owned();
        let out = try_out!(out);
        match w.heartbeat(name, Duration::from_nanos(timeout_ns)) {
            Ok(hb) => {
                out.write(new_handle(hb));
                FW_OK
            }
            Err(e) => config_error("fw_watchdog_heartbeat", e, C_FIELDS),
        }
    })
}

/// Proves progress now.
#[no_mangle]
pub unsafe extern "C" fn fw_heartbeat_beat(heartbeat: *const fw_heartbeat_t) -> fw_status_t {
    guard(|| {
        let h = try_handle!(heartbeat);
        h.beat();
        FW_OK
    })
}

/// Unregisters and frees a heartbeat. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_heartbeat_free(heartbeat: *mut fw_heartbeat_t) {
    // SAFETY: `heartbeat` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(heartbeat) });
}

/// Reads a gauge: returns the count now (open connections, descriptors,
/// queue length). Called on the watchdog's thread; must be thread-safe and
/// must not unwind into failwell.
pub type fw_gauge_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> u64>;

/// A registered gauge; `fw_gauge_free` unregisters it.
#[derive(Debug)]
pub struct fw_gauge_t {
    _opaque: (),
}

/// What a `fw_gauge_t` stands for.
#[derive(Debug)]
pub(crate) struct Gauge {
    guard: GaugeGuard,
    /// Held across a read of the caller's function; cleared by
    /// `fw_gauge_free` after the guard unregisters the gauge, so once free
    /// returns no read runs or will run.
    live: Arc<Mutex<bool>>,
}

// SAFETY: never constructed; its pointers come from `new_owned`.
unsafe impl Owned for fw_gauge_t {
    type Target = Gauge;
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
        let w = try_handle!(watchdog);
        let name = try_cstr!(name).to_string_lossy().into_owned();
        let out = try_out!(out);
        let read = try_fn!(read);
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
        let live = Arc::new(Mutex::new(true));
        let reading = Arc::clone(&live);
        let data = user_data as usize; // the caller vouches for it
        let g = w.gauge(name, growth, move || {
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
        out.write(new_owned(Gauge { guard: g, live }));
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
        let w = try_handle!(watchdog);
        let name = try_cstr!(name).to_string_lossy().into_owned();
        let p = try_handle!(pool);
        let out = try_out!(out);
        let g = w.watch_pool(name, p.clone(), max_abandoned);
        out.write(new_owned(Gauge {
            guard: g,
            live: Arc::new(Mutex::new(true)),
        }));
        FW_OK
    })
}

/// Unregisters and frees a gauge; when it returns, its `read` is not
/// running and will not be called again. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_gauge_free(gauge: *mut fw_gauge_t) {
    guard_void(|| {
        if gauge.is_null() {
            return;
        }
        // SAFETY: came from `fw_watchdog_gauge` / `_watch_pool`, freed
        // once (the documented contract).
        let Gauge { guard, live } = unsafe { take_owned(gauge) };
        drop(guard);
        // Waits for a read in progress; later reads see `false`.
        *live.lock() = false;
    });
}
