//! The C ABI target: arbitrary sequences of calls on live handles, NULL
//! handles and outputs, invalid enum values, arbitrary configurations and
//! arbitrary (forged) breaker permits. Whatever the input, no call panics
//! (`FW_EPANIC`), every status is one the header names, every refusal of
//! bad input comes with a message, and every handle and permit the harness
//! took is given back once (AddressSanitizer, under `cargo fuzz`, sees the
//! memory).

use std::ptr::{null, null_mut};

use arbitrary::{Result, Unstructured};
use ffi::breaker::*;
use ffi::bulkhead::*;
use ffi::rate_limit::*;
use ffi::retry::*;
use ffi::*;

fn checked(status: fw_status_t) -> fw_status_t {
    assert_ne!(status, FW_EPANIC, "a call panicked: {}", last_error());
    assert!(
        matches!(status, FW_OK | 1..=7 | FW_EINVAL | FW_ECALL),
        "unknown status {status}"
    );
    if status == FW_EINVAL {
        assert!(!last_error().is_empty(), "FW_EINVAL without a message");
    }
    status
}

fn last_error() -> String {
    let mut buf = [0u8; 512];
    // SAFETY: `buf` has the length passed.
    let n = unsafe { fw_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    String::from_utf8_lossy(&buf[..n.min(buf.len()).saturating_sub(1)]).into_owned()
}

fn pick<T>(u: &mut Unstructured<'_>, live: &[*mut T]) -> Result<*const T> {
    if live.is_empty() || u.ratio(1, 8)? {
        return Ok(null());
    }
    Ok(live[u.choose_index(live.len())?])
}

fn ns(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=4)? {
        0 => 0,
        1 => u64::MAX,
        2 => u.arbitrary()?,
        _ => u.int_in_range(0..=50_000_000)?,
    })
}

fn small(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(if u.ratio(1, 6)? {
        u.arbitrary()?
    } else {
        u.int_in_range(0..=12)?
    })
}

fn float(u: &mut Unstructured<'_>) -> Result<f64> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => u.arbitrary()?,
        _ => u.int_in_range(0u32..=200)? as f64 / 100.0,
    })
}

fn breaker_config(u: &mut Unstructured<'_>) -> Result<fw_breaker_config_t> {
    let mut c = fw_breaker_config_default();
    if u.arbitrary()? {
        c.consecutive_failures = small(u)?;
        c.failure_rate = float(u)?;
        c.window_calls = small(u)?;
        c.window_ms = ns(u)? % 100_000;
        c.window_buckets = small(u)?;
        c.slow_call_rate = float(u)?;
        c.slow_call_ms = ns(u)?;
        c.minimum_calls = small(u)?;
        c.half_open_calls = small(u)?;
        c.half_open_max_wait_ms = ns(u)?;
        c.open_for_ms = ns(u)? % 1000;
        c.open_for_multiplier = float(u)?;
        c.open_for_max_ms = ns(u)?;
    }
    Ok(c)
}

#[derive(Default)]
struct Live {
    breakers: Vec<*mut fw_breaker_t>,
    permits: Vec<(usize, fw_breaker_permit_t)>,
    bulkheads: Vec<*mut fw_bulkhead_t>,
    slots: Vec<(usize, fw_bulkhead_permit_t)>,
    limiters: Vec<*mut fw_rate_limiter_t>,
    retries: Vec<*mut fw_retry_t>,
}

/// Runs one call sequence.
pub fn c_abi(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut live = Live::default();
    let _ = run(&mut u, &mut live);
    // SAFETY: every pointer below came from its `fw_*_new` / acquire and is
    // given back exactly once.
    unsafe {
        for (_, mut p) in live.slots.drain(..) {
            checked(fw_bulkhead_permit_release(&mut p));
        }
        for b in live.breakers.drain(..) {
            fw_breaker_free(b);
        }
        for b in live.bulkheads.drain(..) {
            fw_bulkhead_free(b);
        }
        for l in live.limiters.drain(..) {
            fw_rate_limiter_free(l);
        }
        for r in live.retries.drain(..) {
            fw_retry_free(r);
        }
    }
}

fn run(u: &mut Unstructured<'_>, live: &mut Live) -> Result<()> {
    while !u.is_empty() {
        // SAFETY (every call in this loop): handles are NULL or live ones
        // from their `fw_*_new`; out-pointers are NULL or point to locals;
        // permits are released once and removed from the table.
        unsafe {
            match u.int_in_range(0u8..=20)? {
                0 => {
                    let c = breaker_config(u)?;
                    let mut b = null_mut();
                    let cfg: *const fw_breaker_config_t = if u.ratio(1, 8)? { null() } else { &c };
                    let out = if u.ratio(1, 10)? { null_mut() } else { &mut b };
                    if checked(fw_breaker_new(cfg, out)) == FW_OK {
                        assert!(!b.is_null());
                        live.breakers.push(b);
                    }
                }
                1 | 2 => {
                    let b = pick(u, &live.breakers)?;
                    let mut p = fw_breaker_permit_t {
                        _word: 0,
                        _start: 0,
                    };
                    let mut wait = 0u64;
                    let w = if u.arbitrary()? {
                        &mut wait as *mut u64
                    } else {
                        null_mut()
                    };
                    if checked(fw_breaker_acquire(b, &mut p, w)) == FW_OK {
                        if let Some(i) = live.breakers.iter().position(|x| std::ptr::eq(*x, b)) {
                            live.permits.push((i, p));
                        }
                    }
                }
                3 | 4 if !live.permits.is_empty() => {
                    let (i, p) = live
                        .permits
                        .swap_remove(u.choose_index(live.permits.len())?);
                    let b = live.breakers.get(i).copied().unwrap_or(null_mut());
                    let outcome: u32 = u.int_in_range(0..=3)?;
                    let d: i64 = u.arbitrary()?;
                    match u.int_in_range(0u8..=3)? {
                        0 => checked(fw_breaker_success(b, &p)),
                        1 => checked(fw_breaker_failure(b, &p)),
                        2 => checked(fw_breaker_ignore(b, &p)),
                        _ => checked(fw_breaker_record(b, &p, outcome, d)),
                    };
                }
                5 => {
                    // A forged permit: any integers make a valid token.
                    let b = pick(u, &live.breakers)?;
                    let p = fw_breaker_permit_t {
                        _word: u.arbitrary()?,
                        _start: u.arbitrary()?,
                    };
                    let pp: *const fw_breaker_permit_t = if u.ratio(1, 8)? { null() } else { &p };
                    checked(fw_breaker_record(
                        b,
                        pp,
                        u.int_in_range(0..=3)?,
                        u.arbitrary()?,
                    ));
                }
                6 => {
                    let b = pick(u, &live.breakers)?;
                    match u.int_in_range(0u8..=5)? {
                        0 => {
                            checked(fw_breaker_set_manual(b, u.int_in_range(0..=5)?));
                        }
                        1 => {
                            checked(fw_breaker_open_for(b, ns(u)?));
                        }
                        2 => {
                            let mut s = std::mem::zeroed::<fw_breaker_snapshot_t>();
                            let out = if u.ratio(1, 6)? { null_mut() } else { &mut s };
                            checked(fw_breaker_snapshot(b, out));
                        }
                        3 => {
                            let c = breaker_config(u)?;
                            checked(fw_breaker_reconfigure(b, &c));
                        }
                        4 => {
                            let mut st = fw_breaker_state_t::FW_BREAKER_CLOSED;
                            checked(fw_breaker_state(b, &mut st));
                        }
                        _ => {
                            let mut w = 0;
                            checked(fw_breaker_retry_after(b, &mut w));
                        }
                    }
                }
                7 => {
                    let c = fw_bulkhead_config_t {
                        max_concurrent: small(u)?,
                        critical_reserve: small(u)?,
                    };
                    let mut b = null_mut();
                    if checked(fw_bulkhead_new(&c, &mut b)) == FW_OK {
                        live.bulkheads.push(b);
                    }
                }
                8 | 9 => {
                    let b = pick(u, &live.bulkheads)?;
                    let prio: u32 = u.int_in_range(0..=2)?;
                    let mut p = std::mem::zeroed::<fw_bulkhead_permit_t>();
                    let out = if u.ratio(1, 10)? {
                        null_mut()
                    } else {
                        &mut p as *mut _
                    };
                    let s = if u.arbitrary()? {
                        fw_bulkhead_try_acquire(b, prio, out)
                    } else {
                        fw_bulkhead_acquire_timeout(b, prio, ns(u)? % 1_000_000, out)
                    };
                    if checked(s) == FW_OK {
                        let i = live.bulkheads.iter().position(|x| std::ptr::eq(*x, b));
                        live.slots.push((i.unwrap_or(usize::MAX), p));
                    }
                }
                10 if !live.slots.is_empty() => {
                    let (_, mut p) = live.slots.swap_remove(u.choose_index(live.slots.len())?);
                    assert_eq!(checked(fw_bulkhead_permit_release(&mut p)), FW_OK);
                    // Released twice through the same variable: refused,
                    // nothing returned twice.
                    assert_eq!(checked(fw_bulkhead_permit_release(&mut p)), FW_EINVAL);
                }
                11 => {
                    let b = pick(u, &live.bulkheads)?;
                    let c = fw_bulkhead_config_t {
                        max_concurrent: small(u)?,
                        critical_reserve: small(u)?,
                    };
                    checked(fw_bulkhead_reconfigure(b, &c));
                    let mut s = std::mem::zeroed::<fw_bulkhead_snapshot_t>();
                    if checked(fw_bulkhead_snapshot(b, &mut s)) == FW_OK {
                        let held = live
                            .slots
                            .iter()
                            .filter(|(i, _)| {
                                live.bulkheads.get(*i).is_some_and(|x| std::ptr::eq(*x, b))
                            })
                            .count();
                        assert_eq!(s.in_use, held as u64, "permits out");
                    }
                }
                12 => {
                    let c = fw_rate_limiter_config_t {
                        requests: if u.arbitrary()? {
                            u.arbitrary()?
                        } else {
                            u.int_in_range(0..=1000)?
                        },
                        period_ns: ns(u)?,
                        burst: if u.arbitrary()? {
                            u.arbitrary()?
                        } else {
                            u.int_in_range(0..=20)?
                        },
                        precise: u.arbitrary()?,
                    };
                    let mut l = null_mut();
                    if checked(fw_rate_limiter_new(&c, &mut l)) == FW_OK {
                        live.limiters.push(l);
                    }
                }
                13 | 14 => {
                    let l = pick(u, &live.limiters)?;
                    let n = small(u)?;
                    let mut wait = 0;
                    if u.arbitrary()? {
                        checked(fw_rate_limiter_try_acquire(l, n, &mut wait));
                    } else {
                        checked(fw_rate_limiter_acquire_timeout(
                            l,
                            n % 4,
                            ns(u)? % 2_000_000,
                        ));
                    }
                }
                15 => {
                    let l = pick(u, &live.limiters)?;
                    let c = fw_rate_limiter_config_t {
                        requests: u.arbitrary()?,
                        period_ns: ns(u)?,
                        burst: u.arbitrary()?,
                        precise: u.arbitrary()?,
                    };
                    checked(fw_rate_limiter_reconfigure(l, &c));
                }
                16 => {
                    let mut c = fw_retry_config_default();
                    c.max_attempts = small(u)?;
                    c.max_elapsed_ns = ns(u)?;
                    c.backoff = u.int_in_range(0..=3)?;
                    c.initial_ns = ns(u)?;
                    c.step_ns = ns(u)?;
                    c.multiplier = float(u)?;
                    c.max_ns = ns(u)?;
                    c.jitter = u.int_in_range(0..=5)?;
                    c.jitter_fraction = float(u)?;
                    c.seed = u.arbitrary()?;
                    c.budget_ratio = float(u)?;
                    c.budget_min_per_sec = float(u)? * 10.0;
                    let mut r = null_mut();
                    if checked(fw_retry_new(&c, &mut r)) == FW_OK {
                        live.retries.push(r);
                    }
                }
                17 => {
                    let r = pick(u, &live.retries)?;
                    let mut d = 0;
                    let out = if u.ratio(1, 8)? { null_mut() } else { &mut d };
                    checked(fw_retry_delay(r, small(u)?, ns(u)?, out));
                }
                18 => {
                    // Free a handle; its permits go first (a bulkhead permit
                    // must not outlive its bulkhead).
                    match u.int_in_range(0u8..=3)? {
                        0 if !live.breakers.is_empty() => {
                            let i = u.choose_index(live.breakers.len())?;
                            live.permits.retain(|(j, _)| *j != i);
                            fw_breaker_free(live.breakers[i]);
                            live.breakers[i] = null_mut();
                        }
                        1 if !live.bulkheads.is_empty() => {
                            let i = u.choose_index(live.bulkheads.len())?;
                            let mut kept = Vec::new();
                            for (j, mut p) in live.slots.drain(..) {
                                if j == i {
                                    checked(fw_bulkhead_permit_release(&mut p));
                                } else {
                                    kept.push((j, p));
                                }
                            }
                            live.slots = kept;
                            fw_bulkhead_free(live.bulkheads[i]);
                            live.bulkheads[i] = null_mut();
                        }
                        2 if !live.limiters.is_empty() => {
                            let i = u.choose_index(live.limiters.len())?;
                            fw_rate_limiter_free(live.limiters.swap_remove(i));
                        }
                        _ if !live.retries.is_empty() => {
                            let i = u.choose_index(live.retries.len())?;
                            fw_retry_free(live.retries.swap_remove(i));
                        }
                        _ => {}
                    }
                }
                19 => {
                    let len: usize = u.int_in_range(0..=64)?;
                    let mut buf = vec![0u8; len];
                    let p = if len == 0 && u.arbitrary()? {
                        null_mut()
                    } else {
                        buf.as_mut_ptr()
                    };
                    let n = fw_last_error(p.cast(), len);
                    if len > 0 {
                        assert!(buf.contains(&0), "the message is NUL-terminated");
                    }
                    let _ = n;
                    let _ = fw_status_str(u.arbitrary()?);
                }
                _ => {
                    let mut s = std::mem::zeroed::<fw_retry_snapshot_t>();
                    checked(fw_retry_snapshot(pick(u, &live.retries)?, &mut s));
                }
            }
        }
    }
    Ok(())
}
