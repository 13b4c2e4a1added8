//! lonet with its hosts in a PostgreSQL registry: the conformance suites
//! unchanged (faults kept, and followed, through the database), and many
//! processes joining one network at once.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{postgres_url, say, unique_net, Child, Commands};
use conformance_tests::Fixture;
use lonet::RegistryUrl;
use virtnet_core::Registry;

/// A fresh network of its own in the tests' database.
async fn fresh() -> Fixture {
    let net = lonet::Builder::new(&unique_net("conf"))
        .registry_url(RegistryUrl::Postgres(postgres_url()))
        .join()
        .await
        .expect("join");
    Fixture::new(net)
}

conformance_tests::subnetwork_suites!(fresh);

const PROCS: usize = 16;
const HOSTS: usize = 50;
/// Names every process tries to take.
const CONTESTED: usize = 10;

/// 16 processes × 50 hosts join one network at once through PostgreSQL,
/// and all 16 try to take the same 10 names too: no failure, every name
/// owned exactly once, by the process that says it made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_processes_fifty_hosts_each_at_once() {
    let url = postgres_url();
    let name = unique_net("crowd");
    let mut children: Vec<Child> = (0..PROCS)
        .map(|i| {
            let env = [
                ("LONET_REGISTRY", url.clone()),
                ("LONET_TEST_NET", name.clone()),
                ("LONET_TEST_INDEX", i.to_string()),
            ];
            Child::spawn(&[], "child_process_entry", "crowd", &env)
        })
        .collect();
    // Every process has joined (and says where it serves) before any makes
    // a host.
    let mut served_at = Vec::new();
    for c in &mut children {
        let ready = c.next().await;
        let os_addr = ready
            .strip_prefix("ready ")
            .expect("ready OS_ADDR")
            .to_owned();
        served_at.push(os_addr);
    }
    for c in &mut children {
        c.send("go").await;
    }
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (i, c) in children.iter_mut().enumerate() {
        let report = c.next().await;
        let made = report.strip_prefix("made ").expect("made NAMES");
        for host in made.split(' ').filter(|h| !h.is_empty()) {
            assert!(
                owner.insert(host.to_owned(), i).is_none(),
                "{host} made twice"
            );
        }
    }
    // Each process made its own 50; the contested names went one each.
    for (i, _) in children.iter().enumerate() {
        for k in 0..HOSTS {
            assert_eq!(owner.get(&format!("h{i}_{k}")), Some(&i));
        }
    }
    let contested: BTreeSet<&String> = owner.keys().filter(|h| h.starts_with("shared")).collect();
    assert_eq!(
        contested.len(),
        CONTESTED,
        "every contested name has an owner"
    );
    // The registry agrees: every name maps to its owner's OS address.
    let registry = registry_postgres::PostgresRegistry::connect(&url, &name)
        .await
        .unwrap();
    let listed: BTreeMap<String, String> = registry.list().await.unwrap().into_iter().collect();
    assert_eq!(listed.len(), PROCS * HOSTS + CONTESTED);
    for (host, data) in &listed {
        assert_eq!(data, &served_at[owner[host]], "{host}");
    }
    for c in &mut children {
        c.send("exit").await;
    }
    for c in children {
        c.exit_ok().await;
    }
    // Every process left: the network is empty again.
    assert_eq!(registry.list().await.unwrap(), vec![]);
    registry.remove_network().await.unwrap();
}

/// Not a test: the entry point of the child processes the tests above
/// spawn. In a normal test run it does nothing.
#[test]
fn child_process_entry() {
    // The registry comes from LONET_REGISTRY.
    common::child_main(|role, net, mut commands| async move {
        match role.as_str() {
            "crowd" => crowd(&net, &mut commands).await,
            other => panic!("unknown role {other}"),
        }
    });
}

/// Says `ready OS_ADDR`; on `go`, makes hosts h<index>_0.. and tries the
/// contested names, all at once; says `made NAMES`; waits for `exit`.
async fn crowd(net: &virtnet_core::SubNetwork, commands: &mut Commands) {
    let index: usize = std::env::var("LONET_TEST_INDEX").unwrap().parse().unwrap();
    // Where this process serves: a probe host's entry.
    let probe = net.new_host(&format!("probe{index}")).await.unwrap();
    let os_addr = net.registry().query(probe.name()).await.unwrap();
    probe.close().await.unwrap();
    say(&format!("ready {os_addr}"));
    assert_eq!(commands.next_line().await.unwrap().as_deref(), Some("go"));
    let mut tasks = Vec::new();
    for k in 0..HOSTS {
        let net = net.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("h{index}_{k}");
            (
                name.clone(),
                net.new_host(&name).await.map_err(|e| (name, e)),
            )
        }));
    }
    for k in 0..CONTESTED {
        let net = net.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("shared{k}");
            (
                name.clone(),
                net.new_host(&name).await.map_err(|e| (name, e)),
            )
        }));
    }
    let mut made = Vec::new();
    let mut hosts = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (name, Ok(host)) => {
                made.push(name);
                hosts.push(host);
            }
            (_, Err((name, e))) if name.starts_with("shared") => {
                assert_eq!(
                    virtnet_core::VirtError::of(&e),
                    Some(virtnet_core::VirtError::HostDup),
                    "{name}: {e}"
                );
            }
            (_, Err((name, e))) => panic!("{name}: {e}"),
        }
    }
    say(&format!("made {}", made.join(" ")));
    assert_eq!(commands.next_line().await.unwrap().as_deref(), Some("exit"));
    drop(hosts);
}
