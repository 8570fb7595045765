//! Bulkhead permits: the borrowed [`BulkheadPermit`] and the
//! [`OwnedBulkheadPermit`] on an `Arc`.

use std::fmt;
use std::time::Duration;

use super::{Bulkhead, Priority};
use crate::clock::{Clock, MonotonicClock};
use crate::error::Rejected;
use crate::sync::UserArc;

/// A permit from a [`Bulkhead`]; given back exactly once when dropped
/// (also while unwinding from a panic).
#[must_use = "the permit is returned as soon as it is dropped"]
pub struct BulkheadPermit<'a, C: Clock = MonotonicClock> {
    pub(super) bulkhead: &'a Bulkhead<C>,
    /// The fork generation it was taken in (see `Bulkhead::release_born`).
    pub(super) born: u64,
}

impl<C: Clock> BulkheadPermit<'_, C> {
    /// Detaches the permit from its borrow: it stays taken until
    /// [`Bulkhead::release_detached`] returns it. For holders that cannot
    /// keep a borrowed guard (the C ABI); each detached permit must be
    /// returned exactly once, and for a bulkhead in a host region, by the
    /// process that took it (a child of `fork()` must not return a permit
    /// its parent detached: the parent does).
    pub fn detach(self) {
        std::mem::forget(self);
    }
}

impl<C: Clock> Bulkhead<C> {
    /// Returns a permit detached with [`BulkheadPermit::detach`]. Calling it
    /// without one detached raises the number of permits above the limit.
    pub fn release_detached(&self) {
        self.release();
    }

    /// [`try_acquire_with`](Self::try_acquire_with) for a holder that owns
    /// the bulkhead through an `Arc`: the permit keeps the bulkhead alive
    /// and can move anywhere (tokio's `try_acquire_owned`).
    pub fn try_acquire_owned(
        self: &UserArc<Self>,
        priority: Priority,
    ) -> Result<OwnedBulkheadPermit<C>, Rejected> {
        self.try_acquire_with(priority).map(|p| self.owned(p))
    }

    /// [`acquire_timeout_with`](Self::acquire_timeout_with), for an owned
    /// permit (see [`try_acquire_owned`](Self::try_acquire_owned)).
    pub fn acquire_timeout_owned(
        self: &UserArc<Self>,
        priority: Priority,
        timeout: Duration,
    ) -> Result<OwnedBulkheadPermit<C>, Rejected> {
        self.acquire_timeout_with(priority, timeout)
            .map(|p| self.owned(p))
    }

    /// `permit` (one of this bulkhead's) as an owned permit.
    fn owned(self: &UserArc<Self>, permit: BulkheadPermit<'_, C>) -> OwnedBulkheadPermit<C> {
        let born = permit.born;
        permit.detach();
        OwnedBulkheadPermit {
            bulkhead: UserArc::clone(self),
            born,
        }
    }
}

impl<C: Clock> Drop for BulkheadPermit<'_, C> {
    #[inline]
    fn drop(&mut self) {
        self.bulkhead.release_born(self.born);
    }
}

impl<C: Clock> fmt::Debug for BulkheadPermit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BulkheadPermit")
    }
}

/// A permit that owns a reference to its bulkhead (from
/// [`Bulkhead::try_acquire_owned`]): `'static`, movable between threads,
/// given back exactly once when dropped.
#[must_use = "the permit is returned as soon as it is dropped"]
pub struct OwnedBulkheadPermit<C: Clock = MonotonicClock> {
    bulkhead: UserArc<Bulkhead<C>>,
    born: u64,
}

impl<C: Clock> OwnedBulkheadPermit<C> {
    /// The bulkhead the permit came from.
    pub fn bulkhead(&self) -> &UserArc<Bulkhead<C>> {
        &self.bulkhead
    }
}

impl<C: Clock> Drop for OwnedBulkheadPermit<C> {
    fn drop(&mut self) {
        self.bulkhead.release_born(self.born);
    }
}

impl<C: Clock> fmt::Debug for OwnedBulkheadPermit<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnedBulkheadPermit")
    }
}
