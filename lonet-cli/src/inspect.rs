//! `lonet ls`, `lonet hosts`, `lonet rm`: looking at networks and their
//! hosts, in either kind of registry.

use std::io;
use std::time::Duration;

use lonet::Liveness;

use crate::networks::Networks;

/// How long `hosts` and `rm` wait for a host's OS address to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Prints every network with its host count.
pub async fn ls(networks: &Networks) -> io::Result<()> {
    let names = networks.names().await?;
    println!("NETWORK\tHOSTS");
    for name in names {
        let registry = match networks.open(&name).await {
            Ok(registry) => registry,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                println!("{name}\trefused: {e}");
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                println!("{name}\t-");
                continue;
            }
            Err(e) => {
                println!("{name}\terror: {e}");
                continue;
            }
        };
        let count = registry.list().await.map(|hosts| hosts.len().to_string());
        let _ = registry.close().await;
        let count = count.unwrap_or_else(|e| format!("error: {e}"));
        println!("{name}\t{count}");
    }
    Ok(())
}

/// Prints the hosts of network `net`, their OS addresses, and whether each
/// is alive, dead or unknown (the probe `new_host` uses to take over the
/// names of dead hosts).
pub async fn hosts(networks: &Networks, net: &str) -> io::Result<()> {
    let hosts = probed_hosts(networks, net).await?;
    println!("HOST\tOS ADDRESS\tSTATUS");
    for (host, os_addr, liveness) in hosts {
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
async fn probed_hosts(
    networks: &Networks,
    net: &str,
) -> io::Result<Vec<(String, String, Liveness)>> {
    let registry = networks.open(net).await?;
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

/// Removes network `net` (its directory, or its rows in the database), or
/// only its dead hosts.
pub async fn rm(networks: &Networks, net: &str, what: Remove) -> io::Result<()> {
    networks.check_removable(net)?;
    match what {
        Remove::DeadHosts => return rm_dead(networks, net).await,
        Remove::Network => {
            let alive: Vec<String> = match probed_hosts(networks, net).await {
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
    networks.remove(net).await?;
    eprintln!("removed network {net}");
    Ok(())
}

/// Removes the registry entries of `net`'s dead hosts (each only if it
/// still holds the dead address).
async fn rm_dead(networks: &Networks, net: &str) -> io::Result<()> {
    let dead: Vec<(String, String)> = probed_hosts(networks, net)
        .await?
        .into_iter()
        .filter(|(_, _, l)| *l == Liveness::Dead)
        .map(|(host, os_addr, _)| (host, os_addr))
        .collect();
    let registry = networks.open(net).await?;
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
