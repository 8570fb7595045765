//! `fw_fleet_*`: a connection to a fleet's Redis, and the rate limiters
//! and circuit breakers every instance of a service shares through it.
//! They come back as the ordinary `fw_rate_limiter_t` and `fw_breaker_t`
//! handles.

use std::ffi::{c_char, CStr};
use std::sync::Arc;
use std::time::Duration;

use failwell_fleet::{Fleet, FleetError, OnUnavailable};
use fw::breaker::CircuitBreaker;

use crate::boundary::*;
use crate::breaker::{
    from_c as breaker_settings, fw_breaker_config_default, fw_breaker_config_t, fw_breaker_t,
    AnyBreaker, C_FIELDS as BREAKER_FIELDS,
};
use crate::metrics::fw_metrics_t;
use crate::rate_limit::{builder_of, fw_rate_limiter_config_t, fw_rate_limiter_t, AnyRateLimiter};

/// The fleet's settings' core names, as the C API names them.
/// cbindgen:ignore
const FLEET_FIELDS: &[(&str, &str)] = &[
    ("connect_timeout", "connect_timeout_ms"),
    ("io_timeout", "io_timeout_ms"),
];

/// A fleet limiter's settings' core names, as the C API names them.
/// cbindgen:ignore
const LIMITER_FIELDS: &[(&str, &str)] = &[
    ("rate", "requests/period_ns"),
    ("instances", "fleet_config.instances"),
];

/// A fleet breaker's own settings' core names, as the C API names them.
/// cbindgen:ignore
const FLEET_BREAKER_FIELDS: &[(&str, &str)] = &[
    ("quorum", "fleet_config.quorum"),
    ("sync_every", "fleet_config.sync_every_ms"),
    ("probe_claim", "fleet_config.probe_claim_ms"),
    ("window", "fleet_config.window_ms"),
];

/// A connection to the fleet's Redis: a small pool of connections with
/// connect, read and write timeouts, and failwell's own breaker around
/// Redis. Thread-safe and fork-safe (a child of `fork()` opens connections
/// of its own). The limiters and breakers made from it keep it alive:
/// free it whenever the caller is done with it.
#[derive(Debug)]
pub struct fw_fleet_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_fleet_t {
    type Target = Fleet;
}

/// Settings of a fleet connection.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_fleet_config_t {
    /// Time allowed to open a connection, ms (default 100; 1 ..= 60000).
    pub connect_timeout_ms: u64,
    /// Time allowed for each write and each read, ms (default 50;
    /// 1 ..= 60000): no call waits on Redis longer.
    pub io_timeout_ms: u64,
    /// Idle connections kept (default 4; 1 ..= 64).
    pub pool_size: u32,
    /// Prefix of every key written, a NUL-terminated UTF-8 string copied
    /// at connect (default NULL: `"failwell:"`).
    pub key_prefix: *const c_char,
}

/// The defaults: 100 ms to connect, 50 ms per read or write, 4 idle
/// connections, keys prefixed `failwell:`.
#[no_mangle]
pub extern "C" fn fw_fleet_config_default() -> fw_fleet_config_t {
    fw_fleet_config_t {
        connect_timeout_ms: millis(failwell_fleet::DEFAULT_CONNECT_TIMEOUT),
        io_timeout_ms: millis(failwell_fleet::DEFAULT_IO_TIMEOUT),
        pool_size: failwell_fleet::DEFAULT_POOL_SIZE as u32,
        key_prefix: std::ptr::null(),
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// A fleet error as a status: a bad setting or URL is `FW_EINVAL` naming
/// it; Redis unreachable, slow or answering an error is `FW_EFLEET`.
fn fleet_error(func: &str, e: FleetError, c_fields: &[(&str, &str)]) -> fw_status_t {
    match e {
        FleetError::Config(c) => config_error(func, c, c_fields),
        FleetError::Url { .. } => invalid(format!("{func}: {e}")),
        other => {
            invalid(format!("{func}: {other}"));
            FW_EFLEET
        }
    }
}

/// The shared body of `fw_fleet_connect` and `fw_fleet_open`.
fn make(
    url: *const c_char,
    config: *const fw_fleet_config_t,
    out: *mut *mut fw_fleet_t,
    func: &str,
    connect: bool,
) -> fw_status_t {
    let url = try_str!(url, func);
    let out = try_out!(out, func);
    let c = config_or(config, fw_fleet_config_default);
    let mut b = Fleet::builder(url)
        .connect_timeout(Duration::from_millis(c.connect_timeout_ms))
        .io_timeout(Duration::from_millis(c.io_timeout_ms))
        .pool_size(c.pool_size as usize);
    if !c.key_prefix.is_null() {
        // SAFETY: a non-NULL `key_prefix` is a NUL-terminated string valid
        // for the call (the documented contract).
        match unsafe { CStr::from_ptr(c.key_prefix) }.to_str() {
            Ok(p) => b = b.key_prefix(p),
            Err(_) => return invalid(format!("{func}: key_prefix: is not UTF-8")),
        }
    }
    let made = if connect { b.connect() } else { b.open() };
    match made {
        Ok(f) => {
            out.write(new_handle::<fw_fleet_t>(f));
            FW_OK
        }
        Err(e) => fleet_error(func, e, FLEET_FIELDS),
    }
}

/// Connects to the fleet's Redis at `url` (`redis://host:port/db`, a
/// NUL-terminated string) with `*config` (NULL: the defaults), into
/// `*out`. Opens one connection now and loads failwell's scripts:
/// `FW_EFLEET` if Redis cannot be reached within the timeouts (a service
/// that must start while Redis is down uses `fw_fleet_open`), `FW_EINVAL`
/// naming the field for a bad setting or URL.
#[no_mangle]
pub unsafe extern "C" fn fw_fleet_connect(
    url: *const c_char,
    config: *const fw_fleet_config_t,
    out: *mut *mut fw_fleet_t,
) -> fw_status_t {
    guard(|| make(url, config, out, "fw_fleet_connect", true))
}

/// As `fw_fleet_connect`, without reaching Redis: the first request
/// connects, and the fleet's primitives decide on their fallbacks until
/// Redis answers. Errors: `FW_EINVAL` for a bad setting or URL.
#[no_mangle]
pub unsafe extern "C" fn fw_fleet_open(
    url: *const c_char,
    config: *const fw_fleet_config_t,
    out: *mut *mut fw_fleet_t,
) -> fw_status_t {
    guard(|| make(url, config, out, "fw_fleet_open", false))
}

/// Frees a fleet handle. NULL is a no-op. Limiters and breakers made from
/// it keep working (they hold the connection pool).
#[no_mangle]
pub unsafe extern "C" fn fw_fleet_free(fleet: *mut fw_fleet_t) {
    // SAFETY: `fleet` is NULL or came from `fw_fleet_connect`/`_open` and
    // is freed once (the documented contract).
    guard_void(|| unsafe { free_handle(fleet) });
}

/// Sends Redis a `PING`; on `FW_OK` writes the round trip in nanoseconds
/// to `*latency_ns` (if not NULL). `FW_EFLEET` if Redis is unreachable,
/// slow, or failwell's breaker around it is open.
#[no_mangle]
pub unsafe extern "C" fn fw_fleet_ping(
    fleet: *const fw_fleet_t,
    latency_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        let f = try_handle!(fleet);
        match f.ping() {
            Ok(d) => {
                put(latency_ns, nanos(d));
                FW_OK
            }
            Err(e) => fleet_error("fw_fleet_ping", e, &[]),
        }
    })
}

/// A fleet connection's Redis requests.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_fleet_snapshot_t {
    /// Requests sent to Redis.
    pub requests: u64,
    /// Of those, the ones that failed (unreachable, timed out, dropped).
    pub failures: u64,
    /// Requests not sent: failwell's breaker around Redis was open.
    pub refused: u64,
    /// The time the requests took, in all, in nanoseconds.
    pub latency_ns: u64,
}

/// Copies the connection's Redis counts into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_fleet_snapshot(
    fleet: *const fw_fleet_t,
    out: *mut fw_fleet_snapshot_t,
) -> fw_status_t {
    guard(|| {
        let f = try_handle!(fleet);
        let out = try_out!(out);
        let s = f.snapshot();
        out.write(fw_fleet_snapshot_t {
            requests: s.requests,
            failures: s.failures,
            refused: s.refused,
            latency_ns: s.latency_ns,
        });
        FW_OK
    })
}

/// How a fleet rate limiter decides: one of the `FW_FLEET_*` mode
/// constants (other values are `FW_EINVAL`).
pub type fw_fleet_mode_t = u32;
/// Each decision is local, on tokens leased from the fleet's bucket by a
/// background thread about 9 times a second (no I/O on the caller's
/// thread). The default.
pub const FW_FLEET_LEASED: fw_fleet_mode_t = 0;
/// Each decision is one round trip to Redis, never admitting more than
/// the limit fleet-wide.
pub const FW_FLEET_EXACT: fw_fleet_mode_t = 1;

/// What a fleet rate limiter does while Redis is unreachable or slow: one
/// of these constants (other values are `FW_EINVAL`).
pub type fw_fleet_on_unavailable_t = u32;
/// Decide on a local limiter of this instance's share of the limit (the
/// default).
pub const FW_FLEET_LOCAL: fw_fleet_on_unavailable_t = 0;
/// Admit every request.
pub const FW_FLEET_FAIL_OPEN: fw_fleet_on_unavailable_t = 1;
/// Refuse every request.
pub const FW_FLEET_FAIL_CLOSED: fw_fleet_on_unavailable_t = 2;

/// `fleet_config.on_unavailable` as an `OnUnavailable`, or `FW_EINVAL`
/// naming it.
fn on_unavailable(func: &str, v: fw_fleet_on_unavailable_t) -> Result<OnUnavailable, fw_status_t> {
    match v {
        FW_FLEET_LOCAL => Ok(OnUnavailable::Local),
        FW_FLEET_FAIL_OPEN => Ok(OnUnavailable::FailOpen),
        FW_FLEET_FAIL_CLOSED => Ok(OnUnavailable::FailClosed),
        other => Err(invalid(format!(
            "{func}: fleet_config.on_unavailable: {other} is not an fw_fleet_on_unavailable_t"
        ))),
    }
}

/// A fleet rate limiter's own settings.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_fleet_limiter_config_t {
    /// `FW_FLEET_LEASED` (default) or `FW_FLEET_EXACT`.
    pub mode: fw_fleet_mode_t,
    /// Instances expected to share the limit, for the local share used
    /// before they are counted and while Redis is down (default 1; ≥ 1).
    pub instances: u32,
    /// `FW_FLEET_LOCAL` (default), `FW_FLEET_FAIL_OPEN` or
    /// `FW_FLEET_FAIL_CLOSED`.
    pub on_unavailable: fw_fleet_on_unavailable_t,
}

/// The defaults: leased, 1 instance expected, local fallback.
#[no_mangle]
pub extern "C" fn fw_fleet_limiter_config_default() -> fw_fleet_limiter_config_t {
    fw_fleet_limiter_config_t {
        mode: FW_FLEET_LEASED,
        instances: 1,
        on_unavailable: FW_FLEET_LOCAL,
    }
}

/// A rate limit `name` (1 to 200 bytes of UTF-8) for every instance that
/// uses the name with the same Redis and key prefix, `*config`'s rate and
/// burst (`precise` does not apply: Redis's clock decides), decided as
/// `*fleet_config` says (NULL: the defaults), into `*out` — an ordinary
/// `fw_rate_limiter_t` (`fw_rate_limiter_try_acquire`, `_acquire_timeout`,
/// `_snapshot`, `fw_metrics_register_rate_limiter`, `_free`; not
/// `_reconfigure` nor a pipeline layer). Every instance must use the same
/// rate and burst. A Redis that cannot be reached now is not an error: the
/// limiter starts on its fallback. `FW_EINVAL` naming the field for a bad
/// setting.
#[no_mangle]
pub unsafe extern "C" fn fw_fleet_rate_limiter_new(
    fleet: *const fw_fleet_t,
    name: *const c_char,
    config: *const fw_rate_limiter_config_t,
    fleet_config: *const fw_fleet_limiter_config_t,
    out: *mut *mut fw_rate_limiter_t,
) -> fw_status_t {
    guard(|| {
        let func = "fw_fleet_rate_limiter_new";
        let f = try_handle!(fleet);
        let name = try_str!(name);
        // SAFETY: non-NULL `config` points to a valid config (contract).
        let Some(c) = (unsafe { config.as_ref() }) else {
            return invalid(format!("{func}: `config` is NULL (a rate has no default)"));
        };
        let fc = config_or(fleet_config, fw_fleet_limiter_config_default);
        let out = try_out!(out);
        let on_unavailable = match on_unavailable(func, fc.on_unavailable) {
            Ok(o) => o,
            Err(status) => return status,
        };
        let made = match fc.mode {
            FW_FLEET_LEASED => f
                .rate_limiter(name, builder_of(c))
                .instances(fc.instances)
                .on_unavailable(on_unavailable)
                .build()
                .map(|l| AnyRateLimiter::Leased(Arc::new(l))),
            FW_FLEET_EXACT => f
                .exact_rate_limiter(name, builder_of(c))
                .instances(fc.instances)
                .on_unavailable(on_unavailable)
                .build()
                .map(|l| AnyRateLimiter::Exact(Arc::new(l))),
            other => {
                return invalid(format!(
                    "{func}: fleet_config.mode: {other} is not an fw_fleet_mode_t"
                ))
            }
        };
        match made {
            Ok(l) => {
                out.write(new_handle::<fw_rate_limiter_t>(l));
                FW_OK
            }
            Err(e) => fleet_error(func, e, LIMITER_FIELDS),
        }
    })
}

/// A fleet rate limiter's counts (this instance's).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_fleet_limiter_snapshot_t {
    /// Requests admitted (by the fleet or by a fallback).
    pub admitted: u64,
    /// Requests refused.
    pub rejected: u64,
    /// Decisions made without Redis (unreachable or slow).
    pub fallbacks: u64,
    /// Leased mode: tokens leased from the fleet, in all (exact: 0).
    pub leased: u64,
    /// Leased mode: lease requests Redis answered (`leased / leases`: the
    /// mean lease size; exact: 0).
    pub leases: u64,
    /// Leased mode: tokens the last lease granted (exact: 0).
    pub last_lease: u64,
    /// Leased mode: tokens given back, in all (exact: 0).
    pub returned: u64,
    /// Leased mode: leased tokens held now (exact: 0).
    pub held: u64,
    /// Leased mode: live instances, as last counted (exact: 0).
    pub instances: u64,
    /// Leased mode: lease requests that failed (exact: 0; its failures
    /// are its `fallbacks`).
    pub redis_errors: u64,
}

/// Copies a fleet rate limiter's counts into `*out`; `FW_EINVAL` for a
/// limiter not made by `fw_fleet_rate_limiter_new`.
#[no_mangle]
pub unsafe extern "C" fn fw_fleet_rate_limiter_snapshot(
    limiter: *const fw_rate_limiter_t,
    out: *mut fw_fleet_limiter_snapshot_t,
) -> fw_status_t {
    guard(|| {
        let l = try_handle!(limiter);
        let out = try_out!(out);
        let s = match l {
            AnyRateLimiter::Leased(l) => {
                let s = l.snapshot();
                fw_fleet_limiter_snapshot_t {
                    admitted: s.admitted,
                    rejected: s.rejected,
                    fallbacks: s.fallbacks,
                    leased: s.leased,
                    leases: s.leases,
                    last_lease: s.last_lease,
                    returned: s.returned,
                    held: s.held,
                    instances: s.instances,
                    redis_errors: s.redis_errors,
                }
            }
            AnyRateLimiter::Exact(l) => {
                let s = l.snapshot();
                fw_fleet_limiter_snapshot_t {
                    admitted: s.admitted,
                    rejected: s.rejected,
                    fallbacks: s.fallbacks,
                    leased: 0,
                    leases: 0,
                    last_lease: 0,
                    returned: 0,
                    held: 0,
                    instances: 0,
                    redis_errors: 0,
                }
            }
            AnyRateLimiter::Local(_) => {
                return invalid(
                    "fw_fleet_rate_limiter_snapshot: `limiter` is not a fleet rate limiter",
                )
            }
        };
        out.write(s);
        FW_OK
    })
}

/// A fleet breaker's own settings (0 in a duration: its default).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_fleet_breaker_config_t {
    /// Instances that must agree before the fleet opens (default 1: any
    /// instance's trip opens it; 1 ..= 100000).
    pub quorum: u32,
    /// How often the instance syncs with the fleet, ms (default 200;
    /// 10 ..= 60000): every instance refuses within about this long after
    /// the fleet opens.
    pub sync_every_ms: u64,
    /// How long an instance owns a half-open's probes before another may
    /// take them over, ms (default 2000; at least three sync intervals).
    pub probe_claim_ms: u64,
    /// The window the fleet's counts are summed over, ms (default 0: the
    /// breaker's time window, or 10000 when it counts calls; 100 ..=
    /// 86400000).
    pub window_ms: u64,
    /// While the syncs fail (Redis unreachable or slow):
    /// `FW_FLEET_LOCAL` (default: the local breaker decides on its own
    /// policy), `FW_FLEET_FAIL_OPEN` (admit every call) or
    /// `FW_FLEET_FAIL_CLOSED` (refuse every call), until a sync reaches
    /// Redis again.
    pub on_unavailable: fw_fleet_on_unavailable_t,
}

/// The defaults: quorum 1, sync every 200 ms, probe claims of 2 s, the
/// breaker's own window, the local breaker deciding while Redis is down.
#[no_mangle]
pub extern "C" fn fw_fleet_breaker_config_default() -> fw_fleet_breaker_config_t {
    fw_fleet_breaker_config_t {
        quorum: 1,
        sync_every_ms: millis(failwell_fleet::SYNC_EVERY),
        probe_claim_ms: millis(failwell_fleet::DEFAULT_PROBE_CLAIM),
        window_ms: 0,
        on_unavailable: FW_FLEET_LOCAL,
    }
}

/// A circuit breaker `name` (1 to 200 bytes of UTF-8) whose verdict every
/// instance using the name shares, into `*out` — an ordinary
/// `fw_breaker_t`: calls are admitted by a local breaker with `*config`
/// (NULL: the defaults) and the `fw_breaker_*` functions work on it; a
/// background thread (`failwell-cb-sync`) reports its trips and counts and
/// applies the fleet's verdict (open, half-open with at most
/// `half_open_calls` probes fleet-wide, closed), as `*fleet_config` says
/// (NULL: the defaults). While Redis is unreachable the breaker decides on
/// its own policy. A Redis that cannot be reached now is not an error.
/// The sync ends when the handle is freed. `FW_EINVAL` naming the field
/// for a bad setting.
#[no_mangle]
pub unsafe extern "C" fn fw_fleet_breaker_new(
    fleet: *const fw_fleet_t,
    name: *const c_char,
    config: *const fw_breaker_config_t,
    fleet_config: *const fw_fleet_breaker_config_t,
    out: *mut *mut fw_breaker_t,
) -> fw_status_t {
    guard(|| {
        let func = "fw_fleet_breaker_new";
        let f = try_handle!(fleet);
        let name = try_str!(name);
        let c = config_or(config, fw_breaker_config_default);
        let fc = config_or(fleet_config, fw_fleet_breaker_config_default);
        let out = try_out!(out);
        // The local breaker's settings first, named as for fw_breaker_new.
        let local = match breaker_settings(&c)
            .builder()
            .and_then(|b| b.clone().build().map(|_: CircuitBreaker| b))
        {
            Ok(b) => b,
            Err(e) => return config_error(func, e, BREAKER_FIELDS),
        };
        let on_unavailable = match on_unavailable(func, fc.on_unavailable) {
            Ok(o) => o,
            Err(status) => return status,
        };
        let mut b = f
            .circuit_breaker(name, local)
            .on_unavailable(on_unavailable)
            .quorum(fc.quorum)
            .sync_every(Duration::from_millis(fc.sync_every_ms))
            .probe_claim(Duration::from_millis(fc.probe_claim_ms));
        if fc.window_ms > 0 {
            b = b.window(Duration::from_millis(fc.window_ms));
        }
        match b.build() {
            Ok(fb) => {
                out.write(new_handle::<fw_breaker_t>(AnyBreaker::fleet(Arc::new(fb))));
                FW_OK
            }
            Err(e) => fleet_error(func, e, FLEET_BREAKER_FIELDS),
        }
    })
}

/// A fleet breaker's sync counts (this instance's).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_fleet_breaker_snapshot_t {
    /// Syncs that reached Redis.
    pub syncs: u64,
    /// Syncs that failed (Redis unreachable or slow): the breaker decided
    /// on its own meanwhile.
    pub failed_syncs: u64,
    /// Local trips reported as this instance's vote.
    pub votes: u64,
    /// Fleet openings applied to the local breaker.
    pub opens_applied: u64,
    /// Fleet closings applied (the local breaker reset).
    pub closes_applied: u64,
    /// Half-opens whose probes this instance claimed.
    pub probes_owned: u64,
    /// Probe verdicts this instance reported.
    pub probe_verdicts: u64,
    /// The fleet verdict's generation, as last seen.
    pub fleet_generation: u64,
    /// Whether the fleet was open, as last seen.
    pub fleet_open: bool,
    /// Whether `on_unavailable` (fail-open or fail-closed) holds the
    /// breaker now.
    pub degraded: bool,
}

/// Copies a fleet breaker's sync counts into `*out`; `FW_EINVAL` for a
/// breaker not made by `fw_fleet_breaker_new`.
#[no_mangle]
pub unsafe extern "C" fn fw_fleet_breaker_snapshot(
    breaker: *const fw_breaker_t,
    out: *mut fw_fleet_breaker_snapshot_t,
) -> fw_status_t {
    guard(|| {
        let Some(b) = try_handle!(breaker).as_fleet() else {
            return invalid("fw_fleet_breaker_snapshot: `breaker` is not a fleet breaker");
        };
        let out = try_out!(out);
        let s = b.fleet_snapshot();
        out.write(fw_fleet_breaker_snapshot_t {
            syncs: s.syncs,
            failed_syncs: s.failed_syncs,
            votes: s.votes,
            opens_applied: s.opens_applied,
            closes_applied: s.closes_applied,
            probes_owned: s.probes_owned,
            probe_verdicts: s.probe_verdicts,
            fleet_generation: s.fleet_generation,
            fleet_open: s.fleet_open,
            degraded: s.degraded,
        });
        FW_OK
    })
}

/// Registers a fleet connection's Redis requests under `instance`
/// (`failwell_fleet_redis_requests_total`, `_failures_total`,
/// `_refused_total`, `_seconds_total`, `failwell_fleet_redis_guard_open`).
#[no_mangle]
pub unsafe extern "C" fn fw_metrics_register_fleet(
    metrics: *const fw_metrics_t,
    instance: *const c_char,
    fleet: *const fw_fleet_t,
) -> fw_status_t {
    guard(|| {
        let m = try_handle!(metrics);
        let instance = try_str!(instance);
        let f = try_handle!(fleet);
        match failwell_fleet::metrics::register_fleet(m, instance, f) {
            Ok(()) => FW_OK,
            Err(e) => config_error("fw_metrics_register_fleet", e, &[]),
        }
    })
}
