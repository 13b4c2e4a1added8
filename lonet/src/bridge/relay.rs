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

use super::{End, Side, BUFFER};

/// The bytes each direction carried: from the OS side into the network,
/// and out of it to the OS side.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Carried {
    pub(crate) inward: u64,
    pub(crate) outward: u64,
}

/// Copies `conn` ↔ `os`, each direction through a buffer of at most
/// [`BUFFER`] bytes, until both directions end, one side fails, or
/// `cut` completes, and closes both:
/// - end of stream on one side is passed on as a half-close
///   (`shutdown` of the other side's write half) and the other direction
///   goes on;
/// - an error on one side (a reset among them) resets the other side;
/// - `cut` resets both.
pub(crate) async fn relay(
    mut conn: Conn,
    mut os: TcpStream,
    cut: impl Future<Output = ()>,
) -> (End, Carried) {
    let mut inward = Pump::new(BUFFER);
    let mut outward = Pump::new(BUFFER);
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

/// One direction of a copy: reads into the free end of the buffer and
/// writes from its start, both as far as each side lets it, and on end of
/// stream shuts the writer's write half. The buffer starts at
/// [`START`] bytes and doubles, up to its limit, each time a read fills
/// all the room there is (a bulk transfer: fewer, larger reads and writes
/// are what keeps a bridged connection close to a direct one).
struct Pump {
    buf: Vec<u8>,
    limit: usize,
    pos: usize,
    end: usize,
    eof: bool,
    done: bool,
    unflushed: bool,
    bytes: u64,
}

/// The buffer a direction starts with.
pub(crate) const START: usize = 16 * 1024;

impl Pump {
    fn new(limit: usize) -> Pump {
        let limit = limit.max(1);
        Pump {
            buf: vec![0; START.min(limit)],
            limit,
            pos: 0,
            end: 0,
            eof: false,
            done: false,
            unflushed: false,
            bytes: 0,
        }
    }

    /// After a read that filled the buffer to its end: more room, if the
    /// limit allows.
    fn grow(&mut self) {
        if self.buf.len() < self.limit {
            let size = (self.buf.len() * 2).min(self.limit);
            self.buf.resize(size, 0);
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
            let mut moved = false;
            if !self.eof && self.end < self.buf.len() {
                let mut read = ReadBuf::new(&mut self.buf[self.end..]);
                match Pin::new(&mut *r).poll_read(cx, &mut read) {
                    Poll::Pending => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Fail::Read(e))),
                    Poll::Ready(Ok(())) => {
                        let n = read.filled().len();
                        if n == 0 {
                            self.eof = true;
                        } else {
                            self.end += n;
                            if self.pos == 0 && self.end == self.buf.len() {
                                self.grow();
                            }
                        }
                        moved = true;
                    }
                }
            }
            if self.pos < self.end {
                match Pin::new(&mut *w).poll_write(cx, &self.buf[self.pos..self.end]) {
                    Poll::Pending => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Fail::Write(e))),
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(Fail::Write(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(n)) => {
                        self.pos += n;
                        self.bytes += n as u64;
                        self.unflushed = true;
                        if self.pos == self.end {
                            (self.pos, self.end) = (0, 0);
                        }
                        moved = true;
                    }
                }
            }
            if self.eof && self.pos == self.end {
                ready!(Pin::new(&mut *w).poll_shutdown(cx)).map_err(Fail::Write)?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            if !moved {
                if self.unflushed && self.pos == self.end {
                    ready!(Pin::new(&mut *w).poll_flush(cx)).map_err(Fail::Write)?;
                    self.unflushed = false;
                }
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// Runs `pump` from `r` to `w` until it ends or fails.
    async fn run(pump: &mut Pump, r: &mut DuplexStream, w: &mut DuplexStream) -> io::Result<()> {
        std::future::poll_fn(|cx| pump.poll(cx, r, w))
            .await
            .map_err(|fail| match fail {
                Fail::Read(e) | Fail::Write(e) => e,
            })
    }

    #[tokio::test]
    async fn a_bulk_transfer_grows_the_buffer_to_its_limit_and_arrives_intact() {
        // All 4 MiB are waiting before the pump starts, and the writer side
        // takes them all: every read fills the room there is.
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let (mut source, mut r) = duplex(data.len());
        let (mut w, mut sink) = duplex(data.len());
        source.write_all(&data).await.unwrap();
        source.shutdown().await.unwrap();
        let mut pump = Pump::new(1 << 20);
        run(&mut pump, &mut r, &mut w).await.expect("copied");
        drop(w);
        let mut got = Vec::new();
        sink.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "the bytes changed on the way");
        assert!(pump.done);
        assert_eq!(pump.bytes, data.len() as u64);
        assert_eq!(
            pump.buf.len(),
            1 << 20,
            "the buffer did not grow to its limit"
        );
    }

    #[tokio::test]
    async fn small_exchanges_keep_the_buffer_small() {
        let (mut client, mut r) = duplex(1024);
        let (mut w, mut server) = duplex(1024);
        let mut pump = Pump::new(1 << 20);
        let copy = async {
            run(&mut pump, &mut r, &mut w).await.expect("copied");
            drop(w);
        };
        let talk = async {
            let mut buf = [0; 100];
            for _ in 0..1000 {
                client.write_all(&[7; 100]).await.unwrap();
                server.read_exact(&mut buf).await.unwrap();
            }
            client.shutdown().await.unwrap();
            assert_eq!(server.read(&mut buf).await.unwrap(), 0, "end of stream");
        };
        tokio::join!(copy, talk);
        assert_eq!(pump.bytes, 100_000);
        assert_eq!(pump.buf.len(), START, "the buffer grew for small messages");
    }

    #[tokio::test]
    async fn a_stalled_writer_stops_the_pump_with_at_most_its_limit_held() {
        let limit = 64 * 1024;
        let (mut source, mut r) = duplex(1 << 20);
        // The writer side takes 1 KiB and is never read.
        let (mut w, _sink) = duplex(1024);
        source.write_all(&vec![1; 1 << 20]).await.unwrap();
        let mut pump = Pump::new(limit);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(
            pump.poll(&mut cx, &mut r, &mut w).is_pending(),
            "the pump went on with nobody reading"
        );
        assert_eq!(pump.bytes, 1024, "only what the writer took left the pump");
        let held = (pump.end - pump.pos) as u64;
        assert!(
            held > 0 && pump.buf.len() <= limit,
            "holds {held} in {}",
            pump.buf.len()
        );
        // The rest stayed with the source: backpressure.
        drop(source);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len() as u64 + held + 1024, 1 << 20);
    }
}
