//! The fleet circuit breaker: admission stays local (failwell's ordinary
//! breaker, no I/O on a call); a background thread shares the verdict.
//!
//! Each instance's thread (`failwell-cb-sync`) runs one script on the
//! breaker's Redis hash every [`SYNC_EVERY`] (90–130 % of it, at a random
//! phase), and at once after a local trip or probe verdict. The script,
//! on the server's clock:
//!
//! - adds the instance's calls, failures and slow calls since its last
//!   sync to time buckets of the fleet window, and records a local trip
//!   as the instance's vote;
//! - while the fleet is closed, opens it (a new generation, open until
//!   `open_for` from now, growing as the local breaker's does) when at
//!   least `quorum` instances voted within the window; when the window's
//!   fleet-wide failure (or slow-call) rate reaches the local breaker's
//!   threshold over at least `minimum_calls` calls with failures reported
//!   by at least `quorum` instances; or, under a consecutive-failures
//!   policy, when the instances' current runs of failures (each run with
//!   no success in it) add up to the threshold over at least `quorum`
//!   instances;
//! - takes a probe's verdict for the current generation: closed again on
//!   success, open again (longer) on failure;
//! - returns the verdict: its epoch (a flush or an expired key starts a
//!   new one), generation, open or closed, and the time left open.
//!
//! The instance applies it: a fleet opening holds the local breaker open
//! (`open_until`, then [`hold_open_until`]) until the fleet's deadline
//! plus the probe claim and two sync intervals; once the deadline has
//! passed, instances race for the generation's probe key (`SET NX PX`,
//! [`DEFAULT_PROBE_CLAIM`]); the one that owns it lets its breaker probe
//! (at most `half_open_calls` probes fleet-wide) and reports the verdict;
//! the others stay held until the fleet closes (then `reset`) or the
//! claim lapses and another instance takes it. An owner with no call to
//! probe with gives its claim up before it lapses.
//!
//! While Redis is unreachable the breaker is the instance's own: its local
//! policy trips and probes it, a fleet hold ends at its deadline, and
//! every failed sync is counted (or, as
//! [`FleetBreakerBuilder::on_unavailable`] says, it admits every call or
//! refuses every call until a sync reaches Redis again). The next sync that reaches Redis applies
//! the fleet's verdict again.
//!
//! [`hold_open_until`]: failwell::breaker::CircuitBreaker::hold_open_until

use std::cell::Cell;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use failwell::breaker::{self, CircuitBreaker, ListenerId, State, Transition, Window};
use failwell::ConfigError;
use redis::Script;

use crate::leased::{instance_id, seed, unit};
use crate::{Fleet, FleetError, OnUnavailable};

/// How often each instance syncs with the fleet's verdict by default
/// (each sync 90–130 % of it after the last): every instance refuses
/// within 1.3 × this plus a round trip after any instance trips.
pub const SYNC_EVERY: Duration = Duration::from_millis(200);
/// How long an instance owns a half-open's probes by default before
/// another may take them over, if it neither probes nor gives them up.
pub const DEFAULT_PROBE_CLAIM: Duration = Duration::from_secs(2);
/// The fleet window of a breaker whose local window counts calls (a time
/// window is used as it is).
pub const DEFAULT_FLEET_WINDOW: Duration = Duration::from_secs(10);
/// Buckets of the fleet window.
const BUCKETS: u64 = 10;

/// KEYS[1]: the breaker's hash. ARGV: instance, vote (0/1), the
/// generation a probe verdict is for (0: none), the verdict (1 success),
/// calls, failures and slow calls since the last sync, window and bucket
/// in ms, minimum calls, failure and slow-call rate thresholds (0: off),
/// quorum, open_for, its multiplier and its cap in ms, the key's TTL in
/// ms, the consecutive-failure threshold (0: off) and this instance's
/// current run of failures. Returns `{epoch, generation, open (0/1), ms left open, opens in a row}`.
const SYNC: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = KEYS[1]
local inst = ARGV[1]
local v = redis.call('HMGET', h, 'epoch', 'gen', 'st', 'until', 'opens')
local epoch = v[1]
if not epoch then
  epoch = inst .. '@' .. now
  redis.call('DEL', h)
end
local gen = tonumber(v[2] or '0')
local st = v[3] or 'c'
local untl = tonumber(v[4] or '0')
local opens = tonumber(v[5] or '0')
local window, bucket = tonumber(ARGV[8]), tonumber(ARGV[9])
local b = math.floor(now / bucket)
local calls, fails, slow = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local open_ms, mult, max_ms = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local function dur(k)
  local d = open_ms
  if mult ~= 1 and k > 1 then d = open_ms * mult ^ (k - 1) end
  local cap = math.max(max_ms, open_ms)
  if d > cap then d = cap end
  return math.floor(d)
end
local function clear()
  for _, k in ipairs(redis.call('HKEYS', h)) do
    if string.sub(k, 2, 2) == ':' then redis.call('HDEL', h, k) end
  end
end
local function open(k)
  gen = gen + 1
  st = 'o'
  opens = k
  untl = now + dur(k)
  clear()
end
if st == 'c' then
  if calls > 0 then
    redis.call('HINCRBY', h, 'c:' .. b, calls)
    if fails > 0 then redis.call('HINCRBY', h, 'f:' .. b, fails) end
    if slow > 0 then redis.call('HINCRBY', h, 's:' .. b, slow) end
    if fails > 0 or slow > 0 then redis.call('HSET', h, 'r:' .. b .. ':' .. inst, 1) end
  end
  if ARGV[2] == '1' then redis.call('HSET', h, 'v:' .. inst, now) end
  if tonumber(ARGV[18]) > 0 then
    if tonumber(ARGV[19]) > 0 then
      redis.call('HSET', h, 'k:' .. inst, ARGV[19] .. '@' .. now)
    else
      redis.call('HDEL', h, 'k:' .. inst)
    end
  end
end
local pg = tonumber(ARGV[3])
if st == 'o' and pg == gen then
  if ARGV[4] == '1' then
    gen = gen + 1
    st = 'c'
    opens = 0
    untl = 0
    clear()
  else
    open(opens + 1)
  end
elseif st == 'c' then
  local oldest = b - math.floor(window / bucket) + 1
  local sc, sf, ss, voters, nrep, streak, nstreak = 0, 0, 0, 0, 0, 0, 0
  local reporters = {}
  local all = redis.call('HGETALL', h)
  for i = 1, #all, 2 do
    local k, val = all[i], all[i + 1]
    if string.sub(k, 2, 2) == ':' then
      local kind = string.sub(k, 1, 1)
      if kind == 'v' then
        if tonumber(val) > now - window then
          voters = voters + 1
        else
          redis.call('HDEL', h, k)
        end
      elseif kind == 'k' then
        local n, at = string.match(val, '^(%d+)@(%d+)$')
        if n and tonumber(at) > now - window then
          streak = streak + tonumber(n)
          nstreak = nstreak + 1
        else
          redis.call('HDEL', h, k)
        end
      else
        local rest = string.sub(k, 3)
        local digits = string.match(rest, '^%d+')
        local bk = tonumber(digits)
        if bk < oldest then
          redis.call('HDEL', h, k)
        elseif kind == 'c' then
          sc = sc + tonumber(val)
        elseif kind == 'f' then
          sf = sf + tonumber(val)
        elseif kind == 's' then
          ss = ss + tonumber(val)
        elseif kind == 'r' then
          local who = string.sub(rest, #digits + 2)
          if not reporters[who] then
            reporters[who] = true
            nrep = nrep + 1
          end
        end
      end
    end
  end
  local q = tonumber(ARGV[13])
  local fr, sr = tonumber(ARGV[11]), tonumber(ARGV[12])
  local rated = sc > 0 and sc >= tonumber(ARGV[10]) and nrep >= q
    and ((fr > 0 and sf >= fr * sc) or (sr > 0 and ss >= sr * sc))
  local kmax = tonumber(ARGV[18])
  local streaks = kmax > 0 and streak >= kmax and nstreak >= q
  if voters >= q or rated or streaks then open(1) end
end
redis.call('HSET', h, 'epoch', epoch, 'gen', gen, 'st', st, 'until', untl, 'opens', opens)
redis.call('PEXPIRE', h, tonumber(ARGV[17]))
local left = 0
if st == 'o' then left = untl - now end
return {epoch, gen, st == 'o' and 1 or 0, left, opens}
";

/// KEYS[1]: a generation's probe key. ARGV: instance, claim in ms, renew
/// (0/1). Claims the probes with `SET NX PX`; returns 1 if this instance
/// took them now, 2 if it held them already (and renewed the claim when
/// asked), 0 if another instance holds them.
const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[3] == '1' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  return 2
end
return 0
";

/// Settings of a [`FleetBreaker`].
#[derive(Debug)]
pub struct FleetBreakerBuilder {
    fleet: Fleet,
    name: String,
    local: breaker::Builder,
    quorum: u32,
    sync_every: Duration,
    probe_claim: Duration,
    window: Option<Duration>,
    on_unavailable: OnUnavailable,
}

impl Fleet {
    /// A circuit breaker `name` whose verdict every instance using the
    /// name shares: `local` is the breaker each instance admits calls on
    /// (its policy, open period, half-open probes and their defaults), and
    /// the fleet opens on the same thresholds over every instance's calls.
    pub fn circuit_breaker(&self, name: &str, local: breaker::Builder) -> FleetBreakerBuilder {
        FleetBreakerBuilder {
            fleet: self.clone(),
            name: name.to_owned(),
            local,
            quorum: 1,
            sync_every: SYNC_EVERY,
            probe_claim: DEFAULT_PROBE_CLAIM,
            window: None,
            on_unavailable: OnUnavailable::Local,
        }
    }
}

impl FleetBreakerBuilder {
    /// Instances that must agree before the fleet opens (default 1: any
    /// instance's trip opens the fleet): distinct instances whose local
    /// breaker tripped within the fleet window, or that reported failures
    /// in it when the rate policy trips on the fleet's counts. One
    /// misbehaving instance cannot open a fleet whose quorum is 2 or more;
    /// its own breaker still opens.
    pub fn quorum(mut self, n: u32) -> Self {
        self.quorum = n;
        self
    }

    /// How often the instance syncs with the fleet (default
    /// [`SYNC_EVERY`]; 10 ms ..= 60 s).
    pub fn sync_every(mut self, d: Duration) -> Self {
        self.sync_every = d;
        self
    }

    /// How long an instance owns a half-open's probes before another may
    /// take them over (default [`DEFAULT_PROBE_CLAIM`]; at least three sync
    /// intervals, at most 1 hour).
    pub fn probe_claim(mut self, d: Duration) -> Self {
        self.probe_claim = d;
        self
    }

    /// The window the fleet's counts are summed over (default: the local
    /// breaker's time window, or [`DEFAULT_FLEET_WINDOW`] when it counts
    /// calls; 100 ms ..= 1 day), in 10 buckets.
    pub fn window(mut self, d: Duration) -> Self {
        self.window = Some(d);
        self
    }

    /// What the breaker does while its syncs fail (Redis unreachable or
    /// slow, or failwell's breaker around it open):
    /// [`OnUnavailable::Local`] (the default) lets the local breaker
    /// decide on its own policy; [`OnUnavailable::FailOpen`] admits every
    /// call (the local breaker counts only, as
    /// [`CircuitBreaker::metrics_only`]); [`OnUnavailable::FailClosed`]
    /// refuses every call (as [`CircuitBreaker::force_open`]). Either is
    /// applied on the first failed sync and undone on the first sync that
    /// reaches Redis (the breaker closed, then the fleet's verdict
    /// applied); a state the user set (forced open, disabled, counting
    /// only) is left alone.
    pub fn on_unavailable(mut self, o: OnUnavailable) -> Self {
        self.on_unavailable = o;
        self
    }

    /// Checks the settings, builds the local breaker, registers the
    /// scripts and starts the sync thread (a first sync is made before
    /// this returns; a Redis that cannot be reached now is not an error).
    /// Errors: a `ConfigError` naming the field (the local breaker's,
    /// `name`, `quorum`, `sync_every`, `probe_claim`, `window`).
    pub fn build(self) -> Result<FleetBreaker, FleetError> {
        let name_len = self.name.len();
        if name_len == 0 || name_len > 200 {
            return Err(ConfigError::new(
                "name",
                format!("must be 1 ..= 200 bytes, got {name_len}"),
            )
            .into());
        }
        if self.quorum == 0 || self.quorum > 100_000 {
            return Err(ConfigError::new(
                "quorum",
                format!("must be 1 ..= 100000 instances, got {}", self.quorum),
            )
            .into());
        }
        let every = self.sync_every;
        if every < Duration::from_millis(10) || every > Duration::from_secs(60) {
            return Err(ConfigError::new(
                "sync_every",
                format!("must be 10 ms ..= 60 s, got {every:?}"),
            )
            .into());
        }
        let claim = self.probe_claim;
        if claim < every * 3 || claim > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "probe_claim",
                format!(
                    "must be at least 3 sync intervals ({:?}) and at most 1 h, got {claim:?}",
                    every * 3
                ),
            )
            .into());
        }
        let local = Arc::new(self.local.build()?);
        let config = local.config();
        let window = match (self.window, config.window()) {
            (Some(w), _) => w,
            (None, Some(Window::Time { length, .. })) => length,
            (None, _) => DEFAULT_FLEET_WINDOW,
        };
        if window < Duration::from_millis(100) || window > Duration::from_secs(86_400) {
            return Err(ConfigError::new(
                "window",
                format!("the fleet window must be 100 ms ..= 1 day, got {window:?}"),
            )
            .into());
        }
        // Lua holds integers exactly below 2^53; 2^50 ms is 35 000 years.
        let ms = |d: Duration, field: &'static str| -> Result<u64, ConfigError> {
            let m = d.as_nanos().div_ceil(1_000_000);
            if m >= 1 << 50 {
                return Err(ConfigError::new(
                    field,
                    format!("a fleet breaker's open period must be below 2^50 ms, got {d:?}"),
                ));
            }
            Ok(m as u64)
        };
        let open_ms = ms(config.open_for(), "open_for")?;
        let open_max_ms = ms(config.open_for_max().max(config.open_for()), "open_for_max")?;
        let window_ms = window.as_millis() as u64;
        let claim_ms = claim.as_millis() as u64;
        let settings = Settings {
            window_ms,
            bucket_ms: (window_ms / BUCKETS).max(1),
            minimum_calls: config.minimum_calls() as u64,
            failure_rate: config.failure_rate().unwrap_or(0.0),
            slow_rate: config.slow_call_rate().unwrap_or(0.0),
            quorum: self.quorum,
            consecutive: config.consecutive_failures().unwrap_or(0),
            open_ms,
            multiplier: config.open_for_multiplier(),
            open_max_ms,
            ttl_ms: (window_ms.max(open_max_ms) + claim_ms).saturating_mul(2) + 60_000,
            every,
            claim,
            on_unavailable: self.on_unavailable,
        };
        let sync = Arc::new(Script::new(SYNC));
        let claim_script = Arc::new(Script::new(CLAIM));
        self.fleet.register_lazily(Arc::clone(&sync))?;
        self.fleet.register_lazily(Arc::clone(&claim_script))?;
        let shared = Arc::new(Shared::default());
        let listener = {
            let shared = Arc::clone(&shared);
            local.add_listener(move |t| shared.heard(t))
        };
        let template = Syncer {
            fleet: self.fleet.clone(),
            sync,
            claim: claim_script,
            key: self.fleet.key("cb", &self.name),
            id: instance_id(),
            settings,
            local: Arc::clone(&local),
            shared: Arc::clone(&shared),
        };
        let fb = FleetBreaker {
            local,
            shared,
            listener,
            template,
        };
        fb.start(true).map_err(|e| FleetError::Protocol {
            problem: format!("cannot start the sync thread: {e}"),
        })?;
        Ok(fb)
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    window_ms: u64,
    bucket_ms: u64,
    minimum_calls: u64,
    failure_rate: f64,
    slow_rate: f64,
    quorum: u32,
    consecutive: u32,
    open_ms: u64,
    multiplier: f64,
    open_max_ms: u64,
    ttl_ms: u64,
    every: Duration,
    claim: Duration,
    on_unavailable: OnUnavailable,
}

thread_local! {
    /// Set on a sync thread: the transitions it makes are the fleet's,
    /// not this instance's own.
    static SYNCING: Cell<bool> = const { Cell::new(false) };
}

/// What the local breaker's listener, the sync thread and the handle
/// share.
#[derive(Debug, Default)]
struct Shared {
    /// A local trip to report as this instance's vote.
    vote: AtomicBool,
    /// The fleet generation this instance owns the probes of (0: none).
    owner_gen: AtomicU64,
    /// A probe verdict to report: 0 none, 1 success, 2 failure.
    verdict: AtomicU8,
    /// The generation `verdict` is for.
    verdict_gen: AtomicU64,
    /// The local breaker tripped on its own since the fleet last set it.
    own_trip: AtomicBool,
    stop: AtomicBool,
    /// The fork generation the sync thread runs in.
    fork_gen: AtomicU64,
    respawning: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// To wake the sync thread at once (taken briefly by the listener).
    waker: Mutex<Option<Thread>>,
    counts: Counts,
}

#[derive(Debug, Default)]
struct Counts {
    syncs: AtomicU64,
    failed_syncs: AtomicU64,
    votes: AtomicU64,
    opens_applied: AtomicU64,
    closes_applied: AtomicU64,
    probes_owned: AtomicU64,
    probe_verdicts: AtomicU64,
    fleet_generation: AtomicU64,
    fleet_open: AtomicBool,
    degraded: AtomicBool,
}

impl Shared {
    /// The local breaker's listener: its own trips and probe verdicts
    /// (the sync thread's transitions are the fleet's: skipped).
    fn heard(&self, t: &Transition) {
        if SYNCING.with(Cell::get) {
            return;
        }
        let owner = self.owner_gen.load(Relaxed);
        match (t.from, t.to) {
            (State::HalfOpen, State::Closed) if owner != 0 => self.report(owner, 1),
            (State::HalfOpen, State::Open) if owner != 0 => self.report(owner, 2),
            (State::HalfOpen, State::Closed) => {
                // Recovered on its own: a trip not yet reported is stale.
                self.own_trip.store(false, Relaxed);
                self.vote.store(false, Relaxed);
            }
            (_, State::Open) => {
                self.own_trip.store(true, Relaxed);
                self.vote.store(true, Relaxed);
                self.wake();
            }
            _ => {}
        }
    }

    fn report(&self, gen: u64, verdict: u8) {
        self.verdict_gen.store(gen, Relaxed);
        self.verdict.store(verdict, Relaxed);
        self.owner_gen.store(0, Relaxed);
        self.wake();
    }

    fn wake(&self) {
        if let Ok(w) = self.waker.try_lock() {
            if let Some(t) = &*w {
                t.unpark();
            }
        }
    }
}

/// The verdict a sync returned.
#[derive(Debug)]
struct Verdict {
    epoch: String,
    gen: u64,
    open: bool,
    left_ms: i64,
}

/// The sync thread's settings and state.
#[derive(Clone)]
struct Syncer {
    fleet: Fleet,
    sync: Arc<Script>,
    claim: Arc<Script>,
    key: String,
    id: String,
    settings: Settings,
    local: Arc<CircuitBreaker>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("key", &self.key)
            .field("instance", &self.id)
            .finish_non_exhaustive()
    }
}

/// What the sync thread remembers between syncs.
#[derive(Debug, Default)]
struct Memory {
    /// Cumulative local counts at the last sync that reached Redis.
    sent: (u64, u64, u64),
    /// The fleet opening (epoch, generation) applied to the local breaker.
    applied: Option<(String, u64)>,
    /// The probes owned: (epoch, generation, claimed at).
    owned: Option<(String, u64, Instant)>,
    /// The state the `on_unavailable` fallback set, while it holds.
    degraded: Option<State>,
    /// When a sync last reached Redis.
    last_ok: Option<Instant>,
}

impl Syncer {
    /// The sync thread: a first sync at `next`, then one every 90–130 %
    /// of the interval, or at once when a trip or a probe verdict waits.
    fn run(self, mut memory: Memory, mut next: Instant) {
        SYNCING.with(|s| s.set(true));
        let mut rng = seed(&self.id);
        let every = self.settings.every;
        loop {
            loop {
                if self.shared.stop.load(Relaxed) {
                    return;
                }
                let now = Instant::now();
                let urgent =
                    self.shared.vote.load(Relaxed) || self.shared.verdict.load(Relaxed) != 0;
                if now >= next || urgent {
                    break;
                }
                std::thread::park_timeout(next - now);
            }
            self.tick(&mut memory);
            next = Instant::now() + every.mul_f64(0.9 + 0.4 * unit(&mut rng));
        }
    }

    /// One sync: reports, then applies the fleet's verdict.
    fn tick(&self, memory: &mut Memory) {
        let s = &self.settings;
        let snap = self.local.snapshot();
        let now_counts = (snap.calls, snap.failures, snap.slow_calls);
        // Calls made while Redis was unreachable are reported when it is
        // back, unless the outage outlasted the fleet window (they would
        // count as new failures of a dependency that may have recovered).
        let stale = memory
            .last_ok
            .is_some_and(|t| t.elapsed() > Duration::from_millis(s.window_ms));
        if stale {
            memory.sent = now_counts;
        }
        let delta = (
            now_counts.0.saturating_sub(memory.sent.0),
            now_counts.1.saturating_sub(memory.sent.1),
            now_counts.2.saturating_sub(memory.sent.2),
        );
        let vote = self.shared.vote.swap(false, Relaxed);
        let verdict = self.shared.verdict.swap(0, Relaxed);
        let verdict_gen = if verdict != 0 {
            self.shared.verdict_gen.load(Relaxed)
        } else {
            0
        };
        let counts = &self.shared.counts;
        let r: Result<(String, u64, u8, i64, u64), FleetError> =
            self.fleet.run("breaker sync", |c| {
                self.sync
                    .key(&self.key)
                    .arg(&self.id)
                    .arg(vote as u8)
                    .arg(verdict_gen)
                    .arg((verdict == 1) as u8)
                    .arg(delta.0)
                    .arg(delta.1)
                    .arg(delta.2)
                    .arg(s.window_ms)
                    .arg(s.bucket_ms)
                    .arg(s.minimum_calls)
                    .arg(s.failure_rate)
                    .arg(s.slow_rate)
                    .arg(s.quorum)
                    .arg(s.open_ms)
                    .arg(s.multiplier)
                    .arg(s.open_max_ms)
                    .arg(s.ttl_ms)
                    .arg(s.consecutive)
                    .arg(snap.consecutive_failures)
                    .invoke(c)
            });
        let (epoch, gen, open, left_ms, _opens) = match r {
            Ok(v) => v,
            Err(_) => {
                counts.failed_syncs.fetch_add(1, Relaxed);
                self.degrade(memory);
                // Reported again on the next sync that reaches Redis.
                if vote && self.shared.own_trip.load(Relaxed) {
                    self.shared.vote.store(true, Relaxed);
                }
                if verdict != 0 && self.shared.verdict.load(Relaxed) == 0 {
                    self.shared.verdict_gen.store(verdict_gen, Relaxed);
                    self.shared.verdict.store(verdict, Relaxed);
                }
                return;
            }
        };
        counts.syncs.fetch_add(1, Relaxed);
        memory.last_ok = Some(Instant::now());
        self.restore(memory);
        if vote {
            counts.votes.fetch_add(1, Relaxed);
        }
        if verdict != 0 {
            counts.probe_verdicts.fetch_add(1, Relaxed);
        }
        memory.sent = now_counts;
        let open = open == 1;
        counts.fleet_generation.store(gen, Relaxed);
        counts.fleet_open.store(open, Relaxed);
        self.apply(
            memory,
            Verdict {
                epoch,
                gen,
                open,
                left_ms,
            },
        );
    }

    /// A failed sync: applies the `on_unavailable` fallback, unless the
    /// user set the breaker's state.
    fn degrade(&self, memory: &mut Memory) {
        if memory.degraded.is_some()
            || !matches!(
                self.local.state(),
                State::Closed | State::Open | State::HalfOpen
            )
        {
            return;
        }
        let set = match self.settings.on_unavailable {
            OnUnavailable::FailOpen => {
                self.local.metrics_only();
                State::MetricsOnly
            }
            OnUnavailable::FailClosed => {
                self.local.force_open();
                State::ForcedOpen
            }
            _ => return,
        };
        memory.degraded = Some(set);
        self.shared.counts.degraded.store(true, Relaxed);
    }

    /// A sync that reached Redis: undoes the fallback (if the state is
    /// still the one it set); the fleet's verdict is then applied afresh.
    fn restore(&self, memory: &mut Memory) {
        let Some(set) = memory.degraded.take() else {
            return;
        };
        self.shared.counts.degraded.store(false, Relaxed);
        if self.local.state() == set {
            self.local.reset();
            memory.applied = None;
            memory.owned = None;
            self.shared.owner_gen.store(0, Relaxed);
        }
    }

    /// Steers the local breaker by the fleet's verdict.
    fn apply(&self, memory: &mut Memory, v: Verdict) {
        let s = &self.settings;
        let counts = &self.shared.counts;
        let grace = s.claim + s.every * 2;
        let id = (v.epoch.clone(), v.gen);
        if !v.open {
            memory.owned = None;
            self.shared.owner_gen.store(0, Relaxed);
            if let Some(applied) = memory.applied.take() {
                let held = matches!(self.local.state(), State::Open | State::HalfOpen);
                if applied != id && held && !self.shared.own_trip.load(Relaxed) {
                    self.local.reset();
                    counts.closes_applied.fetch_add(1, Relaxed);
                }
            }
            return;
        }
        let left = Duration::from_millis(v.left_ms.max(0) as u64);
        if memory.applied.as_ref() != Some(&id) {
            // A fleet opening this instance has not applied yet.
            self.shared.own_trip.store(false, Relaxed);
            memory.owned = None;
            self.shared.owner_gen.store(0, Relaxed);
            // A breaker forced open, disabled or counting only is the
            // user's to change.
            if matches!(
                self.local.state(),
                State::Closed | State::Open | State::HalfOpen
            ) {
                self.local.open_for(left + grace);
            }
            memory.applied = Some(id.clone());
            counts.opens_applied.fetch_add(1, Relaxed);
            if v.left_ms > 0 {
                return;
            }
        }
        if v.left_ms > 0 {
            self.local.hold_open_for(left + grace);
            return;
        }
        // The fleet's open period is over: its probes are run by the
        // instance that claims them.
        let claimed_at = match &memory.owned {
            Some((e, g, at)) if *e == v.epoch && *g == v.gen => Some(*at),
            _ => None,
        };
        let probing = self.local.state() == State::HalfOpen;
        if let Some(claimed_at) = claimed_at {
            if probing {
                let _ = self.claim(v.gen, true);
            } else if claimed_at.elapsed() + s.every * 2 >= s.claim {
                // No call came to probe with: give the probes up before
                // the claim lapses and another instance takes them (unless
                // a probe started just now: then keep them).
                if self.local.hold_open_for(grace) {
                    self.shared.owner_gen.store(0, Relaxed);
                    memory.owned = None;
                } else {
                    let _ = self.claim(v.gen, true);
                }
            }
            return;
        }
        match self.claim(v.gen, false) {
            Ok(1) | Ok(2) => {
                memory.owned = Some((v.epoch, v.gen, Instant::now()));
                self.shared.owner_gen.store(v.gen, Relaxed);
                counts.probes_owned.fetch_add(1, Relaxed);
                // Due now: the next call is the first probe.
                self.local.hold_open_for(Duration::ZERO);
            }
            _ => {
                if !probing {
                    self.local.hold_open_for(grace);
                }
            }
        }
    }

    fn claim(&self, gen: u64, renew: bool) -> Result<u8, FleetError> {
        let key = format!("{}:probe:{gen}", self.key);
        self.fleet.run("breaker probe claim", |c| {
            self.claim
                .key(&key)
                .arg(&self.id)
                .arg(self.settings.claim.as_millis() as u64)
                .arg(renew as u8)
                .invoke(c)
        })
    }
}

/// A circuit breaker whose verdict a fleet shares, made by
/// [`Fleet::circuit_breaker`]: calls are admitted by an ordinary local
/// [`CircuitBreaker`] (no I/O on a call; it derefs to it), which a
/// background thread steers by the fleet's verdict and reports to it.
///
/// - After any instance trips (or, with a [`quorum`] of `q`, after `q`
///   instances did, or the fleet's counts reach the local policy's rate
///   threshold), every instance refuses within one sync interval
///   ([`SYNC_EVERY`], 200 ms by default; 1.3 × plus a round trip at most).
/// - At most `half_open_calls` probes run fleet-wide, on the one instance
///   that claims the generation's probes; the others stay open until the
///   fleet's verdict, or take the probes over if the claim lapses.
/// - No lock is held around a call, and Redis being down or slow never
///   delays one: the breaker then runs on its own local policy (counted
///   in [`FleetBreakerSnapshot::failed_syncs`]) until Redis answers again.
///
/// A `fork()` child starts its own sync thread (under a new instance id)
/// on its first call through this handle (`try_acquire`, `call`,
/// `breaker`). Dropping the handle ends the thread.
///
/// [`quorum`]: FleetBreakerBuilder::quorum
#[derive(Debug)]
pub struct FleetBreaker {
    local: Arc<CircuitBreaker>,
    shared: Arc<Shared>,
    listener: ListenerId,
    template: Syncer,
}

/// A fleet breaker's sync counts (this instance's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetBreakerSnapshot {
    /// Syncs that reached Redis.
    pub syncs: u64,
    /// Syncs that failed (Redis unreachable, slow, or failwell's breaker
    /// around it open): the breaker decided on its own meanwhile.
    pub failed_syncs: u64,
    /// Local trips reported as this instance's vote.
    pub votes: u64,
    /// Fleet openings applied to the local breaker.
    pub opens_applied: u64,
    /// Fleet closings applied (the local breaker reset).
    pub closes_applied: u64,
    /// Half-opens whose probes this instance claimed.
    pub probes_owned: u64,
    /// Probe verdicts this instance reported.
    pub probe_verdicts: u64,
    /// The fleet verdict's generation, as last seen.
    pub fleet_generation: u64,
    /// Whether the fleet was open, as last seen.
    pub fleet_open: bool,
    /// Whether the `on_unavailable` fallback (fail-open or fail-closed)
    /// holds the local breaker now.
    pub degraded: bool,
}

impl FleetBreaker {
    /// Starts the sync thread; `sync_here` makes the first sync on the
    /// calling thread first (at build: the verdict is applied before any
    /// call), otherwise the thread makes it at once (after fork: the
    /// child's first call does no I/O).
    fn start(&self, sync_here: bool) -> std::io::Result<()> {
        let mut sync = self.template.clone();
        if self.shared.fork_gen.load(Relaxed) != failwell::fork_generation() {
            sync.id = instance_id();
        }
        self.shared
            .fork_gen
            .store(failwell::fork_generation(), Relaxed);
        self.shared.stop.store(false, Relaxed);
        let mut memory = Memory {
            last_ok: Some(Instant::now()),
            ..Memory::default()
        };
        let mut first = Instant::now();
        if sync_here {
            SYNCING.with(|s| s.set(true));
            sync.tick(&mut memory);
            SYNCING.with(|s| s.set(false));
            first += sync.settings.every.mul_f64(unit(&mut seed(&sync.id)));
        }
        let handle = std::thread::Builder::new()
            .name("failwell-cb-sync".into())
            .spawn(move || sync.run(memory, first))?;
        if let Ok(mut w) = self.shared.waker.lock() {
            *w = Some(handle.thread().clone());
        }
        if let Ok(mut t) = self.shared.thread.lock() {
            std::mem::forget(t.replace(handle));
        }
        Ok(())
    }

    /// In a child of `fork()`: a sync thread of its own.
    #[inline]
    fn ensure(&self) {
        if self.shared.fork_gen.load(Relaxed) != failwell::fork_generation() {
            self.restart();
        }
    }

    #[cold]
    fn restart(&self) {
        if self
            .shared
            .respawning
            .compare_exchange(false, true, Relaxed, Relaxed)
            .is_ok()
        {
            if self.shared.fork_gen.load(Relaxed) != failwell::fork_generation() {
                let _ = self.start(false);
            }
            self.shared.respawning.store(false, Relaxed);
        }
    }

    /// The local breaker (also through `Deref`). Calls made on it directly
    /// in a child of `fork()` do not start the child's sync thread; calls
    /// through [`try_acquire`](Self::try_acquire) and
    /// [`call`](Self::call) do.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        self.ensure();
        &self.local
    }

    /// [`CircuitBreaker::try_acquire`] on the local breaker.
    #[inline]
    pub fn try_acquire(&self) -> Result<breaker::Permit<'_>, failwell::Rejected> {
        self.ensure();
        self.local.try_acquire()
    }

    /// [`CircuitBreaker::call`] on the local breaker.
    pub fn call<T, E, F>(&self, f: F) -> Result<T, failwell::Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.ensure();
        self.local.call(f)
    }

    /// This instance's sync counts.
    pub fn fleet_snapshot(&self) -> FleetBreakerSnapshot {
        let c = &self.shared.counts;
        FleetBreakerSnapshot {
            syncs: c.syncs.load(Relaxed),
            failed_syncs: c.failed_syncs.load(Relaxed),
            votes: c.votes.load(Relaxed),
            opens_applied: c.opens_applied.load(Relaxed),
            closes_applied: c.closes_applied.load(Relaxed),
            probes_owned: c.probes_owned.load(Relaxed),
            probe_verdicts: c.probe_verdicts.load(Relaxed),
            fleet_generation: c.fleet_generation.load(Relaxed),
            fleet_open: c.fleet_open.load(Relaxed),
            degraded: c.degraded.load(Relaxed),
        }
    }
}

impl Deref for FleetBreaker {
    type Target = CircuitBreaker;

    fn deref(&self) -> &CircuitBreaker {
        &self.local
    }
}

impl Drop for FleetBreaker {
    fn drop(&mut self) {
        self.local.remove_listener(self.listener);
        self.shared.stop.store(true, Relaxed);
        if self.shared.fork_gen.load(Relaxed) != failwell::fork_generation() {
            return; // the parent's thread is not in this process
        }
        let handle = self.shared.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = handle {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
