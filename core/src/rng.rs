//! Small, seeded randomness for jitter and chaos: SplitMix64 over one
//! atomic counter, so a shared generator is lock-free and, for a given seed
//! and order of calls, reproducible.

use crate::sync::{statics, AtomicU64, Ordering::Relaxed};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective mix of `x`.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A seed that differs between calls and processes (time and a counter).
pub(crate) fn fresh_seed() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: statics::AtomicU64 = statics::AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let c = COUNTER.fetch_add(1, statics::Ordering::Relaxed);
    mix(t ^ mix(c.wrapping_add(std::process::id() as u64)))
}

/// A lock-free generator shared by threads.
#[derive(Debug)]
pub(crate) struct SharedRng {
    state: AtomicU64,
}

impl SharedRng {
    pub(crate) fn new(seed: u64) -> Self {
        SharedRng {
            state: AtomicU64::new(seed),
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&self) -> u64 {
        // Relaxed: each call needs only a distinct counter value.
        mix(self.state.fetch_add(GOLDEN, Relaxed).wrapping_add(GOLDEN))
    }

    /// A uniform float in `[0, 1)`.
    #[inline]
    pub(crate) fn next_f64(&self) -> f64 {
        unit_f64(self.next_u64())
    }
}

/// Maps 64 random bits to a uniform float in `[0, 1)`.
#[inline]
pub(crate) fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
