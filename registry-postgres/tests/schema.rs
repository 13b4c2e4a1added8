//! The tables: made on first use (also by many processes at once),
//! checked at every connect, a foreign version refused and left alone;
//! networks sharing a schema; names, URLs and network names.

mod common;

use std::collections::BTreeMap;

use common::{bounded, unique, Schema};
use registry_postgres::{networks, PostgresRegistry, SCHEMA_VERSION};
use virtnet_core::fault::{FaultRules, Link};
use virtnet_core::{Registry, RegistryCause, RegistryError};

/// Every table, function and trigger of the schema, and the rows of
/// every table: to show that nothing was changed.
async fn snapshot(schema: &Schema) -> Vec<Vec<String>> {
    let mut all = schema
        .rows(&format!(
            "SELECT 'relation', c.relname, c.relkind::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{0}' \
             UNION ALL SELECT 'function', p.proname, md5(p.prosrc) FROM pg_proc p \
             JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '{0}' \
             UNION ALL SELECT 'trigger', t.tgname, t.tgrelid::regclass::text FROM pg_trigger t \
             JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{0}' \
             ORDER BY 1, 2",
            schema.name
        ))
        .await;
    for table in ["virtnet_meta", "virtnet_hosts", "virtnet_faults"] {
        let exists = schema
            .rows(&format!("SELECT to_regclass('{table}') IS NOT NULL"))
            .await;
        if exists[0][0] == "t" {
            let mut rows = schema
                .rows(&format!("SELECT t::text FROM {table} t ORDER BY 1"))
                .await;
            for r in &mut rows {
                r.insert(0, table.to_owned());
            }
            all.extend(rows);
        }
    }
    all
}

fn other_error(e: &RegistryError) -> bool {
    matches!(e.cause(), RegistryCause::Other(_))
}

/// Runs `sql` on the schema, then connects: refused (cause `Other`), with
/// the schema left exactly as it was. The error, and the schema as it is.
async fn refused_after(schema: &Schema, sql: &str) -> (RegistryError, Vec<Vec<String>>) {
    common::client(&schema.url)
        .await
        .batch_execute(sql)
        .await
        .unwrap();
    let before = snapshot(schema).await;
    let err = PostgresRegistry::connect(&schema.url, "net")
        .await
        .unwrap_err();
    assert!(other_error(&err), "{err}");
    assert_eq!(snapshot(schema).await, before, "the refused schema changed");
    (err, before)
}

#[tokio::test]
async fn first_connect_creates_the_tables_in_the_current_schema() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    assert!(
        snapshot(&schema).await.is_empty(),
        "a fresh schema is empty"
    );
    let net = unique("fresh");
    let reg = PostgresRegistry::connect(&schema.url, &net).await.unwrap();
    let tables = schema
        .rows(&format!(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = '{}' ORDER BY 1",
            schema.name
        ))
        .await;
    assert_eq!(
        tables,
        [["virtnet_faults"], ["virtnet_hosts"], ["virtnet_meta"]]
    );
    assert_eq!(
        schema.rows("SELECT key, value FROM virtnet_meta").await,
        [["schema_version", SCHEMA_VERSION]]
    );

    reg.announce("α", "127.0.0.1:1").await.unwrap();
    assert_eq!(
        schema
            .rows("SELECT network, convert_from(host, 'UTF8'), convert_from(data, 'UTF8') FROM virtnet_hosts")
            .await,
        [[net.as_str(), "α", "127.0.0.1:1"]]
    );

    // Connecting again (this or another network) finds them and changes
    // nothing.
    let before = snapshot(&schema).await;
    let again = PostgresRegistry::connect(&schema.url, &net).await.unwrap();
    let other = PostgresRegistry::connect(&schema.url, "other")
        .await
        .unwrap();
    assert_eq!(snapshot(&schema).await, before);
    assert_eq!(again.query("α").await.unwrap(), "127.0.0.1:1");
    for r in [reg, again, other] {
        r.close().await.unwrap();
    }
}

#[tokio::test]
async fn another_schema_version_is_refused_and_left_alone() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let reg = PostgresRegistry::connect(&schema.url, "net").await.unwrap();
    reg.announce("α", "d").await.unwrap();
    let store = reg.faults().unwrap();
    let mut rules = FaultRules {
        version: 1,
        ..FaultRules::default()
    };
    rules.update(&Link::new("α", "β"), |f| f.partition = true);
    assert!(store.store_if(0, &rules).await.unwrap());
    reg.close().await.unwrap();

    // A later (or earlier) version of this crate's tables.
    let (err, before) = refused_after(
        &schema,
        "UPDATE virtnet_meta SET value = 'virtnet-postgres.9'",
    )
    .await;
    assert_eq!(err.op(), "connect");
    assert_eq!(
        err.to_string(),
        format!(
            r#"{}#net: connect "net": schema {:?}: schema version mismatch: want "{SCHEMA_VERSION}"; have "virtnet-postgres.9" (left as it is)"#,
            schema.url, schema.name
        )
    );
    let err = networks(&schema.url).await.unwrap_err();
    assert!(err.to_string().contains("schema version mismatch"), "{err}");
    assert_eq!(
        snapshot(&schema).await,
        before,
        "the refused schema changed"
    );

    // No version at all.
    let (err, _) = refused_after(&schema, "DELETE FROM virtnet_meta").await;
    assert!(
        err.to_string().ends_with(
            "table virtnet_meta has no schema_version: not a virtnet registry (left as it is)"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn tables_of_these_names_without_meta_are_refused_and_left_alone() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let (err, _) = refused_after(
        &schema,
        "CREATE TABLE virtnet_hosts (id int PRIMARY KEY, note text); \
         INSERT INTO virtnet_hosts VALUES (1, 'someone else''s')",
    )
    .await;
    assert!(
        err.to_string().ends_with(&format!(
            "schema {:?} has a table virtnet_hosts but no virtnet_meta: not a virtnet registry (left as it is)",
            schema.name
        )),
        "{err}"
    );
}

/// Twenty processes starting at once on a fresh schema: all connect, one
/// made the tables, all share them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_first_connects_all_succeed() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    let net = unique("race");
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (url, net, start) = (schema.url.clone(), net.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let reg = PostgresRegistry::connect(&url, &net)
                    .await
                    .unwrap_or_else(|e| panic!("connect {i}: {e}"));
                reg.announce(&format!("h{i}"), &i.to_string())
                    .await
                    .unwrap_or_else(|e| panic!("announce {i}: {e}"));
                reg
            })
        })
        .collect();
    let mut regs = Vec::new();
    for t in tasks {
        regs.push(bounded(60, "a first connect", t).await.unwrap());
    }
    assert_eq!(regs[0].list().await.unwrap().len(), 20);
    assert_eq!(
        schema.rows("SELECT count(*) FROM virtnet_meta").await,
        [["1"]]
    );
    for r in regs {
        r.close().await.unwrap();
    }
}

#[tokio::test]
async fn networks_share_a_schema_without_seeing_each_other() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    assert_eq!(networks(&schema.url).await.unwrap(), Vec::<String>::new());
    assert!(
        snapshot(&schema).await.is_empty(),
        "listing networks made tables"
    );

    let a = PostgresRegistry::connect(&schema.url, "net-a")
        .await
        .unwrap();
    let b = PostgresRegistry::connect(&schema.url, "net-b")
        .await
        .unwrap();
    assert_eq!((a.network(), b.network()), ("net-a", "net-b"));
    a.announce("α", "a's").await.unwrap();
    // The same name in another network is another host.
    b.announce("α", "b's").await.unwrap();
    b.announce("β", "b's").await.unwrap();
    assert_eq!(a.query("α").await.unwrap(), "a's");
    assert_eq!(b.query("α").await.unwrap(), "b's");
    assert!(matches!(
        a.query("β").await.unwrap_err().cause(),
        RegistryCause::NoHost
    ));
    assert!(!a.unannounce("β", "b's").await.unwrap());
    assert!(!a.replace("β", "b's", "a's").await.unwrap());
    let list = |v: Vec<(String, String)>| v.into_iter().collect::<BTreeMap<_, _>>();
    assert_eq!(
        list(a.list().await.unwrap()),
        BTreeMap::from([("α".to_owned(), "a's".to_owned())])
    );
    assert_eq!(list(b.list().await.unwrap()).len(), 2);

    // Faults too.
    let (fa, fb) = (a.faults().unwrap(), b.faults().unwrap());
    let mut rules = FaultRules {
        version: 1,
        ..FaultRules::default()
    };
    rules.update(&Link::new("α", "β"), |f| f.unreachable = true);
    assert!(fb.store_if(0, &rules).await.unwrap());
    assert_eq!(fa.load().await.unwrap(), FaultRules::default());
    assert_eq!(fb.load().await.unwrap(), rules);

    // A network with only fault rules is listed too.
    let c = PostgresRegistry::connect(&schema.url, "net-c")
        .await
        .unwrap();
    assert!(c.faults().unwrap().store_if(0, &rules).await.unwrap());
    assert_eq!(
        networks(&schema.url).await.unwrap(),
        ["net-a", "net-b", "net-c"]
    );

    // Removing one network leaves the others.
    assert_eq!(b.remove_network().await.unwrap(), 2);
    assert_eq!(b.list().await.unwrap(), vec![]);
    assert_eq!(fb.load().await.unwrap(), FaultRules::default());
    assert_eq!(a.query("α").await.unwrap(), "a's");
    assert_eq!(networks(&schema.url).await.unwrap(), ["net-a", "net-c"]);
    assert_eq!(c.remove_network().await.unwrap(), 0);
    assert_eq!(networks(&schema.url).await.unwrap(), ["net-a"]);
    for r in [a, b, c] {
        r.close().await.unwrap();
    }
}

#[tokio::test]
async fn name_hides_the_password() {
    let server = common::server_url();
    let schema = Schema::new(&server).await;
    // The test server trusts its clients, so any password connects.
    let url = common::with_param(&schema.url, "password", "hunter2");
    let reg = PostgresRegistry::connect(&url, "mynet").await.unwrap();
    assert_eq!(
        reg.name(),
        format!("{}&password=***#mynet", schema.url),
        "name"
    );
    let err = reg.query("γ").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(r#"{}: query "γ": no such host"#, reg.name())
    );
    assert!(!format!("{reg:?}").contains("hunter2"));
    reg.close().await.unwrap();
}

#[tokio::test]
async fn bad_urls_and_network_names_are_refused() {
    // None of these reaches a server.
    for (url, net, want) in [
        (
            "postgres://u:hunter2@127.0.0.1:notaport/db",
            "n",
            "invalid PostgreSQL URL: invalid connection string: invalid value for option `port`",
        ),
        (
            "postgres:///db",
            "n",
            "invalid PostgreSQL URL: it names no host",
        ),
        (
            "host=127.0.0.1 password=hunter2 nonsense",
            "n",
            "invalid PostgreSQL URL: invalid connection string: unexpected EOF",
        ),
        (
            "postgres://127.0.0.1/db",
            "",
            "invalid network name: it is empty",
        ),
        (
            "postgres://127.0.0.1/db",
            "a\0b",
            "invalid network name: it contains NUL",
        ),
        (
            "postgres://127.0.0.1/db",
            &"n".repeat(1025),
            "invalid network name: it is longer than 1024 bytes",
        ),
    ] {
        let err = bounded(10, url, PostgresRegistry::connect(url, net))
            .await
            .unwrap_err();
        assert!(other_error(&err), "{err}");
        let text = err.to_string();
        assert!(text.ends_with(want), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    let err = networks("postgres://u:hunter2@h:x/db").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "postgres://u:***@h:x/db: networks: invalid PostgreSQL URL: invalid connection string: invalid value for option `port`"
    );
}
