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
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn opposite_argument_orders_never_deadlock() {
        let a = Arc::new(Mutex::new(0i64));
        let b = Arc::new(Mutex::new(0i64));
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let (a, b) = (a.clone(), b.clone());
                thread::spawn(move || {
                    for _ in 0..100_000 {
                        let (x, y) = if t == 0 { (&a, &b) } else { (&b, &a) };
                        let (mut gx, mut gy) = lock_both(x, y).unwrap();
                        *gx -= 1;
                        *gy += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*a.lock() + *b.lock(), 0);
    }

    #[test]
    fn the_same_mutex_twice_is_an_error_not_a_deadlock() {
        let m = Mutex::new(1);
        let n = Mutex::new(2);
        assert_eq!(
            lock_both(&m, &m).unwrap_err(),
            SameMutexTwice { positions: (0, 1) }
        );
        assert_eq!(
            lock_all(&[&m, &n, &m]).unwrap_err(),
            SameMutexTwice { positions: (0, 2) }
        );
        let guards = lock_all(&[&n, &m]).unwrap();
        assert_eq!((*guards[0], *guards[1]), (2, 1), "guards in argument order");
    }
}
