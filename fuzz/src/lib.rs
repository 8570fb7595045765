//! The bodies of failwell's fuzz targets, shared by `cargo fuzz` (the
//! binaries in `fuzz_targets/`) and by the replay tests in `tests/`, which
//! run them on seeded random inputs where libFuzzer is not available.
//!
//! Every check is against a reference model or an independent count kept
//! here, never against failwell's own view of itself:
//! - breaker: the generation is the transition count; every attempt is
//!   rejected, recorded, ignored or still held; at most `half_open_calls`
//!   probes of the current half-open are out; the window never holds more
//!   calls than were recorded in the current generation;
//! - bulkhead: an exact model of who may take a permit (normal callers
//!   above the reserve, critical ones above zero) and how many are out;
//! - rate limiter: an exact GCRA model in 128-bit arithmetic;
//! - retry: every delay within its backoff and jitter bounds;
//! - retry budget: every refusal counted.
//!
//! Time is a `ManualClock` moved by arbitrary gaps, up to the end of the
//! `u64` timeline.

use std::time::Duration;

use arbitrary::{Result, Unstructured};
use failwell::breaker::{Builder as BreakerBuilder, Permit, State, Window};
use failwell::bulkhead::{Bulkhead, BulkheadPermit, Priority};
use failwell::clock::{Clock, ManualClock};
use failwell::rate_limit::Builder as LimiterBuilder;
use failwell::retry::{Backoff, Builder as RetryBuilder, Jitter, RetryBudget};
use failwell::Rejected;

/// A duration from the fuzzer: small values most often, every extreme too.
fn duration(u: &mut Unstructured<'_>) -> Result<Duration> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 => Duration::ZERO,
        1 => Duration::MAX,
        2 => Duration::from_nanos(u64::MAX),
        3 => Duration::from_nanos(u.arbitrary()?),
        4 => Duration::new(u.arbitrary()?, u.int_in_range(0..=999_999_999)?),
        _ => Duration::from_millis(u.int_in_range(0..=10_000)?),
    })
}

/// A clock gap: mostly short, sometimes years, sometimes the rest of the
/// timeline.
fn gap(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => u64::MAX,
        1 => u.arbitrary()?,
        2 => u.int_in_range(0..=10 * 365 * 24 * 3600 * 1_000_000_000)?,
        _ => u.int_in_range(0..=2_000_000_000)?,
    })
}

fn count(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => u32::MAX,
        1 => u.arbitrary()?,
        _ => u.int_in_range(0..=12)?,
    })
}

fn ratio(u: &mut Unstructured<'_>) -> Result<f64> {
    Ok(match u.int_in_range(0u8..=6)? {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => -1.0,
        3 => u.arbitrary()?,
        _ => u.int_in_range(0u32..=100)? as f64 / 100.0,
    })
}

/// Runs one of the core targets, chosen by the first byte.
pub fn primitives(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = match u.int_in_range(0u8..=4) {
        Ok(0) => breaker(&mut u),
        Ok(1) => bulkhead(&mut u),
        Ok(2) => rate_limiter(&mut u),
        Ok(3) => retry(&mut u),
        Ok(_) => budget(&mut u),
        Err(e) => Err(e),
    };
}

fn breaker(u: &mut Unstructured<'_>) -> Result<()> {
    let clock = ManualClock::starting_at(u.arbitrary()?);
    let mut b = BreakerBuilder::with_clock(clock.clone());
    if u.arbitrary()? {
        b = b.consecutive_failures(count(u)?);
    }
    if u.arbitrary()? {
        let window = if u.arbitrary()? {
            Window::Count(count(u)?)
        } else {
            Window::Time {
                length: duration(u)?,
                buckets: count(u)?,
            }
        };
        b = b.failure_rate(ratio(u)?, window);
    }
    if u.arbitrary()? {
        b = b.slow_call_rate(ratio(u)?, duration(u)?);
    }
    b = b
        .minimum_calls(count(u)?)
        .half_open_calls(count(u)?)
        .half_open_max_wait(duration(u)?)
        .open_for(duration(u)?);
    let Ok(breaker) = b.build() else {
        return Ok(()); // refused: a ConfigError, never a panic
    };
    // The most probes any configuration in force allowed (a lowered limit
    // leaves the probes already out).
    let mut probes_allowed = breaker.config().half_open_calls();
    let mut held: Vec<Permit<'_, ManualClock>> = Vec::new();
    let (mut attempts, mut gen, mut recorded_in_gen) = (0u64, 0u64, 0u64);
    while !u.is_empty() {
        match u.int_in_range(0u8..=9)? {
            0..=3 => {
                attempts += 1;
                if let Ok(p) = breaker.try_acquire() {
                    held.push(p);
                }
            }
            4..=6 if !held.is_empty() => {
                let i = u.choose_index(held.len())?;
                let p = held.swap_remove(i);
                let current = p.generation() == breaker.snapshot().generation;
                let counts = current && matches!(p.state(), State::Closed | State::MetricsOnly);
                match u.int_in_range(0u8..=3)? {
                    0 => p.success(),
                    1 => p.failure(),
                    2 => p.success_with_duration(duration(u)?),
                    _ => {
                        drop(p);
                        continue;
                    }
                }
                if counts {
                    recorded_in_gen += 1;
                }
            }
            7 => clock.advance(Duration::from_nanos(gap(u)?)),
            8 => match u.int_in_range(0u8..=4)? {
                0 => breaker.reset(),
                1 => breaker.force_open(),
                2 => breaker.metrics_only(),
                3 => breaker.open_for(duration(u)?),
                _ => {
                    let n = count(u)?;
                    if breaker.reconfigure(|c| c.half_open_calls(n)).is_ok() {
                        probes_allowed = probes_allowed.max(n);
                    }
                }
            },
            _ => {
                let _ = breaker.retry_after();
            }
        }
        let s = breaker.snapshot();
        assert_eq!(s.generation, s.transitions, "one generation per transition");
        assert_eq!(
            attempts,
            s.rejected + s.calls + s.ignored + held.len() as u64,
            "every attempt is rejected, recorded, ignored or held"
        );
        if s.generation != gen {
            gen = s.generation;
            recorded_in_gen = 0;
        }
        if s.state == State::HalfOpen {
            let probes = held
                .iter()
                .filter(|p| p.state() == State::HalfOpen && p.generation() == gen)
                .count() as u32;
            assert!(
                probes <= probes_allowed,
                "{probes} probes out, {probes_allowed} allowed"
            );
        }
        if matches!(s.state, State::Closed | State::MetricsOnly) {
            assert!(
                s.window_calls <= recorded_in_gen,
                "window {} > recorded {recorded_in_gen}",
                s.window_calls
            );
        }
    }
    Ok(())
}

fn bulkhead(u: &mut Unstructured<'_>) -> Result<()> {
    let (mut max, mut reserve) = (count(u)?, count(u)?);
    let Ok(b) = Bulkhead::builder()
        .max_concurrent(max)
        .critical_reserve(reserve)
        .build()
    else {
        return Ok(());
    };
    let mut held: Vec<BulkheadPermit<'_>> = Vec::new();
    while !u.is_empty() {
        match u.int_in_range(0u8..=4)? {
            0 | 1 => {
                let critical: bool = u.arbitrary()?;
                let free = max as i64 - held.len() as i64;
                let floor = if critical { 0 } else { reserve as i64 };
                let p = if critical {
                    b.try_acquire_with(Priority::Critical)
                } else {
                    b.try_acquire()
                };
                assert_eq!(p.is_ok(), free > floor, "free {free}, floor {floor}");
                if let Ok(p) = p {
                    held.push(p);
                }
            }
            2 | 3 if !held.is_empty() => {
                let i = u.choose_index(held.len())?;
                drop(held.swap_remove(i));
            }
            _ => {
                let (m, r) = (count(u)?, count(u)?);
                let ok = b
                    .reconfigure(|c| c.max_concurrent(m).critical_reserve(r))
                    .is_ok();
                assert_eq!(ok, m >= 1 && m <= i32::MAX as u32 && r < m);
                if ok {
                    (max, reserve) = (m, r);
                }
            }
        }
        let s = b.snapshot();
        assert_eq!(s.in_use, held.len() as u64);
        assert_eq!(s.max_concurrent, max as u64);
    }
    drop(held);
    let s = b.snapshot();
    assert_eq!(
        (s.in_use, s.available),
        (0, max as u64),
        "every permit came back"
    );
    Ok(())
}

/// GCRA in 128-bit arithmetic: a request of cost `c` conforms at `now`
/// when `max(tat, now) + c − now ≤ limit` and the new TAT fits the `u64`
/// timeline.
struct GcraModel {
    tat: u128,
}

impl GcraModel {
    fn decide(&mut self, now: u64, cost: u64, limit: u64) -> bool {
        let new_tat = self.tat.max(now as u128) + cost as u128;
        let ok = new_tat <= u64::MAX as u128 && new_tat - now as u128 <= limit as u128;
        if ok {
            self.tat = new_tat;
        }
        ok
    }
}

fn rate_limiter(u: &mut Unstructured<'_>) -> Result<()> {
    let clock = ManualClock::starting_at(u.arbitrary()?);
    let mut b = LimiterBuilder::with_clock(clock.clone())
        .rate(u.arbitrary()?, duration(u)?)
        .precise(true);
    if u.arbitrary()? {
        b = b.burst(u.arbitrary()?);
    }
    let Ok(l) = b.build() else {
        return Ok(());
    };
    let mut model = GcraModel { tat: 0 };
    let (mut admitted, mut refused) = (0u64, 0u64);
    while !u.is_empty() {
        let s = l.snapshot();
        let interval = s.interval.as_nanos() as u64;
        let limit = s.burst * interval;
        match u.int_in_range(0u8..=5)? {
            0..=2 => {
                let n: u32 = u.int_in_range(0..=4)?;
                let r = l.try_acquire_n(n);
                let cost = interval.saturating_mul(n as u64);
                if cost > limit {
                    assert!(matches!(r, Err(Rejected::ExceedsCapacity { .. })), "{r:?}");
                    refused += n as u64;
                    continue;
                }
                let expected = model.decide(clock.now(), cost, limit);
                assert_eq!(r.is_ok(), expected, "{r:?} at {}", clock.now());
                if expected {
                    admitted += n as u64;
                } else {
                    refused += n as u64;
                }
            }
            3 | 4 => clock.advance(Duration::from_nanos(gap(u)?)),
            _ => {
                let burst: u64 = u.int_in_range(1..=100)?;
                let _ = l.set_burst(burst);
            }
        }
        let s = l.snapshot();
        assert_eq!((s.admitted, s.rejected), (admitted, refused));
    }
    Ok(())
}

fn retry(u: &mut Unstructured<'_>) -> Result<()> {
    let backoff = match u.int_in_range(0u8..=2)? {
        0 => Backoff::Constant(duration(u)?),
        1 => Backoff::Linear {
            initial: duration(u)?,
            step: duration(u)?,
            max: duration(u)?,
        },
        _ => Backoff::exponential(duration(u)?, ratio(u)? * 4.0, duration(u)?),
    };
    let jitter = match u.int_in_range(0u8..=4)? {
        0 => Jitter::None,
        1 => Jitter::Full,
        2 => Jitter::Equal,
        3 => Jitter::Decorrelated,
        _ => Jitter::Symmetric(ratio(u)?),
    };
    let clock = ManualClock::new();
    let Ok(r) = RetryBuilder::with_clock(clock)
        .max_attempts(count(u)?)
        .backoff(backoff)
        .jitter(jitter)
        .seed(u.arbitrary()?)
        .build()
    else {
        return Ok(());
    };
    let mut previous = Duration::ZERO;
    while !u.is_empty() {
        let attempt = count(u)?.max(1);
        let base = backoff.delay(attempt);
        let d = r.next_delay(attempt, previous);
        match jitter {
            Jitter::None => assert_eq!(d, base),
            Jitter::Full => assert!(d <= base),
            Jitter::Equal => assert!(d >= base / 2 && d <= base),
            Jitter::Symmetric(f) => {
                let (lo, hi) = (
                    base.as_secs_f64() * (1.0 - f),
                    base.as_secs_f64() * (1.0 + f),
                );
                let s = d.as_secs_f64();
                assert!(s >= lo * (1.0 - 1e-9) - 1e-9 && s <= hi * (1.0 + 1e-9) + 1e-9);
            }
            Jitter::Decorrelated => {}
        }
        previous = d;
    }
    Ok(())
}

fn budget(u: &mut Unstructured<'_>) -> Result<()> {
    let clock = ManualClock::starting_at(u.arbitrary()?);
    let Ok(b) = RetryBudget::with(ratio(u)?, ratio(u)? * 10.0, duration(u)?, clock.clone()) else {
        return Ok(());
    };
    let mut refused = 0;
    while !u.is_empty() {
        match u.int_in_range(0u8..=2)? {
            0 => b.deposit(),
            1 => {
                if !b.try_withdraw() {
                    refused += 1;
                }
            }
            _ => clock.advance(Duration::from_nanos(gap(u)?)),
        }
        assert_eq!(b.refused(), refused);
    }
    Ok(())
}

pub use c_abi::c_abi;

mod c_abi;
