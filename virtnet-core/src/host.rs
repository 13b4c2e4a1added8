//! Hosts: named access points of a subnetwork, the user's handle on them.
//!
//! A dial starts here ([`Host::dial`]), a listener is bound here
//! ([`Host::listen`]); the socket table and shutdown are the kernel's
//! ([`crate::kernel::HostCore`]).

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::conn::Conn;
use crate::kernel::HostCore;
use crate::listener::Listener;
use crate::networker::Networker;
use crate::{Addr, OpError, VirtError};

/// A host on a virtual network: dial from it, listen on it.
///
/// Cheap to clone; clones are the same host. Implements
/// [`Networker`](crate::Networker). The host lives while any handle of it
/// (a clone, a listener, a connection) does; when the last is dropped it
/// leaves the subnetwork and the registry, as if closed.
#[derive(Clone)]
pub struct Host(pub(crate) Arc<HostCore>);

impl Host {
    /// The host's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The full name of the network.
    pub fn network(&self) -> &str {
        &self.0.net.network
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
    /// accept could return. If the host or its network goes down meanwhile,
    /// the dial fails with that reason.
    pub async fn dial(&self, addr: &str) -> io::Result<Conn> {
        let h = &self.0;
        let net = &h.net.network;
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
        let dst = self.parse(addr).map_err(|e| fail(None, e))?;
        let attempt = async {
            // Boxed: a network without faults keeps a small dial future.
            if h.net.faults.active() {
                Box::pin(h.net.dial_faults(&h.name, dst.host())).await?;
            }
            let dialed = h.net.dial_via_registry(&src, &dst).await?;
            if h.net.faults.active() {
                Box::pin(h.net.dial_reply_faults(&h.name, dst.host())).await;
            }
            Ok(dialed)
        };
        let dialed = tokio::select! {
            biased;
            reason = h.down.wait() => Err(reason.into()),
            dialed = attempt => dialed,
        };
        let conn = dialed.and_then(|dialed| {
            port.connect(dialed.transport.shutdown_handle(), &dialed.peer)?;
            Ok(Conn::on_port(
                dialed.transport,
                src.clone(),
                dialed.peer,
                port,
            ))
        });
        match conn {
            Ok(conn) => {
                tracing::debug!(network = %net, src = %src, dst = %conn.peer_addr(), "virtnet: dial");
                Ok(conn)
            }
            Err(e) => {
                // A dial that failed because the network is going down (a
                // listener shut with the rest) fails with that reason.
                let e = match h.down.get() {
                    Some(reason) => reason.into(),
                    None => e,
                };
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
            let e = OpError::new("listen", h.net.network.clone());
            match dst {
                Some(dst) => e.dst(dst.clone()),
                None => e.dst_text(laddr),
            }
            .cause(cause)
            .into()
        };
        let addr = self.parse(laddr).map_err(|e| fail(None, e))?;
        if addr.host() != &*h.name {
            return Err(fail(Some(&addr), VirtError::AddrNoListen.into()));
        }
        let queue = h
            .bind_listener(&addr)
            .map_err(|reason| fail(Some(&addr), reason.into()))?;
        tracing::debug!(network = %h.net.network, addr = %queue.addr, "virtnet: listen");
        Ok(Listener::on_port(queue, h.clone()))
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
        tracing::debug!(network = %h.net.network, host = %h.name, "virtnet: host closed");
        h.leave().await;
        if h.net.auto_close_due() {
            h.net.close().await?;
        }
        Ok(())
    }

    /// Parses `addr` in this host's network; an empty host means this host.
    fn parse(&self, addr: &str) -> io::Result<Addr> {
        let h = &self.0;
        let a = Addr::parse(h.net.network.clone(), addr)?;
        Ok(if a.host().is_empty() {
            Addr::new(h.net.network.clone(), h.name.clone(), a.port())
        } else {
            a
        })
    }
}

#[async_trait::async_trait]
impl Networker for Host {
    fn network(&self) -> &str {
        Host::network(self)
    }

    fn name(&self) -> &str {
        Host::name(self)
    }

    async fn dial(&self, addr: &str) -> io::Result<Conn> {
        Host::dial(self, addr).await
    }

    async fn listen(&self, laddr: &str) -> io::Result<Listener> {
        Host::listen(self, laddr).await
    }

    async fn close(&self) -> io::Result<()> {
        Host::close(self).await
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
