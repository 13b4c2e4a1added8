//! The tables, made on first use and checked at every connect.
//!
//! ```sql
//! CREATE TABLE virtnet_meta (key text PRIMARY KEY, value text NOT NULL);
//! -- ('schema_version', 'virtnet-postgres.1')
//!
//! CREATE TABLE virtnet_hosts (
//!     network  text  NOT NULL,
//!     host     bytea NOT NULL,
//!     data     bytea NOT NULL,
//!     host_key bytea GENERATED ALWAYS AS (sha256(host)) STORED,
//!     PRIMARY KEY (network, host_key)
//! );
//!
//! CREATE TABLE virtnet_faults (
//!     network text   PRIMARY KEY,
//!     version bigint NOT NULL,
//!     rules   text   NOT NULL
//! );
//! -- and a trigger: every change of a row notifies channel
//! -- 'virtnet_faults' with the row's network as payload.
//! ```
//!
//! Host names and data are `bytea`, so they come back byte for byte (NUL
//! included, whatever the database's encoding); the key holds the name's
//! SHA-256, so names of any length fit the index.
//!
//! Creation runs in one transaction holding an advisory lock on the
//! schema (`pg_advisory_xact_lock`), so of many processes connecting at
//! once to a fresh schema one creates the tables and the others find them.
//! A schema whose `virtnet_meta` names another version, or that has some of
//! the tables but no `virtnet_meta`, is refused and left exactly as it was.

use tokio_postgres::{Client, Row, Statement};

use crate::fail::Fail;

/// The version of the tables this crate reads and writes, kept in
/// `virtnet_meta` under the key `schema_version`. A database holding
/// another version is refused, never changed.
pub const SCHEMA_VERSION: &str = "virtnet-postgres.1";

/// The channel fault changes are notified on; the payload is the network.
pub(crate) const CHANNEL: &str = "virtnet_faults";

/// The first key of the advisory lock taken while creating the tables
/// (`virt`); the second is a hash of the schema's name.
const LOCK_CLASS: i32 = 0x7669_7274;

const TABLES: &str = "'virtnet_meta', 'virtnet_hosts', 'virtnet_faults'";

const CREATE: &str = "
CREATE TABLE virtnet_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE virtnet_hosts (
    network  text  NOT NULL,
    host     bytea NOT NULL,
    data     bytea NOT NULL,
    host_key bytea GENERATED ALWAYS AS (sha256(host)) STORED,
    PRIMARY KEY (network, host_key)
);
CREATE TABLE virtnet_faults (
    network text   PRIMARY KEY,
    version bigint NOT NULL,
    rules   text   NOT NULL
);
CREATE OR REPLACE FUNCTION virtnet_faults_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('virtnet_faults', OLD.network);
    ELSE
        PERFORM pg_notify('virtnet_faults', NEW.network);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER virtnet_faults_notify
    AFTER INSERT OR UPDATE OR DELETE ON virtnet_faults
    FOR EACH ROW EXECUTE FUNCTION virtnet_faults_notify();
";

/// Checks the tables of the connection's current schema and, if
/// `create`, makes them when there are none. Returns whether they exist
/// (false only when not creating).
pub(crate) async fn ensure(client: &mut Client, create: bool) -> Result<bool, Fail> {
    let of = |e| Fail::of(e, None);
    let tx = client.transaction().await.map_err(of)?;
    let schema: Option<String> = tx
        .query_one("SELECT current_schema()::text", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(of)?;
    let Some(schema) = schema else {
        return Err(Fail::other(
            "no schema to keep the registry in: the search_path names no existing schema",
        ));
    };
    if create {
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
            &[&LOCK_CLASS],
        )
        .await
        .map_err(of)?;
    }
    let found: Vec<String> = tx
        .query(
            &format!(
                "SELECT c.relname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relname IN ({TABLES}) \
                 ORDER BY 1"
            ),
            &[],
        )
        .await
        .map_err(of)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(of)?;
    if found.iter().any(|t| t == "virtnet_meta") {
        let have: Option<String> = tx
            .query_opt(
                "SELECT value FROM virtnet_meta WHERE key = 'schema_version'",
                &[],
            )
            .await
            .and_then(|row| row.map(|r| r.try_get(0)).transpose())
            .map_err(of)?;
        return match have {
            Some(v) if v == SCHEMA_VERSION => Ok(true),
            Some(v) => Err(Fail::other(format!(
                "schema {schema:?}: schema version mismatch: want {SCHEMA_VERSION:?}; have {v:?} \
                 (left as it is)"
            ))),
            None => Err(Fail::other(format!(
                "schema {schema:?}: table virtnet_meta has no schema_version: not a virtnet registry \
                 (left as it is)"
            ))),
        };
    }
    if let Some(table) = found.first() {
        return Err(Fail::other(format!(
            "schema {schema:?} has a table {table} but no virtnet_meta: not a virtnet registry \
             (left as it is)"
        )));
    }
    if !create {
        return Ok(false);
    }
    tx.batch_execute(CREATE).await.map_err(of)?;
    tx.execute(
        "INSERT INTO virtnet_meta (key, value) VALUES ('schema_version', $1)",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(of)?;
    tx.commit().await.map_err(of)?;
    tracing::debug!(schema, version = SCHEMA_VERSION, "registry: tables created");
    Ok(true)
}

/// Declares `Statements`, one field per statement, and its `prepare`:
/// each statement is named once, beside its text.
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        /// The statements of one connection, prepared when it opens.
        pub(crate) struct Statements {
            $($(#[$doc])* pub $name: Statement,)*
        }

        impl Statements {
            /// Prepares them all (sent together: one round trip).
            pub(crate) async fn prepare(client: &Client) -> Result<Statements, tokio_postgres::Error> {
                let ($($name,)*) = futures::try_join!($(client.prepare($sql)),*)?;
                Ok(Statements { $($name),* })
            }
        }
    };
}

statements! {
    /// Adds a host unless its name is taken.
    announce = "INSERT INTO virtnet_hosts (network, host, data) VALUES ($1, $2, $3) \
                ON CONFLICT (network, host_key) DO NOTHING";
    /// A host's data.
    query = "SELECT data FROM virtnet_hosts \
             WHERE network = $1 AND host_key = sha256($2) AND host = $2";
    /// Removes a host if its data is still $3.
    unannounce = "DELETE FROM virtnet_hosts \
                  WHERE network = $1 AND host_key = sha256($2) AND host = $2 AND data = $3";
    /// Replaces a host's data if it is still $3.
    replace = "UPDATE virtnet_hosts SET data = $4 \
               WHERE network = $1 AND host_key = sha256($2) AND host = $2 AND data = $3";
    /// Every host of a network.
    list = "SELECT host, data FROM virtnet_hosts WHERE network = $1";
    /// The version, and the rules unless the version is $2.
    load_faults = "SELECT version, CASE WHEN version = $2 THEN NULL ELSE rules END \
                   FROM virtnet_faults WHERE network = $1";
    /// The first rules of a network (stored version 0: no row).
    store_first = "INSERT INTO virtnet_faults AS f (network, version, rules) VALUES ($1, $2, $3) \
                   ON CONFLICT (network) DO UPDATE SET version = excluded.version, rules = excluded.rules \
                   WHERE f.version = 0";
    /// Later rules, if the stored version is still $4.
    store_next = "UPDATE virtnet_faults SET version = $2, rules = $3 \
                  WHERE network = $1 AND version = $4";
    /// A network's hosts and rules; answers how many hosts it had.
    remove_network = "WITH h AS (DELETE FROM virtnet_hosts WHERE network = $1 RETURNING 1), \
                           f AS (DELETE FROM virtnet_faults WHERE network = $1) \
                      SELECT count(*) FROM h";
}

/// Column `i` of `row` as text, or a failure naming what it held.
pub(crate) fn text(row: &Row, i: usize, what: &str) -> Result<String, Fail> {
    let bytes: Vec<u8> = row.try_get(i).map_err(|e| Fail::of(e, None))?;
    String::from_utf8(bytes).map_err(|_| Fail::other(format!("stored {what} is not UTF-8")))
}

/// The networks with hosts or fault rules in the current schema, sorted.
pub(crate) async fn networks(client: &Client) -> Result<Vec<String>, Fail> {
    let rows = client
        .query(
            "SELECT network FROM virtnet_hosts UNION SELECT network FROM virtnet_faults",
            &[],
        )
        .await
        .map_err(|e| Fail::of(e, None))?;
    let mut names = rows
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Fail::of(e, None))?;
    names.sort();
    Ok(names)
}
