//! Where a primitive's state lives: its fixed block ([`Placed`]) and the
//! run of words the configuration sizes ([`Words`]), on the heap or in a
//! shared region.
//!
//! A primitive's state is its fixed `#[repr(C)]` block plus, where the
//! configuration sizes something (window slots, per-thread stripes), one
//! run of atomic words starting on a cache line, laid out by the primitive
//! (documented beside its block). Both are plain words, no pointer inside:
//! the handle keeps where they live and views them per call, so the same
//! algorithm runs on words on the heap or in memory mapped by several
//! processes.

use std::ptr::NonNull;

use crate::sync::AtomicU64;

/// Words per 64-byte cache line.
pub(crate) const LINE_WORDS: usize = 8;

/// One cache line of words.
#[repr(C, align(64))]
struct Line([AtomicU64; LINE_WORDS]);

// A run of lines is viewed as one run of words: a line must be exactly its
// words, with no padding (true whenever a word's size is a multiple of 8
// bytes, as for std's atomics and loom's).
const _: () = assert!(std::mem::size_of::<Line>() == LINE_WORDS * std::mem::size_of::<AtomicU64>());

/// What keeps memory that is not the handle's own alive: a shared region's
/// mapping, held by every handle placed in it.
pub(crate) type Keep = std::sync::Arc<dyn Send + Sync>;

/// A run of atomic words starting on a cache line, its length whole lines:
/// owned on the heap, or in memory another owner keeps mapped.
pub(crate) struct Words {
    ptr: NonNull<AtomicU64>,
    /// Words (a multiple of `LINE_WORDS`).
    len: usize,
    /// `len / LINE_WORDS`, kept so that a line costs no division.
    lines: usize,
    /// `None`: `ptr` is a `Box<[Line]>` of `lines` lines this
    /// value owns (from `Box::into_raw`).
    keep: Option<Keep>,
}

// SAFETY: `Words` is a shared view of atomics (like `&[AtomicU64]`, which
// is Send and Sync) plus, when owned, the box they live in; the keeper is
// Send + Sync itself.
#[allow(unsafe_code)]
unsafe impl Send for Words {}
// SAFETY: as above: every access through `get` is to atomics.
#[allow(unsafe_code)]
unsafe impl Sync for Words {}

impl Words {
    /// At least `len` words on the heap (whole lines), word `i` set to
    /// `init(i)`.
    pub(crate) fn new(len: usize, init: impl Fn(usize) -> u64) -> Self {
        let lines: Box<[Line]> = (0..len.div_ceil(LINE_WORDS))
            .map(|l| {
                Line(std::array::from_fn(|w| {
                    AtomicU64::new(init(l * LINE_WORDS + w))
                }))
            })
            .collect();
        let len = lines.len() * LINE_WORDS;
        let ptr = NonNull::from(Box::leak(lines)).cast::<AtomicU64>();
        Words {
            ptr,
            len,
            lines: len / LINE_WORDS,
            keep: None,
        }
    }

    /// At least `len` words on the heap, all zero.
    pub(crate) fn zeroed(len: usize) -> Self {
        Self::new(len, |_| 0)
    }

    /// `len` words (a multiple of `LINE_WORDS`) at `ptr`, in memory `keep`
    /// keeps mapped.
    ///
    /// # Safety
    /// `ptr` is 64-byte aligned and points to `len` initialised words that
    /// stay valid while `keep` lives, and that every user (in any process)
    /// accesses only atomically.
    #[cfg(not(failwell_loom))]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn shared(ptr: NonNull<AtomicU64>, len: usize, keep: Keep) -> Self {
        debug_assert!(len % LINE_WORDS == 0 && ptr.as_ptr() as usize % 64 == 0);
        Words {
            ptr,
            len,
            lines: len / LINE_WORDS,
            keep: Some(keep),
        }
    }

    /// Line `i`'s words.
    #[inline(always)]
    pub(crate) fn line(&self, i: usize) -> &[AtomicU64; LINE_WORDS] {
        assert!(i < self.lines, "line {i} of {}", self.lines);
        // SAFETY: in bounds (just checked); the words are initialised,
        // 64-byte aligned and live as long as `self` (the box it owns or
        // the mapping `keep` holds), and a line is `LINE_WORDS` of them.
        #[allow(unsafe_code)]
        unsafe {
            &*self
                .ptr
                .as_ptr()
                .add(i * LINE_WORDS)
                .cast::<[AtomicU64; LINE_WORDS]>()
        }
    }

    /// The words.
    #[inline(always)]
    pub(crate) fn get(&self) -> &[AtomicU64] {
        // SAFETY: `len` initialised words at `ptr`, alive while `self` is
        // (see `line`).
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr(), self.len)
        }
    }
}

impl Drop for Words {
    fn drop(&mut self) {
        if self.keep.is_none() {
            let lines =
                std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr().cast::<Line>(), self.lines);
            // SAFETY: an owned run is the box `new` leaked, of exactly
            // these lines; it is freed once, here.
            #[allow(unsafe_code)]
            drop(unsafe { Box::from_raw(lines) });
        }
    }
}

impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Words")
            .field("len", &self.len)
            .field("shared", &self.keep.is_some())
            .finish()
    }
}

/// A primitive's fixed state block: owned on the heap, or in memory
/// another owner keeps mapped. Derefs to the block.
pub(crate) struct Placed<T> {
    ptr: NonNull<T>,
    /// `None`: `ptr` is a `Box<T>` this value owns (from `Box::into_raw`).
    keep: Option<Keep>,
}

// SAFETY: a `Placed<T>` is a `Box<T>` or a shared reference to a `T` kept
// alive by a Send + Sync keeper; both are Send when `T: Send + Sync` (the
// blocks are atomics).
#[allow(unsafe_code)]
unsafe impl<T: Send + Sync> Send for Placed<T> {}
// SAFETY: as above; only `&T` is ever handed out.
#[allow(unsafe_code)]
unsafe impl<T: Send + Sync> Sync for Placed<T> {}

impl<T> Placed<T> {
    /// `block` on the heap.
    pub(crate) fn heap(block: T) -> Self {
        Placed {
            ptr: NonNull::from(Box::leak(Box::new(block))),
            keep: None,
        }
    }

    /// The block at `ptr`, in memory `keep` keeps mapped.
    ///
    /// # Safety
    /// `ptr` is aligned for `T` and points to an initialised `T` that
    /// stays valid while `keep` lives, made of atomics every user (in any
    /// process) accesses only atomically.
    #[cfg(not(failwell_loom))]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn shared(ptr: NonNull<T>, keep: Keep) -> Self {
        Placed {
            ptr,
            keep: Some(keep),
        }
    }
}

impl<T> std::ops::Deref for Placed<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: an initialised `T`, alive while `self` is (its box or
        // its keeper's mapping).
        #[allow(unsafe_code)]
        unsafe {
            self.ptr.as_ref()
        }
    }
}

impl<T> Drop for Placed<T> {
    fn drop(&mut self) {
        if self.keep.is_none() {
            // SAFETY: an owned block is the box `heap` leaked; freed once.
            #[allow(unsafe_code)]
            drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Placed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(all(test, not(failwell_loom)))]
mod tests {
    use super::*;
    use crate::sync::Ordering::Relaxed;

    #[test]
    fn words_start_on_a_line_and_cover_whole_lines() {
        for len in [0, 1, 7, 8, 9, 100] {
            let w = Words::new(len, |i| i as u64 * 3);
            let words = w.get();
            assert_eq!(words.len(), len.div_ceil(LINE_WORDS) * LINE_WORDS);
            assert_eq!(words.as_ptr() as usize % 64, 0);
            for (i, word) in words.iter().enumerate() {
                assert_eq!(word.load(Relaxed), i as u64 * 3);
            }
            for l in 0..words.len() / LINE_WORDS {
                assert_eq!(w.line(l)[1].load(Relaxed), (l * LINE_WORDS + 1) as u64 * 3);
            }
        }
    }

    #[test]
    #[should_panic(expected = "line 2 of 2")]
    fn a_line_past_the_end_is_refused() {
        Words::zeroed(16).line(2);
    }

    #[test]
    fn shared_words_and_blocks_see_the_keepers_memory() {
        let backing: std::sync::Arc<Vec<Line>> = std::sync::Arc::new(
            (0..2)
                .map(|_| Line(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        );
        let ptr = NonNull::from(&backing[0]).cast::<AtomicU64>();
        // SAFETY: two lines of the vector `backing` holds, alive while
        // the keeper (a clone of it) is.
        #[allow(unsafe_code)]
        let (a, b) = unsafe {
            (
                Words::shared(ptr, 16, backing.clone()),
                Placed::shared(ptr, backing.clone()),
            )
        };
        a.get()[0].fetch_add(5, Relaxed);
        assert_eq!(b.load(Relaxed), 5, "the same word");
        assert_eq!(backing[0].0[0].load(Relaxed), 5);
        drop((a, b)); // frees nothing of the keeper's
        assert_eq!(std::sync::Arc::strong_count(&backing), 1);
        let owned = Placed::heap(AtomicU64::new(7));
        assert_eq!(owned.load(Relaxed), 7);
    }
}
