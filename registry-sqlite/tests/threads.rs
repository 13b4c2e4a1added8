//! Every handle's threads stop when it is closed or dropped, and a failed
//! open leaves none behind. Alone in its own test binary, so that the
//! threads counted are this test's.

#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use registry_sqlite::SqliteRegistry;
use virtnet_core::Registry;

/// The number of live threads of this process whose name starts with
/// `regsqlite` (the registry's threads: `regsqlite-r`, `-w`, `-open`).
fn registry_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("regsqlite"))
        .count()
}

/// Waits until `registry_threads() == n`: threads end shortly after they
/// close their connection, so this polls, for at most 10 s.
fn wait_for_threads(n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = registry_threads();
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} registry threads, want {n}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn threads_stop_on_close_drop_and_failed_open() {
    let rt = common::rt();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    assert_eq!(registry_threads(), 0);

    let a = rt.block_on(SqliteRegistry::open(&path, "mynet")).unwrap();
    let b = SqliteRegistry::open_blocking(&path, "mynet").unwrap();
    let c = rt.block_on(SqliteRegistry::open(&path, "mynet")).unwrap();
    rt.block_on(a.announce("α", "1")).unwrap();
    // Two per handle; the opening threads are gone.
    wait_for_threads(6);

    rt.block_on(a.close()).unwrap();
    wait_for_threads(4);
    drop(a);
    drop(b);
    wait_for_threads(2);

    // Failed opens, async and blocking, leave no thread.
    let err = rt
        .block_on(SqliteRegistry::open(&path, "other"))
        .unwrap_err();
    assert!(err.to_string().contains("network name mismatch"), "{err}");
    assert!(SqliteRegistry::open_blocking(&path, "other").is_err());
    wait_for_threads(2);

    // The last handle dropped, not closed: its threads close the file, and
    // SQLite removes the -wal and -shm files as the last connection goes.
    assert_eq!(files(dir.path()), 3);
    drop(c);
    wait_for_threads(0);
    assert_eq!(files(dir.path()), 1, "the file is still open");
    assert_eq!(common::hosts(&common::raw(&path))["α"], "1");

    // A handle dropped while its announce waits for a lock held elsewhere:
    // the wait is abandoned and the threads end, lock or no lock.
    let d = SqliteRegistry::open_blocking(&path, "mynet").unwrap();
    wait_for_threads(2);
    let other = common::raw(&path);
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut announce = Box::pin(d.announce("β", "2"));
    assert!(rt
        .block_on(async { futures::poll!(&mut announce) })
        .is_pending());
    drop(announce);
    drop(d);
    wait_for_threads(0);
    other.execute_batch("COMMIT").unwrap();
    let err = common::raw(&path)
        .query_row("SELECT osladdr FROM hosts WHERE hostname = 'β'", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap_err();
    assert_eq!(err, rusqlite::Error::QueryReturnedNoRows);
}
