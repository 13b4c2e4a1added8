//! The kernel of a subnetwork: the state its hosts, listeners and
//! connections share, below the handles users hold.
//!
//! - [`NetCore`]: one subnetwork: its engine, registry, hosts (held
//!   weakly), where a dial is routed ([`NetCore::dial_via_registry`]),
//!   where an arriving connection is delivered (`Deliver`), and taking every
//!   host down at once ([`NetCore::shut_all`]).
//! - [`HostCore`]: one host: its socket table, where ports are allocated
//!   ([`HostCore::reserve`], [`HostCore::bind_listener`]) and where its
//!   sockets are shut ([`HostCore::shutdown`]).
//! - [`PortGuard`]: a port held on a host until dropped.
//!
//! Ownership runs one way: a connection or listener holds its host, a host
//! holds its subnetwork, the subnetwork holds its engine and registry. The
//! subnetwork finds its hosts through weak references, and the engine's
//! background work reaches the subnetwork through a weak
//! [`Inbox`](crate::engine::Inbox). Dropping the last handle therefore drops
//! everything: a host leaves the registry (in the background) and the
//! engine stops.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Context;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::down::Down;
use crate::engine::{
    Arrival, Deliver, Dialed, Engine, PendingConn, Queued, ShutdownHandle, Undelivered,
};
use crate::fault::state::FaultState;
use crate::fault::{FaultRules, Link, LinkFaults};
use crate::ports::{host_key, Socket, SocketTable};
use crate::queue::AcceptQueue;
use crate::registry::{Registry, RegistryCause, RegistryError};
use crate::{lock, Addr, VirtError};

/// One subnetwork's shared state.
pub(crate) struct NetCore {
    pub(crate) network: Arc<str>,
    pub(crate) engine: Box<dyn Engine>,
    pub(crate) registry: Arc<dyn Registry>,
    /// The hosts created here and not closed, by name.
    hosts: Mutex<HashMap<Arc<str>, Weak<HostCore>>>,
    /// Host data learned from the registry by successful dials, so the next
    /// dial to the same host needs no query (see `dial_via_registry`).
    known: Mutex<HashMap<String, String>>,
    pub(crate) down: Down,
    pub(crate) auto_close: AtomicBool,
    /// Registry entries of dropped hosts still being removed in the
    /// background; `close` waits for them before it closes the registry.
    leaving: Arc<Leaving>,
    /// The network's fault rules as known here.
    pub(crate) faults: Arc<FaultState>,
    /// The task following the registry's fault store, once started.
    fault_watch: Mutex<Option<AbortHandle>>,
}

/// A count of background removals from the registry, and their end.
#[derive(Default)]
struct Leaving {
    count: AtomicUsize,
    done: Notify,
}

impl Leaving {
    /// Runs `task` in the background, counted until it ends or is dropped
    /// (a runtime shutting down drops its tasks unpolled).
    fn spawn(self: &Arc<Self>, task: impl Future<Output = ()> + Send + 'static) {
        self.count.fetch_add(1, Ordering::AcqRel);
        let counted = Counted(self.clone());
        run_in_background(async move {
            let _counted = counted;
            task.await;
        });
    }

    /// Waits until no removal is under way.
    async fn settled(&self) {
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }
}

/// One counted removal; uncounted when dropped.
struct Counted(Arc<Leaving>);

impl Drop for Counted {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

impl NetCore {
    pub(crate) fn new(
        network: Arc<str>,
        registry: Arc<dyn Registry>,
        engine: Box<dyn Engine>,
    ) -> NetCore {
        NetCore {
            network,
            engine,
            registry,
            hosts: Mutex::default(),
            known: Mutex::default(),
            down: Down::default(),
            auto_close: AtomicBool::new(false),
            leaving: Arc::default(),
            faults: Arc::default(),
            fault_watch: Mutex::default(),
        }
    }

    /// Starts following the registry's fault rules, once per subnetwork:
    /// loads them now and starts the store's watch for changes before it
    /// returns, then takes every change the store reports, in a task that
    /// ends with the subnetwork. Nothing if the registry keeps no faults.
    pub(crate) async fn follow_faults(self: &Arc<Self>) {
        if lock(&self.fault_watch).is_some() {
            return;
        }
        let Some(store) = self.registry.faults() else {
            return;
        };
        if let Ok(rules) = store.load().await {
            self.install_faults(rules);
        }
        let net = Arc::downgrade(self);
        let mut seen = self.faults.version();
        let mut follow = Box::pin(async move {
            loop {
                match store.changed(seen).await {
                    Ok(rules) => {
                        let Some(net) = net.upgrade() else {
                            return;
                        };
                        seen = rules.version;
                        net.install_faults(rules);
                        tracing::debug!(network = %net.network, version = seen, "virtnet: fault rules followed");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "virtnet: cannot follow the fault rules; retrying in 1 s");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        // Its first step runs here, so whatever the store sets up to watch
        // for changes (for SQLite, the process's inotify descriptor) is in
        // place when the caller goes on, not at some later moment: a
        // process counting its descriptors sees them settled. The task
        // polls it again at once, so a wake-up meanwhile is not lost.
        let first = follow
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()));
        let mut watch = lock(&self.fault_watch);
        if first.is_ready() || watch.is_some() || self.down.get().is_some() {
            // Another caller follows already, or nothing is to follow:
            // dropping `follow` stops watching.
            return;
        }
        let task = tokio::spawn(follow);
        *watch = Some(task.abort_handle());
    }

    /// Takes `rules` if they are newer than those held. Connections on
    /// links that were reset or made unreachable by the change have their
    /// transports shut at once, so operations blocked on them (which may
    /// have started before any fault was set, and so wait in the transport
    /// alone) wake up and see the reset.
    pub(crate) fn install_faults(&self, rules: FaultRules) {
        let old = self.faults.rules();
        if rules.version <= old.version {
            return;
        }
        let hit: Vec<Link> = rules
            .links
            .iter()
            .filter(|(link, new)| {
                let was = old.links.get(*link);
                (new.unreachable && !was.is_some_and(|w| w.unreachable))
                    || new.reset > was.map_or(0, |w| w.reset)
            })
            .map(|(link, _)| link.clone())
            .collect();
        if !self.faults.install(rules) || hit.is_empty() {
            return;
        }
        // Each hit link as (this side's host, the peer's key), both ways.
        let ends: Vec<(&str, u64)> = hit
            .iter()
            .flat_map(|l| [(&*l.from, host_key(&l.to)), (&*l.to, host_key(&l.from))])
            .collect();
        for host in self.hosts() {
            let table = lock(&host.sockets);
            for socket in table.iter() {
                if let Socket::Conn(shutdown, peer) = socket {
                    if ends.iter().any(|(h, p)| *h == &*host.name && p == peer) {
                        shutdown();
                    }
                }
            }
        }
    }

    /// What faults do to a dial from host `from` to host `to` before it
    /// leaves: an unreachable link fails it, a partition holds it until
    /// healed, latency delays it by the outgoing link's. (The dial calls
    /// it only once a fault was ever set.)
    pub(crate) async fn dial_faults(&self, from: &str, to: &str) -> Result<(), VirtError> {
        let (there, _) = self.dial_gate(from, to).await?;
        if !there.latency.is_zero() {
            tokio::time::sleep(there.latency).await;
        }
        Ok(())
    }

    /// The gate of a dial between hosts `from` and `to`: fails if a link
    /// between them is unreachable, waits while one is partitioned; then
    /// the faults of the link there and of the link back.
    async fn dial_gate(&self, from: &str, to: &str) -> Result<(LinkFaults, LinkFaults), VirtError> {
        loop {
            let seen = self.faults.version();
            let rules = self.faults.rules();
            let there = rules.get(from, to).cloned().unwrap_or_default();
            let back = rules.get(to, from).cloned().unwrap_or_default();
            if there.unreachable || back.unreachable {
                return Err(VirtError::HostUnreach);
            }
            if there.partition || back.partition {
                self.faults.changed(seen).await;
                continue;
            }
            return Ok((there, back));
        }
    }

    /// The answer's way back on a dial from `from` to `to`: the latency of
    /// the link from `to` to `from`.
    pub(crate) async fn dial_reply_faults(&self, from: &str, to: &str) {
        let latency = self.faults.rules().get(to, from).map(|f| f.latency);
        if let Some(latency) = latency.filter(|l| !l.is_zero()) {
            tokio::time::sleep(latency).await;
        }
    }

    /// Whether host `host`'s process shapes what it receives (see
    /// [`Engine::peer_shapes`]): a host of this subnetwork does; another is
    /// asked of the engine at the host's data. `true` when that cannot be
    /// told (no such host, a registry that does not answer).
    pub(crate) async fn peer_shapes(&self, host: &str) -> bool {
        if self.host(host).is_some() {
            return true;
        }
        let known = lock(&self.known).get(host).cloned();
        let data = match known {
            Some(data) => data,
            None => match self.registry.query(host).await {
                Ok(data) => data,
                Err(_) => return true,
            },
        };
        self.engine.peer_shapes(&data).await
    }

    fn stop_following_faults(&self) {
        if let Some(task) = lock(&self.fault_watch).take() {
            task.abort();
        }
    }

    /// Shuts everything down: every host is marked down, then their
    /// sockets are shut (see [`shut_all`](Self::shut_all)), their registry
    /// entries are removed (and those of dropped hosts waited for), and the
    /// engine and the registry are closed. Idempotent.
    pub(crate) async fn close(&self) -> io::Result<()> {
        if !self.down.set(VirtError::NetDown) {
            return Ok(());
        }
        tracing::debug!(network = %self.network, "virtnet: network closed");
        self.stop_following_faults();
        for host in self.shut_all(VirtError::NetDown) {
            host.unannounce().await;
        }
        self.leaving.settled().await;
        let engine = self.engine.close().await;
        let registry = self.registry.close().await;
        engine?;
        registry.map_err(io::Error::from)
    }

    /// The live host `name`, if it exists here.
    pub(crate) fn host(&self, name: &str) -> Option<Arc<HostCore>> {
        lock(&self.hosts).get(name).and_then(Weak::upgrade)
    }

    /// Every live host.
    pub(crate) fn hosts(&self) -> Vec<Arc<HostCore>> {
        lock(&self.hosts)
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Adds `host`, unless the subnetwork is down or the name is taken here.
    pub(crate) fn add_host(&self, host: &Arc<HostCore>) -> Result<(), VirtError> {
        let mut hosts = lock(&self.hosts);
        if let Some(reason) = self.down.get() {
            return Err(reason);
        }
        if hosts.get(&host.name).is_some_and(|h| h.strong_count() > 0) {
            return Err(VirtError::HostDup);
        }
        hosts.insert(host.name.clone(), Arc::downgrade(host));
        Ok(())
    }

    /// Removes `host` from the hosts, if it is the one listed under its
    /// name; false if it was not listed.
    pub(crate) fn remove_host(&self, host: &HostCore) -> bool {
        let mut hosts = lock(&self.hosts);
        let listed = hosts
            .get(&host.name)
            .is_some_and(|h| std::ptr::eq(h.as_ptr(), host));
        if listed {
            hosts.remove(&host.name);
        }
        listed
    }

    /// Whether the subnetwork should close now that a host closed.
    pub(crate) fn auto_close_due(&self) -> bool {
        self.auto_close.load(Ordering::Acquire) && self.hosts().is_empty()
    }

    /// Takes every host down with `reason`: first all of them are marked
    /// down, then their sockets are shut, so that no operation on one host
    /// sees another host's shutdown (a refusal, an end of stream) before it
    /// sees its own. Returns the hosts, for their registry entries.
    pub(crate) fn shut_all(&self, reason: VirtError) -> Vec<Arc<HostCore>> {
        let hosts: Vec<Arc<HostCore>> = lock(&self.hosts)
            .drain()
            .filter_map(|(_, h)| h.upgrade())
            .collect();
        let marked: Vec<&Arc<HostCore>> = hosts.iter().filter(|h| h.down.set(reason)).collect();
        for host in marked {
            host.shut_sockets(reason);
        }
        hosts
    }

    /// Has the engine dial `dst` from `src` with `dst`'s host data.
    ///
    /// The data a successful dial used is remembered, and the next dial to
    /// that host uses it without asking the registry. If that attempt fails
    /// with anything but a refusal answered by the host's own subnetwork,
    /// the data may be stale: the host closed, or moved to another process.
    /// Then the registry is asked after all; if it holds the same data, the
    /// failure stands as it is, and only if the host moved is it dialed
    /// again, at its new data. The source port stays the same.
    pub(crate) async fn dial_via_registry(&self, src: &Addr, dst: &Addr) -> io::Result<Dialed> {
        let host = dst.host();
        let known = lock(&self.known).get(host).cloned();
        let mut failed = None;
        if let Some(data) = known {
            match self.engine.dial(src, dst, &data).await {
                Err(e) if !answered_refusal(&e) => {
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
}

/// Whether `e` is a refusal that the destination's subnetwork answered
/// (see the [`Engine`] contract): the bare [`VirtError::ConnRefused`].
fn answered_refusal(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<VirtError>())
        .is_some_and(|v| *v == VirtError::ConnRefused)
}

impl Deliver for NetCore {
    fn deliver(
        &self,
        src: Addr,
        dst: &Addr,
        conn: Box<dyn PendingConn>,
    ) -> Result<Queued, Undelivered> {
        let refuse = |reason, conn| Err(Undelivered { reason, conn });
        if self.down.get().is_some() {
            return refuse(VirtError::NetDown, conn);
        }
        let Some(host) = self.host(dst.host()) else {
            return refuse(VirtError::NoHost, conn);
        };
        let queue = match lock(&host.sockets).get(dst.port()) {
            Some(Socket::Listener(queue)) => queue.clone(),
            _ => return refuse(VirtError::ConnRefused, conn),
        };
        AcceptQueue::push(&queue, src, conn).or_else(|conn| refuse(VirtError::ConnRefused, conn))
    }

    fn network(&self) -> &Arc<str> {
        &self.network
    }

    fn arrival(self: Arc<Self>, src: &Addr, dst: &Addr) -> Option<Arrival> {
        if !self.faults.active() {
            return None;
        }
        let (src, dst) = (src.clone(), dst.clone());
        Some(Box::pin(async move {
            let (from, to) = (src.host(), dst.host());
            let (there, back) = self.dial_gate(from, to).await?;
            let round_trip = there.latency + back.latency;
            // A dialer that shapes waited the round trip itself.
            if !round_trip.is_zero() && !self.peer_shapes(from).await {
                tokio::time::sleep(round_trip).await;
            }
            Ok(())
        }))
    }
}

impl Drop for NetCore {
    fn drop(&mut self) {
        self.stop_following_faults();
    }
}

/// One host's shared state: its name, registry data, socket table, and
/// whether it is down.
pub(crate) struct HostCore {
    pub(crate) name: Arc<str>,
    /// What the registry holds for this host.
    pub(crate) data: String,
    pub(crate) net: Arc<NetCore>,
    pub(crate) down: Down,
    sockets: Mutex<SocketTable>,
}

impl HostCore {
    pub(crate) fn new(name: Arc<str>, data: String, net: Arc<NetCore>) -> HostCore {
        HostCore {
            name,
            data,
            net,
            down: Down::default(),
            sockets: Mutex::default(),
        }
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

    /// Starts a listener on `port` (0: the lowest free one) at `addr`'s
    /// host, returning its queue.
    pub(crate) fn bind_listener(&self, addr: &Addr) -> Result<Arc<AcceptQueue>, VirtError> {
        let mut table = lock(&self.sockets);
        if let Some(reason) = self.down.get() {
            return Err(reason);
        }
        let port = if addr.port() == 0 {
            table.alloc(Socket::Reserved).ok_or(VirtError::AddrInUse)?
        } else {
            table
                .bind(addr.port(), Socket::Reserved)
                .map_err(|_| VirtError::AddrInUse)?;
            addr.port()
        };
        let queue = Arc::new(AcceptQueue::new(addr.with_port(port)));
        table.replace(port, Socket::Listener(queue.clone()));
        Ok(queue)
    }

    /// Frees the listener's port if it still holds `queue`.
    pub(crate) fn free_listener(&self, queue: &AcceptQueue) {
        let port = queue.addr.port();
        let mut table = lock(&self.sockets);
        if matches!(table.get(port), Some(Socket::Listener(q)) if std::ptr::eq(&**q, queue)) {
            table.free(port);
        }
    }

    /// Takes the host down with `reason`; false if it already was.
    pub(crate) fn shutdown(&self, reason: VirtError) -> bool {
        if !self.down.set(reason) {
            return false;
        }
        self.shut_sockets(reason);
        true
    }

    /// Shuts every socket of a host that is marked down: listeners end their
    /// accepts with `reason` and refuse what they queued; connections'
    /// transports are shut.
    fn shut_sockets(&self, reason: VirtError) {
        let sockets = lock(&self.sockets).drain();
        for socket in sockets {
            match socket {
                Socket::Listener(queue) => {
                    queue.shut(reason);
                }
                Socket::Conn(shutdown, _) => shutdown(),
                Socket::Reserved => {}
            }
        }
    }

    /// Removes the host from its subnetwork's hosts; the returned future
    /// removes its registry entry. For `Host::close`, after `shutdown`.
    pub(crate) fn leave(&self) -> impl Future<Output = ()> + Send + 'static {
        self.net.remove_host(self);
        self.unannounce()
    }

    pub(crate) fn unannounce(&self) -> impl Future<Output = ()> + Send + 'static {
        let registry = self.net.registry.clone();
        let (name, data) = (self.name.clone(), self.data.clone());
        async move {
            let _ = registry.unannounce(&name, &data).await;
        }
    }
}

/// The last handle of the host is gone: it leaves its subnetwork and,
/// unless it was closed (which did that already), the registry, in the
/// background: the dropping thread does not wait.
impl Drop for HostCore {
    fn drop(&mut self) {
        if self.net.remove_host(self) && self.down.get().is_none() {
            self.net.leaving.spawn(self.unannounce());
        }
    }
}

/// Runs `task` on the current tokio runtime, or on a thread of its own if
/// there is none.
pub(crate) fn run_in_background(task: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn(task)),
        Err(_) => {
            let _ = std::thread::Builder::new()
                .name("virtnet-unannounce".into())
                .spawn(move || futures::executor::block_on(task));
        }
    }
}

/// A port held on a host; freed on drop unless it became a connection.
pub(crate) struct PortGuard {
    pub(crate) host: Arc<HostCore>,
    pub(crate) port: u32,
}

impl PortGuard {
    /// Makes the reserved port an established connection's, whose transport
    /// `shutdown` shuts when the host goes down.
    pub(crate) fn connect(&self, shutdown: ShutdownHandle, peer: &Addr) -> Result<(), VirtError> {
        let mut table = lock(&self.host.sockets);
        if let Some(reason) = self.host.down.get() {
            return Err(reason);
        }
        if !table.replace(self.port, Socket::Conn(shutdown, host_key(peer.host()))) {
            return Err(VirtError::HostDown);
        }
        Ok(())
    }

    /// Why the host is down, if it is.
    pub(crate) fn is_down(&self) -> Option<VirtError> {
        self.host.down.get()
    }
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        lock(&self.host.sockets).free(self.port);
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
