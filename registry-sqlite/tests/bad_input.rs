//! Bad files and paths get a `RegistryError` saying what and where, never a
//! panic, and a file that is refused is left exactly as it was.

mod common;

use std::path::Path;

use common::{copy_reference, raw, snapshot};
use registry_sqlite::SqliteRegistry;
use virtnet_core::{Registry, RegistryCause, RegistryError};
use virtnet_testdata::{interop_path, GO_REGISTRY};

/// Opens `path` for `network`, which must fail; returns the error after
/// checking that it names the path and the operation.
async fn refused(path: &Path, network: &str) -> RegistryError {
    let err = SqliteRegistry::open(path, network)
        .await
        .expect_err("open should fail");
    assert!(matches!(err.cause(), RegistryCause::Other(_)), "{err}");
    assert_eq!(err.registry(), path.display().to_string());
    assert_eq!(err.op(), "open");
    assert_eq!(err.args(), [network]);
    let blocking = SqliteRegistry::open_blocking(path, network).expect_err("blocking open");
    assert_eq!(blocking.to_string(), err.to_string());
    err
}

fn text(err: &RegistryError) -> String {
    err.to_string()
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        (
            "text.db",
            "this is not a database\n".repeat(200).into_bytes(),
        ),
        ("short.db", b"hello".to_vec()),
        ("header-only.db", b"SQLite format 3\0".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let before = snapshot(dir.path());
        let err = refused(&path, "mynet").await;
        assert_eq!(
            text(&err),
            format!(
                r#"{}: open "mynet": file is not a database"#,
                path.display()
            ),
        );
        assert_eq!(snapshot(dir.path()), before, "{name} was changed");
    }
}

#[tokio::test]
async fn a_truncated_registry_is_refused_untouched() {
    let bytes = std::fs::read(interop_path(GO_REGISTRY)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Cut inside the header, after page 1 (the schema), inside the tables'
    // pages, and in the last page (only `PRAGMA quick_check` notices that).
    for cut in [10, 100, 4096, 5000, 10_000, 16_384, 20_000] {
        let path = dir.path().join(format!("cut{cut}.db"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let before = snapshot(dir.path());
        let err = refused(&path, "gomade").await;
        let t = text(&err);
        assert!(
            t.ends_with(": file is not a database")
                || t.contains(": database disk image is malformed"),
            "cut at {cut}: {t}"
        );
        assert_eq!(snapshot(dir.path()), before, "cut at {cut}: file changed");
    }
}

#[tokio::test]
async fn a_missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no").join("such");
    let path = missing.join("registry.db");
    let err = refused(&path, "mynet").await;
    assert_eq!(
        text(&err),
        format!(
            r#"{}: open "mynet": unable to open database file (directory {}: No such file or directory (os error 2))"#,
            path.display(),
            missing.display()
        )
    );
    assert!(!dir.path().join("no").exists(), "a directory was created");
}

#[tokio::test]
async fn a_parent_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let path = file.join("registry.db");
    let err = refused(&path, "mynet").await;
    assert_eq!(
        text(&err),
        format!(
            r#"{}: open "mynet": unable to open database file ({} is not a directory)"#,
            path.display(),
            file.display()
        )
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[tokio::test]
async fn a_directory_in_place_of_the_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    std::fs::create_dir(&path).unwrap();
    let err = refused(&path, "mynet").await;
    assert_eq!(
        text(&err),
        format!(
            r#"{}: open "mynet": unable to open database file ({} is a directory)"#,
            path.display(),
            path.display()
        )
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_directory_that_cannot_be_written_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root writes anywhere permissions say; then use a directory no one can
    // create files in.
    let privileged = std::fs::write(locked.join("probe"), "").is_ok();
    let unwritable = if privileged {
        Path::new("/proc").to_path_buf()
    } else {
        locked.clone()
    };
    let path = unwritable.join("registry.db");
    let err = refused(&path, "mynet").await;
    assert_eq!(
        text(&err),
        format!(
            r#"{}: open "mynet": unable to open database file (directory {} is not writable)"#,
            path.display(),
            unwritable.display()
        )
    );
    assert!(!path.exists());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn an_sqlite_database_that_is_not_a_registry_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    raw(&path)
        .execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT); INSERT INTO accounts VALUES (1, 'me');")
        .unwrap();
    let before = snapshot(dir.path());
    let err = refused(&path, "mynet").await;
    assert_eq!(
        text(&err),
        format!(
            r#"{}: open "mynet": not a lonet registry: the database has tables (accounts) but no meta table"#,
            path.display()
        )
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[tokio::test]
async fn a_foreign_meta_value_is_quoted_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_reference(dir.path());
    raw(&path)
        .execute(
            "UPDATE meta SET value = ? WHERE name = 'network'",
            ["tab\there \"q\" \u{1}\u{a0}α"],
        )
        .unwrap();
    let err = refused(&path, "mynet").await;
    assert_eq!(
        text(&err),
        format!(
            r#"{}: open "mynet": network name mismatch: want "mynet"; have "tab\there \"q\" \x01\u00a0α""#,
            path.display()
        )
    );
    // A NULL value is a mismatch too, not a crash.
    raw(&path)
        .execute("UPDATE meta SET value = NULL WHERE name = 'network'", [])
        .unwrap();
    let err = refused(&path, "mynet").await;
    assert!(
        text(&err).ends_with(r#"network name mismatch: want "mynet"; have NULL"#),
        "{err}"
    );
}

#[tokio::test]
async fn an_empty_file_becomes_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    std::fs::write(&path, b"").unwrap();
    let reg = SqliteRegistry::open(&path, "mynet").await.expect("open");
    reg.announce("α", "1").await.unwrap();
    reg.close().await.unwrap();
    assert_eq!(common::meta(&raw(&path))["network"], "mynet");
}

/// Entries another program stored badly (NULL, bytes that are not UTF-8)
/// give errors naming the problem, not panics, and leave the rest usable.
#[tokio::test]
async fn foreign_entries_that_are_not_text_give_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_reference(dir.path());
    raw(&path)
        .execute_batch(
            "INSERT INTO hosts VALUES ('null-data', NULL);
             INSERT INTO hosts VALUES ('bad-utf8', CAST(X'FFFE' AS TEXT));
             INSERT INTO hosts VALUES ('blob', X'31323334');",
        )
        .unwrap();
    let reg = SqliteRegistry::open(&path, "gomade").await.expect("open");
    let err = reg.query("null-data").await.unwrap_err();
    assert_eq!(
        text(&err),
        format!(
            r#"{}: query "null-data": stored host data is NULL"#,
            path.display()
        )
    );
    let err = reg.query("bad-utf8").await.unwrap_err();
    assert!(
        text(&err).ends_with("stored host data is not valid UTF-8"),
        "{err}"
    );
    assert_eq!(reg.query("blob").await.unwrap(), "1234");
    let err = reg.list().await.unwrap_err();
    assert!(matches!(err.cause(), RegistryCause::Other(_)), "{err}");
    assert_eq!(reg.query("β").await.unwrap(), "127.0.0.1:40000");
    reg.close().await.unwrap();
}
