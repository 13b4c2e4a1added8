//! Hosts: named access points with their own socket table.
//!
//! Ports are allocated here ([`HostInner::reserve`], `listen`), a dial starts
//! here ([`Host::dial`]), and a host's shutdown reaches all its sockets from
//! here ([`HostInner::shutdown`]).

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

use crate::conn::Conn;
use crate::down::Down;
use crate::engine::Transport;
use crate::listener::{Listener, ListenerShared};
use crate::ports::{Socket, SocketTable};
use crate::subnet::{SubNetInner, SubNetwork};
use crate::{lock, Addr, OpError, VirtError};

/// A host on a virtual network: dial from it, listen on it.
///
/// Cheap to clone; clones are the same host. Implements
/// [`Networker`](crate::Networker).
#[derive(Clone)]
pub struct Host(pub(crate) Arc<HostInner>);

pub(crate) struct HostInner {
    pub(crate) name: Arc<str>,
    /// What the registry holds for this host.
    pub(crate) data: String,
    pub(crate) subnet: Arc<SubNetInner>,
    pub(crate) down: Down,
    pub(crate) sockets: Mutex<SocketTable>,
}

impl Host {
    /// The host's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The full name of the network.
    pub fn network(&self) -> &str {
        &self.0.subnet.network
    }

    /// The subnetwork this host lives on.
    pub fn subnetwork(&self) -> SubNetwork {
        SubNetwork(self.0.subnet.clone())
    }

    /// Whether the host (or its subnetwork) is closed.
    pub fn is_closed(&self) -> bool {
        self.0.down.get().is_some()
    }

    /// Connects to `addr` (`host:port`; an empty host means this host).
    ///
    /// The source port is allocated first (the lowest free one), so even a
    /// failed dial names its source: `dial pipeX α:1->α:0: connection refused`.
    /// Dropping the future frees that port and leaves nothing queued that an
    /// accept could return.
    pub async fn dial(&self, addr: &str) -> io::Result<Conn> {
        let h = &self.0;
        let net = &h.subnet.network;
        let port = h.reserve().map_err(|reason| {
            io::Error::from(
                OpError::new("dial", net.clone())
                    .src(Addr::new(net.clone(), h.name.clone(), 0))
                    .dst_text(addr)
                    .cause(reason),
            )
        })?;
        let src = Addr::new(net.clone(), h.name.clone(), port.port);
        let fail = |dst: Option<&Addr>, cause: io::Error| -> io::Error {
            let e = OpError::new("dial", net.clone()).src(src.clone());
            match dst {
                Some(dst) => e.dst(dst.clone()),
                None => e.dst_text(addr),
            }
            .cause(cause)
            .into()
        };
        let dst = h.parse(addr).map_err(|e| fail(None, e))?;
        let attempt = h.subnet.dial_via_registry(&src, &dst);
        let dialed = tokio::select! {
            dialed = attempt => dialed,
            reason = h.down.wait() => Err(reason.into()),
        };
        let conn = dialed.and_then(|dialed| {
            port.into_conn(dialed.transport, src.clone(), dialed.peer)
                .map_err(io::Error::from)
        });
        match conn {
            Ok(conn) => {
                tracing::debug!(network = %net, src = %src, dst = %conn.peer_addr(), "virtnet: dial");
                Ok(conn)
            }
            Err(e) => {
                let e = fail(Some(&dst), e);
                tracing::debug!(network = %net, src = %src, dst = %dst, error = %e, "virtnet: dial failed");
                Err(e)
            }
        }
    }

    /// Starts listening on `laddr` (`:port` or `host:port` with this host's
    /// name; port 0 or `""` takes the lowest free port).
    ///
    /// Fails with "address already in use" if the port is taken, and "cannot
    /// listen on requested address" for another host's address.
    pub async fn listen(&self, laddr: &str) -> io::Result<Listener> {
        let h = &self.0;
        let laddr = if laddr.is_empty() { ":0" } else { laddr };
        let fail = |dst: Option<&Addr>, cause: io::Error| -> io::Error {
            let e = OpError::new("listen", h.subnet.network.clone());
            match dst {
                Some(dst) => e.dst(dst.clone()),
                None => e.dst_text(laddr),
            }
            .cause(cause)
            .into()
        };
        let addr = h.parse(laddr).map_err(|e| fail(None, e))?;
        if addr.host() != &*h.name {
            return Err(fail(Some(&addr), VirtError::AddrNoListen.into()));
        }
        let mut table = lock(&h.sockets);
        if let Some(reason) = h.down.get() {
            return Err(fail(Some(&addr), reason.into()));
        }
        let port = if addr.port() == 0 {
            table
                .alloc(Socket::Reserved)
                .ok_or_else(|| fail(Some(&addr), VirtError::AddrInUse.into()))?
        } else {
            table
                .bind(addr.port(), Socket::Reserved)
                .map_err(|_| fail(Some(&addr), VirtError::AddrInUse.into()))?;
            addr.port()
        };
        let shared = Arc::new(ListenerShared::new(addr.with_port(port), self.0.clone()));
        table.replace(port, Socket::Listener(shared.clone()));
        tracing::debug!(network = %h.subnet.network, addr = %addr.with_port(port), "virtnet: listen");
        Ok(Listener::new(shared))
    }

    /// Closes the host: its listeners and connections shut down (blocked
    /// operations end with "host is down"), new operations fail, and its
    /// registry entry is removed where the registry supports that, so the
    /// name can be taken again. Idempotent.
    pub async fn close(&self) -> io::Result<()> {
        let h = &self.0;
        if !h.shutdown(VirtError::HostDown) {
            return Ok(());
        }
        tracing::debug!(network = %h.subnet.network, host = %h.name, "virtnet: host closed");
        {
            let mut hosts = lock(&h.subnet.hosts);
            if hosts.get(&h.name).is_some_and(|x| Arc::ptr_eq(x, h)) {
                hosts.remove(&h.name);
            }
        }
        let _ = h.subnet.registry.unannounce(&h.name, &h.data).await;
        if h.subnet.maybe_auto_close() {
            SubNetwork(h.subnet.clone()).close().await?;
        }
        Ok(())
    }
}

impl HostInner {
    pub(crate) fn new(name: Arc<str>, data: String, subnet: Arc<SubNetInner>) -> HostInner {
        HostInner {
            name,
            data,
            subnet,
            down: Down::default(),
            sockets: Mutex::default(),
        }
    }

    /// Parses `addr` in this host's network; an empty host means this host.
    fn parse(&self, addr: &str) -> io::Result<Addr> {
        let a = Addr::parse(self.subnet.network.clone(), addr)?;
        Ok(if a.host().is_empty() {
            Addr::new(a.network_arc().clone(), self.name.clone(), a.port())
        } else {
            a
        })
    }

    /// Takes the lowest free port, held until the guard is dropped or
    /// becomes a connection.
    pub(crate) fn reserve(self: &Arc<Self>) -> Result<PortGuard, VirtError> {
        let mut table = lock(&self.sockets);
        if let Some(reason) = self.down.get() {
            return Err(reason);
        }
        let port = table.alloc(Socket::Reserved).ok_or(VirtError::AddrInUse)?;
        Ok(PortGuard {
            host: self.clone(),
            port,
        })
    }

    /// Frees `port` if it holds `listener`.
    pub(crate) fn free_listener(&self, port: u32, listener: &ListenerShared) {
        let mut table = lock(&self.sockets);
        if matches!(table.get(port), Some(Socket::Listener(l)) if std::ptr::eq(&**l, listener)) {
            table.free(port);
        }
    }

    /// Takes the host down with `reason`; false if it already was.
    pub(crate) fn shutdown(&self, reason: VirtError) -> bool {
        if !self.down.set(reason) {
            return false;
        }
        let sockets = lock(&self.sockets).drain();
        for socket in sockets {
            match socket {
                Socket::Listener(l) => {
                    l.shut(reason);
                }
                Socket::Conn(abort) => abort(),
                Socket::Reserved => {}
            }
        }
        true
    }
}

/// A port held on a host; freed on drop unless it became a [`Conn`].
pub(crate) struct PortGuard {
    pub(crate) host: Arc<HostInner>,
    pub(crate) port: u32,
}

impl PortGuard {
    /// Turns the reserved port into an established connection.
    pub(crate) fn into_conn(
        self,
        transport: Box<dyn Transport>,
        local: Addr,
        peer: Addr,
    ) -> Result<Conn, VirtError> {
        let abort = transport.abort_handle();
        {
            let mut table = lock(&self.host.sockets);
            if let Some(reason) = self.host.down.get() {
                return Err(reason);
            }
            if !table.replace(self.port, Socket::Conn(abort)) {
                return Err(VirtError::HostDown);
            }
        }
        Ok(Conn::new(transport, local, peer, self))
    }

    pub(crate) fn is_down(&self) -> Option<VirtError> {
        self.host.down.get()
    }
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        lock(&self.host.sockets).free(self.port);
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("network", &self.network())
            .field("name", &self.name())
            .field("closed", &self.is_closed())
            .finish()
    }
}
