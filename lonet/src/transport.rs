//! The data path: after the handshake, a lonet connection is the OS TCP
//! connection itself.
//!
//! The stream is shared (`Arc`) with the shutdown handle the core keeps in the
//! host's socket table, so that closing the host can shut the socket down
//! from outside while a read or write is pending. Reads and writes go straight
//! to the socket: no task, channel or copy in between.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use virtnet_core::engine::{ShutdownHandle, Transport};

/// One end of an established lonet connection.
pub(crate) struct TcpTransport(Arc<TcpStream>);

impl TcpTransport {
    pub(crate) fn new(stream: TcpStream) -> TcpTransport {
        TcpTransport(Arc::new(stream))
    }

    /// The transport of a stream shared (for a while) with a watch.
    pub(crate) fn shared(stream: Arc<TcpStream>) -> TcpTransport {
        TcpTransport(stream)
    }
}

impl AsyncRead for TcpTransport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read_buf(buf) {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// A write to a stream that others share (by `&`).
fn poll_write_shared(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match stream.try_write(data) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// A half-close of a stream that others share.
fn shutdown_write(stream: &TcpStream) -> Poll<io::Result<()>> {
    Poll::Ready(SockRef::from(stream).shutdown(std::net::Shutdown::Write))
}

impl AsyncWrite for TcpTransport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_shared(&self.0, cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        shutdown_write(&self.0)
    }
}

/// A second writer on a connection's stream, for the core's task that
/// sends for a peer that does not shape (see `Transport::writer`).
struct SharedWriter(Arc<TcpStream>);

impl AsyncWrite for SharedWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_shared(&self.0, cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        shutdown_write(&self.0)
    }
}

impl Transport for TcpTransport {
    fn writer(&self) -> Option<Box<dyn AsyncWrite + Send + Sync + Unpin>> {
        Some(Box::new(SharedWriter(self.0.clone())))
    }

    fn shutdown_handle(&self) -> ShutdownHandle {
        let stream = self.0.clone();
        Box::new(move || {
            // Wakes pending reads (end of stream) and writes (broken pipe);
            // the peer sees end of stream. It fails only if the socket is
            // already disconnected, which is what we want anyway.
            let _ = SockRef::from(&*stream).shutdown(std::net::Shutdown::Both);
        })
    }

    /// A zero linger time: the OS sends an RST when the socket closes,
    /// which is when the connection (this transport, its shutdown handle,
    /// a fault's sending task) is dropped.
    fn reset(&mut self) {
        if SockRef::from(&*self.0)
            .set_linger(Some(std::time::Duration::ZERO))
            .is_err()
        {
            // Already disconnected: nothing to reset; shut it all the same.
            let _ = SockRef::from(&*self.0).shutdown(std::net::Shutdown::Both);
        }
    }
}
