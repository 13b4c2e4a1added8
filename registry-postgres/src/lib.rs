//! A virtnet host registry and fault store in a PostgreSQL database, for
//! networks whose processes run on many machines (or simply share one
//! server).
//!
//! [`PostgresRegistry`] implements virtnet-core's [`Registry`] (`announce`,
//! `query`, `unannounce`, `replace`, `list`, `close`) and keeps the
//! network's fault rules ([`PostgresFaults`], a [`FaultStore`] that watches
//! with LISTEN/NOTIFY). Any number of networks share one database: every
//! row is keyed by its network. Everything is async on tokio-postgres;
//! nothing blocks the runtime.
//!
//! # Map
//! - [`PostgresRegistry`] (`registry.rs`): the handle, how a call gets a
//!   connection (reconnecting after a lost one), [`networks`]. Start here.
//! - `schema.rs`: the tables ([`SCHEMA_VERSION`]), made race-free on first
//!   use and checked at every connect; the statements.
//! - `session.rs`: one connection: opening it within the connect timeout,
//!   the task that drives it, each operation's statement.
//! - [`PostgresFaults`] (`faults.rs`): the fault rules and the listening
//!   task behind `changed`.
//! - `config.rs`: reading the URL, its defaults, [`redact`].
//! - `fail.rs`: which errors mean "the server cannot be reached".
//!
//! # A lost server
//! While the server cannot be reached, calls fail with
//! [`RegistryCause::Unreachable`] (`registry is down: <why>`, an I/O error
//! of kind `NetworkDown`), and the handle stays usable: once the server is
//! back, the next call connects again. See [`PostgresRegistry`] for what
//! is retried.
//!
//! # Example
//! ```
//! use registry_postgres::PostgresRegistry;
//! use virtnet_core::{Registry, RegistryCause};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A server, such as postgres://virtnet@127.0.0.1:5432/postgres (as a
//! // doc test: the one .ci/test starts).
//! let url = std::env::var("VIRTNET_POSTGRES_URL")
//!     .map_err(|_| "VIRTNET_POSTGRES_URL is not set: run the tests with .ci/test")?;
//! let net = format!("doc-example-{}", std::process::id());
//!
//! let reg = PostgresRegistry::connect(&url, &net).await?;
//! reg.announce("α", "127.0.0.1:4001").await?;
//! assert_eq!(reg.query("α").await?, "127.0.0.1:4001");
//!
//! // Another process (here: another handle) sees the entry and cannot
//! // take the name.
//! let other = PostgresRegistry::connect(&url, &net).await?;
//! let err = other.announce("α", "127.0.0.1:4002").await.unwrap_err();
//! assert!(matches!(err.cause(), RegistryCause::HostDup));
//! assert_eq!(
//!     err.to_string(),
//!     format!(r#"{}: announce "α" "127.0.0.1:4002": host already registered"#, other.name()),
//! );
//!
//! // Another network in the same database has hosts of its own.
//! let elsewhere = PostgresRegistry::connect(&url, &format!("{net}-other")).await?;
//! assert!(matches!(elsewhere.query("α").await.unwrap_err().cause(), RegistryCause::NoHost));
//! elsewhere.close().await?;
//!
//! reg.close().await?;
//! assert!(matches!(reg.query("α").await.unwrap_err().cause(), RegistryCause::Down));
//! assert_eq!(other.query("α").await?, "127.0.0.1:4001");
//!
//! // Done with the network: its hosts and fault rules go.
//! assert_eq!(other.remove_network().await?, 1);
//! other.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`Registry`]: virtnet_core::Registry
//! [`RegistryCause::Unreachable`]: virtnet_core::RegistryCause::Unreachable
//! [`FaultStore`]: virtnet_core::fault::FaultStore
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod fail;
mod faults;
mod registry;
mod schema;
mod session;

pub use config::{redact, DEFAULT_CONNECT_TIMEOUT};
pub use faults::PostgresFaults;
pub use registry::{networks, PostgresRegistry};
pub use schema::SCHEMA_VERSION;
