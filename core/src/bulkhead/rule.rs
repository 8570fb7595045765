//! The bulkhead's rule: pure functions of the permit word (see
//! [`state`](super::state)) and the settings, applied by the handle in one
//! compare-and-swap each. Every admission decision is made here, once.

use super::state::word;
use super::Priority;

/// How many permits a caller of `priority` must leave free: the reserve
/// for a normal caller, none for a critical one.
#[inline]
pub(crate) fn floor(priority: Priority, reserve: i64) -> i64 {
    match priority {
        Priority::Normal => reserve,
        Priority::Critical => 0,
    }
}

/// The admission rule: a caller who must leave `floor` permits free gets
/// one when more than `floor` are available.
#[inline(always)]
pub(crate) fn admits(available: i64, floor: i64) -> bool {
    available > floor
}

/// [`admits`] on an in-process permit word: the word with the permit
/// taken, or `None`.
#[inline(always)]
pub(crate) fn take(w: u64, floor: i64) -> Option<u64> {
    admits(word::available(w), floor).then(|| w - 1)
}

/// A waiter's step, for registering, leaving and taking in one
/// compare-and-swap: the word after taking a permit (by [`take`]'s rule)
/// and adding `if_taken` to the waiter counts, or after adding `if_not`
/// when no permit is free (both wrapping, so a negative count is a
/// two's-complement unit). Returns the new word and whether a permit was
/// taken; `None` when nothing would change.
#[inline]
pub(crate) fn take_and_adjust(
    w: u64,
    floor: i64,
    if_taken: u64,
    if_not: u64,
) -> Option<(u64, bool)> {
    let (new, taken) = match take(w, floor) {
        Some(t) => (t.wrapping_add(if_taken), true),
        None => (w.wrapping_add(if_not), false),
    };
    (new != w).then_some((new, taken))
}

/// Who a release should wake: a critical waiter first; a normal one only
/// if the permits available after the release (`available`) include one
/// outside the reserve. `waiters` is a permit word read for its waiter
/// counts.
pub(crate) fn whom_to_wake(waiters: u64, available: i64, reserve: i64) -> Option<Priority> {
    if word::critical_waiters(waiters) != 0 {
        Some(Priority::Critical)
    } else if word::normal_waiters(waiters) != 0 && available > reserve {
        Some(Priority::Normal)
    } else {
        None
    }
}

/// Permits out, from the limit and the available count.
#[inline]
pub(crate) fn in_use(max: i64, available: i64) -> i64 {
    max - available
}

/// The order of a reconfiguration that changes the reserve from `old` to
/// `new` and the limit: raise the reserve before the limit grows, lower it
/// after the limit shrinks, so that a normal caller racing the change never
/// takes permits meant for the reserve.
pub(crate) fn reserve_first(old: i64, new: i64) -> bool {
    new > old
}
