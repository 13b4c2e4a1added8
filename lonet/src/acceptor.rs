//! The accept side of lonet: the subnetwork's one OS listener, and how
//! arriving OS connections get their request line read and go to the core.
//!
//! Two kinds of task take connections off the OS listener:
//! - the **serve loop** ([`serve`]), always running, which hears of every
//!   arrival while nothing else watches the listener;
//! - an **accept driver** ([`Driver`]), lent to a task waiting in
//!   `Listener::accept`, which takes arrivals in itself while it waits. The
//!   connection is then accepted in the task that asked for it, with no
//!   hand-off to another task (on a multi-thread runtime, another thread).
//!
//! Only one of them is woken by an arrival: tokio keeps a single waker for
//! a listener polled with `poll_accept`, the last one to poll. A driver that
//! is dropped wakes the serve loop, which polls again and so watches again.
//!
//! A request line that has already arrived is taken at once. A driver keeps
//! one connection whose line has not (on loopback it comes a moment after
//! the connect) and checks it again when the socket is readable; anything
//! slower goes to the serve loop, which gives it a task of its own bounded
//! by the handshake deadline, so a silent peer holds up nothing else.

use std::future::{poll_fn, Future};
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use virtnet_core::{AcceptDriver, Addr, Inbox, Incoming, Transport, Undelivered, VirtError};

use crate::handshake::{self, RequestError};
use crate::transport::TcpTransport;

/// What the serve loop and the accept drivers share.
pub(crate) struct Acceptor {
    /// The OS listener; `None` once the subnetwork closed.
    listener: Mutex<Option<TcpListener>>,
    inbox: Inbox,
    /// The full network name (`lonetmynet`).
    network: Arc<str>,
    handshake_timeout: Duration,
    /// Connections for the serve loop: slow handshakes and error replies.
    to_serve: mpsc::UnboundedSender<Handoff>,
    /// Wakes the serve loop to watch the listener again.
    rewatch: Notify,
}

/// A connection a driver gives to the serve loop.
enum Handoff {
    /// Its request line has not arrived yet; wait for it until `deadline`.
    Handshake {
        stream: TcpStream,
        deadline: Instant,
    },
    /// Send this error reply and close.
    Refuse { stream: TcpStream, reply: Vec<u8> },
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
            listener: Mutex::new(Some(listener)),
            inbox,
            network,
            handshake_timeout,
            to_serve,
            rewatch: Notify::new(),
        });
        (acceptor.clone(), serve(acceptor, handoffs))
    }

    /// Closes the OS listener: later connections to it are refused by the
    /// OS. Drivers still alive find nothing more to take.
    pub(crate) fn close(&self) {
        drop(self.lock_listener().take());
    }

    fn lock_listener(&self) -> std::sync::MutexGuard<'_, Option<TcpListener>> {
        self.listener.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls the OS listener, registering `cx` as the one task it wakes.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        match &*self.lock_listener() {
            Some(listener) => listener.poll_accept(cx).map_ok(|(stream, _)| {
                let _ = stream.set_nodelay(true);
                stream
            }),
            None => Poll::Pending,
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
        let incoming = Box::new(TcpIncoming {
            stream,
            network: self.network.clone(),
            dst: dst.clone(),
        });
        if let Err(Undelivered { reason, incoming }) = self.inbox.deliver(src, &dst, incoming) {
            if reason == VirtError::NoHost {
                tracing::warn!(%network, "lonet: address {dst}: no such host");
            }
            incoming.refuse(reason);
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
/// watches it, and runs the handshakes drivers hand over.
async fn serve(acceptor: Arc<Acceptor>, mut handoffs: mpsc::UnboundedReceiver<Handoff>) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = poll_fn(|cx| acceptor.poll_accept(cx)) => match accepted {
                Ok(stream) => match take_line_now(&SockRef::from(&stream)) {
                    Some(line) => {
                        if let Some((stream, reply)) = acceptor.dispatch(stream, &line) {
                            handshakes.spawn(refuse_and_close(stream, reply));
                        }
                    }
                    None => {
                        let deadline = Instant::now() + acceptor.handshake_timeout;
                        handshakes.spawn(handshake(acceptor.clone(), stream, deadline));
                    }
                },
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
                    handshakes.spawn(refuse_and_close(stream, reply));
                }
            },
            // A driver let go of the listener: the next turn polls it again.
            () = acceptor.rewatch.notified() => {}
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
                    refuse_and_close(stream, overlong.reply_line(network)).await;
                }
                None => {
                    tracing::warn!(%network, ?peer, error = %e, "lonet: handshake: reading the request failed");
                }
            }
            return;
        }
    };
    if let Some((stream, reply)) = acceptor.dispatch(stream, &line) {
        refuse_and_close(stream, reply).await;
    }
}

/// The request line if all of it is in `sock`'s receive queue already.
fn take_line_now(sock: &SockRef<'_>) -> Option<Vec<u8>> {
    match look(sock) {
        Look::Line(line) => Some(line),
        Look::Nothing | Look::Incomplete => None,
    }
}

/// What [`look`] found in a fresh connection's receive queue.
enum Look {
    /// The whole request line, now taken off the socket.
    Line(Vec<u8>),
    /// No bytes yet.
    Nothing,
    /// Part of a line, end of stream, or an error.
    Incomplete,
}

/// Takes the request line off `sock` if all of it has arrived, never
/// reading past its `\n`.
fn look(sock: &SockRef<'_>) -> Look {
    let mut peek = [MaybeUninit::<u8>::uninit(); handshake::MAX_REQUEST];
    let n = match sock.peek(&mut peek) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Look::Nothing,
        Err(_) => return Look::Incomplete,
    };
    // SAFETY: `peek` initialized the first `n` bytes.
    let peeked =
        unsafe { std::slice::from_raw_parts(peek.as_ptr().cast::<u8>(), n.min(peek.len())) };
    let Some(end) = peeked.iter().position(|&b| b == b'\n') else {
        return Look::Incomplete;
    };
    let mut line = vec![MaybeUninit::<u8>::uninit(); end + 1];
    // The peeked bytes are in the socket: this takes exactly them. Getting
    // fewer cannot happen; the line would be lost, and an empty one is
    // refused as an invalid request.
    match sock.recv(&mut line) {
        // SAFETY: `recv` initialized all of `line`.
        Ok(got) if got == line.len() => Look::Line(
            line.into_iter()
                .map(|b| unsafe { b.assume_init() })
                .collect(),
        ),
        _ => Look::Line(Vec::new()),
    }
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

/// lonet's [`AcceptDriver`]: takes arrivals off the OS listener in the
/// accepting task.
pub(crate) struct Driver {
    acceptor: Arc<Acceptor>,
    /// An arrival whose request line has not come yet.
    held: Option<Held>,
    /// This driver polled the listener, so the serve loop no longer hears of
    /// arrivals until it is woken.
    watching: bool,
}

struct Held {
    stream: TcpStream,
    /// The handshake deadline.
    deadline: Pin<Box<Sleep>>,
}

impl Driver {
    pub(crate) fn new(acceptor: Arc<Acceptor>) -> Driver {
        Driver {
            acceptor,
            held: None,
            watching: false,
        }
    }

    /// Looks at the held connection again: true if its line was there and
    /// the connection was delivered. Otherwise it stays held (nothing new
    /// yet, `cx` registered) or goes to the serve loop (part of a line came,
    /// the peer closed, or the deadline passed).
    fn poll_held(&mut self, cx: &mut Context<'_>) -> bool {
        // Readiness can be stale (a fresh socket reports readable at once);
        // a look that finds nothing clears it, so this ends quickly.
        for _ in 0..4 {
            let Some(held) = &mut self.held else {
                return false;
            };
            if held.deadline.as_mut().poll(cx).is_ready() {
                break;
            }
            match held.stream.poll_read_ready(cx) {
                Poll::Pending => return false,
                Poll::Ready(Err(_)) => break,
                Poll::Ready(Ok(())) => {}
            }
            let stream = &held.stream;
            let looked = stream.try_io(Interest::READABLE, || match look(&SockRef::from(stream)) {
                Look::Nothing => Err(io::ErrorKind::WouldBlock.into()),
                other => Ok(other),
            });
            match looked {
                Ok(Look::Line(line)) => {
                    if let Some(held) = self.held.take() {
                        self.deliver(held.stream, &line);
                    }
                    return true;
                }
                // Nothing there: readiness cleared, wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                _ => break,
            }
        }
        self.release_held()
    }

    /// Delivers a connection whose request line was taken.
    fn deliver(&self, stream: TcpStream, line: &[u8]) {
        if let Some((stream, reply)) = self.acceptor.dispatch(stream, line) {
            self.acceptor.hand_off(Handoff::Refuse { stream, reply });
        }
    }

    /// Gives the held connection to the serve loop. False: nothing was
    /// delivered here.
    fn release_held(&mut self) -> bool {
        if let Some(Held { stream, deadline }) = self.held.take() {
            let deadline = deadline.deadline();
            self.acceptor
                .hand_off(Handoff::Handshake { stream, deadline });
        }
        false
    }
}

impl AcceptDriver for Driver {
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut delivered = self.poll_held(cx);
        loop {
            self.watching = true;
            let stream = match self.acceptor.poll_accept(cx) {
                Poll::Pending => break,
                Poll::Ready(Ok(stream)) => stream,
                Poll::Ready(Err(_)) => {
                    // Let the serve loop report it and back off.
                    self.watching = false;
                    self.acceptor.rewatch.notify_one();
                    break;
                }
            };
            // Hold the newest (its first look is at once); an older one
            // still waiting goes to the serve loop.
            let _ = self.release_held();
            let deadline = Box::pin(tokio::time::sleep(self.acceptor.handshake_timeout));
            self.held = Some(Held { stream, deadline });
            delivered |= self.poll_held(cx);
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
        let _ = self.release_held();
        if self.watching {
            self.acceptor.rewatch.notify_one();
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
