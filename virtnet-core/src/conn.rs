//! Established connections.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::kernel::PortGuard;
use crate::trace::{Event, Trace};
use crate::{Addr, OpError, VirtError};

use crate::engine::{ShutdownHandle, Transport};

/// A connection between two hosts: tokio [`AsyncRead`] + [`AsyncWrite`].
///
/// `poll_shutdown` (`AsyncWriteExt::shutdown`) is a half-close: the peer
/// reads end of stream and can still write back. Dropping the connection
/// closes it and frees its port. When its host or network goes down, pending
/// and later reads and writes fail with "host is down" / "network is down".
/// Errors of the operating system's sockets read the same on every network
/// (`broken pipe`, `connection reset`), without the OS's error number.
pub struct Conn {
    io: Box<dyn Transport>,
    local: Addr,
    peer: Addr,
    /// The port it holds on a virtual host; `None` for [`Conn::new`].
    port: Option<PortGuard>,
    /// Where writes, shutdown and close are recorded, if traced.
    observer: Option<Trace>,
}

impl Conn {
    /// A connection over any byte stream, for a [`Networker`](crate::Networker)
    /// of your own (the OS network's [`TcpNetworker`](crate::tcp::TcpNetworker)
    /// uses it): `local` is this end's address, `peer` the other's. Errors
    /// of `io` are reported as `<op> <network> <local>-><peer>: <cause>`.
    pub fn new(
        io: impl AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static,
        local: Addr,
        peer: Addr,
    ) -> Conn {
        Conn {
            io: Box::new(Plain(io)),
            local,
            peer,
            port: None,
            observer: None,
        }
    }

    /// A connection on a virtual host's port (already made the
    /// connection's with [`PortGuard::connect`]).
    pub(crate) fn on_port(
        io: Box<dyn Transport>,
        local: Addr,
        peer: Addr,
        port: PortGuard,
    ) -> Conn {
        Conn {
            io,
            local,
            peer,
            port: Some(port),
            observer: None,
        }
    }

    /// Records this connection's writes, shutdown and close into `trace`.
    pub(crate) fn observe(&mut self, trace: Trace) {
        self.observer = Some(trace);
    }

    fn event_write(&self, data: Vec<u8>) -> Event {
        Event::Write {
            local: self.local.clone(),
            peer: self.peer.clone(),
            data,
        }
    }

    /// This end's address (`β:1` for a dialer, `α:2` for an accepted connection).
    pub fn local_addr(&self) -> &Addr {
        &self.local
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> &Addr {
        &self.peer
    }

    fn error(&self, op: &'static str, cause: io::Error) -> io::Error {
        // The OS's own words ("Broken pipe (os error 32)") become the
        // kind's, as an in-memory transport says them.
        let cause = match cause.raw_os_error() {
            Some(_) => io::Error::from(cause.kind()),
            None => cause,
        };
        OpError::new(op, self.local.network_arc().clone())
            .src(self.local.clone())
            .dst(self.peer.clone())
            .cause(cause)
            .into()
    }

    /// Runs one transport poll, turning host/network shutdown into its
    /// canonical error and wrapping transport errors.
    fn guarded<T>(
        &mut self,
        op: &'static str,
        poll: impl FnOnce(Pin<&mut dyn Transport>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if let Some(reason) = self.is_down() {
            return Poll::Ready(Err(self.down_error(op, reason)));
        }
        match poll(Pin::new(&mut *self.io)) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => Poll::Ready(match self.is_down() {
                // The transport was aborted because the host went down.
                Some(reason) => Err(self.down_error(op, reason)),
                None => result.map_err(|e| self.error(op, e)),
            }),
        }
    }

    fn is_down(&self) -> Option<VirtError> {
        self.port.as_ref().and_then(PortGuard::is_down)
    }

    fn down_error(&self, op: &'static str, reason: VirtError) -> io::Error {
        self.error(op, reason.into())
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().guarded("read", |io| io.poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(trace) = this.observer.clone() else {
            return this.guarded("write", |io| io.poll_write(cx, buf));
        };
        let network = this.local.network_arc().clone();
        trace.around(&network, || {
            let written = this.guarded("write", |io| io.poll_write(cx, buf));
            let event = match written {
                Poll::Ready(Ok(n @ 1..)) => Some(this.event_write(buf[..n].to_vec())),
                _ => None,
            };
            (written, event)
        })
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(trace) = this.observer.clone() else {
            return this.guarded("write", |io| io.poll_write_vectored(cx, bufs));
        };
        let network = this.local.network_arc().clone();
        trace.around(&network, || {
            let written = this.guarded("write", |io| io.poll_write_vectored(cx, bufs));
            let event = match written {
                Poll::Ready(Ok(n @ 1..)) => {
                    let data = bufs
                        .iter()
                        .flat_map(|b| b.iter().copied())
                        .take(n)
                        .collect();
                    Some(this.event_write(data))
                }
                _ => None,
            };
            (written, event)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guarded("write", |io| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(trace) = this.observer.clone() else {
            return this.guarded("shutdown", |io| io.poll_shutdown(cx));
        };
        let network = this.local.network_arc().clone();
        trace.around(&network, || {
            let done = this.guarded("shutdown", |io| io.poll_shutdown(cx));
            let event = match done {
                Poll::Ready(Ok(())) => Some(Event::Shutdown {
                    local: this.local.clone(),
                    peer: this.peer.clone(),
                }),
                _ => None,
            };
            (done, event)
        })
    }
}

/// Records the close before the transport closes (the fields drop after
/// this), so the peer cannot record seeing it first.
impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(trace) = &self.observer {
            let (local, peer) = (self.local.clone(), self.peer.clone());
            trace.record(self.local.network(), Event::Close { local, peer });
        }
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish()
    }
}

/// A byte stream given to [`Conn::new`], as a transport; nothing shuts it
/// from outside.
struct Plain<T>(T);

impl<T: AsyncRead + Unpin> AsyncRead for Plain<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Plain<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Transport for Plain<T> {
    fn shutdown_handle(&self) -> ShutdownHandle {
        Box::new(|| {})
    }
}
