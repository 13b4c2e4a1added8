//! The fault store: compare-and-swap on the version, and `changed`
//! following changes made through other handles (as other processes
//! would), only of its own network, across a lost listening connection.

mod common;

use std::sync::Arc;

use common::{bounded, unique, Schema};
use registry_postgres::PostgresRegistry;
use virtnet_core::fault::{FaultRules, FaultStore, Link};
use virtnet_core::{Registry, VirtError};

/// `base`'s rules with one more change: a partition of `from → to`.
fn next(base: &FaultRules, from: &str, to: &str) -> FaultRules {
    let mut rules = base.clone();
    rules.version = base.version + 1;
    rules.update(&Link::new(from, to), |f| f.partition = !f.partition);
    rules
}

/// Waits (in a task) for the rules of `store` to move past `seen`.
fn watch(
    store: &Arc<dyn FaultStore>,
    seen: u64,
) -> tokio::task::JoinHandle<std::io::Result<FaultRules>> {
    let store = store.clone();
    tokio::spawn(async move { store.changed(seen).await })
}

#[tokio::test]
async fn empty_then_compare_and_swap() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let reg = PostgresRegistry::connect(&schema.url, "net").await.unwrap();
    let store = reg.faults().unwrap();
    assert!(
        Arc::ptr_eq(&store, &reg.faults().unwrap()),
        "one store per handle"
    );
    let empty = store.load().await.unwrap();
    assert_eq!(empty, FaultRules::default());
    assert_eq!(empty.version, 0);
    assert!(empty.links.is_empty());

    let v1 = next(&empty, "α", "β");
    assert!(store.store_if(0, &v1).await.unwrap());
    assert_eq!(store.load().await.unwrap(), v1);
    // A change on an old base is refused, and nothing is stored.
    let stale = next(&empty, "γ", "δ");
    assert!(!store.store_if(0, &stale).await.unwrap());
    let mut ahead = next(&v1, "x", "y");
    ahead.version = 6;
    assert!(!store.store_if(5, &ahead).await.unwrap());
    assert_eq!(store.load().await.unwrap(), v1);
    let v2 = next(&v1, "γ", "δ");
    assert!(store.store_if(1, &v2).await.unwrap());
    assert_eq!(store.load().await.unwrap(), v2);
    // A version that does not grow is a caller's bug.
    let e = store.store_if(2, &v1).await.unwrap_err();
    assert!(
        e.to_string()
            .ends_with("the new fault rules' version (1) must be past the base (2)"),
        "{e}"
    );
    // `changed` with another version returns at once.
    assert_eq!(store.changed(0).await.unwrap(), v2);
    reg.close().await.unwrap();
}

/// Two handles race on one base: exactly one lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_one_lands() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let net = unique("race");
    let a = PostgresRegistry::connect(&schema.url, &net).await.unwrap();
    let b = PostgresRegistry::connect(&schema.url, &net).await.unwrap();
    let (fa, fb) = (a.faults().unwrap(), b.faults().unwrap());
    for base in 0..10u64 {
        let now = fa.load().await.unwrap();
        assert_eq!(now.version, base);
        let (x, y) = (next(&now, "a", "x"), next(&now, "b", "y"));
        let (rx, ry) = tokio::join!(fa.store_if(base, &x), fb.store_if(base, &y));
        let (rx, ry) = (rx.unwrap(), ry.unwrap());
        assert!(rx ^ ry, "base {base}: exactly one lands: {rx} {ry}");
        let want = if rx { x } else { y };
        assert_eq!(fb.load().await.unwrap(), want);
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_through_one_handle_is_seen_by_another() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let net = unique("seen");
    let a = PostgresRegistry::connect(&schema.url, &net).await.unwrap();
    let b = PostgresRegistry::connect(&schema.url, &net).await.unwrap();
    let (fa, fb) = (a.faults().unwrap(), b.faults().unwrap());
    let mut rules = FaultRules::default();
    for i in 0..20 {
        let waiting = watch(&fb, rules.version);
        let changed = next(&rules, "α", "β");
        assert!(fa.store_if(rules.version, &changed).await.unwrap());
        let seen = bounded(30, "b to see a's change", waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, changed, "change {i}");
        rules = changed;
    }
    // A change made outside this crate (psql, another version of it)
    // notifies too: the trigger does it.
    let waiting = watch(&fb, rules.version);
    common::client(&schema.url)
        .await
        .execute(
            "UPDATE virtnet_faults SET version = version + 1 WHERE network = $1",
            &[&net],
        )
        .await
        .unwrap();
    let seen = bounded(30, "b to see an outside change", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.version, rules.version + 1);
    // Removing the network is a change too: back to version 0.
    let waiting = watch(&fb, seen.version);
    a.remove_network().await.unwrap();
    let seen = bounded(30, "b to see the removal", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, FaultRules::default());
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// Changes to another network (in the same schema, so on the same
/// channel, notified before this network's change) do not end the wait:
/// it returns this network's change, nothing earlier.
#[tokio::test]
async fn another_networks_change_does_not_return() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let (mine, theirs) = (unique("mine"), unique("theirs"));
    let a = PostgresRegistry::connect(&schema.url, &mine).await.unwrap();
    let other = PostgresRegistry::connect(&schema.url, &theirs)
        .await
        .unwrap();
    let fa = a.faults().unwrap();
    let fo = other.faults().unwrap();
    // Listening before anything changes.
    let waiting = watch(&fa, 0);
    // The other network changes, repeatedly; notifications are delivered
    // in commit order, so all of them reach the listener before this
    // network's change.
    let mut theirs_rules = FaultRules::default();
    for _ in 0..5 {
        let changed = next(&theirs_rules, "x", "y");
        assert!(fo.store_if(theirs_rules.version, &changed).await.unwrap());
        theirs_rules = changed;
    }
    let mine_rules = next(&FaultRules::default(), "α", "β");
    assert!(fa.store_if(0, &mine_rules).await.unwrap());
    let seen = bounded(30, "a to see its own change", waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, mine_rules);
    a.close().await.unwrap();
    other.close().await.unwrap();
}

/// The listening connection is killed by the server: a change made while
/// it is down, or after, is still seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_is_seen_after_the_listener_is_killed() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let app = unique("listener");
    let url = common::with_param(&schema.url, "application_name", &app);
    let net = unique("killed");
    let a = PostgresRegistry::connect(&url, &net).await.unwrap();
    let b = PostgresRegistry::connect(&schema.url, &net).await.unwrap();
    let (fa, fb) = (a.faults().unwrap(), b.faults().unwrap());
    let kill = || async {
        let c = common::client(&server).await;
        let row = c
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 30000)) \
                 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
                &[&app],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };

    // A's listener is up once a change was seen through it.
    let mut rules = FaultRules::default();
    let waiting = watch(&fa, 0);
    let v1 = next(&rules, "α", "β");
    assert!(fb.store_if(0, &v1).await.unwrap());
    assert_eq!(
        bounded(30, "the first change", waiting)
            .await
            .unwrap()
            .unwrap(),
        v1
    );
    rules = v1;

    for round in 0..3 {
        // A waiter parked before the kill; the change right after it,
        // while the listener may be down.
        let waiting = watch(&fa, rules.version);
        assert_eq!(kill().await, 1, "round {round}: one listening connection");
        let changed = next(&rules, "α", "β");
        assert!(fb.store_if(rules.version, &changed).await.unwrap());
        let seen = bounded(30, "the change after the kill", waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, changed, "round {round}");
        rules = changed;
        // And a later change, waited for after the kill.
        let waiting = watch(&fa, rules.version);
        let changed = next(&rules, "γ", "δ");
        assert!(fb.store_if(rules.version, &changed).await.unwrap());
        assert_eq!(
            bounded(30, "a later change", waiting)
                .await
                .unwrap()
                .unwrap(),
            changed
        );
        rules = changed;
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// Dropped waits leave nothing behind; closing the handle ends parked
/// waits with "registry is down" and ends the listening connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_waits_and_close() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let app = unique("close");
    let url = common::with_param(&schema.url, "application_name", &app);
    let a = PostgresRegistry::connect(&url, "net").await.unwrap();
    let fa = a.faults().unwrap();
    let connections = || async {
        let rows = schema
            .rows(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"
            ))
            .await;
        rows[0][0].parse::<u32>().unwrap()
    };
    // Many waits, dropped before and after the listener is up.
    for _ in 0..10 {
        let w = watch(&fa, 0);
        w.abort();
        let _ = w.await;
    }
    for _ in 0..10 {
        let fut = fa.changed(0);
        drop(fut);
    }
    // The watch still works, and one listening connection serves all.
    let parked: Vec<_> = (0..5).map(|_| watch(&fa, 0)).collect();
    let b = PostgresRegistry::connect(&schema.url, "net").await.unwrap();
    let v1 = next(&FaultRules::default(), "α", "β");
    assert!(b.faults().unwrap().store_if(0, &v1).await.unwrap());
    for w in parked {
        assert_eq!(bounded(30, "a parked wait", w).await.unwrap().unwrap(), v1);
    }
    assert_eq!(
        connections().await,
        2,
        "the handle's connection and its listener"
    );

    let parked = watch(&fa, v1.version);
    a.close().await.unwrap();
    let e = bounded(30, "the wait to end on close", parked)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(VirtError::of(&e), Some(VirtError::RegistryDown), "{e}");
    assert!(
        e.to_string().ends_with("watch faults: registry is down"),
        "{e}"
    );
    let e = fa.changed(0).await.unwrap_err();
    assert_eq!(VirtError::of(&e), Some(VirtError::RegistryDown), "{e}");
    let e = fa.load().await.unwrap_err();
    assert!(
        e.to_string().ends_with("load faults: registry is down"),
        "{e}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}
