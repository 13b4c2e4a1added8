//! lonet beyond one machine: three processes, each with its own network
//! stack, share one network through a PostgreSQL registry. Two of them run
//! in network namespaces of their own (as in two containers, or on two
//! machines) joined by a veth pair; the third, and the PostgreSQL server,
//! in the root namespace, reached from the others over veth links of
//! their own. Every process binds and announces an address of its
//! namespace, so nothing travels over a shared loopback.
//!
//! Addresses come from 198.18.0.0/15, the range reserved for network
//! benchmarks. The test makes and removes its own namespaces; where they
//! cannot be made (not root, no `ip`), it says so, and fails when
//! `VIRTNET_TEST_STRICT` is set (as `.ci/test` does).

mod common;

use std::net::SocketAddr;
use std::process::Command as StdCommand;

use common::{postgres_url, unique_net, Child, ROLE};
use lonet::RegistryUrl;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use virtnet_core::Registry;

/// Two namespaces, `a` and `b`, joined by a veth pair (`198.18.K.1` in
/// `a`, `198.18.K.2` in `b`), each also joined to the root namespace by a
/// veth pair of its own (root `198.19.K.1` ↔ `a` `198.19.K.2`, root
/// `198.19.K.5` ↔ `b` `198.19.K.6`). `a` and `b` route everything else to
/// the root namespace, which routes to their `198.18.K.x` addresses. K
/// differs between test runs, so runs at once do not collide. Removed on
/// drop.
struct Namespaces {
    a: String,
    b: String,
    k: u8,
}

impl Namespaces {
    fn create(tag: &str) -> Result<Namespaces, String> {
        let pid = std::process::id() % 100_000;
        // A third octet of 10..=249, from the pid and the tag.
        let k = 10 + ((pid + tag.len() as u32 * 37) % 240) as u8;
        let ns = Namespaces {
            a: format!("vn{pid}{tag}a"),
            b: format!("vn{pid}{tag}b"),
            k,
        };
        // Leftovers of a run that was killed with this pid: gone.
        let _ = ip(&["netns", "del", &ns.a]);
        let _ = ip(&["netns", "del", &ns.b]);
        ns.build(pid, tag)?;
        Ok(ns)
    }

    fn build(&self, pid: u32, tag: &str) -> Result<(), String> {
        let (a, b, k) = (self.a.as_str(), self.b.as_str(), self.k);
        let dev = |s: &str| format!("vn{pid}{tag}{s}");
        let (ab, ba, ra, ar, rb, br) = (dev("ab"), dev("ba"), dev("ra"), dev("ar"), dev("rb"), dev("br"));
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        for (ns, dev, peer, peer_ns, addr, peer_addr) in [
            (Some(a), &ab, &ba, Some(b), format!("198.18.{k}.1/24"), format!("198.18.{k}.2/24")),
            (None, &ra, &ar, Some(a), format!("198.19.{k}.1/30"), format!("198.19.{k}.2/30")),
            (None, &rb, &br, Some(b), format!("198.19.{k}.5/30"), format!("198.19.{k}.6/30")),
        ] {
            ip(&["link", "add", dev, "type", "veth", "peer", "name", peer])?;
            if let Some(ns) = ns {
                ip(&["link", "set", dev, "netns", ns])?;
            }
            if let Some(peer_ns) = peer_ns {
                ip(&["link", "set", peer, "netns", peer_ns])?;
            }
            ip_in(ns, &["addr", "add", &addr, "dev", dev])?;
            ip_in(peer_ns, &["addr", "add", &peer_addr, "dev", peer])?;
            ip_in(ns, &["link", "set", dev, "up"])?;
            ip_in(peer_ns, &["link", "set", peer, "up"])?;
        }
        ip_in(Some(a), &["link", "set", "lo", "up"])?;
        ip_in(Some(b), &["link", "set", "lo", "up"])?;
        ip_in(Some(a), &["route", "add", "default", "via", &format!("198.19.{k}.1")])?;
        ip_in(Some(b), &["route", "add", "default", "via", &format!("198.19.{k}.5")])?;
        ip(&["route", "add", &format!("198.18.{k}.1/32"), "via", &format!("198.19.{k}.2")])?;
        ip(&["route", "add", &format!("198.18.{k}.2/32"), "via", &format!("198.19.{k}.6")])?;
        Ok(())
    }

    /// The root namespace's address, which both namespaces reach.
    fn root_ip(&self) -> String {
        format!("198.19.{}.1", self.k)
    }

    /// The address of namespace `a` (`b`: `198.18.K.2`) on the link
    /// between them.
    fn ip_of(&self, ns: &str) -> String {
        let last = if ns == self.a { 1 } else { 2 };
        format!("198.18.{}.{last}", self.k)
    }

    /// A command prefix that runs in namespace `ns`.
    fn exec<'a>(&'a self, ns: &'a str) -> [&'a str; 4] {
        ["ip", "netns", "exec", ns]
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // The veth pairs, their root ends and routes go with the namespaces.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    ip_in(None, args)
}

/// Runs `ip ARGS` in namespace `ns` (None: the root namespace).
fn ip_in(ns: Option<&str>, args: &[&str]) -> Result<(), String> {
    let mut cmd = StdCommand::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces for a test, or None (said) where they cannot be made
/// outside a strict run.
fn namespaces(tag: &str) -> Option<Namespaces> {
    match Namespaces::create(tag) {
        Ok(ns) => Some(ns),
        Err(e) if std::env::var_os("VIRTNET_TEST_STRICT").is_some() => {
            panic!("network namespaces cannot be created here: {e} (CI runs as root and can)")
        }
        Err(e) => {
            eprintln!("skipped: network namespaces cannot be created here: {e}");
            None
        }
    }
}

/// `url` with its host `127.0.0.1` or `localhost` replaced by `ip`: the
/// server as another namespace reaches it.
fn url_via(url: &str, ip: &str) -> String {
    for local in ["@127.0.0.1:", "@localhost:", "@127.0.0.1/", "@localhost/"] {
        if url.contains(local) {
            return url.replacen(&local[..local.len() - 1], &format!("@{ip}"), 1);
        }
    }
    panic!("the namespace test needs the PostgreSQL server on this machine's 127.0.0.1 (got {url})");
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
    assert_eq!(alpha.next().await, format!("error dial {n} α:1->α:0: connection refused"));
    alpha.send("listen").await;
    assert_eq!(alpha.next().await, "listener 0 α:1");
    alpha.send("dial :0").await;
    assert_eq!(alpha.next().await, format!("error dial {n} α:2->α:0: connection refused"));
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
    let (mut to_alpha, ()) = tokio::join!(
        async { gamma.dial("α:4").await.unwrap() },
        async {
            alpha.send("accept 1").await;
            assert_eq!(alpha.next().await, "conn 3 α:6 γ:3");
        }
    );
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
    assert_eq!(to_alpha.read(&mut buf).await.unwrap(), 0, "γ sees α's close");
    beta.send("dial α:1").await;
    assert_eq!(beta.next().await, format!("error dial {n} β:4->α:1: no such host"));

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
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let name = std::env::var("LONET_TEST_NET").unwrap();
        // The registry and the address to bind come from LONET_REGISTRY
        // and LONET_BIND.
        let net = lonet::Builder::new(&name).join().await.expect("child join");
        let mut commands = BufReader::new(tokio::io::stdin()).lines();
        match role.as_str() {
            "script" => common::script(&net, &mut commands).await,
            other => panic!("unknown role {other}"),
        }
        net.close().await.expect("child close");
    });
    std::process::exit(0);
}
