//! A host region: state shared by every process on a host that opens the
//! same named shared-memory file, so that the worker processes of one
//! service (gunicorn or uWSGI workers, a pre-fork C server) enforce one
//! rate limit and draw on one retry budget together instead of one each.
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
//! [`RetryBudget`]),
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
//!   [`attach_rate_limiter`](Region::attach_rate_limiter). A shared
//!   limiter's `reconfigure` is refused (a `ConfigError` naming
//!   `reconfigure`): every process uses the stored configuration.
//! - **Versioned.** The file starts with a header (magic, layout version,
//!   size, creation time); a file of another layout version is refused
//!   ([`RegionError::LayoutVersion`]), never reinterpreted.
//! - **No lock a dead process can leave held.** The hot paths are atomic
//!   operations on the slot's words. Creating or finding a slot takes a
//!   POSIX record lock on the file (`fcntl`), which the kernel releases when
//!   its holder exits, however it exits; a process killed while creating a
//!   slot leaves no half-made slot visible.
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

use std::ffi::CString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::clock::MonotonicClock;
use crate::counter::{StripedCounter, Stripes};
use crate::error::ConfigError;
use crate::fork::QuietMutex;
use crate::rate_limit::{self, LimiterState, RateLimiter};
use crate::retry::{BudgetState, RetryBudget};
use crate::sync::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use crate::words::{Placed, Words, LINE_WORDS};

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

/// Why a region or a slot in it could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegionError {
    /// A system call failed: `op` on `path`.
    Io {
        /// What was being done (`open`, `mmap`, ...).
        op: &'static str,
        /// The region's file.
        path: String,
        /// The system's error.
        source: io::Error,
    },
    /// The file is not a failwell region (no magic in its header).
    NotARegion {
        /// The file.
        path: String,
    },
    /// The region was written by a build with another layout version.
    LayoutVersion {
        /// The file.
        path: String,
        /// Its layout version.
        found: u64,
        /// This build's, [`LAYOUT_VERSION`].
        expected: u64,
    },
    /// No room for a new slot: every entry is taken, or the blocks fill
    /// the file.
    Full {
        /// Which: entries or bytes, with the figures.
        problem: String,
    },
    /// A slot name, region name or size the caller passed is not valid.
    Argument {
        /// The argument (`name`, `size`).
        argument: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The name is a slot of another kind of primitive.
    KindMismatch {
        /// The slot.
        name: String,
        /// What it holds.
        stored: &'static str,
        /// What was asked for.
        asked: &'static str,
    },
    /// The name exists with another configuration.
    ConfigMismatch {
        /// The slot.
        name: String,
        /// The stored configuration, described.
        stored: String,
        /// The configuration asked for, described.
        asked: String,
    },
    /// No slot of that name (attaching, which creates nothing).
    NotFound {
        /// The slot.
        name: String,
    },
    /// The configuration asked for is not valid.
    Config(ConfigError),
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionError::Io { op, path, source } => write!(f, "region {path}: {op}: {source}"),
            RegionError::NotARegion { path } => {
                write!(f, "{path} is not a failwell region (no region header)")
            }
            RegionError::LayoutVersion {
                path,
                found,
                expected,
            } => write!(
                f,
                "region {path} has layout version {found}, this build reads {expected}; \
                 stop the processes using it and remove it, or use a matching build"
            ),
            RegionError::Full { problem } => write!(f, "region full: {problem}"),
            RegionError::Argument { argument, problem } => write!(f, "{argument}: {problem}"),
            RegionError::KindMismatch {
                name,
                stored,
                asked,
            } => write!(f, "slot {name:?} holds a {stored}, not a {asked}"),
            RegionError::ConfigMismatch {
                name,
                stored,
                asked,
            } => write!(
                f,
                "slot {name:?} exists with configuration {stored}, not {asked}; \
                 attach to adopt the stored one"
            ),
            RegionError::NotFound { name } => write!(f, "no slot {name:?} in the region"),
            RegionError::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RegionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegionError::Io { source, .. } => Some(source),
            RegionError::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for RegionError {
    fn from(e: ConfigError) -> Self {
        RegionError::Config(e)
    }
}

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
}

impl Kind {
    fn name(k: u64) -> &'static str {
        match k {
            1 => "rate limiter",
            2 => "retry budget",
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
        let key = encode_name(name)?;
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

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("path", &self.map.path)
            .field("size", &self.map.len)
            .finish()
    }
}

/// Under the region lock: reserves a new file or checks an existing one's
/// size, maps it, and writes or checks the header. The mapping's address
/// and length; on an error nothing stays mapped (and the file is the
/// caller's to close, after the lock).
fn map_locked(file: &File, size: usize, path: &str) -> Result<(NonNull<u8>, usize), RegionError> {
    let io = |op: &'static str, source: io::Error| RegionError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    let not_a_region = || RegionError::NotARegion {
        path: path.to_owned(),
    };
    let found = file.metadata().map_err(|e| io("stat", e))?.len();
    let len = if found == 0 {
        let size = round_to_pages(size);
        reserve(file, size).map_err(|e| io("reserve", e))?;
        size
    } else if found < DATA_START as u64 {
        return Err(not_a_region());
    } else {
        usize::try_from(found).map_err(|_| not_a_region())?
    };
    // SAFETY: a shared read-write mapping of the whole file, which is `len`
    // bytes long (reserved above or found so); no address hint.
    #[allow(unsafe_code)]
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io("mmap", io::Error::last_os_error()));
    }
    let base = NonNull::new(base.cast::<u8>()).expect("mmap returned a mapping");
    let header = Header { base, len };
    let checked = header.init_or_check(path);
    if checked.is_err() {
        // SAFETY: exactly the mapping made above, referred to by nothing.
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(base.as_ptr().cast(), len);
        }
    }
    checked.map(|()| (base, len))
}

/// Gives a new region file its `size` bytes. On Linux the pages are
/// reserved (`posix_fallocate`), so a full `/dev/shm` is an error now, not
/// a SIGBUS at the first touch; elsewhere the file is only extended.
fn reserve(file: &File, size: usize) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a plain system call on a descriptor the caller owns.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size as libc::off_t) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        file.set_len(size as u64)
    }
}

/// The header words of a mapping being opened.
struct Header {
    base: NonNull<u8>,
    len: usize,
}

impl Header {
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!((i + 1) * 8 <= HEADER_BYTES && HEADER_BYTES <= self.len);
        // SAFETY: inside the header of a live mapping (checked), aligned
        // (the mapping is page aligned); used atomically by every process.
        #[allow(unsafe_code)]
        unsafe {
            &*self.base.as_ptr().add(i * 8).cast::<AtomicU64>()
        }
    }

    /// Writes a new header, or checks an existing one.
    fn init_or_check(&self, path: &str) -> Result<(), RegionError> {
        let h = |i| self.word(i);
        let magic = h(header::MAGIC).load(Acquire);
        if magic == 0 && h(header::VERSION).load(Relaxed) == 0 {
            // New, or left unfinished by a creator that died before the
            // magic (we hold the lock, so no one else is making it).
            let created = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            h(header::VERSION).store(LAYOUT_VERSION, Relaxed);
            h(header::SIZE).store(self.len as u64, Relaxed);
            h(header::CREATED).store(created, Relaxed);
            h(header::ENTRIES).store(MAX_SLOTS as u64, Relaxed);
            h(header::USED).store(0, Relaxed);
            h(header::NEXT).store(DATA_START as u64, Relaxed);
            // Release: the magic last, after every other header word
            // (pairs with the Acquire load above in the next opener; the
            // record lock orders them too).
            h(header::MAGIC).store(MAGIC, Release);
            return Ok(());
        }
        if magic != MAGIC {
            return Err(RegionError::NotARegion {
                path: path.to_owned(),
            });
        }
        let found = h(header::VERSION).load(Relaxed);
        if found != LAYOUT_VERSION {
            return Err(RegionError::LayoutVersion {
                path: path.to_owned(),
                found,
                expected: LAYOUT_VERSION,
            });
        }
        if h(header::SIZE).load(Relaxed) != self.len as u64
            || h(header::ENTRIES).load(Relaxed) != MAX_SLOTS as u64
        {
            return Err(RegionError::NotARegion {
                path: path.to_owned(),
            });
        }
        Ok(())
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

/// Runs `f` under the region lock: this process's [`local`] section, then
/// a POSIX write lock on the file's first byte, which the kernel drops
/// when the process exits, however it exits. Held only to open a region
/// or to find or make a slot.
fn locked<R>(file: &File, f: impl FnOnce() -> R) -> io::Result<R> {
    let _local = local().lock();
    set_lock(file, libc::F_WRLCK as libc::c_short)?;
    let r = f();
    set_lock(file, libc::F_UNLCK as libc::c_short)?;
    Ok(r)
}

fn set_lock(file: &File, kind: libc::c_short) -> io::Result<()> {
    // SAFETY: a zeroed `flock` is a valid value of the plain C struct.
    #[allow(unsafe_code)]
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 1;
    loop {
        // SAFETY: `fl` is a valid flock for the duration of the call, on
        // a descriptor this process owns.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &fl) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn region_path(p: &Path) -> Result<PathBuf, RegionError> {
    let s = p.as_os_str();
    if s.is_empty() {
        return Err(RegionError::Argument {
            argument: "name",
            problem: "must not be empty".into(),
        });
    }
    if CString::new(s.as_encoded_bytes()).is_err() {
        return Err(RegionError::Argument {
            argument: "name",
            problem: "must not contain a NUL byte".into(),
        });
    }
    if p.components().count() == 1 && !s.as_encoded_bytes().contains(&b'/') {
        if s == "." || s == ".." {
            return Err(RegionError::Argument {
                argument: "name",
                problem: format!("{s:?} is not a file name"),
            });
        }
        return Ok(Path::new("/dev/shm").join(p));
    }
    Ok(p.to_path_buf())
}

fn check_size(size: usize) -> Result<(), RegionError> {
    if size < MIN_SIZE {
        return Err(RegionError::Argument {
            argument: "size",
            problem: format!("must be at least {MIN_SIZE} bytes, got {size}"),
        });
    }
    if size > isize::MAX as usize / 2 {
        return Err(RegionError::Argument {
            argument: "size",
            problem: format!("{size} bytes is more than this system can map"),
        });
    }
    Ok(())
}

fn round_to_pages(size: usize) -> usize {
    // SAFETY: a plain query.
    #[allow(unsafe_code)]
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    size.div_ceil(page) * page
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
