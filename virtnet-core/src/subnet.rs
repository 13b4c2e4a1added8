//! The subnetwork: one process's (or one pipenet's) share of a network.
//!
//! It holds the hosts created here, the engine that moves bytes, and the
//! registry shared with the other subnetworks of the same network. Closing it
//! takes everything down.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::down::Down;
use crate::engine::{Dialed, Engine, Inbox, Incoming, Undelivered};
use crate::host::{Host, HostInner};
use crate::ports::Socket;
use crate::registry::{Registry, RegistryCause, RegistryError};
use crate::{lock, Addr, OpError, VirtError};

/// One subnetwork of a virtual network: the hosts of one process, on top of
/// an [`Engine`] and a shared [`Registry`].
///
/// Cheap to clone; clones share the same subnetwork. Resources are released
/// by [`close`](Self::close) (or by closing the last host after
/// [`auto_close`](Self::auto_close)).
#[derive(Clone)]
pub struct SubNetwork(pub(crate) Arc<SubNetInner>);

pub(crate) struct SubNetInner {
    pub(crate) network: Arc<str>,
    pub(crate) engine: Box<dyn Engine>,
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) hosts: Mutex<HashMap<Arc<str>, Arc<HostInner>>>,
    /// Host data learned from the registry by successful dials, so the next
    /// dial to the same host needs no query (see `dial_via_registry`).
    known: Mutex<HashMap<String, String>>,
    pub(crate) down: Down,
    auto_close: AtomicBool,
}

impl SubNetwork {
    /// Builds a subnetwork of the network whose full name is `network`
    /// (`pipeX`, `lonetmynet`), finding hosts through `registry`. The engine
    /// is made by `make_engine`, which receives the [`Inbox`] where the
    /// engine delivers incoming connections.
    pub fn new<E: Engine>(
        network: impl Into<Arc<str>>,
        registry: Arc<dyn Registry>,
        make_engine: impl FnOnce(Inbox) -> E,
    ) -> SubNetwork {
        let network = network.into();
        SubNetwork(Arc::new_cyclic(|weak| SubNetInner {
            network,
            engine: Box::new(make_engine(Inbox {
                subnet: weak.clone(),
            })),
            registry,
            hosts: Mutex::default(),
            known: Mutex::default(),
            down: Down::default(),
            auto_close: AtomicBool::new(false),
        }))
    }

    /// The full name of the network.
    pub fn network(&self) -> &str {
        &self.0.network
    }

    /// The registry this subnetwork announces its hosts in.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.0.registry
    }

    /// Creates host `name` here and announces it in the registry.
    ///
    /// Fails with "host already registered" if any subnetwork of the network
    /// has it, and "network is down" after [`close`](Self::close). Dropping
    /// the future before it completes leaves no host and no registry entry.
    pub async fn new_host(&self, name: &str) -> io::Result<Host> {
        let inner = &self.0;
        let fail = |cause: io::Error| -> io::Error {
            OpError::new("new host", inner.network.clone())
                .dst_text(name)
                .cause(cause)
                .into()
        };
        if let Some(reason) = inner.down.get() {
            return Err(fail(reason.into()));
        }
        if lock(&inner.hosts).contains_key(name) {
            return Err(fail(VirtError::HostDup.into()));
        }
        let data = inner.engine.new_host(name).await.map_err(fail)?;
        let mut announced = AnnounceGuard {
            registry: inner.registry.clone(),
            entry: Some((name.to_owned(), data.clone())),
        };
        if let Err(e) = inner.registry.announce(name, &data).await {
            announced.disarm();
            return Err(fail(registry_io(e)));
        }
        let host = Arc::new(HostInner::new(name.into(), data, inner.clone()));
        {
            let mut hosts = lock(&inner.hosts);
            if let Some(reason) = inner.down.get() {
                return Err(fail(reason.into()));
            }
            if hosts.contains_key(name) {
                return Err(fail(VirtError::HostDup.into()));
            }
            hosts.insert(host.name.clone(), host.clone());
        }
        announced.disarm();
        Ok(Host(host))
    }

    /// The host `name` of this subnetwork, if it exists and is not closed.
    pub fn host(&self, name: &str) -> Option<Host> {
        lock(&self.0.hosts).get(name).cloned().map(Host)
    }

    /// The hosts of this subnetwork, sorted by name.
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts: Vec<Host> = lock(&self.0.hosts).values().cloned().map(Host).collect();
        hosts.sort_by(|a, b| a.name().cmp(b.name()));
        hosts
    }

    /// Closes the subnetwork when its last host is closed (the hosts it has
    /// now, or later ones).
    pub fn auto_close(&self) {
        self.0.auto_close.store(true, Ordering::Release);
    }

    /// Whether the subnetwork is closed.
    pub fn is_closed(&self) -> bool {
        self.0.down.get().is_some()
    }

    /// Shuts everything down: every host (blocked operations end with
    /// "network is down"), their registry entries where the registry can
    /// remove them, the engine and the registry. Idempotent.
    pub async fn close(&self) -> io::Result<()> {
        let inner = &self.0;
        if !inner.down.set(VirtError::NetDown) {
            return Ok(());
        }
        tracing::debug!(network = %inner.network, "virtnet: network closed");
        let hosts: Vec<Arc<HostInner>> = lock(&inner.hosts).drain().map(|(_, h)| h).collect();
        for host in &hosts {
            host.shutdown(VirtError::NetDown);
            let _ = inner.registry.unannounce(&host.name, &host.data).await;
        }
        let engine = inner.engine.close().await;
        let registry = inner.registry.close().await;
        engine?;
        registry.map_err(io::Error::from)
    }
}

impl SubNetInner {
    pub(crate) fn maybe_auto_close(&self) -> bool {
        self.auto_close.load(Ordering::Acquire) && lock(&self.hosts).is_empty()
    }

    /// Has the engine dial `dst` from `src` with `dst`'s host data.
    ///
    /// The data a successful dial used is remembered, and the next dial to
    /// that host uses it without asking the registry (a query can cost more
    /// than the rest of a dial). If that attempt fails with anything but a
    /// refusal (which the host's own subnetwork answered), the data may be
    /// stale: the host closed, or moved to another process. Then the
    /// registry is asked after all; if it holds the same data, the failure
    /// stands as it is, and only if the host moved is it dialed again, at
    /// its new data. The source port stays the same.
    pub(crate) async fn dial_via_registry(&self, src: &Addr, dst: &Addr) -> io::Result<Dialed> {
        let host = dst.host();
        let known = lock(&self.known).get(host).cloned();
        let mut failed = None;
        if let Some(data) = known {
            match self.engine.dial(src, dst, &data).await {
                Err(e) if VirtError::of(&e) != Some(VirtError::ConnRefused) => {
                    let mut known = lock(&self.known);
                    if known.get(host) == Some(&data) {
                        known.remove(host);
                    }
                    failed = Some((data, e));
                }
                answered => return answered,
            }
        }
        let data = self.registry.query(host).await.map_err(registry_io)?;
        if let Some((stale, e)) = failed {
            if stale == data {
                return Err(e);
            }
        }
        let dialed = self.engine.dial(src, dst, &data).await?;
        lock(&self.known).insert(host.to_owned(), data);
        Ok(dialed)
    }

    pub(crate) fn deliver(
        &self,
        src: Addr,
        dst: &Addr,
        incoming: Box<dyn Incoming>,
    ) -> Result<(), Undelivered> {
        let refuse = |reason, incoming| Err(Undelivered { reason, incoming });
        if self.down.get().is_some() {
            return refuse(VirtError::NetDown, incoming);
        }
        let Some(host) = lock(&self.hosts).get(dst.host()).cloned() else {
            return refuse(VirtError::NoHost, incoming);
        };
        let listener = match lock(&host.sockets).get(dst.port()) {
            Some(Socket::Listener(l)) => l.clone(),
            _ => return refuse(VirtError::ConnRefused, incoming),
        };
        listener
            .enqueue(src, incoming)
            .or_else(|incoming| refuse(VirtError::ConnRefused, incoming))
    }
}

impl fmt::Debug for SubNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubNetwork")
            .field("network", &self.0.network)
            .field("registry", &self.0.registry.name())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A registry failure as the cause of a network operation: the canonical
/// ones become their [`VirtError`] (so a dial says "no such host"); others
/// keep the registry's own error.
pub(crate) fn registry_io(e: RegistryError) -> io::Error {
    match e.cause() {
        RegistryCause::NoHost => VirtError::NoHost.into(),
        RegistryCause::HostDup => VirtError::HostDup.into(),
        RegistryCause::Down => VirtError::RegistryDown.into(),
        _ => e.into(),
    }
}

/// Removes a registry entry whose announce may have happened but whose host
/// was never created (the `new_host` future was dropped, or the network went
/// down meanwhile).
struct AnnounceGuard {
    registry: Arc<dyn Registry>,
    entry: Option<(String, String)>,
}

impl AnnounceGuard {
    fn disarm(&mut self) {
        self.entry = None;
    }
}

impl Drop for AnnounceGuard {
    fn drop(&mut self) {
        let Some((host, data)) = self.entry.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let registry = self.registry.clone();
        rt.spawn(async move {
            let _ = registry.unannounce(&host, &data).await;
        });
    }
}
