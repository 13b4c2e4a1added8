//! Knowing when a registry file may have changed, without reading it.
//!
//! A [`Bell`] is rung whenever the registry file (or its `-wal` /
//! `-journal`) of a watched directory is written, or its times change (a
//! fault change touches the file after its commit; see `faults.rs`).
//! Whoever waits on the bell then reads what it needs, once.
//!
//! - **inotify** ([`Subscription`]): one inotify instance and one thread
//!   (`regsqlite-inotify`) per process, made on first use and kept (it
//!   sleeps in `read` while nothing happens: no CPU); each watching handle
//!   adds its directory to it and removes it when done, so no descriptor or
//!   thread is left per handle or per wait.
//! - **Polling** ([`Poller`]), if inotify is unavailable (no instances
//!   left, another OS) or the watch is lost (the directory was removed): a
//!   thread per handle that rings every [`POLL_EVERY`], until stopped.

use std::collections::HashMap;
use std::ffi::OsString;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rustix::fs::inotify;
use tokio::sync::watch;

/// How often a [`Poller`] rings.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(500);

/// What waiters wait on: a counter that grows with every ring.
pub(crate) struct Bell {
    rings: watch::Sender<u64>,
    /// Set when the inotify watch behind the bell is gone: the owner must
    /// fall back to polling.
    lost: AtomicBool,
}

impl Bell {
    /// A bell nobody rang yet.
    pub(crate) fn new() -> Bell {
        Bell {
            rings: watch::Sender::new(0),
            lost: AtomicBool::new(false),
        }
    }

    /// Wakes every waiter.
    pub(crate) fn ring(&self) {
        self.rings.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees the rings from now on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.rings.subscribe()
    }

    /// Whether the inotify watch was lost.
    pub(crate) fn lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }
}

/// One handle's interest in one directory.
struct Sub {
    id: u64,
    /// The names whose changes ring: the file, its `-wal`, its `-journal`.
    names: [OsString; 3],
    bell: Arc<Bell>,
}

/// The process's inotify instance and who listens to which watch.
struct Inotify {
    fd: OwnedFd,
    subs: Mutex<HashMap<i32, Vec<Sub>>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The process's inotify instance, started on first use; `None` if it
/// cannot be had.
fn instance() -> Option<&'static Inotify> {
    static INSTANCE: OnceLock<Option<Inotify>> = OnceLock::new();
    INSTANCE
        .get_or_init(|| {
            let fd = match inotify::init(inotify::CreateFlags::CLOEXEC) {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::debug!(error = %e, "registry: no inotify; fault changes are polled");
                    return None;
                }
            };
            Some(Inotify {
                fd,
                subs: Mutex::default(),
                next_id: AtomicU64::new(0),
            })
        })
        .as_ref()
        .filter(|i| start_thread(i))
}

/// Starts the thread reading `inotify`'s events, once; whether it runs.
fn start_thread(inotify: &'static Inotify) -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("regsqlite-inotify".to_owned())
            .spawn(move || read_events(inotify))
            .map_err(|e| tracing::debug!(error = %e, "registry: cannot start the inotify thread"))
            .is_ok()
    })
}

/// What one event says, copied out of the read buffer.
struct Seen {
    wd: i32,
    flags: inotify::ReadFlags,
    name: Option<Vec<u8>>,
}

/// The inotify thread: reads events (asleep while there are none) and rings
/// the bells of the handles they concern.
fn read_events(inotify: &'static Inotify) {
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut reader = inotify::Reader::new(&inotify.fd, &mut buf);
    let mut batch: Vec<Seen> = Vec::new();
    loop {
        match reader.next() {
            Ok(event) => batch.push(Seen {
                wd: event.wd(),
                flags: event.events(),
                name: event.file_name().map(|n| n.to_bytes().to_vec()),
            }),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                // Cannot happen with a valid descriptor; every watcher
                // falls back to polling.
                tracing::warn!(error = %e, "registry: inotify failed; fault changes are polled");
                let mut subs = lock(&inotify.subs);
                for sub in subs.drain().flat_map(|(_, subs)| subs) {
                    sub.bell.lost.store(true, Ordering::Release);
                    sub.bell.ring();
                }
                return;
            }
        }
        if reader.is_buffer_empty() {
            ring(inotify, &batch);
            batch.clear();
        }
    }
}

/// Rings, once each, the bells `batch` concerns.
fn ring(inotify: &Inotify, batch: &[Seen]) {
    let mut bells: Vec<Arc<Bell>> = Vec::new();
    {
        let mut subs = lock(&inotify.subs);
        for seen in batch {
            if seen.flags.contains(inotify::ReadFlags::QUEUE_OVERFLOW) {
                // Events were lost: anything may have changed.
                bells.extend(subs.values().flatten().map(|s| s.bell.clone()));
                continue;
            }
            if seen.flags.contains(inotify::ReadFlags::IGNORED) {
                // The watch is gone: removed by its last subscriber (none
                // left here), or its directory was.
                for sub in subs.remove(&seen.wd).into_iter().flatten() {
                    sub.bell.lost.store(true, Ordering::Release);
                    bells.push(sub.bell);
                }
                continue;
            }
            let Some(watchers) = subs.get(&seen.wd) else {
                continue;
            };
            for sub in watchers {
                let concerned = match &seen.name {
                    // The directory itself (moved, deleted).
                    None => true,
                    Some(name) => sub.names.iter().any(|n| n.as_bytes() == name.as_slice()),
                };
                if concerned {
                    bells.push(sub.bell.clone());
                }
            }
        }
    }
    bells.sort_by_key(|b| Arc::as_ptr(b) as usize);
    bells.dedup_by(|a, b| Arc::ptr_eq(a, b));
    for bell in bells {
        bell.ring();
    }
}

/// A handle's inotify watch of its registry file's directory; removed when
/// dropped.
pub(crate) struct Subscription {
    inotify: &'static Inotify,
    wd: i32,
    id: u64,
}

impl Subscription {
    /// Rings `bell` on every change of `file` (or its `-wal` / `-journal`)
    /// in its directory. Fails if inotify is unavailable.
    pub(crate) fn new(file: &Path, bell: Arc<Bell>) -> std::io::Result<Subscription> {
        let unavailable = || std::io::Error::other("inotify is unavailable");
        let inotify = instance().ok_or_else(unavailable)?;
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = file
            .file_name()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
        let with = |suffix: &str| {
            let mut n = name.to_owned();
            n.push(suffix);
            n
        };
        let names = [name.to_owned(), with("-wal"), with("-journal")];
        use inotify::WatchFlags as W;
        let mask = W::MODIFY
            | W::ATTRIB
            | W::CLOSE_WRITE
            | W::CREATE
            | W::MOVED_TO
            | W::DELETE_SELF
            | W::MOVE_SELF
            | W::ONLYDIR;
        // Holding the table while adding, so the thread never sees an event
        // of a watch it does not know yet.
        let mut subs = lock(&inotify.subs);
        let wd = inotify::add_watch(&inotify.fd, dir, mask)?;
        let id = inotify.next_id.fetch_add(1, Ordering::Relaxed);
        subs.entry(wd).or_default().push(Sub { id, names, bell });
        Ok(Subscription { inotify, wd, id })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = lock(&self.inotify.subs);
        let Some(list) = subs.get_mut(&self.wd) else {
            return;
        };
        list.retain(|s| s.id != self.id);
        if list.is_empty() {
            subs.remove(&self.wd);
            // Fails only if the watch is gone already.
            let _ = inotify::remove_watch(&self.inotify.fd, self.wd);
        }
    }
}

/// The fallback: a thread ringing a bell every [`POLL_EVERY`] until dropped.
pub(crate) struct Poller {
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Poller {
    /// Starts ringing `bell`.
    pub(crate) fn new(bell: Arc<Bell>) -> std::io::Result<Poller> {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("regsqlite-poll".to_owned())
                .spawn(move || loop {
                    std::thread::park_timeout(POLL_EVERY);
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    bell.ring();
                })?
        };
        Ok(Poller {
            stop,
            thread: handle.thread().clone(),
        })
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
    }
}
