//! The data path of a bridged connection: one task copies both directions
//! between the lonet [`Conn`] and the OS [`TcpStream`], each through a
//! buffer of its own and nothing else, so a reader that stops reading stops
//! the writer on the other side (backpressure) once the sockets' buffers
//! and these two are full.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use virtnet_core::Conn;

use super::{End, Side};

/// The bytes each direction carried: from the OS side into the network,
/// and out of it to the OS side.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Carried {
    pub(crate) inward: u64,
    pub(crate) outward: u64,
}

/// Copies `conn` ↔ `os` until both directions end, one side fails, or
/// `cut` completes, and closes both:
/// - end of stream on one side is passed on as a half-close
///   (`shutdown` of the other side's write half) and the other direction
///   goes on;
/// - an error on one side (a reset among them) resets the other side;
/// - `cut` resets both.
pub(crate) async fn relay(
    mut conn: Conn,
    mut os: TcpStream,
    buffer: usize,
    cut: impl Future<Output = ()>,
) -> (End, Carried) {
    let mut inward = Pump::new(buffer);
    let mut outward = Pump::new(buffer);
    let copied = {
        let copy = std::future::poll_fn(|cx| {
            if !inward.done {
                match inward.poll(cx, &mut os, &mut conn) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(Fail::Read(e))) => return Poll::Ready(Err((Side::Os, e))),
                    Poll::Ready(Err(Fail::Write(e))) => {
                        return Poll::Ready(Err((Side::Network, e)))
                    }
                    Poll::Pending => {}
                }
            }
            if !outward.done {
                match outward.poll(cx, &mut conn, &mut os) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(Fail::Read(e))) => return Poll::Ready(Err((Side::Network, e))),
                    Poll::Ready(Err(Fail::Write(e))) => return Poll::Ready(Err((Side::Os, e))),
                    Poll::Pending => {}
                }
            }
            if inward.done && outward.done {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        });
        tokio::select! {
            copied = copy => Some(copied),
            () = cut => None,
        }
    };
    let carried = Carried {
        inward: inward.bytes,
        outward: outward.bytes,
    };
    let end = match copied {
        // Both ends of stream were passed on; each socket has been read to
        // its end, so dropping them closes with a FIN, not a reset.
        Some(Ok(())) => End::Closed,
        Some(Err((side, error))) => {
            match side {
                Side::Os => conn.reset(),
                Side::Network => reset_os(os),
            }
            if error.kind() == io::ErrorKind::ConnectionReset {
                End::Reset { by: side }
            } else {
                End::Failed {
                    side,
                    error: error.to_string(),
                }
            }
        }
        None => {
            conn.reset();
            reset_os(os);
            End::Cut
        }
    };
    (end, carried)
}

/// Closes `os` with an RST: a zero linger time, then close.
pub(crate) fn reset_os(os: TcpStream) {
    // Fails only on a socket that is already disconnected: nothing to reset.
    let _ = SockRef::from(&os).set_linger(Some(Duration::ZERO));
    drop(os);
}

/// Which half of a copy failed.
enum Fail {
    Read(io::Error),
    Write(io::Error),
}

/// One direction of a copy: read into the buffer when it is empty, write
/// it all out, and on end of stream shut the writer's write half.
struct Pump {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    done: bool,
    unflushed: bool,
    bytes: u64,
}

impl Pump {
    fn new(size: usize) -> Pump {
        Pump {
            buf: vec![0; size.max(1)].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            done: false,
            unflushed: false,
            bytes: 0,
        }
    }

    /// Copies from `r` to `w` until `r`'s end of stream has been passed
    /// on (`Ready(Ok)`), either fails, or neither can go on now.
    fn poll<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<Result<(), Fail>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.pos == self.end && !self.eof {
                let mut read = ReadBuf::new(&mut self.buf);
                match Pin::new(&mut *r).poll_read(cx, &mut read) {
                    Poll::Pending => {
                        // Nothing more to send for now: push out what was
                        // written (a no-op on sockets, kept for any writer).
                        if self.unflushed {
                            ready!(Pin::new(&mut *w).poll_flush(cx)).map_err(Fail::Write)?;
                            self.unflushed = false;
                        }
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Fail::Read(e))),
                    Poll::Ready(Ok(())) => {
                        let n = read.filled().len();
                        if n == 0 {
                            self.eof = true;
                        } else {
                            (self.pos, self.end) = (0, n);
                        }
                    }
                }
            }
            while self.pos < self.end {
                let n = ready!(Pin::new(&mut *w).poll_write(cx, &self.buf[self.pos..self.end]))
                    .map_err(Fail::Write)?;
                if n == 0 {
                    return Poll::Ready(Err(Fail::Write(io::ErrorKind::WriteZero.into())));
                }
                self.pos += n;
                self.bytes += n as u64;
                self.unflushed = true;
            }
            if self.eof {
                ready!(Pin::new(&mut *w).poll_shutdown(cx)).map_err(Fail::Write)?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}
