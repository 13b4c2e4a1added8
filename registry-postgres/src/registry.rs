//! [`PostgresRegistry`]: the [`Registry`] handle, its connection and how
//! a call gets one, and [`networks`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Config;
use virtnet_core::fault::FaultStore;
use virtnet_core::{async_trait, Registry, RegistryError};

use crate::config::{self, redact};
use crate::fail::Fail;
use crate::faults::PostgresFaults;
use crate::schema;
use crate::session::{self, within, Session};

/// The longest network name a handle takes, in bytes (the name is a key
/// column and a notification's payload).
const MAX_NETWORK_LEN: usize = 1024;

/// A handle on a network's registry in a PostgreSQL database, shared with
/// every other handle (in this process or any other, on any machine) on
/// the same database, schema and network.
///
/// - **Connecting** ([`connect`](Self::connect)) opens one connection,
///   makes the tables in the connection's current schema if there are none
///   (see [`SCHEMA_VERSION`](crate::SCHEMA_VERSION)), and refuses a schema
///   holding another version, leaving it as it was.
/// - **Operations** follow the [`Registry`] contract: `announce` of a taken
///   name answers [`HostDup`](virtnet_core::RegistryCause::HostDup),
///   `query` of an unknown one [`NoHost`](virtnet_core::RegistryCause::NoHost);
///   `unannounce` and `replace` are compare-and-swaps on the data; `list`
///   is supported. Every call is one statement on the handle's connection
///   (tokio-postgres pipelines the calls of concurrent tasks); nothing
///   blocks the runtime.
/// - **Networks**: rows are keyed by network, so any number of networks
///   share one schema without seeing each other's hosts or faults.
/// - **A lost server**: while the server cannot be reached, or when the
///   connection was lost, calls fail with
///   [`Unreachable`](virtnet_core::RegistryCause::Unreachable) (`registry
///   is down: <what the server or the OS said>`), and the handle stays
///   open. The next call after a lost connection opens a new one, so the
///   handle answers again as soon as the server is back. A read (`query`,
///   `list`, loading faults) that finds its connection lost is tried once
///   more on a new connection; a write is never repeated, since it may
///   have been carried out: it fails with `Unreachable` and the caller
///   decides. Opening a connection takes at most the URL's
///   `connect_timeout` ([`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT)
///   if it sets none), so no call waits forever on a dead address.
/// - **Cancellation**: dropping a call's future abandons the wait; a
///   statement already sent may still take effect.
/// - **Faults**: [`Registry::faults`] gives the network's fault rules,
///   kept in the same database ([`PostgresFaults`]), the same store at
///   every call.
/// - **Closing**: after [`close`](Registry::close) returns, the handle's
///   connections are closed and every call answers
///   [`Down`](virtnet_core::RegistryCause::Down); other handles are
///   unaffected. Dropping the handle closes them too, in the background.
///
/// Its [`name`](Registry::name), which starts its errors, is the URL with
/// any password replaced by `***` ([`redact`]) and `#<network>`:
/// `postgres://virtnet@127.0.0.1:5432/postgres#mynet: query "γ": no such
/// host`.
///
/// It needs a tokio runtime with I/O and time enabled. TLS is not
/// supported (the connection is plain, so use a local or otherwise
/// trusted network path, or a unix socket).
pub struct PostgresRegistry {
    shared: Arc<Shared>,
    faults: Arc<PostgresFaults>,
}

/// What a registry handle and its fault store share.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) network: String,
    pub(crate) config: Config,
    pub(crate) limit: Duration,
    pub(crate) closed: AtomicBool,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
}

impl Shared {
    /// The connection to use: the open one, or a new one if there is none
    /// or it was lost (then `true`).
    async fn session(&self) -> Result<(Arc<Session>, bool), Fail> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Fail::Down);
        }
        let mut held = self.session.lock().await;
        if let Some(s) = &*held {
            if !s.is_closed() {
                return Ok((s.clone(), false));
            }
            tracing::debug!(registry = %self.name, "registry: connection lost; reconnecting");
        }
        *held = None;
        let s = Arc::new(Session::open(&self.config, self.limit).await?);
        if self.closed.load(Ordering::Acquire) {
            // Closed while connecting: the new connection goes at once.
            return Err(Fail::Down);
        }
        *held = Some(s.clone());
        Ok((s, true))
    }

    /// Forgets `s` (if it is still the handle's connection): the next call
    /// opens a new one.
    async fn discard(&self, s: &Arc<Session>) {
        let mut held = self.session.lock().await;
        if held.as_ref().is_some_and(|h| Arc::ptr_eq(h, s)) {
            *held = None;
        }
    }

    /// Runs `f` on the handle's connection: operation `op` on `args`.
    /// With `read`, a call whose connection turns out lost is tried once
    /// more on a new one.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        op: &'static str,
        args: &[&str],
        read: bool,
        f: F,
    ) -> Result<T, RegistryError>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        let error = |fail: Fail| RegistryError::new(&self.name, op, args, fail.cause());
        let (s, fresh) = self.session().await.map_err(error)?;
        match f(s.clone()).await {
            Err(Fail::Lost(why)) => {
                self.discard(&s).await;
                if self.closed.load(Ordering::Acquire) {
                    return Err(error(Fail::Down));
                }
                if !read || fresh {
                    return Err(error(Fail::Lost(why)));
                }
                tracing::debug!(registry = %self.name, op, error = %why, "registry: connection lost; trying again");
                let (s, _) = self.session().await.map_err(error)?;
                let r = f(s.clone()).await;
                if matches!(r, Err(Fail::Lost(_))) {
                    self.discard(&s).await;
                }
                r.map_err(error)
            }
            r => r.map_err(error),
        }
    }

    /// Closes the connection, if any: the server is told.
    async fn close_session(&self) {
        let held = self.session.lock().await.take();
        if let Some(s) = held {
            // Calls in flight keep it until they end; the last one drops it.
            if let Ok(s) = Arc::try_unwrap(s) {
                s.close().await;
            }
        }
    }
}

impl PostgresRegistry {
    /// Connects to the database at `url` for network `network`, making the
    /// tables in the connection's current schema if there are none.
    ///
    /// `url` is anything tokio-postgres reads: a URL
    /// (`postgres://user:password@host:port/dbname?param=value`, a unix
    /// socket's directory as a percent-encoded host:
    /// `postgres://user@%2Frun%2Fpostgresql/dbname`) or key-value settings
    /// (`host=… user=… dbname=…`). Parameters pick the schema
    /// (`options=-csearch_path%3Dmyschema`), the connect timeout in seconds
    /// (`connect_timeout`, default [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT))
    /// and the name the server shows (`application_name`, default
    /// `virtnet-registry`).
    ///
    /// Fails with
    /// - [`RegistryCause::Other`](virtnet_core::RegistryCause::Other) for a
    ///   URL that cannot be read (`invalid PostgreSQL URL: …`), a network
    ///   name that is empty, longer than 1,024 bytes or holds a NUL, a
    ///   schema holding another [`SCHEMA_VERSION`](crate::SCHEMA_VERSION)
    ///   (`schema "public": schema version mismatch: want
    ///   "virtnet-postgres.1"; have "…"`) or other tables of these names,
    ///   and anything the server refuses (authentication, a missing
    ///   database, permissions);
    /// - [`RegistryCause::Unreachable`](virtnet_core::RegistryCause::Unreachable)
    ///   if the server cannot be reached within the connect timeout.
    ///
    /// The error names the operation `connect` and the network.
    pub async fn connect(url: &str, network: &str) -> Result<PostgresRegistry, RegistryError> {
        let name = format!("{}#{network}", redact(url));
        let error = |fail: Fail| RegistryError::new(&name, "connect", &[network], fail.cause());
        check_network(network).map_err(error)?;
        let (config, limit) = config::parse(url).map_err(|e| error(Fail::other(e)))?;
        let session = Session::open(&config, limit).await.map_err(error)?;
        let shared = Arc::new(Shared {
            name,
            network: network.to_owned(),
            config,
            limit,
            closed: AtomicBool::new(false),
            session: tokio::sync::Mutex::new(Some(Arc::new(session))),
        });
        Ok(PostgresRegistry {
            faults: Arc::new(PostgresFaults::new(shared.clone())),
            shared,
        })
    }

    /// The network this handle was connected for.
    pub fn network(&self) -> &str {
        &self.shared.network
    }

    /// Deletes every host and the fault rules of this handle's network, in
    /// one statement, and returns how many hosts it deleted. Other networks
    /// in the database are untouched; handles on this network (in any
    /// process) see an empty registry afterwards, and their fault stores
    /// see version 0. A write: if the connection is lost meanwhile it fails
    /// with `Unreachable`, and whether it happened is unknown.
    pub async fn remove_network(&self) -> Result<u64, RegistryError> {
        let net = &*self.shared.network;
        self.shared
            .call("remove network", &[], false, |s| async move {
                s.remove_network(net).await
            })
            .await
    }
}

/// Refuses network names the tables cannot hold.
fn check_network(network: &str) -> Result<(), Fail> {
    let problem = if network.is_empty() {
        "is empty"
    } else if network.contains('\0') {
        "contains NUL"
    } else if network.len() > MAX_NETWORK_LEN {
        "is longer than 1024 bytes"
    } else {
        return Ok(());
    };
    Err(Fail::other(format!("invalid network name: it {problem}")))
}

/// The networks that have hosts or fault rules in the database at `url`
/// (in the connection's current schema), sorted. An empty list if the
/// tables were never made (this does not make them); an error, as for
/// [`PostgresRegistry::connect`], if the schema holds another version.
/// Errors name the redacted URL and the operation `networks`.
pub async fn networks(url: &str) -> Result<Vec<String>, RegistryError> {
    let name = redact(url);
    let error = |fail: Fail| RegistryError::new(&name, "networks", &[], fail.cause());
    let (config, limit) = config::parse(url).map_err(|e| error(Fail::other(e)))?;
    let rt = session::runtime().map_err(error)?;
    let names = within(limit, async {
        let (mut client, connection) = session::connect(&config).await?;
        let task = rt.spawn(connection);
        let names = match schema::ensure(&mut client, false).await {
            Ok(true) => schema::networks(&client).await,
            Ok(false) => Ok(Vec::new()),
            Err(fail) => Err(fail),
        };
        drop(client);
        let _ = task.await;
        names
    })
    .await
    .map_err(error)?;
    Ok(names)
}

#[async_trait]
impl Registry for PostgresRegistry {
    /// The URL with any password replaced by `***`, then `#` and the
    /// network: `postgres://virtnet@127.0.0.1:5432/postgres#mynet`.
    fn name(&self) -> &str {
        &self.shared.name
    }

    async fn announce(&self, host: &str, data: &str) -> Result<(), RegistryError> {
        let net = &*self.shared.network;
        self.shared
            .call("announce", &[host, data], false, |s| async move {
                s.announce(net, host, data).await
            })
            .await
    }

    async fn query(&self, host: &str) -> Result<String, RegistryError> {
        let net = &*self.shared.network;
        self.shared
            .call("query", &[host], true, |s| async move {
                s.query(net, host).await
            })
            .await
    }

    async fn unannounce(&self, host: &str, data: &str) -> Result<bool, RegistryError> {
        let net = &*self.shared.network;
        self.shared
            .call("unannounce", &[host, data], false, |s| async move {
                s.unannounce(net, host, data).await
            })
            .await
    }

    async fn replace(&self, host: &str, old: &str, new: &str) -> Result<bool, RegistryError> {
        let net = &*self.shared.network;
        self.shared
            .call("replace", &[host, old, new], false, |s| async move {
                s.replace(net, host, old, new).await
            })
            .await
    }

    async fn list(&self) -> Result<Vec<(String, String)>, RegistryError> {
        let net = &*self.shared.network;
        self.shared
            .call("list", &[], true, |s| async move { s.list(net).await })
            .await
    }

    /// The network's fault rules, in table `virtnet_faults` of the same
    /// database (see [`PostgresFaults`]); the same store at every call.
    fn faults(&self) -> Option<Arc<dyn FaultStore>> {
        Some(self.faults.clone())
    }

    /// Closes this handle: stops watching fault rules, closes its
    /// connections (telling the server), then returns. Idempotent.
    async fn close(&self) -> Result<(), RegistryError> {
        self.shared.closed.store(true, Ordering::Release);
        self.faults.stop().await;
        self.shared.close_session().await;
        Ok(())
    }
}

impl Drop for PostgresRegistry {
    /// Closes the handle without waiting: its connections end in the
    /// background.
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.faults.stop_now();
        if let Ok(mut held) = self.shared.session.try_lock() {
            // Dropping the client makes its connection end.
            held.take();
        }
    }
}

impl std::fmt::Debug for PostgresRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRegistry")
            .field("name", &self.shared.name)
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish()
    }
}
