//! Names of dead hosts are taken over, on proof of death only: the OS
//! refuses the registered address, or the lonet process there answers that
//! it has no such host or is another network. A live holder, or one that
//! does not answer, keeps its name.

use std::io;
use std::time::Duration;

use lonet::{SubNetwork, VirtError};

async fn join(root: &std::path::Path, name: &str) -> SubNetwork {
    lonet::Builder::new(name)
        .root(root)
        .handshake_timeout(Duration::from_millis(300))
        .join()
        .await
        .unwrap()
}

/// The OS address of `net`'s process (as its hosts are announced).
async fn os_addr_of(net: &SubNetwork, probe_host: &str) -> String {
    let h = net.new_host(probe_host).await.unwrap();
    let addr = net.registry().query(probe_host).await.unwrap();
    drop(h);
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_holders_lose_their_names() {
    let root = tempfile::tempdir().unwrap();
    let net = join(root.path(), "reclaim").await;
    let mine = os_addr_of(&net, "me").await;

    // 1. The OS refuses: the holder's process is gone.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    net.registry().announce("α", &dead).await.unwrap();
    let alpha = net.new_host("α").await.expect("α taken over");
    assert_eq!(net.registry().query("α").await.unwrap(), mine);

    // 2. A live process of the same network without that host.
    let other = join(root.path(), "reclaim").await;
    let theirs = os_addr_of(&other, "them").await;
    net.registry().announce("β", &theirs).await.unwrap();
    let beta = net.new_host("β").await.expect("β taken over");
    assert_eq!(net.registry().query("β").await.unwrap(), mine);

    // 3. A live process of another network at the address.
    let elsewhere = join(root.path(), "elsewhere").await;
    let foreign = os_addr_of(&elsewhere, "x").await;
    net.registry().announce("γ", &foreign).await.unwrap();
    let gamma = net.new_host("γ").await.expect("γ taken over");

    // The taken-over hosts work.
    let l = alpha.listen(":1").await.unwrap();
    let (c, s) = tokio::join!(gamma.dial("α:1"), l.accept());
    assert_eq!(c.unwrap().peer_addr(), s.unwrap().local_addr());
    drop((alpha, beta, gamma, l));
    for n in [net, other, elsewhere] {
        n.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_or_silent_holders_keep_their_names() {
    let root = tempfile::tempdir().unwrap();
    let one = join(root.path(), "keep").await;
    let two = join(root.path(), "keep").await;
    let _alpha = one.new_host("α").await.unwrap();

    // A live holder: the plain refusal.
    let err = two.new_host("α").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "new host lonetkeep α: host already registered"
    );
    assert_eq!(VirtError::of(&err), Some(VirtError::HostDup));
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);

    // A holder whose address accepts but never answers: no proof of death.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap().to_string();
    one.registry().announce("β", &mute_addr).await.unwrap();
    let err = two.new_host("β").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "new host lonetkeep β: host already registered (not taken over: {mute_addr} did not answer within 300ms)"
        )
    );
    assert_eq!(VirtError::of(&err), Some(VirtError::HostDup));
    assert_eq!(two.registry().query("β").await.unwrap(), mute_addr);
    drop(mute);
    one.close().await.unwrap();
    two.close().await.unwrap();
}

/// Two processes taking over the same dead name at once: exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_takeovers_wins() {
    let root = tempfile::tempdir().unwrap();
    let one = join(root.path(), "race").await;
    let two = join(root.path(), "race").await;
    for round in 0..20 {
        let name = format!("h{round}");
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        one.registry().announce(&name, &dead).await.unwrap();
        let (a, b) = tokio::join!(one.new_host(&name), two.new_host(&name));
        assert!(a.is_ok() ^ b.is_ok(), "round {round}: {a:?} {b:?}");
        let lost = a.err().or(b.err()).unwrap();
        assert_eq!(VirtError::of(&lost), Some(VirtError::HostDup), "{lost}");
    }
    one.close().await.unwrap();
    two.close().await.unwrap();
}
