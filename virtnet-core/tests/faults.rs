//! Faults at the core's edges: a registry that keeps none, the typed
//! errors, zero cost until a fault is set, traces of resets.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::fault::{FaultRules, FaultStore, MemoryFaults};
use virtnet_core::trace::Trace;
use virtnet_core::{async_trait, Links, Networker, Registry, RegistryError, VirtError};

/// A registry that keeps hosts (in a `RamRegistry`) but no faults.
struct NoFaults(pipenet::RamRegistry);

#[async_trait]
impl Registry for NoFaults {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn announce(&self, host: &str, data: &str) -> Result<(), RegistryError> {
        self.0.announce(host, data).await
    }
    async fn query(&self, host: &str) -> Result<String, RegistryError> {
        self.0.query(host).await
    }
    async fn unannounce(&self, host: &str, data: &str) -> Result<bool, RegistryError> {
        self.0.unannounce(host, data).await
    }
    async fn close(&self) -> Result<(), RegistryError> {
        self.0.close().await
    }
}

#[tokio::test]
async fn a_registry_without_faults_says_so() {
    let net = pipenet::Network::builder("nofaults")
        .registry(Arc::new(NoFaults(pipenet::RamRegistry::new("plain"))))
        .build();
    let alpha = net.new_host("α").await.unwrap();
    let e = net
        .faults()
        .partition(Links::pair("α", "β"))
        .await
        .expect_err("no store");
    assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    assert_eq!(VirtError::of(&e), Some(VirtError::FaultsUnsupported));
    assert_eq!(
        e.to_string(),
        "fault pipenofaults: faults are not supported by this registry"
    );
    // The network works on, without faults.
    let l = alpha.listen(":1").await.unwrap();
    let (c, s) = tokio::try_join!(alpha.dial(":1"), l.accept()).unwrap();
    assert_eq!(c.peer_addr(), s.local_addr());
    net.close().await.unwrap();
}

/// A registry (a `RamRegistry` and its faults) whose fault store counts
/// the waits for a change that have started.
struct CountedWatches {
    hosts: pipenet::RamRegistry,
    faults: Arc<Counted>,
}

struct Counted {
    rules: MemoryFaults,
    watches: AtomicUsize,
}

#[async_trait]
impl FaultStore for Counted {
    async fn load(&self) -> io::Result<FaultRules> {
        self.rules.load().await
    }
    async fn store_if(&self, base: u64, rules: &FaultRules) -> io::Result<bool> {
        self.rules.store_if(base, rules).await
    }
    async fn changed(&self, seen: u64) -> io::Result<FaultRules> {
        self.watches.fetch_add(1, Ordering::SeqCst);
        self.rules.changed(seen).await
    }
}

#[async_trait]
impl Registry for CountedWatches {
    fn name(&self) -> &str {
        self.hosts.name()
    }
    fn faults(&self) -> Option<Arc<dyn FaultStore>> {
        Some(self.faults.clone())
    }
    async fn announce(&self, host: &str, data: &str) -> Result<(), RegistryError> {
        self.hosts.announce(host, data).await
    }
    async fn query(&self, host: &str) -> Result<String, RegistryError> {
        self.hosts.query(host).await
    }
    async fn unannounce(&self, host: &str, data: &str) -> Result<bool, RegistryError> {
        self.hosts.unannounce(host, data).await
    }
    async fn close(&self) -> Result<(), RegistryError> {
        self.hosts.close().await
    }
}

/// The network watches its store for fault changes by the time its first
/// host exists, not at some later moment when a task gets to run: what
/// the store sets up to watch (SQLite's inotify descriptor) is there when
/// the caller counts its resources. One thread, so nothing else runs the
/// following task meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn the_fault_watch_starts_with_the_first_host() {
    let faults = Arc::new(Counted {
        rules: MemoryFaults::new(),
        watches: AtomicUsize::new(0),
    });
    let net = pipenet::Network::builder("watchstarts")
        .registry(Arc::new(CountedWatches {
            hosts: pipenet::RamRegistry::new("counted"),
            faults: faults.clone(),
        }))
        .build();
    assert_eq!(faults.watches.load(Ordering::SeqCst), 0);
    let _alpha = net.new_host("α").await.unwrap();
    assert_eq!(faults.watches.load(Ordering::SeqCst), 1);
    // One watch for the network, not one per host.
    let _beta = net.new_host("β").await.unwrap();
    assert_eq!(faults.watches.load(Ordering::SeqCst), 1);
    net.close().await.unwrap();
}

#[tokio::test]
async fn a_closed_network_takes_no_faults() {
    let net = pipenet::Network::new("closedfaults");
    net.close().await.unwrap();
    let e = net.faults().heal_all().await.expect_err("closed");
    assert_eq!(VirtError::of(&e), Some(VirtError::NetDown));
}

/// A reset is traced on each end that sees it, once.
#[tokio::test]
async fn resets_are_traced() {
    let net = pipenet::Network::new("tracedreset");
    let trace = Trace::new();
    let alpha = trace.wrap(net.new_host("α").await.unwrap());
    let beta = trace.wrap(net.new_host("β").await.unwrap());
    let l = alpha.listen(":1").await.unwrap();
    let (mut c, mut s) = tokio::try_join!(beta.dial("α:1"), l.accept()).unwrap();
    net.faults()
        .observe(&trace)
        .reset(Links::pair("α", "β"))
        .await
        .unwrap();
    let mut buf = [0; 1];
    for _ in 0..2 {
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(VirtError::of(&e), Some(VirtError::ConnReset));
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }
    let e = c.write_all(b"x").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "write pipetracedreset β:1->α:2: connection reset by peer"
    );
    let lines = trace.lines();
    let tail: Vec<&str> = lines[lines.len() - 3..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(tail, ["reset α β", "reset α:2 -> β:1", "reset β:1 -> α:2"]);
    net.close().await.unwrap();
}

/// Latency is exact under a paused clock: a write arrives exactly after
/// the link's latency, and a dial takes exactly a round trip.
#[tokio::test(start_paused = true)]
async fn latency_is_exact_under_a_paused_clock() {
    let net = pipenet::Network::new("pausedlatency");
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    let faults = net.faults();
    faults
        .latency(Links::oneway("β", "α"), Duration::from_millis(30))
        .await
        .unwrap();
    faults
        .latency(Links::oneway("α", "β"), Duration::from_millis(20))
        .await
        .unwrap();
    let l = alpha.listen(":1").await.unwrap();
    let start = tokio::time::Instant::now();
    let (mut c, mut s) = tokio::try_join!(beta.dial("α:1"), l.accept()).unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(50), "a round trip");
    let start = tokio::time::Instant::now();
    c.write_all(b"ping").await.unwrap();
    let mut buf = [0; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    s.write_all(b"pong").await.unwrap();
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    net.close().await.unwrap();
}

/// Delays too large for any clock and a zero bandwidth are refused, and
/// leave the rules as they were.
#[tokio::test]
async fn impossible_faults_are_refused() {
    let net = pipenet::Network::new("impossible");
    let faults = net.faults();
    let huge = virtnet_core::Fault::Latency {
        base: Duration::MAX,
        jitter: Duration::ZERO,
    };
    let e = faults.set(Links::pair("α", "β"), huge).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    let e = faults
        .bandwidth(Links::pair("α", "β"), 0)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    assert_eq!(
        e.to_string(),
        "fault pipeimpossible: bandwidth 0 B/s: use a partition to stop a link"
    );
    assert_eq!(faults.rules().await.unwrap().version, 0);
    net.close().await.unwrap();
}

/// The bytes a partition held are reported by the writer once it heals.
#[tokio::test]
async fn held_bytes_are_traced() {
    let net = pipenet::Network::new("tracedheld");
    let trace = Trace::new();
    let alpha = trace.wrap(net.new_host("α").await.unwrap());
    let beta = trace.wrap(net.new_host("β").await.unwrap());
    let l = alpha.listen(":1").await.unwrap();
    let (mut c, mut s) = tokio::try_join!(beta.dial("α:1"), l.accept()).unwrap();
    let faults = net.faults().observe(&trace);
    faults.partition(Links::oneway("β", "α")).await.unwrap();
    c.write_all(b"abc").await.unwrap();
    c.write_all(b"de").await.unwrap();
    faults.heal_all().await.unwrap();
    c.write_all(b"f").await.unwrap();
    let mut buf = [0; 6];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"abcdef");
    let lines = trace.lines();
    let tail: Vec<&str> = lines[lines.len() - 6..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "partition β -> α",
            r#"write β:1 -> α:2 "abc""#,
            r#"write β:1 -> α:2 "de""#,
            "heal",
            "released β:1 -> α:2: 5 bytes held by a partition",
            r#"write β:1 -> α:2 "f""#,
        ]
    );
    net.close().await.unwrap();
}
