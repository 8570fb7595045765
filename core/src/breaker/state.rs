//! The breaker's state word: one `u64` holding the state, its generation and,
//! in half-open, the probe counters, so that every transition and every
//! probe admission is one compare-and-swap.
//!
//! ```text
//! every state but HalfOpen:
//!  63                                                              3 2    0
//! +-----------------------------------------------------------------+------+
//! |                        generation (61)                          | kind |
//! +-----------------------------------------------------------------+------+
//! HalfOpen:
//!  63            43 42      33 32      23 22      13 12       3 2    0
//! +----------------+----------+----------+----------+----------+------+
//! | gen, low 21 b. | slow (10)| fail (10)| succ (10)|issued(10)| kind |
//! +----------------+----------+----------+----------+----------+------+
//! ```
//!
//! The generation changes on every transition, so an outcome recorded on a
//! permit from an older generation is recognised and kept out of the newer
//! generation's counts. It is 61 bits wide, which no process can wrap (at
//! one transition per nanosecond it would take 73 years). In half-open the
//! word holds only its low 21 bits beside the probe counters; the breaker
//! keeps the full value of the current half-open's generation beside the
//! word, and a permit always carries the full generation (an [`Ident`]).

use std::fmt;

use super::window::{WindowHeads, WindowLayout};
use super::Window;
use crate::clock::nanos;
use crate::counter::Stripes;
use crate::sync::{AtomicU64, CachePadded};
use crate::words::Words;

/// A breaker's fixed state block: plain atomic words at a fixed layout,
/// `#[repr(C)]` and pointer-free. Each group another set of threads writes
/// sits on a cache line of its own:
///
/// | group | field | written by | contents |
/// |---|---|---|---|
/// | `word` | | admission in half-open, probe outcomes, transitions | the state word above |
/// | `rejected` | | every refused call | refusals since creation |
/// | `counts` | `failures`, `slow` | recorded failures / slow calls | cumulative counts |
/// | | `ignored` | permits dropped or recorded as ignored | cumulative count |
/// | | `transitions`, `opened` | transitions | cumulative counts |
/// | | `listener_panics` | a listener that panicked | cumulative count |
/// | `published` | `open_until` | a transition to Open | clock nanoseconds; valid while the word says Open |
/// | | `half_open_since` | a transition to HalfOpen | clock nanoseconds; valid while the word says HalfOpen |
/// | | `half_open_gen` | a transition to HalfOpen | the full 61-bit generation of the current half-open |
/// | | `trips` | a transition to Open or Closed | openings in a row since the last close (for the growing open period) |
/// | `windows` | | recorded outcomes | the windows' fixed words (see `window.rs`, `WindowHeads`) |
///
/// The `published` words are written under the transition lock before the
/// Release compare-and-swap that publishes the new state word, and read
/// after an Acquire load of it.
///
/// What the configuration sizes follows the block as its *tail*, a run of
/// words laid out by [`TailLayout`]: the striped call counter, then the
/// window's slots (count) or buckets and call stripes (time).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct BreakerState {
    pub(crate) word: CachePadded<AtomicU64>,
    pub(crate) rejected: CachePadded<AtomicU64>,
    pub(crate) counts: CachePadded<Counts>,
    pub(crate) published: CachePadded<Published>,
    pub(crate) windows: WindowHeads,
}

/// Cumulative counts (see [`BreakerState`]).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) failures: AtomicU64,
    pub(crate) slow: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) transitions: AtomicU64,
    pub(crate) opened: AtomicU64,
    pub(crate) listener_panics: AtomicU64,
}

/// Values published with a state (see [`BreakerState`]).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub(crate) open_until: AtomicU64,
    pub(crate) half_open_since: AtomicU64,
    pub(crate) half_open_gen: AtomicU64,
    pub(crate) trips: AtomicU64,
}

impl BreakerState {
    /// A closed breaker at generation 0 with every count zero.
    pub(crate) fn new() -> Self {
        BreakerState {
            word: CachePadded::new(AtomicU64::new(Word::new(State::Closed, 0).0)),
            rejected: CachePadded::new(AtomicU64::new(0)),
            counts: CachePadded::new(Counts::default()),
            published: CachePadded::new(Published::default()),
            windows: WindowHeads::new(),
        }
    }
}

/// Where the breaker's sized state sits in its tail of words (see
/// [`BreakerState`]): every outcome recorded as success or failure counted
/// on `calls`' stripes from word 0 (each thread on its own cache line), then
/// the window's words as `window` lays them out. Fixed at build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TailLayout {
    pub(crate) calls: Stripes,
    pub(crate) window: WindowLayout,
}

impl TailLayout {
    /// The layout for a new breaker with `window` (none, count or time),
    /// striped for this machine.
    pub(crate) fn new(window: Option<Window>) -> Self {
        Self::with_stripes(window, Stripes::new(), WindowLayout::time_stripes())
    }

    /// The layout with `calls` stripes and, for a time window,
    /// `window_stripes` (a power of two): a layout another process chose
    /// and stored.
    pub(crate) fn with_stripes(
        window: Option<Window>,
        calls: Stripes,
        window_stripes: usize,
    ) -> Self {
        let at = calls.words();
        let window = match window {
            None => WindowLayout::none(at),
            Some(Window::Count(n)) => WindowLayout::count(at, n),
            Some(Window::Time { length, buckets }) => {
                WindowLayout::time(at, nanos(length), buckets, window_stripes)
            }
        };
        TailLayout { calls, window }
    }

    /// The tail's length in words.
    pub(crate) fn words(&self) -> usize {
        self.calls.words() + self.window.words()
    }

    /// A tail on the heap, as a new breaker's.
    pub(crate) fn new_tail(&self) -> Words {
        Words::new(self.words(), |i| self.window.initial(i))
    }
}

/// The most probes half-open may admit (the counters are 10 bits wide).
pub(crate) const MAX_HALF_OPEN_CALLS: u32 = (1 << 10) - 1;

const KIND_BITS: u32 = 3;
const KIND_MASK: u64 = (1 << KIND_BITS) - 1;
const FIELD_BITS: u32 = 10;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;
const ISSUED_SHIFT: u32 = KIND_BITS;
const SUCC_SHIFT: u32 = ISSUED_SHIFT + FIELD_BITS;
const FAIL_SHIFT: u32 = SUCC_SHIFT + FIELD_BITS;
const SLOW_SHIFT: u32 = FAIL_SHIFT + FIELD_BITS;
const GEN_SHIFT: u32 = SLOW_SHIFT + FIELD_BITS;
/// Width of the generation field outside half-open.
pub(crate) const GEN_BITS: u32 = 64 - KIND_BITS;
/// Mask of a generation value.
pub(crate) const GEN_MASK: u64 = (1 << GEN_BITS) - 1;
/// Mask of the low generation bits a half-open word holds.
pub(crate) const HALF_GEN_MASK: u64 = (1 << (64 - GEN_SHIFT)) - 1;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// Calls pass; outcomes are counted and may trip the breaker.
    Closed = 0,
    /// Calls are rejected until the open period ends.
    Open = 1,
    /// A limited number of probe calls pass; their verdict closes or reopens.
    HalfOpen = 2,
    /// Manually held open: every call is rejected until a manual change.
    ForcedOpen = 3,
    /// Manually switched off: every call passes and nothing is counted.
    Disabled = 4,
    /// Every call passes; outcomes are counted in metrics but never trip.
    MetricsOnly = 5,
}

impl State {
    fn from_bits(bits: u64) -> State {
        match bits {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::Disabled,
            _ => State::MetricsOnly,
        }
    }

    /// The state's name in snake case, as used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
            State::MetricsOnly => "metrics_only",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded view of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    /// A word in `state` at generation `gen` with all probe counters zero
    /// (in half-open, only the low bits of `gen` are kept).
    pub(crate) fn new(state: State, gen: u64) -> Word {
        if state == State::HalfOpen {
            Word(((gen & HALF_GEN_MASK) << GEN_SHIFT) | state as u64)
        } else {
            Word(((gen & GEN_MASK) << KIND_BITS) | state as u64)
        }
    }

    #[inline]
    pub(crate) fn state(self) -> State {
        State::from_bits(self.0 & KIND_MASK)
    }

    #[inline]
    pub(crate) fn is_closed(self) -> bool {
        self.0 & KIND_MASK == State::Closed as u64
    }

    #[inline]
    pub(crate) fn is_half_open(self) -> bool {
        self.0 & KIND_MASK == State::HalfOpen as u64
    }

    /// The generation; in half-open only its low 21 bits (the breaker
    /// keeps the full value).
    #[inline]
    pub(crate) fn gen(self) -> u64 {
        if self.is_half_open() {
            self.0 >> GEN_SHIFT
        } else {
            self.0 >> KIND_BITS
        }
    }

    /// The same state and generation, ignoring the probe counters.
    #[inline]
    pub(crate) fn epoch(self) -> u64 {
        if self.is_half_open() {
            self.0 & !(((1 << GEN_SHIFT) - 1) & !KIND_MASK)
        } else {
            self.0
        }
    }

    pub(crate) fn issued(self) -> u32 {
        ((self.0 >> ISSUED_SHIFT) & FIELD_MASK) as u32
    }

    pub(crate) fn successes(self) -> u32 {
        ((self.0 >> SUCC_SHIFT) & FIELD_MASK) as u32
    }

    pub(crate) fn failures(self) -> u32 {
        ((self.0 >> FAIL_SHIFT) & FIELD_MASK) as u32
    }

    pub(crate) fn slow(self) -> u32 {
        ((self.0 >> SLOW_SHIFT) & FIELD_MASK) as u32
    }

    /// One more probe admitted. Callers check `issued() < limit` first.
    pub(crate) fn with_issued_plus_one(self) -> Word {
        Word(self.0 + (1 << ISSUED_SHIFT))
    }

    /// One admitted probe given back unrecorded. Callers check `issued() > 0`.
    pub(crate) fn with_issued_minus_one(self) -> Word {
        Word(self.0 - (1 << ISSUED_SHIFT))
    }

    /// One probe's outcome counted. Callers keep every counter within
    /// `issued`, which is at most `MAX_HALF_OPEN_CALLS`.
    pub(crate) fn with_outcome(self, failed: bool, slow: bool) -> Word {
        let mut w = self.0;
        w += if failed {
            1 << FAIL_SHIFT
        } else {
            1 << SUCC_SHIFT
        };
        if slow {
            w += 1 << SLOW_SHIFT;
        }
        Word(w)
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("state", &self.state())
            .field("gen", &self.gen())
            .field("issued", &self.issued())
            .field("succ", &self.successes())
            .field("fail", &self.failures())
            .field("slow", &self.slow())
            .finish()
    }
}

/// What a permit carries: the state it was taken in and the full
/// generation, `[generation:61 | kind:3]`. Outside half-open it is the
/// state word itself, so "is this permit's generation still current" is
/// one comparison with the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ident(pub(crate) u64);

impl Ident {
    /// The permit identity of `state` at the full generation `gen`.
    pub(crate) fn new(state: State, gen: u64) -> Ident {
        Ident(((gen & GEN_MASK) << KIND_BITS) | state as u64)
    }

    /// The state (the kind bits sit where the state word keeps them).
    #[inline]
    pub(crate) fn state(self) -> State {
        Word(self.0).state()
    }

    #[inline]
    pub(crate) fn is_closed(self) -> bool {
        Word(self.0).is_closed()
    }

    #[inline]
    pub(crate) fn gen(self) -> u64 {
        self.0 >> KIND_BITS
    }

    /// The state word this identity was taken from, outside half-open.
    #[inline]
    pub(crate) fn word(self) -> Word {
        Word(self.0)
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ident")
            .field("state", &self.state())
            .field("gen", &self.gen())
            .finish()
    }
}

/// Whether generation `a` is later than `b`, allowing for wrap-around: a
/// difference of less than half the range counts as "later".
#[inline]
pub(crate) fn gen_newer(a: u64, b: u64, mask: u64) -> bool {
    let d = a.wrapping_sub(b) & mask;
    d != 0 && d <= mask >> 1
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
