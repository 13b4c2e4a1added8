//! A one-shot "is down" signal with its reason, that tasks can wait on.

use std::sync::OnceLock;

use tokio::sync::Notify;

use crate::VirtError;

/// Set once, with the reason, when a host or subnetwork goes down.
#[derive(Default)]
pub(crate) struct Down {
    reason: OnceLock<VirtError>,
    notify: Notify,
}

impl Down {
    /// Marks it down; returns false if it already was.
    pub(crate) fn set(&self, reason: VirtError) -> bool {
        let first = self.reason.set(reason).is_ok();
        if first {
            self.notify.notify_waiters();
        }
        first
    }

    /// The reason, if it is down.
    pub(crate) fn get(&self) -> Option<VirtError> {
        self.reason.get().copied()
    }

    /// Waits until it is down.
    pub(crate) async fn wait(&self) -> VirtError {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(reason) = self.get() {
                return reason;
            }
            notified.await;
        }
    }
}
