//! The circuit breaker: fail fast while a dependency is sick, probe it when
//! it may have recovered.
//!
//! The whole state lives in one atomic word (see `state.rs`); the closed
//! path is one load to admit a call and, to record a success, one
//! `fetch_add` plus the loads of the enabled windows. Transitions are rare
//! and serialised by a lock, so each one happens exactly once and publishes
//! its open deadline before any caller can see the new state.
//!
//! ```
//! use std::time::Duration;
//! use failwell::breaker::{CircuitBreaker, Window};
//! use failwell::Error;
//!
//! let breaker = CircuitBreaker::builder()
//!     .failure_rate(0.5, Window::Count(20))
//!     .minimum_calls(10)
//!     .open_for(Duration::from_secs(5))
//!     .build()
//!     .expect("valid configuration");
//!
//! let r: Result<u32, Error<&str>> = breaker.call(|| Ok(42));
//! assert_eq!(r.unwrap(), 42);
//!
//! // Or hold the permit yourself:
//! match breaker.try_acquire() {
//!     Ok(permit) => permit.success(),
//!     Err(rejected) => println!("not calling: {rejected}"),
//! };
//! ```

mod config;
mod state;
mod window;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use config::Live;
pub use config::{Builder, Config, Window};
pub use state::State;

use self::state::{Ident, Word, GEN_MASK, HALF_GEN_MASK};
use self::window::{CountWindow, Stats, TaggedCount, TimeWindow, Windows, FAILED, SLOW};
use crate::clock::{nanos, Clock, MonotonicClock};
use crate::counter::StripedCounter;
use crate::error::{ConfigError, Error, Rejected};
use crate::sync::{
    fence, AtomicU64, CachePadded, CoreMutex, CoreRwLock, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release, Ordering::SeqCst, SharedFn,
};

/// How a classifier judges a finished call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Counts as a success.
    Success,
    /// Counts as a failure.
    Failure,
    /// Counts as neither; frees a half-open probe slot.
    Ignore,
}

/// A state change, as delivered to listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// When it happened, in the breaker's clock's nanoseconds.
    pub at_nanos: u64,
    /// The generation the breaker entered: one more at every transition,
    /// never wrapping in a process's life (61 bits).
    pub generation: u64,
}

/// Identifies a registered listener, for [`CircuitBreaker::remove_listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

type Listener = SharedFn<dyn Fn(&Transition) + Send + Sync>;

/// A plain copy of a breaker's counters at one moment.
///
/// Cumulative counts cover the breaker's life; the window figures cover the
/// current generation's window only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// The state when the snapshot was taken.
    pub state: State,
    /// Its generation (see [`Permit::generation`]).
    pub generation: u64,
    /// Calls whose outcome was recorded as success or failure.
    pub calls: u64,
    /// Recorded successes.
    pub successes: u64,
    /// Recorded failures.
    pub failures: u64,
    /// Recorded calls at least as slow as the slow-call threshold.
    pub slow_calls: u64,
    /// Calls refused because the breaker was open, forced open or had no
    /// half-open probe slot free.
    pub rejected: u64,
    /// Permits dropped unrecorded or recorded as ignored.
    pub ignored: u64,
    /// State transitions.
    pub transitions: u64,
    /// Times the breaker went from a closed or half-open state to open.
    pub opened: u64,
    /// Calls in the current window.
    pub window_calls: u64,
    /// Failure rate of the current window (0 when it is empty).
    pub failure_rate: f64,
    /// Slow-call rate of the current window (0 when it is empty).
    pub slow_call_rate: f64,
    /// Failures in a row in the current generation.
    pub consecutive_failures: u64,
    /// Listener calls that panicked (caught and counted).
    pub listener_panics: u64,
}

#[derive(Debug, Default)]
struct Counters {
    failures: AtomicU64,
    slow: AtomicU64,
    ignored: AtomicU64,
    transitions: AtomicU64,
    opened: AtomicU64,
    listener_panics: AtomicU64,
}

#[derive(Debug, Default)]
struct Aux {
    /// Openings since the last close, for the growing open period.
    trips: u32,
    next_listener: u64,
}

/// A circuit breaker. Thread-safe; share it by reference or in an `Arc`.
///
/// See the [module documentation](self) for an example and
/// [`Builder`] for the policies and their defaults.
pub struct CircuitBreaker<C: Clock = MonotonicClock> {
    state: CachePadded<AtomicU64>,
    /// Every outcome recorded as success or failure (striped: each thread
    /// counts on its own cache line).
    calls: StripedCounter,
    rejected: CachePadded<AtomicU64>,
    counters: CachePadded<Counters>,
    windows: Windows,
    /// Valid while the state word says Open: written before the Release
    /// store that publishes the Open state.
    open_until: AtomicU64,
    /// Valid while the state word says HalfOpen, written likewise.
    half_open_since: AtomicU64,
    /// The full generation of the current half-open (the state word holds
    /// its low bits only); valid and written like `half_open_since`.
    half_open_gen: AtomicU64,
    aux: CoreMutex<Aux>,
    listeners: CoreRwLock<Vec<(ListenerId, Listener)>>,
    /// Structure fixed at build (which policies, the window); the values
    /// that can change live are in `live`.
    config: Config,
    live: CachePadded<Live>,
    clock: C,
}

impl CircuitBreaker<MonotonicClock> {
    /// A builder with the documented defaults.
    pub fn builder() -> Builder<MonotonicClock> {
        Builder::new()
    }
}

impl<C: Clock> Builder<C> {
    /// Validates the configuration and builds the breaker, closed.
    pub fn build(self) -> Result<CircuitBreaker<C>, ConfigError> {
        let (config, clock) = self.validate()?;
        Ok(CircuitBreaker::from_config(config, clock))
    }
}

impl<C: Clock> CircuitBreaker<C> {
    fn from_config(config: Config, clock: C) -> Self {
        let (count, time) = match config.window {
            Some(Window::Count(n)) => (Some(CountWindow::new(n)), None),
            Some(Window::Time { length, buckets }) => {
                (None, Some(TimeWindow::new(nanos(length), buckets)))
            }
            None => (None, None),
        };
        CircuitBreaker {
            state: CachePadded::new(AtomicU64::new(Word::new(State::Closed, 0).0)),
            calls: StripedCounter::new(),
            rejected: CachePadded::new(AtomicU64::new(0)),
            counters: CachePadded::new(Counters::default()),
            windows: Windows {
                consecutive: TaggedCount::new(),
                count,
                time,
            },
            open_until: AtomicU64::new(0),
            half_open_since: AtomicU64::new(0),
            half_open_gen: AtomicU64::new(0),
            aux: CoreMutex::new(Aux::default()),
            listeners: CoreRwLock::new(Vec::new()),
            live: CachePadded::new(Live::new(&config)),
            config,
            clock,
        }
    }

    /// The configuration in force (with any live changes).
    pub fn config(&self) -> Config {
        self.live.current(&self.config)
    }

    /// Changes thresholds, counts and durations of the live breaker without
    /// losing its state or blocking callers. `change` gets a builder holding
    /// the settings in force and returns it changed, e.g.
    /// `b.reconfigure(|c| c.open_for(Duration::from_secs(5)))`; the result
    /// is validated as at build. Which policies are on and the window are
    /// fixed at build: changing them is a `ConfigError` (`trip_policy`,
    /// `window`). Each new value takes effect on its own — a call racing
    /// the change may see some old and some new — and an open period
    /// already running keeps its end; a half-open whose probes already
    /// meet the new limit or thresholds gets its verdict at once.
    pub fn reconfigure(
        &self,
        change: impl FnOnce(Builder<MonotonicClock>) -> Builder<MonotonicClock>,
    ) -> Result<(), ConfigError> {
        // One reconfiguration at a time, so two never interleave their
        // stores; transitions take the same lock, callers do not.
        let _g = self.aux.lock();
        let current = self.config();
        let (new, _) = change(Builder::from_config(&current, MonotonicClock)).validate()?;
        let policies = |c: &Config| {
            (
                c.consecutive_failures.is_some(),
                c.failure_rate.is_some(),
                c.slow_call_rate.is_some(),
            )
        };
        if policies(&new) != policies(&current) {
            return Err(ConfigError::new(
                "trip_policy",
                "policies are turned on or off when the breaker is built; only their values change live",
            ));
        }
        if new.window != current.window {
            return Err(ConfigError::new(
                "window",
                "is fixed when the breaker is built; build a new breaker to change it",
            ));
        }
        self.live.store(&new);
        drop(_g);
        // SeqCst fence: pairs with the one after a probe's outcome (see
        // `on_probe_outcome`). A half-open whose outcomes already meet the
        // new limit or thresholds must not wait for a verdict no probe will
        // bring: decide it here.
        fence(SeqCst);
        let w = Word(self.state.load(Relaxed));
        if w.state() == State::HalfOpen {
            if let Some(to) = self.half_open_verdict(w) {
                self.transition(Some(w), to, None);
            }
        }
        Ok(())
    }

    /// The breaker's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Asks to make a call. In Closed, Disabled and MetricsOnly this always
    /// succeeds; in Open it succeeds only once the open period has ended
    /// (the caller becomes the first half-open probe); in HalfOpen only while
    /// fewer than `half_open_calls` probes are out. Never blocks.
    ///
    /// Record the call's outcome on the returned [`Permit`]; dropping it
    /// unrecorded counts the call as ignored.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_, C>, Rejected> {
        // Acquire: pairs with the Release CAS in `transition`, so the open
        // deadline written before an Open state was published is visible.
        let w = Word(self.state.load(Acquire));
        if w.is_closed() {
            return Ok(Permit::new(self, Ident(w.0)));
        }
        self.try_acquire_slow(w)
    }

    /// The closed-state fast path of [`try_acquire`](Self::try_acquire)
    /// alone, with no clock reading: a token when the breaker is Closed and
    /// has no slow-call policy (which must time the call), `None` otherwise
    /// (then call `try_acquire`, which handles every case). It never calls
    /// out of line, so a binding that sends every other case to an
    /// out-of-line function needs no stack frame on this path. The token's
    /// outcome is recorded with [`record_token`](Self::record_token) or
    /// [`try_record_closed_success`](Self::try_record_closed_success).
    #[inline]
    pub fn try_acquire_closed(&self) -> Option<PermitToken> {
        // Acquire: as in `try_acquire`.
        let w = Word(self.state.load(Acquire));
        (w.is_closed() && self.config.slow_call_rate.is_none()).then_some(PermitToken {
            word: w.0,
            start: 0,
        })
    }

    #[cold]
    fn try_acquire_slow(&self, mut w: Word) -> Result<Permit<'_, C>, Rejected> {
        loop {
            match w.state() {
                State::Closed | State::Disabled | State::MetricsOnly => {
                    return Ok(Permit::new(self, Ident(w.0)))
                }
                State::ForcedOpen => return Err(self.reject(None)),
                State::Open => {
                    let now = self.clock.now();
                    let until = self.open_until.load(Relaxed);
                    if now < until {
                        return Err(self.reject(Some(Duration::from_nanos(until - now))));
                    }
                    if let Some(probe) = self.transition(Some(w), State::HalfOpen, None) {
                        return Ok(Permit::new(self, probe));
                    }
                }
                State::HalfOpen => {
                    if w.issued() < self.live.half_open_calls() {
                        // Acquire on failure: as in `try_acquire` (the word
                        // seen may be a newer half-open, whose full
                        // generation `ident` reads).
                        match self.state.compare_exchange_weak(
                            w.0,
                            w.with_issued_plus_one().0,
                            Relaxed,
                            Acquire,
                        ) {
                            Ok(_) => return Ok(Permit::new(self, self.ident(w))),
                            Err(actual) => {
                                w = Word(actual);
                                continue;
                            }
                        }
                    }
                    let now = self.clock.now();
                    if let Some(hint) = self.busy_half_open_hint(now) {
                        return Err(self.reject(Some(hint)));
                    }
                    // No verdict in time: the probes are presumed hung.
                    self.transition(Some(w), State::Open, None);
                }
            }
            // Acquire: as in `try_acquire`.
            w = Word(self.state.load(Acquire));
        }
    }

    /// While every half-open probe slot is taken: when to come back, or
    /// `None` once the half-open has waited `half_open_max_wait` for a
    /// verdict (the caller then reopens it). A verdict may come any moment
    /// (the probes' calls end) or only at that bound (they hang), so the
    /// hint is how long the probes have run so far — a call about as long
    /// again is likely to find a verdict — at least 1 ms and at most the
    /// time left to the bound (never the whole bound at once, 60 s by
    /// default, for a half-open that may close in milliseconds).
    fn busy_half_open_hint(&self, now: u64) -> Option<Duration> {
        let since = self.half_open_since.load(Relaxed);
        let limit = since.saturating_add(self.live.half_open_max_wait());
        if now >= limit {
            return None;
        }
        let left = limit - now;
        let running = now.saturating_sub(since);
        Some(Duration::from_nanos(running.max(1_000_000).min(left)))
    }

    /// The permit identity of state word `w`: the word itself outside
    /// half-open; in half-open the full generation whose low bits `w`
    /// holds, rebuilt from `half_open_gen` (the caller's load of `w` must
    /// be Acquire, so the value published with it is visible; a newer one
    /// may be, and the rebuild then finds the older generation).
    fn ident(&self, w: Word) -> Ident {
        if !w.is_half_open() {
            return Ident(w.0);
        }
        let latest = self.half_open_gen.load(Relaxed);
        let back = latest.wrapping_sub(w.gen()) & HALF_GEN_MASK;
        Ident::new(State::HalfOpen, latest.wrapping_sub(back) & GEN_MASK)
    }

    /// Whether `w` (loaded with Acquire) is the half-open `id` was taken in.
    fn is_current_half_open(&self, w: Word, id: Ident) -> bool {
        w.is_half_open()
            && w.gen() == id.gen() & HALF_GEN_MASK
            && self.half_open_gen.load(Relaxed) == id.gen()
    }

    /// When a call admitted now starts, for the slow-call policy (0, and no
    /// clock read, without one).
    #[inline]
    fn call_start(&self) -> u64 {
        if self.config.slow_call_rate.is_some() {
            self.clock.now_coarse()
        } else {
            0
        }
    }

    /// How long a call that started at `start` (from `call_start`) took.
    #[inline]
    fn elapsed_since(&self, start: u64) -> u64 {
        if self.config.slow_call_rate.is_some() {
            self.clock.now_coarse().saturating_sub(start)
        } else {
            0
        }
    }

    fn reject(&self, retry_after: Option<Duration>) -> Rejected {
        self.rejected.fetch_add(1, Relaxed);
        Rejected::CircuitOpen { retry_after }
    }

    /// Runs `f` if the breaker admits it; `Err` counts as a failure and `Ok`
    /// as a success. A panic in `f` counts as ignored and propagates.
    #[inline]
    pub fn call<T, E, F>(&self, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.call_with(
            |r: &Result<T, E>| {
                if r.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                }
            },
            f,
        )
    }

    /// Runs `f` if the breaker admits it and records what `classify` says
    /// of its result, so that an `Ok` value can count as a failure (an HTTP
    /// 503) and chosen errors can be ignored (a 404). A panic in `f` counts
    /// as ignored and propagates.
    #[inline]
    pub fn call_with<T, E, F, K>(&self, classify: K, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
        K: FnOnce(&Result<T, E>) -> Outcome,
    {
        // A match rather than `?`: it keeps the permit in registers (the
        // `?` conversion made LLVM copy it through the stack with partial
        // stores, doubling the cost of a closed pass).
        match self.try_acquire() {
            Ok(permit) => {
                let result = f();
                permit.record(classify(&result));
                result.map_err(Error::Inner)
            }
            Err(r) => Err(Error::Rejected(r)),
        }
    }

    /// The current state. A load; never blocks.
    pub fn state(&self) -> State {
        Word(self.state.load(Relaxed)).state()
    }

    /// How long until a call would be admitted: zero when it would be now,
    /// `None` when that needs a manual change (forced open).
    pub fn retry_after(&self) -> Option<Duration> {
        // Acquire: as in `try_acquire`.
        let w = Word(self.state.load(Acquire));
        let wait_until =
            |until: u64| Some(Duration::from_nanos(until.saturating_sub(self.clock.now())));
        match w.state() {
            State::Closed | State::Disabled | State::MetricsOnly => Some(Duration::ZERO),
            State::ForcedOpen => None,
            State::Open => wait_until(self.open_until.load(Relaxed)),
            State::HalfOpen if w.issued() < self.live.half_open_calls() => Some(Duration::ZERO),
            State::HalfOpen => Some(
                self.busy_half_open_hint(self.clock.now())
                    .unwrap_or(Duration::ZERO),
            ),
        }
    }

    /// Holds the breaker open (every call rejected, no automatic probe)
    /// until [`reset`](Self::reset) or another manual change.
    pub fn force_open(&self) {
        self.transition(None, State::ForcedOpen, None);
    }

    /// Lets every call pass and counts nothing until a manual change.
    pub fn disable(&self) {
        self.transition(None, State::Disabled, None);
    }

    /// Lets every call pass and counts outcomes (metrics, windows) without
    /// ever tripping, until a manual change.
    pub fn metrics_only(&self) {
        self.transition(None, State::MetricsOnly, None);
    }

    /// Returns to Closed with empty windows, from any state.
    pub fn reset(&self) {
        self.transition(None, State::Closed, None);
    }

    /// Opens the breaker until `at_nanos` on its clock (for a server's
    /// `Retry-After`); then the first caller becomes a half-open probe.
    pub fn open_until(&self, at_nanos: u64) {
        self.transition(None, State::Open, Some(at_nanos));
    }

    /// Opens the breaker for `d` from now; see [`open_until`](Self::open_until).
    pub fn open_for(&self, d: Duration) {
        self.open_until(self.clock.now().saturating_add(nanos(d)));
    }

    /// Registers `f` to be called after every state change, on the thread
    /// that made the change, after the breaker's own lock is released. A
    /// panicking listener is caught and counted (`listener_panics`).
    pub fn add_listener<F>(&self, f: F) -> ListenerId
    where
        F: Fn(&Transition) + Send + Sync + 'static,
    {
        let id = {
            let mut aux = self.aux.lock();
            aux.next_listener += 1;
            ListenerId(aux.next_listener)
        };
        self.listeners.write().push((id, SharedFn::new(f)));
        id
    }

    /// Unregisters a listener; returns whether it was registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        let mut l = self.listeners.write();
        let before = l.len();
        l.retain(|(i, _)| *i != id);
        l.len() != before
    }

    /// The counters and the current window's rates.
    pub fn snapshot(&self) -> Snapshot {
        // Acquire: as in `try_acquire` (for a half-open's full generation).
        let w = Word(self.state.load(Acquire));
        let gen = self.ident(w).gen();
        let stats = self.window_stats(gen);
        let calls = self.calls.sum();
        let failures = self.counters.failures.load(Relaxed);
        let rate = |n: u64| {
            if stats.calls == 0 {
                0.0
            } else {
                (n as f64 / stats.calls as f64).min(1.0)
            }
        };
        Snapshot {
            state: w.state(),
            generation: gen,
            calls,
            successes: calls.saturating_sub(failures),
            failures,
            slow_calls: self.counters.slow.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            ignored: self.counters.ignored.load(Relaxed),
            transitions: self.counters.transitions.load(Relaxed),
            opened: self.counters.opened.load(Relaxed),
            window_calls: stats.calls,
            failure_rate: rate(stats.failures),
            slow_call_rate: rate(stats.slow),
            consecutive_failures: self.windows.consecutive.get(gen),
            listener_panics: self.counters.listener_panics.load(Relaxed),
        }
    }

    fn window_stats(&self, gen: u64) -> Stats {
        if let Some(c) = &self.windows.count {
            c.stats(gen)
        } else if let Some(t) = &self.windows.time {
            t.stats(self.clock.now_coarse(), gen)
        } else {
            Stats::default()
        }
    }

    /// Records the outcome of a permit of identity `w`. Always inlined: the
    /// closed success it leads to is the hot path of every call.
    #[inline(always)]
    fn on_outcome(&self, w: Ident, failed: bool, duration: u64) {
        let slow = duration >= self.live.slow_call_duration();
        if !failed && !slow && w.is_closed() {
            self.on_closed_success(w);
        } else {
            self.on_other_outcome(w, failed, slow);
        }
    }

    /// The hot path: a fast success in Closed.
    #[inline(always)]
    fn on_closed_success(&self, w: Ident) {
        self.calls.add(1);
        if self.state.load(Relaxed) != w.0 {
            return; // see `on_closed_outcome`
        }
        let gen = w.gen();
        if self.config.consecutive_failures.is_some() {
            self.windows.consecutive.clear(gen);
        }
        if let Some(c) = &self.windows.count {
            c.record_success(gen);
        } else if let Some(t) = &self.windows.time {
            t.record(self.clock.now_coarse(), gen, 0);
        }
    }

    #[inline(never)]
    fn on_other_outcome(&self, w: Ident, failed: bool, slow: bool) {
        match w.state() {
            State::Closed | State::MetricsOnly => self.on_closed_outcome(w, failed, slow),
            State::HalfOpen => self.on_probe_outcome(w, failed, slow),
            // Disabled counts nothing; no permit exists in the open states.
            _ => {}
        }
    }

    fn on_closed_outcome(&self, w: Ident, failed: bool, slow: bool) {
        let bits = (failed as u64 * FAILED) | (slow as u64 * SLOW);
        if bits != 0 {
            self.count_failure_and_slow(failed, slow);
        }
        self.calls.add(1);
        if self.state.load(Relaxed) != w.0 {
            // The generation this permit belongs to has ended. Checking here
            // keeps stale outcomes from taking a window sequence number; the
            // tags catch the ones that race with a transition.
            return;
        }
        let gen = w.gen();
        let mut trip = false;
        if self.config.consecutive_failures.is_some() {
            if failed {
                if let Some(c) = self.windows.consecutive.add(gen, 1) {
                    trip |= c as i64 >= self.live.consecutive_failures() as i64;
                }
            } else {
                self.windows.consecutive.clear(gen);
            }
        }
        if let Some(c) = &self.windows.count {
            c.record(gen, bits);
        } else if let Some(t) = &self.windows.time {
            t.record(self.clock.now_coarse(), gen, bits);
        }
        if bits != 0 && w.is_closed() && (trip || self.rates_exceeded(gen)) {
            self.transition(Some(w.word()), State::Open, None);
        }
    }

    fn count_failure_and_slow(&self, failed: bool, slow: bool) {
        if failed {
            self.counters.failures.fetch_add(1, Relaxed);
        }
        if slow {
            self.counters.slow.fetch_add(1, Relaxed);
        }
    }

    fn rates_exceeded(&self, gen: u64) -> bool {
        if !self.config.has_rate_policy() {
            return false;
        }
        let s = self.window_stats(gen);
        if s.calls < self.live.minimum_calls() {
            return false;
        }
        let over = |n: u64, threshold: Option<f64>| {
            threshold.is_some_and(|t| n as f64 >= t * s.calls as f64)
        };
        over(s.failures, self.live.failure_rate(&self.config))
            || over(s.slow, self.live.slow_call_rate(&self.config))
    }

    #[cold]
    fn on_probe_outcome(&self, w: Ident, failed: bool, slow: bool) {
        self.calls.add(1);
        self.count_failure_and_slow(failed, slow);
        // Acquire (and on CAS failure below): pairs with the Release CAS in
        // `transition`, so `half_open_gen` is at least that half-open's.
        let mut cur = Word(self.state.load(Acquire));
        loop {
            if !self.is_current_half_open(cur, w) {
                return; // that half-open has ended; this verdict is stale
            }
            if cur.successes() + cur.failures() >= cur.issued() {
                return; // more outcomes than probes: a token recorded twice
            }
            let new = cur.with_outcome(failed, slow);
            match self
                .state
                .compare_exchange_weak(cur.0, new.0, Relaxed, Acquire)
            {
                Ok(_) => {
                    // SeqCst fence: pairs with the one in `reconfigure`, so
                    // either this verdict reads the new probe limit or
                    // `reconfigure` sees this outcome in the word (a
                    // store-buffer pair: neither may miss both).
                    fence(SeqCst);
                    if let Some(to) = self.half_open_verdict(new) {
                        self.transition(Some(new), to, None);
                    }
                    return;
                }
                Err(actual) => cur = Word(actual),
            }
        }
    }

    fn half_open_verdict(&self, w: Word) -> Option<State> {
        let h = self.live.half_open_calls();
        let (s, f) = (w.successes(), w.failures());
        if !self.config.has_rate_policy() {
            return if f > 0 {
                Some(State::Open)
            } else if s >= h {
                Some(State::Closed)
            } else {
                None
            };
        }
        // Reopen as soon as the probes' rate can no longer end below a
        // threshold, even if every remaining probe succeeds.
        let decided = |n: u32, t: Option<f64>| t.is_some_and(|t| n as f64 >= t * h as f64);
        if decided(f, self.live.failure_rate(&self.config))
            || decided(w.slow(), self.live.slow_call_rate(&self.config))
        {
            Some(State::Open)
        } else if s + f >= h {
            Some(State::Closed)
        } else {
            None
        }
    }

    fn on_ignored(&self, w: Ident) {
        self.counters.ignored.fetch_add(1, Relaxed);
        if w.state() != State::HalfOpen {
            return;
        }
        // Give the probe slot back, if that half-open is still current.
        // Acquire (here and on CAS failure): as in `on_probe_outcome`.
        let mut cur = Word(self.state.load(Acquire));
        while self.is_current_half_open(cur, w) && cur.issued() > 0 {
            match self.state.compare_exchange_weak(
                cur.0,
                cur.with_issued_minus_one().0,
                Relaxed,
                Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => cur = Word(actual),
            }
        }
    }

    /// Moves to state `to`, if the state word still is `from` (same state
    /// and generation; `None` accepts any). Returns the new state's
    /// identity if this call made the change. Entering HalfOpen claims the
    /// first probe for the caller. `until` overrides the open deadline.
    #[cold]
    fn transition(&self, from: Option<Word>, to: State, until: Option<u64>) -> Option<Ident> {
        let mut aux = self.aux.lock();
        let mut cur = Word(self.state.load(Relaxed));
        let now = self.clock.now();
        let gen = loop {
            if from.is_some_and(|f| f.epoch() != cur.epoch()) {
                return None;
            }
            // Exact under the lock: `half_open_gen` is the current
            // half-open's, if it is one.
            let gen = (self.ident(cur).gen() + 1) & GEN_MASK;
            let mut new = Word::new(to, gen);
            match to {
                State::Open => {
                    let trips = if cur.state() == State::HalfOpen {
                        aux.trips.saturating_add(1)
                    } else {
                        1
                    };
                    let until = until
                        .unwrap_or_else(|| now.saturating_add(self.config().open_duration(trips)));
                    self.open_until.store(until, Relaxed);
                    aux.trips = trips;
                }
                State::HalfOpen => {
                    self.half_open_since.store(now, Relaxed);
                    self.half_open_gen.store(gen, Relaxed);
                    new = new.with_issued_plus_one();
                }
                State::Closed => aux.trips = 0,
                _ => {}
            }
            if gen % Windows::REFRESH_EVERY == 0 {
                self.windows.refresh(gen);
            }
            // Release: publishes open_until / half_open_since / half_open_gen
            // (stored above) to the Acquire loads of the state word.
            match self.state.compare_exchange(cur.0, new.0, Release, Relaxed) {
                Ok(_) => break gen,
                // Only half-open probe counters change outside the lock.
                Err(actual) => cur = Word(actual),
            }
        };
        self.counters.transitions.fetch_add(1, Relaxed);
        if to == State::Open && matches!(cur.state(), State::Closed | State::HalfOpen) {
            self.counters.opened.fetch_add(1, Relaxed);
        }
        drop(aux);
        self.publish(Transition {
            from: cur.state(),
            to,
            at_nanos: now,
            generation: gen,
        });
        Some(Ident::new(to, gen))
    }

    fn publish(&self, t: Transition) {
        let listeners: Vec<Listener> = {
            let l = self.listeners.read();
            if l.is_empty() {
                return;
            }
            l.iter().map(|(_, f)| SharedFn::clone(f)).collect()
        };
        for f in listeners {
            if catch_unwind(AssertUnwindSafe(|| f(&t))).is_err() {
                self.counters.listener_panics.fetch_add(1, Relaxed);
            }
        }
    }
}

#[cfg(all(test, not(failwell_loom)))]
impl<C: Clock> CircuitBreaker<C> {
    /// For tests: a closed breaker at generation `gen`, a refresh point (a
    /// multiple of `Windows::REFRESH_EVERY`), as if the transitions before
    /// it had run — their refreshes included — without running billions.
    pub(crate) fn jump_to_refresh_point(&self, gen: u64) {
        assert_eq!(gen % Windows::REFRESH_EVERY, 0);
        let _aux = self.aux.lock();
        self.windows.refresh(gen);
        self.state.store(Word::new(State::Closed, gen).0, Relaxed);
    }
}

impl<C: Clock> fmt::Debug for CircuitBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &Word(self.state.load(Relaxed)))
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// Permission to make one call through a breaker. Record its outcome with
/// [`success`](Self::success), [`failure`](Self::failure) or
/// [`record`](Self::record); dropped unrecorded (an early return, a panic)
/// it counts as ignored and frees its half-open slot.
///
/// The outcome counts only in the generation the permit was taken in: if
/// the breaker changed state meanwhile, it is left out of the new state's
/// windows (but still counted in the cumulative metrics).
#[must_use = "record the call's outcome on the permit"]
pub struct Permit<'a, C: Clock = MonotonicClock> {
    breaker: &'a CircuitBreaker<C>,
    word: Ident,
    /// When the permit was taken, if the slow-call policy needs it.
    start: u64,
}

impl<'a, C: Clock> Permit<'a, C> {
    #[inline]
    fn new(breaker: &'a CircuitBreaker<C>, word: Ident) -> Self {
        let start = breaker.call_start();
        Permit {
            breaker,
            word,
            start,
        }
    }

    /// The state the breaker was in when the permit was taken.
    pub fn state(&self) -> State {
        self.word.state()
    }

    /// The generation the permit was taken in (one more at every
    /// transition; 61 bits, so it never wraps in a process's life). Its
    /// outcome counts only there, however many transitions come between.
    pub fn generation(&self) -> u64 {
        self.word.gen()
    }

    /// Records the outcome; `duration` overrides the measured one. The
    /// permit's fields come out of a `ManuallyDrop` before anything else
    /// runs, so no drop of the permit is pending and it never needs a
    /// stack slot (with one, LLVM copied it through memory on every pass).
    #[inline(always)]
    fn finish(self, failed: bool, duration: Option<u64>) {
        let this = std::mem::ManuallyDrop::new(self);
        let (b, w, start) = (this.breaker, this.word, this.start);
        let d = duration.unwrap_or_else(|| b.elapsed_since(start));
        b.on_outcome(w, failed, d);
    }

    /// The call succeeded. With a slow-call policy, its duration is measured
    /// from when the permit was taken, on the clock's coarse reading (a few
    /// milliseconds' resolution on Linux); use
    /// [`success_with_duration`](Self::success_with_duration) for a finer one.
    #[inline(always)]
    pub fn success(self) {
        self.finish(false, None);
    }

    /// The call failed.
    #[inline(always)]
    pub fn failure(self) {
        self.finish(true, None);
    }

    /// The call succeeded and took `d` (for the slow-call policy).
    pub fn success_with_duration(self, d: Duration) {
        self.finish(false, Some(nanos(d)));
    }

    /// The call failed and took `d` (for the slow-call policy).
    pub fn failure_with_duration(self, d: Duration) {
        self.finish(true, Some(nanos(d)));
    }

    /// The call's outcome counts as neither success nor failure.
    pub fn ignore(self) {
        drop(self);
    }

    /// Records what a classifier said.
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.success(),
            Outcome::Failure => self.failure(),
            Outcome::Ignore => self.ignore(),
        }
    }
}

/// A permit detached from its borrow of the breaker, for holders that
/// cannot keep a [`Permit`] (a C caller, a permit crossing an owned
/// boundary). Record it with [`CircuitBreaker::record_token`] on the breaker
/// it came from, exactly once; a token never recorded keeps its half-open
/// slot until that half-open ends (record `Outcome::Ignore` to give it
/// back). Recording a token twice may count it twice, but never corrupts
/// the breaker: half-open never counts more outcomes than probes it
/// issued, and a token from another generation is stale as any permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermitToken {
    word: u64,
    start: u64,
}

impl PermitToken {
    /// The state the breaker was in when the permit was taken.
    pub fn state(&self) -> State {
        Ident(self.word).state()
    }

    /// The generation the permit was taken in.
    pub fn generation(&self) -> u64 {
        Ident(self.word).gen()
    }

    /// The token as two plain integers (for the C ABI's by-value permit).
    #[inline]
    pub fn into_raw(self) -> (u64, u64) {
        (self.word, self.start)
    }

    /// A token from [`into_raw`](Self::into_raw)'s integers. Any integers
    /// make a valid token: one that did not come from this breaker is
    /// recorded as a stale outcome or a bounded extra one, never corrupting
    /// the breaker.
    #[inline]
    pub fn from_raw(word: u64, start: u64) -> Self {
        PermitToken { word, start }
    }
}

impl<'a, C: Clock> Permit<'a, C> {
    /// Detaches the permit into a [`PermitToken`].
    #[inline]
    pub fn into_token(self) -> PermitToken {
        let t = PermitToken {
            word: self.word.0,
            start: self.start,
        };
        std::mem::forget(self);
        t
    }
}

impl<C: Clock> CircuitBreaker<C> {
    /// The common case of [`record_token`](Self::record_token) alone: a
    /// success for a token taken in Closed, on a breaker with no slow-call
    /// policy (so no duration is needed). Records it as `record_token(token,
    /// Outcome::Success, None)` would and returns `Ok`; in any other case it
    /// records nothing and hands the token back (then call `record_token`).
    /// Like [`try_acquire_closed`](Self::try_acquire_closed), for bindings
    /// that keep every other case out of line.
    #[inline]
    pub fn try_record_closed_success(&self, token: PermitToken) -> Result<(), PermitToken> {
        let w = Ident(token.word);
        if w.is_closed() && self.config.slow_call_rate.is_none() {
            self.on_closed_success(w);
            Ok(())
        } else {
            Err(token)
        }
    }

    /// Records the outcome of a detached permit; `duration` overrides the
    /// measured one for the slow-call policy.
    #[inline]
    pub fn record_token(&self, token: PermitToken, outcome: Outcome, duration: Option<Duration>) {
        let w = Ident(token.word);
        let d = duration.map_or_else(|| self.elapsed_since(token.start), nanos);
        match outcome {
            Outcome::Success => self.on_outcome(w, false, d),
            Outcome::Failure => self.on_outcome(w, true, d),
            Outcome::Ignore => self.on_ignored(w),
        }
    }
}

impl<C: Clock> Drop for Permit<'_, C> {
    fn drop(&mut self) {
        self.breaker.on_ignored(self.word);
    }
}

impl<C: Clock> fmt::Debug for Permit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("state", &self.word.state())
            .field("generation", &self.word.gen())
            .finish()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
