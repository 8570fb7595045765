//! Transitions as listeners see them, and the listener registry.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::State;
use crate::sync::{AtomicU64, CoreRwLock, Ordering::Relaxed, SharedFn};

/// A state change, as delivered to listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// When it happened, in the breaker's clock's nanoseconds.
    pub at_nanos: u64,
    /// The generation the breaker entered: one more at every transition,
    /// never wrapping in a process's life (61 bits).
    pub generation: u64,
}

/// Identifies a registered listener, for
/// [`CircuitBreaker::remove_listener`](super::CircuitBreaker::remove_listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

impl ListenerId {
    /// The id as a number (never 0), for bindings that hand it to another
    /// language.
    pub fn into_raw(self) -> u64 {
        self.0
    }

    /// The id [`into_raw`](Self::into_raw) gave. A number no breaker gave
    /// is simply not registered: removing it returns `false`.
    pub fn from_raw(raw: u64) -> Self {
        ListenerId(raw)
    }
}

type Listener = SharedFn<dyn Fn(&Transition) + Send + Sync>;

/// A breaker's listeners: registered and removed under a write lock,
/// called after a transition with no lock held (a listener may use the
/// breaker).
#[derive(Default)]
pub(crate) struct Listeners {
    /// The last id given, and the listeners in registration order.
    list: CoreRwLock<(u64, Vec<(ListenerId, Listener)>)>,
    /// The breaker's name, if it has one (for its events).
    name: Option<std::sync::Arc<str>>,
}

impl Listeners {
    pub(crate) fn named(name: Option<std::sync::Arc<str>>) -> Self {
        Listeners {
            list: CoreRwLock::default(),
            name,
        }
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub(crate) fn add(&self, f: Listener) -> ListenerId {
        let mut l = self.list.write();
        l.0 += 1;
        let id = ListenerId(l.0);
        l.1.push((id, f));
        id
    }

    pub(crate) fn remove(&self, id: ListenerId) -> bool {
        let mut l = self.list.write();
        let before = l.1.len();
        l.1.retain(|(i, _)| *i != id);
        l.1.len() != before
    }

    /// Calls every listener with `t`, each inside its own panic guard; a
    /// panic is counted in `panics` and the others still run.
    pub(crate) fn publish(&self, t: Transition, panics: &AtomicU64) {
        let listeners: Vec<Listener> = {
            let l = self.list.read();
            if l.1.is_empty() {
                return;
            }
            l.1.iter().map(|(_, f)| SharedFn::clone(f)).collect()
        };
        for f in listeners {
            if catch_unwind(AssertUnwindSafe(|| f(&t))).is_err() {
                panics.fetch_add(1, Relaxed);
                crate::trace::listener_panicked(self.name(), &t);
            }
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("name", &self.name)
            .field("registered", &self.list.read().1.len())
            .finish()
    }
}

impl<C: crate::clock::Clock> super::CircuitBreaker<C> {
    /// Registers `f` to be called after every state change, on the thread
    /// that made the change, after the breaker's own lock is released. A
    /// panicking listener is caught and counted (`listener_panics`).
    pub fn add_listener<F>(&self, f: F) -> ListenerId
    where
        F: Fn(&Transition) + Send + Sync + 'static,
    {
        self.listeners().add(SharedFn::new(f))
    }

    /// The name given to the builder's
    /// [`name`](super::Builder::name) (for a breaker in a host region,
    /// the region's name for it when the builder gave none).
    pub fn name(&self) -> Option<&str> {
        self.listeners().name()
    }

    /// Unregisters a listener; returns whether it was registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.listeners().remove(id)
    }
}
