//! Helpers shared by the integration tests: the server's URL, a fresh schema per test, names no other test uses, a plain
//! client for looking behind the registry's back.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, NoTls};

/// The environment variable naming the test server.
pub const URL_ENV: &str = "VIRTNET_POSTGRES_URL";

/// The test server's URL, from `VIRTNET_POSTGRES_URL`, which `.ci/test`
/// (README's test command) sets after starting the server. A test that
/// needs it fails without it, saying so.
pub fn server_url() -> String {
    match std::env::var(URL_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{URL_ENV} is not set: run the tests with .ci/test (it starts a PostgreSQL server), or set {URL_ENV} to a server's URL"
        ),
    }
}

/// A name no other test (in this run or an earlier one) uses:
/// `<prefix>_<pid>_<time>_<n>`, lowercase, fit for a schema or network.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() % 1_000_000_000_000);
    format!(
        "{prefix}_{}_{t}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with `key=value` added to its parameters (`value` as written:
/// percent-encode what needs it).
pub fn with_param(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// A plain connection to `url`, driven on the current runtime.
pub async fn client(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to the test server: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A fresh, empty schema, dropped (with everything in it) when this is
/// dropped.
pub struct Schema {
    /// Its name.
    pub name: String,
    /// The server's URL with the schema as the search path.
    pub url: String,
    server: String,
}

impl Schema {
    /// Creates a schema on the server at `server`.
    pub async fn new(server: &str) -> Schema {
        let name = unique("vt");
        client(server)
            .await
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .expect("create schema");
        Schema {
            url: with_param(server, "options", &format!("-csearch_path%3D{name}")),
            name,
            server: server.to_owned(),
        }
    }

    /// `SQL` run in this schema, its rows as text (`NULL` for null).
    pub async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let c = client(&self.url).await;
        c.simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // On a thread of its own: the test's runtime may be single-threaded
        // or shutting down.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let drop = async {
                    let c = client(&server).await;
                    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .await
                };
                // Best effort, bounded: a leftover schema harms nothing.
                let _ = tokio::time::timeout(Duration::from_secs(30), drop).await;
            })
        });
        let _ = dropped.join();
    }
}

/// Awaits `fut`, failing the test if it takes longer than `secs` (a guard
/// against hangs, not a way to wait for something).
pub async fn bounded<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {secs} s"))
}
