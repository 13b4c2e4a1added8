//! The user's handle on a network's faults: [`Faults`], from
//! [`SubNetwork::faults`](crate::SubNetwork::faults).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::fault::{FaultRules, FaultStore, Link, LinkFaults};
use crate::kernel::NetCore;
use crate::trace::{Event, Trace};
use crate::{OpError, VirtError};

/// The links a fault is set on: one direction, both directions of a pair,
/// or every link between two groups of hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Links {
    links: Vec<Link>,
    text: String,
}

impl Links {
    /// The link from `from` to `to` only: `α -> β`.
    pub fn oneway(from: &str, to: &str) -> Links {
        Links {
            links: vec![Link::new(from, to)],
            text: format!("{from} -> {to}"),
        }
    }

    /// Both directions between `a` and `b`: `α β`.
    pub fn pair(a: &str, b: &str) -> Links {
        Links {
            links: vec![Link::new(a, b), Link::new(b, a)],
            text: format!("{a} {b}"),
        }
    }

    /// Both directions between every host of `side_a` and every host of
    /// `side_b` (a partition of the network into two sides): `{α} | {β,γ}`.
    pub fn between<A, B>(side_a: A, side_b: B) -> Links
    where
        A: IntoIterator,
        A::Item: AsRef<str>,
        B: IntoIterator,
        B::Item: AsRef<str>,
    {
        let a: Vec<String> = side_a.into_iter().map(|h| h.as_ref().to_owned()).collect();
        let b: Vec<String> = side_b.into_iter().map(|h| h.as_ref().to_owned()).collect();
        let mut links = Vec::new();
        for x in &a {
            for y in &b {
                links.push(Link::new(x.as_str(), y.as_str()));
                links.push(Link::new(y.as_str(), x.as_str()));
            }
        }
        Links {
            links,
            text: format!("{{{}}} | {{{}}}", a.join(","), b.join(",")),
        }
    }

    /// The links, each one direction.
    pub fn links(&self) -> &[Link] {
        &self.links
    }
}

impl fmt::Display for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The largest latency (and jitter) a link can have: a day.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A fault that stays on its links until healed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// No byte crosses: bytes written wait (the writer waits once the
    /// connection's window is full) and arrive in order after the heal;
    /// dials wait.
    Partition,
    /// Dials fail at once with "no route to host"; established
    /// connections are reset.
    Unreachable,
    /// Every byte arrives no earlier than `base` plus a random delay of up
    /// to `jitter` after it was written; order is kept. A dial takes a
    /// round trip.
    Latency {
        /// The fixed delay.
        base: Duration,
        /// The largest random extra delay (from the network's seed).
        jitter: Duration,
    },
    /// At most this many bytes per second are delivered.
    Bandwidth(u64),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition => f.write_str("partition"),
            Fault::Unreachable => f.write_str("unreachable"),
            Fault::Latency { base, jitter } if jitter.is_zero() => write!(f, "latency {base:?}"),
            Fault::Latency { base, jitter } => write!(f, "latency {base:?} jitter {jitter:?}"),
            Fault::Bandwidth(rate) => write!(f, "bandwidth {rate}B/s"),
        }
    }
}

impl Fault {
    fn apply(self, f: &mut LinkFaults) {
        match self {
            Fault::Partition => f.partition = true,
            Fault::Unreachable => f.unreachable = true,
            Fault::Latency { base, jitter } => {
                f.latency = base;
                f.jitter = jitter;
            }
            Fault::Bandwidth(rate) => f.bandwidth = Some(rate),
        }
    }
}

/// The faults of a network: set them from any subnetwork, and every
/// subnetwork of the network (every process of a lonet network) applies
/// them to its connections, new and established.
///
/// Each change is stored in the registry's [`FaultStore`] and takes effect
/// here before the call returns; other processes follow within their
/// store's propagation time. A registry that keeps no faults makes every
/// change fail with "faults are not supported by this registry".
///
/// ```
/// use std::time::Duration;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use virtnet_core::{Fault, Links};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> std::io::Result<()> {
/// let net = pipenet::Network::new("faulty");
/// let alpha = net.new_host("α").await?;
/// let beta = net.new_host("β").await?;
/// let l = alpha.listen(":10").await?;
/// let (mut c, mut s) = tokio::try_join!(beta.dial("α:10"), l.accept())?;
///
/// let faults = net.faults();
/// faults.partition(Links::pair("α", "β")).await?;
/// c.write_all(b"held").await?; // accepted, but held back
/// let mut buf = [0; 4];
/// let read = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await;
/// assert!(read.is_err(), "nothing crosses a partition");
///
/// faults.heal_all().await?;
/// s.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"held");
///
/// let start = tokio::time::Instant::now();
/// faults.set(Links::oneway("β", "α"), Fault::Latency { base: Duration::from_millis(200), jitter: Duration::ZERO }).await?;
/// c.write_all(b"late").await?;
/// s.read_exact(&mut buf).await?;
/// assert!(start.elapsed() >= Duration::from_millis(200));
/// # net.close().await
/// # }
/// ```
#[derive(Clone)]
pub struct Faults {
    net: Arc<NetCore>,
    trace: Option<Trace>,
}

impl Faults {
    pub(crate) fn new(net: Arc<NetCore>) -> Faults {
        Faults { net, trace: None }
    }

    /// Records every change made through this handle into `trace`
    /// (`partition {α} | {β,γ}`, `heal α β`, `heal`), and every connection
    /// traced by it records its resets.
    pub fn observe(mut self, trace: &Trace) -> Faults {
        self.trace = Some(trace.clone());
        self
    }

    /// Sets `fault` on `links`, next to what is set there already (a
    /// latency replaces a latency, a bandwidth a bandwidth).
    ///
    /// A latency or jitter above [`MAX_DELAY`] (a day) fails with
    /// [`io::ErrorKind::InvalidInput`], as does a bandwidth of 0.
    pub async fn set(&self, links: Links, fault: Fault) -> io::Result<()> {
        match fault {
            Fault::Latency { base, jitter } if base > MAX_DELAY || jitter > MAX_DELAY => {
                return Err(self.error(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("latency {base:?} jitter {jitter:?}: more than {MAX_DELAY:?}"),
                )));
            }
            Fault::Bandwidth(0) => {
                return Err(self.error(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "bandwidth 0 B/s: use a partition to stop a link",
                )));
            }
            _ => {}
        }
        // The fault as it reads, with the links after its name:
        // `latency α β 20ms jitter 5ms`.
        let shown = fault.to_string();
        let action = match shown.split_once(' ') {
            Some((name, params)) => format!("{name} {links} {params}"),
            None => format!("{shown} {links}"),
        };
        self.change(action, |rules| {
            for link in &links.links {
                rules.update(link, |f| fault.apply(f));
            }
        })
        .await
    }

    /// A partition on `links` (see [`Fault::Partition`]).
    pub async fn partition(&self, links: Links) -> io::Result<()> {
        self.set(links, Fault::Partition).await
    }

    /// `links` unreachable (see [`Fault::Unreachable`]).
    pub async fn unreachable(&self, links: Links) -> io::Result<()> {
        self.set(links, Fault::Unreachable).await
    }

    /// A fixed latency on `links` (see [`Fault::Latency`]).
    pub async fn latency(&self, links: Links, base: Duration) -> io::Result<()> {
        let jitter = Duration::ZERO;
        self.set(links, Fault::Latency { base, jitter }).await
    }

    /// A bandwidth limit on `links`, in bytes per second.
    pub async fn bandwidth(&self, links: Links, bytes_per_sec: u64) -> io::Result<()> {
        self.set(links, Fault::Bandwidth(bytes_per_sec)).await
    }

    /// Resets every connection established on `links` now: pending and
    /// later reads and writes on both ends fail with "connection reset by
    /// peer". Later connections are not affected.
    pub async fn reset(&self, links: Links) -> io::Result<()> {
        self.change(format!("reset {links}"), |rules| {
            rules.resets += 1;
            let n = rules.resets;
            for link in &links.links {
                rules.update(link, |f| f.reset = n);
            }
        })
        .await
    }

    /// Removes every fault from `links`; held bytes flow.
    pub async fn heal(&self, links: Links) -> io::Result<()> {
        self.change(format!("heal {links}"), |rules| {
            for link in &links.links {
                rules.update(link, |f| {
                    *f = LinkFaults {
                        reset: f.reset,
                        ..LinkFaults::default()
                    }
                });
            }
        })
        .await
    }

    /// Removes every fault of the network.
    pub async fn heal_all(&self) -> io::Result<()> {
        self.change("heal".to_owned(), |rules| {
            for f in rules.links.values_mut() {
                *f = LinkFaults {
                    reset: f.reset,
                    ..LinkFaults::default()
                };
            }
        })
        .await
    }

    /// Sets the seed of the jitter's random numbers (connections made
    /// after this use it); the same seed gives the same delays.
    pub async fn set_seed(&self, seed: u64) -> io::Result<()> {
        self.change(format!("seed {seed}"), |rules| rules.seed = seed)
            .await
    }

    /// The network's fault rules, as the store holds them now.
    pub async fn rules(&self) -> io::Result<FaultRules> {
        let store = self.store()?;
        store.load().await.map_err(|e| self.error(e))
    }

    fn store(&self) -> io::Result<Arc<dyn FaultStore>> {
        self.net
            .registry
            .faults()
            .ok_or_else(|| self.error(VirtError::FaultsUnsupported.into()))
    }

    fn error(&self, cause: io::Error) -> io::Error {
        OpError::new("fault", self.net.network.clone())
            .cause(cause)
            .into()
    }

    /// Applies `change` to the stored rules (again, if another change came
    /// first), then takes the result here at once.
    async fn change(&self, action: String, change: impl Fn(&mut FaultRules)) -> io::Result<()> {
        if let Some(reason) = self.net.down.get() {
            return Err(self.error(reason.into()));
        }
        let store = self.store()?;
        self.net.follow_faults().await;
        loop {
            let mut rules = store.load().await.map_err(|e| self.error(e))?;
            let base = rules.version;
            change(&mut rules);
            rules.version = base + 1;
            if store
                .store_if(base, &rules)
                .await
                .map_err(|e| self.error(e))?
            {
                let seed = rules.seed;
                self.net.install_faults(rules);
                if let Some(trace) = &self.trace {
                    let action = if action.contains("jitter") {
                        format!("{action} seed {seed}")
                    } else {
                        action
                    };
                    trace.record(&self.net.network, Event::Fault { action });
                }
                tracing::debug!(network = %self.net.network, version = base + 1, "virtnet: faults changed");
                return Ok(());
            }
        }
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults")
            .field("network", &self.net.network)
            .finish()
    }
}
