//! A host region: state shared by every process on a host that opens the
//! same named shared-memory file, so that the worker processes of one
//! service (gunicorn or uWSGI workers, a pre-fork C server) enforce one
//! rate limit, one concurrency limit and one breaker verdict, and draw on
//! one retry budget, together instead of one each.
//!
//! ```no_run
//! use std::time::Duration;
//! use failwell::region::Region;
//! use failwell::rate_limit::RateLimiter;
//!
//! // Every worker runs this; the first creates /dev/shm/myservice.
//! let region = Region::open("myservice", 1 << 20)?;
//! let limiter = region.rate_limiter(
//!     "payments-api",
//!     RateLimiter::builder().rate(100, Duration::from_secs(1)),
//! )?;
//! // 100 per second for the whole host, however many workers share it.
//! if limiter.try_acquire().is_ok() { /* call */ }
//! # Ok::<(), failwell::region::RegionError>(())
//! ```
//!
//! A primitive taken from a region is the ordinary type ([`RateLimiter`],
//! [`Bulkhead`], [`CircuitBreaker`], [`RetryBudget`]),
//! running the same algorithm on the same state layout; only where the
//! state lives differs, so a call costs what an in-process call costs.
//!
//! # What a region guarantees
//!
//! - **By name, forever.** A slot is created by the first process that asks
//!   for a name and found by every later one; slots are never freed (remove
//!   the file, [`Region::unlink`], to start over — with no process using it).
//! - **One configuration per name.** The configuration a slot was created
//!   with is stored beside it. Asking for the name with another
//!   configuration is [`RegionError::ConfigMismatch`]; a process that
//!   should follow whatever is stored attaches with
//!   [`attach_rate_limiter`](Region::attach_rate_limiter) (and
//!   `attach_bulkhead`, `attach_circuit_breaker`, `attach_retry_budget`).
//!   A shared primitive's `reconfigure` is refused (a `ConfigError` naming
//!   `reconfigure`): every process uses the stored configuration.
//! - **Versioned.** The file starts with a header (magic, layout version,
//!   size, creation time); a file of another layout version is refused
//!   ([`RegionError::LayoutVersion`]), never reinterpreted.
//! - **No lock a dead process can leave held.** The hot paths are atomic
//!   operations on the slot's words. Creating or finding a slot takes a
//!   POSIX record lock on the file (`fcntl`), which the kernel releases when
//!   its holder exits, however it exits; a process killed while creating a
//!   slot leaves no half-made slot visible. A breaker's transition lock is
//!   a word naming its holder, taken over by the next process that finds
//!   the holder dead.
//! - **Nothing held by a dead process is lost.** Bulkhead permits and
//!   half-open probes are recorded per thread or process with the
//!   process's start time (so a reused pid is never taken for the dead
//!   process); a reaper gives back what a dead process held, within about
//!   half a second (see [`Region::bulkhead`], [`Region::circuit_breaker`]).
//! - **Fork.** A region opened before `fork()` is usable in the child (the
//!   mapping is inherited; the record lock is per process).
//!
//! Linux and other Unix systems with `mmap` (tested on Linux; elsewhere a
//! new file is extended, not reserved); not available on Windows. A name without `/` is a file in `/dev/shm`; a path
//! is used as given (it should be on a memory file system: a region on
//! disk works, but its pages are written back); [`Region::from_fd`] takes
//! a descriptor a parent process passed down.
//!
//! # Layout (version 1)
//!
//! ```text
//! bytes 0..256     header: magic "FWREGION", layout version, size,
//!                  creation time (Unix ns), entries, used entries,
//!                  next free byte (all u64, little-endian)
//! 256..256+128·E   E = 256 entries of 128 bytes: name (56 bytes, NUL
//!                  padded), kind, block offset, block length, six
//!                  configuration words
//! then             the slots' blocks, each 128-byte aligned: a state
//!                  block and its tail of words
//! ```

use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::fork::QuietMutex;
use crate::sync::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use crate::words::{Placed, Words};
#[cfg(doc)]
use crate::{
    breaker::CircuitBreaker, bulkhead::Bulkhead, rate_limit::RateLimiter, retry::RetryBudget,
};

mod breaker;
mod error;
mod file;
mod primitives;
mod threads;

pub use error::RegionError;
use file::{check_size, locked, map_locked, region_path};
pub(crate) use threads::{ensure_reaper, process_alive, this_process, watch_breaker, Threads};

/// The layout version this build reads and writes.
pub const LAYOUT_VERSION: u64 = 1;
/// The bindings' default size, 1 MiB: a rate limiter's slot takes 384
/// bytes plus 64 per stripe (twice the CPUs, 4 to 64), so well over a
/// hundred limiters on any machine.
pub const DEFAULT_SIZE: usize = 1 << 20;
/// The smallest region [`Region::open`] creates, in bytes.
pub const MIN_SIZE: usize = 64 << 10;
/// The longest slot name, in bytes of UTF-8.
pub const MAX_NAME: usize = 55;
/// How many slots (names) a region holds.
pub const MAX_SLOTS: usize = 256;

const MAGIC: u64 = u64::from_le_bytes(*b"FWREGION");
const HEADER_BYTES: usize = 256;
const ENTRY_BYTES: usize = 128;
const DATA_START: usize = HEADER_BYTES + MAX_SLOTS * ENTRY_BYTES;
/// Every block starts on this boundary (the padded lines' alignment).
const BLOCK_ALIGN: usize = 128;

/// A shared-memory region mapped into this process. Cheap to clone; the
/// mapping lives until the region and every primitive taken from it are
/// dropped.
#[derive(Clone)]
pub struct Region {
    map: Arc<Mapping>,
}

/// The mapping and the file behind it.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
    /// Always `Some` until dropped (closed under the local lock).
    file: Option<File>,
    path: String,
    /// This process's part of the region's thread table.
    threads: QuietMutex<threads::Local>,
    /// This mapping among the process's mappings, never reused (from 1).
    id: u64,
}

/// The next mapping's `id`.
fn next_mapping_id() -> u64 {
    static NEXT: crate::sync::statics::AtomicU64 = crate::sync::statics::AtomicU64::new(1);
    NEXT.fetch_add(1, crate::sync::statics::Ordering::Relaxed)
}

impl Mapping {
    fn file(&self) -> &File {
        self.file.as_ref().expect("open until dropped")
    }
}

// SAFETY: the mapping is shared memory accessed only through atomics (the
// header, entries and blocks are all `AtomicU64` words) or under the
// region lock; the pointer is valid for the mapping's life wherever it is
// used.
#[allow(unsafe_code)]
unsafe impl Send for Mapping {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Closing any descriptor of a file drops this process's record
        // locks on it: never while another thread holds the region lock.
        let _local = local().lock();
        // SAFETY: `base`/`len` are exactly what mmap returned; nothing
        // refers to the mapping any more (every handle holds an Arc).
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
        drop(self.file.take());
    }
}

/// Serialises this process's region-lock sections (the record lock is per
/// process, so it does not exclude two threads of one process) and the
/// closing of region files (which would release it).
fn local() -> &'static QuietMutex<()> {
    static LOCAL: std::sync::OnceLock<QuietMutex<()>> = std::sync::OnceLock::new();
    LOCAL.get_or_init(|| QuietMutex::new(()))
}

/// The whole region's header words, by index.
mod header {
    pub(super) const MAGIC: usize = 0;
    pub(super) const VERSION: usize = 1;
    pub(super) const SIZE: usize = 2;
    pub(super) const CREATED: usize = 3;
    pub(super) const ENTRIES: usize = 4;
    pub(super) const USED: usize = 5;
    pub(super) const NEXT: usize = 6;
}

/// Words of an entry, by index.
mod entry {
    pub(super) const NAME_WORDS: usize = 7;
    pub(super) const KIND: usize = 7;
    pub(super) const OFFSET: usize = 8;
    pub(super) const LEN: usize = 9;
    pub(super) const CONFIG: usize = 10;
}

/// Configuration words stored per slot.
const CONFIG_WORDS: usize = 6;

/// The kinds of slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    RateLimiter = 1,
    RetryBudget = 2,
    /// The region's thread table (one, under an internal name).
    Threads = 3,
    Bulkhead = 4,
    Breaker = 5,
}

impl Kind {
    fn name(k: u64) -> &'static str {
        match k {
            1 => "rate limiter",
            2 => "retry budget",
            3 => "thread table",
            4 => "bulkhead",
            5 => "circuit breaker",
            _ => "primitive of an unknown kind",
        }
    }
}

impl Region {
    /// Creates or attaches the region `name_or_path`: a name without `/`
    /// is the file `/dev/shm/<name>`, anything else a path. A new region
    /// is `size` bytes (at least [`MIN_SIZE`], rounded up to whole pages)
    /// reserved at once, so a full `/dev/shm` is an error here rather than
    /// a crash later; an existing one keeps its size and `size` is only
    /// checked. The file is created with mode 0600 (only this user's
    /// processes can open it).
    pub fn open(name_or_path: impl AsRef<Path>, size: usize) -> Result<Region, RegionError> {
        let path = region_path(name_or_path.as_ref())?;
        let shown = path.display().to_string();
        check_size(size)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| RegionError::Io {
                op: "open",
                path: shown.clone(),
                source,
            })?;
        Self::map(file, size, shown)
    }

    /// Maps the region in a file descriptor this process inherited or was
    /// passed (a pre-fork master's), creating it (`size` bytes) if the file
    /// is empty. The descriptor is the region's from now on.
    pub fn from_fd(fd: OwnedFd, size: usize) -> Result<Region, RegionError> {
        check_size(size)?;
        let shown = format!("fd {}", fd.as_raw_fd());
        Self::map(File::from(fd), size, shown)
    }

    /// Removes the region file `name_or_path` (as [`open`](Self::open)
    /// names it). Processes that have it mapped keep using it; the next
    /// `open` creates a new one.
    pub fn unlink(name_or_path: impl AsRef<Path>) -> Result<(), RegionError> {
        let path = region_path(name_or_path.as_ref())?;
        std::fs::remove_file(&path).map_err(|source| RegionError::Io {
            op: "unlink",
            path: path.display().to_string(),
            source,
        })
    }

    fn map(file: File, size: usize, path: String) -> Result<Region, RegionError> {
        // Registers the fork handlers, so that the hot paths of the
        // primitives in it read the fork generation with a plain load.
        crate::fork::generation();
        let (base, len) =
            locked(&file, || map_locked(&file, size, &path)).map_err(|source| {
                RegionError::Io {
                    op: "lock",
                    path: path.clone(),
                    source,
                }
            })??;
        Ok(Region {
            map: Arc::new(Mapping {
                base,
                len,
                file: Some(file),
                path,
                threads: QuietMutex::new(threads::Local::default()),
                id: next_mapping_id(),
            }),
        })
    }

    /// The region's file (`fd N` for one from [`from_fd`](Self::from_fd)).
    pub fn path(&self) -> &str {
        &self.map.path
    }

    /// The region's size in bytes.
    pub fn size(&self) -> usize {
        self.map.len
    }

    /// When the region was created, in nanoseconds since the Unix epoch.
    pub fn created_unix_nanos(&self) -> u64 {
        self.word(header::CREATED * 8).load(Relaxed)
    }

    /// The names of the region's slots, in creation order.
    pub fn names(&self) -> Vec<String> {
        let used = self.word(header::USED * 8).load(Acquire) as usize;
        (0..used.min(MAX_SLOTS))
            .filter(|&i| self.entry_word(i, entry::KIND).load(Relaxed) != Kind::Threads as u64)
            .map(|i| self.entry_name(i))
            .collect()
    }

    /// The `T` at byte `offset` of the mapping, placed there for a handle
    /// (which keeps the mapping alive).
    ///
    /// # Safety
    /// A slot's block holds an initialised `T` at `offset`, aligned for it
    /// and inside the mapping, that every process uses atomically only.
    #[allow(unsafe_code)]
    unsafe fn placed<T>(&self, offset: usize) -> Placed<T> {
        debug_assert!(offset + std::mem::size_of::<T>() <= self.map.len);
        // SAFETY: the caller's promise; the keeper is this mapping.
        unsafe {
            Placed::shared(
                NonNull::new_unchecked(self.map.base.as_ptr().add(offset)).cast::<T>(),
                self.map.clone(),
            )
        }
    }

    /// The `len` words at byte `offset` of the mapping, for a handle.
    ///
    /// # Safety
    /// A slot's block holds `len` words there, 64-byte aligned, inside the
    /// mapping, that every process uses atomically only.
    #[allow(unsafe_code)]
    unsafe fn words(&self, offset: usize, len: usize) -> Words {
        debug_assert!(offset + len * 8 <= self.map.len);
        // SAFETY: the caller's promise; the keeper is this mapping.
        unsafe {
            Words::shared(
                NonNull::new_unchecked(self.map.base.as_ptr().add(offset)).cast::<AtomicU64>(),
                len,
                self.map.clone(),
            )
        }
    }

    /// The word at byte `offset` of the mapping.
    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.map.len);
        // SAFETY: in bounds and aligned (checked), inside the mapping this
        // region keeps alive; every word of a region is used atomically.
        #[allow(unsafe_code)]
        unsafe {
            &*self.map.base.as_ptr().add(offset).cast::<AtomicU64>()
        }
    }

    fn entry_word(&self, i: usize, w: usize) -> &AtomicU64 {
        self.word(HEADER_BYTES + i * ENTRY_BYTES + w * 8)
    }

    fn entry_name(&self, i: usize) -> String {
        let mut bytes = Vec::with_capacity(entry::NAME_WORDS * 8);
        for w in 0..entry::NAME_WORDS {
            bytes.extend_from_slice(&self.entry_word(i, w).load(Relaxed).to_le_bytes());
        }
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }

    /// Finds slot `name` of `kind`, or creates it with `config` and a
    /// block sized and compared by `rules`, made by `init` (given the
    /// block's address, zeroed memory, and the configuration).
    /// `config: None` attaches only: it creates nothing and adopts the
    /// stored configuration. Returns the block's offset and its stored
    /// configuration.
    fn slot(
        &self,
        name: &str,
        kind: Kind,
        config: Option<[u64; CONFIG_WORDS]>,
        rules: SlotRules<'_>,
        init: impl FnOnce(NonNull<u8>, &[u64; CONFIG_WORDS]),
    ) -> Result<(usize, [u64; CONFIG_WORDS]), RegionError> {
        let key = if kind == Kind::Threads {
            // An internal name: starts with NUL, which no user's name has.
            let mut key = [0u64; entry::NAME_WORDS];
            key[0] = u64::from_le_bytes(*b"\0threads");
            key
        } else {
            encode_name(name)?
        };
        locked(self.map.file(), || {
            self.slot_locked(name, &key, kind, config, rules, init)
        })
        .map_err(|source| RegionError::Io {
            op: "lock",
            path: self.map.path.clone(),
            source,
        })?
    }

    fn slot_locked(
        &self,
        name: &str,
        key: &[u64; entry::NAME_WORDS],
        kind: Kind,
        config: Option<[u64; CONFIG_WORDS]>,
        rules: SlotRules<'_>,
        init: impl FnOnce(NonNull<u8>, &[u64; CONFIG_WORDS]),
    ) -> Result<(usize, [u64; CONFIG_WORDS]), RegionError> {
        let used = self.word(header::USED * 8).load(Relaxed) as usize;
        for i in 0..used.min(MAX_SLOTS) {
            if (0..entry::NAME_WORDS).any(|w| self.entry_word(i, w).load(Relaxed) != key[w]) {
                continue;
            }
            let stored_kind = self.entry_word(i, entry::KIND).load(Relaxed);
            if stored_kind != kind as u64 {
                return Err(RegionError::KindMismatch {
                    name: name.to_owned(),
                    stored: Kind::name(stored_kind),
                    asked: Kind::name(kind as u64),
                });
            }
            let stored: [u64; CONFIG_WORDS] =
                std::array::from_fn(|c| self.entry_word(i, entry::CONFIG + c).load(Relaxed));
            if let Some(asked) = config {
                if !(rules.same)(&stored, &asked) {
                    return Err(RegionError::ConfigMismatch {
                        name: name.to_owned(),
                        stored: (rules.describe)(&stored),
                        asked: (rules.describe)(&asked),
                    });
                }
            }
            let offset = self.entry_word(i, entry::OFFSET).load(Relaxed) as usize;
            let len = self.entry_word(i, entry::LEN).load(Relaxed) as usize;
            if len != (rules.bytes)(&stored)
                || offset % BLOCK_ALIGN != 0
                || offset + len > self.map.len
            {
                return Err(RegionError::NotARegion {
                    path: self.map.path.clone(),
                });
            }
            return Ok((offset, stored));
        }
        let Some(config) = config else {
            return Err(RegionError::NotFound {
                name: name.to_owned(),
            });
        };
        let bytes = (rules.bytes)(&config);
        if used >= MAX_SLOTS {
            return Err(RegionError::Full {
                problem: format!("all {MAX_SLOTS} slots are taken"),
            });
        }
        let next = self.word(header::NEXT * 8).load(Relaxed) as usize;
        let offset = next.div_ceil(BLOCK_ALIGN) * BLOCK_ALIGN;
        if offset + bytes > self.map.len {
            return Err(RegionError::Full {
                problem: format!(
                    "slot {name:?} needs {bytes} bytes, {} of the region's {} are left",
                    self.map.len.saturating_sub(offset),
                    self.map.len
                ),
            });
        }
        // SAFETY: `offset + bytes` is inside the mapping (checked above).
        #[allow(unsafe_code)]
        let block = unsafe { NonNull::new_unchecked(self.map.base.as_ptr().add(offset)) };
        // The block is past `next`: no slot uses it, and a creator that
        // died after writing part of it left no entry, so it is reused
        // from zero.
        for w in (0..bytes).step_by(8) {
            self.word(offset + w).store(0, Relaxed);
        }
        init(block, &config);
        for (w, k) in key.iter().enumerate() {
            self.entry_word(used, w).store(*k, Relaxed);
        }
        self.entry_word(used, entry::KIND)
            .store(kind as u64, Relaxed);
        self.entry_word(used, entry::OFFSET)
            .store(offset as u64, Relaxed);
        self.entry_word(used, entry::LEN)
            .store(bytes as u64, Relaxed);
        for (c, v) in config.iter().enumerate() {
            self.entry_word(used, entry::CONFIG + c).store(*v, Relaxed);
        }
        self.word(header::NEXT * 8)
            .store((offset + bytes) as u64, Relaxed);
        // Release: the entry is complete before it is counted (pairs with
        // the Acquire load in `names`; slot lookups hold the lock).
        self.word(header::USED * 8).store(used as u64 + 1, Release);
        Ok((offset, config))
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("path", &self.map.path)
            .field("size", &self.map.len)
            .finish()
    }
}

/// How a kind of slot compares, shows and sizes its configuration words.
struct SlotRules<'a> {
    /// Whether a stored configuration is the one asked for.
    same: &'a dyn Fn(&[u64; CONFIG_WORDS], &[u64; CONFIG_WORDS]) -> bool,
    /// A configuration, for an error message.
    describe: &'a dyn Fn(&[u64; CONFIG_WORDS]) -> String,
    /// The block's size in bytes under a configuration.
    bytes: &'a dyn Fn(&[u64; CONFIG_WORDS]) -> usize,
}

/// A slot name as the entry's name words (NUL padded).
fn encode_name(name: &str) -> Result<[u64; entry::NAME_WORDS], RegionError> {
    let bad = |problem: String| RegionError::Argument {
        argument: "name",
        problem,
    };
    if name.is_empty() {
        return Err(bad("must not be empty".into()));
    }
    if name.len() > MAX_NAME {
        return Err(bad(format!(
            "{name:?} is {} bytes, at most {MAX_NAME}",
            name.len()
        )));
    }
    if name.as_bytes().contains(&0) {
        return Err(bad("must not contain a NUL byte".into()));
    }
    let mut bytes = [0u8; entry::NAME_WORDS * 8];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    Ok(std::array::from_fn(|w| {
        u64::from_le_bytes(bytes[w * 8..w * 8 + 8].try_into().expect("8 bytes"))
    }))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bulkhead_tests;

#[cfg(all(test, not(failwell_loom)))]
mod breaker_tests;
