//! One subnetwork's view of its network's fault rules: read by every
//! connection, replaced when the store says they changed.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use super::rules::FaultRules;
use crate::lock;

/// The rules as this subnetwork knows them, and who waits for a change.
#[derive(Default)]
pub(crate) struct FaultState {
    /// Whether a fault was ever set on the network (as far as seen here).
    /// Until then connections take the plain path and check only this.
    active: AtomicBool,
    version: AtomicU64,
    rules: Mutex<Arc<FaultRules>>,
    /// Tasks to wake at the next change, by waiter id (ids grow, so this
    /// is the order in which they started waiting).
    waiters: Mutex<BTreeMap<u64, Waker>>,
    next_waiter: AtomicU64,
}

impl FaultState {
    /// Whether any fault was ever set.
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// The version of the rules held.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The rules held.
    pub(crate) fn rules(&self) -> Arc<FaultRules> {
        lock(&self.rules).clone()
    }

    /// Takes `rules` if they are newer than those held, and wakes every
    /// waiter; false if they were not newer.
    pub(crate) fn install(&self, rules: FaultRules) -> bool {
        {
            let mut held = lock(&self.rules);
            if rules.version <= held.version {
                return false;
            }
            let version = rules.version;
            *held = Arc::new(rules);
            self.version.store(version, Ordering::Release);
            self.active.store(true, Ordering::Release);
        }
        // In the order they first waited, so that a paused-clock run wakes
        // its tasks in the same order every time.
        let waiters: Vec<Waker> = std::mem::take(&mut *lock(&self.waiters))
            .into_values()
            .collect();
        for waker in waiters {
            waker.wake();
        }
        true
    }

    /// A new waiter id, for [`wake_on_change`](Self::wake_on_change).
    pub(crate) fn waiter(&self) -> u64 {
        self.next_waiter.fetch_add(1, Ordering::Relaxed)
    }

    /// Wakes `waker` at the next change after version `seen`; at once if the
    /// rules already moved past it.
    pub(crate) fn wake_on_change(&self, id: u64, seen: u64, waker: &Waker) {
        {
            let mut waiters = lock(&self.waiters);
            match waiters.get_mut(&id) {
                Some(w) if w.will_wake(waker) => {}
                Some(w) => w.clone_from(waker),
                None => {
                    waiters.insert(id, waker.clone());
                }
            }
        }
        if self.version() != seen {
            waker.wake_by_ref();
        }
    }

    /// Forgets waiter `id` (its connection is gone).
    pub(crate) fn forget(&self, id: u64) {
        lock(&self.waiters).remove(&id);
    }

    /// Waits until the rules are not version `seen`.
    pub(crate) async fn changed(&self, seen: u64) {
        let id = self.waiter();
        let _forget = Forget(self, id);
        poll_fn(|cx| {
            if self.version() != seen {
                return Poll::Ready(());
            }
            self.wake_on_change(id, seen, cx.waker());
            Poll::Pending
        })
        .await
    }
}

/// Forgets a waiter when its wait ends or is dropped.
struct Forget<'a>(&'a FaultState, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}
