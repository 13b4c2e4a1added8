//! Closing, dropping, cancelling, waiting for a busy database, and many
//! callers at once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::raw;
use futures::FutureExt;
use registry_sqlite::SqliteRegistry;
use virtnet_core::{Registry, RegistryCause, VirtError};

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn name_is_the_path_and_errors_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = SqliteRegistry::open(&path, "mynet").await.unwrap();
    assert_eq!(reg.name(), path.display().to_string());
    assert_eq!(reg.path(), path);
    assert_eq!(reg.network(), "mynet");
    let err = reg.query("γ").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(r#"{}: query "γ": no such host"#, path.display())
    );
    reg.close().await.unwrap();
}

/// Once the last handle is closed, SQLite folds the WAL back into the file
/// and removes `-wal` and `-shm`: the connections are really closed.
#[tokio::test]
async fn close_releases_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = SqliteRegistry::open(&path, "mynet").await.unwrap();
    reg.announce("α", "1").await.unwrap();
    assert_eq!(
        files(dir.path()),
        ["registry.db", "registry.db-shm", "registry.db-wal"]
    );
    reg.close().await.unwrap();
    assert_eq!(files(dir.path()), ["registry.db"]);
    assert!(matches!(
        reg.announce("β", "2").await.unwrap_err().cause(),
        RegistryCause::Down
    ));
    assert_eq!(files(dir.path()), ["registry.db"]);
    assert_eq!(common::hosts(&raw(&path))["α"], "1");
}

/// A writer elsewhere holding the write lock makes `announce` wait — for
/// longer than SQLite's own busy handler waits — not fail; queries go on
/// meanwhile (WAL), and the announce completes once the lock is released.
#[tokio::test]
async fn a_busy_database_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = Arc::new(SqliteRegistry::open(&path, "mynet").await.unwrap());
    reg.announce("α", "1").await.unwrap();

    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    other
        .execute("INSERT INTO hosts VALUES ('held', 'x')", [])
        .unwrap();

    let announce = tokio::spawn({
        let reg = reg.clone();
        async move { reg.announce("β", "2").await }
    });
    let mut announce = announce.fuse();
    // Still waiting after 800 ms (SQLite's busy handler alone gives up
    // after about 250 ms).
    tokio::select! {
        r = &mut announce => panic!("announce finished while the database was locked: {r:?}"),
        _ = tokio::time::sleep(Duration::from_millis(800)) => {}
    }
    // Readers are not blocked by the writer.
    assert_eq!(reg.query("α").await.unwrap(), "1");
    other.execute_batch("COMMIT").unwrap();
    announce
        .await
        .unwrap()
        .expect("announce after the lock was released");
    assert_eq!(reg.query("β").await.unwrap(), "2");
    assert_eq!(reg.query("held").await.unwrap(), "x");
    reg.close().await.unwrap();
}

/// Closing the handle ends an operation that is waiting for a busy
/// database: it answers "registry is down", and `close` returns.
#[tokio::test]
async fn close_ends_a_wait_for_a_busy_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = Arc::new(SqliteRegistry::open(&path, "mynet").await.unwrap());
    let other = raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let announce = tokio::spawn({
        let reg = reg.clone();
        async move { reg.announce("β", "2").await }
    });
    let mut announce = announce.fuse();
    tokio::select! {
        r = &mut announce => panic!("announce finished while the database was locked: {r:?}"),
        _ = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    tokio::time::timeout(Duration::from_secs(5), reg.close())
        .await
        .expect("close returns while the database is locked")
        .unwrap();
    let err = announce.await.unwrap().unwrap_err();
    assert!(matches!(err.cause(), RegistryCause::Down), "{err}");
    other.execute_batch("ROLLBACK").unwrap();
}

/// Opening waits while another program holds the database exclusively,
/// then succeeds.
#[tokio::test]
async fn open_waits_for_a_locked_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let other = raw(&path);
    other
        .execute_batch("BEGIN EXCLUSIVE; CREATE TABLE unrelated_yet (x);")
        .unwrap();
    let open = tokio::spawn({
        let path = path.clone();
        async move { SqliteRegistry::open(&path, "mynet").await }
    });
    let mut open = open.fuse();
    tokio::select! {
        r = &mut open => panic!("open finished while the database was locked: {r:?}"),
        _ = tokio::time::sleep(Duration::from_millis(400)) => {}
    }
    // Rolled back: the file is empty again, and becomes a registry.
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    let reg = open
        .await
        .unwrap()
        .expect("open after the lock was released");
    reg.announce("α", "1").await.unwrap();
    reg.close().await.unwrap();
}

/// Opening gives up waiting for another program's lock after its limit:
/// "registry is down", naming the file; the file is left as it was.
#[tokio::test]
async fn open_gives_up_on_a_lock_held_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let other = raw(&path);
    other
        .execute_batch("BEGIN EXCLUSIVE; CREATE TABLE unrelated_yet (x);")
        .unwrap();
    let err = SqliteRegistry::open_with_lock_limit(&path, "mynet", Duration::from_millis(300))
        .await
        .expect_err("the lock is held all along");
    assert!(matches!(err.cause(), RegistryCause::Down), "{err}");
    assert_eq!(
        err.to_string(),
        format!(r#"{}: open "mynet": registry is down"#, path.display())
    );
    let io = std::io::Error::from(err);
    assert_eq!(VirtError::of(&io), Some(VirtError::RegistryDown));
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);
    let reg = SqliteRegistry::open(&path, "mynet")
        .await
        .expect("open once free");
    reg.close().await.unwrap();
}

/// A query or announce future dropped after it started does no harm: the
/// handle keeps working. An announce that was polled has been sent and is
/// carried out; an `unannounce` sent after it through the same handle runs
/// after it, so "announce, give up, unannounce" (what virtnet-core does
/// when a `new_host` future is dropped) leaves no entry behind.
#[tokio::test]
async fn dropped_futures_do_no_harm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = SqliteRegistry::open(&path, "mynet").await.unwrap();
    reg.announce("α", "1").await.unwrap();
    for i in 0..100 {
        let mut q = Box::pin(reg.query("α"));
        let _ = futures::poll!(&mut q);
        drop(q);
        let host = format!("h{i}");
        let mut a = Box::pin(reg.announce(&host, "d"));
        let _ = futures::poll!(&mut a);
        drop(a);
        assert!(
            reg.unannounce(&host, "d").await.unwrap(),
            "the dropped announce of {host} was not carried out first"
        );
        let err = reg.query(&host).await.unwrap_err();
        assert!(matches!(err.cause(), RegistryCause::NoHost), "{err}");
    }
    assert_eq!(reg.query("α").await.unwrap(), "1");
    assert_eq!(reg.list().await.unwrap().len(), 1);
    // An open future dropped midway leaves nothing open.
    let mut o = Box::pin(SqliteRegistry::open(&path, "mynet"));
    let _ = futures::poll!(&mut o);
    drop(o);
    reg.close().await.unwrap();
}

/// Many tasks on one handle, on a multi-threaded runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = Arc::new(SqliteRegistry::open(&path, "mynet").await.unwrap());
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let reg = reg.clone();
            tokio::spawn(async move {
                let (h, d) = (format!("h{i}"), format!("127.0.0.1:{i}"));
                reg.announce(&h, &d).await.unwrap();
                assert_eq!(reg.query(&h).await.unwrap(), d);
                let dup = reg.announce(&h, "again").await.unwrap_err();
                assert!(matches!(dup.cause(), RegistryCause::HostDup));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(reg.list().await.unwrap().len(), 64);
    reg.close().await.unwrap();
}

/// The async methods need no tokio runtime: any executor will do, and the
/// blocking open needs none at all.
#[test]
fn works_on_any_executor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let reg = SqliteRegistry::open_blocking(&path, "mynet").unwrap();
    futures::executor::block_on(async {
        reg.announce("α", "1").await.unwrap();
        assert_eq!(reg.query("α").await.unwrap(), "1");
        let again = SqliteRegistry::open(&path, "mynet").await.unwrap();
        assert_eq!(again.query("α").await.unwrap(), "1");
        again.close().await.unwrap();
        reg.close().await.unwrap();
    });
}

/// Host names and data of every kind survive a close and a reopen byte
/// for byte, and are stored as the plain text the reference reads.
#[tokio::test]
async fn awkward_strings_are_stored_as_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let long: String = "ü\"\\\n\0x".chars().cycle().take(4096).collect();
    let entries = [
        ("q\"x\\y", "127.0.0.1:1"),
        ("nul\0byte", "a\0b"),
        ("line\nbreak", "cr\r\n"),
        ("😀", "日本語"),
        (long.as_str(), long.as_str()),
    ];
    let reg = SqliteRegistry::open(&path, "mynet").await.unwrap();
    for (h, d) in entries {
        reg.announce(h, d).await.unwrap();
    }
    reg.close().await.unwrap();
    let conn = raw(&path);
    for (h, d) in entries {
        let (ty, bytes): (String, Vec<u8>) = conn
            .query_row(
                "SELECT typeof(osladdr), CAST(osladdr AS BLOB) FROM hosts WHERE hostname = ?",
                [h],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(ty, "text");
        assert_eq!(bytes, d.as_bytes(), "data of {h:?}");
    }
    drop(conn);
    let reg = SqliteRegistry::open(&path, "mynet").await.unwrap();
    for (h, d) in entries {
        assert_eq!(reg.query(h).await.unwrap(), d);
    }
    reg.close().await.unwrap();
}
