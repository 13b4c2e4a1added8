//! Listeners and their accept queues.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::Stream;
use tokio::sync::Notify;

use crate::conn::Conn;
use crate::engine::{AcceptDriver, Incoming};
use crate::host::HostInner;
use crate::trace::{Event, Trace};
use crate::{lock, Addr, OpError, VirtError};

/// A listening socket on a host. Accepted connections get a fresh port of
/// their own (`α:2`, `α:3`, …), unlike TCP.
///
/// Also a [`Stream`] of accepted connections. Dropping the listener closes it.
pub struct Listener {
    shared: Arc<ListenerShared>,
    /// The stream has reported the end.
    ended: bool,
    /// Where accepts and the close are recorded, if traced.
    observer: Option<Trace>,
    /// The engine's accept driver while the stream waits for a connection.
    driver: Option<Box<dyn AcceptDriver>>,
}

pub(crate) struct ListenerShared {
    addr: Addr,
    host: Arc<HostInner>,
    state: Mutex<ListenerState>,
    /// Woken when the listener closes, for [`ListenerCloser::closed`].
    closed: Notify,
}

thread_local! {
    /// The listener (its address) and the task whose accept is driving the
    /// engine on this thread at this moment (see
    /// `Listener::poll_accept_driving`).
    static DRIVING: RefCell<Option<(usize, Waker)>> = const { RefCell::new(None) };
}

/// Marks the current task as driving arrivals in for `listener` until
/// dropped.
struct Driving;

impl Driving {
    fn start(listener: &ListenerShared, waker: &Waker) -> Driving {
        Driving::set(Some((listener_id(listener), waker.clone())));
        Driving
    }

    /// Sets what `DRIVING` holds; a no-op while the thread's locals are
    /// being torn down.
    fn set(value: Option<(usize, Waker)>) {
        let _ = DRIVING.try_with(|d| {
            if let Ok(mut d) = d.try_borrow_mut() {
                *d = value;
            }
        });
    }

    /// The task driving arrivals in for `listener` on this thread, if any.
    fn task_for(listener: &ListenerShared) -> Option<Waker> {
        let id = listener_id(listener);
        DRIVING
            .try_with(|d| match d.try_borrow().as_deref() {
                Ok(Some((driven, waker))) if *driven == id => Some(waker.clone()),
                _ => None,
            })
            .ok()
            .flatten()
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        Driving::set(None);
    }
}

fn listener_id(listener: &ListenerShared) -> usize {
    std::ptr::from_ref(listener) as usize
}

/// Takes from `registered`, the wakers of `listener`, those an arrival
/// wakes: all but that of a task driving arrivals in for this listener on
/// this thread, which stays registered. That task looks at the queue right
/// after; waking it while it runs would only re-queue it, as a yield, and on
/// a multi-thread runtime that wakes another worker to steal it.
fn to_wake(listener: &ListenerShared, registered: &mut Vec<Waker>) -> Vec<Waker> {
    match Driving::task_for(listener) {
        Some(driving) if registered.iter().any(|w| w.will_wake(&driving)) => {
            let (stay, wake) = std::mem::take(registered)
                .into_iter()
                .partition(|w| w.will_wake(&driving));
            *registered = stay;
            wake
        }
        _ => std::mem::take(registered),
    }
}

#[derive(Default)]
struct ListenerState {
    queue: VecDeque<(Addr, Box<dyn Incoming>)>,
    closed: Option<VirtError>,
    wakers: Vec<Waker>,
}

impl Listener {
    pub(crate) fn new(shared: Arc<ListenerShared>) -> Listener {
        Listener {
            shared,
            ended: false,
            observer: None,
            driver: None,
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> &Addr {
        &self.shared.addr
    }

    /// Waits for the next connection and allocates its port.
    ///
    /// Ends with "socket is down" once the listener is closed, and "host is
    /// down" / "network is down" when its host or network goes down.
    /// Cancel-safe: dropping the future loses no connection.
    ///
    /// While it waits, the task running it may take in arriving connections
    /// for the whole subnetwork itself (lonet does, see
    /// [`Engine::accept_driver`](crate::Engine::accept_driver)), so keep
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
            return self.shared.poll_accept(cx);
        };
        // The dialer learns of the accept inside `poll_accept`: record it
        // under the trace so the dialer's "connect" comes after.
        trace.around(self.shared.addr.network(), || {
            match self.shared.poll_accept(cx) {
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
        let mut drove = false;
        for _ in 0..ROUNDS {
            if let Poll::Ready(accepted) = self.poll_accept(cx) {
                if drove && self.shared.has_queued() {
                    // What the driver queued did not wake this task, and
                    // another accept of it may be waiting for the rest.
                    cx.waker().wake_by_ref();
                }
                return Poll::Ready(accepted);
            }
            let driver = match driver {
                Some(driver) => driver,
                None => match self.shared.host.subnet.engine.accept_driver() {
                    Some(made) => driver.insert(made),
                    None => return Poll::Pending,
                },
            };
            // What the driver queues here does not wake this task: it looks
            // at the queue again next (see `to_wake`).
            let driving = Driving::start(&self.shared, cx.waker());
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
    /// let l = net.host("α").await?.listen("").await?;
    /// let closer = l.closer();
    /// let server = tokio::spawn(async move { l.accept().await });
    /// closer.close();
    /// closer.closed().await;
    /// assert_eq!(server.await.unwrap().unwrap_err().to_string(), "accept pipecloser α:1: socket is down");
    /// # Ok(()) }
    /// ```
    pub fn closer(&self) -> ListenerCloser {
        ListenerCloser(self.shared.clone())
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
        let s = &self.shared;
        if s.close() {
            if let Some(trace) = &self.observer {
                let addr = s.addr.clone();
                trace.record(s.addr.network(), Event::CloseListener { addr });
            }
        }
    }
}

impl ListenerShared {
    pub(crate) fn new(addr: Addr, host: Arc<HostInner>) -> ListenerShared {
        ListenerShared {
            addr,
            host,
            state: Mutex::default(),
            closed: Notify::new(),
        }
    }

    /// Frees the port and closes with "socket is down"; false if it was
    /// already closed.
    fn close(&self) -> bool {
        self.host.free_listener(self.addr.port(), self);
        self.shut(VirtError::SockDown)
    }

    async fn wait_closed(&self) {
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if lock(&self.state).closed.is_some() {
                return;
            }
            notified.await;
        }
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<Conn>> {
        loop {
            let (src, incoming) = {
                let mut st = lock(&self.state);
                if let Some(reason) = st.closed {
                    return Poll::Ready(Err(self.error(reason)));
                }
                match st.queue.pop_front() {
                    Some(next) => next,
                    None => {
                        if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                            st.wakers.push(cx.waker().clone());
                        }
                        return Poll::Pending;
                    }
                }
            };
            if incoming.is_abandoned() {
                continue;
            }
            // From here to the return nothing awaits: the connection is either
            // handed to our caller or given up, never left half-accepted.
            let port = match self.host.reserve() {
                Ok(port) => port,
                Err(reason) => {
                    incoming.refuse(VirtError::ConnRefused);
                    return Poll::Ready(Err(self.error(reason)));
                }
            };
            let local = self.addr.with_port(port.port);
            let Ok(transport) = incoming.accept(&local) else {
                continue; // the dialer is gone; `port` is freed
            };
            let accepted = port.into_conn(transport, local, src);
            if let Ok(conn) = &accepted {
                tracing::debug!(
                    network = %self.addr.network(),
                    src = %conn.peer_addr(),
                    dst = %conn.local_addr(),
                    listener = %self.addr,
                    "virtnet: accept"
                );
            }
            return Poll::Ready(accepted.map_err(|reason| self.error(reason)));
        }
    }

    /// Whether connections wait in the queue.
    fn has_queued(&self) -> bool {
        !lock(&self.state).queue.is_empty()
    }

    /// Queues a connection; gives it back if the listener is closed.
    pub(crate) fn enqueue(
        &self,
        src: Addr,
        incoming: Box<dyn Incoming>,
    ) -> Result<(), Box<dyn Incoming>> {
        let wakers = {
            let mut st = lock(&self.state);
            if st.closed.is_some() {
                return Err(incoming);
            }
            st.queue.push_back((src, incoming));
            to_wake(self, &mut st.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
        Ok(())
    }

    /// Closes with `reason`: refuses what is queued and wakes the accepts.
    /// False if it was already closed.
    pub(crate) fn shut(&self, reason: VirtError) -> bool {
        let (queue, wakers) = {
            let mut st = lock(&self.state);
            if st.closed.is_some() {
                return false;
            }
            st.closed = Some(reason);
            (
                std::mem::take(&mut st.queue),
                std::mem::take(&mut st.wakers),
            )
        };
        for (_, incoming) in queue {
            incoming.refuse(VirtError::ConnRefused);
        }
        wakers.into_iter().for_each(Waker::wake);
        self.closed.notify_waiters();
        true
    }

    fn error(&self, reason: VirtError) -> io::Error {
        OpError::new("accept", self.addr.network_arc().clone())
            .dst(self.addr.clone())
            .cause(reason)
            .into()
    }
}

/// Closes a [`Listener`], or waits for it to close, from elsewhere (see
/// [`Listener::closer`]).
#[derive(Clone)]
pub struct ListenerCloser(Arc<ListenerShared>);

impl ListenerCloser {
    /// Closes the listener, as [`Listener::close`] does.
    pub fn close(&self) {
        self.0.close();
    }

    /// Completes when the listener is closed: by [`close`](Self::close), by
    /// dropping it, or because its host or network went down. Use it as a
    /// server's graceful-shutdown signal.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let shared = self.0.clone();
        async move { shared.wait_closed().await }
    }
}

impl fmt::Debug for ListenerCloser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ListenerCloser").field(&self.0.addr).finish()
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
            .field("addr", &self.shared.addr)
            .finish()
    }
}
