//! The registry file: schema `lonet.1`, opening and checking it, and waiting
//! out a busy database.
//!
//! The schema, byte for byte as the reference writes it (the spec's
//! "Registry schema lonet.1"; `NON NULL` is the reference's own spelling,
//! which SQLite reads as part of the type name):
//!
//! ```sql
//! CREATE TABLE hosts (hostname TEXT NON NULL PRIMARY KEY, osladdr TEXT NON NULL);
//! CREATE TABLE meta  (name     TEXT NON NULL PRIMARY KEY, value   TEXT NON NULL);
//! ```
//!
//! `meta` holds `schemaver` = `lonet.1` and `network` = the network's user
//! name. A third table, `virtnet_faults`, is made by the first fault change
//! (`faults.rs`); a file with it, in exactly its layout, is still a
//! registry. Opening a file goes:
//! 0. the file and its `-wal` / `-shm` companions must not be symbolic
//!    links or another user's files ([`check_files`], before and after
//!    opening, which uses `SQLITE_OPEN_NOFOLLOW`);
//! 1. a read-only look: a file that is not SQLite or is damaged
//!    (`PRAGMA quick_check`), an SQLite database that is not a registry, or
//!    a registry of another schema or network, is refused before anything
//!    is written to it: a database is adopted only if it has no tables or
//!    exactly the `lonet.1` layout (an empty file counts as a new database);
//! 2. `PRAGMA journal_mode=WAL`, as the reference does, so readers and the
//!    writer of many processes do not block each other;
//! 3. one `BEGIN IMMEDIATE` transaction that creates the tables if missing
//!    and checks or writes both meta rows, so processes joining at once
//!    cannot disagree (the write lock is taken up front: a transaction that
//!    read first and then wanted to write could fail with `SQLITE_BUSY`
//!    instead of waiting, which is how the reference's setup fails).
//!
//! Every step, and every later operation, goes through [`retry`]: a busy or
//! locked database is waited for, never reported.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use virtnet_core::quote::quote as go_quote;

/// The schema version this crate reads and writes (`meta.schemaver`).
pub const SCHEMA_VERSION: &str = "lonet.1";

// The reference's statements, whitespace included, so that `sqlite_master`
// of a file we create reads exactly like one the reference created.
const CREATE_HOSTS: &str = "CREATE TABLE IF NOT EXISTS hosts (
				hostname	TEXT NON NULL PRIMARY KEY,
				osladdr		TEXT NON NULL
			)";
const CREATE_META: &str = "CREATE TABLE IF NOT EXISTS meta (
				name		TEXT NON NULL PRIMARY KEY,
				value		TEXT NON NULL
			)";

pub(crate) const QUERY: &str = "SELECT osladdr FROM hosts WHERE hostname = ?1";
pub(crate) const ANNOUNCE: &str = "INSERT INTO hosts (hostname, osladdr) VALUES (?1, ?2)";
pub(crate) const UNANNOUNCE: &str = "DELETE FROM hosts WHERE hostname = ?1 AND osladdr = ?2";
pub(crate) const REPLACE: &str =
    "UPDATE hosts SET osladdr = ?3 WHERE hostname = ?1 AND osladdr = ?2";
pub(crate) const LIST: &str = "SELECT hostname, osladdr FROM hosts";

/// Why an operation on the file did not succeed.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The handle was closed (possibly while the operation waited).
    Down,
    /// `query`: no entry.
    NoHost,
    /// `announce`: the name is taken.
    HostDup,
    /// SQLite said no.
    Sql(rusqlite::Error),
    /// Anything else, as a message.
    Other(String),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Fail {
        Fail::Sql(e)
    }
}

/// Whether `e` says the database is busy or locked by someone else.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Whether `e` is a violated UNIQUE or PRIMARY KEY constraint, judged by
/// the extended result code (never by the message).
pub(crate) fn is_duplicate(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => matches!(
            f.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        ),
        _ => false,
    }
}

/// How long the `n`th wait for a busy database sleeps: from 20 µs, about
/// as long as a registry write holds the lock, doubling to 2.5 ms.
fn backoff(n: u32) -> Duration {
    Duration::from_micros(20 << n.min(7))
}

/// Waits inside SQLite, when it asks, for up to about a quarter second,
/// then lets the operation fail with `SQLITE_BUSY` so that [`retry`] can see
/// whether the handle was closed meanwhile.
fn install_busy_handler(conn: &mut Connection, closed: Arc<AtomicBool>) -> rusqlite::Result<()> {
    conn.busy_handler(Some(move |n: i32| {
        if closed.load(Ordering::Acquire) || n >= 100 {
            return false;
        }
        std::thread::sleep(backoff(u32::try_from(n).unwrap_or(u32::MAX)));
        true
    }))
}

/// Runs `op` until it ends without `SQLITE_BUSY` / `SQLITE_LOCKED`, however
/// long that takes, unless `closed` becomes set ([`Fail::Down`]). Some busy
/// answers bypass SQLite's busy handler (switching to WAL, a stale WAL
/// snapshot), so this loop sleeps too. `op` must leave no transaction open
/// when it fails (a dropped [`rusqlite::Transaction`] rolls back).
pub(crate) fn retry<T>(
    closed: &AtomicBool,
    mut op: impl FnMut() -> Result<T, Fail>,
) -> Result<T, Fail> {
    let mut n = 0;
    loop {
        if closed.load(Ordering::Acquire) {
            return Err(Fail::Down);
        }
        match op() {
            Err(Fail::Sql(e)) if is_busy(&e) => {
                std::thread::sleep(backoff(n));
                n = n.saturating_add(1);
            }
            other => return other,
        }
    }
}

/// The database file at `path` and the `-wal` and `-shm` files SQLite
/// keeps next to it.
fn database_files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Refuses the database file or its `-wal` / `-shm` companion if one is a
/// symbolic link (SQLite would follow it and write wherever it points),
/// is not a regular file, or belongs to another user (who could change it
/// under us). A missing file is fine: SQLite creates it, as ours. A
/// directory at `path` itself, or a file that cannot be looked at, is left
/// for SQLite to fail on (see [`explain`]).
///
/// Only `symlink_metadata` is used: opening the file here would drop the
/// POSIX locks SQLite holds on it for other handles of this process.
pub(crate) fn check_files(path: &Path) -> Result<(), Fail> {
    let me = rustix::process::geteuid().as_raw();
    for (i, file) in database_files(path).iter().enumerate() {
        let refuse = |why: String| {
            Err(Fail::Other(format!(
                "{} {why}; refusing to use it",
                file.display()
            )))
        };
        let meta = match std::fs::symlink_metadata(file) {
            Ok(meta) => meta,
            // Missing: SQLite creates it. Not reachable (a parent is not a
            // directory, or not searchable): SQLite cannot open it either,
            // and `explain` says why.
            Err(_) => continue,
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            return refuse("is a symbolic link".to_owned());
        }
        if i == 0 && kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return refuse("is not a regular file".to_owned());
        }
        if meta.uid() != me {
            return refuse(format!(
                "is owned by uid {}, not by us (uid {me})",
                meta.uid()
            ));
        }
    }
    Ok(())
}

/// An open connection to the registry file, set up for many processes.
pub(crate) fn connect(path: &Path, closed: Arc<AtomicBool>) -> Result<Connection, Fail> {
    check_files(path)?;
    // No SQLITE_OPEN_URI: the path is a file name, even if it starts "file:".
    // NOFOLLOW: SQLite refuses a database path that is a symbolic link, in
    // case one was planted between the check above and the open.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| explain(path, e))?;
    install_busy_handler(&mut conn, closed.clone())?;
    // WAL with synchronous=NORMAL: a commit is durable once the process's
    // write returns (it survives the process dying, not a power cut), and
    // does not wait for fsync. Per connection; the file format is unchanged.
    // (Even this reads the schema, so the database can be busy.)
    retry(&closed, || {
        Ok(conn.pragma_update(None, "synchronous", "NORMAL")?)
    })?;
    // Reading the schema opened the file and, in WAL mode, the -wal and
    // -shm files: look again at what was opened.
    check_files(path)?;
    conn.set_prepared_statement_cache_capacity(8);
    Ok(conn)
}

/// SQLite says only "unable to open database file" or "attempt to write a
/// readonly database"; add which part of the path is at fault when the
/// file system can tell. Other errors keep SQLite's own text ("file is not
/// a database", "database disk image is malformed").
///
/// Only `metadata` is used: opening and closing the file here would drop
/// the POSIX locks SQLite holds on it for other handles of this process.
pub(crate) fn explain(path: &Path, e: rusqlite::Error) -> Fail {
    let rusqlite::Error::SqliteFailure(code, _) = &e else {
        return Fail::Sql(e);
    };
    if !matches!(
        code.code,
        ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied
    ) {
        return Fail::Sql(e);
    }
    let parent = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => Path::new("/"),
    };
    let detail = match std::fs::metadata(parent) {
        Err(io) => Some(format!("directory {}: {io}", parent.display())),
        Ok(m) if !m.is_dir() => Some(format!("{} is not a directory", parent.display())),
        Ok(dir) => match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Some(format!("{} is a directory", path.display())),
            Ok(m) if m.permissions().readonly() => Some(format!("{} is read-only", path.display())),
            _ if dir.permissions().readonly() => {
                Some(format!("directory {} is not writable", parent.display()))
            }
            Ok(_) => None,
            Err(_) => Some(format!(
                "cannot create {} in {}",
                path.display(),
                parent.display()
            )),
        },
    };
    // SQLite's text, without the path rusqlite appends.
    let text = rusqlite::ffi::code_to_str(code.extended_code);
    match detail {
        Some(detail) => Fail::Other(format!("{text} ({detail})")),
        None => Fail::Other(text.to_owned()),
    }
}

/// Opens the registry at `path` for network `network`: checks the file,
/// switches it to WAL, creates the tables and the meta rows. Returns a
/// connection ready for use; on failure the file was not modified and the
/// connection is closed.
pub(crate) fn setup(
    path: &Path,
    network: &str,
    closed: Arc<AtomicBool>,
) -> Result<Connection, Fail> {
    setup_steps(path, network, closed).map_err(|fail| match fail {
        Fail::Sql(e) => explain(path, e),
        other => other,
    })
}

fn setup_steps(path: &Path, network: &str, closed: Arc<AtomicBool>) -> Result<Connection, Fail> {
    // Opening cannot be closed halfway: it has no handle yet.
    let never = AtomicBool::new(false);
    let mut conn = connect(path, closed)?;

    // 1. Look before writing anything.
    retry(&never, || precheck(&conn, network))?;

    // 2. WAL, as the reference. Setting it needs a moment of exclusive
    // access and can answer SQLITE_BUSY without waiting: retry.
    let mode: String = retry(&never, || {
        Ok(conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?)
    })?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Fail::Other(format!(
            "cannot switch to WAL journal mode (the file stays in {mode:?} mode)"
        )));
    }
    // The switch created the -wal and -shm files: check them.
    check_files(path)?;

    // 3. Tables and meta rows, atomically, holding the write lock from the
    // start.
    retry(&never, || {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(CREATE_HOSTS)?;
        tx.execute_batch(CREATE_META)?;
        check_meta(&tx, "schemaver", SCHEMA_VERSION, true)?;
        check_meta(&tx, "network", network, true)?;
        tx.commit()?;
        Ok(())
    })?;
    Ok(conn)
}

/// Refuses, without writing, a file that is not an SQLite database, is
/// damaged, is a database but not exactly a `lonet.1` registry (see
/// [`check_layout`]), or belongs to another schema or network. An empty
/// database (no tables) is fine: setup creates the tables.
fn precheck(conn: &Connection, network: &str) -> Result<(), Fail> {
    let mut st = conn.prepare("SELECT type, name, tbl_name FROM sqlite_master")?;
    let objects = st
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<Vec<(String, String, String)>>>()?;
    if objects.is_empty() {
        return Ok(());
    }
    // A damaged file (truncated, overwritten) can still answer the
    // query above; refuse it before writing to it makes it worse.
    // This reads the whole file: a registry is small.
    let mut st = conn.prepare("PRAGMA quick_check(3)")?;
    let rows = st
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    if rows != ["ok"] {
        let problems: Vec<&str> = rows
            .iter()
            .flat_map(|r| r.lines())
            .filter(|l| !l.starts_with("***"))
            .collect();
        return Err(Fail::Other(format!(
            "database disk image is malformed ({})",
            problems.join("; ")
        )));
    }
    check_layout(conn, &objects)?;
    check_meta(conn, "schemaver", SCHEMA_VERSION, false)?;
    check_meta(conn, "network", network, false)?;
    Ok(())
}

/// Whether `name` is a table SQLite itself may add to any database
/// (`ANALYZE`'s statistics).
fn is_internal_table(name: &str) -> bool {
    name.starts_with("sqlite_stat")
}

/// Refuses a non-empty database whose schema is not `lonet.1`: the tables
/// must be exactly `hosts` and `meta` (and, if fault rules were ever set,
/// `virtnet_faults`, checked by [`check_faults_table`]), with nothing else in the schema
/// but the indexes SQLite makes for their keys (no views, triggers or
/// other indexes), and each table must have its two columns, in order,
/// of type TEXT, with the first one (`hostname`, `name`) unique and no
/// other unique constraint. The column types may be spelled `TEXT NON
/// NULL` (the reference) or otherwise, and the key may be a PRIMARY KEY or
/// UNIQUE: either way the statements of this crate and of the reference
/// mean the same on it.
fn check_layout(conn: &Connection, objects: &[(String, String, String)]) -> Result<(), Fail> {
    let not_registry = |why: String| Fail::Other(format!("not a lonet registry: {why}"));
    let mut tables: Vec<&str> = objects
        .iter()
        .filter(|(kind, name, _)| kind == "table" && !is_internal_table(name))
        .map(|(_, name, _)| name.as_str())
        .collect();
    tables.sort_unstable();
    if !tables.contains(&"meta") {
        return Err(not_registry(format!(
            "the database has tables ({}) but no meta table",
            tables.join(", ")
        )));
    }
    if tables != ["hosts", "meta"] && tables != ["hosts", "meta", crate::faults::TABLE] {
        return Err(not_registry(format!(
            "the database has tables ({}), not exactly hosts and meta",
            tables.join(", ")
        )));
    }
    for (kind, name, table) in objects {
        let known = match kind.as_str() {
            "table" => true,
            "index" => name.starts_with("sqlite_autoindex_"),
            _ => false,
        };
        if !known {
            return Err(not_registry(format!(
                "the database has {kind} {} on {}, which lonet.1 does not",
                go_quote(name.as_bytes()),
                go_quote(table.as_bytes())
            )));
        }
    }
    check_table(conn, "hosts", ["hostname", "osladdr"]).map_err(not_registry)?;
    check_table(conn, "meta", ["name", "value"]).map_err(not_registry)?;
    if tables.contains(&crate::faults::TABLE) {
        check_faults_table(conn).map_err(not_registry)?;
    }
    Ok(())
}

/// Checks that the fault rules' table (made by this crate, see
/// `faults.rs`) is exactly `id INTEGER PRIMARY KEY, version INTEGER, rules
/// TEXT`; says what is wrong otherwise.
fn check_faults_table(conn: &Connection) -> Result<(), String> {
    let table = crate::faults::TABLE;
    let sql_error = |e: rusqlite::Error| format!("cannot read table {table}: {e}");
    let mut st = conn
        .prepare("SELECT name, type, pk FROM pragma_table_info(?1)")
        .map_err(sql_error)?;
    let have = st
        .query_map([table], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(String, String, i64)>>>())
        .map_err(sql_error)?;
    let want = [
        ("id", "INTEGER", 1),
        ("version", "INTEGER", 0),
        ("rules", "TEXT", 0),
    ];
    let same = have.len() == want.len()
        && have
            .iter()
            .zip(want)
            .all(|((name, ty, pk), (n, t, p))| name == n && ty.eq_ignore_ascii_case(t) && *pk == p);
    if !same {
        return Err(format!(
            "table {table} has columns ({}), want (id INTEGER PRIMARY KEY, version INTEGER, rules TEXT)",
            have.iter()
                .map(|(name, ty, _)| format!("{name} {ty}").trim_end().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Checks that `table` has exactly the TEXT columns `columns`, the first
/// one unique and nothing else unique; says what is wrong otherwise.
fn check_table(conn: &Connection, table: &str, columns: [&str; 2]) -> Result<(), String> {
    let sql_error = |e: rusqlite::Error| format!("cannot read table {table}: {e}");
    // `table` is one of this file's constants, never input.
    let mut st = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .map_err(sql_error)?;
    let have = st
        .query_map([], |row| Ok((row.get(1)?, row.get(2)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(String, String)>>>())
        .map_err(sql_error)?;
    let names: Vec<&str> = have.iter().map(|(name, _)| name.as_str()).collect();
    let wrong = || {
        format!(
            "table {table} has columns ({}), want ({})",
            have.iter()
                .map(|(name, ty)| format!("{name} {ty}").trim_end().to_owned())
                .collect::<Vec<_>>()
                .join(", "),
            columns.join(", ")
        )
    };
    if names != columns {
        return Err(wrong());
    }
    if !have
        .iter()
        .all(|(_, ty)| ty.to_ascii_uppercase().starts_with("TEXT"))
    {
        return Err(wrong());
    }
    // The unique indexes (PRIMARY KEY and UNIQUE make one each) and their
    // columns: exactly one, on the key column.
    let mut st = conn
        .prepare(&format!("PRAGMA index_list({table})"))
        .map_err(sql_error)?;
    let indexes = st
        .query_map([], |row| Ok((row.get(1)?, row.get(2)?, row.get(4)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(String, bool, bool)>>>())
        .map_err(sql_error)?;
    let mut unique = Vec::new();
    for (index, is_unique, partial) in indexes {
        if !is_unique {
            continue;
        }
        let mut st = conn
            .prepare("SELECT name FROM pragma_index_info(?1)")
            .map_err(sql_error)?;
        let cols = st
            .query_map([&index], |row| row.get::<_, Option<String>>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Option<String>>>>())
            .map_err(sql_error)?;
        unique.push((cols, partial));
    }
    let key = columns[0];
    if unique != [(vec![Some(key.to_owned())], false)] {
        return Err(format!(
            "table {table} must have column {key} as its only unique key"
        ));
    }
    Ok(())
}

/// Checks meta row `name` against `want`; a missing row is written if
/// `write`, else accepted (it will be written in the setup transaction).
fn check_meta(conn: &Connection, name: &str, want: &str, write: bool) -> Result<(), Fail> {
    let have: Option<Option<Vec<u8>>> = conn
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| {
            Ok(match row.get_ref(0)? {
                ValueRef::Null => None,
                ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
                ValueRef::Integer(i) => Some(i.to_string().into_bytes()),
                ValueRef::Real(f) => Some(f.to_string().into_bytes()),
            })
        })
        .optional()?;
    match have {
        None if write => {
            conn.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2)",
                [name, want],
            )?;
            Ok(())
        }
        None => Ok(()),
        Some(Some(have)) if have == want.as_bytes() => Ok(()),
        Some(have) => {
            let what = if name == "schemaver" {
                "schema version"
            } else {
                "network name"
            };
            let have = have.map_or_else(|| "NULL".to_owned(), |h| go_quote(&h));
            Err(Fail::Other(format!(
                "{what} mismatch: want {}; have {have}",
                go_quote(want.as_bytes())
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(setup: &str, insert: &str) -> rusqlite::Error {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(setup).unwrap();
        conn.execute_batch(insert)
            .expect_err("the insert must violate a constraint")
    }

    /// A duplicate is recognised by its extended code, PRIMARY KEY (1555)
    /// or UNIQUE (2067), and nothing else counts.
    #[test]
    fn duplicates_are_judged_by_constraint_code() {
        let pk = violation(
            "CREATE TABLE t (k TEXT NON NULL PRIMARY KEY, v TEXT)",
            "INSERT INTO t VALUES ('a', 1); INSERT INTO t VALUES ('a', 2);",
        );
        let unique = violation(
            "CREATE TABLE t (k TEXT UNIQUE, v TEXT)",
            "INSERT INTO t VALUES ('a', 1); INSERT INTO t VALUES ('a', 2);",
        );
        let not_null = violation(
            "CREATE TABLE t (k TEXT NOT NULL)",
            "INSERT INTO t VALUES (NULL);",
        );
        let check = violation(
            "CREATE TABLE t (k TEXT CHECK (k <> 'a'))",
            "INSERT INTO t VALUES ('a');",
        );
        let code = |e: &rusqlite::Error| match e {
            rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
            other => panic!("not an SQLite failure: {other:?}"),
        };
        assert_eq!(code(&pk), 1555);
        assert_eq!(code(&unique), 2067);
        assert!(is_duplicate(&pk));
        assert!(is_duplicate(&unique));
        assert!(!is_duplicate(&not_null));
        assert!(!is_duplicate(&check));
        assert!(!is_duplicate(&rusqlite::Error::QueryReturnedNoRows));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_micros(20));
        assert_eq!(backoff(1), Duration::from_micros(40));
        assert_eq!(backoff(7), Duration::from_micros(2560));
        assert_eq!(backoff(u32::MAX), Duration::from_micros(2560));
    }

    #[test]
    fn retry_gives_up_only_when_closed() {
        let busy = || {
            Fail::Sql(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                None,
            ))
        };
        let open = AtomicBool::new(false);
        let mut n = 0;
        let r = retry(&open, || {
            n += 1;
            if n < 5 {
                Err(busy())
            } else {
                Ok(n)
            }
        });
        assert!(matches!(r, Ok(5)));
        let closed = AtomicBool::new(true);
        assert!(matches!(retry(&closed, || Ok(1)), Err(Fail::Down)));
        // Other errors are not retried.
        let mut calls = 0;
        let r: Result<(), Fail> = retry(&open, || {
            calls += 1;
            Err(Fail::HostDup)
        });
        assert!(matches!(r, Err(Fail::HostDup)));
        assert_eq!(calls, 1);
    }
}
