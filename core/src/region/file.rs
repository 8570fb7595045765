//! The region's file: opening, reserving, mapping, the header, the
//! record lock.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use super::{
    header, local, RegionError, DATA_START, HEADER_BYTES, LAYOUT_VERSION, MAGIC, MAX_SLOTS,
    MIN_SIZE,
};
use crate::sync::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

/// Under the region lock: reserves a new file or checks an existing one's
/// size, maps it, and writes or checks the header. The mapping's address
/// and length; on an error nothing stays mapped (and the file is the
/// caller's to close, after the lock).
pub(super) fn map_locked(
    file: &File,
    size: usize,
    path: &str,
) -> Result<(NonNull<u8>, usize), RegionError> {
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

/// Runs `f` under the region lock: this process's [`local`] section, then
/// a POSIX write lock on the file's first byte, which the kernel drops
/// when the process exits, however it exits. Held only to open a region
/// or to find or make a slot.
pub(super) fn locked<R>(file: &File, f: impl FnOnce() -> R) -> io::Result<R> {
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

pub(super) fn region_path(p: &Path) -> Result<PathBuf, RegionError> {
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

pub(super) fn check_size(size: usize) -> Result<(), RegionError> {
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

pub(super) fn round_to_pages(size: usize) -> usize {
    // SAFETY: a plain query.
    #[allow(unsafe_code)]
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    size.div_ceil(page) * page
}
