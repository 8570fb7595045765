//! Time as failwell reads it: monotonic `u64` nanoseconds behind the
//! [`Clock`] trait, so tests and models can drive time by hand.
//!
//! Every primitive is generic over its clock with [`MonotonicClock`] as the
//! default; tests use [`ManualClock`] and never sleep to make time pass.

use std::fmt;
use std::time::Duration;

use crate::sync::{Arc, AtomicU64, Ordering};

/// A monotonic source of time in nanoseconds.
///
/// Contract: `now()` never decreases (across threads too: a value read after
/// another thread's read is not smaller). Its origin is arbitrary, so only
/// differences are meaningful. `now_coarse()` is on the same timeline and may
/// lag `now()` by up to the clock's coarse resolution; it exists because the
/// time-window breaker reads time on every recorded call, and a precise read
/// costs about ten atomic operations on common hardware.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic nanoseconds since an arbitrary origin.
    fn now(&self) -> u64;

    /// A cheaper reading on the same timeline with lower resolution. The
    /// default is `now()`.
    fn now_coarse(&self) -> u64 {
        self.now()
    }

    /// How long, in real time, a thread waiting for this clock to reach a
    /// point `left` nanoseconds ahead sleeps before it reads the clock
    /// again (it may be woken sooner). The default, at most 1 ms, suits any
    /// clock, a virtual one included; [`MonotonicClock`] sleeps the whole
    /// `left`, since its time is real time.
    fn wait_slice(&self, left: u64) -> Duration {
        Duration::from_nanos(left).min(Duration::from_millis(1))
    }
}

/// Something that can make the calling thread wait: the real thread sleep,
/// or a virtual one that only moves a [`ManualClock`], so that code which
/// waits (retries, blocking rate-limit acquisition) is tested in virtual
/// time.
pub trait Sleeper: Send + Sync + 'static {
    /// Waits for `d` (at least `d` for a real sleeper).
    fn sleep(&self, d: Duration);
}

/// The operating system's monotonic clock.
///
/// On Linux and other Unix systems `now()` reads `CLOCK_MONOTONIC` (what
/// `std::time::Instant` reads) and `now_coarse()` reads
/// `CLOCK_MONOTONIC_COARSE` on Linux (about 1–4 ms resolution, no hardware
/// counter read). Elsewhere both read `Instant` against a process-wide origin.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

#[cfg(unix)]
#[allow(unsafe_code)]
fn read_clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call, and `id` is a clock id that exists on this platform (the
    // constants are only named where libc defines them).
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime failed");
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        #[cfg(unix)]
        {
            read_clock(libc::CLOCK_MONOTONIC)
        }
        #[cfg(not(unix))]
        {
            instant_nanos()
        }
    }

    #[inline]
    fn now_coarse(&self) -> u64 {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            read_clock(libc::CLOCK_MONOTONIC_COARSE)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            self.now()
        }
    }

    fn wait_slice(&self, left: u64) -> Duration {
        Duration::from_nanos(left)
    }
}

impl Sleeper for MonotonicClock {
    /// `std::thread::sleep`: blocks the OS thread, never spins.
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

#[cfg(not(unix))]
fn instant_nanos() -> u64 {
    use crate::sync::statics::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    origin.elapsed().as_nanos() as u64
}

/// A clock that moves only when told to; clones share the same time.
///
/// Starts at 1 second (so that "zero" never has a special meaning by
/// accident) unless made with [`ManualClock::starting_at`].
#[derive(Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock reading 1 s.
    pub fn new() -> Self {
        Self::starting_at(1_000_000_000)
    }

    /// A manual clock reading `nanos`.
    pub fn starting_at(nanos: u64) -> Self {
        ManualClock {
            nanos: Arc::new(AtomicU64::new(nanos)),
        }
    }

    /// Moves time forward by `d` (saturating at `u64::MAX` nanoseconds).
    pub fn advance(&self, d: Duration) {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the clock value is independent data; whoever needs to see
        // an advance synchronizes through their own primitives.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(add))
            });
    }

    /// Sets the time to `nanos` if that is not earlier than now (a clock
    /// never goes back); returns whether it moved.
    pub fn set(&self, nanos: u64) -> bool {
        self.nanos.fetch_max(nanos, Ordering::Relaxed) <= nanos
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("nanos", &self.now())
            .finish()
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }
}

impl Sleeper for ManualClock {
    /// Virtual sleep: advances this clock (and all its clones) by `d` and
    /// returns at once.
    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

/// Converts a duration to nanoseconds, saturating at `u64::MAX`.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
