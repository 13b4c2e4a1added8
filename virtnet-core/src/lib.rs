//! Virtual TCP networks with named hosts and predictable ports: the part
//! every network shares.
//!
//! A test of a distributed system wants to say exactly what happened on the
//! network: "`β:1` dialed `α:10`, the server side got `α:2`". virtnet gives
//! every host its own port numbers, starting at 1 and always taking the lowest
//! free one, so those addresses are predictable. Networks built on this
//! crate: `pipenet` (in-process, in-memory pipes) and `lonet` (several OS
//! processes over loopback TCP).
//!
//! # Map
//! - [`Networker`] (in `networker.rs`): the user-facing trait — `dial`,
//!   `listen`, `close` — implemented by [`Host`]. Start here.
//! - [`Host`] (`host.rs`): where a dial starts, where ports are allocated
//!   (the socket table is in `ports.rs`), and where a host's shutdown
//!   reaches its sockets.
//! - [`Listener`] (`listener.rs`): accept queues; accept allocates the
//!   accepted connection's port.
//! - [`Conn`] (`conn.rs`): an established connection, tokio `AsyncRead` +
//!   `AsyncWrite`.
//! - [`SubNetwork`] (`subnet.rs`): the hosts of one process, their engine
//!   and registry; closing it takes everything down.
//! - [`Engine`], [`Transport`], [`Incoming`], [`Inbox`] (`engine.rs`): what a
//!   network implementation supplies, and how a dial flows through it.
//! - [`Registry`] (`registry.rs`): host name → host data, shared by all
//!   subnetworks of a network.
//! - [`Addr`] (`addr.rs`), [`VirtError`] and [`OpError`] (`error.rs`).
//! - [`integrations`]: axum, hyper and tonic (cargo features `axum`,
//!   `hyper`, `tonic`).
//! - [`trace`]: event traces a test can assert (`Trace::wrap` any
//!   networker).
//! - [`quote`]: Go's `%q` quoting, for texts that must match the reference
//!   implementation byte for byte.
//!
//! # Example
//! With pipenet, the in-process network:
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use virtnet_core::Networker;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let net = pipenet::Network::new("example");
//! let alpha = net.host("α").await?;
//! let beta = net.host("β").await?;
//!
//! let listener = alpha.listen(":10").await?;
//! // A dial completes when the listener accepts: run both at once.
//! let (mut client, mut server) = tokio::try_join!(beta.dial("α:10"), listener.accept())?;
//! assert_eq!(client.local_addr().to_string(), "β:1");
//! assert_eq!(client.peer_addr().to_string(), "α:1");
//! assert_eq!(server.peer_addr().to_string(), "β:1");
//!
//! client.write_all(b"ping").await?;
//! let mut buf = [0; 4];
//! server.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//! # net.close().await
//! # }
//! ```
#![warn(missing_docs)]

mod addr;
mod conn;
mod down;
mod engine;
mod error;
mod host;
pub mod integrations;
mod listener;
mod networker;
mod ports;
pub mod quote;
mod registry;
mod subnet;
pub mod trace;

pub use addr::{join_host_port, split_host_port, Addr, AddrError, AddrErrorKind};
pub use conn::Conn;
pub use engine::{
    AbortHandle, AcceptDriver, Dialed, Engine, Inbox, Incoming, Transport, Undelivered,
};
pub use error::{OpError, VirtError};
pub use host::Host;
pub use listener::{Listener, ListenerCloser};
pub use networker::Networker;
pub use registry::{Registry, RegistryCause, RegistryError};
pub use subnet::SubNetwork;

/// Re-exported for implementers of [`Engine`] and [`Registry`].
pub use async_trait::async_trait;

/// Locks a mutex, ignoring poisoning: every critical section here leaves the
/// data consistent before anything that could panic.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
