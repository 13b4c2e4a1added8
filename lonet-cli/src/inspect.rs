//! `lonet ls`, `lonet hosts`, `lonet rm`: looking at networks on disk.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lonet::Liveness;
use registry_sqlite::SqliteRegistry;
use virtnet_core::Registry;

/// How long `hosts` and `rm` wait for a host's OS address to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The registry file of an existing network, or NotFound. The root and the
/// network directory get the checks `listen` makes (a root others can
/// write to needs the sticky bit; a network directory must be a real
/// directory of ours), without creating or changing anything.
pub(crate) fn existing_registry(root: &Path, net: &str) -> io::Result<PathBuf> {
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

/// Prints the hosts of network `net`, their OS addresses, and whether each
/// is alive, dead or unknown (the probe `new_host` uses to take over the
/// names of dead hosts).
pub async fn hosts(root: &Path, net: &str) -> io::Result<()> {
    println!("HOST\tOS ADDRESS\tSTATUS");
    for (host, os_addr, liveness) in probed_hosts(root, net).await? {
        let status = match liveness {
            Liveness::Alive => "alive".to_owned(),
            Liveness::Dead => "dead".to_owned(),
            Liveness::Unknown(why) => format!("unknown ({why})"),
            other => format!("{other:?}"),
        };
        println!("{host}\t{os_addr}\t{status}");
    }
    Ok(())
}

/// Every host of network `net`, sorted, with its OS address and liveness.
async fn probed_hosts(root: &Path, net: &str) -> io::Result<Vec<(String, String, Liveness)>> {
    let path = existing_registry(root, net)?;
    let registry = SqliteRegistry::open(&path, net).await?;
    let listed = registry.list().await;
    let _ = registry.close().await;
    let mut hosts = listed?;
    hosts.sort();
    let network = format!("lonet{net}");
    let mut probed = Vec::with_capacity(hosts.len());
    for (host, os_addr) in hosts {
        let liveness = lonet::probe(&network, &host, &os_addr, PROBE_TIMEOUT).await;
        probed.push((host, os_addr, liveness));
    }
    Ok(probed)
}

/// What `rm` removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remove {
    /// The whole network, if none of its hosts is alive.
    Network,
    /// The whole network, live hosts or not.
    Force,
    /// Only the entries of dead hosts; the network stays.
    DeadHosts,
}

/// Removes network `net`'s directory, or only its dead hosts.
pub async fn rm(root: &Path, net: &str, what: Remove) -> io::Result<()> {
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
    match what {
        Remove::DeadHosts => return rm_dead(root, net).await,
        Remove::Network => {
            let alive: Vec<String> = match probed_hosts(root, net).await {
                Ok(hosts) => hosts
                    .into_iter()
                    .filter(|(_, _, l)| *l != Liveness::Dead)
                    .map(|(host, _, _)| host)
                    .collect(),
                // No registry (a half-made network): nothing can be alive.
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            if !alive.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "network {net} has hosts that are alive or may be ({}): stop them first, \
                         remove only the dead hosts with --dead, or remove it anyway with --force",
                        alive.join(", ")
                    ),
                ));
            }
        }
        Remove::Force => {}
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("remove {}: {e}", dir.display())))?;
    eprintln!("removed network {net}");
    Ok(())
}

/// Removes the registry entries of `net`'s dead hosts (each only if it
/// still holds the dead address).
async fn rm_dead(root: &Path, net: &str) -> io::Result<()> {
    let dead: Vec<(String, String)> = probed_hosts(root, net)
        .await?
        .into_iter()
        .filter(|(_, _, l)| *l == Liveness::Dead)
        .map(|(host, os_addr, _)| (host, os_addr))
        .collect();
    let registry = SqliteRegistry::open(existing_registry(root, net)?, net).await?;
    let mut result = Ok(());
    for (host, os_addr) in dead {
        match registry.unannounce(&host, &os_addr).await {
            Ok(true) => eprintln!("removed dead host {host} ({os_addr})"),
            Ok(false) => {}
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
    }
    let _ = registry.close().await;
    result
}
