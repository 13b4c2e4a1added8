//! For implementers of a network: connections within one process through
//! in-memory pipes, as pipenet makes every connection and lonet makes those
//! between hosts of one subnetwork when asked to.
//!
//! - [`dial`]: an [`Engine::dial`](crate::engine::Engine::dial) that hands
//!   one end of a new pipe to the destination through the subnetwork's
//!   [`Inbox`] and waits for the listener to accept it.
//! - [`pipe`], [`PipeEnd`]: the pipe itself, a [`Transport`].
//!
//! Buffered, like TCP: a write copies into the direction's buffer and returns
//! without waiting for the reader, until `capacity` bytes are waiting; then
//! the writer waits for the reader to drain. One lock per read or write call,
//! never per byte. The buffer is a ring that grows with traffic and is freed
//! as soon as the reader drains it, so an idle connection holds no buffer
//! memory at all.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::task::coop;

use crate::engine::{Dialed, Inbox, PendingConn, Queued, ShutdownHandle, Transport};
use crate::{Addr, VirtError};

/// How many bytes a pipe buffers in each direction by default: 256 KiB, big
/// enough for a stream and small enough to stay in the CPU cache
/// (measurements in BENCHMARKS.md).
pub const DEFAULT_CAPACITY: usize = 256 << 10;

/// A buffer drained to empty keeps its allocation if it is at most this big,
/// so a steady trickle of small messages does not allocate every time.
const KEEP_WHEN_DRAINED: usize = 4 * 1024;

/// A buffer that must grow past `KEEP_WHEN_DRAINED` grows at once to the
/// pipe's capacity, or to this if the capacity is bigger.
const RESERVE_AT_ONCE: usize = 1 << 20;

/// One direction of a pipe.
#[derive(Default)]
struct Half {
    buf: VecDeque<u8>,
    /// No more data will come: the writer shut down or went away.
    eof: bool,
    /// Nobody will read: the reader went away.
    reader_gone: bool,
    /// The other end reset the connection: reading and writing fail.
    reset: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

struct Shared {
    /// `halves[i]` carries data written by end `i`.
    halves: [Mutex<Half>; 2],
    capacity: usize,
}

impl Shared {
    fn half(&self, i: usize) -> MutexGuard<'_, Half> {
        self.halves[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Shuts both directions and wakes everyone; with `reset`, the ends'
    /// reads and writes fail from now on.
    fn abort(&self, reset: bool) {
        for i in 0..2 {
            let mut h = self.half(i);
            h.eof = true;
            h.reader_gone = true;
            h.reset |= reset;
            if reset {
                h.buf = VecDeque::new();
            }
            let (r, w) = (h.reader.take(), h.writer.take());
            drop(h);
            r.into_iter().chain(w).for_each(Waker::wake);
        }
    }
}

/// One end of a pipe: bytes written here are read at the other end.
pub struct PipeEnd {
    shared: Arc<Shared>,
    side: usize,
}

/// A connected pair of pipe ends, each buffering up to `capacity` bytes
/// towards the other.
pub fn pipe(capacity: usize) -> (PipeEnd, PipeEnd) {
    let shared = Arc::new(Shared {
        halves: Default::default(),
        capacity: capacity.max(1),
    });
    (
        PipeEnd {
            shared: shared.clone(),
            side: 0,
        },
        PipeEnd { shared, side: 1 },
    )
}

impl PipeEnd {
    fn inbound(&self) -> MutexGuard<'_, Half> {
        self.shared.half(1 - self.side)
    }

    fn outbound(&self) -> MutexGuard<'_, Half> {
        self.shared.half(self.side)
    }
}

/// Reads and writes take part in tokio's cooperative budget, as
/// `tokio::io::duplex` does: a task that keeps finding data (or room) ready
/// yields now and then, so it cannot starve the others on its thread.
impl AsyncRead for PipeEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let budget = ready!(coop::poll_proceed(cx));
        let read = self.read_ready(cx, buf);
        if read.is_ready() {
            budget.made_progress();
        }
        read
    }
}

impl AsyncWrite for PipeEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let budget = ready!(coop::poll_proceed(cx));
        let written = self.write_ready(cx, data);
        if written.is_ready() {
            budget.made_progress();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut h = self.outbound();
        h.eof = true;
        let reader = h.reader.take();
        drop(h);
        if let Some(r) = reader {
            r.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl PipeEnd {
    /// Reads what the buffer holds, or registers `cx` if it is empty.
    fn read_ready(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut h = self.inbound();
        if h.reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if h.buf.is_empty() {
            if h.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            h.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = h.buf.len().min(buf.remaining());
        let (front, back) = h.buf.as_slices();
        let from_front = n.min(front.len());
        buf.put_slice(&front[..from_front]);
        buf.put_slice(&back[..n - from_front]);
        h.buf.drain(..n);
        if h.buf.is_empty() && h.buf.capacity() > KEEP_WHEN_DRAINED {
            h.buf = VecDeque::new();
        }
        let writer = h.writer.take();
        drop(h);
        if let Some(w) = writer {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what fits, or registers `cx` if the buffer is full.
    fn write_ready(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let capacity = self.shared.capacity;
        let mut h = self.outbound();
        if h.reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if h.reader_gone || h.eof {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = capacity.saturating_sub(h.buf.len());
        if room == 0 {
            h.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        let needed = h.buf.len() + n;
        if needed > h.buf.capacity() {
            // Small messages: doubling, as usual. Anything bigger: straight
            // to `capacity` (up to 1 MiB), so a stream moves its bytes once
            // instead of again at every doubling. The allocator maps such
            // blocks lazily, and a drained buffer is freed.
            let want = if needed <= KEEP_WHEN_DRAINED {
                needed.next_power_of_two()
            } else {
                capacity.min(RESERVE_AT_ONCE)
            };
            let extra = want.max(needed) - h.buf.len();
            h.buf.reserve_exact(extra);
        }
        h.buf.extend(&data[..n]);
        let reader = h.reader.take();
        drop(h);
        if let Some(r) = reader {
            r.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl Transport for PipeEnd {
    fn shutdown_handle(&self) -> ShutdownHandle {
        let shared = self.shared.clone();
        Box::new(move || shared.abort(false))
    }

    /// Both directions fail with "connection reset" from now on, what was
    /// in flight is dropped, and everyone waiting wakes.
    fn reset(&mut self) {
        self.shared.abort(true);
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let reader = {
            let mut out = self.outbound();
            out.eof = true;
            out.reader.take()
        };
        let writer = {
            let mut inb = self.inbound();
            inb.reader_gone = true;
            inb.buf = VecDeque::new();
            inb.writer.take()
        };
        reader.into_iter().chain(writer).for_each(Waker::wake);
    }
}

/// The dialer's answer: the accepted address, or why not.
type Answer = Result<Addr, VirtError>;

/// A pipe end waiting in a listener's queue, with the line back to its
/// dialer.
struct PendingPipe {
    end: PipeEnd,
    answer: oneshot::Sender<Answer>,
}

impl PendingConn for PendingPipe {
    fn accept(self: Box<Self>, local: &Addr) -> io::Result<Box<dyn Transport>> {
        match self.answer.send(Ok(local.clone())) {
            Ok(()) => Ok(Box::new(self.end)),
            Err(_) => Err(io::ErrorKind::ConnectionAborted.into()),
        }
    }

    fn refuse(self: Box<Self>, reason: VirtError) {
        let _ = self.answer.send(Err(reason));
    }

    fn is_abandoned(&self) -> bool {
        self.answer.is_closed()
    }
}

/// Takes a queued connection back when dropped, unless emptied first.
struct WithdrawOnDrop(Option<Queued>);

impl Drop for WithdrawOnDrop {
    fn drop(&mut self) {
        if let Some(queued) = self.0.take() {
            queued.withdraw();
        }
    }
}

/// Connects `src` to `dst`, a host of the subnetwork `inbox` delivers to,
/// through a new pipe of `capacity` bytes each way: delivers one end to
/// `dst`'s listener and waits until it is accepted (the dialer's end and
/// the accepted address) or refused (the reason, as an error).
///
/// Dropping the future takes the connection off the listener's queue, so
/// an accept never yields a connection nobody dialed any more.
pub async fn dial(inbox: &Inbox, src: &Addr, dst: &Addr, capacity: usize) -> io::Result<Dialed> {
    let (mine, theirs) = pipe(capacity);
    let (answer, accepted) = oneshot::channel();
    let pending = Box::new(PendingPipe {
        end: theirs,
        answer,
    });
    let queued = inbox
        .deliver(src.clone(), dst, pending)
        .map_err(|undelivered| io::Error::from(undelivered.reason))?;
    // Dropped while waiting, this dial takes its pipe off the queue.
    let mut withdraw = WithdrawOnDrop(Some(queued));
    let answer = accepted.await;
    withdraw.0 = None;
    match answer {
        Ok(Ok(peer)) => Ok(Dialed {
            transport: Box::new(mine),
            peer,
        }),
        Ok(Err(reason)) => Err(reason.into()),
        Err(_) => Err(VirtError::ConnRefused.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_flow_both_ways_and_eof_follows_shutdown() {
        let (mut a, mut b) = pipe(8);
        a.write_all(b"hello").await.unwrap();
        b.write_all(b"hi").await.unwrap();
        a.shutdown().await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        let mut buf = [0; 2];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");
        assert_eq!(
            a.write(b"x").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[tokio::test]
    async fn writer_waits_when_full_and_reader_frees_memory() {
        let (mut a, mut b) = pipe(4);
        assert_eq!(a.write(b"abcdef").await.unwrap(), 4);
        let mut w = Box::pin(a.write(b"ef"));
        assert!(futures_poll_once(&mut w).is_pending());
        let mut buf = [0; 4];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(w.await.unwrap(), 2);
        let mut buf = [0; 2];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ef");

        let (mut a, mut b) = pipe(1 << 20);
        a.write_all(&vec![7; 100_000]).await.unwrap();
        assert!(b.inbound().buf.capacity() >= 100_000);
        let mut sink = vec![0; 100_000];
        b.read_exact(&mut sink).await.unwrap();
        assert_eq!(b.inbound().buf.capacity(), 0, "drained buffer is freed");
    }

    #[tokio::test]
    async fn dropping_an_end_gives_eof_and_broken_pipe() {
        let (mut a, b) = pipe(16);
        let mut r = Box::pin(async move {
            let mut a2 = Vec::new();
            a.read_to_end(&mut a2).await.map(|_| a2)
        });
        assert!(futures_poll_once(&mut r).is_pending());
        drop(b);
        assert_eq!(r.await.unwrap(), b"");
        let (mut a, b) = pipe(16);
        drop(b);
        assert_eq!(
            a.write(b"x").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[tokio::test]
    async fn abort_wakes_pending_reads_and_writes() {
        let (mut a, _b) = pipe(2);
        let abort = a.shutdown_handle();
        a.write_all(b"xy").await.unwrap();
        let (mut c, mut d) = pipe(2);
        let mut r = Box::pin(async move {
            let mut buf = [0; 1];
            d.read(&mut buf).await
        });
        assert!(futures_poll_once(&mut r).is_pending());
        c.shutdown_handle()();
        assert_eq!(r.await.unwrap(), 0);
        assert!(c.write(b"z").await.is_err());
        let mut w = Box::pin(a.write(b"z"));
        assert!(futures_poll_once(&mut w).is_pending());
        abort();
        assert_eq!(w.await.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
    }
}
