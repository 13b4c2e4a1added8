//! The host registry: which hosts a network has, and where to reach them.
//!
//! All subnetworks of one network share one registry. It maps a host name to
//! *host data*: for lonet the OS address (`127.0.0.1:PORT`) of the process that
//! serves the host, for pipenet an empty string. Implement [`Registry`] to plug
//! in your own.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

use async_trait::async_trait;

use crate::fault::FaultStore;

/// A host registry shared by every subnetwork of one network.
///
/// # Contract
/// - Every method may be called concurrently from many tasks (and, for a
///   shared store, from many processes); none may block the async runtime's
///   worker thread: do blocking I/O on a blocking pool.
/// - Errors carry a [`RegistryCause`]: [`HostDup`](RegistryCause::HostDup)
///   from `announce` when the name is taken, [`NoHost`](RegistryCause::NoHost)
///   from `query` when no entry exists, [`Down`](RegistryCause::Down) from
///   every method once [`close`](Registry::close) was called on this handle,
///   [`Unreachable`](RegistryCause::Unreachable) while a registry server
///   cannot be reached, and [`Other`](RegistryCause::Other) for anything
///   else (I/O, corruption).
///   A busy or contended store is waited for, never reported.
/// - `close` is idempotent and affects only this handle; other handles on the
///   same store keep working.
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// A name for this registry, used in its errors (a file path, a network name).
    fn name(&self) -> &str;

    /// Records that `host` is served at `data`. Fails with
    /// [`RegistryCause::HostDup`] if `host` already has an entry.
    async fn announce(&self, host: &str, data: &str) -> Result<(), RegistryError>;

    /// Returns the data announced for `host`, or [`RegistryCause::NoHost`].
    async fn query(&self, host: &str) -> Result<String, RegistryError>;

    /// Removes `host`'s entry, but only if it still holds `data` (so a name
    /// that another process took over meanwhile is left alone). Returns
    /// whether an entry was removed.
    ///
    /// Provided: the default answers [`RegistryCause::Unsupported`], as the
    /// reference registry cannot remove hosts.
    async fn unannounce(&self, host: &str, data: &str) -> Result<bool, RegistryError> {
        Err(RegistryError::new(
            self.name(),
            "unannounce",
            &[host, data],
            RegistryCause::Unsupported,
        ))
    }

    /// Replaces `host`'s entry with `new`, but only if it still holds `old`
    /// (a compare-and-swap: of two processes taking over a dead host's name
    /// at once, exactly one succeeds). Returns whether it replaced.
    ///
    /// Provided: the default answers [`RegistryCause::Unsupported`]; a
    /// registry without it cannot reclaim the names of dead hosts.
    async fn replace(&self, host: &str, old: &str, new: &str) -> Result<bool, RegistryError> {
        Err(RegistryError::new(
            self.name(),
            "replace",
            &[host, old, new],
            RegistryCause::Unsupported,
        ))
    }

    /// Every `(host, data)` entry, in no particular order.
    ///
    /// Provided: the default answers [`RegistryCause::Unsupported`].
    async fn list(&self) -> Result<Vec<(String, String)>, RegistryError> {
        Err(RegistryError::new(
            self.name(),
            "list",
            &[],
            RegistryCause::Unsupported,
        ))
    }

    /// Where the network keeps its fault rules, if this registry can keep
    /// them (see [`crate::fault`]). Every subnetwork of the network must get
    /// the same rules from it.
    ///
    /// Provided: the default keeps none, and setting a fault on a network
    /// with this registry fails with "faults are not supported by this
    /// registry" ([`VirtError::FaultsUnsupported`](crate::VirtError::FaultsUnsupported)).
    fn faults(&self) -> Option<Arc<dyn FaultStore>> {
        None
    }

    /// Closes this handle; every later call answers [`RegistryCause::Down`].
    async fn close(&self) -> Result<(), RegistryError>;
}

/// What went wrong in a registry operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistryCause {
    /// `registry is down`: this handle was closed.
    Down,
    /// `no such host`.
    NoHost,
    /// `host already registered`.
    HostDup,
    /// `operation not supported` by this registry.
    Unsupported,
    /// `registry is down: <why>`: the registry's server cannot be reached
    /// now (connection refused, lost, or the server shutting down), with
    /// what the server or the OS said. Unlike [`Down`](RegistryCause::Down),
    /// the handle stays open: a registry that reconnects by itself answers
    /// again once its server is back.
    Unreachable(Box<dyn Error + Send + Sync>),
    /// Anything else: I/O, a corrupt store, a schema mismatch.
    Other(Box<dyn Error + Send + Sync>),
}

impl fmt::Display for RegistryCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryCause::Down => f.write_str("registry is down"),
            RegistryCause::NoHost => f.write_str("no such host"),
            RegistryCause::HostDup => f.write_str("host already registered"),
            RegistryCause::Unsupported => f.write_str("operation not supported"),
            RegistryCause::Unreachable(e) => write!(f, "registry is down: {e}"),
            RegistryCause::Other(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// A failed registry operation: `<registry>: <op> <args>: <cause>`, for
/// example `pipeX: query "γ": no such host`.
#[derive(Debug)]
pub struct RegistryError {
    registry: String,
    op: &'static str,
    args: Vec<String>,
    cause: RegistryCause,
}

impl RegistryError {
    /// An error of registry `registry` in operation `op` called with `args`.
    pub fn new(
        registry: &str,
        op: &'static str,
        args: &[&str],
        cause: RegistryCause,
    ) -> RegistryError {
        RegistryError {
            registry: registry.to_owned(),
            op,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            cause,
        }
    }

    /// The registry's name.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The operation (`"announce"`, `"query"`, …).
    pub fn op(&self) -> &str {
        self.op
    }

    /// The operation's arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// What went wrong.
    pub fn cause(&self) -> &RegistryCause {
        &self.cause
    }

    /// The [`RegistryError`] inside `err`, if there is one.
    pub fn of(err: &io::Error) -> Option<&RegistryError> {
        err.get_ref()?.downcast_ref::<RegistryError>()
    }

    fn io_kind(&self) -> io::ErrorKind {
        match self.cause {
            RegistryCause::Down => io::ErrorKind::NetworkDown,
            RegistryCause::NoHost => io::ErrorKind::NotFound,
            RegistryCause::HostDup => io::ErrorKind::AlreadyExists,
            RegistryCause::Unsupported => io::ErrorKind::Unsupported,
            RegistryCause::Unreachable(_) => io::ErrorKind::NetworkDown,
            RegistryCause::Other(_) => io::ErrorKind::Other,
        }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.registry, self.op)?;
        for arg in &self.args {
            write!(f, " {arg:?}")?;
        }
        write!(f, ": {}", self.cause)
    }
}

impl Error for RegistryError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.cause {
            RegistryCause::Other(e) | RegistryCause::Unreachable(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<RegistryError> for io::Error {
    fn from(e: RegistryError) -> io::Error {
        io::Error::new(e.io_kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VirtError;

    #[test]
    fn display_names_registry_op_and_args() {
        let e = RegistryError::new(
            "/tmp/lonet/x/registry.db",
            "announce",
            &["α", "127.0.0.1:1"],
            RegistryCause::HostDup,
        );
        assert_eq!(
            e.to_string(),
            r#"/tmp/lonet/x/registry.db: announce "α" "127.0.0.1:1": host already registered"#
        );
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(VirtError::of(&io), Some(VirtError::HostDup));
        assert!(matches!(
            RegistryError::of(&io).map(|e| e.cause()),
            Some(RegistryCause::HostDup)
        ));

        let down: io::Error = RegistryError::new("r", "query", &["β"], RegistryCause::Down).into();
        assert_eq!(down.to_string(), r#"r: query "β": registry is down"#);
        assert_eq!(VirtError::of(&down), Some(VirtError::RegistryDown));

        let lost = RegistryError::new(
            "postgres://db/x",
            "query",
            &["β"],
            RegistryCause::Unreachable("connection refused".into()),
        );
        let lost: io::Error = lost.into();
        assert_eq!(
            lost.to_string(),
            r#"postgres://db/x: query "β": registry is down: connection refused"#
        );
        assert_eq!(lost.kind(), io::ErrorKind::NetworkDown);
        assert_eq!(VirtError::of(&lost), Some(VirtError::RegistryDown));
    }
}
