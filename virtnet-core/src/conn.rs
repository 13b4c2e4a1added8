//! Established connections.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::fault::outbox::Outbox;
use crate::fault::shaper::{Failure, Shaper};
use crate::fault::state::FaultState;
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
    /// The fault machinery: made with the connection if a fault was ever
    /// set on its network by then, else the first time one is seen set (so
    /// a network without faults pays one flag check per operation).
    faulted: Option<Box<Faulted>>,
}

/// A connection's share of the fault machinery.
struct Faulted {
    shaper: Shaper,
    /// Who shapes what this end sends.
    sending: Sending,
    /// Whether the reset was already acted on (transport shut).
    reset_seen: bool,
    /// A reset seen but not yet traced (traced by the caller, which may
    /// hold the trace's lock).
    reset_untraced: bool,
}

/// Who sends this end's bytes.
enum Sending {
    /// Not known yet; being asked if the task is there.
    Unknown(Option<tokio::task::JoinHandle<bool>>),
    /// The transport, as written: the peer shapes what it receives (or
    /// this end cannot send for it).
    Direct,
    /// A task, through the link's faults: the peer does not shape.
    Outbox(Outbox),
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
            faulted: None,
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
        // Resets made before now do not apply to this connection.
        let faults = &port.host.net.faults;
        let born = faults.active().then(|| faults.rules().resets);
        let mut conn = Conn {
            io,
            local,
            peer,
            port: Some(port),
            observer: None,
            faulted: None,
        };
        if let Some(born) = born {
            conn.make_machinery(born);
        }
        conn
    }

    /// Whether a fault was ever set on this connection's network: only then
    /// do reads and writes go through the shaper.
    fn faulted(&self) -> bool {
        self.port
            .as_ref()
            .is_some_and(|p| p.host.net.faults.active())
    }

    /// This connection's fault machinery, made on first use; `None` for a
    /// connection that is not on a virtual host. Made later than the
    /// connection, the connection was made before any fault was set, so
    /// before any reset.
    fn machinery(&mut self) -> Option<&mut Faulted> {
        self.make_machinery(0)
    }

    /// The fault machinery, made now if it does not exist, for a connection
    /// made when the network had made `born` resets.
    fn make_machinery(&mut self, born: u64) -> Option<&mut Faulted> {
        Faulted::of(
            &mut self.faulted,
            self.port.as_ref(),
            &self.local,
            &self.peer,
            born,
        )
    }

    /// This connection's shaper, made on first use.
    fn shaper(&mut self) -> Option<&mut Shaper> {
        self.machinery().map(|f| &mut f.shaper)
    }

    /// A fault's failure as the operation's error. A reset shuts the
    /// transport (so a peer that does not shape, in another process, sees
    /// the connection end), once; its trace event is left for
    /// [`reset_event`](Self::reset_event).
    fn fault_error(&mut self, op: &'static str, failure: Failure) -> io::Error {
        match failure {
            Failure::Io(e) => match self.is_down() {
                Some(reason) => self.down_error(op, reason),
                None => self.error(op, e),
            },
            Failure::Reset => {
                if let Some(f) = self.faulted.as_mut().filter(|f| !f.reset_seen) {
                    f.reset_seen = true;
                    f.reset_untraced = self.observer.is_some();
                    if let Sending::Outbox(outbox) = &mut f.sending {
                        outbox.abort();
                    }
                    // A peer that does not shape sees its connection end
                    // now, and reset once this end is dropped.
                    self.io.reset();
                    (self.io.shutdown_handle())();
                }
                self.error(op, VirtError::ConnReset.into())
            }
        }
    }

    /// The trace event of a reset seen and not yet traced, once.
    fn reset_event(&mut self) -> Option<Event> {
        let f = self.faulted.as_mut().filter(|f| f.reset_untraced)?;
        f.reset_untraced = false;
        Some(Event::Reset {
            local: self.local.clone(),
            peer: self.peer.clone(),
        })
    }

    /// Records a reset not yet traced (outside the trace's lock).
    fn trace_reset(&mut self) {
        if let Some(event) = self.reset_event() {
            if let Some(trace) = &self.observer {
                trace.record(self.local.network(), event);
            }
        }
    }

    /// Records the bytes a partition held and its end set free, if this
    /// connection is traced (outside the trace's lock).
    fn trace_released(&mut self) {
        if self.observer.is_none() || !self.faulted() {
            return;
        }
        let Some(bytes) = self.shaper().and_then(Shaper::take_released) else {
            return;
        };
        if let Some(trace) = &self.observer {
            let (local, peer) = (self.local.clone(), self.peer.clone());
            trace.record(self.local.network(), Event::Released { local, peer, bytes });
        }
    }

    /// Counts written bytes for the partition report (of a traced
    /// connection).
    fn count_written(&mut self, n: usize) {
        if self.faulted() {
            if let Some(shaper) = self.shaper() {
                shaper.wrote(n);
            }
        }
    }

    /// A read through the shaper.
    fn poll_read_faulted(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(reason) = self.is_down() {
            return Poll::Ready(Err(self.down_error("read", reason)));
        }
        let machinery = Faulted::of(
            &mut self.faulted,
            self.port.as_ref(),
            &self.local,
            &self.peer,
            0,
        );
        let Some(f) = machinery else {
            // Not on a virtual host: no faults apply.
            return self.guarded("read", |io| io.poll_read(cx, buf));
        };
        match f.shaper.poll_read(cx, &mut *self.io, buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => match self.is_down() {
                Some(reason) => Poll::Ready(Err(self.down_error("read", reason))),
                None => Poll::Ready(Ok(())),
            },
            Poll::Ready(Err(failure)) => {
                let e = self.fault_error("read", failure);
                self.trace_reset();
                Poll::Ready(Err(e))
            }
        }
    }

    /// Whether this end sends through an [`Outbox`] (its peer does not
    /// shape, and a fault applies to the link to it), finding out first if
    /// need be: the first write on such a link waits for the answer. (Asked
    /// only once a fault was ever set.)
    fn poll_sends_itself(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let Some(port) = self.port.as_ref() else {
            return Poll::Ready(false);
        };
        let Some(f) = Faulted::of(&mut self.faulted, Some(port), &self.local, &self.peer, 0) else {
            return Poll::Ready(false);
        };
        loop {
            match &mut f.sending {
                Sending::Direct => return Poll::Ready(false),
                Sending::Outbox(_) => return Poll::Ready(true),
                Sending::Unknown(None) => {
                    let out = f.shaper.outgoing();
                    if !out.partition && !out.shapes() {
                        // Nothing to shape yet: ask when there is.
                        return Poll::Ready(false);
                    }
                    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                        f.sending = Sending::Direct;
                        continue;
                    };
                    let (net, peer) = (port.host.net.clone(), self.peer.host().to_owned());
                    let ask = runtime.spawn(async move { net.peer_shapes(&peer).await });
                    f.sending = Sending::Unknown(Some(ask));
                }
                Sending::Unknown(Some(ask)) => {
                    let shapes = match Pin::new(ask).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(answer) => answer.unwrap_or(true),
                    };
                    let writer = (!shapes).then(|| self.io.writer()).flatten();
                    f.sending = match writer {
                        None => Sending::Direct,
                        Some(writer) => {
                            let (link, seed) = f.shaper.outgoing_link();
                            let link = link.clone();
                            let born = f.shaper.born();
                            let state = port.host.net.faults.clone();
                            match Outbox::start(state, link, born, writer, seed) {
                                Some(outbox) => Sending::Outbox(outbox),
                                None => Sending::Direct,
                            }
                        }
                    };
                }
            }
        }
    }

    /// A write (`data`) or shutdown (`None`) through the outbox.
    fn outbox_write(
        &mut self,
        op: &'static str,
        cx: &mut Context<'_>,
        data: Option<&[u8]>,
    ) -> Poll<io::Result<usize>> {
        if let Some(reason) = self.is_down() {
            return Poll::Ready(Err(self.down_error(op, reason)));
        }
        if let Some(Err(failure)) = self.shaper().map(|s| s.check_write(cx, false)) {
            return Poll::Ready(Err(self.fault_error(op, failure)));
        }
        let Some(f) = self.faulted.as_deref_mut() else {
            return Poll::Ready(Ok(0));
        };
        let out = f.shaper.outgoing().clone();
        let Sending::Outbox(outbox) = &mut f.sending else {
            return Poll::Ready(Ok(0));
        };
        let done = match data {
            Some(data) => outbox.poll_write(cx, data, &out),
            None => Poll::Ready(outbox.shutdown().map(|()| 0)),
        };
        match done {
            Poll::Pending => {
                if let Some(Err(failure)) = self.shaper().map(|s| s.check_write(cx, true)) {
                    return Poll::Ready(Err(self.fault_error(op, failure)));
                }
                Poll::Pending
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                Poll::Ready(Err(self.fault_error(op, Failure::Reset)))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.error(op, e))),
            Poll::Ready(Ok(n)) => Poll::Ready(Ok(n)),
        }
    }

    /// A write-side operation: through the outbox if this end sends
    /// itself, else through the transport by `poll` (after the fault checks
    /// if a fault was ever set).
    fn send<T>(
        &mut self,
        op: &'static str,
        cx: &mut Context<'_>,
        data: Option<&[u8]>,
        done: impl FnOnce(usize) -> T,
        poll: impl FnOnce(Pin<&mut dyn Transport>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if !self.faulted() {
            return self.guarded(op, |io| poll(io, cx));
        }
        match self.poll_sends_itself(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(true) => self.outbox_write(op, cx, data).map_ok(done),
            Poll::Ready(false) => self.guarded_faulted(op, cx, poll),
        }
    }

    /// Runs a write-side poll after checking for a reset, and asks to be
    /// woken by a fault change while it waits.
    fn guarded_faulted<T>(
        &mut self,
        op: &'static str,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut dyn Transport>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if let Some(Err(failure)) = self.shaper().map(|s| s.check_write(cx, false)) {
            return Poll::Ready(Err(self.fault_error(op, failure)));
        }
        let done = self.guarded(op, |io| poll(io, cx));
        if done.is_pending() {
            if let Some(Err(failure)) = self.shaper().map(|s| s.check_write(cx, true)) {
                return Poll::Ready(Err(self.fault_error(op, failure)));
            }
        }
        done
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

    /// Resets the connection and closes this end, as a TCP RST does (or
    /// closing a socket with a zero linger time): the peer's pending (or
    /// next) read or write fails with "connection reset"
    /// ([`io::ErrorKind::ConnectionReset`]) instead of seeing end of
    /// stream (as over TCP, later ones may see end of stream), and bytes
    /// not yet read by it may be lost. For a proxy that
    /// carries a reset from one side to the other.
    ///
    /// pipenet and lonet carry resets; a connection made with
    /// [`Conn::new`], or by an engine that cannot, is closed instead
    /// (see [`Transport::reset`]).
    pub fn reset(mut self) {
        if let Some(Sending::Outbox(outbox)) = self.faulted.as_deref_mut().map(|f| &mut f.sending) {
            outbox.abort();
        }
        self.io.reset();
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
        let this = self.get_mut();
        if this.faulted() {
            let read = this.poll_read_faulted(cx, buf);
            this.trace_released();
            return read;
        }
        this.guarded("read", |io| io.poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let write = |io: Pin<&mut dyn Transport>, cx: &mut Context<'_>| io.poll_write(cx, buf);
        let Some(trace) = this.observer.clone() else {
            return this.send("write", cx, Some(buf), |n| n, write);
        };
        this.trace_released();
        let network = this.local.network_arc().clone();
        trace.around(&network, || {
            let written = this.send("write", cx, Some(buf), |n| n, write);
            if let Poll::Ready(Ok(n)) = written {
                this.count_written(n);
            }
            let event = match written {
                Poll::Ready(Ok(n @ 1..)) => Some(this.event_write(buf[..n].to_vec())),
                Poll::Ready(Err(_)) => this.reset_event(),
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
        // Through an outbox, the first non-empty buffer.
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        let write =
            |io: Pin<&mut dyn Transport>, cx: &mut Context<'_>| io.poll_write_vectored(cx, bufs);
        let Some(trace) = this.observer.clone() else {
            return this.send("write", cx, Some(first), |n| n, write);
        };
        this.trace_released();
        let network = this.local.network_arc().clone();
        trace.around(&network, || {
            let written = this.send("write", cx, Some(first), |n| n, write);
            if let Poll::Ready(Ok(n)) = written {
                this.count_written(n);
            }
            let event = match written {
                Poll::Ready(Ok(n @ 1..)) => {
                    let data = bufs
                        .iter()
                        .flat_map(|b| b.iter().copied())
                        .take(n)
                        .collect();
                    Some(this.event_write(data))
                }
                Poll::Ready(Err(_)) => this.reset_event(),
                _ => None,
            };
            (written, event)
        })
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Through an outbox, the bytes are on their way (as a TCP socket's).
        let flushed = this.send("write", cx, Some(&[]), |_| (), |io, cx| io.poll_flush(cx));
        if matches!(flushed, Poll::Ready(Err(_))) {
            this.trace_reset();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let shut = |io: Pin<&mut dyn Transport>, cx: &mut Context<'_>| io.poll_shutdown(cx);
        let Some(trace) = this.observer.clone() else {
            return this.send("shutdown", cx, None, |_| (), shut);
        };
        let network = this.local.network_arc().clone();
        trace.around(&network, || {
            let done = this.send("shutdown", cx, None, |_| (), shut);
            let event = match done {
                Poll::Ready(Ok(())) => Some(Event::Shutdown {
                    local: this.local.clone(),
                    peer: this.peer.clone(),
                }),
                Poll::Ready(Err(_)) => this.reset_event(),
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
        // A fault reset this connection while nobody used it: the
        // transport was only shut (the peer saw end of stream). Reset it
        // now, so that a peer that does not shape sees the reset as well.
        if self.faulted() {
            if let Some(f) = self.machinery().filter(|f| !f.reset_seen) {
                if f.shaper.is_reset() {
                    self.io.reset();
                }
            }
        }
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

impl Faulted {
    /// The machinery in `slot`, made there first if it is empty, for a
    /// connection on `port` from `local` to `peer` made when the network
    /// had made `born` resets; `None` without a port.
    fn of<'a>(
        slot: &'a mut Option<Box<Faulted>>,
        port: Option<&PortGuard>,
        local: &Addr,
        peer: &Addr,
        born: u64,
    ) -> Option<&'a mut Faulted> {
        if slot.is_none() {
            let state: Arc<FaultState> = port?.host.net.faults.clone();
            let shaper = Shaper::new(
                state,
                local.host(),
                peer.host(),
                (local.port(), peer.port()),
                born,
            );
            *slot = Some(Box::new(Faulted {
                shaper,
                sending: Sending::Unknown(None),
                reset_seen: false,
                reset_untraced: false,
            }));
        }
        slot.as_deref_mut()
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
