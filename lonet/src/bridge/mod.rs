//! Real programs on a lonet network: a [`Bridge`] joins OS TCP, which any
//! program speaks, to a network's hosts.
//!
//! - [`Bridge::expose`]: a host's port forwards to a real server. Host α
//!   listens on `α:5432`; each connection it accepts (`α:1`, `α:2`, … as
//!   usual) is connected to, say, a PostgreSQL server on `127.0.0.1:5432`.
//! - [`Bridge::forward`]: an OS listener whose clients dial into the
//!   network. Each connection a real client (psql, curl) makes to
//!   `127.0.0.1:15432` becomes a dial from host β to `α:5432` (`β:1`,
//!   `β:2`, …), so the network's predictable addresses, traces and faults
//!   include programs that know nothing of lonet.
//!
//! The bridge's hosts are ordinary hosts of the subnetwork (made by the
//! bridge, or ones of the caller's that already exist), so faults set on
//! the network (a partition between β and α, latency) apply to bridged
//! traffic as to any other.
//!
//! Each bridged connection is one task copying both ways, each direction
//! through one buffer and nothing else: a reader that stops reading stops
//! the writer on the far side once the sockets' buffers and that one are
//! full. The buffer starts small (16 KiB) and grows while a direction
//! carries a bulk transfer, up to [`BUFFER`] (1 MiB): fewer, larger reads
//! and writes keep a bridged connection's throughput close to a direct
//! one's, while an idle or chatty connection holds little memory. End of stream one way is passed on as a half-close (the other
//! way stays open); a reset, or any other failure, on one side resets the
//! other; the connection closes when both directions have ended.
//!
//! A forward to a host port the same subnetwork exposes is a dial between
//! two of its hosts: on a subnetwork joined with
//! [`local_pipes`](crate::Builder::local_pipes) (as `lonet bridge` joins)
//! that is an in-memory pipe, so client and server are two TCP connections
//! apart, as through any single proxy; otherwise, and across processes,
//! three.
//!
//! Every connection is logged with `tracing` at info level, and given to
//! the observer of [`Bridge::with_observer`], as an [`Event`]
//! (`bridge: α:1 <- β:1 -> 127.0.0.1:5432`).
//!
//! # Example
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//! use lonet::bridge::Bridge;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! # let tmp = tempfile::tempdir()?;
//! // A real server: an OS echo server.
//! let server = TcpListener::bind("127.0.0.1:0").await?;
//! let server_addr = server.local_addr()?.to_string();
//! tokio::spawn(async move {
//!     while let Ok((mut s, _)) = server.accept().await {
//!         tokio::spawn(async move {
//!             let (mut r, mut w) = s.split();
//!             let _ = tokio::io::copy(&mut r, &mut w).await;
//!         });
//!     }
//! });
//!
//! // Local pipes: β's dial to α, a host of this same process, is an
//! // in-memory pipe rather than a third TCP connection.
//! let net = lonet::Builder::new("bridged")
//!     .root(tmp.path())
//!     .local_pipes(true)
//!     .join()
//!     .await?;
//! let bridge = Bridge::new(&net);
//! // Host α's port 7 is the echo server...
//! let exposed = bridge.expose("α:7", &server_addr).await?;
//! assert_eq!(exposed.local_addr().to_string(), "α:7");
//! // ...and a real client reaches it from host β.
//! let forward = bridge.forward("127.0.0.1:0".parse().unwrap(), "β", "α:7").await?;
//!
//! let mut client = TcpStream::connect(forward.local_addr()).await?; // β:1 -> α:1
//! client.write_all(b"ping").await?;
//! let mut buf = [0; 4];
//! client.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//!
//! drop(client);
//! bridge.shutdown(std::time::Duration::from_secs(5)).await?; // α and β leave the network
//! net.close().await
//! # }
//! ```

mod event;
mod relay;

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use virtnet_core::{Addr, Conn, Host, Listener, ListenerCloser, SubNetwork};

pub use event::{End, Event, Route, Side};

/// The largest buffer of each direction of a bridged connection: the most
/// a bridge holds of one direction's bytes, besides the sockets' buffers.
pub const BUFFER: usize = 1 << 20;

/// How long [`Bridge::shutdown`] waits for cut connections to end (they
/// end at their next poll; this only bounds the wait).
const CUT_LIMIT: Duration = Duration::from_secs(10);

/// How long an OS listener rests after a failed accept (out of file
/// descriptors, say) before it tries again, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What an observer of a bridge's events is.
type Observer = Box<dyn Fn(&Event) + Send + Sync>;

/// Bridges OS TCP and a lonet subnetwork: exposes real servers as host
/// ports ([`expose`](Self::expose)) and lets real clients dial into the
/// network ([`forward`](Self::forward)). See the [module](self) docs.
///
/// Cheap to clone; clones share the bridge. [`shutdown`](Self::shutdown)
/// ends it gracefully; dropping its last handle stops its listeners and
/// resets its open connections at once (the hosts it made then leave the
/// registry in the background, as dropped hosts do).
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

struct Inner {
    subnet: SubNetwork,
    shared: Arc<Shared>,
    state: Mutex<State>,
    /// Set to `true` (or dropped) to reset every open connection.
    cut: watch::Sender<bool>,
}

/// What the bridge holds, changed under one lock so that exposes, forwards
/// and the shutdown never interleave.
struct State {
    /// The hosts the bridge uses, by name; `owned` if it made them.
    hosts: BTreeMap<String, Held>,
    /// The accept loops of the exposes and forwards still listening.
    listeners: Vec<ListenerTask>,
    next_id: u64,
    /// No new expose or forward: the listeners are closing or closed.
    closed: bool,
}

struct Held {
    host: Host,
    owned: bool,
}

struct ListenerTask {
    id: u64,
    task: JoinHandle<()>,
    /// An exposed port's lonet listener, closed at once on close.
    closer: Option<ListenerCloser>,
}

impl ListenerTask {
    /// Stops accepting: the lonet listener refuses dials at once, the task
    /// (and with it an OS listener) is dropped at its next poll.
    fn abort(&self) {
        if let Some(closer) = &self.closer {
            closer.close();
        }
        self.task.abort();
    }
}

/// What the accept loops and connection tasks share (never the bridge
/// itself, so dropping its handles drops it).
struct Shared {
    observer: Option<Observer>,
    /// The number of connections open (being connected or bridged).
    open: watch::Sender<usize>,
    cut: watch::Receiver<bool>,
}

impl Shared {
    fn emit(&self, event: Event) {
        tracing::info!("{event}");
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    /// Completes when connections are to be cut: at the end of a shutdown's
    /// grace, or when the bridge is dropped.
    fn cut(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut cut = self.cut.clone();
        async move {
            // An error: the bridge is gone, which cuts too.
            let _ = cut.wait_for(|cut| *cut).await;
        }
    }

    /// Counts a connection as open until the guard drops.
    fn track(self: &Arc<Self>) -> Open {
        self.open.send_modify(|n| *n += 1);
        Open(self.clone())
    }
}

/// An open connection, counted while this lives.
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n -= 1);
    }
}

impl Bridge {
    /// A bridge on `subnet`, with nothing exposed or forwarded yet.
    pub fn new(subnet: &SubNetwork) -> Bridge {
        Bridge::make(subnet, None)
    }

    /// A bridge on `subnet` that also gives every [`Event`] to `observer`
    /// (called on the connection's task: keep it short, never block).
    pub fn with_observer(
        subnet: &SubNetwork,
        observer: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Bridge {
        Bridge::make(subnet, Some(Box::new(observer)))
    }

    fn make(subnet: &SubNetwork, observer: Option<Observer>) -> Bridge {
        let (cut, cut_rx) = watch::channel(false);
        let (open, _) = watch::channel(0);
        Bridge {
            inner: Arc::new(Inner {
                subnet: subnet.clone(),
                shared: Arc::new(Shared {
                    observer,
                    open,
                    cut: cut_rx,
                }),
                state: Mutex::new(State {
                    hosts: BTreeMap::new(),
                    listeners: Vec::new(),
                    next_id: 0,
                    closed: false,
                }),
                cut,
            }),
        }
    }

    /// The subnetwork the bridge's hosts are on.
    pub fn subnetwork(&self) -> &SubNetwork {
        &self.inner.subnet
    }

    /// Exposes the real server at `to` (`IP:PORT` or `NAME:PORT`, resolved
    /// now) as `addr` (`α:5432`; port 0: the host's lowest free port): the
    /// host listens there, and each connection it accepts is connected to
    /// the server and bridged. One the server refuses (or that cannot reach
    /// it) is reset, and logged.
    ///
    /// The host is the subnetwork's host of that name if it has one, else
    /// the bridge makes it (and [`shutdown`](Self::shutdown) closes it).
    /// Fails with [`io::ErrorKind::InvalidInput`] for an address that does
    /// not parse or names no host, or a `to` that does not resolve; and as
    /// `new_host` and `listen` fail (a name another process holds, a port
    /// in use), each error naming the expose.
    pub async fn expose(&self, addr: &str, to: &str) -> io::Result<Exposed> {
        let fail = |e: io::Error| context(format!("bridge expose {addr} to {to}"), e);
        let laddr = self.parse(addr).map_err(fail)?;
        let targets: Arc<[SocketAddr]> = resolve(to).await.map_err(fail)?.into();
        let mut state = self.inner.state.lock().await;
        state.check_open().map_err(fail)?;
        let (host, made) = self.host(&mut state, laddr.host()).await.map_err(fail)?;
        let listener = match host.listen(addr).await {
            Ok(listener) => listener,
            Err(e) => {
                if made {
                    // Made for nothing: it leaves the network again.
                    state.hosts.remove(laddr.host());
                    let _ = host.close().await;
                }
                return Err(fail(e));
            }
        };
        let local = listener.local_addr().clone();
        let closer = listener.closer();
        let task = tokio::spawn(accept_exposed(
            self.inner.shared.clone(),
            listener,
            targets.clone(),
        ));
        let id = state.add(task, Some(closer));
        tracing::info!("bridge: exposing {local} -> {to}");
        Ok(Exposed {
            bridge: Arc::downgrade(&self.inner),
            id,
            local,
            targets,
        })
    }

    /// Forwards OS connections into the network: listens on `listen` (port
    /// 0: a free port; see [`Forwarded::local_addr`]), and makes each
    /// connection accepted there a dial from host `from` to `to` (`α:5432`),
    /// bridged once the dial connects. A dial that fails (no such host,
    /// refused, unreachable) resets the OS connection, and is logged; one
    /// across a partition waits for the heal, as every dial does.
    ///
    /// The host `from` is the subnetwork's host of that name if it has one,
    /// else the bridge makes it (and [`shutdown`](Self::shutdown) closes
    /// it). Fails with [`io::ErrorKind::InvalidInput`] for a `to` that does
    /// not parse; as binding `listen` fails (address in use); and as
    /// `new_host` fails; each error naming the forward.
    pub async fn forward(&self, listen: SocketAddr, from: &str, to: &str) -> io::Result<Forwarded> {
        let fail =
            |e: io::Error| context(format!("bridge forward {listen} from {from} to {to}"), e);
        Addr::parse(self.inner.subnet.network().to_owned(), to).map_err(|e| fail(e.into()))?;
        let mut state = self.inner.state.lock().await;
        state.check_open().map_err(fail)?;
        let listener = TcpListener::bind(listen).await.map_err(fail)?;
        let local = listener.local_addr().map_err(fail)?;
        let (host, _) = self.host(&mut state, from).await.map_err(fail)?;
        let task = tokio::spawn(accept_forwarded(
            self.inner.shared.clone(),
            listener,
            host,
            to.into(),
        ));
        let id = state.add(task, None);
        tracing::info!("bridge: forwarding {local} -> {from} -> {to}");
        Ok(Forwarded {
            bridge: Arc::downgrade(&self.inner),
            id,
            local,
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    /// The number of connections open: being connected or bridged.
    pub fn open_connections(&self) -> usize {
        *self.inner.shared.open.borrow()
    }

    /// Stops accepting: closes every exposed port and OS listener (dials
    /// to the ports are refused, OS clients' connections too) before it
    /// returns; open connections go on. Later exposes and forwards fail.
    /// The first step of [`shutdown`](Self::shutdown).
    pub async fn close_listeners(&self) {
        let listeners = {
            let mut state = self.inner.state.lock().await;
            state.closed = true;
            std::mem::take(&mut state.listeners)
        };
        stop(listeners).await;
    }

    /// Shuts the bridge down: closes its listeners at once
    /// ([`close_listeners`](Self::close_listeners)), lets open connections
    /// finish for at most `grace`, resets those still open, then closes
    /// the hosts it made (they leave the network and its registry). Hosts
    /// it found already made are left open. Idempotent; fails only if
    /// closing a host does (the first such error).
    pub async fn shutdown(&self, grace: Duration) -> io::Result<()> {
        self.close_listeners().await;
        let mut open = self.inner.shared.open.subscribe();
        let _ = tokio::time::timeout(grace, open.wait_for(|n| *n == 0)).await;
        self.inner.cut.send_replace(true);
        let _ = tokio::time::timeout(CUT_LIMIT, open.wait_for(|n| *n == 0)).await;
        let hosts = std::mem::take(&mut self.inner.state.lock().await.hosts);
        let mut result = Ok(());
        for held in hosts.into_values().filter(|held| held.owned) {
            let closed = held.host.close().await;
            if result.is_ok() {
                result = closed;
            }
        }
        result
    }

    /// `addr` parsed in this network; it must name a host.
    fn parse(&self, addr: &str) -> io::Result<Addr> {
        let parsed = Addr::parse(self.inner.subnet.network().to_owned(), addr)?;
        if parsed.host().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("address {addr}: no host"),
            ));
        }
        Ok(parsed)
    }

    /// The host `name`: the bridge's, else the subnetwork's, else a new one
    /// (then `true`).
    async fn host(&self, state: &mut State, name: &str) -> io::Result<(Host, bool)> {
        if let Some(held) = state.hosts.get(name) {
            if !held.host.is_closed() {
                return Ok((held.host.clone(), false));
            }
        }
        let (host, owned) = match self.inner.subnet.host(name) {
            Some(host) => (host, false),
            None => (self.inner.subnet.new_host(name).await?, true),
        };
        state.hosts.insert(
            name.to_owned(),
            Held {
                host: host.clone(),
                owned,
            },
        );
        Ok((host, owned))
    }
}

impl State {
    fn check_open(&self) -> io::Result<()> {
        if self.closed {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the bridge is shut down",
            ));
        }
        Ok(())
    }

    /// Keeps an accept loop; its id.
    fn add(&mut self, task: JoinHandle<()>, closer: Option<ListenerCloser>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.listeners.push(ListenerTask { id, task, closer });
        id
    }
}

/// Stops accept loops and waits until they are gone (and their listeners
/// closed).
async fn stop(listeners: Vec<ListenerTask>) {
    for listener in &listeners {
        listener.abort();
    }
    for listener in listeners {
        let _ = listener.task.await;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for listener in &self.state.get_mut().listeners {
            listener.abort();
        }
        // Dropping `cut` then resets the open connections.
    }
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("network", &self.inner.subnet.network())
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

/// Closes the listener of an expose or forward.
async fn close_one(bridge: &Weak<Inner>, id: u64) {
    let Some(inner) = bridge.upgrade() else {
        return;
    };
    let listener = {
        let mut state = inner.state.lock().await;
        let at = state.listeners.iter().position(|l| l.id == id);
        at.map(|at| state.listeners.swap_remove(at))
    };
    stop(listener.into_iter().collect()).await;
}

/// A real server exposed as a host's port ([`Bridge::expose`]).
#[derive(Clone, Debug)]
pub struct Exposed {
    bridge: Weak<Inner>,
    id: u64,
    local: Addr,
    targets: Arc<[SocketAddr]>,
}

impl Exposed {
    /// The exposed address (`α:5432`).
    pub fn local_addr(&self) -> &Addr {
        &self.local
    }

    /// The real server's addresses, tried in order for each connection.
    pub fn targets(&self) -> &[SocketAddr] {
        &self.targets
    }

    /// Stops exposing: dials to the port are refused from now on (open
    /// connections go on). Idempotent.
    pub async fn close(&self) {
        close_one(&self.bridge, self.id).await;
    }
}

/// An OS listener whose connections dial into the network
/// ([`Bridge::forward`]).
#[derive(Clone, Debug)]
pub struct Forwarded {
    bridge: Weak<Inner>,
    id: u64,
    local: SocketAddr,
    from: String,
    to: String,
}

impl Forwarded {
    /// The OS address it listens on (the port chosen, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The host that dials.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// The address dialed.
    pub fn to(&self) -> &str {
        &self.to
    }

    /// Stops forwarding: the OS listener is closed when this returns (open
    /// connections go on). Idempotent.
    pub async fn close(&self) {
        close_one(&self.bridge, self.id).await;
    }
}

/// `to`'s OS addresses, at least one.
async fn resolve(to: &str) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(to).await?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{to} resolves to no address"),
        ));
    }
    Ok(addrs)
}

/// Accepts an exposed port's connections, each bridged in a task of its
/// own, until the listener closes.
async fn accept_exposed(shared: Arc<Shared>, listener: Listener, targets: Arc<[SocketAddr]>) {
    loop {
        match listener.accept().await {
            Ok(conn) => {
                let open = shared.track();
                tokio::spawn(expose_one(shared.clone(), conn, targets.clone(), open));
            }
            Err(e) => {
                // The listener, its host or the network closed.
                tracing::debug!("bridge: {} stops accepting: {e}", listener.local_addr());
                return;
            }
        }
    }
}

/// Connects an accepted connection to the real server and bridges them.
async fn expose_one(shared: Arc<Shared>, conn: Conn, targets: Arc<[SocketAddr]>, _open: Open) {
    let connected = tokio::select! {
        connected = TcpStream::connect(&targets[..]) => Some(connected),
        () = shared.cut() => None,
    };
    let os = match connected {
        None => return conn.reset(),
        Some(Err(e)) => {
            shared.emit(Event::Failed {
                from: format!("{} <- {}", conn.local_addr(), conn.peer_addr()),
                to: targets[0].to_string(),
                kind: e.kind(),
                error: format!("connect: {e}"),
            });
            return conn.reset();
        }
        Some(Ok(os)) => os,
    };
    let _ = os.set_nodelay(true);
    let route = Route::Exposed {
        local: conn.local_addr().clone(),
        peer: conn.peer_addr().clone(),
        server: os.peer_addr().unwrap_or(targets[0]),
    };
    bridge(&shared, route, conn, os).await;
}

/// Accepts a forward's OS connections, each dialed and bridged in a task
/// of its own, until the bridge stops it.
async fn accept_forwarded(shared: Arc<Shared>, listener: TcpListener, host: Host, to: Arc<str>) {
    loop {
        match listener.accept().await {
            Ok((os, client)) => {
                let open = shared.track();
                tokio::spawn(forward_one(
                    shared.clone(),
                    host.clone(),
                    to.clone(),
                    os,
                    client,
                    open,
                ));
            }
            Err(e) => {
                // Transient (a connection aborted before it was taken, out
                // of file descriptors): try again shortly.
                let at = listener.local_addr().map(|a| a.to_string());
                tracing::warn!("bridge: accept on {}: {e}", at.unwrap_or_default());
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Dials into the network for an OS connection and bridges them.
async fn forward_one(
    shared: Arc<Shared>,
    host: Host,
    to: Arc<str>,
    os: TcpStream,
    client: SocketAddr,
    _open: Open,
) {
    let _ = os.set_nodelay(true);
    let dialed = tokio::select! {
        dialed = host.dial(&to) => Some(dialed),
        () = shared.cut() => None,
    };
    let conn = match dialed {
        None => return relay::reset_os(os),
        Some(Err(e)) => {
            shared.emit(Event::Failed {
                from: format!("{client} -> {}", host.name()),
                to: to.to_string(),
                kind: e.kind(),
                error: e.to_string(),
            });
            return relay::reset_os(os);
        }
        Some(Ok(conn)) => conn,
    };
    let route = Route::Forwarded {
        client,
        local: conn.local_addr().clone(),
        peer: conn.peer_addr().clone(),
    };
    bridge(&shared, route, conn, os).await;
}

/// Bridges a connected pair, saying so when it starts and ends.
async fn bridge(shared: &Shared, route: Route, conn: Conn, os: TcpStream) {
    shared.emit(Event::Opened {
        route: route.clone(),
    });
    let (end, carried) = relay::relay(conn, os, shared.cut()).await;
    shared.emit(Event::Closed {
        route,
        end,
        inward: carried.inward,
        outward: carried.outward,
    });
}

/// An error saying what it was doing: `<what>: <error>`, of the error's
/// kind, its source the error (so [`virtnet_core::VirtError::of`] finds
/// the cause).
fn context(what: String, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), Context { what, error })
}

#[derive(Debug)]
struct Context {
    what: String,
    error: io::Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.error)
    }
}

impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.error)
    }
}
