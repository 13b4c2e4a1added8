//! Addresses: `host:port` on a named network.
//!
//! Splitting and joining follow Go's `net.SplitHostPort` / `net.JoinHostPort`,
//! so that addresses written by the reference implementation parse the same
//! way here: a host that contains `:` is written in brackets, and any Unicode
//! host (`α`, `β`) is allowed.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

/// An address on a virtual network: a host name, a port, and the full name of
/// the network it belongs to (`pipeX`, `lonetmynet`).
///
/// It displays as `host:port` (`α:1`, `[a:b]:2`), like a TCP address.
///
/// ```
/// use virtnet_core::Addr;
///
/// let a = Addr::parse("pipedemo", "α:10").unwrap();
/// assert_eq!((a.network(), a.host(), a.port()), ("pipedemo", "α", 10));
/// assert_eq!(a.to_string(), "α:10");
///
/// let err = Addr::parse("pipedemo", "α:x").unwrap_err();
/// assert_eq!(err.to_string(), "address α:x: invalid port");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Addr {
    network: Arc<str>,
    host: Arc<str>,
    port: u32,
}

impl Addr {
    /// An address from its parts.
    pub fn new(network: impl Into<Arc<str>>, host: impl Into<Arc<str>>, port: u32) -> Addr {
        Addr {
            network: network.into(),
            host: host.into(),
            port,
        }
    }

    /// Parses `host:port` (see [`split_host_port`]); the port must be a
    /// non-negative decimal number.
    pub fn parse(network: impl Into<Arc<str>>, addr: &str) -> Result<Addr, AddrError> {
        let (host, port) = split_host_port(addr)?;
        let port =
            parse_port(port).ok_or_else(|| AddrError::new(addr, AddrErrorKind::InvalidPort))?;
        Ok(Addr::new(network, host, port))
    }

    /// The full name of the network (`pipeX`, `lonetmynet`).
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// The same host with another port.
    pub fn with_port(&self, port: u32) -> Addr {
        Addr {
            network: self.network.clone(),
            host: self.host.clone(),
            port,
        }
    }

    pub(crate) fn network_arc(&self) -> &Arc<str> {
        &self.network
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Addr({} {})", self.network, self)
    }
}

/// Joins a host and a port into `host:port`, bracketing a host that contains
/// `:` (Go's `net.JoinHostPort`).
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host:port` (or `[host]:port`) into host and port, exactly as Go's
/// `net.SplitHostPort` does. The port is not checked here.
pub fn split_host_port(addr: &str) -> Result<(&str, &str), AddrError> {
    let err = |kind| Err(AddrError::new(addr, kind));
    let Some(colon) = addr.rfind(':') else {
        return err(AddrErrorKind::MissingPort);
    };
    let (host, open_from, close_from);
    if addr.starts_with('[') {
        let Some(end) = addr.find(']') else {
            return err(AddrErrorKind::MissingBracket);
        };
        if end + 1 == addr.len() {
            return err(AddrErrorKind::MissingPort);
        }
        if end + 1 != colon {
            if addr.as_bytes()[end + 1] == b':' {
                return err(AddrErrorKind::TooManyColons);
            }
            return err(AddrErrorKind::MissingPort);
        }
        host = &addr[1..end];
        (open_from, close_from) = (1, end + 1);
    } else {
        host = &addr[..colon];
        if host.contains(':') {
            return err(AddrErrorKind::TooManyColons);
        }
        (open_from, close_from) = (0, 0);
    }
    if addr[open_from..].contains('[') {
        return err(AddrErrorKind::UnexpectedOpenBracket);
    }
    if addr[close_from..].contains(']') {
        return err(AddrErrorKind::UnexpectedCloseBracket);
    }
    Ok((host, &addr[colon + 1..]))
}

/// Checks that `name` can be a host: an address can reach it, that is
/// `name:port` reads back as `name`. The empty name cannot (in an address
/// it means "this host").
pub(crate) fn check_host_name(name: &str) -> Result<(), InvalidHostName> {
    if name.is_empty() {
        return Err(InvalidHostName::new(name, "a host name cannot be empty"));
    }
    let joined = join_host_port(name, "1");
    if split_host_port(&joined).map(|(host, _)| host) != Ok(name) {
        return Err(InvalidHostName::new(
            name,
            "no address can name it (host:port does not read back)",
        ));
    }
    Ok(())
}

/// A name that cannot be a host's: `invalid host name "<name>": <why>`.
/// Its [`io::Error`] kind is [`io::ErrorKind::InvalidInput`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHostName {
    name: String,
    why: &'static str,
}

impl InvalidHostName {
    /// `name` cannot be a host's, because of `why` (for engines with limits
    /// of their own, see [`Engine::new_host`](crate::engine::Engine::new_host)).
    pub fn new(name: &str, why: &'static str) -> InvalidHostName {
        InvalidHostName {
            name: name.to_owned(),
            why,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why it cannot be a host's.
    pub fn why(&self) -> &'static str {
        self.why
    }
}

impl fmt::Display for InvalidHostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid host name {:?}: {}", self.name, self.why)
    }
}

impl Error for InvalidHostName {}

impl From<InvalidHostName> for io::Error {
    fn from(e: InvalidHostName) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Parses a port like Go's `strconv.Atoi` followed by a `port < 0` check:
/// an optional sign, then decimal digits.
fn parse_port(s: &str) -> Option<u32> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u32 = digits.parse().ok()?;
    if negative && value != 0 {
        return None;
    }
    Some(value)
}

/// Why an address did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddrErrorKind {
    /// No `:port` part (`"α"`).
    MissingPort,
    /// More than one `:` outside brackets (`"a:b:1"`).
    TooManyColons,
    /// A `[` without its `]` (`"[α:1"`).
    MissingBracket,
    /// A `[` where none may be.
    UnexpectedOpenBracket,
    /// A `]` where none may be.
    UnexpectedCloseBracket,
    /// The port is not a non-negative decimal number (`"α:x"`, `"α:-1"`).
    InvalidPort,
}

impl AddrErrorKind {
    /// The reason as Go's `net` package words it.
    pub fn as_str(self) -> &'static str {
        match self {
            AddrErrorKind::MissingPort => "missing port in address",
            AddrErrorKind::TooManyColons => "too many colons in address",
            AddrErrorKind::MissingBracket => "missing ']' in address",
            AddrErrorKind::UnexpectedOpenBracket => "unexpected '[' in address",
            AddrErrorKind::UnexpectedCloseBracket => "unexpected ']' in address",
            AddrErrorKind::InvalidPort => "invalid port",
        }
    }
}

/// An address that did not parse: `address <addr>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrError {
    addr: String,
    kind: AddrErrorKind,
}

impl AddrError {
    /// An error for `addr`.
    pub fn new(addr: &str, kind: AddrErrorKind) -> AddrError {
        AddrError {
            addr: addr.to_owned(),
            kind,
        }
    }

    /// The text that did not parse.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Why it did not parse.
    pub fn kind(&self) -> AddrErrorKind {
        self.kind
    }
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "address {}: {}", self.addr, self.kind.as_str())
    }
}

impl Error for AddrError {}

impl From<AddrError> for io::Error {
    fn from(e: AddrError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        let ok = [
            ("α:1", "α", 1),
            ("β:10", "β", 10),
            (":0", "", 0),
            ("[a:b]:7", "a:b", 7),
            ("[]:3", "", 3),
            ("日本語:42", "日本語", 42),
            ("h:+5", "h", 5),
            ("h:-0", "h", 0),
            ("h:4294967295", "h", u32::MAX),
        ];
        for (s, host, port) in ok {
            let a = Addr::parse("n", s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!((a.host(), a.port()), (host, port), "{s}");
        }
    }

    #[test]
    fn rejects_bad_input_with_go_texts() {
        let bad = [
            ("α", "address α: missing port in address"),
            ("", "address : missing port in address"),
            ("α:x", "address α:x: invalid port"),
            ("α:-1", "address α:-1: invalid port"),
            ("α:", "address α:: invalid port"),
            ("[α:1", "address [α:1: missing ']' in address"),
            ("a:b:1", "address a:b:1: too many colons in address"),
            ("[a]:b:1", "address [a]:b:1: too many colons in address"),
            ("[a]x:1", "address [a]x:1: missing port in address"),
            ("[a]", "address [a]: missing port in address"),
            ("a[:1", "address a[:1: unexpected '[' in address"),
            ("a]:1", "address a]:1: unexpected ']' in address"),
            ("h:4294967296", "address h:4294967296: invalid port"),
            ("h:1 ", "address h:1 : invalid port"),
        ];
        for (s, text) in bad {
            let e = Addr::parse("n", s).expect_err(s);
            assert_eq!(e.to_string(), text);
            assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn host_names_an_address_can_reach() {
        for ok in ["α", "β", "a:b", "::1", "日本語", "a b", "x.y-z"] {
            assert_eq!(check_host_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "[", "]", "a[b", "a]b", "[a", "a]", "[a:b]"] {
            let e = check_host_name(bad).expect_err(bad);
            assert_eq!(e.name(), bad);
            let io = io::Error::from(e.clone());
            assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
            assert!(io
                .to_string()
                .starts_with(&format!("invalid host name {bad:?}: ")));
        }
    }

    #[test]
    fn displays_back() {
        for s in ["α:1", "[a:b]:7", ":0", "β:4294967295"] {
            assert_eq!(Addr::parse("n", s).unwrap().to_string(), s);
        }
        assert_eq!(join_host_port("::1", "80"), "[::1]:80");
        assert_eq!(
            format!("{:?}", Addr::new("pipeX", "α", 2)),
            "Addr(pipeX α:2)"
        );
    }
}
