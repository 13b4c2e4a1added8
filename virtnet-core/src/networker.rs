//! The user-facing trait, [`Networker`]: what an access point of any
//! network can do. Code under test takes an `Arc<dyn Networker>` and runs on
//! pipenet, lonet or the OS network ([`TcpNetworker`](crate::tcp::TcpNetworker))
//! unchanged.
//!
//! To write a networker of your own, return [`Conn::new`] and
//! [`Listener::new`] (over a [`ListenSocket`]) from it.

use std::io;

use async_trait::async_trait;

pub use crate::listener::ListenSocket;
use crate::{Conn, Listener};

/// An access point to a network: dial from it, listen on it.
///
/// Implemented by [`Host`](crate::Host) of every virtual network, by
/// [`TcpNetworker`](crate::tcp::TcpNetworker) (the OS network) and by your own, and
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
