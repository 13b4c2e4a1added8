//! The fault rules kept in a registry file (`SqliteFaults`): stored and
//! read back, compare-and-swap, watched across handles (as across
//! processes), and files holding them still open as registries.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{copy_reference, raw, reference_hosts, schema};
use registry_sqlite::SqliteRegistry;
use virtnet_core::fault::{FaultRules, FaultStore, Link};
use virtnet_core::{Registry, RegistryCause, RegistryError};

/// Only a guard against hangs: no assertion depends on it.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn store(reg: &SqliteRegistry) -> Arc<dyn FaultStore> {
    reg.faults().expect("an SQLite registry keeps faults")
}

/// Rules with a partition α → β (and whatever `more` adds), one version
/// past `base`.
fn partitioned(base: &FaultRules, more: impl FnOnce(&mut FaultRules)) -> FaultRules {
    let mut rules = base.clone();
    rules.update(&Link::new("α", "β"), |f| f.partition = true);
    more(&mut rules);
    rules.version = base.version + 1;
    rules
}

#[tokio::test]
async fn rules_round_trip_and_a_fresh_file_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = SqliteRegistry::open(&path, "faulty").await.unwrap();
    let faults = store(&reg);
    let empty = faults.load().await.unwrap();
    assert_eq!(empty, FaultRules::default());
    // Reading made no table: the file keeps the reference's layout.
    assert!(!schema(&raw(&path))
        .iter()
        .any(|(_, name, _, _)| name == "virtnet_faults"));

    let rules = partitioned(&empty, |r| {
        r.seed = 42;
        r.update(&Link::new("β", "α\"x"), |f| {
            f.latency = Duration::from_millis(20);
            f.jitter = Duration::from_millis(5);
            f.bandwidth = Some(1 << 20);
        });
    });
    assert!(faults.store_if(0, &rules).await.unwrap());
    assert_eq!(faults.load().await.unwrap(), rules);
    // Another handle (another process) reads the same.
    let other = SqliteRegistry::open(&path, "faulty").await.unwrap();
    assert_eq!(store(&other).load().await.unwrap(), rules);
    // The same store at every call.
    assert!(Arc::ptr_eq(&faults, &store(&reg)));

    reg.close().await.unwrap();
    let err = faults.load().await.unwrap_err();
    let cause = RegistryError::of(&err).map(RegistryError::cause);
    assert!(matches!(cause, Some(RegistryCause::Down)), "{err}");
    other.close().await.unwrap();
}

#[tokio::test]
async fn a_change_on_a_stale_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let a = SqliteRegistry::open(&path, "cas").await.unwrap();
    let b = SqliteRegistry::open(&path, "cas").await.unwrap();
    let (fa, fb) = (store(&a), store(&b));
    let base = fa.load().await.unwrap();
    let first = partitioned(&base, |r| r.seed = 1);
    let second = partitioned(&base, |r| r.seed = 2);
    assert!(fa.store_if(0, &first).await.unwrap());
    assert!(!fb.store_if(0, &second).await.unwrap(), "stale base");
    assert_eq!(fb.load().await.unwrap(), first);
    // On the fresh base it lands.
    let second = partitioned(&first, |r| r.seed = 2);
    assert!(fb.store_if(1, &second).await.unwrap());
    assert_eq!(fa.load().await.unwrap().version, 2);
    // A version that does not grow is an error, not a store.
    let err = fa.store_if(2, &second).await.unwrap_err();
    assert!(err.to_string().contains("must be past the base"), "{err}");

    // Many handles changing at once: every change lands exactly once.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let reg = SqliteRegistry::open(&path, "cas").await.unwrap();
            let faults = store(&reg);
            for _ in 0..5 {
                loop {
                    let mut rules = faults.load().await.unwrap();
                    let base = rules.version;
                    rules.update(&Link::new(format!("h{i}"), "x"), |f| {
                        f.bandwidth = Some(f.bandwidth.unwrap_or(0) + 1)
                    });
                    rules.version = base + 1;
                    if faults.store_if(base, &rules).await.unwrap() {
                        break;
                    }
                }
            }
            reg.close().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rules = fa.load().await.unwrap();
    assert_eq!(rules.version, 2 + 40);
    for i in 0..8 {
        assert_eq!(
            rules.link(&Link::new(format!("h{i}"), "x")).bandwidth,
            Some(5)
        );
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_wakes_on_a_write_through_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let watcher = SqliteRegistry::open(&path, "watch").await.unwrap();
    let writer = SqliteRegistry::open(&path, "watch").await.unwrap();
    let (fw, fx) = (store(&watcher), store(&writer));

    // Already past the version seen: at once.
    let now = tokio::time::timeout(HANG_GUARD, fw.changed(7)).await;
    assert_eq!(now.expect("hung").unwrap().version, 0);

    let mut latencies = Vec::new();
    let mut rules = FaultRules::default();
    for round in 0..20u64 {
        let seen = rules.version;
        let waiting = {
            let fw = fw.clone();
            tokio::spawn(async move { (fw.changed(seen).await, Instant::now()) })
        };
        // Writes to the file that do not change the faults wake the
        // watcher, which reads and keeps waiting.
        writer
            .announce(&format!("h{round}"), "127.0.0.1:1")
            .await
            .unwrap();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "returned without a change");
        rules = partitioned(&rules, |r| r.seed = round);
        let start = Instant::now();
        assert!(fx.store_if(seen, &rules).await.unwrap());
        let (got, at) = tokio::time::timeout(HANG_GUARD, waiting)
            .await
            .expect("changed never returned")
            .unwrap();
        assert_eq!(got.unwrap(), rules);
        latencies.push(at.saturating_duration_since(start));
    }
    latencies.sort();
    eprintln!(
        "store_if -> changed, another handle: median {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );

    // A dropped wait leaves nothing behind; a closed handle ends a wait.
    let seen = rules.version;
    drop(tokio::time::timeout(Duration::from_millis(10), fw.changed(seen)).await);
    let waiting = {
        let fw = fw.clone();
        tokio::spawn(async move { fw.changed(seen).await })
    };
    tokio::task::yield_now().await;
    watcher.close().await.unwrap();
    let err = tokio::time::timeout(HANG_GUARD, waiting)
        .await
        .expect("a closed handle's wait hung")
        .unwrap()
        .unwrap_err();
    let cause = RegistryError::of(&err).map(RegistryError::cause);
    assert!(matches!(cause, Some(RegistryCause::Down)), "{err}");
    writer.close().await.unwrap();
}

#[tokio::test]
async fn a_file_with_the_faults_table_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = SqliteRegistry::open(&path, "kept").await.unwrap();
    reg.announce("α", "127.0.0.1:1").await.unwrap();
    let rules = partitioned(&FaultRules::default(), |_| {});
    assert!(store(&reg).store_if(0, &rules).await.unwrap());
    reg.close().await.unwrap();
    let tables: Vec<String> = schema(&raw(&path))
        .into_iter()
        .filter(|(kind, ..)| kind == "table")
        .map(|(_, name, ..)| name)
        .collect();
    assert_eq!(tables, ["hosts", "meta", "virtnet_faults"]);

    // Reopened, it passes the layout checks, with its rules and hosts.
    let reg = SqliteRegistry::open(&path, "kept").await.expect("reopens");
    assert_eq!(reg.query("α").await.unwrap(), "127.0.0.1:1");
    assert_eq!(store(&reg).load().await.unwrap(), rules);
    reg.close().await.unwrap();
    // Another network's name is still refused.
    let err = SqliteRegistry::open(&path, "other").await.unwrap_err();
    assert!(err.to_string().contains("network name mismatch"), "{err}");

    // A table of that name but another layout is not ours: refused.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    drop(SqliteRegistry::open_blocking(&path, "odd").unwrap());
    raw(&path)
        .execute_batch("CREATE TABLE virtnet_faults (id INTEGER PRIMARY KEY, payload BLOB);")
        .unwrap();
    let err = SqliteRegistry::open(&path, "odd").await.unwrap_err();
    assert!(
        err.to_string().contains(
            "not a lonet registry: table virtnet_faults has columns (id INTEGER, payload BLOB)"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn the_reference_file_takes_faults_and_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_reference(dir.path());
    let reg = SqliteRegistry::open(&path, "gomade").await.expect("open");
    assert_eq!(store(&reg).load().await.unwrap(), FaultRules::default());
    let rules = partitioned(&FaultRules::default(), |_| {});
    assert!(store(&reg).store_if(0, &rules).await.unwrap());
    reg.close().await.unwrap();
    let reg = SqliteRegistry::open(&path, "gomade").await.expect("reopen");
    for (h, d) in reference_hosts() {
        assert_eq!(reg.query(&h).await.unwrap(), d);
    }
    assert_eq!(store(&reg).load().await.unwrap(), rules);
    reg.close().await.unwrap();
    // What the reference does on joining still works on the file.
    raw(&path)
        .execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS hosts (hostname TEXT NON NULL PRIMARY KEY, osladdr TEXT NON NULL);
             CREATE TABLE IF NOT EXISTS meta (name TEXT NON NULL PRIMARY KEY, value TEXT NON NULL);
             INSERT INTO hosts (hostname, osladdr) VALUES ('go', '127.0.0.1:2');
             COMMIT;",
        )
        .unwrap();
}
