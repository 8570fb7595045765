//! `fw_stale_cache_*`: graceful degradation by serving the last good value,
//! saying that it is stale and how old, while the fresh fetch fails.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use fw::degrade::{Served, StaleCache};

use crate::boundary::*;

/// Core's names for settings, as the C API names them (struct fields and
/// arguments), for error messages.
/// cbindgen:ignore
const C_FIELDS: &[(&str, &str)] = &[("max_stale", "max_stale_ms")];

/// A stale-while-error cache of byte strings by byte-string key: every
/// fetch goes to the source; only when it fails is the last good value
/// served, if it is at most `max_stale_ms` old. Thread-safe (one lock, held
/// only to read or store an entry). Free it once, after every thread is
/// done with it; values already served stay valid until their own free.
#[derive(Debug)]
pub struct fw_stale_cache_t {
    _opaque: (),
}

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_stale_cache_t {
    type Target = StaleCache<Vec<u8>, Arc<[u8]>>;
}

/// A value served stale: read it with `fw_stale_value_get`, free it with
/// `fw_stale_value_free`. It is a reference to the cached bytes (no copy),
/// immutable, and stays valid after the cache changes or is freed; any
/// thread may read it, one frees it, once.
#[derive(Debug)]
pub struct fw_stale_value_t {
    _opaque: (),
}

/// What a `fw_stale_value_t` stands for: a reference to the cached bytes.
#[derive(Debug)]
pub(crate) struct StaleValue(Arc<[u8]>);

// SAFETY: never constructed; its pointers come from `new_handle`.
unsafe impl Handle for fw_stale_value_t {
    type Target = StaleValue;
}

/// Stale cache configuration.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_stale_cache_config_t {
    /// The oldest value served when the fetch fails, ≥ 1 (default 300 000:
    /// 5 minutes).
    pub max_stale_ms: u64,
    /// The most keys kept, ≥ 1 (default 10 000); the oldest entry makes room
    /// for a new key.
    pub capacity: usize,
}

/// A plain copy of a cache's counters.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fw_stale_cache_snapshot_t {
    /// Fresh values stored (`fw_stale_cache_put`).
    pub fresh: u64,
    /// Stale values served in place of a failed fetch.
    pub stale: u64,
    /// Failed fetches with no value young enough to serve.
    pub misses: u64,
    /// Keys cached now.
    pub entries: u64,
}

/// The defaults: 5 minutes, 10 000 keys.
#[no_mangle]
pub extern "C" fn fw_stale_cache_config_default() -> fw_stale_cache_config_t {
    fw_stale_cache_config_t {
        max_stale_ms: fw::degrade::DEFAULT_MAX_STALE.as_millis() as u64,
        capacity: fw::degrade::DEFAULT_CAPACITY,
    }
}

/// Creates a stale cache (`config` NULL: the defaults) into `*out`.
#[no_mangle]
pub unsafe extern "C" fn fw_stale_cache_new(
    config: *const fw_stale_cache_config_t,
    out: *mut *mut fw_stale_cache_t,
) -> fw_status_t {
    guard(|| {
        let out = try_out!(out);
        let c = config_or(config, fw_stale_cache_config_default);
        match StaleCache::builder()
            .max_stale(Duration::from_millis(c.max_stale_ms))
            .capacity(c.capacity)
            .build()
        {
            Ok(cache) => {
                out.write(new_handle(cache));
                FW_OK
            }
            Err(e) => config_error("fw_stale_cache_new", e, C_FIELDS),
        }
    })
}

/// Frees a stale cache. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_stale_cache_free(cache: *mut fw_stale_cache_t) {
    // SAFETY: `cache` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(cache) });
}

/// `len` bytes at `data` (NULL allowed only with `len = 0`), or why not.
fn bytes<'a>(data: *const c_void, len: usize, what: &str) -> Result<&'a [u8], fw_status_t> {
    if data.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(invalid(format!("{what} is NULL with a length of {len}")))
        };
    }
    if len > isize::MAX as usize {
        return Err(invalid(format!("{what}: length {len} is too large")));
    }
    // SAFETY: the caller passes `len` readable bytes at `data` (contract).
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// The fetch of `key` succeeded with `value`: caches a copy of it as the
/// key's last good value (now) and counts it fresh. Keys and values are
/// byte strings: `key_len` bytes at `key`, `value_len` at `value` (either
/// may be NULL with a length of 0).
#[no_mangle]
pub unsafe extern "C" fn fw_stale_cache_put(
    cache: *const fw_stale_cache_t,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
) -> fw_status_t {
    guard(|| {
        let c = try_handle!(cache);
        let key = match bytes(key, key_len, "fw_stale_cache_put: `key`") {
            Ok(k) => k,
            Err(s) => return s,
        };
        let value = match bytes(value, value_len, "fw_stale_cache_put: `value`") {
            Ok(v) => v,
            Err(s) => return s,
        };
        c.put_fresh(key.to_vec(), Arc::from(value));
        FW_OK
    })
}

/// The fetch of `key` failed: serves its last good value if it is at most
/// `max_stale_ms` old. `FW_OK` with the value in `*out` (free it with
/// `fw_stale_value_free`) and its age in `*age_ns` (if not NULL), counted
/// as stale; `FW_ECALL` when no value is young enough (counted as a miss:
/// the failure stands), `*out` then NULL.
#[no_mangle]
pub unsafe extern "C" fn fw_stale_cache_serve_stale(
    cache: *const fw_stale_cache_t,
    key: *const c_void,
    key_len: usize,
    out: *mut *mut fw_stale_value_t,
    age_ns: *mut u64,
) -> fw_status_t {
    guard(|| {
        let c = try_handle!(cache);
        let out = try_out!(out);
        let key = match bytes(key, key_len, "fw_stale_cache_serve_stale: `key`") {
            Ok(k) => k.to_vec(),
            Err(s) => return s,
        };
        match c.serve_stale(&key, ()) {
            Ok(Served::Stale { value, age, .. }) => {
                put(age_ns, nanos(age));
                out.write(new_handle(StaleValue(value)));
                FW_OK
            }
            Ok(Served::Fresh(value)) => {
                // `serve_stale` never serves fresh; kept total all the same.
                put(age_ns, 0);
                out.write(new_handle(StaleValue(value)));
                FW_OK
            }
            Err(()) => {
                out.write(std::ptr::null_mut());
                FW_ECALL
            }
        }
    })
}

/// The bytes of a served value: `*data` points at `*len` bytes, valid until
/// `fw_stale_value_free(value)` (never NULL, even for an empty value).
#[no_mangle]
pub unsafe extern "C" fn fw_stale_value_get(
    value: *const fw_stale_value_t,
    data: *mut *const u8,
    len: *mut usize,
) -> fw_status_t {
    guard(|| {
        let v = try_handle!(value);
        let data = try_out!(data);
        let len = try_out!(len);
        data.write(v.0.as_ptr());
        len.write(v.0.len());
        FW_OK
    })
}

/// Frees a served value. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn fw_stale_value_free(value: *mut fw_stale_value_t) {
    // SAFETY: `value` is NULL or came from its `_new` and is freed once
    // (the documented contract).
    guard_void(|| unsafe { free_handle(value) });
}

/// The cache's counters.
#[no_mangle]
pub unsafe extern "C" fn fw_stale_cache_snapshot(
    cache: *const fw_stale_cache_t,
    out: *mut fw_stale_cache_snapshot_t,
) -> fw_status_t {
    guard(|| {
        let c = try_handle!(cache);
        let out = try_out!(out);
        let s = c.snapshot();
        out.write(fw_stale_cache_snapshot_t {
            fresh: s.fresh,
            stale: s.stale,
            misses: s.misses,
            entries: s.entries,
        });
        FW_OK
    })
}
