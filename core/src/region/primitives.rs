//! The primitives a region holds: each kind's slot, configuration words
//! and handle.

use super::{Kind, Region, RegionError, SlotRules, BLOCK_ALIGN, CONFIG_WORDS};
use crate::clock::MonotonicClock;
use crate::counter::{StripedCounter, Stripes};
use crate::rate_limit::{self, LimiterState, RateLimiter};
use crate::retry::{BudgetState, RetryBudget};
use crate::words::LINE_WORDS;

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
