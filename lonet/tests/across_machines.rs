//! lonet beyond one machine: three processes, each with its own network
//! stack, share one network through a PostgreSQL registry. Two of them run
//! in network namespaces of their own (as in two containers, or on two
//! machines) joined by a veth pair; the third, and the PostgreSQL server,
//! in the root namespace, reached from the others over veth links of
//! their own. Every process binds and announces an address of its
//! namespace, so nothing travels over a shared loopback.
//!
//! The namespaces are `virtnet_testdata::netns`'s (addresses from
//! 198.18.0.0/15). The test makes and removes its own; where they cannot be
//! made (not root, no `ip`), it says so, and fails when
//! `VIRTNET_TEST_STRICT` is set (as `.ci/run` does).

mod common;

use std::net::SocketAddr;

use common::{postgres_url, unique_net, Child};
use lonet::RegistryUrl;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::Registry;
use virtnet_testdata::netns::{namespaces, Namespaces};

/// `url` with its host `127.0.0.1` or `localhost` replaced by `ip`: the
/// server as another namespace reaches it.
fn url_via(url: &str, ip: &str) -> String {
    for local in ["@127.0.0.1:", "@localhost:", "@127.0.0.1/", "@localhost/"] {
        if url.contains(local) {
            return url.replacen(&local[..local.len() - 1], &format!("@{ip}"), 1);
        }
    }
    panic!(
        "the namespace test needs the PostgreSQL server on this machine's 127.0.0.1 (got {url})"
    );
}

/// A child in namespace `ns`, joining `net` through PostgreSQL at `url`
/// with its listener bound to `bind` (all from the environment, as a user
/// would set them).
fn child_in(ns: &Namespaces, which: &str, url: &str, net: &str) -> Child {
    let env = [
        ("LONET_REGISTRY", url_via(url, &ns.root_ip())),
        ("LONET_BIND", ns.ip_of(which)),
        ("LONET_TEST_NET", net.to_owned()),
    ];
    Child::spawn(&ns.exec(which), "child_process_entry", "script", &env)
}

/// The reference scenario between α (namespace a) and β (namespace b),
/// data both ways between all three processes, and a host close seen from
/// the other side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_scenario_across_namespaces() {
    let url = postgres_url();
    let Some(ns) = namespaces("s") else { return };
    let name = unique_net("ns");
    let n = format!("lonet{name}");

    // γ, in the root namespace: a listener on every address, announced at
    // the address both namespaces reach.
    let root_ip = ns.root_ip();
    let net = lonet::Builder::new(&name)
        .registry_url(RegistryUrl::Postgres(url.clone()))
        .bind("0.0.0.0:0".parse().unwrap())
        .announce(format!("{root_ip}:0").parse().unwrap())
        .join()
        .await
        .unwrap();
    let gamma = net.new_host("γ").await.unwrap();
    let lg = gamma.listen(":7").await.unwrap();

    let mut alpha = child_in(&ns, &ns.a, &url, &name);
    let mut beta = child_in(&ns, &ns.b, &url, &name);
    alpha.send("host α").await;
    assert_eq!(alpha.next().await, "host α");
    beta.send("host β").await;
    assert_eq!(beta.next().await, "host β");

    // Each announced its own namespace's address.
    let data = |host: &'static str| {
        let registry = net.registry();
        async move { registry.query(host).await.unwrap() }
    };
    let os_ip = |data: String| data.parse::<SocketAddr>().unwrap().ip().to_string();
    assert_eq!(os_ip(data("α").await), ns.ip_of(&ns.a));
    assert_eq!(os_ip(data("β").await), ns.ip_of(&ns.b));
    assert_eq!(os_ip(data("γ").await), root_ip);

    // The reference scenario, α in one namespace, β in the other.
    alpha.send("dial :0").await;
    assert_eq!(
        alpha.next().await,
        format!("error dial {n} α:1->α:0: connection refused")
    );
    alpha.send("listen").await;
    assert_eq!(alpha.next().await, "listener 0 α:1");
    alpha.send("dial :0").await;
    assert_eq!(
        alpha.next().await,
        format!("error dial {n} α:2->α:0: connection refused")
    );
    beta.send("dial α:1").await;
    alpha.send("accept 0").await;
    assert_eq!(alpha.next().await, "conn 0 α:2 β:1");
    assert_eq!(beta.next().await, "conn 0 β:1 α:2");
    beta.send("dial α:1").await;
    alpha.send("accept 0").await;
    assert_eq!(alpha.next().await, "conn 1 α:3 β:2");
    assert_eq!(beta.next().await, "conn 1 β:2 α:3");
    alpha.send("listen :0").await;
    assert_eq!(alpha.next().await, "listener 1 α:4");

    // Data both ways between the namespaces.
    beta.send("send 0 ping").await;
    alpha.send("recv 0 4").await;
    assert_eq!(alpha.next().await, "recv ping");
    alpha.send("send 0 pong").await;
    beta.send("recv 0 4").await;
    assert_eq!(beta.next().await, "recv pong");

    // And with the root namespace: α and β dial γ, γ dials α.
    alpha.send("dial γ:7").await;
    let mut from_alpha = lg.accept().await.unwrap();
    assert_eq!(alpha.next().await, "conn 2 α:5 γ:1");
    assert_eq!(from_alpha.peer_addr().to_string(), "α:5");
    beta.send("dial γ:7").await;
    let mut from_beta = lg.accept().await.unwrap();
    assert_eq!(beta.next().await, "conn 2 β:3 γ:2");
    assert_eq!(from_beta.peer_addr().to_string(), "β:3");
    let (mut to_alpha, ()) = tokio::join!(async { gamma.dial("α:4").await.unwrap() }, async {
        alpha.send("accept 1").await;
        assert_eq!(alpha.next().await, "conn 3 α:6 γ:3");
    });
    assert_eq!(to_alpha.local_addr().to_string(), "γ:3");
    from_alpha.write_all(b"root").await.unwrap();
    alpha.send("recv 2 4").await;
    assert_eq!(alpha.next().await, "recv root");
    beta.send("send 2 from-b").await;
    let mut buf = [0; 6];
    from_beta.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"from-b");
    alpha.send("send 3 from-a").await;
    to_alpha.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"from-a");

    // α's host closes: β (the other namespace) and γ (the root) see its
    // connections end, and its name leaves the registry.
    alpha.send("close-host").await;
    assert_eq!(alpha.next().await, "closed");
    beta.send("eof 0").await;
    assert_eq!(beta.next().await, "eof");
    beta.send("eof 1").await;
    assert_eq!(beta.next().await, "eof");
    assert_eq!(
        to_alpha.read(&mut buf).await.unwrap(),
        0,
        "γ sees α's close"
    );
    beta.send("dial α:1").await;
    assert_eq!(
        beta.next().await,
        format!("error dial {n} β:4->α:1: no such host")
    );

    alpha.send("exit").await;
    alpha.exit_ok().await;
    beta.send("exit").await;
    beta.exit_ok().await;
    assert_eq!(
        net.registry().list().await.unwrap(),
        vec![("γ".to_owned(), data("γ").await)]
    );
    net.close().await.unwrap();
    let registry = registry_postgres::PostgresRegistry::connect(&url, &name)
        .await
        .unwrap();
    assert_eq!(registry.list().await.unwrap(), vec![]);
    registry.remove_network().await.unwrap();
}

/// Not a test: the entry point of the child processes the tests above spawn
/// (in their namespaces). In a normal test run it does nothing.
#[test]
fn child_process_entry() {
    // The registry and the address to bind come from LONET_REGISTRY and
    // LONET_BIND.
    common::child_main(|role, net, mut commands| async move {
        match role.as_str() {
            "script" => common::script(&net, &mut commands).await,
            other => panic!("unknown role {other}"),
        }
    });
}
