//! Listeners and their accept queues.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::Stream;
use tokio::sync::Notify;

use crate::conn::Conn;
use crate::engine::AcceptDriver;
use crate::kernel::HostCore;
use crate::queue::{AcceptQueue, Driving, Popped};
use crate::trace::{Event, Trace};
use crate::{lock, Addr, OpError, VirtError};

/// The accepting half of a listener of your own networker, wrapped by
/// [`Listener::new`].
///
/// # Contract
/// - `poll_accept` is called from the task awaiting
///   [`Listener::accept`] (or polling the listener as a stream); it must
///   register `cx` to be woken when a connection may be ready, like tokio's
///   `TcpListener::poll_accept`. A call racing with `close` may still come;
///   answer it with `Pending` or an error (the core reports "socket is
///   down" to the waiting accept either way).
/// - `close` is called once, from any thread, when the listener is closed
///   or dropped: free what it listens on. The core itself ends pending
///   accepts with "socket is down".
pub trait ListenSocket: Send + Sync + 'static {
    /// The next connection, made with [`Conn::new`].
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Conn>>;

    /// Stops listening.
    fn close(&self);
}

/// A listening socket: on a virtual host, or of a [`Networker`] of your own
/// ([`Listener::new`]). On a virtual host, accepted connections get a fresh
/// port of their own (`α:2`, `α:3`, …), unlike TCP.
///
/// Also a [`Stream`] of accepted connections. Dropping the listener closes it.
///
/// [`Networker`]: crate::Networker
pub struct Listener {
    socket: Socket,
    /// The stream has reported the end.
    ended: bool,
    /// Where accepts and the close are recorded, if traced.
    observer: Option<Trace>,
    /// The engine's accept driver while the stream waits for a connection.
    driver: Option<Box<dyn AcceptDriver>>,
}

/// What a listener listens with (shared with its [`ListenerCloser`]).
#[derive(Clone)]
enum Socket {
    /// A port of a virtual host.
    Virtual {
        queue: Arc<AcceptQueue>,
        host: Arc<HostCore>,
    },
    /// A [`ListenSocket`] of someone's own networker.
    Custom(Arc<Custom>),
}

/// A [`ListenSocket`] with the closed state the core keeps for it.
struct Custom {
    addr: Addr,
    socket: Box<dyn ListenSocket>,
    state: Mutex<CustomState>,
    closed: Notify,
}

#[derive(Default)]
struct CustomState {
    closed: bool,
    /// Accepts to wake when the listener closes.
    wakers: Vec<Waker>,
}

impl Listener {
    /// A listener over `socket`, for a [`Networker`](crate::Networker) of
    /// your own: `addr` is where it listens. The core keeps its closed
    /// state: after [`close`](Self::close) (or drop) accepts end with
    /// "socket is down", and `socket`'s own `close` is called once.
    pub fn new(addr: Addr, socket: impl ListenSocket) -> Listener {
        Listener::with(Socket::Custom(Arc::new(Custom {
            addr,
            socket: Box::new(socket),
            state: Mutex::default(),
            closed: Notify::new(),
        })))
    }

    /// A listener on a virtual host's port, whose accept queue is `queue`.
    pub(crate) fn on_port(queue: Arc<AcceptQueue>, host: Arc<HostCore>) -> Listener {
        Listener::with(Socket::Virtual { queue, host })
    }

    fn with(socket: Socket) -> Listener {
        Listener {
            socket,
            ended: false,
            observer: None,
            driver: None,
        }
    }

    /// How many connections a virtual listener queues by default before it
    /// refuses dials (as Linux's default `somaxconn`).
    pub const DEFAULT_BACKLOG: usize = crate::queue::DEFAULT_BACKLOG;

    /// The address it listens on.
    pub fn local_addr(&self) -> &Addr {
        self.socket.addr()
    }

    /// Sets how many connections may wait for `accept` (at least 1; default
    /// [`DEFAULT_BACKLOG`](Self::DEFAULT_BACKLOG)). Past it, dials are
    /// refused with "connection refused", like a full SYN queue; dials whose
    /// dialers gave up are dropped from the queue first. A listener of your
    /// own networker ([`Listener::new`]) keeps its own backlog: this does
    /// nothing there.
    pub fn set_backlog(&self, backlog: usize) {
        if let Socket::Virtual { queue, .. } = &self.socket {
            queue.set_backlog(backlog);
        }
    }

    /// How many connections wait for `accept` (on a virtual host; 0 for a
    /// listener of your own networker), dials whose dialers gave up
    /// included until they are noticed.
    pub fn queued(&self) -> usize {
        match &self.socket {
            Socket::Virtual { queue, .. } => queue.len(),
            Socket::Custom(_) => 0,
        }
    }

    /// Waits for the next connection and allocates its port.
    ///
    /// Ends with "socket is down" once the listener is closed, and "host is
    /// down" / "network is down" when its host or network goes down.
    /// Cancel-safe: dropping the future loses no connection.
    ///
    /// While it waits, the task running it may take in arriving connections
    /// for the whole subnetwork itself (lonet does, see
    /// [`Engine::accept_driver`](crate::engine::Engine::accept_driver)), so keep
    /// polling a pending accept or drop it: a pending accept that is kept
    /// but not polled delays the subnetwork's other arrivals until it is.
    pub async fn accept(&self) -> io::Result<Conn> {
        let mut driver = None;
        poll_fn(|cx| self.poll_accept_driving(cx, &mut driver)).await
    }

    /// Polls for the next connection; see [`accept`](Self::accept). Unlike
    /// `accept` and the stream, it leaves all deliveries to the engine's
    /// background work (it has nowhere to keep an accept driver).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Conn>> {
        let Some(trace) = &self.observer else {
            return self.socket.poll_accept(cx);
        };
        // The dialer learns of the accept inside `poll_accept`: record it
        // under the trace so the dialer's "connect" comes after.
        trace.around(self.local_addr().network(), || {
            match self.socket.poll_accept(cx) {
                Poll::Ready(Ok(mut conn)) => {
                    let (local, peer) = (conn.local_addr().clone(), conn.peer_addr().clone());
                    conn.observe(trace.clone());
                    (Poll::Ready(Ok(conn)), Some(Event::Accept { local, peer }))
                }
                other => (other, None),
            }
        })
    }

    /// [`poll_accept`](Self::poll_accept), taking in arrivals with the
    /// engine's accept driver (made on first need, kept in `driver`) while
    /// the queue is empty.
    fn poll_accept_driving(
        &self,
        cx: &mut Context<'_>,
        driver: &mut Option<Box<dyn AcceptDriver>>,
    ) -> Poll<io::Result<Conn>> {
        // Each round delivers at least one connection, maybe for another
        // listener; after this many, let other tasks run.
        const ROUNDS: usize = 32;
        let Socket::Virtual { queue, host } = &self.socket else {
            return self.poll_accept(cx);
        };
        let mut drove = false;
        for _ in 0..ROUNDS {
            if let Poll::Ready(accepted) = self.poll_accept(cx) {
                if drove && queue.has_queued() {
                    // What the driver queued did not wake this task, and
                    // another accept of it may be waiting for the rest.
                    cx.waker().wake_by_ref();
                }
                return Poll::Ready(accepted);
            }
            let driver = match driver {
                Some(driver) => driver,
                None => match host.net.engine.accept_driver() {
                    Some(made) => driver.insert(made),
                    None => return Poll::Pending,
                },
            };
            // What the driver queues here does not wake this task: it looks
            // at the queue again next (see `AcceptQueue::to_wake`).
            let driving = Driving::start(queue, cx.waker());
            let polled = driver.poll_drive(cx);
            drop(driving);
            drove = true;
            if polled.is_pending() {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// A handle that can close this listener, or wait for it to close, from
    /// elsewhere: for example while a server owns the listener.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let net = pipenet::Network::new("closer");
    /// let l = net.new_host("α").await?.listen("").await?;
    /// let closer = l.closer();
    /// let server = tokio::spawn(async move { l.accept().await });
    /// closer.close();
    /// closer.closed().await;
    /// assert_eq!(server.await.unwrap().unwrap_err().to_string(), "accept pipecloser α:1: socket is down");
    /// # Ok(()) }
    /// ```
    pub fn closer(&self) -> ListenerCloser {
        ListenerCloser(self.socket.clone())
    }

    /// Records this listener's accepts (and their connections) and its close
    /// into `trace`.
    pub(crate) fn observe(&mut self, trace: Trace) {
        self.observer = Some(trace);
    }

    /// Stops listening: pending accepts end with "socket is down", queued and
    /// later dials to this address are refused, and the port is freed.
    /// Idempotent.
    pub fn close(&self) {
        if self.socket.close() {
            if let Some(trace) = &self.observer {
                let addr = self.local_addr().clone();
                trace.record(self.local_addr().network(), Event::CloseListener { addr });
            }
        }
    }
}

impl Socket {
    fn addr(&self) -> &Addr {
        match self {
            Socket::Virtual { queue, .. } => &queue.addr,
            Socket::Custom(custom) => &custom.addr,
        }
    }

    /// Closes with "socket is down" (freeing the port); false if it was
    /// already closed.
    fn close(&self) -> bool {
        match self {
            Socket::Virtual { queue, host } => {
                host.free_listener(queue);
                queue.shut(VirtError::SockDown)
            }
            Socket::Custom(custom) => {
                let wakers = {
                    let mut st = lock(&custom.state);
                    if st.closed {
                        return false;
                    }
                    st.closed = true;
                    std::mem::take(&mut st.wakers)
                };
                custom.socket.close();
                wakers.into_iter().for_each(Waker::wake);
                custom.closed.notify_waiters();
                true
            }
        }
    }

    async fn wait_closed(&self) {
        match self {
            Socket::Virtual { queue, .. } => queue.wait_closed().await,
            Socket::Custom(custom) => loop {
                let notified = custom.closed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if lock(&custom.state).closed {
                    return;
                }
                notified.await;
            },
        }
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Conn>> {
        match self {
            Socket::Virtual { queue, host } => poll_accept_on_port(queue, host, cx),
            Socket::Custom(custom) => {
                {
                    let mut st = lock(&custom.state);
                    if st.closed {
                        return Poll::Ready(Err(accept_error(&custom.addr, VirtError::SockDown)));
                    }
                    if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        st.wakers.push(cx.waker().clone());
                    }
                }
                custom.socket.poll_accept(cx)
            }
        }
    }
}

/// Accepts the next connection queued on a virtual host's listener: takes
/// the lowest free port for it and tells the dialer.
fn poll_accept_on_port(
    queue: &AcceptQueue,
    host: &Arc<HostCore>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Conn>> {
    loop {
        let (src, pending) = match queue.poll_pop(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Popped::Closed(reason)) => {
                return Poll::Ready(Err(accept_error(&queue.addr, reason)))
            }
            Poll::Ready(Popped::Conn(src, pending)) => (src, pending),
        };
        // From here to the return nothing awaits: the connection is either
        // handed to our caller or given up, never left half-accepted.
        let port = match host.reserve() {
            Ok(port) => port,
            Err(reason) => {
                pending.refuse(VirtError::ConnRefused);
                return Poll::Ready(Err(accept_error(&queue.addr, reason)));
            }
        };
        let local = queue.addr.with_port(port.port);
        let Ok(transport) = pending.accept(&local) else {
            continue; // the dialer is gone; `port` is freed
        };
        if let Err(reason) = port.connect(transport.shutdown_handle(), &src) {
            return Poll::Ready(Err(accept_error(&queue.addr, reason)));
        }
        tracing::debug!(
            network = %queue.addr.network(),
            src = %src,
            dst = %local,
            listener = %queue.addr,
            "virtnet: accept"
        );
        return Poll::Ready(Ok(Conn::on_port(transport, local, src, port)));
    }
}

fn accept_error(addr: &Addr, reason: VirtError) -> io::Error {
    OpError::new("accept", addr.network_arc().clone())
        .dst(addr.clone())
        .cause(reason)
        .into()
}

/// Closes a [`Listener`], or waits for it to close, from elsewhere (see
/// [`Listener::closer`]).
#[derive(Clone)]
pub struct ListenerCloser(Socket);

impl ListenerCloser {
    /// Closes the listener, as [`Listener::close`] does.
    pub fn close(&self) {
        self.0.close();
    }

    /// Completes when the listener is closed: by [`close`](Self::close), by
    /// dropping it, or because its host or network went down. Use it as a
    /// server's graceful-shutdown signal.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let socket = self.0.clone();
        async move { socket.wait_closed().await }
    }
}

impl fmt::Debug for ListenerCloser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ListenerCloser")
            .field(self.0.addr())
            .finish()
    }
}

/// Yields accepted connections. Ends (`None`) after [`Listener::close`];
/// when the host or network goes down it yields that error once, then ends.
///
/// Like [`Listener::accept`], a pending stream may take in arrivals for the
/// subnetwork itself: keep polling it while it is pending.
impl Stream for Listener {
    type Item = io::Result<Conn>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let mut driver = this.driver.take();
        let polled = this.poll_accept_driving(cx, &mut driver);
        if polled.is_pending() {
            // Kept while waiting; dropped with an item, handing back what it
            // watches, since the stream may not be polled again for a while.
            this.driver = driver;
        }
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(conn)) => Poll::Ready(Some(Ok(conn))),
            Poll::Ready(Err(e)) => {
                this.ended = true;
                if VirtError::of(&e) == Some(VirtError::SockDown) {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(e)))
                }
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("addr", self.local_addr())
            .finish()
    }
}
