//! Files planted by someone else: a registry (or its `-wal` / `-shm`) that
//! is a symbolic link or another user's file, and SQLite databases that are
//! not exactly a `lonet.1` registry. Each is refused, and nothing is
//! written: not to the file, not where a link points.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{raw, snapshot};
use registry_sqlite::SqliteRegistry;

const RIGHT_SCHEMA: &str =
    "CREATE TABLE hosts (hostname TEXT NON NULL PRIMARY KEY, osladdr TEXT NON NULL);
     CREATE TABLE meta (name TEXT NON NULL PRIMARY KEY, value TEXT NON NULL);";
const RIGHT_META: &str = "INSERT INTO meta VALUES ('schemaver', 'lonet.1'), ('network', 'mynet');";

fn is_root() -> bool {
    euid() == 0
}

fn euid() -> u32 {
    // The owner of a file we just created is our effective uid.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("probe");
    std::fs::write(&f, b"").unwrap();
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&f).unwrap())
}

/// Opening `path` fails; returns the message.
fn refused(path: &Path) -> String {
    SqliteRegistry::open_blocking(path, "mynet")
        .expect_err("the file must be refused")
        .to_string()
}

/// A database made by another program at `path`, left in rollback-journal
/// mode (SQLite's default).
fn make_db(path: &Path, sql: &str) {
    let conn = raw(path);
    conn.execute_batch(sql).unwrap();
    drop(conn);
}

fn journal_mode(path: &Path) -> String {
    raw(path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_symlinked_registry_is_refused_and_its_target_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&net).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let path = net.join("registry.db");
    let target = elsewhere.join("victim.db");
    symlink(&target, &path).unwrap();

    let err = refused(&path);
    assert!(err.contains("registry.db is a symbolic link"), "{err}");
    assert!(
        !target.exists(),
        "a registry was created at the link's target"
    );

    // A link to an existing file: the file is not touched either.
    std::fs::write(&target, b"precious").unwrap();
    let err = refused(&path);
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert_eq!(
        snapshot(&elsewhere).keys().collect::<Vec<_>>(),
        ["victim.db"]
    );
}

#[test]
fn a_symlinked_wal_or_shm_is_refused() {
    for suffix in ["-wal", "-shm"] {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        let path = net.join("registry.db");
        make_db(&path, &format!("{RIGHT_SCHEMA}{RIGHT_META}"));
        let target = elsewhere.join("victim");
        symlink(&target, net.join(format!("registry.db{suffix}"))).unwrap();
        let before = std::fs::read(&path).unwrap();

        let err = refused(&path);
        assert!(
            err.contains(&format!("registry.db{suffix} is a symbolic link")),
            "{suffix}: {err}"
        );
        assert!(!target.exists(), "{suffix}: the link was followed");
        assert_eq!(std::fs::read(&path).unwrap(), before, "{suffix}");
        assert_eq!(journal_mode(&path), "delete", "{suffix}");
    }
}

#[test]
fn another_users_registry_or_companion_is_refused() {
    if !is_root() {
        return; // only root can give a file to someone else
    }
    for suffix in ["", "-wal", "-shm"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        make_db(&path, &format!("{RIGHT_SCHEMA}{RIGHT_META}"));
        let file = dir.path().join(format!("registry.db{suffix}"));
        if !file.exists() {
            std::fs::write(&file, b"").unwrap();
        }
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        let before = snapshot(dir.path());

        let err = refused(&path);
        assert!(
            err.contains(&format!("registry.db{suffix} is owned by uid 65534")),
            "{suffix:?}: {err}"
        );
        assert_eq!(snapshot(dir.path()), before, "{suffix:?}");
    }
}

#[test]
fn a_registry_with_foreign_tables_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    make_db(
        &path,
        &format!("{RIGHT_SCHEMA}{RIGHT_META}CREATE TABLE accounts (user TEXT, secret TEXT);"),
    );
    let before = snapshot(dir.path());
    let err = refused(&path);
    assert!(
        err.ends_with(
            "not a lonet registry: the database has tables (accounts, hosts, meta), not exactly hosts and meta"
        ),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(journal_mode(&path), "delete");
}

#[test]
fn an_empty_meta_with_unrelated_tables_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    make_db(
        &path,
        "CREATE TABLE meta (name TEXT NON NULL PRIMARY KEY, value TEXT NON NULL);
         CREATE TABLE accounts (user TEXT, secret TEXT);
         INSERT INTO accounts VALUES ('root', 'hunter2');",
    );
    let before = snapshot(dir.path());
    let err = refused(&path);
    assert!(err.contains("not a lonet registry"), "{err}");
    assert!(err.contains("(accounts, meta)"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(journal_mode(&path), "delete");
    let tables: i64 = raw(&path)
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        tables, 3,
        "meta, its key index and accounts; no hosts added"
    );
}

#[test]
fn a_wrong_hosts_table_is_refused_before_switching_to_wal() {
    let wrong = [
        (
            "CREATE TABLE hosts (hostname TEXT NON NULL PRIMARY KEY, port INTEGER);",
            "table hosts has columns (hostname TEXT NON, port INTEGER), want (hostname, osladdr)",
        ),
        (
            "CREATE TABLE hosts (hostname TEXT, osladdr TEXT);",
            "table hosts must have column hostname as its only unique key",
        ),
        (
            "CREATE TABLE hosts (hostname TEXT PRIMARY KEY, osladdr TEXT UNIQUE);",
            "table hosts must have column hostname as its only unique key",
        ),
        (
            "CREATE TABLE hosts (hostname BLOB PRIMARY KEY, osladdr TEXT);",
            "table hosts has columns (hostname BLOB, osladdr TEXT), want (hostname, osladdr)",
        ),
        (
            "CREATE TABLE hosts (hostname TEXT PRIMARY KEY, osladdr TEXT, extra TEXT);",
            "table hosts has columns",
        ),
    ];
    for (hosts, why) in wrong {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        make_db(
            &path,
            &format!(
                "{hosts}CREATE TABLE meta (name TEXT NON NULL PRIMARY KEY, value TEXT NON NULL);{RIGHT_META}"
            ),
        );
        let before = snapshot(dir.path());
        let err = refused(&path);
        assert!(err.contains("not a lonet registry: "), "{hosts}: {err}");
        assert!(err.contains(why), "{hosts}: {err}");
        assert_eq!(snapshot(dir.path()), before, "{hosts}");
        assert_eq!(journal_mode(&path), "delete", "{hosts}");
    }
}

#[test]
fn triggers_views_and_extra_indexes_are_refused_untouched() {
    let extras = [
        "CREATE TRIGGER t AFTER INSERT ON hosts BEGIN DELETE FROM meta; END;",
        "CREATE VIEW v AS SELECT * FROM hosts;",
        "CREATE INDEX i ON hosts (osladdr);",
    ];
    for extra in extras {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        make_db(&path, &format!("{RIGHT_SCHEMA}{RIGHT_META}{extra}"));
        let before = snapshot(dir.path());
        let err = refused(&path);
        assert!(err.contains("which lonet.1 does not"), "{extra}: {err}");
        assert_eq!(snapshot(dir.path()), before, "{extra}");
    }
}

#[test]
fn a_right_schema_made_elsewhere_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    make_db(&path, &format!("{RIGHT_SCHEMA}{RIGHT_META}"));
    let reg = SqliteRegistry::open_blocking(&path, "mynet").expect("the right schema opens");
    drop(reg);
    assert_eq!(journal_mode(&path), "wal");
    // A right schema with the meta rows missing is completed, as the
    // reference does.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    make_db(&path, RIGHT_SCHEMA);
    drop(SqliteRegistry::open_blocking(&path, "mynet").expect("opens"));
    let network: String = raw(&path)
        .query_row("SELECT value FROM meta WHERE name = 'network'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(network, "mynet");
}
