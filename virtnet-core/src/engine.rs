//! For implementers of a network: the engine interface, the only part a
//! network supplies. Users of a network never need this module.
//!
//! The core ([`SubNetwork`](crate::SubNetwork)) owns hosts, socket tables,
//! port allocation, listeners, accept queues and shutdown. An engine only
//! moves bytes between hosts:
//!
//! - [`Engine::new_host`]: a host joins; say what the registry should hold
//!   for it, or refuse a name this engine cannot carry.
//! - [`Engine::dial`]: connect `src` to `dst`, given the registry's data for
//!   `dst`'s host; answer with the dialer's end and the accepted address.
//! - [`Inbox::deliver`]: the engine's call *into* the core when a connection
//!   arrives for a host of this subnetwork. The engine wraps the arrival in a
//!   [`PendingConn`]; the core queues it on the listener, and the listener's
//!   `accept` later calls [`PendingConn::accept`] with the port it allocated.
//! - Optionally [`Engine::accept_driver`]: an [`AcceptDriver`] the core polls
//!   while an accept waits, so that arrivals are taken in (and delivered) by
//!   the accepting task itself rather than handed over from another task.
//!
//! A dial therefore flows: `Host::dial` (allocates the source port, queries
//! the registry) → [`Engine::dial`] → (in the destination's subnetwork)
//! [`Inbox::deliver`] → `Listener::accept` → [`PendingConn::accept`] → back
//! to the dialer with the accepted address.
//!
//! Build a subnetwork from an engine with
//! [`SubNetwork::new`](crate::SubNetwork::new); the conformance suite
//! (`conformance-tests`) checks it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

pub use async_trait::async_trait;

use crate::{Addr, VirtError};

/// Shuts a [`Transport`] down from outside the task that owns it (see
/// [`Transport::shutdown_handle`]).
pub type ShutdownHandle = Box<dyn Fn() + Send + Sync>;

/// One end of an established connection's byte stream.
///
/// The core wraps it in a [`Conn`](crate::Conn); `poll_shutdown` must be a
/// half-close (the peer reads end of stream and can still write back).
pub trait Transport: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {
    /// A handle that, when called (from any thread, possibly while a read or
    /// write is pending), shuts this transport in both directions: pending
    /// and later reads and writes on this end return promptly, and the peer
    /// sees end of stream. The core calls it when the host or subnetwork
    /// goes down; a handle that does nothing leaves blocked operations
    /// blocked.
    fn shutdown_handle(&self) -> ShutdownHandle;

    /// Resets the connection, as a TCP RST does: the peer's pending (or
    /// next) read or write fails with [`io::ErrorKind::ConnectionReset`].
    /// Called by [`Conn::reset`](crate::Conn::reset) just before this end
    /// is dropped, and when a fault resets the connection (then the
    /// shutdown handle is called too, and the end is dropped later).
    ///
    /// Provided: shuts this transport with its
    /// [`shutdown_handle`](Transport::shutdown_handle), so the peer sees
    /// only end of stream; an engine that can carry resets does.
    fn reset(&mut self) {
        (self.shutdown_handle())();
    }

    /// A second handle that writes to this transport's connection, for
    /// shaping from this end what a peer that does not shape would receive
    /// unshaped (see [`Engine::peer_shapes`]): the core then sends this
    /// end's bytes from a task of its own, through that link's faults,
    /// while this transport keeps reading. Its `poll_shutdown` is a
    /// half-close, as this transport's.
    ///
    /// Provided: `None`, for engines whose peers all shape.
    fn writer(&self) -> Option<Box<dyn AsyncWrite + Send + Sync + Unpin>> {
        None
    }
}

/// The dialer's side of a successful [`Engine::dial`].
pub struct Dialed {
    /// The dialer's end of the connection.
    pub transport: Box<dyn Transport>,
    /// The address the acceptor allocated for the connection (`α:2`).
    pub peer: Addr,
}

/// A network implementation: how bytes get between hosts.
///
/// # Contract
/// - Calls may come concurrently from many tasks.
/// - `dial` may be cancelled (its future dropped) at any await point; it must
///   then leave nothing behind (for example, answer
///   [`PendingConn::is_abandoned`] with true for a connection it delivered).
/// - A refusal that the destination's subnetwork answered (no listener on
///   that port) is the bare [`VirtError::ConnRefused`] as the error's inner
///   error (`io::Error::from(VirtError::ConnRefused)`). Any other failure,
///   including a refusal by the operating system because the destination's
///   process is gone, should wrap its cause in an error of the engine's
///   own: the core then asks the registry again, since the host may have
///   moved. Errors should still carry a [`VirtError`] where one applies
///   (as a source), so that [`VirtError::of`] finds it.
/// - `close` is called once, when the subnetwork closes, after all its hosts
///   are down. Dropping the engine (the subnetwork's last handle is gone)
///   must stop its background work at once too, without blocking.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Host `host` is joining this subnetwork: returns the data to announce
    /// for it in the registry (lonet: this process's OS address).
    ///
    /// The core has already checked that `host` is a name an address can
    /// carry; an engine with limits of its own (a line length) refuses
    /// other names with [`io::ErrorKind::InvalidInput`].
    async fn new_host(&self, host: &str) -> io::Result<String>;

    /// Connects `src` (a host of this subnetwork, port already allocated) to
    /// `dst`, whose host the registry maps to `dst_data`.
    async fn dial(&self, src: &Addr, dst: &Addr, dst_data: &str) -> io::Result<Dialed>;

    /// Shuts the engine down.
    async fn close(&self) -> io::Result<()>;

    /// Whether host `host`, which the registry maps to `data`, is still
    /// served there. `new_host` asks when the name it wants is taken: only
    /// on [`Liveness::Dead`] does it take the name over (with
    /// [`Registry::replace`](crate::Registry::replace), so that of two
    /// processes taking it over at once one wins).
    ///
    /// Answer `Dead` only on proof (lonet: the OS refuses the connection, or
    /// the process there answers that it has no such host or is another
    /// network); a timeout or garbage is `Unknown`. Must end by itself
    /// (bounded by a deadline). The default, for engines that cannot tell,
    /// answers `Unknown`.
    async fn probe(&self, host: &str, data: &str) -> Liveness {
        let _ = (host, data);
        Liveness::Unknown("this network cannot probe its hosts".into())
    }

    /// Whether the process serving host data `data` shapes the bytes it
    /// receives by the network's faults, as every subnetwork built on this
    /// core does (each end shapes what it receives). A peer that does not
    /// (lonet: a reference Go/Python process) gets both directions of its
    /// connections shaped by this end, which then also holds, fails or
    /// delays the dials it makes here. The core asks only once a fault
    /// applies to a connection with that peer. Must end by itself; when it
    /// cannot tell, answer `true`.
    ///
    /// Provided: `true` (every peer runs this engine).
    async fn peer_shapes(&self, data: &str) -> bool {
        let _ = data;
        true
    }

    /// Optional: a driver with which a task waiting in
    /// [`Listener::accept`](crate::Listener::accept) takes in arriving
    /// connections itself, instead of waiting for the engine's background
    /// work to deliver them. The core asks for one when an accept (or the
    /// listener's stream) finds its queue empty, polls it while the accept
    /// waits, and drops it when the accept returns or is dropped.
    ///
    /// This saves a hand-off between tasks per connection, which on a
    /// multi-thread runtime is a thread wake-up. The default, `None`, leaves
    /// every delivery to the engine's own tasks (pipenet delivers from the
    /// dialer's task already).
    fn accept_driver(&self) -> Option<Box<dyn AcceptDriver>> {
        None
    }
}

/// What [`Engine::probe`] found out about a registered host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Liveness {
    /// The host is served at its registered data.
    Alive,
    /// Proof that nobody serves the host there any more.
    Dead,
    /// No proof either way; the text says why.
    Unknown(String),
}

/// Takes in connections for the subnetwork from inside an accepting task
/// (see [`Engine::accept_driver`]).
///
/// # Contract
/// - Whatever the driver takes in goes through [`Inbox::deliver`], to any
///   listener of the subnetwork, exactly as the engine's own tasks would.
/// - It must never be the only thing watching for arrivals once it is
///   dropped: dropping it hands back to the engine's background work
///   whatever it holds and whatever it was watching.
pub trait AcceptDriver: Send + Sync {
    /// Takes in what has arrived. `Ready(())` if it delivered at least one
    /// connection (the caller then looks at its queue again); `Pending` if
    /// nothing, after arranging for `cx` to be woken when more may arrive.
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// One connection that arrived for a listener and waits to be accepted.
///
/// The engine makes one per arriving connection and hands it to
/// [`Inbox::deliver`]. Exactly one of `accept` and `refuse` is called, unless
/// the connection is dropped as abandoned.
pub trait PendingConn: Send + 'static {
    /// The listener accepted it and allocated `local` for it. Tell the dialer
    /// (it learns `local` as its peer address) and return the acceptor's end.
    ///
    /// Must not block. Return an error if the dialer is gone: the core then
    /// frees the port and accept moves on to the next connection.
    fn accept(self: Box<Self>, local: &Addr) -> io::Result<Box<dyn Transport>>;

    /// It will never be accepted (listener closed, host down): tell the dialer `reason`.
    fn refuse(self: Box<Self>, reason: VirtError);

    /// True if the dialer already gave up; accept then skips it.
    fn is_abandoned(&self) -> bool {
        false
    }
}

/// A connection [`Inbox::deliver`] could not queue, given back with the reason.
pub struct Undelivered {
    /// Why: [`VirtError::NoHost`] (no such host on this subnetwork),
    /// [`VirtError::ConnRefused`] (no listener on that port), or
    /// [`VirtError::NetDown`].
    pub reason: VirtError,
    /// The connection, so the engine can answer the dialer.
    pub conn: Box<dyn PendingConn>,
}

/// A connection [`Inbox::deliver`] queued on a listener: the engine's way
/// to take it back if its dialer gives up before an accept takes it.
///
/// Dropping it leaves the connection queued (an accept skips it later if
/// [`PendingConn::is_abandoned`] says so, and a full backlog drops it).
pub struct Queued {
    queue: Weak<dyn Withdraw>,
    id: u64,
    awaited: bool,
}

impl Queued {
    pub(crate) fn new(queue: Weak<dyn Withdraw>, id: u64, awaited: bool) -> Queued {
        Queued { queue, id, awaited }
    }

    /// Whether an accept was waiting for it when it arrived: it is then
    /// taken at once, and needs no watching.
    pub fn awaited(&self) -> bool {
        self.awaited
    }

    /// Removes the connection from its listener's queue, dropping it, unless
    /// an accept took it already (or the listener closed and refused it).
    /// Returns whether it was still queued.
    pub fn withdraw(self) -> bool {
        self.queue
            .upgrade()
            .is_some_and(|queue| queue.withdraw(self.id))
    }
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("id", &self.id)
            .field("awaited", &self.awaited)
            .finish()
    }
}

/// A listener's queue, as far as [`Queued::withdraw`] needs it.
pub(crate) trait Withdraw: Send + Sync {
    /// Removes (and drops) queued connection `id`; false if it is gone.
    fn withdraw(&self, id: u64) -> bool;
}

/// Where a subnetwork takes arriving connections in (the core implements it).
pub(crate) trait Deliver: Send + Sync {
    fn deliver(
        &self,
        src: Addr,
        dst: &Addr,
        conn: Box<dyn PendingConn>,
    ) -> Result<Queued, Undelivered>;

    fn network(&self) -> &Arc<str>;

    /// What the network's faults do to a dial arriving from `src` for
    /// `dst` (see [`Inbox::arrival`]); `None` if no fault was ever set.
    fn arrival(self: Arc<Self>, src: &Addr, dst: &Addr) -> Option<Arrival>;
}

/// A dial's wait on arrival (see [`Inbox::arrival`]).
pub type Arrival = Pin<Box<dyn Future<Output = Result<(), VirtError>> + Send>>;

/// The engine's way into its subnetwork: where arriving connections go.
///
/// Given to the engine when the [`SubNetwork`](crate::SubNetwork) is built.
/// It holds the subnetwork weakly, so an engine's background tasks do not
/// keep it alive.
#[derive(Clone)]
pub struct Inbox {
    pub(crate) subnet: Weak<dyn Deliver>,
}

impl Inbox {
    /// A connection from `src` arrived for `dst`: queue it on the listener
    /// of `dst`. Never blocks; the listener's accept picks it up. Keep the
    /// [`Queued`] to take the connection back if its dialer gives up first.
    pub fn deliver(
        &self,
        src: Addr,
        dst: &Addr,
        conn: Box<dyn PendingConn>,
    ) -> Result<Queued, Undelivered> {
        match self.subnet.upgrade() {
            Some(subnet) => subnet.deliver(src, dst, conn),
            None => Err(Undelivered {
                reason: VirtError::NetDown,
                conn,
            }),
        }
    }

    /// What the network's faults do to a dial that arrives from `src` for
    /// `dst`, before it is delivered, for an engine whose dialers may be
    /// processes that do not shape (see [`Engine::peer_shapes`]; a dialer
    /// that does applied them before it dialed): the future fails with
    /// [`VirtError::HostUnreach`] if a link between the two hosts is
    /// unreachable (answer the dialer so), waits while one is partitioned,
    /// and, for a dialer that does not shape, waits a round trip of their
    /// latency. `None` (deliver at once) if no fault was ever set on the
    /// network, so an engine pays nothing for it until then.
    pub fn arrival(&self, src: &Addr, dst: &Addr) -> Option<Arrival> {
        self.subnet.upgrade()?.arrival(src, dst)
    }

    /// The full name of the network, or `None` once the subnetwork is gone.
    pub fn network(&self) -> Option<Arc<str>> {
        self.subnet.upgrade().map(|s| s.network().clone())
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("network", &self.network())
            .finish()
    }
}
