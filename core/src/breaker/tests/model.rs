//! A plain, single-threaded reference model of the breaker's semantics, and
//! a property test that drives model and breaker with the same random
//! operations and compares them at every step.

use super::*;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
struct Cfg {
    consecutive: Option<u32>,
    failure_rate: Option<f64>,
    slow_rate: Option<f64>,
    slow_ms: u64,
    window: Window,
    minimum_calls: u32,
    half_open_calls: u32,
    max_wait_ms: u64,
    open_ms: u64,
    multiplier: f64,
    open_max_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rec {
    Success(u64),
    Failure(u64),
    Ignore,
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// Record the outstanding permit at this index (modulo their count);
    /// with `true`, as a detached token, a success through the closed fast
    /// path (`try_record_closed_success`, then `record_token` if it refuses).
    Record(usize, Rec, bool),
    Advance(u64),
    /// An idle gap of this many nanoseconds (up to years).
    Gap(u64),
    /// This many bucket widths times 2^16 plus one width: a gap that makes
    /// 16-bit epoch tags alias.
    AliasGap(u32),
    /// This many resets in a row (many transitions, no call).
    Resets(u32),
    ForceOpen,
    Reset,
    OpenFor(u64),
    MetricsOnly,
}

const NS: u64 = 1_000_000; // one millisecond

/// The model: a state, a generation, the current generation's outcomes as a
/// plain list, and the half-open tallies.
struct Model {
    cfg: Cfg,
    now: u64,
    state: State,
    gen: u64,
    consecutive: u32,
    /// (bucket epoch, failed, slow) of the current generation, oldest first.
    outcomes: VecDeque<(u64, bool, bool)>,
    open_until: u64,
    half_open_since: u64,
    trips: u32,
    issued: u32,
    succ: u32,
    fail: u32,
    slow: u32,
}

impl Model {
    fn width(&self) -> u64 {
        match self.cfg.window {
            Window::Time { length, buckets } => nanos(length) / buckets as u64,
            Window::Count(_) => 1,
        }
    }

    fn rate_policy(&self) -> bool {
        self.cfg.failure_rate.is_some() || self.cfg.slow_rate.is_some()
    }

    /// (calls, failures, slow) in the current window.
    fn stats(&self) -> (u64, u64, u64) {
        if !self.rate_policy() {
            return (0, 0, 0);
        }
        let in_window: Vec<_> = match self.cfg.window {
            Window::Count(n) => self.outcomes.iter().rev().take(n as usize).collect(),
            Window::Time { buckets, .. } => {
                let e = self.now / self.width();
                self.outcomes
                    .iter()
                    .filter(|(oe, _, _)| e - oe < buckets as u64)
                    .collect()
            }
        };
        let f = in_window.iter().filter(|o| o.1).count() as u64;
        let s = in_window.iter().filter(|o| o.2).count() as u64;
        (in_window.len() as u64, f, s)
    }

    fn go(&mut self, to: State, until: Option<u64>) {
        match to {
            State::Open => {
                self.trips = if self.state == State::HalfOpen {
                    self.trips + 1
                } else {
                    1
                };
                let grown = (self.cfg.open_ms * NS) as f64
                    * self.cfg.multiplier.powi(self.trips as i32 - 1);
                let d = if self.trips <= 1 {
                    self.cfg.open_ms * NS
                } else {
                    (grown.min((self.cfg.open_max_ms * NS) as f64)) as u64
                };
                self.open_until = until.unwrap_or(self.now + d);
            }
            State::HalfOpen => self.half_open_since = self.now,
            State::Closed => self.trips = 0,
            _ => {}
        }
        self.state = to;
        self.gen += 1;
        self.consecutive = 0;
        self.outcomes.clear();
        self.issued = u32::from(to == State::HalfOpen);
        self.succ = 0;
        self.fail = 0;
        self.slow = 0;
    }

    /// Ok((state, gen)) of the permit, or the rejection.
    fn acquire(&mut self) -> Result<(State, u64), Rejected> {
        loop {
            match self.state {
                State::Closed | State::Disabled | State::MetricsOnly => {
                    return Ok((self.state, self.gen))
                }
                State::ForcedOpen => return Err(Rejected::CircuitOpen { retry_after: None }),
                State::Open => {
                    if self.now < self.open_until {
                        return Err(Rejected::CircuitOpen {
                            retry_after: Some(Duration::from_nanos(self.open_until - self.now)),
                        });
                    }
                    self.go(State::HalfOpen, None);
                    return Ok((State::HalfOpen, self.gen));
                }
                State::HalfOpen => {
                    if self.issued < self.cfg.half_open_calls {
                        self.issued += 1;
                        return Ok((State::HalfOpen, self.gen));
                    }
                    let limit = self.half_open_since + self.cfg.max_wait_ms * NS;
                    if self.now < limit {
                        // How long the probes have run, ≥ 1 ms, ≤ the time left.
                        let running = (self.now - self.half_open_since).max(NS);
                        return Err(Rejected::CircuitOpen {
                            retry_after: Some(Duration::from_nanos(running.min(limit - self.now))),
                        });
                    }
                    self.go(State::Open, None);
                }
            }
        }
    }

    fn record(&mut self, permit: (State, u64), rec: Rec) {
        let current = permit == (self.state, self.gen);
        let (failed, ms) = match rec {
            Rec::Ignore => {
                if current && self.state == State::HalfOpen && self.issued > 0 {
                    self.issued -= 1;
                }
                return;
            }
            Rec::Success(ms) => (false, ms),
            Rec::Failure(ms) => (true, ms),
        };
        let slow = self.cfg.slow_rate.is_some() && ms >= self.cfg.slow_ms;
        if !current {
            return;
        }
        match self.state {
            State::Closed | State::MetricsOnly => {
                let mut trip = false;
                if let Some(n) = self.cfg.consecutive {
                    self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                    trip |= self.consecutive >= n;
                }
                if self.rate_policy() {
                    let e = self.now / self.width();
                    self.outcomes.push_back((e, failed, slow));
                }
                if self.state == State::Closed && (failed || slow) {
                    let (c, f, s) = self.stats();
                    let over = |n: u64, t: Option<f64>| t.is_some_and(|t| n as f64 >= t * c as f64);
                    let rates = c >= self.cfg.minimum_calls as u64
                        && (over(f, self.cfg.failure_rate) || over(s, self.cfg.slow_rate));
                    if trip || (self.rate_policy() && rates) {
                        self.go(State::Open, None);
                    }
                }
            }
            State::HalfOpen => {
                if failed {
                    self.fail += 1
                } else {
                    self.succ += 1
                }
                self.slow += slow as u32;
                let h = self.cfg.half_open_calls;
                let verdict = if !self.rate_policy() {
                    if self.fail > 0 {
                        Some(State::Open)
                    } else if self.succ >= h {
                        Some(State::Closed)
                    } else {
                        None
                    }
                } else {
                    let decided =
                        |n: u32, t: Option<f64>| t.is_some_and(|t| n as f64 >= t * h as f64);
                    if decided(self.fail, self.cfg.failure_rate)
                        || decided(self.slow, self.cfg.slow_rate)
                    {
                        Some(State::Open)
                    } else if self.succ + self.fail >= h {
                        Some(State::Closed)
                    } else {
                        None
                    }
                };
                if let Some(to) = verdict {
                    self.go(to, None);
                }
            }
            _ => {}
        }
    }
}

fn cfg_strategy() -> impl Strategy<Value = Cfg> {
    let window = prop_oneof![
        (1u32..8).prop_map(Window::Count),
        (1u32..5, 10u64..60).prop_map(|(b, w)| Window::Time {
            length: Duration::from_millis(w * b as u64),
            buckets: b,
        }),
    ];
    (
        prop::option::of(1u32..4),
        prop::option::of(prop_oneof![Just(1.0), Just(0.5), 0.2f64..1.0]),
        prop::option::of(0.3f64..1.0),
        1u64..50,
        window,
        1u32..8,
        1u32..4,
        (1u64..100, 1u64..100, 1.0f64..3.0, 0u64..200),
    )
        .prop_filter_map(
            "needs a trip policy",
            |(
                consecutive,
                failure_rate,
                slow_rate,
                slow_ms,
                window,
                min,
                h,
                (wait, open, mult, extra),
            )| {
                if consecutive.is_none() && failure_rate.is_none() && slow_rate.is_none() {
                    return None;
                }
                // Without a consecutive policy the builder keeps its default
                // failure-rate policy (50%), as resilience4j does.
                let failure_rate = if consecutive.is_none() {
                    failure_rate.or(Some(0.5))
                } else {
                    failure_rate
                };
                let minimum_calls = match window {
                    Window::Count(n) => min.min(n),
                    _ => min,
                };
                Some(Cfg {
                    consecutive,
                    failure_rate,
                    slow_rate,
                    slow_ms,
                    window,
                    minimum_calls,
                    half_open_calls: h,
                    max_wait_ms: wait,
                    open_ms: open,
                    multiplier: mult,
                    open_max_ms: open + extra,
                })
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let rec = prop_oneof![
        3 => (0u64..60).prop_map(Rec::Success),
        3 => (0u64..60).prop_map(Rec::Failure),
        1 => Just(Rec::Ignore),
    ];
    prop_oneof![
        10 => Just(Op::Acquire),
        10 => (any::<usize>(), rec, any::<bool>()).prop_map(|(i, r, t)| Op::Record(i, r, t)),
        4 => (0u64..80).prop_map(Op::Advance),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Reset),
        1 => (0u64..100).prop_map(Op::OpenFor),
        1 => Just(Op::MetricsOnly),
    ]
}

fn build(cfg: &Cfg, clock: &ManualClock) -> CircuitBreaker<ManualClock> {
    let mut b = Builder::with_clock(clock.clone());
    if let Some(n) = cfg.consecutive {
        b = b.consecutive_failures(n);
    }
    if let Some(r) = cfg.failure_rate {
        b = b.failure_rate(r, cfg.window);
    }
    if let Some(r) = cfg.slow_rate {
        b = b.slow_call_rate(r, Duration::from_millis(cfg.slow_ms));
    }
    b.window(cfg.window)
        .minimum_calls(cfg.minimum_calls)
        .half_open_calls(cfg.half_open_calls)
        .half_open_max_wait(Duration::from_millis(cfg.max_wait_ms))
        .open_for(Duration::from_millis(cfg.open_ms))
        .open_for_backoff(cfg.multiplier, Duration::from_millis(cfg.open_max_ms))
        .build()
        .expect("the strategy makes valid configurations")
}

/// Idle gaps from nothing to ten years (log-uniform), gaps that alias
/// narrow epoch tags, and runs of transitions past the narrow generation
/// tags' wrap point, among the ordinary operations.
fn gap_op_strategy() -> impl Strategy<Value = Op> {
    const TEN_YEARS: u64 = 10 * 365 * 24 * 3600 * 1_000_000_000;
    prop_oneof![
        20 => op_strategy(),
        2 => (0u32..59, any::<u64>()).prop_map(|(e, r)| Op::Gap((r % (1 << e)).min(TEN_YEARS))),
        1 => (1u32..4).prop_map(Op::AliasGap),
        1 => prop_oneof![Just(1u32 << 14), Just((1 << 15) + 1), Just((1 << 16) + 3)]
            .prop_map(Op::Resets),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The breaker and the reference model agree on every verdict, state,
    /// retry-after and window count, for any sequence of calls, outcomes,
    /// durations, clock advances and manual changes.
    #[test]
    fn breaker_matches_the_reference_model(
        cfg in cfg_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..200),
    ) {
        check(cfg, ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The same agreement across idle gaps of up to ten years and tens of
    /// thousands of transitions between calls, with permits held across
    /// them.
    #[test]
    fn breaker_matches_the_reference_model_across_gaps_and_wraps(
        cfg in cfg_strategy(),
        ops in prop::collection::vec(gap_op_strategy(), 1..120),
    ) {
        check(cfg, ops)?;
    }
}

fn check(cfg: Cfg, ops: Vec<Op>) -> Result<(), TestCaseError> {
    {
        let clock = ManualClock::new();
        let breaker = build(&cfg, &clock);
        let mut model = Model {
            cfg: cfg.clone(),
            now: clock.now(),
            state: State::Closed,
            gen: 0,
            consecutive: 0,
            outcomes: VecDeque::new(),
            open_until: 0,
            half_open_since: 0,
            trips: 0,
            issued: 0,
            succ: 0,
            fail: 0,
            slow: 0,
        };
        let mut permits: Vec<(Permit<'_, ManualClock>, (State, u64))> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire => {
                    let real = breaker.try_acquire();
                    let expected = model.acquire();
                    match (real, expected) {
                        (Ok(p), Ok(m)) => {
                            prop_assert_eq!(p.state(), m.0);
                            permits.push((p, m));
                        }
                        (Err(r), Err(m)) => prop_assert_eq!(r, m),
                        (r, m) => prop_assert!(
                            false,
                            "breaker {:?} vs model {:?}",
                            r.map(|p| p.state()),
                            m
                        ),
                    }
                }
                Op::Record(i, rec, as_token) => {
                    if permits.is_empty() {
                        continue;
                    }
                    let (p, m) = permits.swap_remove(i % permits.len());
                    let dur = |ms: u64| Duration::from_millis(ms);
                    match (rec, as_token) {
                        (Rec::Success(ms), true) => {
                            let t = p.into_token();
                            if let Err(t) = breaker.try_record_closed_success(t) {
                                breaker.record_token(t, Outcome::Success, Some(dur(ms)));
                            }
                        }
                        (Rec::Failure(ms), true) => {
                            breaker.record_token(p.into_token(), Outcome::Failure, Some(dur(ms)));
                        }
                        (Rec::Ignore, true) => {
                            breaker.record_token(p.into_token(), Outcome::Ignore, None);
                        }
                        (Rec::Success(ms), false) => p.success_with_duration(dur(ms)),
                        (Rec::Failure(ms), false) => p.failure_with_duration(dur(ms)),
                        (Rec::Ignore, false) => drop(p),
                    }
                    model.record(m, rec);
                }
                Op::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                    model.now += ms * NS;
                }
                Op::Gap(ns) => {
                    clock.advance(Duration::from_nanos(ns));
                    model.now += ns;
                }
                Op::AliasGap(k) => {
                    let ns = model.width() * ((k as u64) << 16) + model.width();
                    clock.advance(Duration::from_nanos(ns));
                    model.now += ns;
                }
                Op::Resets(k) => {
                    for _ in 0..k {
                        breaker.reset();
                        model.go(State::Closed, None);
                    }
                }
                Op::ForceOpen => {
                    breaker.force_open();
                    model.go(State::ForcedOpen, None);
                }
                Op::Reset => {
                    breaker.reset();
                    model.go(State::Closed, None);
                }
                Op::MetricsOnly => {
                    breaker.metrics_only();
                    model.go(State::MetricsOnly, None);
                }
                Op::OpenFor(ms) => {
                    breaker.open_for(Duration::from_millis(ms));
                    let until = model.now + ms * NS;
                    model.go(State::Open, Some(until));
                }
            }
            prop_assert_eq!(breaker.state(), model.state);
            let snap = breaker.snapshot();
            prop_assert_eq!(snap.generation, model.gen);
            let (calls, _, _) = model.stats();
            if matches!(model.state, State::Closed | State::MetricsOnly) {
                prop_assert_eq!(snap.window_calls, calls);
                if cfg.consecutive.is_some() {
                    prop_assert_eq!(snap.consecutive_failures, model.consecutive as u64);
                }
            }
        }
    }
    Ok(())
}
