//! The accept side of lonet: the subnetwork's one OS listener, and how
//! arriving OS connections get their request line read and go to the core.
//!
//! Two kinds of task take connections off the OS listener:
//! - the **serve loop** ([`serve`]), always running, which handles arrivals
//!   while no driver watches the listener, and runs slow handshakes;
//! - an **accept driver** ([`Driver`]), lent to a task waiting in
//!   `Listener::accept`, which takes arrivals in itself while it waits. The
//!   connection is then accepted in the task that asked for it, with no
//!   hand-off to another task (on a multi-thread runtime, another thread).
//!
//! Only one of them is woken by an arrival: tokio keeps a single waker for a
//! listener polled with `poll_accept`, the last one to poll. Who that is, the
//! **watcher**, is recorded under the same lock. A driver that stops being
//! polled gives the watch back to the serve loop when it is dropped; one
//! that is kept but not polled loses it at the serve loop's next check
//! ([`CHECK_EVERY`]), so arrivals wait at most that long.
//!
//! A request line that has already arrived (the usual case: the dialer
//! sends it as soon as it connects) is taken at once, never reading past its
//! `\n`. A connection whose line has not fully arrived goes to the serve
//! loop, which gives it a task of its own bounded by the handshake deadline,
//! so a silent peer holds up nothing else.

use std::future::{poll_fn, Future};
use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use rustix::net::{recv, RecvFlags};
use socket2::SockRef;
use tokio::io::AsyncWriteExt;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use virtnet_core::engine::{
    AcceptDriver, Arrival, Inbox, PendingConn, Queued, Transport, Undelivered,
};
use virtnet_core::{Addr, VirtError};

use crate::handshake::{self, RequestError};
use crate::transport::TcpTransport;

/// How often the serve loop checks that a driver watching the listener has
/// not been left unpolled; it then takes the watch back.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(10);

/// What the serve loop and the accept drivers share.
pub(crate) struct Acceptor {
    watch: Mutex<Watch>,
    inbox: Inbox,
    /// The full network name (`lonetmynet`).
    network: Arc<str>,
    handshake_timeout: Duration,
    /// Connections for the serve loop: slow handshakes and error replies.
    to_serve: mpsc::UnboundedSender<Handoff>,
    /// Wakes the serve loop: the watch came back to it, or it should start
    /// checking on a driver.
    wake_serve: Notify,
    /// The serve loop checks on drivers every [`CHECK_EVERY`].
    checking: AtomicBool,
    /// Numbers the drivers.
    next_driver: AtomicU64,
}

/// The OS listener and who is woken by its next arrival.
struct Watch {
    /// `None` once the subnetwork closed.
    listener: Option<TcpListener>,
    watcher: Watcher,
}

/// Who polled the OS listener last, and so is woken by the next arrival.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Watcher {
    Serve,
    Driver(u64),
}

/// A connection for the serve loop.
enum Handoff {
    /// Its request line has not fully arrived; wait for it until `deadline`.
    Handshake {
        stream: TcpStream,
        deadline: Instant,
    },
    /// Send this error reply and close.
    Refuse { stream: TcpStream, reply: Vec<u8> },
    /// A dial to deliver once the network's faults let it through.
    Arrive {
        stream: TcpStream,
        src: Addr,
        dst: Addr,
        arrival: Arrival,
    },
    /// A connection queued with no accept waiting: take it off the queue
    /// if its dialer gives up (closes) before it is taken (`untaken` ends).
    Watch {
        stream: Arc<TcpStream>,
        untaken: oneshot::Receiver<()>,
        queued: Queued,
    },
}

impl Acceptor {
    /// Shares `listener`; the returned future is the serve loop, which runs
    /// until dropped (dropping it aborts every unfinished handshake).
    pub(crate) fn start(
        listener: TcpListener,
        inbox: Inbox,
        network: Arc<str>,
        handshake_timeout: Duration,
    ) -> (Arc<Acceptor>, impl Future<Output = ()> + Send + 'static) {
        let (to_serve, handoffs) = mpsc::unbounded_channel();
        let acceptor = Arc::new(Acceptor {
            watch: Mutex::new(Watch {
                listener: Some(listener),
                watcher: Watcher::Serve,
            }),
            inbox,
            network,
            handshake_timeout,
            to_serve,
            wake_serve: Notify::new(),
            checking: AtomicBool::new(false),
            next_driver: AtomicU64::new(1),
        });
        (acceptor.clone(), serve(acceptor, handoffs))
    }

    /// Closes the OS listener: later connections to it are refused by the
    /// OS. Drivers still alive find nothing more to take.
    pub(crate) fn close(&self) {
        drop(self.lock().listener.take());
    }

    fn lock(&self) -> MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls the OS listener as `who`, who becomes the watcher. The serve
    /// loop does not take the watch from a driver here (only its check
    /// does, with `force`).
    fn poll_accept(
        &self,
        who: Watcher,
        force: bool,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<TcpStream>> {
        let mut watch = self.lock();
        if who == Watcher::Serve && watch.watcher != Watcher::Serve && !force {
            return Poll::Pending;
        }
        let Some(listener) = &watch.listener else {
            return Poll::Pending;
        };
        let polled = listener.poll_accept(cx);
        // Checks start when a driver takes the watch and stop (in `serve`)
        // when a check finds the serve loop watching; both under the lock.
        let start_checks = who != Watcher::Serve
            && watch.watcher == Watcher::Serve
            && !self.checking.swap(true, Ordering::Relaxed);
        watch.watcher = who;
        drop(watch);
        if start_checks {
            self.wake_serve.notify_one();
        }
        polled.map_ok(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        })
    }

    /// Driver `id` stops watching: if it was the watcher, the serve loop is.
    fn unwatch(&self, id: u64) {
        let mut watch = self.lock();
        if watch.watcher == Watcher::Driver(id) {
            watch.watcher = Watcher::Serve;
            drop(watch);
            self.wake_serve.notify_one();
        }
    }

    /// Takes the request line off `stream` if it is there and acts on it;
    /// a connection whose line has not fully arrived goes to the serve
    /// loop. True if the connection went to the core.
    fn take_in(&self, stream: TcpStream) -> bool {
        let Some(line) = take_line_now(&stream) else {
            let deadline = Instant::now() + self.handshake_timeout;
            self.hand_off(Handoff::Handshake { stream, deadline });
            return false;
        };
        match self.dispatch(stream, &line) {
            Some((stream, reply)) => {
                self.hand_off(Handoff::Refuse { stream, reply });
                false
            }
            None => true,
        }
    }

    /// Acts on a request line: hands the connection to the core (which
    /// queues or refuses it), or, for a bad request, returns the error reply
    /// to send.
    fn dispatch(&self, stream: TcpStream, line: &[u8]) -> Option<(TcpStream, Vec<u8>)> {
        let network = &*self.network;
        let (src, dst) = match handshake::parse_request(line, network) {
            Ok(addrs) => addrs,
            Err(e) => {
                let peer = stream.peer_addr().ok();
                tracing::warn!(%network, ?peer, "lonet: {e}");
                return Some((stream, e.reply_line(network)));
            }
        };
        if dst.host() == handshake::SHAPES_HOST {
            // Another process asks whether this one shapes (it does).
            return Some((stream, handshake::error_line(network, handshake::SHAPES)));
        }
        if let Some(arrival) = self.inbox.arrival(&src, &dst) {
            // A fault was set on the network: the dial may have to wait,
            // or fail, first.
            self.hand_off(Handoff::Arrive {
                stream,
                src,
                dst,
                arrival,
            });
            return None;
        }
        self.deliver(stream, src, dst)
    }

    /// Hands a dial from `src` for `dst` to the core (which queues or
    /// refuses it).
    fn deliver(&self, stream: TcpStream, src: Addr, dst: Addr) -> Option<(TcpStream, Vec<u8>)> {
        let network = &*self.network;
        let stream = Arc::new(stream);
        let (taken, untaken) = oneshot::channel();
        let incoming = Box::new(TcpIncoming {
            stream: stream.clone(),
            network: self.network.clone(),
            dst: dst.clone(),
            _taken: taken,
        });
        match self.inbox.deliver(src, &dst, incoming) {
            // No accept waits for it: watch for its dialer giving up.
            Ok(queued) if !queued.awaited() => self.hand_off(Handoff::Watch {
                stream,
                untaken,
                queued,
            }),
            Ok(_) => {}
            Err(Undelivered { reason, conn }) => {
                if reason == VirtError::NoHost {
                    tracing::warn!(%network, "lonet: address {dst}: no such host");
                }
                conn.refuse(reason);
            }
        }
        None
    }

    /// Gives `handoff` to the serve loop (dropped if the loop is gone: the
    /// subnetwork closed).
    fn hand_off(&self, handoff: Handoff) {
        let _ = self.to_serve.send(handoff);
    }
}

/// The serve loop: takes arrivals off the OS listener while no driver
/// watches it, checks on drivers that do, and runs slow handshakes.
async fn serve(acceptor: Arc<Acceptor>, mut handoffs: mpsc::UnboundedReceiver<Handoff>) {
    let mut handshakes = JoinSet::new();
    let check = tokio::time::sleep(CHECK_EVERY);
    tokio::pin!(check);
    let mut check_armed = false;
    let mut force = false;
    loop {
        if !check_armed && acceptor.checking.load(Ordering::Relaxed) {
            check.as_mut().reset(Instant::now() + CHECK_EVERY);
            check_armed = true;
        }
        tokio::select! {
            accepted = poll_fn(|cx| acceptor.poll_accept(Watcher::Serve, std::mem::take(&mut force), cx)) => match accepted {
                Ok(stream) => {
                    acceptor.take_in(stream);
                }
                Err(e) => {
                    // Out of file descriptors and the like: say so, and give
                    // the system a moment instead of spinning.
                    let network = &acceptor.network;
                    tracing::warn!(%network, error = %e, "lonet: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(handoff) = handoffs.recv() => match handoff {
                Handoff::Handshake { stream, deadline } => {
                    handshakes.spawn(handshake(acceptor.clone(), stream, deadline));
                }
                Handoff::Refuse { stream, reply } => {
                    let deadline = Instant::now() + acceptor.handshake_timeout;
                    handshakes.spawn(refuse_and_close(stream, reply, deadline));
                }
                Handoff::Watch { stream, untaken, queued } => {
                    handshakes.spawn(watch_queued(stream, untaken, queued));
                }
                Handoff::Arrive { stream, src, dst, arrival } => {
                    handshakes.spawn(arrive(acceptor.clone(), stream, src, dst, arrival));
                }
            },
            // The watch came back, or checks are to start: look again.
            () = acceptor.wake_serve.notified() => {}
            () = check.as_mut(), if check_armed => {
                check_armed = false;
                let watch = acceptor.lock();
                if watch.watcher == Watcher::Serve {
                    // No driver took the watch since the last check: rest
                    // until one does.
                    acceptor.checking.store(false, Ordering::Relaxed);
                } else {
                    // A driver may have been left unpolled: take the watch
                    // back. A driver that is polled takes it again.
                    force = true;
                }
            }
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
        }
    }
}

/// The acceptor's half of the handshake for one OS connection whose request
/// line had not fully arrived, bounded by `deadline`.
async fn handshake(acceptor: Arc<Acceptor>, mut stream: TcpStream, deadline: Instant) {
    let network = &*acceptor.network;
    let read = tokio::time::timeout_at(
        deadline,
        handshake::read_line(&mut stream, handshake::MAX_REQUEST),
    )
    .await;
    let line = match read {
        Ok(Ok(line)) => line,
        Err(_) => {
            let peer = stream.peer_addr().ok();
            tracing::warn!(%network, ?peer, "lonet: handshake timed out; connection dropped");
            return;
        }
        Ok(Err(e)) => {
            let peer = stream.peer_addr().ok();
            match RequestError::from_read_error(&e) {
                Some(overlong) => {
                    tracing::warn!(%network, ?peer, "lonet: {overlong}");
                    refuse_and_close(stream, overlong.reply_line(network), deadline).await;
                }
                // A peer that connects and leaves without a word (a probe,
                // such as `lonet hosts`) is no protocol error.
                None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    tracing::debug!(%network, ?peer, "lonet: handshake: the peer left before its request");
                }
                None => {
                    tracing::warn!(%network, ?peer, error = %e, "lonet: handshake: reading the request failed");
                }
            }
            return;
        }
    };
    if let Some((stream, reply)) = acceptor.dispatch(stream, &line) {
        refuse_and_close(stream, reply, deadline).await;
    }
}

/// Delivers a dial once the network's faults let it through (`arrival`),
/// or refuses it with their error ("no route to host"). A dialer that gives
/// up meanwhile (closes its end) is forgotten.
async fn arrive(
    acceptor: Arc<Acceptor>,
    stream: TcpStream,
    src: Addr,
    dst: Addr,
    arrival: Arrival,
) {
    let gone = async {
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_io(tokio::io::Interest::READABLE, || peek_one(&stream)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                // Closed (or failed): the dialer gave up.
                Ok(0) | Err(_) => return,
                // It sent more than its request: it is there; keep waiting.
                Ok(_) => std::future::pending::<()>().await,
            }
        }
    };
    let passed = tokio::select! {
        passed = arrival => passed,
        () = gone => return,
    };
    let refused = match passed {
        Ok(()) => acceptor.deliver(stream, src, dst),
        Err(e) => Some((stream, handshake::error_line(&acceptor.network, e.as_str()))),
    };
    if let Some((stream, reply)) = refused {
        let deadline = Instant::now() + acceptor.handshake_timeout;
        refuse_and_close(stream, reply, deadline).await;
    }
}

/// The request line if all of it is in `stream`'s receive queue already
/// (within [`handshake::MAX_REQUEST`] bytes); it is then taken off the
/// socket, never reading past its `\n`.
///
/// Request lines are short: the first peek looks at 256 bytes, in a small
/// stack buffer. Only when those fill up without a `\n` does a second peek
/// look at up to `MAX_REQUEST` bytes.
fn take_line_now(stream: &TcpStream) -> Option<Vec<u8>> {
    const STEP: usize = 256;
    let mut small = [0; STEP];
    let (n, _) = recv(stream, &mut small[..], RecvFlags::PEEK).ok()?;
    let peeked = small.get(..n).unwrap_or_default();
    let end = match peeked.iter().position(|&b| b == b'\n') {
        Some(end) => end,
        None if n < STEP => return None,
        None => {
            let mut all = [0; handshake::MAX_REQUEST];
            let (n, _) = recv(stream, &mut all[..], RecvFlags::PEEK).ok()?;
            let peeked = all.get(..n).unwrap_or_default();
            peeked.iter().position(|&b| b == b'\n')?
        }
    };
    let mut line = vec![0; end + 1];
    // The peeked bytes are in the socket: this takes exactly them. Getting
    // fewer cannot happen; the line would be lost, and an empty one is
    // refused as an invalid request.
    match recv(stream, &mut line[..], RecvFlags::empty()) {
        Ok((got, _)) if got == line.len() => Some(line),
        _ => Some(Vec::new()),
    }
}

/// Sends an error reply and closes, reading what the dialer still sends (up
/// to [`DRAIN_LIMIT`] bytes, until `deadline`) so that closing with unread
/// bytes does not reset the connection and destroy the reply. A dialer
/// that keeps the connection open holds the socket until `deadline` at the
/// most.
async fn refuse_and_close(mut stream: TcpStream, reply: Vec<u8>, deadline: Instant) {
    use tokio::io::AsyncReadExt;
    let reply_and_drain = async {
        if stream.write_all(&reply).await.is_err() || stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0; 4096];
        let mut left = DRAIN_LIMIT;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline, reply_and_drain).await;
}

/// How much a refused dialer may still send before its socket is closed.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Watches a queued connection: if its dialer closes before an accept or a
/// refusal takes it (`untaken` ends then), it leaves the queue at once and
/// its socket is closed. Bytes from the dialer end the watch: it is there.
async fn watch_queued(stream: Arc<TcpStream>, mut untaken: oneshot::Receiver<()>, queued: Queued) {
    loop {
        tokio::select! {
            _ = &mut untaken => return,
            ready = stream.readable() => {
                let peeked = match ready {
                    Ok(()) => stream.try_io(Interest::READABLE, || peek_one(&stream)),
                    Err(e) => Err(e),
                };
                match peeked {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Ok(0) | Err(_) => {
                        queued.withdraw();
                        return;
                    }
                    Ok(_) => return,
                }
            }
        }
    }
}

/// Peeks at one byte: `Ok(0)` once the peer closed.
fn peek_one(stream: &TcpStream) -> io::Result<usize> {
    let mut probe = [MaybeUninit::<u8>::uninit(); 1];
    SockRef::from(stream).peek(&mut probe)
}

/// lonet's [`AcceptDriver`]: takes arrivals off the OS listener in the
/// accepting task.
pub(crate) struct Driver {
    acceptor: Arc<Acceptor>,
    id: u64,
}

impl Driver {
    pub(crate) fn new(acceptor: Arc<Acceptor>) -> Driver {
        let id = acceptor.next_driver.fetch_add(1, Ordering::Relaxed);
        Driver { acceptor, id }
    }
}

impl AcceptDriver for Driver {
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut delivered = false;
        loop {
            match self
                .acceptor
                .poll_accept(Watcher::Driver(self.id), false, cx)
            {
                Poll::Pending => break,
                Poll::Ready(Ok(stream)) => delivered |= self.acceptor.take_in(stream),
                Poll::Ready(Err(_)) => {
                    // Let the serve loop report it and back off.
                    self.acceptor.unwatch(self.id);
                    break;
                }
            }
        }
        if delivered {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.acceptor.unwatch(self.id);
    }
}

/// A handshaken OS connection waiting in a listener's queue.
struct TcpIncoming {
    /// Shared with the watch of a queued connection (see [`watch_queued`]).
    stream: Arc<TcpStream>,
    network: Arc<str>,
    dst: Addr,
    /// Dropped when the connection is accepted, refused or dropped: the
    /// watch ends.
    _taken: oneshot::Sender<()>,
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

impl PendingConn for TcpIncoming {
    fn accept(self: Box<Self>, local: &Addr) -> io::Result<Box<dyn Transport>> {
        self.send_now(&handshake::connected_line(&self.network, local))?;
        Ok(Box::new(TcpTransport::shared(self.stream)))
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
        match peek_one(&self.stream) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::AsyncReadExt;

    /// A connected pair of loopback TCP streams: (dialer's, acceptor's).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let at = listener.local_addr().expect("local addr");
        let (dialed, accepted) = tokio::join!(TcpStream::connect(at), listener.accept());
        (dialed.expect("connect"), accepted.expect("accept").0)
    }

    /// The acceptor's end of a connection on which `sent` has all arrived.
    async fn arrived(sent: &[u8]) -> (TcpStream, TcpStream) {
        let (mut dialer, acceptor) = pair().await;
        dialer.write_all(sent).await.expect("write");
        let mut buf = vec![0; sent.len().max(1)];
        let wait = async {
            while !sent.is_empty() && acceptor.peek(&mut buf).await.expect("peek") < sent.len() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("bytes arrive");
        (dialer, acceptor)
    }

    /// What is left in the socket after `take_line_now`.
    async fn rest(dialer: TcpStream, mut acceptor: TcpStream) -> Vec<u8> {
        drop(dialer);
        let mut rest = Vec::new();
        let read = acceptor.read_to_end(&mut rest);
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("read in time")
            .expect("read");
        rest
    }

    #[tokio::test]
    async fn takes_a_whole_line_and_nothing_after_it() {
        let long = |n: usize| {
            let mut line = vec![b'a'; n - 1];
            line.push(b'\n');
            line
        };
        // Short, past the first 256-byte peek, and exactly the limit.
        for line in [b"> short\n".to_vec(), long(256), long(300), long(1024)] {
            let mut sent = line.clone();
            sent.extend_from_slice(b"app bytes");
            let (dialer, acceptor) = arrived(&sent).await;
            assert_eq!(
                take_line_now(&acceptor),
                Some(line.clone()),
                "{}",
                line.len()
            );
            assert_eq!(rest(dialer, acceptor).await, b"app bytes", "{}", line.len());
        }
    }

    #[tokio::test]
    async fn leaves_a_line_that_is_not_all_there() {
        // Nothing yet, no newline yet (under, at and over the first peek),
        // and a newline past the limit: the slow path reads those.
        let mut over = vec![b'x'; handshake::MAX_REQUEST];
        over.push(b'\n');
        let sends = [
            Vec::new(),
            vec![b'x'; 100],
            vec![b'x'; 256],
            vec![b'x'; 700],
            over,
        ];
        for sent in sends {
            let (dialer, acceptor) = arrived(&sent).await;
            assert_eq!(take_line_now(&acceptor), None, "{}", sent.len());
            assert_eq!(rest(dialer, acceptor).await, sent, "{}", sent.len());
        }
    }
}
