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

//!
//! # What counts as a failure
//!
//! One rule in every language: the dependency's answer counts, an
//! interruption does not. An error the call *returned or raised* is a
//! failure (a Rust `Err`, a C call's failure status, a C++ exception, a
//! Python `Exception`), unless a classifier or an `exclude` rule says
//! otherwise. A call that never produced an answer is ignored and frees
//! its half-open probe slot: a Rust panic (a bug in the caller, not news
//! about the dependency), a Python `BaseException` that is not an
//! `Exception` (`KeyboardInterrupt`, `SystemExit`, `GeneratorExit`,
//! `asyncio.CancelledError`), a C++ thread cancellation
//! (`abi::__forced_unwind`), and any permit dropped unrecorded.
//!
//! Inside, the breaker is kept in concerns of their own: `rule.rs`, the
//! pure decisions (trip, half-open verdict, open period, retry hint);
//! `state.rs`, the state word, the fixed state block and the layout of its
//! tail; `window.rs` (with `count.rs`, `time.rs`), the outcome windows as
//! views of the block and tail; this file, the handle (admission and
//! transitions);
//! `record.rs`, recording outcomes; `permit.rs`, the permits;
//! `events.rs`, transitions and listeners; `snapshot.rs`, the snapshot.

mod config;
pub(crate) mod events;
mod live;
// The shared breaker's (unix, not loom), and loom's models of it.
#[cfg(any(all(unix, not(failwell_loom)), all(test, failwell_loom)))]
pub(crate) mod lock_word;
mod permit;
mod record;
mod rule;
mod settings;
#[cfg(all(unix, not(failwell_loom)))]
pub(crate) mod shared;
mod snapshot;
pub(crate) mod state;
mod window;

use std::fmt;
use std::time::Duration;

#[cfg(not(failwell_loom))]
pub(crate) use config::CONFIG_WORDS;
pub use config::{
    Builder, Config, Window, DEFAULT_FAILURE_RATE, DEFAULT_HALF_OPEN_CALLS,
    DEFAULT_HALF_OPEN_MAX_WAIT, DEFAULT_MINIMUM_CALLS, DEFAULT_OPEN_FOR,
    DEFAULT_SLOW_CALL_DURATION, DEFAULT_SLOW_CALL_RATE, DEFAULT_WINDOW_BUCKETS,
    DEFAULT_WINDOW_CALLS,
};
pub use events::{ListenerId, Transition};
use live::Live;
pub use permit::{OwnedPermit, Permit, PermitToken};
pub use settings::Settings;
pub use snapshot::Snapshot;
pub use state::State;

use self::events::Listeners;
use self::state::{BreakerState, Ident, TailLayout, Word, GEN_MASK, HALF_GEN_MASK};
use self::window::{View, WindowLayout};
use crate::clock::{nanos, Clock, MonotonicClock};
use crate::error::{ConfigError, Error, Rejected};
use crate::sync::{
    fence, CachePadded, CoreMutex, Ordering, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release, Ordering::SeqCst,
};
use crate::words::{Placed, Words};

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

/// A circuit breaker. Thread-safe; share it by reference or in an `Arc`.
///
/// See the [module documentation](self) for an example and
/// [`Builder`] for the policies and their defaults.
pub struct CircuitBreaker<C: Clock = MonotonicClock> {
    /// The state word, counts, published values and the windows' fixed
    /// words (see `state.rs`): on the heap, or in a host region.
    state: Placed<BreakerState>,
    /// The state's sized words: call stripes and window (see `state.rs`).
    tail: Words,
    layout: TailLayout,
    /// Serialises transitions (and reconfigurations), so each happens
    /// exactly once; callers never take it. (A shared breaker's lock is in
    /// its region.)
    transition_lock: CoreMutex<()>,
    listeners: Listeners,
    /// A breaker in a host region: its lock word, probe ledger and the
    /// listeners other processes' transitions reach (see `shared.rs`).
    #[cfg(all(unix, not(failwell_loom)))]
    shared: Option<Box<shared::Shared>>,
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

#[cfg(all(unix, not(failwell_loom)))]
impl CircuitBreaker<MonotonicClock> {
    /// A breaker on a host region's block (see
    /// [`Region::circuit_breaker`](crate::region::Region::circuit_breaker)):
    /// `config` and `layout` as the region stores them.
    pub(crate) fn from_shared(
        config: Config,
        state: Placed<BreakerState>,
        tail: Words,
        layout: TailLayout,
        shared: shared::Shared,
    ) -> Self {
        CircuitBreaker {
            state,
            tail,
            layout,
            transition_lock: CoreMutex::new(()),
            // Unused: a shared breaker's listeners (and name) are its
            // watch's, which the reaper thread reaches too.
            listeners: Listeners::default(),
            shared: Some(Box::new(shared)),
            live: CachePadded::new(Live::new(&config)),
            config,
            clock: MonotonicClock,
        }
    }
}

impl<C: Clock> Builder<C> {
    /// Validates the configuration and builds the breaker, closed.
    pub fn build(mut self) -> Result<CircuitBreaker<C>, ConfigError> {
        let name = self.take_name();
        let (config, clock) = self.validate()?;
        Ok(CircuitBreaker::from_config(name, config, clock))
    }
}

impl<C: Clock> CircuitBreaker<C> {
    fn from_config(name: Option<std::sync::Arc<str>>, config: Config, clock: C) -> Self {
        let layout = TailLayout::new(config.window);
        CircuitBreaker {
            state: Placed::heap(BreakerState::new()),
            tail: layout.new_tail(),
            layout,
            transition_lock: CoreMutex::new(()),
            listeners: Listeners::named(name),
            #[cfg(all(unix, not(failwell_loom)))]
            shared: None,
            live: CachePadded::new(Live::new(&config)),
            config,
            clock,
        }
    }

    /// Runs `f` under the transition lock (the region's, for a shared
    /// breaker).
    #[inline]
    fn with_transition_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(all(unix, not(failwell_loom)))]
        if let Some(s) = &self.shared {
            return s.locked(f);
        }
        let _g = self.transition_lock.lock();
        f()
    }

    /// The listeners of this process (for a shared breaker, the ones the
    /// reaper thread can reach too).
    fn listeners(&self) -> &Listeners {
        #[cfg(all(unix, not(failwell_loom)))]
        if let Some(s) = &self.shared {
            return &s.watch.listeners;
        }
        &self.listeners
    }

    /// A shared breaker: tells this process's listeners of a state entered
    /// elsewhere (a no-op in process).
    #[inline]
    fn catch_up(&self) {
        #[cfg(all(unix, not(failwell_loom)))]
        if let Some(s) = &self.shared {
            // A child of fork() starts its own reaper thread here.
            crate::region::ensure_reaper();
            s.watch.catch_up();
        }
    }

    /// A probe of half-open generation `gen` taken (`true`) or about to be
    /// recorded (`false`), for a shared breaker's probe ledger.
    #[inline]
    fn note_probe(&self, gen: u64, taken: bool) {
        #[cfg(all(unix, not(failwell_loom)))]
        if let Some(s) = &self.shared {
            if taken {
                s.probe_taken(gen);
            } else {
                s.probe_done(gen);
            }
        }
        let _ = (gen, taken);
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
        #[cfg(all(unix, not(failwell_loom)))]
        if self.shared.is_some() {
            return Err(ConfigError::new(
                "reconfigure",
                "a breaker in a host region keeps the configuration it was created with",
            ));
        }
        // One reconfiguration at a time, so two never interleave their
        // stores; transitions take the same lock, callers do not.
        let _g = self.transition_lock.lock();
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
        let w = Word(self.state.word.load(Relaxed));
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

    /// Counts one call recorded as success or failure.
    #[inline(always)]
    fn count_call(&self) {
        self.layout.calls.add(&self.tail, 1);
    }

    /// The window the configuration has.
    #[inline(always)]
    fn window(&self) -> View<'_> {
        self.layout.window.view(&self.state.windows, &self.tail)
    }

    /// See [`WindowLayout::refresh`].
    fn refresh_windows(&self, gen: u64) {
        self.layout
            .window
            .refresh(&self.state.windows, &self.tail, gen);
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
        let w = Word(self.state.word.load(Acquire));
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
        let w = Word(self.state.word.load(Acquire));
        (w.is_closed() && self.config.slow_call_rate.is_none()).then_some(PermitToken {
            word: w.0,
            start: 0,
        })
    }

    #[cold]
    fn try_acquire_slow(&self, mut w: Word) -> Result<Permit<'_, C>, Rejected> {
        self.catch_up();
        loop {
            match w.state() {
                State::Closed | State::Disabled | State::MetricsOnly => {
                    return Ok(Permit::new(self, Ident(w.0)))
                }
                State::ForcedOpen => return Err(self.reject(None)),
                State::Open => {
                    let now = self.clock.now();
                    let until = self.state.published.open_until.load(Relaxed);
                    if now < until {
                        return Err(self.reject(Some(Duration::from_nanos(until - now))));
                    }
                    if let Some(probe) = self.transition(Some(w), State::HalfOpen, None) {
                        self.note_probe(probe.gen(), true);
                        return Ok(Permit::new(self, probe));
                    }
                }
                State::HalfOpen => {
                    let limit = self.live.half_open_calls();
                    let claimed = self.update(Relaxed, |cur| {
                        (cur.is_half_open() && cur.issued() < limit)
                            .then(|| cur.with_issued_plus_one())
                    });
                    match claimed {
                        Ok(before) => {
                            let probe = self.ident(before);
                            self.note_probe(probe.gen(), true);
                            return Ok(Permit::new(self, probe));
                        }
                        Err(seen) => {
                            w = seen;
                            if !w.is_half_open() {
                                continue; // the word moved on: decide again
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
            w = Word(self.state.word.load(Acquire));
        }
    }

    /// The one compare-and-swap loop on the state word: applies `step` to
    /// the word until the swap holds (`Ok(word before)`) or `step` declines
    /// (`Err(word seen)`). Loads are Acquire: they pair with the Release
    /// swap of [`transition`](Self::transition), so the values published
    /// with a state (`open_until`, `half_open_since`, `half_open_gen`) are
    /// visible with it. `set` is Release for a transition, which publishes
    /// them, and Relaxed for the probe counters, which publish nothing.
    #[inline]
    fn update(
        &self,
        set: Ordering,
        mut step: impl FnMut(Word) -> Option<Word>,
    ) -> Result<Word, Word> {
        self.state
            .word
            .fetch_update(set, Acquire, |w| step(Word(w)).map(|n| n.0))
            .map(Word)
            .map_err(Word)
    }

    /// While every half-open probe slot is taken: when to come back, or
    /// `None` once the half-open has waited `half_open_max_wait` for a
    /// verdict (see [`rule::busy_half_open_hint`]).
    fn busy_half_open_hint(&self, now: u64) -> Option<Duration> {
        rule::busy_half_open_hint(
            self.state.published.half_open_since.load(Relaxed),
            now,
            self.live.half_open_max_wait(),
        )
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
        let latest = self.state.published.half_open_gen.load(Relaxed);
        let back = latest.wrapping_sub(w.gen()) & HALF_GEN_MASK;
        Ident::new(State::HalfOpen, latest.wrapping_sub(back) & GEN_MASK)
    }

    /// Whether `w` (loaded with Acquire) is the half-open `id` was taken in.
    fn is_current_half_open(&self, w: Word, id: Ident) -> bool {
        w.is_half_open()
            && w.gen() == id.gen() & HALF_GEN_MASK
            && self.state.published.half_open_gen.load(Relaxed) == id.gen()
    }

    fn reject(&self, retry_after: Option<Duration>) -> Rejected {
        self.state.rejected.fetch_add(1, Relaxed);
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
        Word(self.state.word.load(Relaxed)).state()
    }

    /// How long until a call would be admitted: zero when it would be now,
    /// `None` when that needs a manual change (forced open).
    pub fn retry_after(&self) -> Option<Duration> {
        // Acquire: as in `try_acquire`.
        let w = Word(self.state.word.load(Acquire));
        let wait_until =
            |until: u64| Some(Duration::from_nanos(until.saturating_sub(self.clock.now())));
        match w.state() {
            State::Closed | State::Disabled | State::MetricsOnly => Some(Duration::ZERO),
            State::ForcedOpen => None,
            State::Open => wait_until(self.state.published.open_until.load(Relaxed)),
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
    /// A zero `d` (a `Retry-After` of 0) opens it already expired: the next
    /// call is a half-open probe.
    pub fn open_for(&self, d: Duration) {
        self.open_until(self.clock.now().saturating_add(nanos(d)));
    }

    /// Moves the deadline of an Open breaker to `at_nanos` on its clock
    /// (earlier or later) without a transition: no new generation, no
    /// listener call, the windows untouched. Returns `false`, changing
    /// nothing, when the breaker is not Open (closed, half-open, forced
    /// open, disabled): a caller that holds a breaker open on another
    /// breaker's verdict (a fleet's, say) never cuts a half-open short.
    /// The move and the start of a half-open are serialised: a call that
    /// saw the old deadline expired but not the new one is refused.
    pub fn hold_open_until(&self, at_nanos: u64) -> bool {
        self.with_transition_lock(|| {
            // Acquire: as in `try_acquire`.
            let w = Word(self.state.word.load(Acquire));
            if w.state() != State::Open {
                return false;
            }
            // Under the transition lock, as `transition_locked` reads it
            // before letting a probe in.
            self.state.published.open_until.store(at_nanos, Relaxed);
            true
        })
    }

    /// [`hold_open_until`](Self::hold_open_until) `d` from now.
    pub fn hold_open_for(&self, d: Duration) -> bool {
        self.hold_open_until(self.clock.now().saturating_add(nanos(d)))
    }

    /// Moves to state `to`, if the state word still is `from` (same state
    /// and generation; `None` accepts any). Returns the new state's
    /// identity if this call made the change. Entering HalfOpen claims the
    /// first probe for the caller. `until` overrides the open deadline.
    #[cold]
    fn transition(&self, from: Option<Word>, to: State, until: Option<u64>) -> Option<Ident> {
        let (cur, gen, now) =
            self.with_transition_lock(|| self.transition_locked(from, to, until))?;
        let id = Ident::new(to, gen);
        let t = Transition {
            from: cur.state(),
            to,
            at_nanos: now,
            generation: gen,
        };
        crate::trace::breaker_transition(self.listeners().name(), &t);
        #[cfg(all(unix, not(failwell_loom)))]
        if let Some(s) = &self.shared {
            s.watch.announce(Some(t.from), id, now);
            return Some(id);
        }
        self.listeners
            .publish(t, &self.state.counts.listener_panics);
        Some(id)
    }

    /// [`transition`](Self::transition)'s locked part: the word before, the
    /// new generation and the time, if this call made the change.
    fn transition_locked(
        &self,
        from: Option<Word>,
        to: State,
        until: Option<u64>,
    ) -> Option<(Word, u64, u64)> {
        let now = self.clock.now();
        let published = &self.state.published;
        let (mut gen, mut trips) = (0, 0);
        // Only half-open probe counters change outside the lock, so a
        // retry sees the same state with other counters.
        let cur = self
            .update(Release, |cur| {
                if from.is_some_and(|f| f.epoch() != cur.epoch()) {
                    return None;
                }
                // A probe only once the deadline has passed, as read under
                // the lock: `hold_open_until` may have moved it since the
                // caller looked.
                if to == State::HalfOpen
                    && cur.state() == State::Open
                    && now < published.open_until.load(Relaxed)
                {
                    return None;
                }
                // Exact under the lock: `half_open_gen` is the current
                // half-open's, if it is one.
                gen = (self.ident(cur).gen() + 1) & GEN_MASK;
                let mut new = Word::new(to, gen);
                trips = published.trips.load(Relaxed) as u32;
                match to {
                    State::Open => {
                        trips = rule::trips_after(cur.state(), trips);
                        let until = until.unwrap_or_else(|| {
                            now.saturating_add(self.config().open_duration(trips))
                        });
                        published.open_until.store(until, Relaxed);
                    }
                    State::HalfOpen => {
                        published.half_open_since.store(now, Relaxed);
                        published.half_open_gen.store(gen, Relaxed);
                        new = new.with_issued_plus_one();
                    }
                    State::Closed => trips = 0,
                    _ => {}
                }
                if gen % WindowLayout::REFRESH_EVERY == 0 {
                    self.refresh_windows(gen);
                }
                // The Release swap publishes the stores above to the
                // Acquire loads of the state word.
                Some(new)
            })
            .ok()?;
        published.trips.store(trips as u64, Relaxed);
        self.state.counts.transitions.fetch_add(1, Relaxed);
        if to == State::Open && matches!(cur.state(), State::Closed | State::HalfOpen) {
            self.state.counts.opened.fetch_add(1, Relaxed);
        }
        Some((cur, gen, now))
    }
}

#[cfg(all(test, not(failwell_loom)))]
impl<C: Clock> CircuitBreaker<C> {
    /// For tests: a closed breaker at generation `gen`, a refresh point (a
    /// multiple of `WindowLayout::REFRESH_EVERY`), as if the transitions before
    /// it had run — their refreshes included — without running billions.
    pub(crate) fn jump_to_refresh_point(&self, gen: u64) {
        assert_eq!(gen % WindowLayout::REFRESH_EVERY, 0);
        let _lock = self.transition_lock.lock();
        self.refresh_windows(gen);
        self.state
            .word
            .store(Word::new(State::Closed, gen).0, Relaxed);
    }
}

impl<C: Clock> fmt::Debug for CircuitBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &Word(self.state.word.load(Relaxed)))
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
