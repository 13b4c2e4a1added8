//! [`PostgresFaults`]: a network's fault rules in table `virtnet_faults`,
//! and the watch behind [`FaultStore::changed`]: LISTEN/NOTIFY on a
//! connection of its own.
//!
//! A trigger on the table notifies channel `virtnet_faults` with the
//! row's network at every change, whoever makes it (this crate, another
//! process, `psql`); the notification is delivered when the change
//! commits. Each registry handle that is asked to watch opens one more
//! connection, LISTENs on it in a task of its own, and counts the
//! notifications of its network; waiters reload the rules at each count,
//! and also each time the listening connection is (re)established, since
//! notifications sent while it was down are lost.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Config};
use virtnet_core::fault::{FaultRules, FaultStore};
use virtnet_core::{async_trait, RegistryError};

use crate::config::describe;
use crate::fail::Fail;
use crate::registry::Shared;
use crate::schema::CHANNEL;
use crate::session::{self, within};

/// A listening connection lost sooner than this after it was set up is
/// not set up again until a waiter asks (a server that drops every
/// connection is not hammered).
const STEADY: Duration = Duration::from_secs(1);

/// How long a stopping watch waits for its connection to say goodbye.
const GOODBYE: Duration = Duration::from_secs(5);

/// The [`FaultStore`] of a [`PostgresRegistry`](crate::PostgresRegistry),
/// from [`Registry::faults`](virtnet_core::Registry::faults): the
/// network's rules in one row of table `virtnet_faults` (the rules as
/// [`FaultRules::encode`]'s text, and their version).
///
/// - `load` reads the row (version 0 and no links if there is none);
///   `store_if` is one statement that writes only if the stored version
///   is still the base (a compare-and-swap: of two concurrent changes on
///   one base, one lands and the other gets `false`).
/// - `changed` waits on a notification, never polling: the first call
///   starts a task with a connection of its own that LISTENs for changes
///   (one per registry handle, ended when the handle is closed or
///   dropped). Changes to other networks do not wake it. A listening
///   connection that is lost is opened again, and waiters then reload the
///   rules, so no change is missed. While the server cannot be reached,
///   `changed` fails with `registry is down: <why>` (the caller tries
///   again later). Dropping its future leaves nothing behind.
/// - They use the registry handle's connection, and fail like its calls:
///   "registry is down" once the handle is closed.
pub struct PostgresFaults {
    shared: Arc<Shared>,
    state: Arc<watch::Sender<Listen>>,
    kick: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The listening connection, as waiters see it.
#[derive(Clone)]
struct Listen {
    phase: Phase,
    /// Connection attempts started so far.
    attempts: u64,
    /// Notifications of this network received so far.
    wakes: u64,
}

#[derive(Clone)]
enum Phase {
    /// No task yet.
    Idle,
    Connecting,
    /// LISTENing: every change from now on is notified.
    Ready,
    /// The last attempt failed, or the connection was lost; the task
    /// waits for a waiter to ask again.
    Failed(Arc<str>),
    /// The handle was closed.
    Stopped,
}

impl PostgresFaults {
    pub(crate) fn new(shared: Arc<Shared>) -> PostgresFaults {
        let (stop, _) = watch::channel(false);
        PostgresFaults {
            shared,
            state: Arc::new(watch::Sender::new(Listen {
                phase: Phase::Idle,
                attempts: 0,
                wakes: 0,
            })),
            kick: Arc::new(Notify::new()),
            stop,
            task: Mutex::new(None),
        }
    }

    /// Stops the watch without waiting; waiters answer "registry is down".
    pub(crate) fn stop_now(&self) {
        self.stop.send_replace(true);
        self.state.send_modify(|s| s.phase = Phase::Stopped);
    }

    /// Stops the watch and waits for its task (and connection) to end.
    pub(crate) async fn stop(&self) {
        self.stop_now();
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Starts the listening task unless it runs; true if it started it.
    fn ensure_task(&self) -> Result<bool, Fail> {
        let mut task = lock(&self.task);
        if *self.stop.borrow() {
            return Err(Fail::Down);
        }
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(false);
        }
        let rt = session::runtime()?;
        let listener = Listener {
            config: self.shared.config.clone(),
            network: self.shared.network.clone(),
            limit: self.shared.limit,
            state: self.state.clone(),
            kick: self.kick.clone(),
            stop: self.stop.subscribe(),
        };
        *task = Some(rt.spawn(listener.run()));
        Ok(true)
    }

    /// The rules, or `None` if their version is `unless`.
    async fn load_unless(&self, unless: Option<u64>) -> io::Result<Option<FaultRules>> {
        let net = &*self.shared.network;
        self.shared
            .call("load faults", &[], true, |s| async move {
                s.load_faults(net, unless).await
            })
            .await
            .map_err(io::Error::from)
    }

    fn error(&self, fail: Fail) -> io::Error {
        RegistryError::new(&self.shared.name, "watch faults", &[], fail.cause()).into()
    }
}

#[async_trait]
impl FaultStore for PostgresFaults {
    async fn load(&self) -> io::Result<FaultRules> {
        Ok(self.load_unless(None).await?.unwrap_or_default())
    }

    async fn store_if(&self, base: u64, rules: &FaultRules) -> io::Result<bool> {
        let net = &*self.shared.network;
        let (base_text, version) = (base.to_string(), rules.version.to_string());
        self.shared
            .call(
                "store faults",
                &[&base_text, &version],
                false,
                |s| async move { s.store_faults(net, base, rules).await },
            )
            .await
            .map_err(io::Error::from)
    }

    async fn changed(&self, seen: u64) -> io::Result<FaultRules> {
        let mut rx = self.state.subscribe();
        let start = rx.borrow().attempts;
        self.ensure_task().map_err(|f| self.error(f))?;
        loop {
            let (phase, attempts) = {
                let s = rx.borrow_and_update();
                (s.phase.clone(), s.attempts)
            };
            match phase {
                Phase::Stopped => return Err(self.error(Fail::Down)),
                // An attempt made while this call waited failed.
                Phase::Failed(why) if attempts > start => {
                    return Err(self.error(Fail::lost(why.to_string())))
                }
                // An old failure: ask for another attempt (from a new
                // task if the old one ended with its runtime).
                Phase::Failed(_) => {
                    if !self.ensure_task().map_err(|f| self.error(f))? {
                        self.kick.notify_one();
                    }
                }
                Phase::Idle | Phase::Connecting => {}
                // Listening: a change after this load is notified.
                Phase::Ready => {
                    if let Some(rules) = self.load_unless(Some(seen)).await? {
                        return Ok(rules);
                    }
                }
            }
            if rx.changed().await.is_err() {
                return Err(self.error(Fail::Down));
            }
        }
    }
}

impl Drop for PostgresFaults {
    fn drop(&mut self) {
        self.stop_now();
    }
}

impl std::fmt::Debug for PostgresFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresFaults")
            .field("registry", &self.shared.name)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The listening task's state.
struct Listener {
    config: Config,
    network: String,
    limit: Duration,
    state: Arc<watch::Sender<Listen>>,
    kick: Arc<Notify>,
    stop: watch::Receiver<bool>,
}

/// How a listening connection ended.
enum Ended {
    Stopped,
    /// Lost after it listened for a while: open it again at once.
    Lost,
    /// Could not be set up, or lost soon after: wait to be asked.
    Failed(String),
}

impl Listener {
    /// Sets the phase, unless the watch was stopped.
    fn set(&self, change: impl FnOnce(&mut Listen)) {
        self.state.send_modify(|s| {
            if !matches!(s.phase, Phase::Stopped) {
                change(s);
            }
        });
    }

    async fn run(mut self) {
        let _guard = EndGuard(self.state.clone());
        loop {
            self.set(|s| {
                s.attempts += 1;
                s.phase = Phase::Connecting;
            });
            let why = match self.listen().await {
                Ended::Stopped => return,
                Ended::Lost => continue,
                Ended::Failed(why) => why,
            };
            tracing::debug!(network = %self.network, error = %why, "registry: fault watch down");
            self.set(|s| s.phase = Phase::Failed(why.into()));
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = self.kick.notified() => {}
                _ = stopped(&mut stop) => return,
            }
        }
    }

    /// Connects, LISTENs, and counts this network's notifications until
    /// the connection ends or the watch is stopped.
    async fn listen(&mut self) -> Ended {
        let mut stop = self.stop.clone();
        let connected = tokio::select! {
            r = within(self.limit, session::connect(&self.config)) => r,
            _ = stopped(&mut stop) => return Ended::Stopped,
        };
        let (client, mut connection) = match connected {
            Ok(c) => c,
            Err(Fail::Lost(why) | Fail::Other(why)) => return Ended::Failed(why.to_string()),
            Err(_) => return Ended::Failed("cannot connect".to_owned()),
        };
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        let lost = |e: Option<tokio_postgres::Error>| match e {
            Some(e) => describe(&e),
            None => "connection closed".to_owned(),
        };
        {
            let statement = format!("LISTEN {CHANNEL}");
            let listen = client.batch_execute(&statement);
            let deadline = tokio::time::sleep(self.limit);
            tokio::pin!(listen, deadline);
            loop {
                tokio::select! {
                    r = &mut listen => match r {
                        Ok(()) => break,
                        Err(e) => return Ended::Failed(describe(&e)),
                    },
                    m = messages.next() => match m {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Ended::Failed(lost(Some(e))),
                        None => return Ended::Failed(lost(None)),
                    },
                    _ = &mut deadline => {
                        return Ended::Failed(format!(
                            "no answer from the server within {:?} (connect_timeout)",
                            self.limit
                        ))
                    }
                    _ = stopped(&mut stop) => return Ended::Stopped,
                }
            }
        }
        // Waiters reload: changes made before this point were not seen.
        self.set(|s| s.phase = Phase::Ready);
        let since = Instant::now();
        let why = loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if n.payload() == self.network {
                            self.set(|s| s.wakes += 1);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break lost(Some(e)),
                    None => break lost(None),
                },
                _ = stopped(&mut stop) => {
                    // Dropping the client makes the connection say goodbye
                    // and end.
                    drop(client);
                    let drain = async { while messages.next().await.is_some() {} };
                    let _ = tokio::time::timeout(GOODBYE, drain).await;
                    return Ended::Stopped;
                }
            }
        };
        if since.elapsed() < STEADY {
            Ended::Failed(why)
        } else {
            tracing::debug!(network = %self.network, error = %why, "registry: fault watch lost; listening again");
            Ended::Lost
        }
    }
}

/// Waits until the watch is stopped (or its handle is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Tells waiters if the task ends without being stopped (its runtime shut
/// down): the next `changed` starts another.
struct EndGuard(Arc<watch::Sender<Listen>>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.send_modify(|s| {
            if !matches!(s.phase, Phase::Stopped) {
                s.phase = Phase::Failed("the fault watch's task ended".into());
            }
        });
    }
}
