//! The user-facing trait, [`Networker`]: what an access point of any
//! network can do. Code under test takes an `Arc<dyn Networker>` and runs on
//! pipenet, lonet or the OS network ([`TcpNetworker`](crate::tcp::TcpNetworker))
//! unchanged.
//!
//! To write a networker of your own, return [`Conn::new`] and
//! [`Listener::new`] (over a [`ListenSocket`]) from it.

use std::io;
use std::task::{Context, Poll};

use async_trait::async_trait;

use crate::{Conn, Host, Listener};

/// The accepting half of a listener of your own networker, wrapped by
/// [`Listener::new`].
///
/// # Contract
/// - `poll_accept` is called from the task awaiting
///   [`Listener::accept`] (or polling the listener as a stream); it must
///   register `cx` to be woken when a connection may be ready, like tokio's
///   `TcpListener::poll_accept`. A call racing with `close` may still come;
///   answer it with `Pending` or an error (the core reports "socket is
///   down" to the waiting accept either way).
/// - `close` is called once, from any thread, when the listener is closed
///   or dropped: free what it listens on. The core itself ends pending
///   accepts with "socket is down".
pub trait ListenSocket: Send + Sync + 'static {
    /// The next connection, made with [`Conn::new`].
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Conn>>;

    /// Stops listening.
    fn close(&self);
}

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
