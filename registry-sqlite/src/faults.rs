//! [`SqliteFaults`]: a network's fault rules, kept in its registry file so
//! that every process of the network applies the same ones.
//!
//! The rules live in a table of their own, made by the first change (a
//! file where no fault was ever set keeps exactly the reference's
//! `lonet.1` layout; the reference never reads this table):
//!
//! ```sql
//! CREATE TABLE virtnet_faults (
//!     id      INTEGER PRIMARY KEY CHECK (id = 1),
//!     version INTEGER NOT NULL,
//!     rules   TEXT NOT NULL
//! );
//! ```
//!
//! One row, holding the version and [`FaultRules::encode`]'s text. A
//! change is a compare-and-swap on the version in one `BEGIN IMMEDIATE`
//! transaction; after its commit the writer touches the file's
//! modification time, so that watchers (`notify.rs`) wake once the new row
//! is visible. A watcher then reads the version alone and the rules only
//! if the version moved.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use virtnet_core::fault::{FaultRules, FaultStore};
use virtnet_core::{async_trait, RegistryError};

use crate::notify::{Bell, Poller, Subscription};
use crate::store::{retry, Fail};
use crate::worker::{Reply, Request, Thread};

/// The table's name.
pub(crate) const TABLE: &str = "virtnet_faults";

const CREATE_FAULTS: &str = "CREATE TABLE IF NOT EXISTS virtnet_faults (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    rules   TEXT NOT NULL
)";

/// The version, and the rules unless the version is `?1`.
const LOAD: &str = "SELECT version, CASE WHEN version = ?1 THEN NULL ELSE rules END \
                    FROM virtnet_faults WHERE id = 1";
const VERSION: &str = "SELECT version FROM virtnet_faults WHERE id = 1";
const STORE: &str = "INSERT INTO virtnet_faults (id, version, rules) VALUES (1, ?1, ?2) \
                     ON CONFLICT (id) DO UPDATE SET version = excluded.version, rules = excluded.rules";
const TABLE_EXISTS: &str =
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'virtnet_faults'";

/// The [`FaultStore`] of a registry file, from
/// [`Registry::faults`](virtnet_core::Registry::faults) on a
/// [`SqliteRegistry`](crate::SqliteRegistry).
///
/// - `load` and `changed`'s reads run on the handle's reader thread,
///   `store_if` on its writer thread: never on the caller's.
/// - `changed` watches the file's directory with inotify (one instance
///   and one thread per process, asleep while nothing is written), reads
///   the version when the file is written, and returns when it is not the
///   one seen. Without inotify it reads the version every half second.
///   Dropping its future leaves nothing behind.
/// - Once the registry handle is closed every call fails with "registry is
///   down".
pub struct SqliteFaults {
    name: String,
    path: PathBuf,
    closed: Arc<AtomicBool>,
    reader: Thread,
    writer: Thread,
    bell: Arc<Bell>,
    watch: Mutex<Watch>,
}

/// How this handle learns of writes to its file.
enum Watch {
    /// Not yet asked.
    None,
    Inotify(#[allow(dead_code)] Subscription),
    Poll(#[allow(dead_code)] Poller),
    /// Closed: no more watching.
    Stopped,
}

impl SqliteFaults {
    /// The store of the registry file at `path` (named `name` in errors),
    /// served by the handle's `reader` and `writer` threads.
    pub(crate) fn new(
        name: String,
        path: PathBuf,
        closed: Arc<AtomicBool>,
        reader: Thread,
        writer: Thread,
    ) -> SqliteFaults {
        SqliteFaults {
            name,
            path,
            closed,
            reader,
            writer,
            bell: Arc::new(Bell::new()),
            watch: Mutex::new(Watch::None),
        }
    }

    /// Stops watching and wakes every waiter (which then sees the handle
    /// closed).
    pub(crate) fn stop(&self) {
        *lock(&self.watch) = Watch::Stopped;
        self.bell.ring();
    }

    /// Makes sure something rings the bell when the file changes.
    fn ensure_watch(&self) -> io::Result<()> {
        let mut watch = lock(&self.watch);
        match &*watch {
            Watch::Inotify(_) if !self.bell.lost() => return Ok(()),
            Watch::Poll(_) => return Ok(()),
            Watch::Stopped => return Err(self.error("watch", &[], Fail::Down)),
            Watch::None | Watch::Inotify(_) => {}
        }
        if !self.bell.lost() {
            match Subscription::new(&self.path, self.bell.clone()) {
                Ok(sub) => {
                    *watch = Watch::Inotify(sub);
                    return Ok(());
                }
                Err(e) => tracing::debug!(
                    file = %self.path.display(),
                    error = %e,
                    "registry: cannot watch the file; fault changes are polled"
                ),
            }
        }
        let poller = Poller::new(self.bell.clone()).map_err(|e| {
            self.error(
                "watch",
                &[],
                Fail::Other(format!("cannot start a registry thread: {e}")),
            )
        })?;
        *watch = Watch::Poll(poller);
        Ok(())
    }

    /// The rules, or `None` if their version is `unless`.
    async fn load_unless(&self, unless: Option<u64>) -> io::Result<Option<FaultRules>> {
        self.call("load faults", &[], &self.reader, |reply| {
            Request::LoadFaults { unless, reply }
        })
        .await
    }

    /// Sends a request made by `make` to `thread` and waits for the answer.
    async fn call<T>(
        &self,
        op: &'static str,
        args: &[&str],
        thread: &Thread,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> io::Result<T> {
        crate::registry::ask(&self.name, &self.closed, op, args, thread, make)
            .await
            .map_err(io::Error::from)
    }

    fn error(&self, op: &'static str, args: &[&str], fail: Fail) -> io::Error {
        RegistryError::new(&self.name, op, args, crate::registry::cause(fail)).into()
    }
}

#[async_trait]
impl FaultStore for SqliteFaults {
    async fn load(&self) -> io::Result<FaultRules> {
        match self.load_unless(None).await? {
            Some(rules) => Ok(rules),
            // Cannot be: nothing was excluded.
            None => Ok(FaultRules::default()),
        }
    }

    async fn store_if(&self, base: u64, rules: &FaultRules) -> io::Result<bool> {
        let version = rules.version.to_string();
        let base_text = base.to_string();
        let rules = rules.clone();
        let path = self.path.clone();
        self.call(
            "store faults",
            &[&base_text, &version],
            &self.writer,
            move |reply| Request::StoreFaults {
                base,
                rules,
                path,
                reply,
            },
        )
        .await
    }

    async fn changed(&self, seen: u64) -> io::Result<FaultRules> {
        // Subscribed before the first read: a change after it rings.
        let mut rings = self.bell.subscribe();
        self.ensure_watch()?;
        loop {
            rings.borrow_and_update();
            if let Some(rules) = self.load_unless(Some(seen)).await? {
                return Ok(rules);
            }
            if rings.changed().await.is_err() || self.closed.load(Ordering::Acquire) {
                return Err(self.error("watch faults", &[], Fail::Down));
            }
            if self.bell.lost() {
                self.ensure_watch()?;
            }
        }
    }
}

impl Drop for SqliteFaults {
    fn drop(&mut self) {
        // The subscription or poller, dropped, stops.
        *lock(&self.watch) = Watch::Stopped;
    }
}

impl std::fmt::Debug for SqliteFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteFaults")
            .field("path", &self.path)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What an unreadable stored value is called.
fn unreadable(what: &str) -> Fail {
    Fail::Other(format!("stored fault {what} is unreadable"))
}

/// A stored version as a number.
fn version_of(v: i64) -> Result<u64, Fail> {
    u64::try_from(v).map_err(|_| unreadable("version"))
}

/// The stored rules, or `None` if their version is `unless` (reader
/// thread). A file without the table has version 0 and no rules.
pub(crate) fn load(
    conn: &Connection,
    closed: &AtomicBool,
    unless: Option<u64>,
) -> Result<Option<FaultRules>, Fail> {
    let empty = || (unless != Some(0)).then(FaultRules::default);
    // A version past i64 is never stored, so it matches none.
    let unless = unless.and_then(|v| i64::try_from(v).ok());
    retry(closed, || {
        let mut st = match conn.prepare_cached(LOAD) {
            Ok(st) => st,
            Err(_) => {
                // No table yet, or one made just now by another connection
                // (then preparing again finds it).
                let exists: i64 = conn.query_row(TABLE_EXISTS, [], |r| r.get(0))?;
                if exists == 0 {
                    return Ok(empty());
                }
                conn.prepare_cached(LOAD)?
            }
        };
        let row = st
            .query_row([unless], |r| {
                let version: i64 = r.get(0)?;
                let rules = match r.get_ref(1)? {
                    ValueRef::Null => None,
                    ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
                    _ => Some(Vec::new()),
                };
                Ok((version, rules))
            })
            .optional()?;
        match row {
            None => Ok(empty()),
            Some((_, None)) => Ok(None),
            Some((version, Some(text))) => {
                let version = version_of(version)?;
                let mut rules = std::str::from_utf8(&text)
                    .ok()
                    .and_then(FaultRules::decode)
                    .ok_or_else(|| unreadable("rules"))?;
                rules.version = version;
                Ok(Some(rules))
            }
        }
    })
}

/// Stores `rules` if the stored version is `base` (writer thread), then
/// touches the file so that watchers wake.
pub(crate) fn store_if(
    conn: &Connection,
    closed: &AtomicBool,
    path: &Path,
    base: u64,
    rules: &FaultRules,
) -> Result<bool, Fail> {
    if rules.version <= base {
        return Err(Fail::Other(format!(
            "the new fault rules' version ({}) must be past the base ({base})",
            rules.version
        )));
    }
    let version = i64::try_from(rules.version).map_err(|_| {
        Fail::Other(format!(
            "fault rules version {} is too large",
            rules.version
        ))
    })?;
    let text = rules.encode();
    let stored = retry(closed, || {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        tx.execute_batch(CREATE_FAULTS)?;
        let have: Option<i64> = tx.query_row(VERSION, [], |r| r.get(0)).optional()?;
        if version_of(have.unwrap_or(0))? != base {
            // Dropping the transaction rolls it back.
            return Ok(false);
        }
        tx.execute(STORE, rusqlite::params![version, text])?;
        tx.commit()?;
        Ok(true)
    })?;
    if stored {
        touch(path);
    }
    Ok(stored)
}

/// Sets `path`'s modification time to now, without opening it (closing a
/// descriptor of the file would drop the locks SQLite holds on it): the
/// inotify event that tells watchers the committed change is visible.
fn touch(path: &Path) {
    use rustix::fs::{Timespec, Timestamps, UTIME_NOW, UTIME_OMIT};
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
    };
    if let Err(e) = rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    ) {
        // Watchers still wake on the write itself, and in other cases
        // at the next write.
        tracing::debug!(file = %path.display(), error = %e, "registry: cannot touch the file");
    }
}
