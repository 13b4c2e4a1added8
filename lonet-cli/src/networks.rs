//! Where the networks are: SQLite files under a root directory (the
//! default, `--root`), or a PostgreSQL database (`--registry postgres://…`
//! or `LONET_REGISTRY`). Every command finds a network's registry here.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lonet::RegistryUrl;
use registry_postgres::PostgresRegistry;
use registry_sqlite::SqliteRegistry;
use virtnet_core::Registry;

/// The registry every network of this invocation lives in.
pub enum Networks {
    /// A directory per network, each with a SQLite registry file.
    Files(PathBuf),
    /// One PostgreSQL database for every network.
    Postgres(String),
}

impl Networks {
    /// The registry chosen by `--registry`, else `--root`, else
    /// `LONET_REGISTRY`, else the default root.
    pub fn choose(root: Option<PathBuf>, registry: Option<RegistryUrl>) -> io::Result<Networks> {
        let url = match (registry, root) {
            (Some(url), _) => url,
            (None, Some(root)) => RegistryUrl::Sqlite(Some(root)),
            (None, None) => RegistryUrl::from_env()?.unwrap_or(RegistryUrl::Sqlite(None)),
        };
        Ok(match url {
            RegistryUrl::Sqlite(root) => {
                Networks::Files(root.unwrap_or_else(lonet::dirs::default_root))
            }
            RegistryUrl::Postgres(url) => Networks::Postgres(url),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("registry {other} is not supported by this lonet"),
                ))
            }
        })
    }

    /// The registry as a URL, for a child process's `--registry`.
    pub fn url(&self) -> RegistryUrl {
        match self {
            Networks::Files(root) => RegistryUrl::Sqlite(Some(root.clone())),
            Networks::Postgres(url) => RegistryUrl::Postgres(url.clone()),
        }
    }

    /// Settings to join network `net` in this registry.
    pub fn builder(&self, net: &str) -> lonet::Builder {
        lonet::Builder::new(net).registry_url(self.url())
    }

    /// "under DIR" or "in postgres://…" (no password), for messages.
    pub fn place(&self) -> String {
        match self {
            Networks::Files(root) => format!("under {}", root.display()),
            Networks::Postgres(url) => format!("in {}", registry_postgres::redact(url)),
        }
    }

    /// The names of the networks, sorted.
    pub async fn names(&self) -> io::Result<Vec<String>> {
        match self {
            Networks::Files(root) => file_networks(root),
            Networks::Postgres(url) => Ok(registry_postgres::networks(url).await?),
        }
    }

    /// The registry of network `net`, which must exist (NotFound if not).
    pub async fn open(&self, net: &str) -> io::Result<Arc<dyn Registry>> {
        lonet::dirs::check_name(net)?;
        match self {
            Networks::Files(root) => {
                let path = existing_registry(root, net)?;
                Ok(Arc::new(SqliteRegistry::open(&path, net).await?))
            }
            Networks::Postgres(url) => {
                self.check_in_database(url, net).await?;
                Ok(Arc::new(PostgresRegistry::connect(url, net).await?))
            }
        }
    }

    /// Checks that network `net` exists (NotFound if not).
    pub async fn check_exists(&self, net: &str) -> io::Result<()> {
        let registry = self.open(net).await?;
        let _ = registry.close().await;
        Ok(())
    }

    /// Checks that `net` names something `remove` may remove: for files, a
    /// real directory under the root (never a link or a file), which must
    /// exist (NotFound if not).
    pub fn check_removable(&self, net: &str) -> io::Result<()> {
        lonet::dirs::check_name(net)?;
        let Networks::Files(root) = self else {
            return Ok(());
        };
        let dir = root.join(net);
        let meta = std::fs::symlink_metadata(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.missing(net))))?;
        if meta.file_type().is_symlink() || !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a network directory", dir.display()),
            ));
        }
        Ok(())
    }

    /// Removes network `net` altogether: its directory, or its rows.
    pub async fn remove(&self, net: &str) -> io::Result<()> {
        self.check_removable(net)?;
        match self {
            Networks::Files(root) => {
                let dir = root.join(net);
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| io::Error::new(e.kind(), format!("remove {}: {e}", dir.display())))
            }
            Networks::Postgres(url) => {
                self.check_in_database(url, net).await?;
                let registry = PostgresRegistry::connect(url, net).await?;
                let removed = registry.remove_network().await;
                let _ = registry.close().await;
                removed?;
                Ok(())
            }
        }
    }

    /// NotFound unless the database at `url` has network `net` (hosts or
    /// fault rules of it).
    async fn check_in_database(&self, url: &str, net: &str) -> io::Result<()> {
        if registry_postgres::networks(url)
            .await?
            .iter()
            .any(|n| n == net)
        {
            Ok(())
        } else {
            Err(self.missing(net))
        }
    }

    /// The error for a network that does not exist.
    pub fn missing(&self, net: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network {net:?} {}", self.place()),
        )
    }
}

/// The network directories under `root` (links too, so `ls` can say they
/// are refused).
fn file_networks(root: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    match std::fs::read_dir(root) {
        Ok(entries) => {
            lonet::dirs::check_root(root)?;
            for entry in entries {
                let entry = entry?;
                let kind = entry.file_type()?;
                if kind.is_dir() || kind.is_symlink() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", root.display()))),
    }
    names.sort();
    Ok(names)
}

/// The registry file of an existing network, or NotFound. The root and the
/// network directory get the checks `listen` makes (a root others can
/// write to needs the sticky bit; a network directory must be a real
/// directory of ours), without creating or changing anything.
pub fn existing_registry(root: &Path, net: &str) -> io::Result<PathBuf> {
    lonet::dirs::check_name(net)?;
    let dir = root.join(net);
    let path = dir.join(lonet::dirs::REGISTRY_FILE);
    let missing = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network {net:?} under {}", root.display()),
        )
    };
    if std::fs::symlink_metadata(&dir).is_err() {
        return Err(missing());
    }
    lonet::dirs::check_root(root)?;
    lonet::dirs::check_private_dir(&dir)?;
    if !path.is_file() {
        return Err(missing());
    }
    Ok(path)
}
