//! Errors: the canonical failures ([`VirtError`]) and the failed operation
//! that carries one ([`OpError`]).
//!
//! Every fallible call of this crate returns a [`std::io::Error`] whose kind
//! matches the failure and whose inner error is an [`OpError`] (or, for bad
//! input, an [`AddrError`](crate::AddrError)). [`VirtError::of`] digs the
//! canonical cause out of such an error so tests can match it:
//!
//! ```
//! # use std::io;
//! use virtnet_core::{Addr, OpError, VirtError};
//!
//! let err: io::Error = OpError::new("dial", "pipeX")
//!     .src(Addr::new("pipeX", "α", 1))
//!     .dst(Addr::new("pipeX", "α", 0))
//!     .cause(VirtError::ConnRefused)
//!     .into();
//! assert_eq!(err.to_string(), "dial pipeX α:1->α:0: connection refused");
//! assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
//! assert_eq!(VirtError::of(&err), Some(VirtError::ConnRefused));
//! ```

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

use crate::registry::{RegistryCause, RegistryError};
use crate::Addr;

/// The canonical failures every virtual network reports, with the texts
/// that lonet also sends on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VirtError {
    /// `network is down`: the subnetwork (or its engine) was closed.
    NetDown,
    /// `host is down`: the host was closed.
    HostDown,
    /// `socket is down`: the listener was closed.
    SockDown,
    /// `address already in use`.
    AddrInUse,
    /// `cannot listen on requested address`: listening on another host's address.
    AddrNoListen,
    /// `connection refused`: nothing listens on the dialed address.
    ConnRefused,
    /// `registry is down`: the registry was closed.
    RegistryDown,
    /// `no such host`: no registry knows the host.
    NoHost,
    /// `host already registered`: the host name is taken on this network.
    HostDup,
    /// `no route to host`: a fault makes the link unreachable.
    HostUnreach,
    /// `connection reset by peer`: a fault reset the connection.
    ConnReset,
    /// `faults are not supported by this registry`.
    FaultsUnsupported,
}

impl VirtError {
    /// The canonical text.
    pub fn as_str(self) -> &'static str {
        match self {
            VirtError::NetDown => "network is down",
            VirtError::HostDown => "host is down",
            VirtError::SockDown => "socket is down",
            VirtError::AddrInUse => "address already in use",
            VirtError::AddrNoListen => "cannot listen on requested address",
            VirtError::ConnRefused => "connection refused",
            VirtError::RegistryDown => "registry is down",
            VirtError::NoHost => "no such host",
            VirtError::HostDup => "host already registered",
            VirtError::HostUnreach => "no route to host",
            VirtError::ConnReset => "connection reset by peer",
            VirtError::FaultsUnsupported => "faults are not supported by this registry",
        }
    }

    /// The [`io::ErrorKind`] an error with this cause carries.
    pub fn io_kind(self) -> io::ErrorKind {
        match self {
            VirtError::NetDown | VirtError::RegistryDown => io::ErrorKind::NetworkDown,
            VirtError::HostDown => io::ErrorKind::HostUnreachable,
            VirtError::SockDown => io::ErrorKind::NotConnected,
            VirtError::AddrInUse => io::ErrorKind::AddrInUse,
            VirtError::AddrNoListen => io::ErrorKind::AddrNotAvailable,
            VirtError::ConnRefused => io::ErrorKind::ConnectionRefused,
            VirtError::NoHost => io::ErrorKind::NotFound,
            VirtError::HostDup => io::ErrorKind::AlreadyExists,
            VirtError::HostUnreach => io::ErrorKind::HostUnreachable,
            VirtError::ConnReset => io::ErrorKind::ConnectionReset,
            VirtError::FaultsUnsupported => io::ErrorKind::Unsupported,
        }
    }

    /// The canonical failure behind `err`, if it has one: looks through
    /// [`OpError`] and [`RegistryError`] wrappers, and down the chain of
    /// [`source`](Error::source)s of any other error (an engine's own error
    /// that wraps one).
    pub fn of(err: &io::Error) -> Option<VirtError> {
        Self::of_dyn(err.get_ref()?)
    }

    fn of_dyn(err: &(dyn Error + 'static)) -> Option<VirtError> {
        if let Some(v) = err.downcast_ref::<VirtError>() {
            return Some(*v);
        }
        if let Some(op) = err.downcast_ref::<OpError>() {
            return VirtError::of(&op.cause);
        }
        if let Some(reg) = err.downcast_ref::<RegistryError>() {
            return match reg.cause() {
                RegistryCause::Down | RegistryCause::Unreachable(_) => {
                    Some(VirtError::RegistryDown)
                }
                RegistryCause::NoHost => Some(VirtError::NoHost),
                RegistryCause::HostDup => Some(VirtError::HostDup),
                _ => None,
            };
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return VirtError::of(io);
        }
        err.source().and_then(Self::of_dyn)
    }
}

impl fmt::Display for VirtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error for VirtError {}

impl From<VirtError> for io::Error {
    fn from(e: VirtError) -> io::Error {
        io::Error::new(e.io_kind(), e)
    }
}

/// A failed operation, formatted like Go's `net.OpError`:
/// `<op> <network> <src>-><dst>: <cause>` (either address may be absent).
///
/// Converts into an [`io::Error`] with the cause's kind.
#[derive(Debug)]
pub struct OpError {
    op: &'static str,
    network: Arc<str>,
    src: Option<Addr>,
    dst: Option<Addr>,
    dst_text: Option<Box<str>>,
    cause: io::Error,
}

impl OpError {
    /// Starts an error for operation `op` (`"dial"`, `"listen"`, `"accept"`,
    /// `"read"`, …) on `network`; the cause defaults to "network is down"
    /// until [`cause`](Self::cause) sets it.
    pub fn new(op: &'static str, network: impl Into<Arc<str>>) -> OpError {
        OpError {
            op,
            network: network.into(),
            src: None,
            dst: None,
            dst_text: None,
            cause: VirtError::NetDown.into(),
        }
    }

    /// Sets the local (source) address.
    pub fn src(mut self, src: Addr) -> OpError {
        self.src = Some(src);
        self
    }

    /// Sets the remote (destination) address.
    pub fn dst(mut self, dst: Addr) -> OpError {
        self.dst = Some(dst);
        self
    }

    /// Names the destination by text, for one that did not parse.
    pub fn dst_text(mut self, dst: &str) -> OpError {
        self.dst_text = Some(dst.into());
        self
    }

    /// Sets the cause.
    pub fn cause(mut self, cause: impl Into<io::Error>) -> OpError {
        self.cause = cause.into();
        self
    }

    /// The operation (`"dial"`, `"listen"`, …).
    pub fn op(&self) -> &str {
        self.op
    }

    /// The full network name.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The local address, if the operation had one.
    pub fn source(&self) -> Option<&Addr> {
        self.src.as_ref()
    }

    /// The remote address, if the operation had one that parsed.
    pub fn destination(&self) -> Option<&Addr> {
        self.dst.as_ref()
    }

    /// What went wrong.
    pub fn cause_ref(&self) -> &io::Error {
        &self.cause
    }

    /// The canonical failure behind this error, if any.
    pub fn virt(&self) -> Option<VirtError> {
        VirtError::of(&self.cause)
    }

    /// The [`OpError`] inside `err`, if there is one.
    pub fn of(err: &io::Error) -> Option<&OpError> {
        err.get_ref()?.downcast_ref::<OpError>()
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.network)?;
        if let Some(src) = &self.src {
            write!(f, " {src}")?;
        }
        let dst: Option<&dyn fmt::Display> = match (&self.dst, &self.dst_text) {
            (Some(a), _) => Some(a),
            (None, Some(t)) => Some(t),
            (None, None) => None,
        };
        if let Some(dst) = dst {
            let sep = if self.src.is_some() { "->" } else { " " };
            write!(f, "{sep}{dst}")?;
        }
        write!(f, ": {}", self.cause)
    }
}

impl Error for OpError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.cause)
    }
}

impl From<OpError> for io::Error {
    fn from(e: OpError) -> io::Error {
        io::Error::new(e.cause.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go_op_error() {
        let a = Addr::new("pipeX", "α", 1);
        let cases: [(OpError, &str); 4] = [
            (
                OpError::new("listen", "pipeX")
                    .dst(a.clone())
                    .cause(VirtError::AddrInUse),
                "listen pipeX α:1: address already in use",
            ),
            (
                OpError::new("read", "pipeX")
                    .src(a.clone())
                    .dst(a.with_port(2))
                    .cause(VirtError::HostDown),
                "read pipeX α:1->α:2: host is down",
            ),
            (
                OpError::new("dial", "pipeX")
                    .src(a)
                    .dst_text("α:x")
                    .cause(VirtError::NoHost),
                "dial pipeX α:1->α:x: no such host",
            ),
            (
                OpError::new("new host", "pipeX"),
                "new host pipeX: network is down",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn kinds_and_cause_survive_wrapping() {
        for v in [
            VirtError::NetDown,
            VirtError::HostDown,
            VirtError::SockDown,
            VirtError::AddrInUse,
            VirtError::AddrNoListen,
            VirtError::ConnRefused,
            VirtError::RegistryDown,
            VirtError::NoHost,
            VirtError::HostDup,
        ] {
            let e: io::Error = OpError::new("x", "n").cause(v).into();
            assert_eq!(e.kind(), v.io_kind());
            assert_eq!(VirtError::of(&e), Some(v));
            assert_eq!(OpError::of(&e).and_then(OpError::virt), Some(v));
            assert!(e.to_string().ends_with(v.as_str()));
        }
        let plain = io::Error::other("boom");
        assert_eq!(VirtError::of(&plain), None);
    }
}
