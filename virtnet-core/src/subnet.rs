//! The subnetwork: one process's (or one pipenet's) share of a network, the
//! user's handle on it.
//!
//! It holds the hosts created here, the engine that moves bytes, and the
//! registry shared with the other subnetworks of the same network (all in
//! [`crate::kernel::NetCore`]). Closing it takes everything down.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::engine::{Deliver, Engine, Inbox, Liveness};
use crate::faults::Faults;
use crate::host::Host;
use crate::kernel::{registry_io, run_in_background, HostCore, NetCore};
use crate::registry::{Registry, RegistryCause};
use crate::{addr, OpError, VirtError};

/// One subnetwork of a virtual network: the hosts of one process, on top of
/// an [`Engine`] and a shared [`Registry`].
///
/// Cheap to clone; clones share the same subnetwork. [`close`](Self::close)
/// takes it down at once. Dropping the last handle of the subnetwork and of
/// its hosts, listeners and connections releases everything too: the
/// engine stops, and hosts leave the registry in the background.
#[derive(Clone)]
pub struct SubNetwork(pub(crate) Arc<NetCore>);

impl SubNetwork {
    /// Builds a subnetwork of the network whose full name is `network`
    /// (`pipeX`, `lonetmynet`), finding hosts through `registry`. The engine
    /// is made by `make_engine`, which receives the [`Inbox`] where the
    /// engine delivers arriving connections.
    pub fn new<E: Engine>(
        network: impl Into<Arc<str>>,
        registry: Arc<dyn Registry>,
        make_engine: impl FnOnce(Inbox) -> E,
    ) -> SubNetwork {
        let network = network.into();
        SubNetwork(Arc::new_cyclic(|weak: &std::sync::Weak<NetCore>| {
            let subnet: std::sync::Weak<dyn Deliver> = weak.clone();
            let engine = make_engine(Inbox { subnet });
            NetCore::new(network, registry, Box::new(engine))
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
    /// has it; a name registered to a host that is provably gone (its
    /// process died: see [`Engine::probe`](crate::engine::Engine::probe)) is
    /// taken over instead, with "network is down" after [`close`](Self::close), and with
    /// [`io::ErrorKind::InvalidInput`] ([`InvalidHostName`](crate::InvalidHostName))
    /// for a name no address can reach: empty, one that does not read back
    /// the same from `name:port`, or one the engine cannot carry. Dropping
    /// the future before it completes leaves no host and no registry entry.
    pub async fn new_host(&self, name: &str) -> io::Result<Host> {
        let net = &self.0;
        let fail = |cause: io::Error| -> io::Error {
            OpError::new("new host", net.network.clone())
                .dst_text(name)
                .cause(cause)
                .into()
        };
        if let Some(reason) = net.down.get() {
            return Err(fail(reason.into()));
        }
        addr::check_host_name(name).map_err(|e| fail(e.into()))?;
        if net.host(name).is_some() {
            return Err(fail(VirtError::HostDup.into()));
        }
        net.follow_faults().await;
        let data = net.engine.new_host(name).await.map_err(fail)?;
        // The host exists here before its name is claimed, so a process
        // probing the name meanwhile finds it alive (not "no such host",
        // which would let that process take the name over as well).
        let host = Arc::new(HostCore::new(name.into(), data.clone(), net.clone()));
        net.add_host(&host).map_err(|reason| fail(reason.into()))?;
        let mut unborn = Unborn(Some(host.clone()));
        let mut announced = AnnounceGuard {
            registry: net.registry.clone(),
            entry: Some((name.to_owned(), data.clone())),
        };
        if let Err(e) = net.registry.announce(name, &data).await {
            if !matches!(e.cause(), RegistryCause::HostDup) {
                announced.disarm();
                return Err(fail(registry_io(e)));
            }
            // The name is taken; by a host that is dead, it is taken over.
            if let Err(e) = reclaim(net, name, &data).await {
                announced.disarm();
                return Err(fail(e));
            }
        }
        if let Some(reason) = host.down.get() {
            // The network closed meanwhile (and unannounced the host).
            return Err(fail(reason.into()));
        }
        unborn.disarm();
        announced.disarm();
        Ok(Host(host))
    }

    /// The network's faults: set partitions, latency, bandwidth limits and
    /// resets between its hosts (see [`Faults`]).
    pub fn faults(&self) -> Faults {
        Faults::new(self.0.clone())
    }

    /// The host `name` of this subnetwork, if it exists (some handle of it
    /// is alive) and is not closed.
    pub fn host(&self, name: &str) -> Option<Host> {
        self.0.host(name).map(Host)
    }

    /// The hosts of this subnetwork, sorted by name.
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts: Vec<Host> = self.0.hosts().into_iter().map(Host).collect();
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

    /// Shuts everything down: every host is marked down, then their
    /// sockets are shut (blocked operations on any host end with "network
    /// is down"), their registry entries are removed where the registry
    /// can, and the engine and the registry are closed. Idempotent.
    pub async fn close(&self) -> io::Result<()> {
        self.0.close().await
    }
}

impl Host {
    /// The subnetwork this host lives on.
    pub fn subnetwork(&self) -> SubNetwork {
        SubNetwork(self.0.net.clone())
    }
}

/// Takes over `name`, registered to a host that is gone, for a host served
/// at `data`: only on proof that the registered host is dead, and only if
/// its entry is unchanged meanwhile.
async fn reclaim(net: &NetCore, name: &str, data: &str) -> io::Result<()> {
    let held = match net.registry.query(name).await {
        Ok(held) => held,
        // The holder left meanwhile: the name is free.
        Err(e) if matches!(e.cause(), RegistryCause::NoHost) => {
            return net.registry.announce(name, data).await.map_err(registry_io);
        }
        Err(e) => return Err(registry_io(e)),
    };
    match net.engine.probe(name, &held).await {
        Liveness::Dead => {}
        Liveness::Alive => return Err(VirtError::HostDup.into()),
        Liveness::Unknown(why) => return Err(NameTaken { why }.into()),
    }
    match net.registry.replace(name, &held, data).await {
        Ok(true) => {
            tracing::info!(network = %net.network, host = name, dead = held, "virtnet: took over the name of a dead host");
            Ok(())
        }
        // Someone else took it over first.
        Ok(false) => Err(VirtError::HostDup.into()),
        Err(e) if matches!(e.cause(), RegistryCause::Unsupported) => Err(NameTaken {
            why: format!("its holder at {held} is gone, but the registry cannot replace entries"),
        }
        .into()),
        Err(e) => Err(registry_io(e)),
    }
}

/// "host already registered", with why the name could not be taken over.
#[derive(Debug)]
struct NameTaken {
    why: String,
}

impl fmt::Display for NameTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (not taken over: {})", VirtError::HostDup, self.why)
    }
}

impl std::error::Error for NameTaken {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&VirtError::HostDup)
    }
}

impl From<NameTaken> for io::Error {
    fn from(e: NameTaken) -> io::Error {
        io::Error::new(VirtError::HostDup.io_kind(), e)
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

/// A host added to its subnetwork before its name was claimed: if the
/// claim fails (or the future is dropped), it goes down and leaves, without
/// touching the registry entry (that is [`AnnounceGuard`]'s).
struct Unborn(Option<Arc<HostCore>>);

impl Unborn {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Unborn {
    fn drop(&mut self) {
        if let Some(host) = self.0.take() {
            host.shutdown(VirtError::HostDown);
            host.net.remove_host(&host);
        }
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
        let registry = self.registry.clone();
        run_in_background(async move {
            let _ = registry.unannounce(&host, &data).await;
        });
    }
}
