//! The rate limiter: GCRA (the generic cell rate algorithm) over one atomic
//! word, the theoretical arrival time (TAT).
//!
//! The rule is pure arithmetic over a timestamp the caller supplies
//! ([`gcra`]), kept apart from the compare-and-swap loop that applies it, so
//! it is unit-, property- and loom-tested on its own terms (governor's
//! layout). With a rate of `r` per second (one request every `T = 1/r`) and a
//! burst of `b`, a request of cost `n` conforms when
//! `max(TAT, now) + n·T ≤ now + b·T`, and then moves TAT there. However
//! requests arrive, no interval of length `e` admits more than `b + e/T`.
//!
//! ```
//! use std::time::Duration;
//! use failwell::rate_limit::RateLimiter;
//! use failwell::Rejected;
//!
//! // 100 requests per second, bursts of up to 10.
//! let limiter = RateLimiter::builder().rate(100, Duration::from_secs(1)).burst(10).build()?;
//! for _ in 0..10 {
//!     assert!(limiter.try_acquire().is_ok());
//! }
//! match limiter.try_acquire() {
//!     Err(Rejected::RateLimited { retry_after }) => assert!(retry_after <= Duration::from_millis(10)),
//!     other => panic!("expected a refusal, got {other:?}"),
//! }
//! # Ok::<(), failwell::ConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::clock::{nanos, Clock, MonotonicClock, Sleeper};
use crate::counter::StripedCounter;
use crate::error::{ConfigError, Rejected};
use crate::sync::{
    fence, spin_wait, AtomicU64, CachePadded, CoreMutex, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release,
};
use crate::words::Placed;

/// The GCRA decision for a request whose cost is `cost` nanoseconds of
/// emission interval (`n · T`), against a tolerance of `limit` nanoseconds
/// (`burst · T`), at time `now`, given the theoretical arrival time `tat`.
///
/// Returns the new TAT if the request conforms, or else how long until it
/// would (if nothing else is admitted meanwhile). No input overflows: near
/// the end of the `u64` timeline, where the new TAT could not be
/// represented, the request never conforms (`Err(u64::MAX)`), so a clock
/// at its limit admits nothing rather than everything.
#[inline]
pub fn gcra(tat: u64, now: u64, cost: u64, limit: u64) -> Result<u64, u64> {
    match tat.max(now).checked_add(cost) {
        // `new_tat ≥ now`, so the difference is the debt ahead of now.
        Some(new_tat) if new_tat - now <= limit => Ok(new_tat),
        Some(new_tat) => Err(new_tat - now - limit),
        None => Err(u64::MAX),
    }
}

/// The period of a rate given as a count alone (a binding's `requests`
/// without a `period`): one second, governor's `Quota::per_second`.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(1);

/// Builds a [`RateLimiter`].
///
/// Defaults: no rate (it must be set); `burst` equal to the number of
/// requests in the rate's period (governor's `Quota::per_second(n)`
/// semantics); the clock's coarse reading (see [`precise`](Self::precise)).
#[derive(Debug, Clone)]
pub struct Builder<C: Clock = MonotonicClock> {
    clock: C,
    rate: Option<(u64, Duration)>,
    burst: Option<u64>,
    precise: bool,
}

impl Default for Builder<MonotonicClock> {
    fn default() -> Self {
        Builder::with_clock(MonotonicClock)
    }
}

impl Builder<MonotonicClock> {
    /// A builder on the system's monotonic clock.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C: Clock> Builder<C> {
    /// A builder reading time from `clock`.
    pub fn with_clock(clock: C) -> Self {
        Builder {
            clock,
            rate: None,
            burst: None,
            precise: false,
        }
    }

    /// Admit `requests` per `period` on average (`requests ≥ 1`,
    /// `period > 0`). The emission interval `period / requests` is rounded
    /// up to a whole nanosecond, so the limiter never admits faster than
    /// asked; a rate that this rounding would slow by more than 1 % (more
    /// than about 10^7 per second unless the interval is a near-whole
    /// number of nanoseconds, and always above 10^9 per second) is refused
    /// with a `ConfigError` rather than silently changed.
    pub fn rate(mut self, requests: u64, period: Duration) -> Self {
        self.rate = Some((requests, period));
        self
    }

    /// Admit up to `burst` requests at once after a quiet period (`≥ 1`).
    pub fn burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Read the clock's precise time instead of its coarse reading. The
    /// coarse reading (Linux's `CLOCK_MONOTONIC_COARSE`) costs a fraction
    /// as much and lags real time by up to one tick (1–4 ms), so over any
    /// real interval `e` the default admits at most `burst + rate · (e +
    /// tick)`; the precise clock makes it `burst + rate · e`.
    pub fn precise(mut self, precise: bool) -> Self {
        self.precise = precise;
        self
    }

    /// The emission interval and the tolerance, validated.
    fn params(&self) -> Result<(u64, u64), ConfigError> {
        let (requests, period) = self
            .rate
            .ok_or_else(|| ConfigError::new("rate", "must be set"))?;
        let interval = interval(requests, period)?;
        let burst = self.burst.unwrap_or(requests);
        Ok((interval, limit(burst, interval)?))
    }

    /// Validates and builds the limiter, with its bucket full.
    pub fn build(self) -> Result<RateLimiter<C>, ConfigError> {
        let (interval, limit) = self.params()?;
        Ok(RateLimiter::from_parts(
            Placed::heap(LimiterState::new(interval, limit)),
            StripedCounter::new(),
            self.precise,
            self.clock,
            false,
        ))
    }
}

impl<C: Clock> Builder<C> {
    /// The validated GCRA parameters, for a limiter whose state lives
    /// elsewhere (another store runs [`gcra`] on them): the emission
    /// interval `T` and the tolerance `burst · T`, in nanoseconds. Errors
    /// as [`build`](Self::build).
    pub fn gcra_params(&self) -> Result<(u64, u64), ConfigError> {
        self.params()
    }
}

#[cfg(all(unix, not(failwell_loom)))]
impl Builder<MonotonicClock> {
    /// What a shared region stores of a limiter's configuration (and
    /// compares on attach): the emission interval and tolerance in
    /// nanoseconds and whether the clock is read precisely; validated as
    /// at build.
    pub(crate) fn shared_params(&self) -> Result<(u64, u64, bool), ConfigError> {
        let (interval, limit) = self.params()?;
        Ok((interval, limit, self.precise))
    }
}

fn interval(requests: u64, period: Duration) -> Result<u64, ConfigError> {
    if requests == 0 {
        return Err(ConfigError::new(
            "rate",
            "requests per period must be at least 1, got 0",
        ));
    }
    if period.is_zero() {
        return Err(ConfigError::new("rate", "period must be > 0"));
    }
    let p = nanos(period);
    if p == u64::MAX {
        return Err(ConfigError::new(
            "rate",
            format!("period {period:?} is too long"),
        ));
    }
    let interval = p.div_ceil(requests);
    // The rounding slows the rate by `interval·requests − p` per `p`.
    let slower = (interval as u128 * requests as u128) - p as u128;
    if slower * 100 > p as u128 {
        return Err(ConfigError::new(
            "rate",
            format!(
                "{requests} per {period:?} needs an emission interval of {:.3} ns, which whole \
                 nanoseconds cannot represent within 1 % (it would become {interval} ns); \
                 use a rate of at most 10^9 per second, or a period that is a multiple of it",
                p as f64 / requests as f64
            ),
        ));
    }
    Ok(interval)
}

fn limit(burst: u64, interval: u64) -> Result<u64, ConfigError> {
    if burst == 0 {
        return Err(ConfigError::new("burst", "must be at least 1, got 0"));
    }
    burst
        .checked_mul(interval)
        .filter(|l| *l < u64::MAX / 4)
        .ok_or_else(|| {
            ConfigError::new(
                "burst",
                format!("{burst} × the emission interval overflows"),
            )
        })
}

/// A plain copy of a limiter's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests admitted (a request of cost `n` counts `n`).
    pub admitted: u64,
    /// Requests refused (each refused call counts its cost).
    pub rejected: u64,
    /// The emission interval: one request per this long.
    pub interval: Duration,
    /// The burst, in requests.
    pub burst: u64,
}

/// The limiter's parameters, changed together: a reconfiguration bumps
/// `version` to odd, stores both, and bumps it to even again (a sequence
/// lock), so a decision never pairs one configuration's interval with
/// another's limit.
#[repr(C)]
#[derive(Debug)]
struct Params {
    version: AtomicU64,
    /// `T`: nanoseconds per request.
    interval: AtomicU64,
    /// `burst · T`.
    limit: AtomicU64,
}

impl Params {
    /// `(interval, limit)` of one configuration.
    #[inline]
    fn read(&self) -> (u64, u64) {
        loop {
            // Acquire: pairs with the Release store that ends a write, so
            // the values read below are at least that write's.
            let v = self.version.load(Acquire);
            let interval = self.interval.load(Relaxed);
            let limit = self.limit.load(Relaxed);
            // Acquire fence: orders the loads above before the re-check, so
            // a write that began meanwhile is seen in `version`.
            fence(Acquire);
            if v & 1 == 0 && self.version.load(Relaxed) == v {
                return (interval, limit);
            }
            spin_wait();
        }
    }

    /// Stores a new configuration; callers serialise writes.
    fn write(&self, interval: u64, limit: u64) {
        let v = self.version.load(Relaxed);
        self.version.store(v.wrapping_add(1), Relaxed);
        // Release fence: the odd version is ordered before the new values,
        // so a reader that sees a new value sees the write begun (pairs
        // with the reader's Acquire fence).
        fence(Release);
        self.interval.store(interval, Relaxed);
        self.limit.store(limit, Relaxed);
        // Release: publishes both values to the reader's Acquire load.
        self.version.store(v.wrapping_add(2), Release);
    }
}

/// A GCRA rate limiter. Thread-safe; share it by reference or in an `Arc`.
pub struct RateLimiter<C: Clock = MonotonicClock> {
    /// On the heap, or in a shared region.
    state: Placed<LimiterState>,
    /// Serialises reconfigurations (never taken by callers).
    reconfiguring: CoreMutex<()>,
    /// Admitted requests, on the state's tail of words (see
    /// [`LimiterState`]; each thread counts on its own line).
    admitted: StripedCounter,
    precise: bool,
    /// In a shared region: the configuration is the region's.
    shared: bool,
    clock: C,
}

/// A rate limiter's state: plain atomic words at a fixed layout,
/// `#[repr(C)]` and pointer-free, each group on a cache line of its own:
/// `tat`, the theoretical arrival time in the clock's nanoseconds (the one
/// word every decision compare-and-swaps, see [`gcra`]); `params`, the
/// configuration under its sequence lock (`version`, odd while a write is
/// in progress, `interval` = T and `limit` = burst · T, in nanoseconds);
/// `rejected`, refusals since creation. Its tail, a run of words sized at
/// build, holds the admitted requests' stripes (one line per stripe).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct LimiterState {
    tat: CachePadded<AtomicU64>,
    params: CachePadded<Params>,
    rejected: CachePadded<AtomicU64>,
}

impl LimiterState {
    /// A full bucket (TAT 0) with no refusals.
    pub(crate) fn new(interval: u64, limit: u64) -> Self {
        LimiterState {
            tat: CachePadded::new(AtomicU64::new(0)),
            params: CachePadded::new(Params {
                version: AtomicU64::new(0),
                interval: AtomicU64::new(interval),
                limit: AtomicU64::new(limit),
            }),
            rejected: CachePadded::new(AtomicU64::new(0)),
        }
    }
}

impl RateLimiter<MonotonicClock> {
    /// A builder on the system's monotonic clock.
    pub fn builder() -> Builder<MonotonicClock> {
        Builder::new()
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter on `state` and its tail (the `admitted` counter's words),
    /// which live on the heap or in a shared region (`shared`).
    pub(crate) fn from_parts(
        state: Placed<LimiterState>,
        admitted: StripedCounter,
        precise: bool,
        clock: C,
        shared: bool,
    ) -> Self {
        RateLimiter {
            state,
            reconfiguring: CoreMutex::new(()),
            admitted,
            precise,
            shared,
            clock,
        }
    }

    #[inline]
    fn now(&self) -> u64 {
        if self.precise {
            self.clock.now()
        } else {
            self.clock.now_coarse()
        }
    }

    /// `(cost, limit)` of `n` requests, or the permanent refusal when `n`
    /// exceeds the burst.
    #[inline]
    fn cost(st: &LimiterState, n: u32) -> Result<(u64, u64), Rejected> {
        let (interval, limit) = st.params.read();
        let cost = interval.saturating_mul(n as u64);
        if cost > limit {
            // Refused like any other request (found by the fuzz target).
            st.rejected.fetch_add(n as u64, Relaxed);
            return Err(Rejected::ExceedsCapacity {
                requested: n,
                capacity: (limit / interval).min(u32::MAX as u64) as u32,
            });
        }
        Ok((cost, limit))
    }

    /// Admits one request now, or says how long until it would conform.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejected> {
        self.try_acquire_n(1)
    }

    /// Admits a request of cost `n` (e.g. `n` bytes or `n` rows) now, or says
    /// how long until it would conform. `n = 0` always conforms; `n` larger
    /// than the burst never does (`Rejected::ExceedsCapacity`).
    #[inline]
    pub fn try_acquire_n(&self, n: u32) -> Result<(), Rejected> {
        // The block's address once, in a register: every access below
        // would otherwise reload it after each atomic operation.
        let st: &LimiterState = &self.state;
        let (cost, limit) = Self::cost(st, n)?;
        let now = self.now();
        let mut wait = 0;
        let decided = Self::update_tat(st, |tat| match gcra(tat, now, cost, limit) {
            Ok(new_tat) => Some(new_tat),
            Err(w) => {
                wait = w;
                None
            }
        });
        if decided {
            self.admitted.add(n as u64);
            Ok(())
        } else {
            st.rejected.fetch_add(n as u64, Relaxed);
            Err(Rejected::RateLimited {
                retry_after: Duration::from_nanos(wait),
            })
        }
    }

    /// The limiter's one compare-and-swap loop: moves the TAT to what
    /// `decide` says of the TAT seen (`None`: leave it), retrying on a
    /// concurrent change; returns whether it moved.
    #[inline(always)]
    fn update_tat(st: &LimiterState, decide: impl FnMut(u64) -> Option<u64>) -> bool {
        // Relaxed: the TAT is the whole state; no other data is published
        // with it.
        st.tat.fetch_update(Relaxed, Relaxed, decide).is_ok()
    }

    /// How long until one request would conform (zero if now).
    pub fn next_ready(&self) -> Duration {
        let (interval, limit) = self.state.params.read();
        match gcra(self.state.tat.load(Relaxed), self.now(), interval, limit) {
            Ok(_) => Duration::ZERO,
            Err(wait) => Duration::from_nanos(wait),
        }
    }

    /// Changes rate and burst of the live limiter together, all or
    /// nothing. `change` gets a builder holding the settings in force (the
    /// rate as one request per emission interval, and the burst in
    /// requests) and returns it changed, e.g. `l.reconfigure(|b|
    /// b.rate(200, Duration::from_secs(1)).burst(20))`; the result is
    /// validated as at build, and on any error nothing changes. A new rate
    /// alone keeps the burst in requests. Whether the clock is read
    /// precisely is fixed at build (`precise`). Debt already taken (a
    /// theoretical arrival time ahead of now) is kept in time, so a slower
    /// rate cannot be dodged by a reconfiguration; every decision sees
    /// either the old configuration or the new one, never a mix.
    pub fn reconfigure(
        &self,
        change: impl FnOnce(Builder<MonotonicClock>) -> Builder<MonotonicClock>,
    ) -> Result<(), ConfigError> {
        if self.shared {
            return Err(ConfigError::new(
                "reconfigure",
                "a rate limiter in a shared region keeps the configuration it was created \
                 with there; every process attached to it uses that one",
            ));
        }
        let _g = self.reconfiguring.lock();
        let (interval, limit) = self.state.params.read();
        let current = Builder {
            clock: MonotonicClock,
            rate: Some((1, Duration::from_nanos(interval))),
            burst: Some((limit / interval).max(1)),
            precise: self.precise,
        };
        let new = change(current);
        if new.precise != self.precise {
            return Err(ConfigError::new(
                "precise",
                "is fixed when the limiter is built; build a new limiter to change it",
            ));
        }
        let (interval, limit) = new.params()?;
        self.state.params.write(interval, limit);
        Ok(())
    }

    /// Changes the rate on the live limiter; the burst in requests stays.
    /// The same as `reconfigure(|b| b.rate(requests, period))`.
    pub fn set_rate(&self, requests: u64, period: Duration) -> Result<(), ConfigError> {
        self.reconfigure(|b| b.rate(requests, period))
    }

    /// Changes the burst on the live limiter; the same as
    /// `reconfigure(|b| b.burst(burst))`.
    pub fn set_burst(&self, burst: u64) -> Result<(), ConfigError> {
        self.reconfigure(|b| b.burst(burst))
    }

    /// The counters and the current configuration.
    pub fn snapshot(&self) -> Snapshot {
        let (interval, limit) = self.state.params.read();
        Snapshot {
            admitted: self.admitted.sum(),
            rejected: self.state.rejected.load(Relaxed),
            interval: Duration::from_nanos(interval),
            burst: limit / interval,
        }
    }
}

impl<C: Clock + Sleeper> RateLimiter<C> {
    /// Waits at most `timeout` for one request to conform.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), Rejected> {
        self.acquire_n_timeout(1, timeout)
    }

    /// Waits at most `timeout` for a request of cost `n` to conform. If it
    /// can conform within `timeout`, the slot is reserved at once (one
    /// compare-and-swap) and the caller sleeps until it comes — no polling,
    /// no spinning, and first come, first served. If it cannot, returns at
    /// once with the wait it would have needed.
    pub fn acquire_n_timeout(&self, n: u32, timeout: Duration) -> Result<(), Rejected> {
        let st: &LimiterState = &self.state;
        let (cost, limit) = Self::cost(st, n)?;
        let max_wait = nanos(timeout);
        let now = self.now();
        let mut wait = 0;
        let reserved = Self::update_tat(st, |tat| {
            // The reservation: `gcra`'s decision, its wait accepted up to
            // `max_wait` (the TAT then as if admitted at `now + wait`).
            let (new_tat, w) = match gcra(tat, now, cost, limit) {
                Ok(t) => (t, 0),
                Err(w) => (tat.max(now).saturating_add(cost), w),
            };
            wait = w;
            (w <= max_wait && new_tat != u64::MAX).then_some(new_tat)
        });
        if !reserved {
            self.state.rejected.fetch_add(n as u64, Relaxed);
            return Err(Rejected::RateLimited {
                retry_after: Duration::from_nanos(wait),
            });
        }
        if wait > 0 {
            self.clock.sleep(Duration::from_nanos(wait));
        }
        self.admitted.add(n as u64);
        Ok(())
    }
}

impl<C: Clock> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("snapshot", &self.snapshot())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
