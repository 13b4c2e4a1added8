//! lonet across real OS processes: this test binary re-runs itself as the
//! child processes (see `child_process_entry`), which join the same network
//! under a temporary root.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::Conn;

mod common;
use common::{say, Child, Commands, HANG_GUARD};

/// A child playing `role` on network `net` under `root`.
fn child(role: &str, root: &Path, net: &str, extra: &[(&str, String)]) -> Child {
    let mut env = vec![
        ("LONET_TEST_ROOT", root.display().to_string()),
        ("LONET_TEST_NET", net.to_owned()),
    ];
    env.extend(extra.iter().cloned());
    Child::spawn(&[], "child_process_entry", role, &env)
}

/// The reference scenario, with host α in this process and β in a child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_scenario_across_two_processes() {
    let root = tempfile::tempdir().unwrap();
    let net = lonet::Builder::new("ref")
        .root(root.path())
        .join()
        .await
        .unwrap();
    let n = net.network().to_owned();
    let alpha = net.new_host("α").await.unwrap();
    let mut beta = child("script", root.path(), "ref", &[]);
    beta.send("host β").await;
    assert_eq!(beta.next().await, "host β");

    let err = alpha.dial(":0").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("dial {n} α:1->α:0: connection refused")
    );
    let l1 = alpha.listen("").await.unwrap();
    assert_eq!(l1.local_addr().to_string(), "α:1");
    let err = alpha.dial(":0").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("dial {n} α:2->α:0: connection refused")
    );

    beta.send("dial α:1").await;
    let mut c1s = l1.accept().await.unwrap();
    assert_eq!(beta.next().await, "conn 0 β:1 α:2");
    assert_eq!(
        (c1s.local_addr().to_string(), c1s.peer_addr().to_string()),
        ("α:2".into(), "β:1".into())
    );
    beta.send("dial α:1").await;
    let c2s = l1.accept().await.unwrap();
    assert_eq!(beta.next().await, "conn 1 β:2 α:3");
    assert_eq!(
        (c2s.local_addr().to_string(), c2s.peer_addr().to_string()),
        ("α:3".into(), "β:2".into())
    );
    let l2 = alpha.listen(":0").await.unwrap();
    assert_eq!(l2.local_addr().to_string(), "α:4");

    beta.send("send 0 ping").await;
    let mut buf = [0; 4];
    c1s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    c1s.write_all(b"pong").await.unwrap();
    beta.send("recv 0 4").await;
    assert_eq!(beta.next().await, "recv pong");

    // β's process dials a port nobody listens on: refused, with its source named
    beta.send("dial α:9").await;
    assert_eq!(
        beta.next().await,
        format!("error dial {n} β:3->α:9: connection refused")
    );
    beta.send("exit").await;
    beta.exit_ok().await;
    // β left the network when its process closed: its name is free again
    net.new_host("β")
        .await
        .expect("β's name is free after its process closed");
    net.close().await.unwrap();
}

/// 4 processes with 8 hosts each; every host dials every other host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_eight_hosts_all_dial_each_other() {
    const PROCS: usize = 4;
    const HOSTS: usize = 8;
    let root = tempfile::tempdir().unwrap();
    let mut children: Vec<Child> = (0..PROCS)
        .map(|i| {
            let extra = [
                ("LONET_TEST_INDEX", i.to_string()),
                ("LONET_TEST_PROCS", PROCS.to_string()),
                ("LONET_TEST_HOSTS", HOSTS.to_string()),
            ];
            child("mesh", root.path(), "mesh", &extra)
        })
        .collect();
    for c in &mut children {
        assert_eq!(c.next().await, "ready");
    }
    for c in &mut children {
        c.send("go").await;
    }
    for c in &mut children {
        assert_eq!(c.next().await, "done");
    }
    for c in &mut children {
        c.send("exit").await;
    }
    for c in children {
        c.exit_ok().await;
    }
    // every process left: the registry is empty again
    let reg = registry_sqlite::SqliteRegistry::open(root.path().join("mesh/registry.db"), "mesh")
        .await
        .unwrap();
    use virtnet_core::Registry;
    assert_eq!(reg.list().await.unwrap(), Vec::<(String, String)>::new());
}

/// A peer process killed mid-transfer: the survivor's read ends (end of
/// stream or reset) instead of hanging, and the dead host's name is taken
/// over by another process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_peer_ends_the_survivors_read() {
    let root = tempfile::tempdir().unwrap();
    let net = lonet::Builder::new("kill")
        .root(root.path())
        .join()
        .await
        .unwrap();
    let alpha = net.new_host("α").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    let mut flood = child("flood", root.path(), "kill", &[]);
    let mut s = l.accept().await.unwrap();
    assert_eq!(flood.next().await, "flooding σ:1 α:2");
    let mut buf = vec![0; 64 << 10];
    let mut got = 0;
    while got < 1 << 20 {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "the flood stopped early");
        got += n;
    }
    flood.proc.start_kill().unwrap();
    flood.proc.wait().await.unwrap();
    let end = tokio::time::timeout(HANG_GUARD, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(_) => continue, // what was in flight
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the survivor's read hangs");
    if let Err(e) = end {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    // The killed process left σ registered; this process takes it over.
    let dead = net.registry().query("σ").await.unwrap();
    let sigma = net
        .new_host("σ")
        .await
        .expect("a dead host's name is taken over");
    let mine = net.registry().query("α").await.unwrap();
    assert_ne!(dead, mine);
    assert_eq!(net.registry().query("σ").await.unwrap(), mine);
    drop(sigma);
    net.close().await.unwrap();
}

/// Not a test: the entry point of the child processes the tests above spawn.
/// In a normal test run (no role in the environment) it does nothing.
#[test]
fn child_process_entry() {
    common::child_main(|role, net, mut commands| async move {
        match role.as_str() {
            "script" => common::script(&net, &mut commands).await,
            "mesh" => mesh(&net, &mut commands).await,
            "flood" => flood(&net).await,
            other => panic!("unknown role {other}"),
        }
    });
}

/// Creates hosts h<index>_0..; on `go`, every host dials every other host of
/// every process and checks names and ports; says `done`, waits for `exit`.
async fn mesh(net: &virtnet_core::SubNetwork, commands: &mut Commands) {
    let env = |k: &str| std::env::var(k).unwrap().parse::<usize>().unwrap();
    let (index, procs, hosts) = (
        env("LONET_TEST_INDEX"),
        env("LONET_TEST_PROCS"),
        env("LONET_TEST_HOSTS"),
    );
    let others = procs * hosts - 1;
    let mut mine = Vec::new();
    for k in 0..hosts {
        let h = net.new_host(&format!("h{index}_{k}")).await.unwrap();
        let l = h.listen(":1").await.unwrap();
        mine.push((h, Arc::new(l)));
    }
    say("ready");
    assert_eq!(commands.next_line().await.unwrap().as_deref(), Some("go"));
    let all: Vec<String> = (0..procs)
        .flat_map(|p| (0..hosts).map(move |k| format!("h{p}_{k}")))
        .collect();
    let mut tasks = Vec::new();
    for (h, l) in &mine {
        // accept from every other host: each sends its name first
        let (h2, l) = (h.clone(), l.clone());
        tasks.push(tokio::spawn(async move {
            let mut conns = Vec::new();
            let mut peers = BTreeSet::new();
            for _ in 0..others {
                let mut s = l.accept().await.unwrap();
                let mut name = vec![0; s.peer_addr().host().len()];
                s.read_exact(&mut name).await.unwrap();
                assert_eq!(String::from_utf8(name).unwrap(), s.peer_addr().host());
                assert_eq!(s.local_addr().host(), h2.name());
                peers.insert(s.peer_addr().host().to_owned());
                conns.push(s);
            }
            assert_eq!(peers.len(), others, "one connection from every other host");
            conns
        }));
        for target in all.iter().filter(|t| *t != h.name()) {
            let (h, target) = (h.clone(), target.clone());
            tasks.push(tokio::spawn(async move {
                let mut c = h.dial(&format!("{target}:1")).await.unwrap();
                assert_eq!(c.peer_addr().host(), target);
                c.write_all(h.name().as_bytes()).await.unwrap();
                vec![c]
            }));
        }
    }
    let mut open: Vec<Conn> = Vec::new();
    for t in tasks {
        open.extend(t.await.unwrap());
    }
    // every host now holds its listener (port 1) and 2 × others
    // connections, on exactly the ports 2..=2×others+1
    for (h, _) in &mine {
        let ports: BTreeSet<u32> = open
            .iter()
            .filter(|c| c.local_addr().host() == h.name())
            .map(|c| c.local_addr().port())
            .collect();
        assert_eq!(
            ports,
            (2..=2 * others as u32 + 1).collect(),
            "ports of {}",
            h.name()
        );
    }
    say("done");
    assert_eq!(commands.next_line().await.unwrap().as_deref(), Some("exit"));
}

/// Dials α:1 from host σ and writes until killed.
async fn flood(net: &virtnet_core::SubNetwork) {
    let sigma = net.new_host("σ").await.unwrap();
    let mut c = sigma.dial("α:1").await.unwrap();
    say(&format!("flooding {} {}", c.local_addr(), c.peer_addr()));
    let chunk = vec![0x5a; 64 << 10];
    loop {
        if c.write_all(&chunk).await.is_err() {
            return;
        }
    }
}
