//! The user-facing trait: what a host of any virtual network can do.

use std::io;

use async_trait::async_trait;

use crate::{Conn, Host, Listener};

/// An access point to a network: dial from it, listen on it.
///
/// Implemented by [`Host`] of every network (pipenet, lonet, your own), and
/// object safe, so code under test can take an `Arc<dyn Networker>` and not
/// care which network it runs on.
#[async_trait]
pub trait Networker: Send + Sync {
    /// The full name of the network (`pipeX`, `lonetmynet`).
    fn network(&self) -> &str;

    /// The name of this access point (the host name).
    fn name(&self) -> &str;

    /// Connects to `addr` (`host:port`; an empty host means this one).
    async fn dial(&self, addr: &str) -> io::Result<Conn>;

    /// Listens on `laddr` (`:port`, `host:port`, or `""` for the lowest free port).
    async fn listen(&self, laddr: &str) -> io::Result<Listener>;

    /// Closes the access point and everything on it.
    async fn close(&self) -> io::Result<()>;
}

#[async_trait]
impl Networker for Host {
    fn network(&self) -> &str {
        Host::network(self)
    }

    fn name(&self) -> &str {
        Host::name(self)
    }

    async fn dial(&self, addr: &str) -> io::Result<Conn> {
        Host::dial(self, addr).await
    }

    async fn listen(&self, laddr: &str) -> io::Result<Listener> {
        Host::listen(self, laddr).await
    }

    async fn close(&self) -> io::Result<()> {
        Host::close(self).await
    }
}
