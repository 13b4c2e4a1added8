//! lonet's engine: one OS listener per subnetwork serves all its hosts; a
//! dial is a loopback TCP connection that starts with the handshake.
//!
//! Accept side: [`serve`] accepts OS connections; a request line that has
//! already arrived is taken and checked at once, a slower one in a task of
//! its own (bounded by the handshake deadline); then the connection goes to
//! the core's [`Inbox`], and the listener's accept later writes the
//! `connected` reply ([`TcpIncoming::accept`]). Dial side:
//! [`LonetEngine::dial`] connects, sends the request and checks the reply.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use virtnet_core::{
    async_trait, Addr, Dialed, Engine, Inbox, Incoming, Transport, Undelivered, VirtError,
};

use crate::handshake::{self, ReplyError, RequestError};
use crate::transport::TcpTransport;

/// The longest reply line a dialer reads.
const MAX_REPLY: usize = 4096;

pub(crate) struct LonetEngine {
    /// The full network name (`lonetmynet`).
    network: Arc<str>,
    /// Where this subnetwork's OS listener accepts (`127.0.0.1:PORT`).
    os_addr: SocketAddr,
    serve: Mutex<Option<JoinHandle<()>>>,
}

impl LonetEngine {
    /// Starts serving `listener`. Must be called within a tokio runtime.
    pub(crate) fn start(
        listener: TcpListener,
        os_addr: SocketAddr,
        network: Arc<str>,
        inbox: Inbox,
        handshake_timeout: Duration,
    ) -> LonetEngine {
        let serve = tokio::spawn(serve(listener, inbox, network.clone(), handshake_timeout));
        LonetEngine {
            network,
            os_addr,
            serve: Mutex::new(Some(serve)),
        }
    }
}

#[async_trait]
impl Engine for LonetEngine {
    async fn new_host(&self, _host: &str) -> io::Result<String> {
        Ok(self.os_addr.to_string())
    }

    async fn dial(&self, src: &Addr, dst: &Addr, dst_data: &str) -> io::Result<Dialed> {
        let loconnect = |e: io::Error| io::Error::new(e.kind(), LoconnectError::new(dst_data, e));
        let os_addr: SocketAddr = dst_data.parse().map_err(|_| {
            loconnect(io::Error::new(
                io::ErrorKind::InvalidData,
                "registry entry is not an OS address",
            ))
        })?;
        let mut stream = TcpStream::connect(os_addr).await.map_err(loconnect)?;
        stream.set_nodelay(true).map_err(loconnect)?;
        stream
            .write_all(&handshake::request_line(&self.network, src, dst))
            .await
            .map_err(loconnect)?;
        let line = handshake::read_line(&mut stream, MAX_REPLY)
            .await
            .map_err(loconnect)?;
        match handshake::parse_reply(&line, &self.network, dst) {
            Ok(peer) => Ok(Dialed {
                transport: Box::new(TcpTransport::new(stream)),
                peer,
            }),
            Err(ReplyError::Refused) => Err(VirtError::ConnRefused.into()),
            Err(e) => Err(loconnect(io::Error::new(io::ErrorKind::InvalidData, e))),
        }
    }

    async fn close(&self) -> io::Result<()> {
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

/// A failed dial below the virtual network: `loconnect <os address>: <cause>`.
#[derive(Debug)]
pub struct LoconnectError {
    os_addr: String,
    cause: io::Error,
}

impl LoconnectError {
    fn new(os_addr: &str, cause: io::Error) -> LoconnectError {
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

/// Accepts OS connections until aborted. A request line that is already
/// there when the connection is accepted (the usual case on loopback: the
/// dialer writes it right after connecting) is handled at once, without a
/// task; otherwise the handshake runs in a task of its own (bounded by the
/// handshake deadline), so a silent peer holds up nothing else. Aborting this
/// task closes the listener and aborts every unfinished handshake.
async fn serve(
    listener: TcpListener,
    inbox: Inbox,
    network: Arc<str>,
    handshake_timeout: Duration,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let stream = match request_now(stream) {
                        Ok((stream, line)) => {
                            if let Some((stream, reply)) = dispatch(stream, &line, &inbox, &network) {
                                handshakes.spawn(refuse_and_close(stream, reply));
                            }
                            continue;
                        }
                        Err(stream) => stream,
                    };
                    let (inbox, network) = (inbox.clone(), network.clone());
                    handshakes.spawn(async move {
                        let peer = stream.peer_addr().ok();
                        if tokio::time::timeout(handshake_timeout, handshake(stream, &inbox, &network)).await.is_err() {
                            tracing::warn!(%network, ?peer, "lonet: handshake timed out; connection dropped");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: say so, and give
                    // the system a moment instead of spinning.
                    tracing::warn!(%network, error = %e, "lonet: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
        }
    }
}

/// Takes the request line off a freshly accepted connection if all of it
/// has arrived already (never reading past its `\n`); gives the connection
/// back otherwise, for [`handshake`] to wait for it.
fn request_now(stream: TcpStream) -> Result<(TcpStream, Vec<u8>), TcpStream> {
    match take_line_now(&SockRef::from(&stream)) {
        Some(line) => Ok((stream, line)),
        None => Err(stream),
    }
}

/// The request line if all of it is in `sock`'s receive queue already.
fn take_line_now(sock: &SockRef<'_>) -> Option<Vec<u8>> {
    let mut peek = [MaybeUninit::<u8>::uninit(); handshake::MAX_REQUEST];
    let n = sock.peek(&mut peek).ok()?;
    // SAFETY: `peek` initialized the first `n` bytes.
    let peeked =
        unsafe { std::slice::from_raw_parts(peek.as_ptr().cast::<u8>(), n.min(peek.len())) };
    let end = peeked.iter().position(|&b| b == b'\n')?;
    let mut line = vec![MaybeUninit::<u8>::uninit(); end + 1];
    // The peeked bytes are in the socket: this takes exactly them. Getting
    // fewer cannot happen; the line would be lost, and an empty one is
    // refused as an invalid request.
    match sock.recv(&mut line) {
        // SAFETY: `recv` initialized all of `line`.
        Ok(got) if got == line.len() => Some(
            line.into_iter()
                .map(|b| unsafe { b.assume_init() })
                .collect(),
        ),
        _ => Some(Vec::new()),
    }
}

/// The acceptor's half of the handshake for one OS connection whose request
/// line has not fully arrived yet.
async fn handshake(mut stream: TcpStream, inbox: &Inbox, network: &str) {
    let line = match handshake::read_line(&mut stream, handshake::MAX_REQUEST).await {
        Ok(line) => line,
        Err(e) => match RequestError::from_read_error(&e) {
            Some(overlong) => {
                let peer = stream.peer_addr().ok();
                tracing::warn!(%network, ?peer, "lonet: {overlong}");
                refuse_and_close(stream, overlong.reply_line(network)).await;
                return;
            }
            None => {
                let peer = stream.peer_addr().ok();
                tracing::warn!(%network, ?peer, error = %e, "lonet: handshake: reading the request failed");
                return;
            }
        },
    };
    if let Some((stream, reply)) = dispatch(stream, &line, inbox, network) {
        refuse_and_close(stream, reply).await;
    }
}

/// Acts on a request line: hands the connection to the core (which accepts
/// or refuses it), or, for a bad request, returns the error reply to send.
fn dispatch(
    stream: TcpStream,
    line: &[u8],
    inbox: &Inbox,
    network: &str,
) -> Option<(TcpStream, Vec<u8>)> {
    let (src, dst) = match handshake::parse_request(line, network) {
        Ok(addrs) => addrs,
        Err(e) => {
            let peer = stream.peer_addr().ok();
            tracing::warn!(%network, ?peer, "lonet: {e}");
            return Some((stream, e.reply_line(network)));
        }
    };
    let incoming = Box::new(TcpIncoming {
        stream,
        network: network.into(),
        dst: dst.clone(),
    });
    if let Err(Undelivered { reason, incoming }) = inbox.deliver(src, &dst, incoming) {
        if reason == VirtError::NoHost {
            tracing::warn!(%network, "lonet: address {dst}: no such host");
        }
        incoming.refuse(reason);
    }
    None
}

/// Sends an error reply and closes, reading what the dialer still sends (up
/// to a limit) so that closing with unread bytes does not reset the
/// connection and destroy the reply.
async fn refuse_and_close(mut stream: TcpStream, reply: Vec<u8>) {
    use tokio::io::AsyncReadExt;
    if stream.write_all(&reply).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0; 4096];
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// A handshaken OS connection waiting in a listener's queue.
struct TcpIncoming {
    stream: TcpStream,
    network: Arc<str>,
    dst: Addr,
}

impl TcpIncoming {
    /// Sends `line` at once, without waiting: the socket is fresh, so its
    /// send buffer has room for a reply line.
    fn send_now(&self, line: &[u8]) -> io::Result<()> {
        let sent = SockRef::from(&self.stream).send(line)?;
        if sent != line.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "handshake reply did not fit the send buffer",
            ));
        }
        Ok(())
    }
}

impl Incoming for TcpIncoming {
    fn accept(self: Box<Self>, local: &Addr) -> io::Result<Box<dyn Transport>> {
        self.send_now(&handshake::connected_line(&self.network, local))?;
        Ok(Box::new(TcpTransport::new(self.stream)))
    }

    fn refuse(self: Box<Self>, reason: VirtError) {
        let text = match reason {
            VirtError::NoHost => format!("address {}: no such host", self.dst),
            other => other.as_str().to_owned(),
        };
        let _ = self.send_now(&handshake::error_line(&self.network, &text));
    }

    fn is_abandoned(&self) -> bool {
        // The dialer closed its end (end of stream or reset) while queued.
        let mut probe = [MaybeUninit::<u8>::uninit(); 1];
        match SockRef::from(&self.stream).peek(&mut probe) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }
}
