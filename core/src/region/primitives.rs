//! The primitives a region holds: each kind's slot, configuration words
//! and handle.

use super::threads::{table, Threads};
use super::{
    entry, header, Kind, Region, RegionError, SlotRules, BLOCK_ALIGN, CONFIG_WORDS, MAX_SLOTS,
};
use crate::bulkhead::shared::{Shared, Wake};
use crate::bulkhead::state::BulkheadState;
use crate::bulkhead::tagged::THREADS;
use crate::bulkhead::{Bulkhead, Config as BulkheadConfig, MAX_SHARED};
use crate::clock::MonotonicClock;
use crate::counter::{StripedCounter, Stripes};
use crate::error::ConfigError;
use crate::rate_limit::{self, LimiterState, RateLimiter};
use crate::retry::{BudgetState, RetryBudget};
use crate::sync::Ordering::{Acquire, Relaxed};
use crate::words::LINE_WORDS;
use crate::words::{Placed, Words};

impl Region {
    /// The rate limiter `name`, created with `builder`'s configuration if
    /// the region has no slot of that name. Every process asking for the
    /// name gets the same limiter: one GCRA word for the host, exact. The
    /// clock is the system's monotonic clock, which every process on the
    /// host reads alike.
    ///
    /// Errors: an invalid configuration ([`RegionError::Config`]); the name
    /// taken by another configuration (`ConfigMismatch`, see
    /// [`attach_rate_limiter`](Self::attach_rate_limiter)) or another kind
    /// of primitive; a full region.
    pub fn rate_limiter(
        &self,
        name: &str,
        builder: rate_limit::Builder<MonotonicClock>,
    ) -> Result<RateLimiter, RegionError> {
        let (interval, limit, precise) = builder.shared_params()?;
        let stripes = Stripes::new();
        let config = [
            interval,
            limit,
            precise as u64,
            stripes.count() as u64,
            0,
            0,
        ];
        self.limiter(name, Some(config))
    }

    /// The rate limiter `name` as the region holds it, whatever its
    /// configuration ([`RegionError::NotFound`] if there is none).
    pub fn attach_rate_limiter(&self, name: &str) -> Result<RateLimiter, RegionError> {
        self.limiter(name, None)
    }

    fn limiter(
        &self,
        name: &str,
        config: Option<[u64; CONFIG_WORDS]>,
    ) -> Result<RateLimiter, RegionError> {
        let block = std::mem::size_of::<LimiterState>();
        debug_assert!(std::mem::align_of::<LimiterState>() <= BLOCK_ALIGN);
        let tail_at = block.div_ceil(64) * 64;
        // The stripe count is the creator's (stored), so that every process
        // agrees on the tail's layout.
        let stripes_of = |c: &[u64; CONFIG_WORDS]| c[3] as usize;
        let describe = |c: &[u64; CONFIG_WORDS]| {
            format!(
                "{{interval: {} ns, burst: {}, precise: {}}}",
                c[0],
                c[1] / c[0].max(1),
                c[2] != 0
            )
        };
        let bytes = |c: &[u64; CONFIG_WORDS]| tail_at + stripes_of(c) * LINE_WORDS * 8;
        let rules = SlotRules {
            same: &|stored, asked| stored[..3] == asked[..3],
            describe: &describe,
            bytes: &bytes,
        };
        let (offset, stored) = self.slot(name, Kind::RateLimiter, config, rules, |ptr, c| {
            // SAFETY: the block is `bytes` of zeroed, 128-byte aligned
            // memory no other process can see yet (its entry is written
            // after this, under the lock); a `LimiterState` fits.
            #[allow(unsafe_code)]
            unsafe {
                ptr.cast::<LimiterState>()
                    .as_ptr()
                    .write(LimiterState::new(c[0], c[1]));
            }
        })?;
        let stripes =
            Stripes::with_count(stripes_of(&stored)).ok_or_else(|| RegionError::NotARegion {
                path: self.map.path.clone(),
            })?;
        // SAFETY: the slot's block at `offset` is an initialised
        // `LimiterState` followed at `tail_at` (a multiple of 64) by its
        // stripes' words; `slot` checked the block's length against the
        // stored configuration.
        #[allow(unsafe_code)]
        let (state, tail) = unsafe {
            (
                self.placed::<LimiterState>(offset),
                self.words(offset + tail_at, stripes.words()),
            )
        };
        Ok(RateLimiter::from_parts(
            state,
            StripedCounter::on(stripes, tail),
            stored[2] != 0,
            MonotonicClock,
            true,
        ))
    }
}

impl Region {
    /// The retry budget `name`: retries may be at most `ratio` of the calls
    /// of every process using it, plus `min_per_sec` per second, over a
    /// window of `ttl` (as [`RetryBudget::with`], on the system's monotonic
    /// clock): a host-wide budget, so that one process's retry storm draws
    /// on the same allowance as everyone's. Created with these settings if
    /// the region has no slot of that name; another configuration is
    /// `ConfigMismatch`. Give it to each process's
    /// [`Retry`](crate::retry::Retry) builder with `.budget(Arc::new(b))`.
    pub fn retry_budget(
        &self,
        name: &str,
        ratio: f64,
        min_per_sec: f64,
        ttl: std::time::Duration,
    ) -> Result<RetryBudget, RegionError> {
        let ttl = RetryBudget::<MonotonicClock>::validate(ratio, min_per_sec, ttl)?;
        let config = [ratio.to_bits(), min_per_sec.to_bits(), ttl, 0, 0, 0];
        self.budget(name, Some(config))
    }

    /// The retry budget `name` as the region holds it, whatever its
    /// configuration ([`RegionError::NotFound`] if there is none).
    pub fn attach_retry_budget(&self, name: &str) -> Result<RetryBudget, RegionError> {
        self.budget(name, None)
    }

    fn budget(
        &self,
        name: &str,
        config: Option<[u64; CONFIG_WORDS]>,
    ) -> Result<RetryBudget, RegionError> {
        let describe = |c: &[u64; CONFIG_WORDS]| {
            format!(
                "{{ratio: {}, min_per_sec: {}, ttl: {:?}}}",
                f64::from_bits(c[0]),
                f64::from_bits(c[1]),
                std::time::Duration::from_nanos(c[2])
            )
        };
        let bytes = |_: &[u64; CONFIG_WORDS]| std::mem::size_of::<BudgetState>();
        let rules = SlotRules {
            same: &|stored, asked| stored[..3] == asked[..3],
            describe: &describe,
            bytes: &bytes,
        };
        let (offset, stored) = self.slot(name, Kind::RetryBudget, config, rules, |ptr, _| {
            // SAFETY: the block is zeroed, 128-byte aligned memory of a
            // `BudgetState`'s size that no other process can see yet (its
            // entry is written after this, under the lock).
            #[allow(unsafe_code)]
            unsafe {
                ptr.cast::<BudgetState>().as_ptr().write(BudgetState::new());
            }
        })?;
        let ratio = f64::from_bits(stored[0]);
        let min_per_sec = f64::from_bits(stored[1]);
        let ttl = std::time::Duration::from_nanos(stored[2]);
        let ttl =
            RetryBudget::<MonotonicClock>::validate(ratio, min_per_sec, ttl).map_err(|_| {
                RegionError::NotARegion {
                    path: self.map.path.clone(),
                }
            })?;
        // SAFETY: the slot's block at `offset` is an initialised
        // `BudgetState` (its length checked by `slot`).
        #[allow(unsafe_code)]
        let state = unsafe { self.placed::<BudgetState>(offset) };
        Ok(RetryBudget::from_parts(
            ratio,
            min_per_sec,
            ttl,
            state,
            MonotonicClock,
        ))
    }
}

/// A shared bulkhead's block: its state, the wake word on the next line,
/// then the ledger.
mod bulkhead_block {
    use crate::bulkhead::shared::Wake;
    use crate::bulkhead::state::BulkheadState;
    use crate::bulkhead::tagged::THREADS;

    pub(super) const WAKE_AT: usize = std::mem::size_of::<BulkheadState>().div_ceil(64) * 64;
    pub(super) const LEDGER_AT: usize = WAKE_AT + std::mem::size_of::<Wake>().div_ceil(64) * 64;
    pub(super) const BYTES: usize = LEDGER_AT + THREADS * 8;
}

/// A shared bulkhead's parts, for the reaper.
pub(super) struct BulkheadBlock {
    pub(super) state: Placed<BulkheadState>,
    pub(super) wake: Placed<Wake>,
    pub(super) ledger: Words,
}

impl Region {
    /// The bulkhead `name`: at most `config.max_concurrent` permits out
    /// across every process using it, `config.critical_reserve` of them
    /// for [`Priority::Critical`](crate::bulkhead::Priority) callers — the
    /// ordinary [`Bulkhead`] and its rule, on one permit word for the
    /// host. Created with `config` if the region has no slot of that name;
    /// another configuration is `ConfigMismatch` (see
    /// [`attach_bulkhead`](Self::attach_bulkhead)).
    ///
    /// - **Crash-safe.** Every permit is also counted against the thread
    ///   that holds it, in a ledger in the region; the permits of a process
    ///   that dies holding them (SIGKILL included) are given back by the
    ///   next caller that finds none free, or by a reaper thread each
    ///   process with a shared bulkhead runs, within half a second. A
    ///   process is told apart from a later one with its pid by its start
    ///   time (Linux; elsewhere by pid only).
    /// - **Waiting** (`acquire_timeout`) works across processes: a waiter
    ///   sleeps on a futex word in the region (Linux; elsewhere it looks
    ///   again every millisecond) and is woken by any process's release;
    ///   it also looks again by itself at least every 50 ms.
    /// - At most [`MAX_SHARED`] permits, and
    ///   1024 threads of all processes holding or returning permits at once
    ///   (a thread keeps its place in the table while it lives; an ended
    ///   thread's place goes to its process's next new thread).
    /// - `reconfigure` is refused (a `ConfigError` naming `reconfigure`);
    ///   `snapshot().waiting` counts this process's waiters only.
    /// - A permit taken before `fork()` is the parent's: the child's copy
    ///   of a permit guard returns nothing when dropped.
    pub fn bulkhead(&self, name: &str, config: BulkheadConfig) -> Result<Bulkhead, RegionError> {
        config.validate()?;
        if config.max_concurrent > MAX_SHARED {
            return Err(ConfigError::new(
                "max_concurrent",
                format!(
                    "a bulkhead in a host region allows at most {MAX_SHARED}, got {}",
                    config.max_concurrent
                ),
            )
            .into());
        }
        let words = [
            config.max_concurrent as u64,
            config.critical_reserve as u64,
            THREADS as u64,
            0,
            0,
            0,
        ];
        self.bulkhead_slot(name, Some(words))
    }

    /// The bulkhead `name` as the region holds it, whatever its
    /// configuration ([`RegionError::NotFound`] if there is none).
    pub fn attach_bulkhead(&self, name: &str) -> Result<Bulkhead, RegionError> {
        self.bulkhead_slot(name, None)
    }

    fn bulkhead_slot(
        &self,
        name: &str,
        config: Option<[u64; CONFIG_WORDS]>,
    ) -> Result<Bulkhead, RegionError> {
        let threads = self.threads()?;
        let describe = |c: &[u64; CONFIG_WORDS]| {
            format!("{{max_concurrent: {}, critical_reserve: {}}}", c[0], c[1])
        };
        let bytes = |_: &[u64; CONFIG_WORDS]| bulkhead_block::BYTES;
        let rules = SlotRules {
            same: &|stored, asked| stored[..3] == asked[..3],
            describe: &describe,
            bytes: &bytes,
        };
        let (offset, stored) = self.slot(name, Kind::Bulkhead, config, rules, |ptr, c| {
            // SAFETY: the block is zeroed, 128-byte aligned memory of
            // `BYTES` that no other process can see yet (its entry is
            // written after this, under the lock): the state, the wake
            // word and the ledger (zero: no step, nothing held) fit.
            #[allow(unsafe_code)]
            unsafe {
                ptr.cast::<BulkheadState>()
                    .as_ptr()
                    .write(BulkheadState::shared(c[0] as u32, c[1] as u32));
                ptr.as_ptr()
                    .add(bulkhead_block::WAKE_AT)
                    .cast::<Wake>()
                    .write(Wake::new());
            }
        })?;
        let config = BulkheadConfig {
            max_concurrent: stored[0] as u32,
            critical_reserve: stored[1] as u32,
        };
        if config.validate().is_err()
            || config.max_concurrent > MAX_SHARED
            || stored[2] != THREADS as u64
        {
            return Err(RegionError::NotARegion {
                path: self.map.path.clone(),
            });
        }
        let block = self.bulkhead_block(offset);
        Ok(Bulkhead::from_parts(
            block.state,
            Shared::new(block.ledger, block.wake, threads),
        ))
    }

    /// The handles on a bulkhead's block at `offset`.
    fn bulkhead_block(&self, offset: usize) -> BulkheadBlock {
        // SAFETY: a bulkhead slot's block at `offset` (its length checked
        // by `slot`, or read from an entry of kind bulkhead) holds an
        // initialised `BulkheadState`, the `Wake` at `WAKE_AT` and the
        // ledger's `THREADS` words at `LEDGER_AT` (a multiple of 64).
        #[allow(unsafe_code)]
        unsafe {
            BulkheadBlock {
                state: self.placed::<BulkheadState>(offset),
                wake: self.placed::<Wake>(offset + bulkhead_block::WAKE_AT),
                ledger: self.words(offset + bulkhead_block::LEDGER_AT, THREADS),
            }
        }
    }

    /// Every bulkhead block in the region now.
    pub(super) fn bulkhead_blocks(&self) -> Vec<BulkheadBlock> {
        // Acquire: pairs with the Release store that counts a new entry.
        let used = self.word(header::USED * 8).load(Acquire) as usize;
        (0..used.min(MAX_SLOTS))
            .filter(|&i| self.entry_word(i, entry::KIND).load(Relaxed) == Kind::Bulkhead as u64)
            .filter_map(|i| {
                let offset = self.entry_word(i, entry::OFFSET).load(Relaxed) as usize;
                let len = self.entry_word(i, entry::LEN).load(Relaxed) as usize;
                (len == bulkhead_block::BYTES
                    && offset % BLOCK_ALIGN == 0
                    && offset + len <= self.map.len)
                    .then(|| self.bulkhead_block(offset))
            })
            .collect()
    }

    /// The region's thread table, made on first use.
    pub(super) fn threads(&self) -> Result<Threads, RegionError> {
        let describe = |c: &[u64; CONFIG_WORDS]| format!("{{threads: {}}}", c[0]);
        let bytes = |_: &[u64; CONFIG_WORDS]| table::WORDS * 8;
        let rules = SlotRules {
            same: &|stored, asked| stored[0] == asked[0],
            describe: &describe,
            bytes: &bytes,
        };
        let config = [THREADS as u64, 0, 0, 0, 0, 0];
        let (offset, _) = self.slot(
            "thread table",
            Kind::Threads,
            Some(config),
            rules,
            |_, _| {},
        )?;
        Threads::new(self, offset)
    }
}
