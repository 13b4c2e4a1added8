//! One connection to the server: opening it (within the connect
//! timeout), the task that drives it, and the operations on it.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{Client, Config, Connection, NoTls, Socket};
use virtnet_core::fault::FaultRules;

use crate::config::describe;
use crate::fail::Fail;
use crate::schema::{self, Statements};

/// How long a closing handle waits for its connection to say goodbye to
/// the server before it drops it.
const GOODBYE: Duration = Duration::from_secs(5);

/// Runs `fut` for at most `limit`; past it the server counts as
/// unreachable.
pub(crate) async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, Fail>>,
) -> Result<T, Fail> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Fail::lost(format!(
            "no answer from the server within {limit:?} (connect_timeout)"
        ))),
    }
}

/// The runtime to run connections on: the caller's.
pub(crate) fn runtime() -> Result<tokio::runtime::Handle, Fail> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        Fail::other("no tokio runtime: the PostgreSQL registry runs on tokio (with I/O and time)")
    })
}

/// A new connection to the server, not yet driven.
pub(crate) async fn connect(
    config: &Config,
) -> Result<(Client, Connection<Socket, NoTlsStream>), Fail> {
    config.connect(NoTls).await.map_err(|e| Fail::of(e, None))
}

/// Drives `connection` in a task on `rt` until it ends; why it ended (if
/// with an error) goes into `ended`.
fn drive(
    rt: &tokio::runtime::Handle,
    connection: Connection<Socket, NoTlsStream>,
    ended: Arc<OnceLock<String>>,
) -> JoinHandle<()> {
    rt.spawn(async move {
        if let Err(e) = connection.await {
            let why = describe(&e);
            tracing::debug!(error = %why, "registry: connection to the server ended");
            let _ = ended.set(why);
        }
    })
}

/// A connection with the tables checked and the statements prepared.
pub(crate) struct Session {
    client: Client,
    st: Statements,
    /// Why the connection ended, once it has.
    ended: Arc<OnceLock<String>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Session {
    /// Connects, makes or checks the tables, prepares the statements: all
    /// within `limit`.
    pub(crate) async fn open(config: &Config, limit: Duration) -> Result<Session, Fail> {
        let rt = runtime()?;
        within(limit, async {
            let (mut client, connection) = connect(config).await?;
            let ended = Arc::new(OnceLock::new());
            let task = drive(&rt, connection, ended.clone());
            schema::ensure(&mut client, true).await?;
            let st = Statements::prepare(&client)
                .await
                .map_err(|e| Fail::of(e, None))?;
            Ok(Session {
                client,
                st,
                ended,
                task: Mutex::new(Some(task)),
            })
        })
        .await
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Ends the connection politely (the server is told), waiting a
    /// little for it.
    pub(crate) async fn close(self) {
        let Session { client, task, .. } = self;
        drop(client);
        let task = task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(GOODBYE, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    fn fail(&self, e: tokio_postgres::Error) -> Fail {
        Fail::of(e, self.ended.get().map(String::as_str))
    }

    pub(crate) async fn announce(&self, net: &str, host: &str, data: &str) -> Result<(), Fail> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&net, &host.as_bytes(), &data.as_bytes()];
        match self.client.execute(&self.st.announce, &params).await {
            Ok(0) => Err(Fail::HostDup),
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    pub(crate) async fn query(&self, net: &str, host: &str) -> Result<String, Fail> {
        let row = self
            .client
            .query_opt(&self.st.query, &[&net, &host.as_bytes()])
            .await
            .map_err(|e| self.fail(e))?;
        match row {
            Some(row) => schema::text(&row, 0, "host data"),
            None => Err(Fail::NoHost),
        }
    }

    pub(crate) async fn unannounce(&self, net: &str, host: &str, data: &str) -> Result<bool, Fail> {
        self.client
            .execute(
                &self.st.unannounce,
                &[&net, &host.as_bytes(), &data.as_bytes()],
            )
            .await
            .map(|n| n > 0)
            .map_err(|e| self.fail(e))
    }

    pub(crate) async fn replace(
        &self,
        net: &str,
        host: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, Fail> {
        self.client
            .execute(
                &self.st.replace,
                &[&net, &host.as_bytes(), &old.as_bytes(), &new.as_bytes()],
            )
            .await
            .map(|n| n > 0)
            .map_err(|e| self.fail(e))
    }

    pub(crate) async fn list(&self, net: &str) -> Result<Vec<(String, String)>, Fail> {
        let rows = self
            .client
            .query(&self.st.list, &[&net])
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|r| {
                Ok((
                    schema::text(r, 0, "host name")?,
                    schema::text(r, 1, "host data")?,
                ))
            })
            .collect()
    }

    pub(crate) async fn remove_network(&self, net: &str) -> Result<u64, Fail> {
        let row = self
            .client
            .query_one(&self.st.remove_network, &[&net])
            .await
            .map_err(|e| self.fail(e))?;
        let n: i64 = row.try_get(0).map_err(|e| self.fail(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The network's fault rules, or `None` if their version is `unless`.
    /// No row: version 0 and no links.
    pub(crate) async fn load_faults(
        &self,
        net: &str,
        unless: Option<u64>,
    ) -> Result<Option<FaultRules>, Fail> {
        // A version past i64 is never stored, so it matches none.
        let unless_db = unless.and_then(|v| i64::try_from(v).ok());
        let row = self
            .client
            .query_opt(&self.st.load_faults, &[&net, &unless_db])
            .await
            .map_err(|e| self.fail(e))?;
        let Some(row) = row else {
            return Ok((unless != Some(0)).then(FaultRules::default));
        };
        let version: i64 = row.try_get(0).map_err(|e| self.fail(e))?;
        let rules: Option<String> = row.try_get(1).map_err(|e| self.fail(e))?;
        let Some(rules) = rules else {
            return Ok(None);
        };
        let version = u64::try_from(version)
            .map_err(|_| Fail::other("stored fault version is unreadable"))?;
        let mut rules = FaultRules::decode(&rules)
            .ok_or_else(|| Fail::other("stored fault rules are unreadable"))?;
        rules.version = version;
        Ok(Some(rules))
    }

    /// Stores `rules` if the stored version is `base`.
    pub(crate) async fn store_faults(
        &self,
        net: &str,
        base: u64,
        rules: &FaultRules,
    ) -> Result<bool, Fail> {
        if rules.version <= base {
            return Err(Fail::other(format!(
                "the new fault rules' version ({}) must be past the base ({base})",
                rules.version
            )));
        }
        let too_large = |v: u64| Fail::other(format!("fault rules version {v} is too large"));
        let version = i64::try_from(rules.version).map_err(|_| too_large(rules.version))?;
        let text = rules.encode();
        let stored = if base == 0 {
            self.client
                .execute(&self.st.store_first, &[&net, &version, &text])
                .await
        } else {
            let base = i64::try_from(base).map_err(|_| too_large(base))?;
            self.client
                .execute(&self.st.store_next, &[&net, &version, &text, &base])
                .await
        };
        stored.map(|n| n > 0).map_err(|e| self.fail(e))
    }
}
