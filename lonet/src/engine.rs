//! lonet's engine: one OS listener per subnetwork serves all its hosts; a
//! dial is a loopback TCP connection that starts with the handshake.
//!
//! Dial side (here): [`LonetEngine::dial`] connects, sends the request and
//! checks the reply; or, with local pipes on and a host of this very
//! subnetwork dialed, hands it an in-memory pipe instead
//! ([`virtnet_core::pipe::dial`], no OS socket). Accept side
//! ([`crate::acceptor`]): the request line is read, the connection goes to
//! the core's [`Inbox`], and the listener's accept later writes the
//! `connected` reply.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use virtnet_core::engine::{async_trait, AcceptDriver, Dialed, Engine, Inbox, Liveness};
use virtnet_core::{Addr, InvalidHostName, VirtError};

use crate::acceptor::{Acceptor, Driver};
use crate::handshake::{self, ReplyError};
use crate::transport::TcpTransport;

/// The longest reply line a dialer reads.
const MAX_REPLY: usize = 4096;

pub(crate) struct LonetEngine {
    /// The full network name (`lonetmynet`).
    network: Arc<str>,
    acceptor: Arc<Acceptor>,
    /// How long a dial waits for the acceptor's reply (connecting included).
    handshake_timeout: Duration,
    /// The acceptor's serve loop.
    serve: Mutex<Option<JoinHandle<()>>>,
    /// Whether the processes at these OS addresses shape what they
    /// receive, as far as asked.
    shapers: Mutex<HashMap<String, bool>>,
    /// This subnetwork's hosts' registry data: the OS address peers dial
    /// for them (`127.0.0.1:PORT`, or the announced address).
    own_data: String,
    /// With local pipes on: where dials to this subnetwork's own hosts are
    /// delivered, and the pipes' capacity.
    local: Option<(Inbox, usize)>,
}

impl LonetEngine {
    /// Starts serving `listener`. Must be called within a tokio runtime.
    /// `local_pipes`: the capacity of the pipes that connect this
    /// subnetwork's hosts to each other, or `None` for loopback TCP.
    pub(crate) fn start(
        listener: TcpListener,
        os_addr: SocketAddr,
        network: Arc<str>,
        inbox: Inbox,
        handshake_timeout: Duration,
        local_pipes: Option<usize>,
    ) -> LonetEngine {
        let local = local_pipes.map(|capacity| (inbox.clone(), capacity));
        let (acceptor, serve) =
            Acceptor::start(listener, inbox, network.clone(), handshake_timeout);
        LonetEngine {
            network,
            own_data: os_addr.to_string(),
            acceptor,
            handshake_timeout,
            serve: Mutex::new(Some(tokio::spawn(serve))),
            shapers: Mutex::default(),
            local,
        }
    }

    /// The error of a dial to `dst_data` that got no answer in time.
    fn no_reply(&self, dst_data: &str) -> io::Error {
        let e = io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no reply to the dial request within {:?} (the handshake deadline)",
                self.handshake_timeout
            ),
        );
        io::Error::new(e.kind(), LoconnectError::new(dst_data, e))
    }
}

#[async_trait]
impl Engine for LonetEngine {
    /// Refuses a name whose dial requests could pass the acceptor's line
    /// limit: the longest, between two hosts of this name at the highest
    /// ports, must fit.
    async fn new_host(&self, host: &str) -> io::Result<String> {
        let widest = Addr::new(self.network.clone(), host, u32::MAX);
        if handshake::request_line(&self.network, &widest, &widest).len() > handshake::MAX_REQUEST {
            return Err(InvalidHostName::new(
                host,
                "too long: a dial request naming it would pass the handshake's 1024-byte line limit",
            )
            .into());
        }
        Ok(self.own_data.clone())
    }

    /// Asks the process at `data` ([`peer_shapes`]), once per process:
    /// the answer is kept. When it cannot tell, `true` (and asks again
    /// next time).
    async fn peer_shapes(&self, data: &str) -> bool {
        if data == self.own_data {
            return true;
        }
        if let Some(known) = lock(&self.shapers).get(data) {
            return *known;
        }
        match peer_shapes(&self.network, data, self.handshake_timeout).await {
            Some(shapes) => {
                lock(&self.shapers).insert(data.to_owned(), shapes);
                shapes
            }
            None => true,
        }
    }

    async fn dial(&self, src: &Addr, dst: &Addr, dst_data: &str) -> io::Result<Dialed> {
        if let Some((inbox, capacity)) = &self.local {
            if dst_data == self.own_data {
                // What this subnetwork's acceptor would do with the request,
                // without the OS: deliver, and wait (as long as a dialer
                // waits for its reply) for the accept.
                let dial = virtnet_core::pipe::dial(inbox, src, dst, *capacity);
                return tokio::time::timeout(self.handshake_timeout, dial)
                    .await
                    .map_err(|_| self.no_reply(dst_data))?;
            }
        }
        let loconnect = |e: io::Error| io::Error::new(e.kind(), LoconnectError::new(dst_data, e));
        // The OS refused: no process serves that address any more. Typed as
        // a refusal, but not one the host's subnetwork answered (so the
        // core asks the registry whether the host moved).
        let os_error = |e: io::Error| match e.kind() {
            io::ErrorKind::ConnectionRefused => loconnect(VirtError::ConnRefused.into()),
            _ => loconnect(e),
        };
        let os_addr: SocketAddr = dst_data.parse().map_err(|_| {
            loconnect(io::Error::new(
                io::ErrorKind::InvalidData,
                "registry entry is not an OS address",
            ))
        })?;
        let request = handshake::request_line(&self.network, src, dst);
        let exchange = async {
            let mut stream = connect_and_send(os_addr, &request).await?;
            let line = handshake::read_line(&mut stream, MAX_REPLY).await?;
            Ok::<_, io::Error>((stream, line))
        };
        let (stream, line) = tokio::time::timeout(self.handshake_timeout, exchange)
            .await
            .map_err(|_| self.no_reply(dst_data))?
            .map_err(os_error)?;
        match handshake::parse_reply(&line, &self.network, dst) {
            Ok(peer) => Ok(Dialed {
                transport: Box::new(TcpTransport::new(stream)),
                peer,
            }),
            Err(ReplyError::Refused) => Err(VirtError::ConnRefused.into()),
            // The acceptor applied a fault set while this dial was on its
            // way (this side checks before it dials).
            Err(ReplyError::Remote(text)) if text == VirtError::HostUnreach.as_str() => {
                Err(VirtError::HostUnreach.into())
            }
            Err(e) => Err(loconnect(io::Error::new(io::ErrorKind::InvalidData, e))),
        }
    }

    async fn probe(&self, host: &str, data: &str) -> Liveness {
        probe(&self.network, host, data, self.handshake_timeout).await
    }

    fn accept_driver(&self) -> Option<Box<dyn AcceptDriver>> {
        Some(Box::new(Driver::new(self.acceptor.clone())))
    }

    async fn close(&self) -> io::Result<()> {
        self.acceptor.close();
        let serve = self
            .serve
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(serve) = serve {
            serve.abort();
            let _ = serve.await;
        }
        Ok(())
    }
}

impl Drop for LonetEngine {
    fn drop(&mut self) {
        self.acceptor.close();
        if let Some(serve) = self
            .serve
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            serve.abort();
        }
    }
}

/// Whether host `host` of network `network` (the full name, `lonetmynet`),
/// which the registry maps to the OS address `data`, is still served there.
///
/// It asks that address, over the handshake, for `host:0` (a port nothing
/// listens on). Proof of death ([`Liveness::Dead`]): the OS refuses the
/// connection, or a lonet acceptor answers that it has no such host or
/// belongs to another network. A live host answers "connection refused"
/// ([`Liveness::Alive`]); anything else, or no answer within `timeout`,
/// proves nothing ([`Liveness::Unknown`], with why). Works against the
/// reference implementation's processes too.
pub async fn probe(network: &str, host: &str, data: &str, timeout: Duration) -> Liveness {
    let Ok(os_addr) = data.parse::<SocketAddr>() else {
        return Liveness::Unknown(format!("its registry entry {data:?} is not an OS address"));
    };
    let probe = Addr::new(network, host, 0);
    let request = handshake::request_line(network, &probe, &probe);
    let exchange = async {
        let mut stream = connect_and_send(os_addr, &request).await?;
        handshake::read_line(&mut stream, MAX_REPLY).await
    };
    let line = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return Liveness::Unknown(format!("{data} did not answer within {timeout:?}")),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => return Liveness::Dead,
        Ok(Err(e)) => return Liveness::Unknown(format!("{data}: {e}")),
        Ok(Ok(line)) => line,
    };
    match handshake::parse_reply(&line, network, &probe) {
        Err(ReplyError::Refused) | Ok(_) => Liveness::Alive,
        Err(ReplyError::NetworkMismatch { .. }) => Liveness::Dead,
        Err(ReplyError::Remote(text)) if text.ends_with("no such host") => Liveness::Dead,
        Err(e) => Liveness::Unknown(format!("{data} answered: {e}")),
    }
}

/// Whether the lonet process at OS address `data`, of network `network`
/// (the full name), shapes the bytes it receives by the network's faults:
/// `Some(true)` for a Rust process (this crate), `Some(false)` for one that
/// answers the handshake but does not (the reference Go/Python lonet);
/// `None` if that cannot be told within `timeout` (no answer, refused, not
/// an OS address).
///
/// It dials the reserved host [`handshake::SHAPES_HOST`] there: an
/// ordinary dial of an unknown host, which a reference acceptor refuses as
/// it refuses any, and a Rust acceptor answers with [`handshake::SHAPES`].
pub async fn peer_shapes(network: &str, data: &str, timeout: Duration) -> Option<bool> {
    let os_addr = data.parse::<SocketAddr>().ok()?;
    let ask = Addr::new(network, handshake::SHAPES_HOST, 0);
    let request = handshake::request_line(network, &ask, &ask);
    let exchange = async {
        let mut stream = connect_and_send(os_addr, &request).await?;
        handshake::read_line(&mut stream, MAX_REPLY).await
    };
    let line = tokio::time::timeout(timeout, exchange).await.ok()?.ok()?;
    match handshake::parse_reply(&line, network, &ask) {
        Err(ReplyError::Remote(text)) => Some(text == handshake::SHAPES),
        Err(ReplyError::Refused) => Some(false),
        _ => None,
    }
}

/// Connects to `os_addr` and sends `request`.
///
/// On loopback the connection is usually up by the time `connect` returns,
/// so the request goes out at once: it is then already there when the
/// acceptor accepts, which can take it without waiting. Otherwise (or for
/// what did not fit) it waits for the connection as usual.
async fn connect_and_send(os_addr: SocketAddr, request: &[u8]) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(os_addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&os_addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    let sent = match socket.send(request) {
        Ok(sent) => sent,
        // Not connected yet.
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock
                || e.raw_os_error() == Some(rustix::io::Errno::NOTCONN.raw_os_error()) =>
        {
            0
        }
        Err(e) => return Err(e),
    };
    let mut stream = TcpStream::from_std(socket.into())?;
    if let Some(rest) = request.get(sent..).filter(|rest| !rest.is_empty()) {
        stream.writable().await?;
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        stream.write_all(rest).await?;
    }
    Ok(stream)
}

/// A failed dial below the virtual network: `loconnect <os address>: <cause>`.
///
/// The operating system's own words become the error kind's
/// (`connection refused`, not `Connection refused (os error 111)`); a
/// refusal is [`VirtError::ConnRefused`] ([`VirtError::of`] finds it).
#[derive(Debug)]
pub struct LoconnectError {
    os_addr: String,
    cause: io::Error,
}

impl LoconnectError {
    fn new(os_addr: &str, cause: io::Error) -> LoconnectError {
        let cause = match cause.raw_os_error() {
            Some(_) => io::Error::from(cause.kind()),
            None => cause,
        };
        LoconnectError {
            os_addr: os_addr.to_owned(),
            cause,
        }
    }

    /// The OS address that was dialed.
    pub fn os_addr(&self) -> &str {
        &self.os_addr
    }

    /// What went wrong there.
    pub fn cause(&self) -> &io::Error {
        &self.cause
    }
}

impl std::fmt::Display for LoconnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loconnect {}: {}", self.os_addr, self.cause)
    }
}

impl std::error::Error for LoconnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
