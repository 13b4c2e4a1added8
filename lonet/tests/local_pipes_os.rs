//! What `Builder::local_pipes(true)` changes: connections between a
//! subnetwork's own hosts open no OS socket, with the same addresses as
//! over loopback TCP, and hosts of other subnetworks are still dialed over
//! TCP. The checks count this process's sockets, so they run one after the
//! other in the only test of this binary.

mod common;

use common::descriptors;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn local_pipes_and_os_sockets() {
    local_pipes_open_no_os_sockets_and_give_the_same_addresses().await;
    hosts_of_other_subnetworks_are_dialed_over_tcp().await;
}

/// 100 connections between two hosts of one subnetwork: with local pipes
/// no OS socket is opened for them; without, each is a pair of sockets.
/// The addresses are the same either way.
async fn local_pipes_open_no_os_sockets_and_give_the_same_addresses() {
    const CONNS: usize = 100;
    let mut seen = Vec::new();
    for pipes in [true, false] {
        let root = tempfile::tempdir().expect("temp dir");
        let net = lonet::Builder::new("")
            .root(root.path())
            .local_pipes(pipes)
            .join()
            .await
            .expect("join");
        let a = net.new_host("α").await.expect("α");
        let b = net.new_host("β").await.expect("β");
        let listener = a.listen("α:80").await.expect("listen");
        let before = descriptors::sockets();
        let mut conns = Vec::new();
        for _ in 0..CONNS {
            let (dialed, accepted) = tokio::join!(b.dial("α:80"), listener.accept());
            let (mut dialed, mut accepted) = (dialed.expect("dial"), accepted.expect("accept"));
            dialed.write_all(b"hi").await.expect("write");
            let mut buf = [0; 2];
            accepted.read_exact(&mut buf).await.expect("read");
            assert_eq!(&buf, b"hi");
            seen.push((
                pipes,
                dialed.local_addr().to_string(),
                accepted.local_addr().to_string(),
            ));
            conns.push((dialed, accepted));
        }
        let opened = descriptors::sockets().saturating_sub(before);
        if pipes {
            assert_eq!(opened, 0, "local pipes opened OS sockets");
        } else {
            assert!(
                opened >= 2 * CONNS,
                "loopback TCP opened only {opened} sockets"
            );
        }
        drop(conns);
        net.close().await.expect("close");
    }
    let (with, without): (Vec<_>, Vec<_>) = seen.into_iter().partition(|s| s.0);
    let addrs =
        |v: Vec<(bool, String, String)>| v.into_iter().map(|(_, d, a)| (d, a)).collect::<Vec<_>>();
    let with = addrs(with);
    assert_eq!(with[0], ("β:1".to_owned(), "α:1".to_owned()));
    assert_eq!(with, addrs(without), "the addresses differ");
}

/// A host of another subnetwork (another process, as far as lonet can
/// tell) is still dialed over loopback TCP, both ways.
async fn hosts_of_other_subnetworks_are_dialed_over_tcp() {
    let root = tempfile::tempdir().expect("temp dir");
    let join = || {
        lonet::Builder::new("split")
            .root(root.path())
            .local_pipes(true)
            .join()
    };
    let (one, two) = (join().await.expect("join"), join().await.expect("join"));
    let a = one.new_host("α").await.expect("α");
    let b = two.new_host("β").await.expect("β");
    let la = a.listen("α:7").await.expect("listen");
    let lb = b.listen("β:7").await.expect("listen");
    let before = descriptors::sockets();
    let (ab, ba) = tokio::join!(b.dial("α:7"), la.accept());
    let (mut ab, mut ba) = (ab.expect("β dials α"), ba.expect("α accepts"));
    let (a2, b2) = tokio::join!(a.dial("β:7"), lb.accept());
    let (a2, b2) = (a2.expect("α dials β"), b2.expect("β accepts"));
    assert_eq!(
        descriptors::sockets() - before,
        4,
        "two TCP connections, two sockets each"
    );
    assert_eq!(ab.local_addr().to_string(), "β:1");
    assert_eq!(ba.peer_addr().to_string(), "β:1");
    assert_eq!(a2.peer_addr().to_string(), b2.local_addr().to_string());
    ab.write_all(b"over tcp").await.expect("write");
    let mut buf = [0; 8];
    ba.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"over tcp");
    drop((ab, ba, a2, b2));
    one.close().await.expect("close");
    two.close().await.expect("close");
}
