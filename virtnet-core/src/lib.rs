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
//! For users of a network (what a test author touches), at the root:
//! - [`Networker`] (`networker.rs`): the user-facing trait — `dial`,
//!   `listen`, `close` — implemented by [`Host`] of every virtual network
//!   and by [`tcp::TcpNetworker`], the operating system's network. Start
//!   here.
//! - [`SubNetwork`] (`subnet.rs`): the hosts of one process, their engine
//!   and registry; `new_host` creates a host, `host` looks one up; closing
//!   it takes everything down.
//! - [`Host`] (`host.rs`): where a dial starts and a listener is bound.
//! - [`Listener`] (`listener.rs`): accept; on a virtual host, accept
//!   allocates the accepted connection's port.
//! - [`Conn`] (`conn.rs`): an established connection, tokio `AsyncRead` +
//!   `AsyncWrite`.
//! - [`Addr`] (`addr.rs`); [`VirtError`] and [`OpError`] (`error.rs`): the
//!   canonical failures and how a failed operation reads.
//! - [`Registry`] (`registry.rs`): host name → host data, shared by all
//!   subnetworks of a network; plug in your own.
//! - [`trace`]: event traces a test can assert (`Trace::wrap` any
//!   networker).
//! - [`tcp`]: [`Networker`] over the operating system's TCP.
//! - [`integrations`]: axum, hyper and tonic (cargo features `axum`,
//!   `hyper`, `tonic`).
//!
//! For implementers of a network:
//! - [`engine`]: the [`Engine`](engine::Engine) a network supplies, and how
//!   a dial flows through it.
//! - [`pipe`]: connections within one process through in-memory pipes (a
//!   whole engine's dial, for pipenet; lonet's between its own hosts).
//! - [`networker::ListenSocket`], [`Conn::new`], [`Listener::new`]: for a
//!   [`Networker`] of your own.
//! - [`quote`]: Go's `%q` quoting, for texts that must match the reference
//!   implementation byte for byte.
//!
//! Inside, the layers import only downwards: addresses, errors and the
//! registry trait; the engine interface; a host's socket table
//! (`ports.rs`), a listener's accept queue (`queue.rs`) and in-memory pipes
//! (`pipe.rs`); the kernel (`kernel.rs`: the state of a subnetwork and of
//! its hosts, where dials are routed, connections delivered and shutdown
//! done); connections and listeners; hosts; the subnetwork.
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
//! let alpha = net.new_host("α").await?;
//! let beta = net.new_host("β").await?;
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
#![forbid(unsafe_code)]

mod addr;
mod conn;
mod down;
pub mod engine;
mod error;
pub mod fault;
mod faults;
mod host;
pub mod integrations;
mod kernel;
mod listener;
pub mod networker;
pub mod pipe;
mod ports;
mod queue;
pub mod quote;
mod registry;
mod subnet;
pub mod tcp;
pub mod trace;

pub use addr::{join_host_port, split_host_port, Addr, AddrError, AddrErrorKind, InvalidHostName};
pub use conn::Conn;
pub use error::{OpError, VirtError};
pub use faults::{Fault, Faults, Links, MAX_DELAY};
pub use host::Host;
pub use listener::{Listener, ListenerCloser};
pub use networker::Networker;
pub use registry::{Registry, RegistryCause, RegistryError};
pub use subnet::SubNetwork;

/// Re-exported for implementers of [`Networker`], [`Registry`] and
/// [`engine::Engine`].
pub use async_trait::async_trait;

/// Locks a mutex, ignoring poisoning: every critical section here leaves the
/// data consistent before anything that could panic.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Every handle a user holds can be shared between tasks and threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Conn>();
    send_sync::<Listener>();
    send_sync::<ListenerCloser>();
    send_sync::<Host>();
    send_sync::<SubNetwork>();
    send_sync::<Faults>();
    send_sync::<tcp::TcpNetworker>();
};
