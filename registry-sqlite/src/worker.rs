//! The threads that own the SQLite connections.
//!
//! SQLite calls block (on disk, on another process's lock), so they never
//! run on the caller's (async runtime) thread. Each registry handle has two
//! threads, each owning one connection and serving requests from a channel,
//! answering on a oneshot:
//! - the *reader* (`regsqlite-r`) answers `query` and `list`;
//! - the *writer* (`regsqlite-w`) answers `announce`, `unannounce`,
//!   `replace` and fault changes.
//!
//! The reader also reads the fault rules.
//!
//! With WAL, readers never wait for writers, so a dial's query is not held
//! up behind an announce that waits for another process's write lock. A
//! request whose caller went away is still carried out; its answer is
//! dropped. Each thread serves its channel in order.
//!
//! Latency: waking a sleeping thread costs much more than a query, and a
//! request would pay it twice (the thread, then the caller). So both sides
//! stay awake a little: the thread polls its channel for [`STAY_AWAKE`]
//! after each request, and a caller polls for the answer as long (see
//! [`Thread::ask`]). Back-to-back queries then find the thread awake; a
//! lone query pays for waking it (BENCHMARKS.md has the numbers).
//!
//! A thread stops when it receives [`Request::Close`] (it closes its
//! connection, then answers) or when every sender is gone (the handle was
//! dropped). Requests still queued then are dropped unanswered; their
//! callers see the handle as down.

use std::future::{poll_fn, Future};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use tokio::sync::oneshot;
use virtnet_core::fault::FaultRules;

use crate::faults;
use crate::store::{self, retry, Fail};

/// Where a request's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, Fail>>;

/// A request to a connection thread.
pub(crate) enum Request {
    /// The data announced for `host`.
    Query { host: String, reply: Reply<String> },
    /// Every entry.
    List { reply: Reply<Vec<(String, String)>> },
    /// Records `host` → `data` unless `host` is taken.
    Announce {
        host: String,
        data: String,
        reply: Reply<()>,
    },
    /// Removes `host` if it still maps to `data`.
    Unannounce {
        host: String,
        data: String,
        reply: Reply<bool>,
    },
    /// Points `host` at `new` if it still maps to `old`.
    Replace {
        host: String,
        old: String,
        new: String,
        reply: Reply<bool>,
    },
    /// The fault rules, unless their version is `unless` (then `None`).
    LoadFaults {
        unless: Option<u64>,
        reply: Reply<Option<FaultRules>>,
    },
    /// Stores `rules` if the stored version is `base`, then touches the
    /// file at `path`.
    StoreFaults {
        base: u64,
        rules: FaultRules,
        path: PathBuf,
        reply: Reply<bool>,
    },
    /// Closes the connection and stops the thread, then answers.
    Close { reply: oneshot::Sender<()> },
}

/// How long each side of a request stays awake, polling, before it
/// sleeps: a thread after it answered (so a caller that asks again at once,
/// as in a burst of dials, finds it awake), and a caller after it asked
/// (see [`Thread::ask`]). Longer than a query takes, shorter than waking a
/// sleeping thread costs.
const STAY_AWAKE: Duration = Duration::from_micros(50);

/// A connection thread, as its handle sees it. Clones send to the same
/// thread (the handle's fault store has one); the thread ends once every
/// clone is dropped, or at [`Thread::close`].
#[derive(Clone)]
pub(crate) struct Thread {
    requests: mpsc::Sender<Request>,
}

impl Thread {
    /// Starts a thread named `name` serving `conn`. `order` says what its
    /// close waits for, or lets wait (see [`CloseOrder`]).
    pub(crate) fn spawn(
        name: &str,
        conn: Connection,
        closed: Arc<AtomicBool>,
        order: CloseOrder,
    ) -> std::io::Result<Thread> {
        let (requests, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || serve(conn, &rx, &closed, order))?;
        Ok(Thread { requests })
    }

    /// Sends the request made by `make` and waits for its answer; `None` if
    /// the thread stopped first (the handle was closed).
    ///
    /// The answer usually comes within microseconds, sooner than a parked
    /// runtime thread would wake up for it. So for [`STAY_AWAKE`] this
    /// yields to the executor and asks to be polled again at once (other
    /// tasks still run in between), and only then waits to be woken. Each
    /// such poll also yields the CPU to the OS (`sched_yield`): if the
    /// connection thread shares this CPU, it runs now instead of after the
    /// spin.
    pub(crate) async fn ask<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Request,
    ) -> Option<Result<T, Fail>> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(make(tx)).ok()?;
        let mut rx = pin!(rx);
        let start = Instant::now();
        poll_fn(|cx| match rx.as_mut().poll(cx) {
            Poll::Ready(answer) => Poll::Ready(answer.ok()),
            Poll::Pending => {
                if start.elapsed() < STAY_AWAKE {
                    std::thread::yield_now();
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        })
        .await
    }

    /// Asks the thread to close its connection and stop; returns once it
    /// has (at once if it already had).
    pub(crate) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Close { reply: tx }).is_ok() {
            // An error means the thread stopped without answering (another
            // close got there first): its connection is closed either way.
            let _ = rx.await;
        }
    }
}

/// The order in which a handle's two connections close, so that the same one
/// is always last: the last connection to a WAL database checkpoints it and
/// removes its `-wal` and `-shm` files, and two closing at once can each
/// see the other still open and leave them.
pub(crate) enum CloseOrder {
    /// Closes first; its thread ends (dropping this) after it has.
    First(mpsc::Sender<()>),
    /// Closes once the other has (this ends when that thread does).
    After(mpsc::Receiver<()>),
}

fn serve(conn: Connection, rx: &mpsc::Receiver<Request>, closed: &AtomicBool, order: CloseOrder) {
    let mut close_reply = None;
    while let Some(request) = next(rx) {
        match request {
            Request::Close { reply } => {
                close_reply = Some(reply);
                break;
            }
            Request::Query { host, reply } => {
                let _ = reply.send(query(&conn, closed, &host));
            }
            Request::List { reply } => {
                let _ = reply.send(list(&conn, closed));
            }
            Request::Announce { host, data, reply } => {
                let _ = reply.send(announce(&conn, closed, &host, &data));
            }
            Request::Unannounce { host, data, reply } => {
                let _ = reply.send(unannounce(&conn, closed, &host, &data));
            }
            Request::Replace {
                host,
                old,
                new,
                reply,
            } => {
                let _ = reply.send(replace(&conn, closed, &host, &old, &new));
            }
            Request::LoadFaults { unless, reply } => {
                let _ = reply.send(faults::load(&conn, closed, unless));
            }
            Request::StoreFaults {
                base,
                rules,
                path,
                reply,
            } => {
                let _ = reply.send(faults::store_if(&conn, closed, &path, base, &rules));
            }
        }
    }
    if let CloseOrder::After(first) = &order {
        // Ends with an error when the other thread has closed and ended.
        let _ = first.recv();
    }
    // Release the file before saying so. (`close` fails only with a
    // statement still running, which cannot be; dropping closes anyway.)
    if let Err((conn, _)) = conn.close() {
        drop(conn);
    }
    if let CloseOrder::First(done) = order {
        // Lets the other thread close.
        drop(done);
    }
    if let Some(reply) = close_reply {
        let _ = reply.send(());
    }
}

/// The next request: polled for [`STAY_AWAKE`], yielding the CPU between
/// looks, then waited for asleep. `None` once every sender is gone.
fn next(rx: &mpsc::Receiver<Request>) -> Option<Request> {
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(r) => return Some(r),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if start.elapsed() < STAY_AWAKE => {
                std::thread::yield_now();
            }
            Err(mpsc::TryRecvError::Empty) => return rx.recv().ok(),
        }
    }
}

fn query(conn: &Connection, closed: &AtomicBool, host: &str) -> Result<String, Fail> {
    retry(closed, || {
        let mut st = conn.prepare_cached(store::QUERY)?;
        let mut rows = st.query([host])?;
        match rows.next()? {
            None => Err(Fail::NoHost),
            Some(row) => text(row.get_ref(0)?, "host data"),
        }
    })
}

fn list(conn: &Connection, closed: &AtomicBool) -> Result<Vec<(String, String)>, Fail> {
    retry(closed, || {
        let mut st = conn.prepare_cached(store::LIST)?;
        let mut rows = st.query([])?;
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            let host = text(row.get_ref(0)?, "host name")?;
            let data = text(row.get_ref(1)?, "host data")?;
            all.push((host, data));
        }
        Ok(all)
    })
}

fn announce(conn: &Connection, closed: &AtomicBool, host: &str, data: &str) -> Result<(), Fail> {
    retry(closed, || {
        let mut st = conn.prepare_cached(store::ANNOUNCE)?;
        match st.execute([host, data]) {
            Ok(_) => Ok(()),
            Err(e) if store::is_duplicate(&e) => Err(Fail::HostDup),
            Err(e) => Err(e.into()),
        }
    })
}

fn unannounce(
    conn: &Connection,
    closed: &AtomicBool,
    host: &str,
    data: &str,
) -> Result<bool, Fail> {
    retry(closed, || {
        let mut st = conn.prepare_cached(store::UNANNOUNCE)?;
        Ok(st.execute([host, data])? > 0)
    })
}

fn replace(
    conn: &Connection,
    closed: &AtomicBool,
    host: &str,
    old: &str,
    new: &str,
) -> Result<bool, Fail> {
    retry(closed, || {
        let mut st = conn.prepare_cached(store::REPLACE)?;
        Ok(st.execute([host, old, new])? > 0)
    })
}

/// A stored value as text. The reference writes only text; another writer
/// may have stored a NULL or bytes that are not UTF-8.
fn text(value: ValueRef<'_>, what: &str) -> Result<String, Fail> {
    match value {
        ValueRef::Text(b) | ValueRef::Blob(b) => String::from_utf8(b.to_vec())
            .map_err(|_| Fail::Other(format!("stored {what} is not valid UTF-8"))),
        ValueRef::Null => Err(Fail::Other(format!("stored {what} is NULL"))),
        ValueRef::Integer(i) => Ok(i.to_string()),
        ValueRef::Real(f) => Ok(f.to_string()),
    }
}

/// Opens `path` for `network` and starts both threads: (reader, writer).
pub(crate) fn start(
    path: &Path,
    network: &str,
    closed: &Arc<AtomicBool>,
) -> Result<(Thread, Thread), Fail> {
    let writer_conn = store::setup(path, network, closed.clone())?;
    let reader_conn = store::connect(path, closed.clone())?;
    let spawn_failed =
        |e: std::io::Error| Fail::Other(format!("cannot start a registry thread: {e}"));
    // The reader closes first (the handle's `close` asks it first), the
    // writer last.
    let (reader_done, after_reader) = mpsc::channel();
    let writer = Thread::spawn(
        "regsqlite-w",
        writer_conn,
        closed.clone(),
        CloseOrder::After(after_reader),
    )
    .map_err(spawn_failed)?;
    // If this fails, dropping `writer` stops the writer thread (and the
    // unused sender lets it close).
    let reader = Thread::spawn(
        "regsqlite-r",
        reader_conn,
        closed.clone(),
        CloseOrder::First(reader_done),
    )
    .map_err(spawn_failed)?;
    Ok((reader, writer))
}
