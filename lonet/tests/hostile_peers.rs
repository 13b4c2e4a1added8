//! 2,000 hostile peers at once, 1,000 sending garbage and keeping their
//! connections open, 1,000 connecting and saying nothing: a real dial still
//! succeeds meanwhile, and once the handshake deadline has passed every
//! descriptor the subnetwork took for them is closed again. One test in
//! this file's process, so no other test's sockets disturb the count.

use std::time::Duration;

mod common;

use common::{descriptors, HANG_GUARD};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 2,000 peers need 4,000 descriptors (both ends live in this process).
fn allow_descriptors(n: u64) {
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c < n) {
        let raised = Rlimit {
            current: Some(limit.maximum.map_or(n, |m| m.min(n))),
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).expect("raise the descriptor limit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_silent_peers_lose_their_descriptors() {
    const EACH: usize = 1000;
    allow_descriptors(8192);
    let root = tempfile::tempdir().unwrap();
    let net = lonet::Builder::new("hostile")
        .root(root.path())
        .handshake_timeout(Duration::from_millis(500))
        .join()
        .await
        .unwrap();
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    let os_addr = net.registry().query("α").await.unwrap();
    let baseline = descriptors::count();

    let mut peers = Vec::with_capacity(2 * EACH);
    for i in 0..2 * EACH {
        let mut peer = tokio::net::TcpStream::connect(&os_addr).await.unwrap();
        if i % 2 == 0 {
            peer.write_all(b"garbage\n").await.unwrap();
        }
        peers.push(peer);
    }
    // A real dial goes through while they hold on.
    let (c, s) = tokio::time::timeout(HANG_GUARD, async {
        tokio::join!(beta.dial("α:1"), l.accept())
    })
    .await
    .expect("a real dial among hostile peers");
    let (mut c, mut s) = (c.unwrap(), s.unwrap());
    c.write_all(b"ok").await.unwrap();
    let mut buf = [0; 2];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ok");
    drop((c, s));

    // Past the deadline the subnetwork holds none of their sockets: only
    // the peers' own ends are left.
    descriptors::settle_to(baseline + peers.len(), "the peers' sockets to close").await;
    drop(peers);
    let open = descriptors::count();
    assert!(open <= baseline, "{open} > {baseline}");
    net.close().await.unwrap();
}
