//! Where a lonet process finds its network: the registry ([`RegistryUrl`])
//! and the OS address its hosts are served at ([`bind`](crate::Builder::bind),
//! [`announce`](crate::Builder::announce)), from code or from the
//! environment ([`ENV_REGISTRY`], [`ENV_BIND`], [`ENV_ANNOUNCE`]).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// The environment variable naming the registry when the code does not:
/// a [`RegistryUrl`] (`postgres://…` or `sqlite:[DIR]`).
pub const ENV_REGISTRY: &str = "LONET_REGISTRY";

/// The environment variable naming the address the process's OS listener
/// binds to when the code does not: `IP` or `IP:PORT` (default
/// `127.0.0.1:0`).
pub const ENV_BIND: &str = "LONET_BIND";

/// The environment variable naming the OS address peers are told to dial
/// when the code does not: `IP` (with the port bound) or `IP:PORT`
/// (default: the address bound).
pub const ENV_ANNOUNCE: &str = "LONET_ANNOUNCE";

/// Which registry a network's processes share.
///
/// Parsed from a URL ([`FromStr`]):
/// - `postgres://…` or `postgresql://…`: a PostgreSQL database
///   ([`registry_postgres`]); the URL is passed on as it is, so it takes
///   every connection parameter `tokio-postgres` knows (user, password,
///   host or socket directory, port, `connect_timeout`, `options`, …). Many
///   networks share one database; processes on several machines can share
///   a network.
/// - `sqlite:` or `sqlite:DIR`: today's default, a SQLite file per network
///   at `DIR/<network>/registry.db` (`DIR` defaults to `$TMPDIR/lonet`,
///   see [`crate::dirs`]); the file the reference Go/Python lonet uses.
///
/// ```
/// use lonet::RegistryUrl;
///
/// let url: RegistryUrl = "postgres://tester@db.example:5432/lonet".parse()?;
/// assert!(matches!(url, RegistryUrl::Postgres(_)));
/// let url: RegistryUrl = "sqlite:/tmp/nets".parse()?;
/// assert_eq!(url, RegistryUrl::Sqlite(Some("/tmp/nets".into())));
/// assert!("mysql://x".parse::<RegistryUrl>().is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryUrl {
    /// A SQLite file per network under this root (`None`: the default
    /// root).
    Sqlite(Option<PathBuf>),
    /// A PostgreSQL database at this URL.
    Postgres(String),
}

impl RegistryUrl {
    /// The registry named by [`ENV_REGISTRY`], if it is set (and not
    /// empty); an error names the variable and what is wrong.
    pub fn from_env() -> io::Result<Option<RegistryUrl>> {
        match std::env::var(ENV_REGISTRY) {
            Ok(value) if value.is_empty() => Ok(None),
            Ok(value) => value.parse().map(Some).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{ENV_REGISTRY}: {e}"))
            }),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{ENV_REGISTRY} is not valid UTF-8"),
            )),
        }
    }
}

impl FromStr for RegistryUrl {
    type Err = io::Error;

    fn from_str(url: &str) -> io::Result<RegistryUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(RegistryUrl::Postgres(url.to_owned()));
        }
        if let Some(dir) = url.strip_prefix("sqlite:") {
            return Ok(RegistryUrl::Sqlite(
                (!dir.is_empty()).then(|| PathBuf::from(dir)),
            ));
        }
        // The URL may hold a password: name only its scheme.
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "unknown registry URL scheme {scheme:?}: expected postgres://…, postgresql://… or sqlite:[DIR]"
            ),
        ))
    }
}

impl fmt::Display for RegistryUrl {
    /// The URL, with a PostgreSQL password shown as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryUrl::Sqlite(None) => f.write_str("sqlite:"),
            RegistryUrl::Sqlite(Some(dir)) => write!(f, "sqlite:{}", dir.display()),
            RegistryUrl::Postgres(url) => f.write_str(&registry_postgres::redact(url)),
        }
    }
}

impl fmt::Debug for RegistryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegistryUrl({self})")
    }
}

/// Parses `IP` or `IP:PORT` (an IPv6 address with a port in brackets); a
/// bare IP gets port 0.
pub fn parse_os_addr(s: &str) -> io::Result<SocketAddr> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 0));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{s:?} is not an IP address or IP:PORT"),
    ))
}

/// `parse_os_addr` of environment variable `var`, if it is set.
pub(crate) fn os_addr_from_env(var: &str) -> io::Result<Option<SocketAddr>> {
    match std::env::var(var) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => parse_os_addr(&value)
            .map(Some)
            .map_err(|e| io::Error::new(e.kind(), format!("{var}: {e}"))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{var} is not valid UTF-8"),
        )),
    }
}

/// The address to announce for an OS listener bound at `bound`: `announce`
/// (its port 0 meaning the bound port), or the bound address itself, which
/// must then be one peers can dial.
pub(crate) fn announced(bound: SocketAddr, announce: Option<SocketAddr>) -> io::Result<SocketAddr> {
    let addr = match announce {
        Some(a) if a.port() == 0 => SocketAddr::new(a.ip(), bound.port()),
        Some(a) => a,
        None => bound,
    };
    if addr.ip().is_unspecified() {
        let why = if announce.is_some() {
            format!("announce address {addr} is unspecified: peers cannot dial it")
        } else {
            format!(
                "bound to {addr}, which peers cannot dial: set the address to announce \
                 (Builder::announce or {ENV_ANNOUNCE})"
            )
        };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_urls() {
        assert_eq!(
            "postgresql://u:secret@h/db".parse::<RegistryUrl>().unwrap(),
            RegistryUrl::Postgres("postgresql://u:secret@h/db".into())
        );
        assert_eq!(
            "sqlite:".parse::<RegistryUrl>().unwrap(),
            RegistryUrl::Sqlite(None)
        );
        let err = "redis://u:secret@h".parse::<RegistryUrl>().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"redis\""), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = "".parse::<RegistryUrl>().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn os_addrs() {
        assert_eq!(
            parse_os_addr("198.18.0.1").unwrap(),
            "198.18.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_os_addr("[::1]:7").unwrap(),
            "[::1]:7".parse().unwrap()
        );
        assert_eq!(parse_os_addr("::1").unwrap(), "[::1]:0".parse().unwrap());
        assert!(parse_os_addr("localhost:80").is_err());
        assert!(parse_os_addr("").is_err());
    }

    #[test]
    fn announced_addresses() {
        let bound: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        let err = announced(bound, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("LONET_ANNOUNCE"), "{err}");
        assert_eq!(
            announced(bound, Some("10.0.0.5:0".parse().unwrap())).unwrap(),
            "10.0.0.5:4000".parse().unwrap()
        );
        assert_eq!(
            announced(bound, Some("10.0.0.5:80".parse().unwrap())).unwrap(),
            "10.0.0.5:80".parse().unwrap()
        );
        assert!(announced(bound, Some("0.0.0.0:1".parse().unwrap())).is_err());
        let lo: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(announced(lo, None).unwrap(), lo);
    }
}
