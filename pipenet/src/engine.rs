//! pipenet's engine: a dial makes a pipe and hands one end to the listener.

use std::io;

use tokio::sync::oneshot;
use virtnet_core::engine::{async_trait, Dialed, Engine, Inbox, PendingConn, Queued, Transport};
use virtnet_core::{Addr, VirtError};

use crate::pipe::{pipe, PipeEnd};

/// Moves bytes through in-memory pipes within one process.
pub(crate) struct PipeEngine {
    pub(crate) inbox: Inbox,
    pub(crate) capacity: usize,
}

/// The dialer's answer: the accepted address, or why not.
type Answer = Result<Addr, VirtError>;

/// A pipe end waiting in a listener's queue, with the line back to its dialer.
struct PendingPipe {
    end: PipeEnd,
    answer: oneshot::Sender<Answer>,
}

impl PendingConn for PendingPipe {
    fn accept(self: Box<Self>, local: &Addr) -> io::Result<Box<dyn Transport>> {
        match self.answer.send(Ok(local.clone())) {
            Ok(()) => Ok(Box::new(self.end)),
            Err(_) => Err(io::ErrorKind::ConnectionAborted.into()),
        }
    }

    fn refuse(self: Box<Self>, reason: VirtError) {
        let _ = self.answer.send(Err(reason));
    }

    fn is_abandoned(&self) -> bool {
        self.answer.is_closed()
    }
}

/// Takes a queued connection back when dropped, unless emptied first.
struct WithdrawOnDrop(Option<Queued>);

impl Drop for WithdrawOnDrop {
    fn drop(&mut self) {
        if let Some(queued) = self.0.take() {
            queued.withdraw();
        }
    }
}

#[async_trait]
impl Engine for PipeEngine {
    async fn new_host(&self, _host: &str) -> io::Result<String> {
        Ok(String::new())
    }

    async fn dial(&self, src: &Addr, dst: &Addr, _dst_data: &str) -> io::Result<Dialed> {
        let (mine, theirs) = pipe(self.capacity);
        let (answer, accepted) = oneshot::channel();
        let pending = Box::new(PendingPipe {
            end: theirs,
            answer,
        });
        let queued = self
            .inbox
            .deliver(src.clone(), dst, pending)
            .map_err(|undelivered| io::Error::from(undelivered.reason))?;
        // Dropped while waiting, this dial takes its pipe off the queue.
        let mut withdraw = WithdrawOnDrop(Some(queued));
        let answer = accepted.await;
        withdraw.0 = None;
        match answer {
            Ok(Ok(peer)) => Ok(Dialed {
                transport: Box::new(mine),
                peer,
            }),
            Ok(Err(reason)) => Err(reason.into()),
            Err(_) => Err(VirtError::ConnRefused.into()),
        }
    }

    async fn close(&self) -> io::Result<()> {
        Ok(())
    }
}
