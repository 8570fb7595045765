//! Google SRE's client-side adaptive throttling: its rule (the local
//! rejection probability), its state (two sliding counts and a count of
//! rejections, plain atomic words) and the handle.

use std::fmt;
use std::time::Duration;

use crate::clock::{nanos, Clock, MonotonicClock};
use crate::counter::SlidingCount;
use crate::error::{ConfigError, Rejected};
use crate::rng::{fresh_seed, SharedRng};
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// A [`Throttler`]'s default multiplier `K` of accepted requests (2, the
/// SRE book's).
pub const DEFAULT_THROTTLER_K: f64 = 2.0;
/// A [`Throttler`]'s default window (2 minutes, the SRE book's).
pub const DEFAULT_THROTTLER_WINDOW: Duration = Duration::from_secs(120);

/// The throttler's rule: the local rejection probability for the window's
/// `requests` and `accepts` (sliding estimates) and multiplier `k`,
/// `max(0, (requests − k·accepts) / (requests + 1))`.
#[inline]
pub(crate) fn rejection_probability(requests: f64, accepts: f64, k: f64) -> f64 {
    ((requests - k * accepts) / (requests + 1.0)).max(0.0)
}

/// Google SRE's client-side adaptive throttling.
///
/// Over a sliding window (two epochs of `window` each, estimated as
/// `this + last × fraction still inside`), counts the requests the client
/// wanted to send and those the backend accepted, and rejects locally with
/// probability `max(0, (requests − K·accepts) / (requests + 1))`. Defaults:
/// `K` = 2 and a 2-minute window (the SRE book's).
pub struct Throttler<C: Clock = MonotonicClock> {
    k: f64,
    window: u64,
    state: ThrottlerState,
    rng: SharedRng,
    clock: C,
}

/// A throttler's state: plain atomic words, pointer-free, at a fixed
/// layout: the requests and the accepts as sliding counts (each two words
/// `[epoch:35 | count:29]`, see `counter.rs`) and the local rejections
/// since creation.
#[repr(C)]
#[derive(Debug)]
struct ThrottlerState {
    requests: SlidingCount,
    accepts: SlidingCount,
    throttled: AtomicU64,
}

impl Throttler<MonotonicClock> {
    /// A throttler with the defaults.
    pub fn new() -> Self {
        Self::with(
            DEFAULT_THROTTLER_K,
            DEFAULT_THROTTLER_WINDOW,
            MonotonicClock,
            None,
        )
        .expect("defaults are valid")
    }
}

impl Default for Throttler<MonotonicClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> Throttler<C> {
    /// A throttler with multiplier `k` (≥ 1, finite; lower throttles
    /// sooner), window `window` (≥ 1 s), on `clock`, seeded with `seed` (a
    /// fresh seed if `None`).
    pub fn with(
        k: f64,
        window: Duration,
        clock: C,
        seed: Option<u64>,
    ) -> Result<Self, ConfigError> {
        if !k.is_finite() || k < 1.0 {
            return Err(ConfigError::new(
                "k",
                format!("must be finite and ≥ 1, got {k}"),
            ));
        }
        if window < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "window",
                format!("must be at least 1 s, got {window:?}"),
            ));
        }
        Ok(Throttler {
            k,
            window: nanos(window),
            state: ThrottlerState {
                requests: SlidingCount::new(),
                accepts: SlidingCount::new(),
                throttled: AtomicU64::new(0),
            },
            rng: SharedRng::new(seed.unwrap_or_else(fresh_seed)),
            clock,
        })
    }

    fn epoch(&self) -> (u64, f64) {
        let now = self.clock.now_coarse();
        (
            now / self.window,
            1.0 - (now % self.window) as f64 / self.window as f64,
        )
    }

    /// The current local rejection probability.
    pub fn rejection_probability(&self) -> f64 {
        let (epoch, left) = self.epoch();
        let requests = self.state.requests.estimate(epoch, left);
        let accepts = self.state.accepts.estimate(epoch, left);
        rejection_probability(requests, accepts, self.k)
    }

    /// Counts a request and decides whether to send it: `Err(Shed)` means
    /// reject it locally without sending.
    pub fn try_send(&self) -> Result<(), Rejected> {
        let p = self.rejection_probability();
        let (epoch, _) = self.epoch();
        self.state.requests.add(epoch);
        if p > 0.0 && self.rng.next_f64() < p {
            self.state.throttled.fetch_add(1, Relaxed);
            return Err(Rejected::Shed);
        }
        Ok(())
    }

    /// Reports that the backend accepted a request it was sent.
    pub fn accepted(&self) {
        let (epoch, _) = self.epoch();
        self.state.accepts.add(epoch);
    }

    /// Requests rejected locally so far.
    pub fn throttled(&self) -> u64 {
        self.state.throttled.load(Relaxed)
    }
}

impl<C: Clock> fmt::Debug for Throttler<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttler")
            .field("k", &self.k)
            .field("rejection_probability", &self.rejection_probability())
            .finish_non_exhaustive()
    }
}
