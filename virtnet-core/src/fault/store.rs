//! Where a network keeps its fault rules: the [`FaultStore`] a registry
//! offers, and [`MemoryFaults`], the in-process one.

use std::io;

use async_trait::async_trait;
use tokio::sync::watch;

use super::rules::FaultRules;

/// Keeps a network's [`FaultRules`] where every subnetwork of the network
/// sees them, and tells watchers when they change. A
/// [`Registry`](crate::Registry) that can keep faults returns one from
/// [`Registry::faults`](crate::Registry::faults).
///
/// Changes are compare-and-swap on the version, so two processes changing
/// faults at once both land, one after the other.
#[async_trait]
pub trait FaultStore: Send + Sync + 'static {
    /// The rules as stored now (version 0 and no links if none were ever
    /// stored).
    async fn load(&self) -> io::Result<FaultRules>;

    /// Stores `rules` if the stored version is still `base`; false (and
    /// nothing stored) if another change came first. `rules.version` is
    /// `base + 1`.
    async fn store_if(&self, base: u64, rules: &FaultRules) -> io::Result<bool>;

    /// Waits until the stored version is not `seen`, and returns the rules
    /// then. It watches; it does not read the store in a busy loop. Dropping
    /// the future stops the wait.
    async fn changed(&self, seen: u64) -> io::Result<FaultRules>;
}

/// A [`FaultStore`] in memory, for the subnetworks of one process (it is
/// pipenet's). Clones share the rules.
#[derive(Clone)]
pub struct MemoryFaults {
    rules: watch::Sender<FaultRules>,
}

impl Default for MemoryFaults {
    fn default() -> MemoryFaults {
        MemoryFaults {
            rules: watch::Sender::new(FaultRules::default()),
        }
    }
}

impl MemoryFaults {
    /// An empty store.
    pub fn new() -> MemoryFaults {
        MemoryFaults::default()
    }
}

#[async_trait]
impl FaultStore for MemoryFaults {
    async fn load(&self) -> io::Result<FaultRules> {
        Ok(self.rules.borrow().clone())
    }

    async fn store_if(&self, base: u64, rules: &FaultRules) -> io::Result<bool> {
        Ok(self.rules.send_if_modified(|stored| {
            if stored.version != base {
                return false;
            }
            *stored = rules.clone();
            true
        }))
    }

    async fn changed(&self, seen: u64) -> io::Result<FaultRules> {
        let mut rx = self.rules.subscribe();
        loop {
            {
                let rules = rx.borrow_and_update();
                if rules.version != seen {
                    return Ok(rules.clone());
                }
            }
            if rx.changed().await.is_err() {
                // Cannot happen while `self` holds the sender.
                return Err(io::Error::other("fault store dropped"));
            }
        }
    }
}
