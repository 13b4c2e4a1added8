//! `lonet ls`, `lonet hosts`, `lonet rm`: looking at networks on disk.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use registry_sqlite::SqliteRegistry;
use virtnet_core::Registry;

/// How long `hosts` waits for a host's OS address to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The registry file of an existing network, or NotFound. The root and the
/// network directory get the checks `listen` makes (a root others can
/// write to needs the sticky bit; a network directory must be a real
/// directory of ours), without creating or changing anything.
fn existing_registry(root: &Path, net: &str) -> io::Result<PathBuf> {
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

/// Prints every network under `root` with its host count.
pub async fn ls(root: &Path) -> io::Result<()> {
    let mut names = Vec::new();
    match std::fs::read_dir(root) {
        Ok(entries) => {
            lonet::dirs::check_root(root)?;
            for entry in entries {
                let entry = entry?;
                // A link is listed too, to say it is refused.
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
    println!("NETWORK\tHOSTS");
    for name in names {
        let path = match existing_registry(root, &name) {
            Ok(path) => path,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                println!("{name}\trefused: {e}");
                continue;
            }
            Err(_) => {
                println!("{name}\t-");
                continue;
            }
        };
        let count = match SqliteRegistry::open(&path, &name).await {
            Ok(registry) => {
                let n = registry.list().await.map(|hosts| hosts.len().to_string());
                let _ = registry.close().await;
                n.unwrap_or_else(|e| format!("error: {e}"))
            }
            Err(e) => format!("error: {e}"),
        };
        println!("{name}\t{count}");
    }
    Ok(())
}

/// Prints the hosts of network `net`, their OS addresses, and whether each answers.
pub async fn hosts(root: &Path, net: &str) -> io::Result<()> {
    let path = existing_registry(root, net)?;
    let registry = SqliteRegistry::open(&path, net).await?;
    let mut hosts = registry.list().await?;
    let _ = registry.close().await;
    hosts.sort();
    println!("HOST\tOS ADDRESS\tSTATUS");
    for (host, os_addr) in hosts {
        let status = match tokio::time::timeout(
            PROBE_TIMEOUT,
            tokio::net::TcpStream::connect(os_addr.as_str()),
        )
        .await
        {
            Ok(Ok(_)) => "answers".to_owned(),
            Ok(Err(e)) => format!("does not answer ({e})"),
            Err(_) => "does not answer (timed out)".to_owned(),
        };
        println!("{host}\t{os_addr}\t{status}");
    }
    Ok(())
}

/// Removes network `net`'s directory.
pub fn rm(root: &Path, net: &str) -> io::Result<()> {
    lonet::dirs::check_name(net)?;
    let dir = root.join(net);
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("no network {net:?} under {}: {e}", root.display()),
        )
    })?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a network directory", dir.display()),
        ));
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("remove {}: {e}", dir.display())))?;
    eprintln!("removed network {net}");
    Ok(())
}
