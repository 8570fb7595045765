//! The variable-size part of a state block: a run of atomic words whose
//! length the configuration fixes at build (window slots, per-thread
//! stripes), starting on a cache line.
//!
//! A primitive's state is its fixed `#[repr(C)]` block plus, where the
//! configuration sizes something, one such run laid out by the primitive
//! (documented beside its block). Both are plain words, no pointer inside:
//! the handle keeps where they live and views them per call
//! (`(&Block, &[AtomicU64])`), so the same algorithm runs on words on the
//! heap (here) or anywhere else a block can be placed.

use crate::sync::AtomicU64;

/// Words per 64-byte cache line.
pub(crate) const LINE_WORDS: usize = 8;

/// One cache line of words.
#[repr(C, align(64))]
struct Line([AtomicU64; LINE_WORDS]);

// `Words::get` views the lines as one run of words: a line must be exactly
// its words, with no padding (true whenever a word's size is a multiple of
// 8 bytes, as for std's atomics and loom's).
const _: () = assert!(std::mem::size_of::<Line>() == LINE_WORDS * std::mem::size_of::<AtomicU64>());

/// An owned run of atomic words on the heap, starting on a cache line,
/// its length rounded up to whole lines.
pub(crate) struct Words {
    lines: Box<[Line]>,
    /// `lines.len() * LINE_WORDS`, kept so a view costs two loads.
    len: usize,
}

impl Words {
    /// At least `len` words (whole lines), word `i` set to `init(i)`.
    pub(crate) fn new(len: usize, init: impl Fn(usize) -> u64) -> Self {
        let lines = len.div_ceil(LINE_WORDS);
        Words {
            lines: (0..lines)
                .map(|l| {
                    Line(std::array::from_fn(|w| {
                        AtomicU64::new(init(l * LINE_WORDS + w))
                    }))
                })
                .collect(),
            len: lines * LINE_WORDS,
        }
    }

    /// At least `len` words, all zero.
    pub(crate) fn zeroed(len: usize) -> Self {
        Self::new(len, |_| 0)
    }

    /// Line `i`'s words.
    #[inline(always)]
    pub(crate) fn line(&self, i: usize) -> &[AtomicU64; LINE_WORDS] {
        &self.lines[i].0
    }

    /// The words.
    #[inline(always)]
    #[allow(unsafe_code)] // one view of the lines as words, see SAFETY
    pub(crate) fn get(&self) -> &[AtomicU64] {
        // SAFETY: `Line` is `repr(C)` and exactly `LINE_WORDS` words (the
        // assertion above), so `lines` is `self.len` (= `lines.len() *
        // LINE_WORDS`, never changed) contiguous, initialised `AtomicU64`s,
        // borrowed for `&self`.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<AtomicU64>(), self.len) }
    }
}

impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Words")
            .field("len", &self.get().len())
            .finish()
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
        }
    }
}
