//! `fw_region_*`: a host region, shared memory that the processes of one
//! host map by name, and the primitives placed in it.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::raw::{c_char, c_int};

use fw::region::{Region, RegionError};

use crate::boundary::*;
use std::sync::Arc;

use crate::breaker::{
    from_c as breaker_settings, fw_breaker_config_default, fw_breaker_config_t, fw_breaker_t,
    AnyBreaker, C_FIELDS as BREAKER_FIELDS,
};
use crate::bulkhead::{fw_bulkhead_config_default, fw_bulkhead_config_t, fw_bulkhead_t};
use crate::rate_limit::{
    builder_of, fw_rate_limiter_config_t, fw_rate_limiter_t, AnyRateLimiter,
    C_FIELDS as LIMITER_FIELDS,
};
use crate::retry::{build, fw_retry_config_t, fw_retry_t, C_FIELDS as RETRY_FIELDS};

/// A mapped host region. Thread-safe. Closing it does not invalidate the
/// primitives taken from it: each keeps the mapping until it is freed.
#[derive(Debug)]
pub struct fw_region_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_region_t {
    type Target = Region;
}

/// A region error as a status, the message naming `func` (and the C
/// names of configuration fields, from `c_fields`).
fn region_error(func: &str, e: RegionError, c_fields: &[(&str, &str)]) -> fw_status_t {
    let status = match &e {
        RegionError::Config(c) => return config_error(func, c.clone(), c_fields),
        RegionError::Argument { .. } => FW_EINVAL,
        RegionError::Io { .. } => FW_EIO,
        _ => FW_EREGION,
    };
    invalid(format!("{func}: {e}"));
    status
}

/// Writes a new handle of what `made` made into `out`, or the status of
/// its error (messages naming `func` and the C fields in `c_fields`).
fn give<H: Handle>(
    out: Out<*mut H>,
    made: Result<H::Target, RegionError>,
    func: &str,
    c_fields: &[(&str, &str)],
) -> fw_status_t {
    match made {
        Ok(v) => {
            out.write(new_handle::<H>(v));
            FW_OK
        }
        Err(e) => region_error(func, e, c_fields),
    }
}

/// Creates or attaches the region `name_or_path` into `*out`: a name
/// without `/` is the file `/dev/shm/<name>`, anything else a path. A new
/// region is `size` bytes (at least 64 KiB, rounded up to whole pages),
/// reserved at once; an existing one keeps its size. `FW_EIO` if the file
/// cannot be opened, reserved or mapped; `FW_EREGION` if it is not a
/// region or has another layout version; `FW_EINVAL` for a bad name or
/// size. Close it with `fw_region_close`.
#[no_mangle]
pub unsafe extern "C" fn fw_region_open(
    name_or_path: *const c_char,
    size: usize,
    out: *mut *mut fw_region_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        let name = try_str!(name_or_path);
        give::<fw_region_t>(
            out,
            Region::open(name, size),
            this_export!(),
            LIMITER_FIELDS,
        )
    })
}

/// As `fw_region_open`, on a file descriptor this process was given (a
/// pre-fork master's, or a `memfd`), which the region owns from then on
/// (also when this fails: it is closed). An empty file becomes a new
/// region of `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn fw_region_from_fd(
    fd: c_int,
    size: usize,
    out: *mut *mut fw_region_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        if fd < 0 {
            return invalid(format!("{}: fd: {fd} is not a descriptor", this_export!()));
        }
        // SAFETY: the caller gives the region a descriptor it owns (the
        // documented contract).
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        give::<fw_region_t>(
            out,
            Region::from_fd(fd, size),
            this_export!(),
            LIMITER_FIELDS,
        )
    })
}

/// Unmaps the region once every primitive taken from it is freed. NULL is
/// a no-op. The file stays (see `fw_region_unlink`).
#[no_mangle]
pub unsafe extern "C" fn fw_region_close(region: *mut fw_region_t) {
    // SAFETY: `region` is NULL or came from `fw_region_open`/`_from_fd`
    // and is closed once (the documented contract).
    guard_void(|| unsafe { free_handle(region) });
}

/// Removes the region file `name_or_path` (named as for `fw_region_open`).
/// Processes that have it mapped keep using it; the next open creates a
/// new one.
#[no_mangle]
pub unsafe extern "C" fn fw_region_unlink(name_or_path: *const c_char) -> fw_status_t {
    guard(|| {
        let name = try_str!(name_or_path);
        match Region::unlink(name) {
            Ok(()) => FW_OK,
            Err(e) => region_error(this_export!(), e, LIMITER_FIELDS),
        }
    })
}

/// The rate limiter `name` in the region into `*out`, an ordinary
/// `fw_rate_limiter_t` (free it with `fw_rate_limiter_free`): created with
/// `*config` if the region has no slot of that name, else the existing one,
/// which every process shares (one exact GCRA word for the host). A name
/// held with another configuration is `FW_EREGION` (attach with
/// `fw_region_rate_limiter_attach` to adopt it); `name` is at most 55 bytes
/// of UTF-8.
#[no_mangle]
pub unsafe extern "C" fn fw_region_rate_limiter_new(
    region: *const fw_region_t,
    name: *const c_char,
    config: *const fw_rate_limiter_config_t,
    out: *mut *mut fw_rate_limiter_t,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(region);
        let name = try_str!(name);
        let c = try_ref!(config);
        let out = try_out!(out);
        give::<fw_rate_limiter_t>(
            out,
            r.rate_limiter(name, builder_of(c))
                .map(AnyRateLimiter::local),
            this_export!(),
            LIMITER_FIELDS,
        )
    })
}

/// The rate limiter `name` as the region holds it, whatever its
/// configuration, into `*out`; `FW_EREGION` if there is none.
#[no_mangle]
pub unsafe extern "C" fn fw_region_rate_limiter_attach(
    region: *const fw_region_t,
    name: *const c_char,
    out: *mut *mut fw_rate_limiter_t,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(region);
        let name = try_str!(name);
        let out = try_out!(out);
        give::<fw_rate_limiter_t>(
            out,
            r.attach_rate_limiter(name).map(AnyRateLimiter::local),
            this_export!(),
            LIMITER_FIELDS,
        )
    })
}

/// A retry policy (free it with `fw_retry_free`) drawing on the region's
/// retry budget `name`, into `*out`: the budget, `budget_ratio` of the
/// calls of every process using it plus `budget_min_per_sec` per second
/// over a 10 s window, is created with `*config`'s `budget_*` fields if
/// the region has none of that name, else shared as stored (another
/// configuration is `FW_EREGION`). `budget_ratio` must be set, in [0, 1];
/// the rest of `*config` is this policy's own, as for `fw_retry_new`
/// (`config` NULL: `FW_EINVAL`, a shared budget needs its ratio).
#[no_mangle]
pub unsafe extern "C" fn fw_region_retry_new(
    region: *const fw_region_t,
    name: *const c_char,
    config: *const fw_retry_config_t,
    out: *mut *mut fw_retry_t,
) -> fw_status_t {
    guard(|| {
        let func = this_export!();
        let r = try_handle!(region);
        let name = try_str!(name);
        let c = *try_ref!(config);
        let out = try_out!(out);
        if !(0.0..=1.0).contains(&c.budget_ratio) {
            return invalid(format!(
                "{func}: budget_ratio: a shared budget's ratio must be in [0, 1], got {}",
                c.budget_ratio
            ));
        }
        let budget = match r.retry_budget(
            name,
            c.budget_ratio,
            c.budget_min_per_sec,
            fw::retry::DEFAULT_BUDGET_TTL,
        ) {
            Ok(b) => b,
            Err(e) => return region_error(func, e, RETRY_FIELDS),
        };
        match build(&c, func, Some(Arc::new(budget))) {
            Ok(retry) => {
                out.write(new_handle::<fw_retry_t>(retry));
                FW_OK
            }
            Err(s) => s,
        }
    })
}

/// The bulkhead `name` in the region into `*out`, an ordinary
/// `fw_bulkhead_t` (free it with `fw_bulkhead_free`): created with
/// `*config` (NULL: the defaults) if the region has no slot of that name,
/// else the existing one. Every process shares its limit and reserve: at
/// most `max_concurrent` permits out across all of them (at most 2^20 in a
/// region). The permits of a process that dies holding them (SIGKILL too)
/// are given back within a second; `fw_bulkhead_acquire_timeout` waits
/// across processes (woken by any process's release, on Linux through a
/// futex in the region; a waiter also looks again every 50 ms).
/// `fw_bulkhead_reconfigure` on it is `FW_EINVAL`. A permit taken before
/// `fork()` is the parent's: a child must not release it. Another
/// configuration under the name is `FW_EREGION` (attach with
/// `fw_region_bulkhead_attach` to adopt it).
#[no_mangle]
pub unsafe extern "C" fn fw_region_bulkhead_new(
    region: *const fw_region_t,
    name: *const c_char,
    config: *const fw_bulkhead_config_t,
    out: *mut *mut fw_bulkhead_t,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(region);
        let name = try_str!(name);
        let c = config_or(config, fw_bulkhead_config_default);
        let out = try_out!(out);
        let config = fw::bulkhead::Config {
            max_concurrent: c.max_concurrent,
            critical_reserve: c.critical_reserve,
        };
        give::<fw_bulkhead_t>(out, r.bulkhead(name, config), this_export!(), &[])
    })
}

/// The bulkhead `name` as the region holds it, whatever its
/// configuration, into `*out`; `FW_EREGION` if there is none.
#[no_mangle]
pub unsafe extern "C" fn fw_region_bulkhead_attach(
    region: *const fw_region_t,
    name: *const c_char,
    out: *mut *mut fw_bulkhead_t,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(region);
        let name = try_str!(name);
        let out = try_out!(out);
        give::<fw_bulkhead_t>(out, r.attach_bulkhead(name), this_export!(), &[])
    })
}

/// The circuit breaker `name` in the region into `*out`, an ordinary
/// `fw_breaker_t` (free it with `fw_breaker_free`; every `fw_breaker_*`
/// call works on it): created with `*config` (NULL: the defaults) if the
/// region has no slot of that name, else the existing one, which every
/// process shares — one state, one set of counts and one window for the
/// host. A trip by any process is seen by every process on its next call;
/// at most `half_open_calls` probes are out host-wide, and the probes of a
/// process that dies holding them (SIGKILL too) are given back within about
/// half a second. Listeners (`fw_breaker_on_transition`) hear of
/// transitions this process made at once, and of other processes'
/// transitions on this process's next call that finds the breaker not
/// closed or from its `failwell-reaper` thread within 250 ms.
/// `fw_breaker_reconfigure` on it is `FW_EINVAL`; a probe permit taken
/// before `fork()` must be recorded by the parent. Another configuration
/// under the name is `FW_EREGION` (attach with
/// `fw_region_breaker_attach` to adopt it).
#[no_mangle]
pub unsafe extern "C" fn fw_region_breaker_new(
    region: *const fw_region_t,
    name: *const c_char,
    config: *const fw_breaker_config_t,
    out: *mut *mut fw_breaker_t,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(region);
        let name = try_str!(name);
        let c = config_or(config, fw_breaker_config_default);
        let out = try_out!(out);
        let made = breaker_settings(&c)
            .builder()
            .map_err(RegionError::from)
            .and_then(|b| r.circuit_breaker(name, b))
            .map(AnyBreaker::local);
        give::<fw_breaker_t>(out, made, this_export!(), BREAKER_FIELDS)
    })
}

/// The circuit breaker `name` as the region holds it, whatever its
/// configuration, into `*out`; `FW_EREGION` if there is none.
#[no_mangle]
pub unsafe extern "C" fn fw_region_breaker_attach(
    region: *const fw_region_t,
    name: *const c_char,
    out: *mut *mut fw_breaker_t,
) -> fw_status_t {
    guard(|| {
        let r = try_handle!(region);
        let name = try_str!(name);
        let out = try_out!(out);
        give::<fw_breaker_t>(
            out,
            r.attach_circuit_breaker(name).map(AnyBreaker::local),
            this_export!(),
            &[],
        )
    })
}
