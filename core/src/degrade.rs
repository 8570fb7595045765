//! Graceful degradation: fall back to a secondary source, or serve the last
//! good value (and say that it is stale, and how old) while the fresh fetch
//! fails.
//!
//! ```
//! use std::time::Duration;
//! use failwell::degrade::{fallback, Served, StaleCache};
//!
//! // The database, else the cache.
//! let user = fallback(|| Err::<&str, _>("db down"), |_err| Ok("cached user"));
//! assert_eq!(user, Ok("cached user"));
//!
//! // Pattern 3: serve stale data, up to 5 minutes old, while fetches fail.
//! let cache = StaleCache::builder().max_stale(Duration::from_secs(300)).build()?;
//! let fresh = cache.get_or_fetch("user:7", || Ok::<_, String>("Ada".to_string()));
//! assert!(matches!(fresh, Ok(Served::Fresh(_))));
//! match cache.get_or_fetch("user:7", || Err("db down".to_string())) {
//!     Ok(Served::Stale { value, age, error }) => {
//!         assert_eq!(value, "Ada");
//!         eprintln!("serving stale data (age {age:?}): {error}");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), failwell::ConfigError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use crate::clock::{nanos, Clock, MonotonicClock};
use crate::error::ConfigError;
use crate::sync::{AtomicU64, CoreMutex, Ordering::Relaxed};

/// Runs `primary`; if it fails, runs `secondary` with its error. The
/// secondary's result is returned as it is (its error, if it fails too).
pub fn fallback<T, E>(
    primary: impl FnOnce() -> Result<T, E>,
    secondary: impl FnOnce(E) -> Result<T, E>,
) -> Result<T, E> {
    primary().or_else(secondary)
}

/// What [`StaleCache::get_or_fetch`] served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served<V, E> {
    /// The fetch succeeded; this value is now cached.
    Fresh(V),
    /// The fetch failed with `error`; this is the last good value, `age`
    /// old (never more than `max_stale`).
    Stale {
        /// The last good value.
        value: V,
        /// How old it is.
        age: Duration,
        /// Why the fresh fetch failed.
        error: E,
    },
}

impl<V, E> Served<V, E> {
    /// The value, fresh or stale.
    pub fn into_value(self) -> V {
        match self {
            Served::Fresh(v) | Served::Stale { value: v, .. } => v,
        }
    }

    /// Whether the value is stale.
    pub fn is_stale(&self) -> bool {
        matches!(self, Served::Stale { .. })
    }
}

/// Builds a [`StaleCache`]. Defaults: `max_stale` 5 minutes, at most 10 000
/// entries.
#[derive(Debug, Clone)]
pub struct Builder<C: Clock = MonotonicClock> {
    clock: C,
    max_stale: Duration,
    capacity: usize,
}

/// How old a stale value may be and still be served, by default (5 minutes).
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(300);
/// Entries a stale cache keeps, by default (10 000).
pub const DEFAULT_CAPACITY: usize = 10_000;

impl Default for Builder<MonotonicClock> {
    fn default() -> Self {
        Builder::with_clock(MonotonicClock)
    }
}

impl<C: Clock> Builder<C> {
    /// A builder that ages entries on `clock`.
    pub fn with_clock(clock: C) -> Self {
        Builder {
            clock,
            max_stale: DEFAULT_MAX_STALE,
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// The oldest value served when the fetch fails (> 0).
    pub fn max_stale(mut self, d: Duration) -> Self {
        self.max_stale = d;
        self
    }

    /// The most keys kept (≥ 1); the oldest entry makes room for a new key.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// Validates and builds the cache.
    pub fn build<K, V>(self) -> Result<StaleCache<K, V, C>, ConfigError> {
        if self.max_stale.is_zero() {
            return Err(ConfigError::new("max_stale", "must be > 0"));
        }
        if self.capacity == 0 {
            return Err(ConfigError::new("capacity", "must be at least 1, got 0"));
        }
        Ok(StaleCache {
            entries: CoreMutex::new(HashMap::new()),
            max_stale: nanos(self.max_stale),
            capacity: self.capacity,
            fresh: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            clock: self.clock,
        })
    }
}

/// A plain copy of a cache's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Fresh values served.
    pub fresh: u64,
    /// Stale values served in place of a failed fetch.
    pub stale: u64,
    /// Failed fetches with no value young enough to serve.
    pub misses: u64,
    /// Keys cached now.
    pub entries: u64,
}

/// A stale-while-error cache: every fetch goes to the source; only when it
/// fails is the last good value served, if it is at most `max_stale` old.
/// Thread-safe (one lock, held only to read or store an entry, never while
/// fetching).
pub struct StaleCache<K, V, C: Clock = MonotonicClock> {
    entries: CoreMutex<HashMap<K, (V, u64)>>,
    max_stale: u64,
    capacity: usize,
    fresh: AtomicU64,
    stale: AtomicU64,
    misses: AtomicU64,
    clock: C,
}

impl StaleCache<(), (), MonotonicClock> {
    /// A builder with the defaults.
    pub fn builder() -> Builder<MonotonicClock> {
        Builder::default()
    }
}

impl<K: Hash + Eq + Clone, V: Clone, C: Clock> StaleCache<K, V, C> {
    /// Fetches `key` with `fetch`. On success the value is cached and served
    /// fresh; on failure the cached value is served stale if it is young
    /// enough, or else the error is returned.
    pub fn get_or_fetch<E>(
        &self,
        key: K,
        fetch: impl FnOnce() -> Result<V, E>,
    ) -> Result<Served<V, E>, E> {
        match fetch() {
            Ok(v) => {
                self.put_fresh(key, v.clone());
                Ok(Served::Fresh(v))
            }
            Err(error) => self.serve_stale(&key, error),
        }
    }

    /// Caches `value`, just fetched for `key`, and counts it served fresh:
    /// for callers that fetch on their own (an async runtime, the Python
    /// binding); with [`serve_stale`](Self::serve_stale) it is
    /// [`get_or_fetch`](Self::get_or_fetch) in two steps.
    pub fn put_fresh(&self, key: K, value: V) {
        let now = self.clock.now();
        let mut m = self.entries.lock();
        if m.len() >= self.capacity && !m.contains_key(&key) {
            // Make room: drop the oldest entry.
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(key, (value, now));
        drop(m);
        self.fresh.fetch_add(1, Relaxed);
    }

    /// The fetch of `key` failed with `error`: serves the cached value stale
    /// if it is at most `max_stale` old, or else returns the error (counted
    /// as a miss).
    pub fn serve_stale<E>(&self, key: &K, error: E) -> Result<Served<V, E>, E> {
        let now = self.clock.now();
        let cached = self.entries.lock().get(key).cloned();
        match cached {
            Some((value, at)) if now.saturating_sub(at) <= self.max_stale => {
                self.stale.fetch_add(1, Relaxed);
                Ok(Served::Stale {
                    value,
                    age: Duration::from_nanos(now.saturating_sub(at)),
                    error,
                })
            }
            _ => {
                self.misses.fetch_add(1, Relaxed);
                Err(error)
            }
        }
    }

    /// The counters.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            fresh: self.fresh.load(Relaxed),
            stale: self.stale.load(Relaxed),
            misses: self.misses.load(Relaxed),
            entries: self.entries.lock().len() as u64,
        }
    }
}

impl<K, V, C: Clock> fmt::Debug for StaleCache<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaleCache")
            .field("max_stale", &Duration::from_nanos(self.max_stale))
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
