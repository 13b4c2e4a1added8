//! lonet beyond the shared suite: handshake deadline, bad peers and registry
//! entries, and a custom registry.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use virtnet_core::{SubNetwork, VirtError};

/// A guard against hangs only: no assertion depends on it.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn join(root: &std::path::Path, name: &str) -> SubNetwork {
    lonet::Builder::new(name)
        .root(root)
        .handshake_timeout(Duration::from_millis(300))
        .join()
        .await
        .unwrap()
}

/// Dials α:1 from `from` while `l` accepts, and checks bytes flow.
async fn works(from: &virtnet_core::Host, l: &virtnet_core::Listener) {
    let (c, s) = tokio::join!(from.dial("α:1"), l.accept());
    let (mut c, mut s) = (c.unwrap(), s.unwrap());
    c.write_all(b"ok").await.unwrap();
    let mut buf = [0; 2];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ok");
}

/// A peer that connects and says nothing is dropped at the deadline, and
/// holds up nobody meanwhile; so is one that stops halfway through its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_requests_are_dropped() {
    let root = tempfile::tempdir().unwrap();
    let net = join(root.path(), "silent").await;
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    let os_addr = net.registry().query("α").await.unwrap();

    let mut silent = TcpStream::connect(&os_addr).await.unwrap();
    let mut half = TcpStream::connect(&os_addr).await.unwrap();
    half.write_all(b"> lonet \"lonetsilent\" dial \"x:1\"")
        .await
        .unwrap();
    works(&beta, &l).await;
    for peer in [&mut silent, &mut half] {
        let mut buf = [0; 64];
        let n = tokio::time::timeout(HANG_GUARD, peer.read(&mut buf))
            .await
            .expect("dropped at the deadline")
            .unwrap_or(0);
        assert_eq!(n, 0, "no reply, just closed: {:?}", &buf[..n]);
    }
    // a peer that closes mid-line is dropped too; the listener keeps serving
    let mut gone = TcpStream::connect(&os_addr).await.unwrap();
    gone.write_all(b"> lonet \"lon").await.unwrap();
    drop(gone);
    works(&beta, &l).await;
    net.close().await.unwrap();
}

/// A registry entry that points at a dead port or at garbage gives a clear
/// `loconnect` error, and frees the source port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registry_entries_fail_clearly() {
    let root = tempfile::tempdir().unwrap();
    let net = join(root.path(), "ghosts").await;
    let beta = net.new_host("β").await.unwrap();
    // a port that was just free: nobody listens there
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    net.registry().announce("ghost", &dead).await.unwrap();
    net.registry()
        .announce("garbage", "not an address")
        .await
        .unwrap();

    // a host whose process died: refused by the OS, typed as a refusal,
    // worded as on every network (no OS error number)
    let err = beta.dial("ghost:1").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(VirtError::of(&err), Some(VirtError::ConnRefused));
    assert_eq!(
        err.to_string(),
        format!("dial lonetghosts β:1->ghost:1: loconnect {dead}: connection refused")
    );
    let err = beta.dial("garbage:1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "dial lonetghosts β:1->garbage:1: loconnect not an address: registry entry is not an OS address"
    );
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    net.close().await.unwrap();
}

/// Host names whose dial requests would pass the handshake's 1,024-byte
/// line limit are refused when created; the longest accepted name can be
/// dialed at the highest port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_names_fit_the_handshake_line() {
    let root = tempfile::tempdir().unwrap();
    let net = join(root.path(), "long").await;
    let err = net.new_host(&"h".repeat(5_000)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("1024-byte line limit"), "{err}");
    // the longest name that fits: one more character does not
    let fits = (1..1024)
        .rev()
        .map(|n| "h".repeat(n))
        .find(|name| {
            let widest = virtnet_core::Addr::new("lonetlong", name.as_str(), u32::MAX);
            lonet::handshake::request_line("lonetlong", &widest, &widest).len()
                <= lonet::handshake::MAX_REQUEST
        })
        .unwrap();
    let too_long = format!("{fits}h");
    assert_eq!(
        net.new_host(&too_long).await.unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    let a = net.new_host(&fits).await.unwrap();
    let b = net.new_host(&format!("{}g", &fits[1..])).await.unwrap();
    let l = a.listen(":4294967295").await.unwrap();
    let addr = format!("{fits}:4294967295");
    let (c, s) = tokio::join!(b.dial(&addr), l.accept());
    assert_eq!(c.unwrap().peer_addr(), s.unwrap().local_addr());
    net.close().await.unwrap();
}

/// Two subnetworks in one process that find each other through a registry of
/// the user's choosing (here pipenet's in-memory one): no files at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_registry_is_used_instead_of_sqlite() {
    let root = tempfile::tempdir().unwrap();
    let registry = pipenet::RamRegistry::new("my registry");
    let one = lonet::Builder::new("custom")
        .root(root.path())
        .registry(Arc::new(registry.handle()))
        .join()
        .await
        .unwrap();
    let two = lonet::Builder::new("custom")
        .root(root.path())
        .registry(Arc::new(registry.handle()))
        .join()
        .await
        .unwrap();
    let alpha = one.new_host("α").await.unwrap();
    let beta = two.new_host("β").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    works(&beta, &l).await;
    let err = two.new_host("α").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "new host lonetcustom α: host already registered"
    );
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        0,
        "no directory was made"
    );
    one.close().await.unwrap();
    two.close().await.unwrap();
}

/// An empty name makes a fresh network with a unique decimal name.
#[tokio::test]
async fn empty_name_makes_a_fresh_network() {
    let root = tempfile::tempdir().unwrap();
    let a = lonet::Builder::new("")
        .root(root.path())
        .join()
        .await
        .unwrap();
    let b = lonet::Builder::new("")
        .root(root.path())
        .join()
        .await
        .unwrap();
    assert_ne!(a.network(), b.network());
    let name = a.network().strip_prefix("lonet").unwrap();
    assert!(
        !name.is_empty() && name.bytes().all(|c| c.is_ascii_digit()),
        "{name}"
    );
    assert!(root.path().join(name).join("registry.db").is_file());
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A host that closed and reappeared in another subnetwork (process) is
/// found again, though this subnetwork remembered where it was; one that is
/// gone for good is "no such host", as if it had never been dialed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dials_follow_a_host_that_moved() {
    let root = tempfile::tempdir().unwrap();
    let join = || lonet::Builder::new("moving").root(root.path()).join();
    let (here, first, second) = (
        join().await.unwrap(),
        join().await.unwrap(),
        join().await.unwrap(),
    );
    let beta = here.new_host("β").await.unwrap();

    let alpha = first.new_host("α").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    works(&beta, &l).await; // β now knows where α is
    drop(l);
    alpha.close().await.unwrap();

    let alpha = second.new_host("α").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    works(&beta, &l).await; // found in its new place
    drop(l);
    alpha.close().await.unwrap();

    let err = beta.dial("α:1").await.unwrap_err();
    assert_eq!(err.to_string(), "dial lonetmoving β:1->α:1: no such host");
    for net in [here, first, second] {
        net.close().await.unwrap();
    }
}

/// The OS listener queues a burst of connections that nobody has taken off
/// it yet (a connection that a full queue dropped would wait about a second
/// for TCP to retry): 1,000 blocking connects complete while this
/// current-thread runtime's acceptors cannot run.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_connections_waits_in_the_os_queue() {
    let root = tempfile::tempdir().unwrap();
    let net = join(root.path(), "burst").await;
    let _alpha = net.new_host("α").await.unwrap();
    let os_addr: std::net::SocketAddr = net.registry().query("α").await.unwrap().parse().unwrap();
    let peers: Vec<std::net::TcpStream> = (0..1000)
        .map(|i| {
            std::net::TcpStream::connect_timeout(&os_addr, HANG_GUARD)
                .unwrap_or_else(|e| panic!("connect {i}: {e}"))
        })
        .collect();
    assert_eq!(peers.len(), 1000);
    net.close().await.unwrap();
}

/// Joining waits for another process's lock on the registry file only up
/// to its limit, then fails with "registry is down", naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_gives_up_on_a_registry_locked_too_long() {
    let root = tempfile::tempdir().unwrap();
    let dir = lonet::dirs::network_dir(root.path(), "locked").unwrap();
    let file = dir.join(lonet::dirs::REGISTRY_FILE);
    let other = rusqlite::Connection::open(&file).unwrap();
    other
        .execute_batch("BEGIN EXCLUSIVE; CREATE TABLE not_yet (x);")
        .unwrap();
    let err = lonet::Builder::new("locked")
        .root(root.path())
        .registry_lock_limit(Duration::from_millis(300))
        .join()
        .await
        .expect_err("the registry stays locked");
    assert_eq!(VirtError::of(&err), Some(VirtError::RegistryDown), "{err}");
    assert_eq!(
        err.to_string(),
        format!(r#"{}: open "locked": registry is down"#, file.display())
    );
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    let net = join(root.path(), "locked").await;
    net.close().await.unwrap();
}
