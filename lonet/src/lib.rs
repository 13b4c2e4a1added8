//! lonet: a virtnet network spread over several OS processes.
//!
//! Hosts have names and predictable ports, as on pipenet, but each process
//! holds its own hosts (its *subnetwork*) and they all find each other through
//! a registry: by default a SQLite file at `<tmp>/lonet/<network>/registry.db`.
//! A connection is a TCP connection (over loopback, by default) that starts
//! with a one-line text handshake and then carries the application's bytes
//! directly. The files and the handshake are those of the reference
//! Go/Python lonet, so a Rust process can share a network with them.
//!
//! Beyond one machine: with a PostgreSQL registry ([`RegistryUrl`],
//! `LONET_REGISTRY=postgres://…`) and each process's OS listener on an
//! address the others reach ([`Builder::bind`], [`Builder::announce`],
//! `LONET_BIND`, `LONET_ANNOUNCE`), one network spans machines, containers
//! and network namespaces.
//!
//! - [`join`] / [`Builder`]: join (or create) a network; you get a virtnet
//!   [`SubNetwork`]. Start here.
//! - [`bridge`]: real programs on the network: a real server exposed as a
//!   host's port, real clients dialing in from a host (`lonet bridge`).
//! - [`RegistryUrl`] and the `LONET_*` variables: which registry, which
//!   address (`location.rs`).
//! - [`handshake`]: the wire protocol, with the spec's lines quoted.
//! - [`quote`]: Go's `%q` quoting, which the handshake uses.
//! - [`dirs`]: where networks live on disk, and the checks made there.
//! - `engine.rs` / `acceptor.rs` / `transport.rs`: the engine and dial, the
//!   accept side (the OS listener and the acceptor's half of the
//!   handshake), and the data path (the TCP stream itself).
//!
//! Hosts, ports, listeners and errors are [`virtnet_core`]'s; what a user
//! needs of it is re-exported here, so depending on `lonet` alone is
//! enough.
//!
//! A task waiting in `Listener::accept` takes arriving OS connections in
//! itself, which saves a hand-off between tasks per dial; otherwise a
//! background task does. An accept future that is kept but not polled
//! leaves the subnetwork's other arrivals waiting until the background task
//! notices, within 10 ms; drop it or keep polling it.
//!
//! # Crashes and bounds
//! - **Names of dead hosts.** A process that dies without closing leaves
//!   its hosts in the registry. When `new_host` finds its name taken, it
//!   [`probe`]s the registered address over the handshake; only on proof of
//!   death (the OS refuses the connection, or the lonet process there has
//!   no such host or is another network's) does it take the name over, with
//!   a compare-and-swap in the registry, so of two processes taking it over
//!   at once exactly one wins. A live holder, or one that does not answer
//!   within the handshake deadline, keeps its name: `new_host` fails with
//!   "host already registered" (and, when it could not tell, why).
//! - **Every handshake wait ends at the deadline**
//!   ([`Builder::handshake_timeout`], 10 s by default): the acceptor's wait
//!   for a request line, a dial's connect and wait for its reply (then
//!   [`std::io::ErrorKind::TimedOut`]), and a refused dialer that keeps its
//!   connection open (at most 64 KiB more is read from it).
//! - **Every listener has a backlog** (`Listener::set_backlog`, 4096 by
//!   default): past it, dials are refused as by a full SYN queue, after
//!   dials whose dialers gave up are dropped from the queue.
//! - **Files.** The registry file and its `-wal`/`-shm` companions must be
//!   regular files of this user (never symbolic links); a database is
//!   adopted only if it is empty or exactly the `lonet.1` layout, checked
//!   before anything is written; a root others can write to needs the
//!   sticky bit ([`dirs`]).
//!
//! # Example
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! # let tmp = tempfile::tempdir()?;
//! // Any process that joins "mynet" is on the same network.
//! let net = lonet::Builder::new("mynet").root(tmp.path()).join().await?;
//! assert_eq!(net.network(), "lonetmynet");
//! let alpha = net.new_host("α").await?;
//! let beta = net.new_host("β").await?;
//!
//! let l = alpha.listen(":10").await?;
//! let (mut c, mut s) = tokio::try_join!(beta.dial("α:10"), l.accept())?;
//! assert_eq!(c.local_addr().to_string(), "β:1");
//! assert_eq!(s.local_addr().to_string(), "α:1");
//! c.write_all(b"ping").await?;
//! let mut buf = [0; 4];
//! s.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//! net.close().await
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acceptor;
pub mod bridge;
pub mod dirs;
mod engine;
pub mod handshake;
mod location;
pub use virtnet_core::quote;
mod transport;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use registry_sqlite::SqliteRegistry;

pub use engine::{peer_shapes, probe, LoconnectError};
pub use location::{parse_os_addr, RegistryUrl, ENV_ANNOUNCE, ENV_BIND, ENV_REGISTRY};
pub use virtnet_core::engine::Liveness;
pub use virtnet_core::{
    fault, integrations, tcp, trace, Addr, AddrError, Conn, Fault, Faults, Host, InvalidHostName,
    Links, Listener, ListenerCloser, Networker, OpError, Registry, RegistryCause, RegistryError,
    SubNetwork, VirtError,
};

/// The handshake deadline by default (see [`Builder::handshake_timeout`]).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Joins network `lonet<name>` (creating it if needed) under the default
/// root `$TMPDIR/lonet`; an empty `name` creates a fresh network with a
/// random unique name. Returns this process's subnetwork of it.
pub async fn join(name: &str) -> io::Result<SubNetwork> {
    Builder::new(name).join().await
}

/// Settings for joining a lonet network.
///
/// What the code does not set comes from the environment: the registry
/// from [`ENV_REGISTRY`] (`LONET_REGISTRY`), the OS listener's address from
/// [`ENV_BIND`] (`LONET_BIND`), the address peers dial from
/// [`ENV_ANNOUNCE`] (`LONET_ANNOUNCE`); with none of them, a SQLite file
/// under `$TMPDIR/lonet` and a listener on `127.0.0.1`.
pub struct Builder {
    name: String,
    location: Option<RegistryUrl>,
    registry: Option<Arc<dyn Registry>>,
    bind: Option<SocketAddr>,
    announce: Option<SocketAddr>,
    handshake_timeout: Duration,
    lock_limit: Duration,
    local_pipes: bool,
}

impl Builder {
    /// Settings to join network `lonet<name>` (empty: a fresh network).
    pub fn new(name: &str) -> Builder {
        Builder {
            name: name.to_owned(),
            location: None,
            registry: None,
            bind: None,
            announce: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            lock_limit: registry_sqlite::DEFAULT_LOCK_LIMIT,
            local_pipes: false,
        }
    }

    /// Keeps networks in SQLite files under `root` instead of
    /// `$TMPDIR/lonet` (the same as `registry_url(RegistryUrl::Sqlite(Some(root)))`).
    pub fn root(mut self, root: impl AsRef<Path>) -> Builder {
        self.location = Some(RegistryUrl::Sqlite(Some(root.as_ref().to_owned())));
        self
    }

    /// Finds hosts through the registry at `url`: a PostgreSQL database
    /// (`postgres://…`, shared by processes on any machine that reaches
    /// it) or SQLite files under a root (`sqlite:[DIR]`). See
    /// [`RegistryUrl`].
    pub fn registry_url(mut self, url: RegistryUrl) -> Builder {
        self.location = Some(url);
        self
    }

    /// Finds hosts through `registry` instead of the SQLite file; then no
    /// directory is made, and an empty name gets a random one.
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> Builder {
        self.registry = Some(registry);
        self
    }

    /// Binds this process's OS listener, where every one of its hosts is
    /// served, to `addr` (default `127.0.0.1:0`: loopback, a free port).
    /// Bind to an interface other machines or network namespaces reach
    /// (or to `0.0.0.0` with an [`announce`](Builder::announce) address)
    /// to share a network beyond one machine. Port 0 picks a free port.
    pub fn bind(mut self, addr: SocketAddr) -> Builder {
        self.bind = Some(addr);
        self
    }

    /// The OS address peers are told to dial for this process's hosts,
    /// when it is not the one bound (behind NAT, a container's published
    /// port, a listener on `0.0.0.0`). Port 0 means the port bound. The
    /// wire format is unchanged: peers, the reference Go/Python lonet
    /// among them, just dial this address.
    pub fn announce(mut self, addr: SocketAddr) -> Builder {
        self.announce = Some(addr);
        self
    }

    /// The handshake deadline (default [`DEFAULT_HANDSHAKE_TIMEOUT`]): how
    /// long an acceptor waits for a dialer's request line before it drops
    /// the OS connection, how long a refused dialer may keep the
    /// connection open, and how long a dial waits to connect and get its
    /// reply before it fails with [`std::io::ErrorKind::TimedOut`].
    pub fn handshake_timeout(mut self, timeout: Duration) -> Builder {
        self.handshake_timeout = timeout;
        self
    }

    /// Connects this subnetwork's hosts to each other through in-memory
    /// pipes, as pipenet does, instead of loopback TCP (default: off).
    ///
    /// Addresses, accept order, traces, faults and errors are the same
    /// either way; other processes see no difference (they never see these
    /// connections). What changes: no OS socket or file descriptor per
    /// connection, no handshake bytes, and bytes move with one copy each
    /// way instead of through the kernel's TCP stack, which makes such
    /// connections several times cheaper. A [`bridge::Bridge`] whose
    /// forwards dial hosts it also exposes carries each connection over
    /// two TCP connections instead of three this way (`lonet bridge` turns
    /// it on). Dials to hosts of other processes are unchanged.
    pub fn local_pipes(mut self, on: bool) -> Builder {
        self.local_pipes = on;
        self
    }

    /// How long joining waits for another process's lock on the registry
    /// file (saying so every few seconds) before it fails with "registry
    /// is down" (default [`registry_sqlite::DEFAULT_LOCK_LIMIT`], 2
    /// minutes).
    pub fn registry_lock_limit(mut self, limit: Duration) -> Builder {
        self.lock_limit = limit;
        self
    }

    /// Joins the network: opens (or creates) its registry, and starts this
    /// process's OS listener. Must run within a tokio runtime.
    pub async fn join(self) -> io::Result<SubNetwork> {
        let bind = match self.bind {
            Some(addr) => addr,
            None => location::os_addr_from_env(ENV_BIND)?
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        };
        let announce = match self.announce {
            Some(addr) => Some(addr),
            None => location::os_addr_from_env(ENV_ANNOUNCE)?,
        };
        // Checked before the registry is touched: an address no peer can
        // dial must not be announced.
        if bind.ip().is_unspecified() && announce.is_none() {
            location::announced(bind, None)?;
        }
        let fresh = |name: String| if name.is_empty() { random_name() } else { name };
        let (name, registry): (String, Arc<dyn Registry>) = match self.registry {
            Some(registry) => (fresh(self.name), registry),
            None => {
                let location = match self.location {
                    Some(location) => location,
                    None => RegistryUrl::from_env()?.unwrap_or(RegistryUrl::Sqlite(None)),
                };
                match location {
                    RegistryUrl::Postgres(url) => {
                        let name = fresh(self.name);
                        dirs::check_name(&name)?;
                        let registry =
                            registry_postgres::PostgresRegistry::connect(&url, &name).await?;
                        (name, Arc::new(registry))
                    }
                    RegistryUrl::Sqlite(root) => {
                        let root = root.unwrap_or_else(dirs::default_root);
                        let (name, dir) = if self.name.is_empty() {
                            dirs::new_network_dir(&root)?
                        } else {
                            let dir = dirs::network_dir(&root, &self.name)?;
                            (self.name, dir)
                        };
                        let file = dir.join(dirs::REGISTRY_FILE);
                        let registry =
                            SqliteRegistry::open_with_lock_limit(file, &name, self.lock_limit)
                                .await?;
                        (name, Arc::new(registry))
                    }
                }
            }
        };
        let listener = os_listener(bind)?;
        let bound = listener.local_addr()?;
        let os_addr = location::announced(bound, announce)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let network: Arc<str> = format!("lonet{name}").into();
        let timeout = self.handshake_timeout;
        let local_pipes = self
            .local_pipes
            .then_some(virtnet_core::pipe::DEFAULT_CAPACITY);
        Ok(SubNetwork::new(network.clone(), registry, move |inbox| {
            engine::LonetEngine::start(listener, os_addr, network, inbox, timeout, local_pipes)
        }))
    }
}

/// How many connections the OS listener queues before they are taken off
/// it; the kernel caps it at `net.core.somaxconn` (4096 by default). Deep
/// enough for a burst of dials: a connection that a full queue drops makes
/// its dialer wait for TCP's retransmission, about a second.
const OS_BACKLOG: i32 = 4096;

/// The subnetwork's OS listener: non-blocking, bound to `addr`.
fn os_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    if addr.port() != 0 {
        // A fixed port is taken again at once after a restart.
        socket.set_reuse_address(true)?;
    }
    socket
        .bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind lonet listener to {addr}: {e}")))?;
    socket.listen(OS_BACKLOG)?;
    Ok(socket.into())
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("location", &self.location)
            .field(
                "registry",
                &self.registry.as_ref().map(|r| r.name().to_owned()),
            )
            .field("bind", &self.bind)
            .field("announce", &self.announce)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("local_pipes", &self.local_pipes)
            .field("lock_limit", &self.lock_limit)
            .finish()
    }
}

fn random_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() % 10_000_000_000).to_string()
}
