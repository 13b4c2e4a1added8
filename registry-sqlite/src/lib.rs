//! The lonet host registry: an SQLite file that every process of a network
//! opens at once, readable and writable by the reference (Go) lonet.
//!
//! [`SqliteRegistry`] implements virtnet-core's [`Registry`]: `announce`,
//! `query`, `close`, and also `unannounce` and `list`, which the reference
//! lacks. The file keeps the reference's schema `lonet.1` exactly, so a
//! reference process and this one can share a network.
//!
//! # Map
//! - [`SqliteRegistry`] (`registry.rs`): the handle, its error texts, and
//!   how a call reaches its thread. Start here.
//! - `store.rs`: the file: schema, opening and checking it, waiting out a
//!   busy database.
//! - [`SqliteFaults`] (`faults.rs`): the network's fault rules, in a
//!   table of the same file, and how `changed` watches for them
//!   (`notify.rs`: inotify, or polling without it).
//! - `worker.rs`: the threads that own the SQLite connections and the
//!   statements each operation runs.
//! - `quote.rs`: Go's `%q`, for the reference's error texts.
//!
//! # Many processes
//! The file is in WAL mode, so queries never wait for writers; writers
//! wait for each other. A busy or locked database is waited for, never
//! reported, including while a fresh file is being set up by many
//! processes at once.
//!
//! # Example
//! ```
//! use registry_sqlite::SqliteRegistry;
//! use virtnet_core::{Registry, RegistryCause};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("registry.db");
//!
//! let reg = SqliteRegistry::open(&path, "mynet").await?;
//! reg.announce("α", "127.0.0.1:4001").await?;
//! assert_eq!(reg.query("α").await?, "127.0.0.1:4001");
//!
//! // Another process (here: another handle) sees the entry and cannot take
//! // the name.
//! let other = SqliteRegistry::open(&path, "mynet").await?;
//! let err = other.announce("α", "127.0.0.1:4002").await.unwrap_err();
//! assert!(matches!(err.cause(), RegistryCause::HostDup));
//! assert_eq!(
//!     err.to_string(),
//!     format!(r#"{}: announce "α" "127.0.0.1:4002": host already registered"#, path.display()),
//! );
//!
//! // The file belongs to network "mynet".
//! let err = SqliteRegistry::open(&path, "othernet").await.unwrap_err();
//! assert!(err.to_string().ends_with(r#"network name mismatch: want "othernet"; have "mynet""#));
//!
//! reg.close().await?;
//! assert!(matches!(reg.query("α").await.unwrap_err().cause(), RegistryCause::Down));
//! assert_eq!(other.query("α").await?, "127.0.0.1:4001");
//! # other.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`Registry`]: virtnet_core::Registry
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod faults;
mod notify;
mod registry;
mod store;
mod worker;

pub use faults::SqliteFaults;
pub use registry::{SqliteRegistry, DEFAULT_LOCK_LIMIT};
pub use store::SCHEMA_VERSION;
