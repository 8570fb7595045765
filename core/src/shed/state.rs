//! The adaptive limit's state: plain atomic words, no pointer, so the block
//! can live wherever its owner puts it.
//!
//! Layout (`#[repr(C)]`, each word a `u64`):
//!
//! | word | meaning |
//! |---|---|
//! | `inflight` (own cache line) | permits out now |
//! | `limit` (own cache line) | the limit in force, whole calls |
//! | `sampler.busy` | 0 free, 1 held: the sampler's try-lock |
//! | `sampler.window_samples` | samples in the window being gathered |
//! | `sampler.window_latency` | their latency sum, ns (`f64` bits) |
//! | `sampler.window_in_flight` | the most in flight among them (`f64` bits) |
//! | `sampler.window_dropped` | 1 if any was dropped |
//! | `sampler.estimate` | the unrounded limit (`f64` bits) |
//! | `sampler.baseline` | Gradient's baseline latency, ns (`f64` bits; 0 before the first sample) |
//! | `sampler.samples` | windows applied |
//! | `admitted`, `shed`, `drops`, `skipped_samples` | counters |
//!
//! The sampler's words are written only by the thread that holds `busy`; a
//! thread that finds it held skips its sample rather than wait.

use super::rule::LimitState;
use crate::sync::{
    AtomicU64, CachePadded,
    Ordering::{Acquire, Relaxed, Release},
};

/// See the module docs for the layout.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct AdaptiveState {
    pub(crate) inflight: CachePadded<AtomicU64>,
    pub(crate) limit: CachePadded<AtomicU64>,
    pub(crate) sampler: Sampler,
    pub(crate) admitted: AtomicU64,
    pub(crate) shed: AtomicU64,
    pub(crate) drops: AtomicU64,
    pub(crate) skipped_samples: AtomicU64,
}

/// The limit algorithm's words behind a one-word try-lock.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Sampler {
    busy: AtomicU64,
    window_samples: AtomicU64,
    window_latency: AtomicU64,
    window_in_flight: AtomicU64,
    window_dropped: AtomicU64,
    estimate: AtomicU64,
    baseline: AtomicU64,
    samples: AtomicU64,
}

impl AdaptiveState {
    /// A fresh block: nothing out, the limit at `initial`.
    pub(crate) fn new(initial: f64) -> Self {
        AdaptiveState {
            inflight: CachePadded::new(AtomicU64::new(0)),
            limit: CachePadded::new(AtomicU64::new(initial as u64)),
            sampler: Sampler {
                busy: AtomicU64::new(0),
                window_samples: AtomicU64::new(0),
                window_latency: AtomicU64::new(0f64.to_bits()),
                window_in_flight: AtomicU64::new(0f64.to_bits()),
                window_dropped: AtomicU64::new(0),
                estimate: AtomicU64::new(initial.to_bits()),
                baseline: AtomicU64::new(0f64.to_bits()),
                samples: AtomicU64::new(0),
            },
            admitted: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            skipped_samples: AtomicU64::new(0),
        }
    }
}

/// The sampler held by this thread: read its words, change them, and they
/// are published when this is dropped.
pub(crate) struct Held<'a>(&'a Sampler);

impl Sampler {
    /// The sampler if no other thread holds it now (never waits).
    pub(crate) fn try_hold(&self) -> Option<Held<'_>> {
        // Acquire: pairs with `Held::drop`'s Release, so this holder sees
        // the words the previous one wrote.
        self.busy
            .compare_exchange(0, 1, Acquire, Relaxed)
            .ok()
            .map(|_| Held(self))
    }

    /// Gradient's baseline latency (ns) as last published.
    pub(crate) fn baseline(&self) -> f64 {
        f64::from_bits(self.baseline.load(Relaxed))
    }
}

impl Held<'_> {
    /// The words, as a plain value the rule works on.
    pub(crate) fn load(&self) -> LimitState {
        let s = self.0;
        // Relaxed: the try-lock orders them (see `try_hold`).
        LimitState {
            window_samples: s.window_samples.load(Relaxed),
            window_latency: f64::from_bits(s.window_latency.load(Relaxed)),
            window_in_flight: f64::from_bits(s.window_in_flight.load(Relaxed)),
            window_dropped: s.window_dropped.load(Relaxed) != 0,
            estimate: f64::from_bits(s.estimate.load(Relaxed)),
            baseline: f64::from_bits(s.baseline.load(Relaxed)),
            samples: s.samples.load(Relaxed),
        }
    }

    /// Writes `st` back into the words.
    pub(crate) fn store(&self, st: &LimitState) {
        let s = self.0;
        s.window_samples.store(st.window_samples, Relaxed);
        s.window_latency.store(st.window_latency.to_bits(), Relaxed);
        s.window_in_flight
            .store(st.window_in_flight.to_bits(), Relaxed);
        s.window_dropped
            .store(u64::from(st.window_dropped), Relaxed);
        s.estimate.store(st.estimate.to_bits(), Relaxed);
        s.baseline.store(st.baseline.to_bits(), Relaxed);
        s.samples.store(st.samples, Relaxed);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Release: pairs with `try_hold`'s Acquire.
        self.0.busy.store(0, Release);
    }
}
