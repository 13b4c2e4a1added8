//! Dropping a lonet subnetwork without closing it releases everything: the
//! OS listener closes at once, the serve task stops, and the hosts leave
//! the registry, whatever order the handles are dropped in.

use std::any::Any;
use std::time::Duration;

use lonet::{Registry, VirtError};
use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;

/// A guard against hangs only: no assertion depends on it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Joins a fresh network, makes hosts α and β, a listener and a connection
/// between them; returns the handles (net, α, β, listener, client, server),
/// α's OS address, and a second registry handle on the same file.
async fn everything(
    root: &std::path::Path,
) -> (Vec<Box<dyn Any>>, String, registry_sqlite::SqliteRegistry) {
    let net = lonet::Builder::new("own").root(root).join().await.unwrap();
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    let (c, s) = tokio::join!(beta.dial("α:1"), l.accept());
    let (mut c, s) = (c.unwrap(), s.unwrap());
    c.write_all(b"x").await.unwrap();
    let os_addr = net.registry().query("α").await.unwrap();
    let other = registry_sqlite::SqliteRegistry::open(root.join("own/registry.db"), "own")
        .await
        .unwrap();
    let handles: Vec<Box<dyn Any>> = vec![
        Box::new(net),
        Box::new(alpha),
        Box::new(beta),
        Box::new(l),
        Box::new(c),
        Box::new(s),
    ];
    (handles, os_addr, other)
}

/// Yields until `done` holds (each round lets the runtime run other tasks).
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    tokio::time::timeout(HANG_GUARD, async {
        while !done().await {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited {HANG_GUARD:?} for {what}"));
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_every_handle_releases_everything_in_any_order() {
    let orders: [&[usize]; 3] = [
        &[0, 1, 2, 3, 4, 5],
        &[5, 4, 3, 2, 1, 0],
        &[3, 0, 4, 1, 5, 2],
    ];
    for order in orders {
        let root = tempfile::tempdir().unwrap();
        let tasks_before = Handle::current().metrics().num_alive_tasks();
        let (handles, os_addr, other) = everything(root.path()).await;
        let mut handles: Vec<Option<Box<dyn Any>>> = handles.into_iter().map(Some).collect();
        for &i in order {
            drop(handles[i].take());
        }
        // The OS listener closed with the last handle: the OS refuses now.
        let refused = std::net::TcpStream::connect(&os_addr).expect_err("OS listener closed");
        assert_eq!(
            refused.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{order:?}"
        );
        // Both hosts leave the registry, in the background.
        for host in ["α", "β"] {
            until(&format!("{host} to leave the registry"), async || {
                other.query(host).await.is_err()
            })
            .await;
            let e = std::io::Error::from(other.query(host).await.unwrap_err());
            assert_eq!(VirtError::of(&e), Some(VirtError::NoHost), "{order:?}");
        }
        // The serve loop and every other task of the subnetwork ended.
        until("the subnetwork's tasks to end", async || {
            Handle::current().metrics().num_alive_tasks() <= tasks_before
        })
        .await;
        // The names are free again.
        let net = lonet::Builder::new("own")
            .root(root.path())
            .join()
            .await
            .unwrap();
        net.new_host("α").await.expect("α is free");
        net.close().await.unwrap();
    }
}

/// A host whose handles are all dropped leaves while its subnetwork goes
/// on: its name is free and dials to it find no such host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_host_leaves_its_living_subnetwork() {
    let root = tempfile::tempdir().unwrap();
    let net = lonet::Builder::new("leave")
        .root(root.path())
        .join()
        .await
        .unwrap();
    let beta = net.new_host("β").await.unwrap();
    drop(net.new_host("α").await.unwrap());
    assert!(net.host("α").is_none());
    until("α to leave the registry", async || {
        net.registry().query("α").await.is_err()
    })
    .await;
    let e = beta.dial("α:1").await.unwrap_err();
    assert_eq!(VirtError::of(&e), Some(VirtError::NoHost), "{e}");
    net.new_host("α").await.expect("α's name is free again");
    net.close().await.unwrap();
}
