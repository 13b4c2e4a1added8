//! The operating system's TCP network behind the [`Networker`] trait (what
//! go123 calls `xnet.NetPlain("tcp")`), so that code written against
//! `Arc<dyn Networker>` runs on pipenet, lonet and real TCP unchanged.
//!
//! Addresses are the OS's: `127.0.0.1:8080`, `[::1]:80`, `localhost:80`. Ports
//! are the OS's too, so not predictable, and an accepted connection shares
//! its listener's port, as in TCP. An empty host (`":80"`, `""`) means the
//! networker's own IP ([`TcpNetworker::ip`], loopback by default).
//!
//! ```
//! use std::sync::Arc;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use virtnet_core::{tcp::TcpNetworker, Networker};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let net: Arc<dyn Networker> = Arc::new(TcpNetworker::new());
//! let l = net.listen("").await?; // 127.0.0.1, a port the OS picks
//! let addr = l.local_addr().to_string();
//! let (mut c, mut s) = tokio::try_join!(net.dial(&addr), l.accept())?;
//! assert_eq!(c.local_addr(), s.peer_addr());
//! c.write_all(b"ping").await?;
//! let mut buf = [0; 4];
//! s.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"ping");
//! # Ok(()) }
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::net::{TcpListener, TcpStream};

use crate::networker::ListenSocket;
use crate::{lock, Addr, Conn, Listener, Networker, OpError, VirtError};

/// The network name of TCP addresses and errors (`dial tcp 127.0.0.1:80: …`).
pub const NETWORK: &str = "tcp";

/// The OS's TCP network, as a [`Networker`]. Cheap to clone.
///
/// Errors carry a [`VirtError`] where one applies: a refused dial is
/// [`VirtError::ConnRefused`], a port in use [`VirtError::AddrInUse`], an
/// address not of this machine [`VirtError::AddrNoListen`], a host name that
/// does not resolve [`VirtError::NoHost`].
#[derive(Clone, Debug)]
pub struct TcpNetworker {
    ip: IpAddr,
    name: Arc<str>,
}

impl Default for TcpNetworker {
    fn default() -> TcpNetworker {
        TcpNetworker::new()
    }
}

impl TcpNetworker {
    /// The OS network, seen from the loopback address `127.0.0.1`.
    pub fn new() -> TcpNetworker {
        TcpNetworker::on(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// The OS network, seen from `ip`: an empty host in `dial` and `listen`
    /// means `ip`, and it is the networker's [`name`](Networker::name).
    pub fn on(ip: IpAddr) -> TcpNetworker {
        TcpNetworker {
            ip,
            name: ip.to_string().into(),
        }
    }

    /// The IP an empty host stands for.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Parses `addr` (`host:port`, port at most 65535); an empty host is
    /// this networker's IP.
    fn parse(&self, addr: &str) -> io::Result<(String, u16)> {
        let a = Addr::parse(NETWORK, addr)?;
        let port = u16::try_from(a.port()).map_err(|_| {
            io::Error::from(crate::AddrError::new(
                addr,
                crate::AddrErrorKind::InvalidPort,
            ))
        })?;
        let host = match a.host() {
            "" => self.ip.to_string(),
            host => host.to_owned(),
        };
        Ok((host, port))
    }
}

/// An OS socket address as a virtnet address of network `tcp`.
fn addr_of(a: SocketAddr) -> Addr {
    Addr::new(NETWORK, a.ip().to_string(), u32::from(a.port()))
}

/// The canonical failure for an OS error, where one applies; the OS's
/// error otherwise.
fn canonical(e: io::Error) -> io::Error {
    let virt = match e.kind() {
        io::ErrorKind::ConnectionRefused => VirtError::ConnRefused,
        io::ErrorKind::AddrInUse => VirtError::AddrInUse,
        io::ErrorKind::AddrNotAvailable => VirtError::AddrNoListen,
        _ => return e,
    };
    virt.into()
}

fn op_error(op: &'static str, dst: &str, cause: io::Error) -> io::Error {
    OpError::new(op, NETWORK).dst_text(dst).cause(cause).into()
}

#[async_trait]
impl Networker for TcpNetworker {
    fn network(&self) -> &str {
        NETWORK
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn dial(&self, addr: &str) -> io::Result<Conn> {
        let (host, port) = self.parse(addr).map_err(|e| op_error("dial", addr, e))?;
        let targets: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| op_error("dial", addr, VirtError::NoHost.into()))?
            .collect();
        let mut last = io::Error::from(VirtError::NoHost);
        for target in targets {
            match TcpStream::connect(target).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let local = addr_of(stream.local_addr()?);
                    let peer = addr_of(stream.peer_addr()?);
                    return Ok(Conn::new(stream, local, peer));
                }
                Err(e) => last = canonical(e),
            }
        }
        Err(op_error("dial", addr, last))
    }

    async fn listen(&self, laddr: &str) -> io::Result<Listener> {
        let laddr = if laddr.is_empty() { ":0" } else { laddr };
        let (host, port) = self
            .parse(laddr)
            .map_err(|e| op_error("listen", laddr, e))?;
        let listener = TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|e| op_error("listen", laddr, canonical(e)))?;
        let local = addr_of(listener.local_addr()?);
        Ok(Listener::new(
            local.clone(),
            TcpSocket {
                local,
                listener: Mutex::new(Some(listener)),
            },
        ))
    }

    /// The OS network has no access point to close: this does nothing.
    /// Close (or drop) listeners and connections themselves.
    async fn close(&self) -> io::Result<()> {
        Ok(())
    }
}

/// An OS listener behind a [`Listener`].
struct TcpSocket {
    local: Addr,
    /// `None` once closed: the OS port is free again.
    listener: Mutex<Option<TcpListener>>,
}

impl ListenSocket for TcpSocket {
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Conn>> {
        let listener = lock(&self.listener);
        let Some(listener) = listener.as_ref() else {
            return Poll::Pending;
        };
        let accepted = match listener.poll_accept(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(accepted) => accepted,
        };
        let conn = accepted.and_then(|(stream, peer)| {
            stream.set_nodelay(true)?;
            let local = addr_of(stream.local_addr()?);
            Ok(Conn::new(stream, local, addr_of(peer)))
        });
        Poll::Ready(conn.map_err(|e| {
            OpError::new("accept", NETWORK)
                .dst(self.local.clone())
                .cause(e)
                .into()
        }))
    }

    fn close(&self) {
        drop(lock(&self.listener).take());
    }
}
