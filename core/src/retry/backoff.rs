//! Backoff (the base delay before each retry) and jitter (how it is
//! randomised): pure functions of the attempt, the previous delay and a
//! random draw.

use std::time::Duration;

use crate::error::ConfigError;

/// Base delays between attempts, before jitter. `retry` counts from 1 (the
/// delay before the second attempt).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// The same delay every time.
    Constant(Duration),
    /// `initial + step × (retry − 1)`, at most `max`.
    Linear {
        /// The first delay.
        initial: Duration,
        /// Added per retry.
        step: Duration,
        /// The cap.
        max: Duration,
    },
    /// `initial × multiplier^(retry − 1)`, at most `max` (the source
    /// document's doubling from 100 ms, capped at 10 s, is
    /// `exponential(100 ms, 2.0, 10 s)`).
    Exponential {
        /// The first delay (> 0).
        initial: Duration,
        /// The growth per retry (≥ 1, finite).
        multiplier: f64,
        /// The cap (≥ initial).
        max: Duration,
    },
}

impl Backoff {
    /// Exponential backoff; see [`Backoff::Exponential`].
    pub fn exponential(initial: Duration, multiplier: f64, max: Duration) -> Self {
        Backoff::Exponential {
            initial,
            multiplier,
            max,
        }
    }

    /// The base delay before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let k = retry.max(1) - 1;
        match *self {
            Backoff::Constant(d) => d,
            Backoff::Linear { initial, step, max } => {
                initial.saturating_add(step.saturating_mul(k)).min(max)
            }
            Backoff::Exponential {
                initial,
                multiplier,
                max,
            } => {
                let grown = initial.as_secs_f64() * multiplier.powi(k.min(4096) as i32);
                if grown.is_finite() && grown < max.as_secs_f64() {
                    Duration::from_secs_f64(grown)
                } else {
                    max
                }
            }
        }
    }

    /// The smallest base delay (for decorrelated jitter's floor).
    pub(crate) fn initial(&self) -> Duration {
        match *self {
            Backoff::Constant(d) => d,
            Backoff::Linear { initial, .. } | Backoff::Exponential { initial, .. } => initial,
        }
    }

    /// The largest base delay.
    fn cap(&self) -> Duration {
        match *self {
            Backoff::Constant(d) => d,
            Backoff::Linear { max, .. } | Backoff::Exponential { max, .. } => max,
        }
    }

    /// Checks the backoff as [`Builder::build`](super::Builder::build) would (the bindings check
    /// a backoff when it is made).
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Backoff::Constant(_) => Ok(()),
            Backoff::Linear { initial, max, .. } if max < initial => Err(ConfigError::new(
                "backoff.max",
                format!("must be at least initial ({initial:?}), got {max:?}"),
            )),
            Backoff::Linear { .. } => Ok(()),
            Backoff::Exponential {
                initial,
                multiplier,
                max,
            } => {
                if initial.is_zero() {
                    Err(ConfigError::new("backoff.initial", "must be > 0"))
                } else if !multiplier.is_finite() || multiplier < 1.0 {
                    Err(ConfigError::new(
                        "backoff.multiplier",
                        format!("must be finite and at least 1, got {multiplier}"),
                    ))
                } else if max < initial {
                    Err(ConfigError::new(
                        "backoff.max",
                        format!("must be at least initial ({initial:?}), got {max:?}"),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// `d × factor` for a factor ≥ 0, saturating at `Duration::MAX` (a delay
/// of `Duration::MAX` with `+25 %` jitter stays `Duration::MAX`; it never
/// panics as `Duration::mul_f64` does).
fn scale(d: Duration, factor: f64) -> Duration {
    if factor.is_nan() || factor <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// Randomisation of each delay, so that clients do not retry in step.
///
/// With base delay `b` (from the backoff) and a uniform `u` in `[0, 1)`
/// (every product saturates at `Duration::MAX`, so even a backoff of
/// `Duration::MAX` with symmetric jitter never overflows):
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// `b`.
    None,
    /// `u · b`: in `[0, b)`, mean `b/2` (AWS "full jitter").
    Full,
    /// `b/2 + u · b/2`: in `[b/2, b)`, mean `3b/4` (AWS "equal jitter").
    Equal,
    /// `min(cap, initial + u · (3 · previous − initial))`, starting from
    /// `previous = initial`: in `[initial, min(cap, 3 · previous))` (AWS
    /// "decorrelated jitter"; ignores the backoff's growth, keeps its
    /// initial delay and cap).
    Decorrelated,
    /// `b · (1 − f + 2f · u)`: within `±f` of `b`, mean `b` (the classic
    /// `±25%` is `Symmetric(0.25)`); `f` in `[0, 1]`.
    Symmetric(f64),
}

impl Jitter {
    /// Applies the jitter to base delay `base`, given the previous delay
    /// (for decorrelated jitter), the backoff, and a uniform `u` in `[0, 1)`.
    pub fn apply(&self, base: Duration, previous: Duration, backoff: &Backoff, u: f64) -> Duration {
        match *self {
            Jitter::None => base,
            Jitter::Full => scale(base, u),
            Jitter::Equal => (base / 2).saturating_add(scale(base / 2, u)),
            Jitter::Decorrelated => {
                let lo = backoff.initial();
                let hi = previous.max(lo).saturating_mul(3);
                lo.saturating_add(scale(hi - lo, u))
                    .min(backoff.cap().max(lo))
            }
            Jitter::Symmetric(f) => scale(base, 1.0 - f + 2.0 * f * u),
        }
    }

    /// Checks the jitter as [`Builder::build`](super::Builder::build) would.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Jitter::Symmetric(f) if !(0.0..=1.0).contains(&f) => Err(ConfigError::new(
                "jitter",
                format!("symmetric fraction must be in [0, 1], got {f}"),
            )),
            _ => Ok(()),
        }
    }
}
