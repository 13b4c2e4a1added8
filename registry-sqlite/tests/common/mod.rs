//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// The reference's hosts, as its README lists them.
pub fn reference_hosts() -> BTreeMap<String, String> {
    [
        ("α", "127.0.0.1:39959"),
        ("β", "127.0.0.1:40000"),
        ("q\"x\\y", "127.0.0.1:40001"),
    ]
    .into_iter()
    .map(|(h, d)| (h.to_owned(), d.to_owned()))
    .collect()
}

/// Copies the registry the reference (Go) lonet wrote for network `gomade`
/// (and its `-wal`/`-shm` files, if any) into `dir` as `registry.db`,
/// writable: the original is never written to.
pub fn copy_reference(dir: &Path) -> PathBuf {
    virtnet_testdata::copy_interop(virtnet_testdata::GO_REGISTRY, &dir.join("registry.db"))
}

/// Every file in `dir` with its bytes: to show that nothing was changed,
/// added or left behind.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("dir entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = if e.path().is_file() {
                std::fs::read(e.path()).expect("read file")
            } else {
                b"<dir>".to_vec()
            };
            (name, bytes)
        })
        .collect()
}

/// A plain SQLite connection to `path`, as another program would open it.
pub fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// The schema as `sqlite_master` records it: (type, name, table, sql).
pub fn schema(conn: &Connection) -> Vec<(String, String, String, Option<String>)> {
    let mut st = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

/// The `meta` table's rows.
pub fn meta(conn: &Connection) -> BTreeMap<String, String> {
    let mut st = conn
        .prepare("SELECT name, value FROM meta")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

/// The `hosts` table's rows.
pub fn hosts(conn: &Connection) -> BTreeMap<String, String> {
    let mut st = conn
        .prepare("SELECT hostname, osladdr FROM hosts")
        .expect("prepare");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

/// A current-thread runtime, for tests that block in between.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}
