//! [`SqliteRegistry`]: the [`Registry`] handle on a registry file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use virtnet_core::fault::FaultStore;
use virtnet_core::{async_trait, Registry, RegistryCause, RegistryError};

use crate::faults::SqliteFaults;
use crate::store::Fail;
use crate::worker::{self, Reply, Request, Thread};

/// How long [`SqliteRegistry::open`] waits for another process's lock on the
/// file before it gives up.
pub const DEFAULT_LOCK_LIMIT: Duration = Duration::from_secs(120);

/// How often a waiting open says it still waits.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Waits for an open of `path` to end (`opened` disconnects), saying every
/// [`PROGRESS_EVERY`] that it still waits; past `limit`, sets `gave_up` and
/// `closed`, which makes the open give up at its next try.
fn watch_open(
    path: &Path,
    limit: Duration,
    opened: &std::sync::mpsc::Receiver<()>,
    closed: &AtomicBool,
    gave_up: &AtomicBool,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let started = Instant::now();
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match opened.recv_timeout(PROGRESS_EVERY.min(left)) {
            Err(RecvTimeoutError::Timeout) if started.elapsed() >= limit => {
                gave_up.store(true, Ordering::Release);
                closed.store(true, Ordering::Release);
                tracing::warn!(
                    file = %path.display(),
                    waited = ?started.elapsed(),
                    "registry: gave up opening; another process holds the file's lock"
                );
                return;
            }
            Err(RecvTimeoutError::Timeout) => tracing::warn!(
                file = %path.display(),
                waited = ?started.elapsed(),
                "registry: still waiting for another process to release the file's lock"
            ),
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// A handle on a lonet registry file, shared with every other process (and
/// every other handle) that opens the same file.
///
/// - **Opening** ([`open`](Self::open), [`open_blocking`](Self::open_blocking))
///   creates the file and its tables if missing and checks that it belongs
///   to schema `lonet.1` and to the given network; a refused file is left
///   untouched.
/// - **Operations** follow the [`Registry`] contract. `announce` of a taken
///   name answers [`RegistryCause::HostDup`], `query` of an unknown one
///   [`RegistryCause::NoHost`]; `unannounce`, `replace` and `list` are
///   supported. A busy
///   database (another process writing) is waited for, however long, never
///   reported.
/// - **Threads**: the SQLite work runs on two threads of this handle
///   (`regsqlite-r` for `query` and `list`, `regsqlite-w` for `announce`
///   and `unannounce`), never on the caller's thread; the async methods
///   only wait for their answer, and work on any executor. A query is
///   never held up by a write waiting for another process's lock.
/// - **Order and cancellation**: an operation is sent to its thread when
///   its future is first polled, and is then carried out even if the
///   future is dropped (unless the handle is closed or dropped first).
///   Writes through one handle are carried out in the order they were sent
///   (so an `unannounce` sent after a dropped `announce` undoes it), and an
///   operation that completed is seen by every later one, through any
///   handle.
/// - **Closing**: after [`close`](Registry::close) returns, this handle has
///   closed its connections and every call answers
///   [`RegistryCause::Down`]; other handles are unaffected.
/// - **Faults**: [`Registry::faults`] keeps the network's fault rules in a
///   table of the same file, made by the first change ([`SqliteFaults`]);
///   the store shares this handle's threads (a store kept after the handle
///   is dropped keeps them until it is dropped too, answering "registry is
///   down"). An operation
///   waiting for a busy database when the handle is closed answers `Down`.
///   Dropping the handle does the same without waiting: its threads close
///   the connections and end in the background.
///
/// Errors read `<path>: <op> <args>: <cause>`, for example
/// `/tmp/lonet/mynet/registry.db: query "γ": no such host`.
pub struct SqliteRegistry {
    name: String,
    path: PathBuf,
    network: String,
    closed: Arc<AtomicBool>,
    reader: Thread,
    writer: Thread,
    faults: Arc<SqliteFaults>,
}

impl SqliteRegistry {
    /// Opens the registry file at `path` for the network whose *user* name
    /// is `network` (`mynet`, not `lonetmynet`), creating the file if it
    /// does not exist (its directory must).
    ///
    /// Fails with [`RegistryCause::Other`] if the file is not an SQLite
    /// database, is an SQLite database but not a registry, belongs to
    /// another schema (`schema version mismatch: want "lonet.1"; have "…"`)
    /// or another network (`network name mismatch: want "bbb"; have
    /// "aaa"`), or cannot be opened or written; the file is then left as it
    /// was. Waits while other processes hold the database, saying so every
    /// few seconds, for up to [`DEFAULT_LOCK_LIMIT`]
    /// ([`open_with_lock_limit`](Self::open_with_lock_limit) sets another
    /// limit); then fails with [`RegistryCause::Down`].
    ///
    /// The work runs on a thread of its own; the returned future only waits.
    pub async fn open(path: impl AsRef<Path>, network: &str) -> Result<Self, RegistryError> {
        Self::open_with_lock_limit(path, network, DEFAULT_LOCK_LIMIT).await
    }

    /// Like [`open`](Self::open), but gives up waiting for another
    /// process's lock on the file after `limit`: then it fails with
    /// [`RegistryCause::Down`] ("registry is down", naming the file). While
    /// it waits it says so every few seconds (a `tracing` warning naming
    /// the file).
    pub async fn open_with_lock_limit(
        path: impl AsRef<Path>,
        network: &str,
        limit: Duration,
    ) -> Result<Self, RegistryError> {
        let path = path.as_ref().to_path_buf();
        let network = network.to_owned();
        let closed = Arc::new(AtomicBool::new(false));
        let gave_up = Arc::new(AtomicBool::new(false));
        let (tx, rx) = oneshot::channel();
        let (done, opened) = std::sync::mpsc::channel::<()>();
        let failed = |cause: RegistryCause| {
            RegistryError::new(&path.display().to_string(), "open", &[&network], cause)
        };
        let spawned = {
            let (path, network, closed) = (path.clone(), network.clone(), closed.clone());
            std::thread::Builder::new()
                .name("regsqlite-open".to_owned())
                .spawn(move || {
                    let result = Self::open_with(&path, &network, closed);
                    drop(done);
                    let _ = tx.send(result);
                })
        };
        if let Err(e) = spawned {
            return Err(failed(RegistryCause::Other(
                format!("cannot start a registry thread: {e}").into(),
            )));
        }
        // A watchdog (a thread: this works on any executor) says every few
        // seconds that the open still waits, and past `limit` makes it give
        // up at its next try.
        let watchdog = {
            let (path, closed, gave_up) = (path.clone(), closed.clone(), gave_up.clone());
            std::thread::Builder::new()
                .name("regsqlite-wait".to_owned())
                .spawn(move || watch_open(&path, limit, &opened, &closed, &gave_up))
        };
        if let Err(e) = watchdog {
            closed.store(true, Ordering::Release);
            return Err(failed(RegistryCause::Other(
                format!("cannot start a registry thread: {e}").into(),
            )));
        }
        let opened = rx.await.unwrap_or_else(|_| {
            Err(failed(RegistryCause::Other(
                "the opening thread stopped".into(),
            )))
        });
        if gave_up.load(Ordering::Acquire) {
            // A handle made just as the limit passed is closed already.
            if let Ok(handle) = opened {
                let _ = handle.close().await;
            }
            return Err(failed(RegistryCause::Down));
        }
        opened
    }

    /// Like [`open`](Self::open), but does the work on the calling thread,
    /// blocking it. Do not call it from async code.
    pub fn open_blocking(path: impl AsRef<Path>, network: &str) -> Result<Self, RegistryError> {
        Self::open_with(path.as_ref(), network, Arc::new(AtomicBool::new(false)))
    }

    /// Opens on the calling thread; setting `closed` meanwhile makes it
    /// give up at its next try.
    fn open_with(
        path: &Path,
        network: &str,
        closed: Arc<AtomicBool>,
    ) -> Result<Self, RegistryError> {
        let name = path.display().to_string();
        match worker::start(path, network, &closed) {
            Ok((reader, writer)) => Ok(SqliteRegistry {
                faults: Arc::new(SqliteFaults::new(
                    name.clone(),
                    path.to_path_buf(),
                    closed.clone(),
                    reader.clone(),
                    writer.clone(),
                )),
                name,
                path: path.to_path_buf(),
                network: network.to_owned(),
                closed,
                reader,
                writer,
            }),
            Err(fail) => Err(RegistryError::new(&name, "open", &[network], cause(fail))),
        }
    }

    /// The registry file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The network (user) name this handle was opened for.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Sends a request made by `make` to `thread` and waits for the answer.
    async fn call<T>(
        &self,
        op: &'static str,
        args: &[&str],
        thread: &Thread,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> Result<T, RegistryError> {
        ask(&self.name, &self.closed, op, args, thread, make).await
    }
}

/// Sends a request made by `make` to `thread` of the handle named `name`
/// (closed when `closed` is set) and waits for the answer; a failure is
/// operation `op` on `args` failing.
pub(crate) async fn ask<T>(
    name: &str,
    closed: &AtomicBool,
    op: &'static str,
    args: &[&str],
    thread: &Thread,
    make: impl FnOnce(Reply<T>) -> Request,
) -> Result<T, RegistryError> {
    let error = |fail| RegistryError::new(name, op, args, cause(fail));
    if closed.load(Ordering::Acquire) {
        return Err(error(Fail::Down));
    }
    match thread.ask(make).await {
        Some(Ok(v)) => Ok(v),
        Some(Err(fail)) => Err(error(fail)),
        // The thread stopped before answering: the handle was closed.
        None => Err(error(Fail::Down)),
    }
}

/// The registry cause of a failed operation.
pub(crate) fn cause(fail: Fail) -> RegistryCause {
    match fail {
        Fail::Down => RegistryCause::Down,
        Fail::NoHost => RegistryCause::NoHost,
        Fail::HostDup => RegistryCause::HostDup,
        Fail::Sql(e) => RegistryCause::Other(e.to_string().into()),
        Fail::Other(msg) => RegistryCause::Other(msg.into()),
    }
}

#[async_trait]
impl Registry for SqliteRegistry {
    /// The file's path.
    fn name(&self) -> &str {
        &self.name
    }

    async fn announce(&self, host: &str, data: &str) -> Result<(), RegistryError> {
        self.call("announce", &[host, data], &self.writer, |reply| {
            Request::Announce {
                host: host.to_owned(),
                data: data.to_owned(),
                reply,
            }
        })
        .await
    }

    async fn query(&self, host: &str) -> Result<String, RegistryError> {
        self.call("query", &[host], &self.reader, |reply| Request::Query {
            host: host.to_owned(),
            reply,
        })
        .await
    }

    async fn unannounce(&self, host: &str, data: &str) -> Result<bool, RegistryError> {
        self.call("unannounce", &[host, data], &self.writer, |reply| {
            Request::Unannounce {
                host: host.to_owned(),
                data: data.to_owned(),
                reply,
            }
        })
        .await
    }

    async fn replace(&self, host: &str, old: &str, new: &str) -> Result<bool, RegistryError> {
        self.call("replace", &[host, old, new], &self.writer, |reply| {
            Request::Replace {
                host: host.to_owned(),
                old: old.to_owned(),
                new: new.to_owned(),
                reply,
            }
        })
        .await
    }

    async fn list(&self) -> Result<Vec<(String, String)>, RegistryError> {
        self.call("list", &[], &self.reader, |reply| Request::List { reply })
            .await
    }

    /// The fault rules, in a table of the registry file (see
    /// [`SqliteFaults`]); the same store at every call.
    fn faults(&self) -> Option<Arc<dyn FaultStore>> {
        Some(self.faults.clone())
    }

    /// Closes this handle: stops its threads and closes its connections,
    /// then returns. Idempotent.
    async fn close(&self) -> Result<(), RegistryError> {
        // Operations in progress see the flag and answer `Down` (one waiting
        // for a busy database stops waiting); queued ones too.
        self.closed.store(true, Ordering::Release);
        self.faults.stop();
        self.reader.close().await;
        self.writer.close().await;
        Ok(())
    }
}

impl Drop for SqliteRegistry {
    /// Stops the threads without waiting for them: an operation still
    /// waiting for a busy database gives up, queued ones are dropped, and
    /// each thread closes its connection and ends.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        self.faults.stop();
        // Dropping the channels (the fields) wakes the sleeping threads.
    }
}

impl std::fmt::Debug for SqliteRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRegistry")
            .field("path", &self.path)
            .field("network", &self.network)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}
