//! The adaptive limit's rule: the algorithms and one step of each, a pure
//! function of the algorithm's state and a window's figures (mean
//! latency, most calls in flight, whether any was dropped). The handle
//! (`mod.rs`) gathers the windows and publishes the rounded limit.

use std::time::Duration;

use crate::clock::nanos;
use crate::error::ConfigError;

/// The Gradient algorithm's default latency tolerance (1.0).
pub const DEFAULT_GRADIENT_TOLERANCE: f64 = 1.0;
/// AIMD's default multiplicative decrease (0.9, Netflix's).
pub const DEFAULT_AIMD_BACKOFF_RATIO: f64 = 0.9;
/// How an [`AdaptiveLimit`](super::AdaptiveLimit) moves its limit. Samples are gathered in
/// windows of about one limit's worth of calls (at least 10), and the
/// algorithm sees each window's mean latency, its most calls in flight and
/// whether any call was dropped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    /// Per window: on a drop, or a mean latency above `latency_threshold`,
    /// `limit ×= backoff_ratio`; otherwise, while at least half the limit
    /// was in use, `limit += 1`. Netflix's default `backoff_ratio` is 0.9;
    /// the threshold has no universal default (Netflix uses 5 s): set it a
    /// little above the dependency's unloaded latency.
    Aimd {
        /// Multiplicative decrease, in `[0.5, 1)`.
        backoff_ratio: f64,
        /// A latency above this counts as a drop.
        latency_threshold: Duration,
    },
    /// Netflix's Gradient2 rule against a baseline latency:
    /// `gradient = clamp(tolerance × baseline / latency, 0.5, 1)`,
    /// `new = limit × gradient + queue_size`, smoothed by `smoothing`. The
    /// baseline is an exponential average of latencies over `long_window`
    /// samples — but only of samples taken with the limit not exceeded by
    /// queueing (latency within `tolerance` of the baseline) or lower, so
    /// that sustained overload cannot teach it that slow is normal (the
    /// drift Netflix's Gradient2 is known for). A drop halves the gradient.
    /// Defaults ([`Algorithm::gradient`]): smoothing 0.2, queue size 4 and
    /// long window 600 are Gradient2's; tolerance 1.0 is failwell's — the
    /// limit then settles near the dependency's concurrency capacity with
    /// latency near its unloaded latency (see the simulation tests), where
    /// Gradient2's 1.5 lets latency grow by half or more before it backs
    /// off. Raise it to trade latency for throughput.
    Gradient {
        /// How much slower than the baseline still counts as unloaded (≥ 1).
        tolerance: f64,
        /// Weight of each new limit estimate, in `(0, 1]`.
        smoothing: f64,
        /// Headroom added per update, in permits (≥ 0).
        queue_size: f64,
        /// Samples in the baseline's average (≥ 1).
        long_window: u32,
    },
}

impl Algorithm {
    /// The Gradient algorithm with its defaults (see [`Algorithm::Gradient`]).
    pub fn gradient() -> Self {
        Algorithm::Gradient {
            tolerance: DEFAULT_GRADIENT_TOLERANCE,
            smoothing: 0.2,
            queue_size: 4.0,
            long_window: 600,
        }
    }

    /// The AIMD algorithm with Netflix's backoff ratio
    /// ([`DEFAULT_AIMD_BACKOFF_RATIO`]) and `latency_threshold`.
    pub fn aimd(latency_threshold: Duration) -> Self {
        Algorithm::Aimd {
            backoff_ratio: DEFAULT_AIMD_BACKOFF_RATIO,
            latency_threshold,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Algorithm::Aimd {
                backoff_ratio,
                latency_threshold,
            } => {
                if !(0.5..1.0).contains(&backoff_ratio) {
                    return Err(ConfigError::new(
                        "backoff_ratio",
                        format!("must be in [0.5, 1), got {backoff_ratio}"),
                    ));
                }
                if latency_threshold.is_zero() {
                    return Err(ConfigError::new(
                        "latency_threshold",
                        "AIMD needs one (> 0; no value suits every dependency): set it a little above the dependency's unloaded latency",
                    ));
                }
            }
            Algorithm::Gradient {
                tolerance,
                smoothing,
                queue_size,
                long_window,
            } => {
                if !tolerance.is_finite() || tolerance < 1.0 {
                    return Err(ConfigError::new(
                        "tolerance",
                        format!("must be finite and ≥ 1, got {tolerance}"),
                    ));
                }
                if !(smoothing > 0.0 && smoothing <= 1.0) {
                    return Err(ConfigError::new(
                        "smoothing",
                        format!("must be in (0, 1], got {smoothing}"),
                    ));
                }
                if !queue_size.is_finite() || queue_size < 0.0 {
                    return Err(ConfigError::new(
                        "queue_size",
                        format!("must be finite and ≥ 0, got {queue_size}"),
                    ));
                }
                if long_window == 0 {
                    return Err(ConfigError::new("long_window", "must be at least 1"));
                }
            }
        }
        Ok(())
    }
}

/// The algorithm's state between windows (the handle keeps it under a
/// lock taken by one sampler at a time; see `mod.rs`).
#[derive(Debug)]
pub(crate) struct LimitState {
    /// The window being gathered: samples, latency sum, most in flight,
    /// whether any was dropped.
    pub(crate) window_samples: u64,
    pub(crate) window_latency: f64,
    pub(crate) window_in_flight: f64,
    pub(crate) window_dropped: bool,
    pub(crate) estimate: f64,
    /// Gradient: the baseline latency (ns); 0 before the first sample.
    pub(crate) baseline: f64,
    pub(crate) samples: u64,
}

/// One step of `algorithm` for a window of mean `latency` (ns), most
/// `in_flight` calls and `dropped` (any call dropped): the new limit,
/// unrounded and not yet clamped to the bounds.
pub(crate) fn step(
    algorithm: &Algorithm,
    st: &mut LimitState,
    latency: f64,
    in_flight: f64,
    dropped: bool,
) -> f64 {
    let est = st.estimate;
    st.samples += 1;
    match *algorithm {
        Algorithm::Aimd {
            backoff_ratio,
            latency_threshold,
        } => {
            if dropped || latency > nanos(latency_threshold) as f64 {
                est * backoff_ratio
            } else if in_flight * 2.0 >= est {
                est + 1.0
            } else {
                est // application-limited: no evidence for more
            }
        }
        Algorithm::Gradient {
            tolerance,
            smoothing,
            queue_size,
            long_window,
        } => {
            if st.baseline == 0.0 {
                st.baseline = latency;
            }
            // The baseline learns from unloaded samples only (see the
            // algorithm's doc); warm-up averages the first samples.
            if latency <= st.baseline * tolerance {
                let n = (st.samples as f64).min(long_window as f64);
                st.baseline += (latency - st.baseline) / n;
            }
            if !dropped && in_flight * 2.0 < est {
                est // application-limited
            } else {
                let mut gradient = (tolerance * st.baseline / latency.max(1.0)).clamp(0.5, 1.0);
                if dropped {
                    gradient *= 0.5;
                }
                let target = est * gradient + queue_size;
                est * (1.0 - smoothing) + target * smoothing
            }
        }
    }
}
