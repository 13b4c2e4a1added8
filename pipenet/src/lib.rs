//! pipenet: a virtual TCP network inside one process, made of in-memory pipes.
//!
//! Hosts have names (`α`, `β`) and predictable ports: every host counts its
//! ports from 1 and always takes the lowest free one, for dials, accepts and
//! `listen(":0")` alike. No OS sockets are used. For several OS processes on
//! one network, use lonet instead; both implement
//! [`Networker`].
//!
//! - [`Network`]: a pipenet network (`pipe<name>`) with its hosts. Start here.
//! - [`RamRegistry`]: the in-memory host registry it uses.
//! - [`virtnet_core::pipe`]: the connection pipe. It is *buffered*, like TCP: a write
//!   returns once its bytes are in the pipe's buffer (up to
//!   [`Builder::pipe_capacity`], default 256 KiB per direction), without waiting
//!   for the reader. The buffer grows with traffic and is freed when drained.
//!
//! Everything else (hosts, ports, listeners, errors) is
//! [`virtnet_core`]'s; what a user needs of it is re-exported here, so
//! depending on `pipenet` alone is enough.
//!
//! # Example
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let net = pipenet::Network::new("demo");
//! let alpha = net.new_host("α").await?;
//! let beta = net.new_host("β").await?;
//!
//! let l = alpha.listen("").await?; // the lowest free port: α:1
//! assert_eq!(l.local_addr().to_string(), "α:1");
//!
//! let (mut c, mut s) = tokio::try_join!(beta.dial("α:1"), l.accept())?;
//! assert_eq!((c.local_addr().to_string(), c.peer_addr().to_string()), ("β:1".into(), "α:2".into()));
//!
//! c.write_all(b"ping").await?;
//! let mut buf = [0; 4];
//! s.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//!
//! let err = beta.dial("α:7").await.unwrap_err();
//! assert_eq!(err.to_string(), "dial pipedemo β:2->α:7: connection refused");
//! # net.close().await
//! # }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod engine;
mod registry;

use std::io;
use std::sync::Arc;

pub use registry::RamRegistry;
pub use virtnet_core::{
    fault, integrations, tcp, trace, Addr, AddrError, Conn, Fault, Faults, Host, InvalidHostName,
    Links, Listener, ListenerCloser, Networker, OpError, Registry, RegistryCause, RegistryError,
    SubNetwork, VirtError,
};

/// The default buffer size of each direction of a connection: 256 KiB, big
/// enough for a stream and small enough to stay in the CPU cache
/// (measurements in BENCHMARKS.md).
pub const DEFAULT_PIPE_CAPACITY: usize = virtnet_core::pipe::DEFAULT_CAPACITY;

/// A pipenet network: named hosts in this process, connected by in-memory pipes.
///
/// Cheap to clone; clones are the same network.
#[derive(Clone, Debug)]
pub struct Network {
    subnet: SubNetwork,
}

impl Network {
    /// A new network named `pipe<name>`, with default settings.
    pub fn new(name: &str) -> Network {
        Network::builder(name).build()
    }

    /// Settings for a new network named `pipe<name>`.
    pub fn builder(name: &str) -> Builder {
        Builder {
            name: name.to_owned(),
            capacity: DEFAULT_PIPE_CAPACITY,
            registry: None,
        }
    }

    /// The full name of the network (`pipe<name>`).
    pub fn name(&self) -> &str {
        self.subnet.network()
    }

    /// Creates host `name` (see [`SubNetwork::new_host`]); fails with
    /// "host already registered" if it exists.
    pub async fn new_host(&self, name: &str) -> io::Result<Host> {
        self.subnet.new_host(name).await
    }

    /// The host `name`, if it exists and is not closed.
    pub fn host(&self, name: &str) -> Option<Host> {
        self.subnet.host(name)
    }

    /// The hosts, sorted by name.
    pub fn hosts(&self) -> Vec<Host> {
        self.subnet.hosts()
    }

    /// Whether the network is closed.
    pub fn is_closed(&self) -> bool {
        self.subnet.is_closed()
    }

    /// The network's faults (see [`Faults`]): partitions, latency,
    /// bandwidth and resets between its hosts, timed by tokio's clock.
    pub fn faults(&self) -> Faults {
        self.subnet.faults()
    }

    /// The network as a virtnet [`SubNetwork`] (pipenet has exactly one).
    pub fn subnetwork(&self) -> &SubNetwork {
        &self.subnet
    }

    /// Closes the network: every host and connection goes down.
    pub async fn close(&self) -> io::Result<()> {
        self.subnet.close().await
    }
}

/// Settings for a [`Network`].
pub struct Builder {
    name: String,
    capacity: usize,
    registry: Option<Arc<dyn Registry>>,
}

impl Builder {
    /// How many bytes each direction of a connection buffers before a writer
    /// waits for the reader (default [`DEFAULT_PIPE_CAPACITY`]; at least 1).
    pub fn pipe_capacity(mut self, bytes: usize) -> Builder {
        self.capacity = bytes;
        self
    }

    /// Uses `registry` instead of a fresh [`RamRegistry`].
    pub fn registry(mut self, registry: Arc<dyn Registry>) -> Builder {
        self.registry = Some(registry);
        self
    }

    /// Builds the network.
    pub fn build(self) -> Network {
        let network = format!("pipe{}", self.name);
        let registry = self
            .registry
            .unwrap_or_else(|| Arc::new(RamRegistry::new(&network)));
        let capacity = self.capacity;
        Network {
            subnet: SubNetwork::new(network, registry, |inbox| engine::PipeEngine {
                inbox,
                capacity,
            }),
        }
    }
}

impl From<Network> for SubNetwork {
    fn from(net: Network) -> SubNetwork {
        net.subnet
    }
}
