//! Compatibility with the reference (Go) lonet: its registry file opens and
//! behaves, and ours has exactly its layout. The reference file is the
//! testdata crate's `interop/go-registry.db` (network `gomade`), always
//! copied first: the original is never written to.

mod common;

use std::collections::BTreeMap;

use common::{copy_reference, hosts, meta, raw, reference_hosts, schema, snapshot};
use registry_sqlite::{SqliteRegistry, SCHEMA_VERSION};
use rusqlite::ErrorCode;
use virtnet_core::{Registry, RegistryCause};

#[tokio::test]
async fn reference_file_answers_queries() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_reference(dir.path());
    let reg = SqliteRegistry::open(&path, "gomade").await.expect("open");
    for (h, d) in reference_hosts() {
        assert_eq!(reg.query(&h).await.expect("query"), d, "host {h:?}");
    }
    let err = reg.query("γ").await.unwrap_err();
    assert!(matches!(err.cause(), RegistryCause::NoHost));
    assert_eq!(
        err.to_string(),
        format!(r#"{}: query "γ": no such host"#, path.display())
    );
    let listed: BTreeMap<String, String> = reg.list().await.expect("list").into_iter().collect();
    assert_eq!(listed, reference_hosts());
    reg.close().await.unwrap();
}

#[tokio::test]
async fn reference_file_refuses_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_reference(dir.path());
    let reg = SqliteRegistry::open(&path, "gomade").await.expect("open");
    let err = reg.announce("β", "127.0.0.1:1").await.unwrap_err();
    assert!(matches!(err.cause(), RegistryCause::HostDup), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            r#"{}: announce "β" "127.0.0.1:1": host already registered"#,
            path.display()
        )
    );
    let err = reg.announce("q\"x\\y", "127.0.0.1:2").await.unwrap_err();
    assert!(matches!(err.cause(), RegistryCause::HostDup), "{err}");
    assert_eq!(reg.query("β").await.unwrap(), "127.0.0.1:40000");
    reg.close().await.unwrap();
}

#[tokio::test]
async fn reference_file_takes_new_hosts_and_keeps_its_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_reference(dir.path());
    let schema_before = schema(&raw(&path));
    let reg = SqliteRegistry::open(&path, "gomade").await.expect("open");
    reg.announce("γ", "127.0.0.1:40002")
        .await
        .expect("announce γ");
    assert!(reg
        .unannounce("α", "127.0.0.1:39959")
        .await
        .expect("unannounce α"));
    reg.close().await.unwrap();

    // As a plain SQLite client (the reference) reads it.
    let conn = raw(&path);
    assert_eq!(schema(&conn), schema_before);
    let mut want = reference_hosts();
    want.remove("α");
    want.insert("γ".into(), "127.0.0.1:40002".into());
    assert_eq!(hosts(&conn), want);
    assert_eq!(
        meta(&conn),
        BTreeMap::from([
            ("schemaver".to_owned(), "lonet.1".to_owned()),
            ("network".to_owned(), "gomade".to_owned())
        ])
    );
    drop(conn);

    let reg = SqliteRegistry::open(&path, "gomade").await.expect("reopen");
    assert_eq!(reg.query("γ").await.unwrap(), "127.0.0.1:40002");
    reg.close().await.unwrap();
}

#[tokio::test]
async fn reference_file_of_another_network_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_reference(dir.path());
    let before = snapshot(dir.path());
    let err = SqliteRegistry::open(&path, "bbb").await.unwrap_err();
    assert!(matches!(err.cause(), RegistryCause::Other(_)));
    assert_eq!(err.registry(), path.display().to_string());
    assert_eq!(
        err.to_string(),
        format!(
            r#"{}: open "bbb": network name mismatch: want "bbb"; have "gomade""#,
            path.display()
        )
    );
    assert_eq!(snapshot(dir.path()), before, "the file was changed");
}

#[tokio::test]
async fn another_schema_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_reference(dir.path());
    {
        let conn = raw(&path);
        conn.execute(
            "UPDATE meta SET value = 'lonet.2' WHERE name = 'schemaver'",
            [],
        )
        .unwrap();
    }
    let before = snapshot(dir.path());
    // The schema is checked first, whatever the network.
    for network in ["gomade", "bbb"] {
        let err = SqliteRegistry::open(&path, network).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                r#"{}: open "{network}": schema version mismatch: want "lonet.1"; have "lonet.2""#,
                path.display()
            )
        );
    }
    assert_eq!(snapshot(dir.path()), before, "the file was changed");
}

#[tokio::test]
async fn our_file_has_exactly_the_reference_layout() {
    let dir = tempfile::tempdir().unwrap();
    let reference = copy_reference(dir.path());
    let ours = dir.path().join("ours.db");
    let reg = SqliteRegistry::open(&ours, "gomade").await.expect("open");
    for (h, d) in reference_hosts() {
        reg.announce(&h, &d).await.unwrap();
    }
    reg.close().await.unwrap();

    let (theirs, mine) = (raw(&reference), raw(&ours));
    // Tables, indexes and the very text of their CREATE statements.
    assert_eq!(schema(&mine), schema(&theirs));
    let columns = |c: &rusqlite::Connection, table: &str| -> Vec<(String, String, bool, bool)> {
        let mut st = c.prepare(&format!("PRAGMA table_info({table})")).unwrap();
        st.query_map([], |r| {
            Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(5)? > 0))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    };
    for table in ["hosts", "meta"] {
        assert_eq!(columns(&mine, table), columns(&theirs, table), "{table}");
    }
    assert_eq!(meta(&mine), meta(&theirs));
    assert_eq!(meta(&mine)["schemaver"], SCHEMA_VERSION);
    assert_eq!(hosts(&mine), hosts(&theirs));
    for pragma in [
        "journal_mode",
        "page_size",
        "user_version",
        "application_id",
        "encoding",
    ] {
        let get = |c: &rusqlite::Connection| -> String {
            c.query_row(&format!("PRAGMA {pragma}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
        };
        assert_eq!(get(&mine), get(&theirs), "PRAGMA {pragma}");
    }
    // WAL is recorded in the file itself (header bytes 18 and 19).
    let header = std::fs::read(&ours).unwrap();
    assert_eq!(&header[18..20], &[2, 2], "file format: WAL");
}

/// What the reference does with a registry file, done with plain SQLite on
/// a file we created: its setup statements run, it reads our entries, its
/// duplicate is refused with the constraint it expects; and we read its
/// entries.
#[tokio::test]
async fn a_reference_style_client_shares_our_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = SqliteRegistry::open(&path, "shared").await.expect("open");
    reg.announce("α", "127.0.0.1:1").await.unwrap();

    let conn = raw(&path);
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS hosts (hostname TEXT NON NULL PRIMARY KEY, osladdr TEXT NON NULL);
         CREATE TABLE IF NOT EXISTS meta (name TEXT NON NULL PRIMARY KEY, value TEXT NON NULL);
         COMMIT;",
    )
    .unwrap();
    let get_meta = |name: &str| -> String {
        conn.query_row("SELECT value FROM meta WHERE name = ?", [name], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(get_meta("schemaver"), "lonet.1");
    assert_eq!(get_meta("network"), "shared");
    let data: String = conn
        .query_row(
            "SELECT osladdr FROM hosts WHERE hostname = ?",
            ["α"],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(data, "127.0.0.1:1");
    let dup = conn
        .execute(
            "INSERT INTO hosts (hostname, osladdr) VALUES (?, ?)",
            ["α", "x"],
        )
        .unwrap_err();
    assert_eq!(
        dup.sqlite_error_code(),
        Some(ErrorCode::ConstraintViolation)
    );
    conn.execute(
        "INSERT INTO hosts (hostname, osladdr) VALUES (?, ?)",
        ["β", "127.0.0.1:2"],
    )
    .unwrap();

    assert_eq!(reg.query("β").await.unwrap(), "127.0.0.1:2");
    let err = reg.announce("β", "127.0.0.1:3").await.unwrap_err();
    assert!(matches!(err.cause(), RegistryCause::HostDup), "{err}");
    reg.close().await.unwrap();
}

/// A hosts table whose name is UNIQUE rather than the PRIMARY KEY reports a
/// duplicate with another constraint code (2067, not 1555): still a
/// duplicate.
#[tokio::test]
async fn a_unique_constraint_also_means_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    raw(&path)
        .execute_batch(
            "CREATE TABLE hosts (hostname TEXT UNIQUE, osladdr TEXT);
             CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);
             INSERT INTO meta VALUES ('schemaver', 'lonet.1'), ('network', 'u');",
        )
        .unwrap();
    let reg = SqliteRegistry::open(&path, "u").await.expect("open");
    reg.announce("α", "1").await.unwrap();
    let err = reg.announce("α", "2").await.unwrap_err();
    assert!(matches!(err.cause(), RegistryCause::HostDup), "{err}");
    assert_eq!(reg.query("α").await.unwrap(), "1");
    reg.close().await.unwrap();
}
