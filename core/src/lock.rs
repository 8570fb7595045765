//! Locks for users: [`Mutex`] and [`RwLock`] are parking_lot's, re-exported so
//! that locks taken through them are visible to the watchdog's deadlock
//! detection (with the `deadlock-detection` feature). [`lock_both`] and
//! [`lock_all`] lock several mutexes in one global order, so that two
//! threads locking the same pair in opposite argument order cannot deadlock
//! (the classic `transfer(from, to)` deadlock):
//!
//! ```
//! use failwell::lock::{lock_both, Mutex};
//!
//! struct Account { balance: Mutex<i64> }
//!
//! fn transfer(from: &Account, to: &Account, amount: i64) {
//!     // Same order whichever account is `from`.
//!     let (mut f, mut t) = lock_both(&from.balance, &to.balance).expect("two different accounts");
//!     *f -= amount;
//!     *t += amount;
//! }
//! # let (a, b) = (Account { balance: Mutex::new(10) }, Account { balance: Mutex::new(0) });
//! # transfer(&a, &b, 4);
//! # assert_eq!((*a.balance.lock(), *b.balance.lock()), (6, 4));
//! ```

pub use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The same mutex was passed twice to [`lock_both`] or [`lock_all`]: locking
/// it twice would deadlock the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SameMutexTwice {
    /// The positions (0-based) of the two arguments naming the same mutex.
    pub positions: (usize, usize),
}

impl std::fmt::Display for SameMutexTwice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "arguments {} and {} are the same mutex; locking it twice would deadlock",
            self.positions.0, self.positions.1
        )
    }
}

impl std::error::Error for SameMutexTwice {}

/// Locks `a` and `b` in one global order (by address) and returns their
/// guards in argument order. Two threads calling `lock_both(x, y)` and
/// `lock_both(y, x)` cannot deadlock each other.
pub fn lock_both<'a, A, B>(
    a: &'a Mutex<A>,
    b: &'a Mutex<B>,
) -> Result<(MutexGuard<'a, A>, MutexGuard<'a, B>), SameMutexTwice> {
    let (pa, pb) = (a as *const _ as usize, b as *const _ as usize);
    if pa == pb {
        return Err(SameMutexTwice { positions: (0, 1) });
    }
    Ok(if pa < pb {
        let ga = a.lock();
        (ga, b.lock())
    } else {
        let gb = b.lock();
        (a.lock(), gb)
    })
}

/// Locks every mutex in `mutexes` in one global order (by address) and
/// returns the guards in argument order.
pub fn lock_all<'a, T>(mutexes: &[&'a Mutex<T>]) -> Result<Vec<MutexGuard<'a, T>>, SameMutexTwice> {
    let mut order: Vec<usize> = (0..mutexes.len()).collect();
    order.sort_by_key(|&i| mutexes[i] as *const _ as usize);
    for w in order.windows(2) {
        if std::ptr::eq(mutexes[w[0]], mutexes[w[1]]) {
            return Err(SameMutexTwice {
                positions: (w[0].min(w[1]), w[0].max(w[1])),
            });
        }
    }
    let mut guards: Vec<Option<MutexGuard<'a, T>>> = (0..mutexes.len()).map(|_| None).collect();
    for i in order {
        guards[i] = Some(mutexes[i].lock());
    }
    Ok(guards.into_iter().flatten().collect())
}

#[cfg(all(test, not(failwell_loom)))]
mod tests;
