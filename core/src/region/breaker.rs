//! A region's circuit breakers: the slot, its block and the handle.

use std::fmt::Write as _;
use std::sync::Arc;

use super::{
    entry, header, Kind, Region, RegionError, SlotRules, BLOCK_ALIGN, CONFIG_WORDS, MAX_SLOTS,
};
use crate::breaker::events::Listeners;
use crate::breaker::shared::{LockWords, Shared, Watch, ENTRY_WORDS, PROBE_ENTRIES};
use crate::breaker::state::{BreakerState, Ident, TailLayout, Word};
use crate::breaker::{self, CircuitBreaker, Config, Window};
use crate::clock::MonotonicClock;
use crate::counter::Stripes;
use crate::sync::{
    AtomicU64,
    Ordering::{Acquire, Relaxed},
};
use crate::words::{Placed, Words, LINE_WORDS};

/// A breaker block: the stored configuration, the state block, the lock
/// words, the probe ledger, then the tail (calls and window), each on
/// 128-byte lines of its own.
mod block {
    use super::*;

    pub(super) const CONFIG_AT: usize = 0;
    pub(super) const STATE_AT: usize = breaker::CONFIG_WORDS * 8;
    pub(super) const LOCK_AT: usize =
        STATE_AT + std::mem::size_of::<BreakerState>().div_ceil(128) * 128;
    pub(super) const PROBES_AT: usize =
        LOCK_AT + std::mem::size_of::<LockWords>().div_ceil(128) * 128;
    pub(super) const TAIL_AT: usize = PROBES_AT + PROBE_ENTRIES * ENTRY_WORDS * 8;
    /// The layout version of the block, stored in the slot's entry.
    pub(super) const VERSION: u64 = 1;

    /// The tail's words, in whole lines.
    pub(super) fn tail_len(tail_words: usize) -> usize {
        tail_words.div_ceil(LINE_WORDS) * LINE_WORDS
    }

    pub(super) fn bytes(tail_words: usize) -> usize {
        TAIL_AT + tail_len(tail_words) * 8
    }
}

/// A shared breaker's parts, for the reaper.
pub(super) struct BreakerBlock {
    pub(super) state: Placed<BreakerState>,
    pub(super) probes: Words,
}

impl Region {
    /// The circuit breaker `name`: one breaker for every process using the
    /// region — the ordinary [`CircuitBreaker`] and its rules on one state
    /// word, one set of counts and one window for the host — created with
    /// `builder`'s configuration if the region has no slot of that name.
    ///
    /// - A trip by any process is seen by every process on its next call;
    ///   count and time windows hold every process's outcomes; at most
    ///   `half_open_calls` probes are out host-wide.
    /// - Each process's listeners hear of transitions it made at once, on
    ///   the thread that made them; of transitions made by other processes
    ///   on the next call here that finds the breaker not closed, or from
    ///   the process's `failwell-reaper` thread at most 250 ms later,
    ///   whichever comes first (`from` is then the state last announced
    ///   here; transitions that followed each other within that time are
    ///   announced as one).
    /// - Half-open probes held by a process that dies (even by SIGKILL) are
    ///   given back within about half a second (the region's reaper); a
    ///   process killed in the instant between being admitted as a probe
    ///   and recording it, or while 64 processes hold probes, loses that
    ///   slot until `half_open_max_wait` reopens the breaker — never a
    ///   probe too many.
    /// - The transition lock is a word in the region naming its holder: a
    ///   process killed while holding it is found dead and taken over
    ///   (within about 20 ms); a paused one (SIGSTOP) holds up the
    ///   transitions of the others until it runs again, never their calls
    ///   in Closed.
    /// - The clock is the system's monotonic clock; `reconfigure` is
    ///   refused (a `ConfigError` naming `reconfigure`).
    /// - A probe permit taken before `fork()` must be recorded by the
    ///   process that took it.
    ///
    /// Errors: an invalid configuration ([`RegionError::Config`]); the name
    /// taken by another configuration (`ConfigMismatch`, see
    /// [`attach_circuit_breaker`](Self::attach_circuit_breaker)) or
    /// another kind of primitive; a full region.
    pub fn circuit_breaker(
        &self,
        name: &str,
        builder: breaker::Builder<MonotonicClock>,
    ) -> Result<CircuitBreaker, RegionError> {
        let mut builder = builder;
        let given = builder.take_name();
        let (config, _) = builder.validate()?;
        self.breaker_slot(name, given, Some(config))
    }

    /// The circuit breaker `name` as the region holds it, whatever its
    /// configuration ([`RegionError::NotFound`] if there is none).
    pub fn attach_circuit_breaker(&self, name: &str) -> Result<CircuitBreaker, RegionError> {
        self.breaker_slot(name, None, None)
    }

    fn breaker_slot(
        &self,
        name: &str,
        given: Option<std::sync::Arc<str>>,
        asked: Option<Config>,
    ) -> Result<CircuitBreaker, RegionError> {
        let threads = self.threads()?;
        let new_layout = asked.as_ref().map(|c| TailLayout::new(c.window));
        let words = new_layout.map(|l| {
            [
                l.calls.count() as u64,
                l.window.stripes() as u64,
                l.words() as u64,
                PROBE_ENTRIES as u64,
                block::VERSION,
                0,
            ]
        });
        let (offset, stored) = self.breaker_entry(name, words, |ptr| {
            let (Some(config), Some(layout)) = (asked.as_ref(), new_layout) else {
                return;
            };
            let cw = config.to_words();
            // SAFETY: the block is `bytes` of zeroed, 128-byte aligned
            // memory that no other process can see yet (its entry is
            // written after this, under the lock): the configuration words,
            // the state at `STATE_AT`, the lock and ledger (zero: free) and
            // the tail's words fit, each at a multiple of 128.
            #[allow(unsafe_code)]
            unsafe {
                let base = ptr.as_ptr();
                for (i, w) in cw.iter().enumerate() {
                    base.add(block::CONFIG_AT + i * 8).cast::<u64>().write(*w);
                }
                base.add(block::STATE_AT)
                    .cast::<BreakerState>()
                    .write(BreakerState::new());
                for i in 0..layout.words() {
                    base.add(block::TAIL_AT + i * 8)
                        .cast::<u64>()
                        .write(layout.window.initial(i));
                }
            }
        })?;
        let bad = || RegionError::NotARegion {
            path: self.map.path.clone(),
        };
        let cw: [u64; breaker::CONFIG_WORDS] =
            std::array::from_fn(|i| self.word(offset + block::CONFIG_AT + i * 8).load(Relaxed));
        let config = Config::from_words(&cw).ok_or_else(bad)?;
        if let Some(asked) = &asked {
            if *asked != config {
                return Err(RegionError::ConfigMismatch {
                    name: name.to_owned(),
                    stored: describe_config(&config),
                    asked: describe_config(asked),
                });
            }
        }
        let calls = Stripes::with_count(stored[0] as usize).ok_or_else(bad)?;
        let window_stripes = stored[1] as usize;
        if matches!(config.window(), Some(Window::Time { .. }))
            && !(window_stripes.is_power_of_two() && window_stripes <= 64)
        {
            return Err(bad());
        }
        let layout = TailLayout::with_stripes(config.window(), calls, window_stripes);
        if layout.words() != stored[2] as usize
            || stored[3] != PROBE_ENTRIES as u64
            || stored[4] != block::VERSION
        {
            return Err(bad());
        }
        let b = self.breaker_block(offset);
        // SAFETY: the block's lock words at `LOCK_AT` and its tail's
        // `layout.words()` words at `TAIL_AT` (both multiples of 128; the
        // block's length was checked by `slot` against the stored words).
        #[allow(unsafe_code)]
        let (lock, tail, state) = unsafe {
            (
                self.placed::<LockWords>(offset + block::LOCK_AT),
                self.words(offset + block::TAIL_AT, block::tail_len(layout.words())),
                self.placed::<BreakerState>(offset + block::STATE_AT),
            )
        };
        // Acquire: pairs with the Release swap of a transition; the state
        // this process starts from is announced to no one.
        let w = Word(state.word.load(Acquire));
        let seen = if w.is_half_open() {
            Ident::new(w.state(), state.published.half_open_gen.load(Relaxed))
        } else {
            Ident(w.0)
        };
        let watch = Arc::new(Watch {
            state,
            seen: AtomicU64::new(seen.0),
            listeners: Listeners::named(Some(given.unwrap_or_else(|| name.into()))),
        });
        Ok(CircuitBreaker::from_shared(
            config,
            b.state,
            tail,
            layout,
            Shared::new(lock, b.probes, watch, threads),
        ))
    }

    /// The slot `name` of kind breaker (made with `words` and `init` if
    /// absent and `words` is given): its block's offset and entry words.
    fn breaker_entry(
        &self,
        name: &str,
        words: Option<[u64; CONFIG_WORDS]>,
        init: impl FnOnce(std::ptr::NonNull<u8>),
    ) -> Result<(usize, [u64; CONFIG_WORDS]), RegionError> {
        let describe = |c: &[u64; CONFIG_WORDS]| format!("{c:?}");
        let bytes = |c: &[u64; CONFIG_WORDS]| block::bytes(c[2] as usize);
        let rules = SlotRules {
            // The whole configuration is compared by the caller, from the
            // block.
            same: &|_, _| true,
            describe: &describe,
            bytes: &bytes,
        };
        self.slot(name, Kind::Breaker, words, rules, |ptr, _| init(ptr))
    }

    /// The handles on a breaker's block at `offset`.
    fn breaker_block(&self, offset: usize) -> BreakerBlock {
        // SAFETY: a breaker slot's block at `offset` (its length checked
        // by `slot`, or read from an entry of kind breaker) holds an
        // initialised `BreakerState` at `STATE_AT` and the probe ledger's
        // words at `PROBES_AT` (a multiple of 128).
        #[allow(unsafe_code)]
        unsafe {
            BreakerBlock {
                state: self.placed::<BreakerState>(offset + block::STATE_AT),
                probes: self.words(offset + block::PROBES_AT, PROBE_ENTRIES * ENTRY_WORDS),
            }
        }
    }

    /// Every breaker block in the region now.
    pub(super) fn breaker_blocks(&self) -> Vec<BreakerBlock> {
        // Acquire: pairs with the Release store that counts a new entry.
        let used = self.word(header::USED * 8).load(Acquire) as usize;
        (0..used.min(MAX_SLOTS))
            .filter(|&i| self.entry_word(i, entry::KIND).load(Relaxed) == Kind::Breaker as u64)
            .filter_map(|i| {
                let offset = self.entry_word(i, entry::OFFSET).load(Relaxed) as usize;
                let len = self.entry_word(i, entry::LEN).load(Relaxed) as usize;
                (len >= block::TAIL_AT && offset % BLOCK_ALIGN == 0 && offset + len <= self.map.len)
                    .then(|| self.breaker_block(offset))
            })
            .collect()
    }
}

/// A configuration, for an error message: the policies that are on and
/// every value.
fn describe_config(c: &Config) -> String {
    let mut s = String::from("{");
    if let Some(n) = c.consecutive_failures() {
        let _ = write!(s, "consecutive_failures: {n}, ");
    }
    if let Some(r) = c.failure_rate() {
        let _ = write!(s, "failure_rate: {r}, ");
    }
    if let (Some(r), Some(d)) = (c.slow_call_rate(), c.slow_call_duration()) {
        let _ = write!(s, "slow_call_rate: {r}, slow_call_duration: {d:?}, ");
    }
    match c.window() {
        Some(Window::Count(n)) => {
            let _ = write!(s, "window: {n} calls, ");
        }
        Some(Window::Time { length, buckets }) => {
            let _ = write!(s, "window: {length:?} in {buckets} buckets, ");
        }
        None => {}
    }
    if c.window().is_some() {
        let _ = write!(s, "minimum_calls: {}, ", c.minimum_calls());
    }
    let _ = write!(
        s,
        "half_open_calls: {}, half_open_max_wait: {:?}, open_for: {:?}, open_for_multiplier: {}, open_for_max: {:?}}}",
        c.half_open_calls(),
        c.half_open_max_wait(),
        c.open_for(),
        c.open_for_multiplier(),
        c.open_for_max()
    );
    s
}

#[cfg(test)]
impl Region {
    /// The lock words of the breaker `name`.
    pub(super) fn breaker_lock_for_tests(&self, name: &str) -> Placed<LockWords> {
        let (offset, _) = self.breaker_entry(name, None, |_| {}).unwrap();
        // SAFETY: as in `breaker_slot`.
        #[allow(unsafe_code)]
        unsafe {
            self.placed::<LockWords>(offset + block::LOCK_AT)
        }
    }
}
