//! pipenet's engine: every dial is a pipe handed to the listener
//! ([`virtnet_core::pipe::dial`]).

use std::io;

use virtnet_core::engine::{async_trait, Dialed, Engine, Inbox};
use virtnet_core::{pipe, Addr};

/// Moves bytes through in-memory pipes within one process.
pub(crate) struct PipeEngine {
    pub(crate) inbox: Inbox,
    pub(crate) capacity: usize,
}

#[async_trait]
impl Engine for PipeEngine {
    async fn new_host(&self, _host: &str) -> io::Result<String> {
        Ok(String::new())
    }

    async fn dial(&self, src: &Addr, dst: &Addr, _dst_data: &str) -> io::Result<Dialed> {
        pipe::dial(&self.inbox, src, dst, self.capacity).await
    }

    async fn close(&self) -> io::Result<()> {
        Ok(())
    }
}
