//! A lock that is a word: `0` when free, else the holder's owner word (a
//! process's `[start | pid | ready]` in a host region). Whoever finds the
//! holder dead takes the lock over with one compare-and-swap from the
//! word it found, so two takers never both win, and a live holder keeps
//! it. The rule is here, pure over its word, the liveness oracle and the
//! back-off, so that loom checks it; `shared.rs` gives it the region's
//! word, the thread table's liveness check and real sleeps.

use crate::sync::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

/// The ready bit of an owner word: clear while its owner is still writing
/// the words beside it (its boot).
pub(crate) const READY: u64 = 1;

/// Takes `word` for `me` (an owner word with [`READY`] set): returns once
/// it is this caller's. `dead(word)` says whether the holder a word names
/// has died (called at most when `check()` says it is time); `wait()`
/// backs off between tries. `publish()` runs after the word is taken and
/// before it reads as ready (the caller writes its boot there).
pub(crate) fn lock(
    word: &AtomicU64,
    me: u64,
    mut dead: impl FnMut(u64) -> bool,
    mut check: impl FnMut() -> bool,
    mut wait: impl FnMut(),
    publish: impl FnOnce(),
) {
    let mut from = 0;
    loop {
        // Acquire: pairs with `unlock`'s Release (or, taking over, with
        // nothing: what a dead holder left half done is redone by the
        // holder that follows).
        match word.compare_exchange(from, me & !READY, Acquire, Relaxed) {
            Ok(_) => {
                publish();
                word.store(me, Relaxed);
                return;
            }
            Err(held) => {
                from = 0;
                if held != 0 && held | READY != me && check() && dead(held) {
                    from = held; // take it over
                    continue;
                }
                if held != 0 {
                    wait();
                }
            }
        }
    }
}

/// Frees `word`.
pub(crate) fn unlock(word: &AtomicU64) {
    // Release: pairs with `lock`'s Acquire compare-and-swap, so the next
    // holder sees every store made under the lock.
    word.store(0, Release);
}

#[cfg(all(test, failwell_loom))]
mod loom_models;
