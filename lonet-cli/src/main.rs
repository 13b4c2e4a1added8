//! `lonet`: the lonet demo, and tools to list, inspect, listen on and dial
//! lonet networks, and to bridge real programs onto them, from the shell.

#![forbid(unsafe_code)]

mod bridge;
mod demo;
mod fault;
mod inspect;
mod networks;
mod peer;
mod signals;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use virtnet_core::VirtError;

/// lonet: virtual networks of named hosts with predictable ports, shared by
/// OS processes over loopback TCP.
#[derive(Parser, Debug)]
#[command(name = "lonet", version, about, long_about = None)]
struct Cli {
    /// Where networks live (default: $TMPDIR/lonet, or /tmp/lonet), each
    /// in a SQLite file.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,

    /// The registry the networks share: postgres://USER@HOST:PORT/DB (one
    /// database for networks on many machines) or sqlite:[DIR] (the
    /// default, as --root). Default: $LONET_REGISTRY, else SQLite files.
    // A string, parsed after clap: clap's errors repeat the value, and a
    // URL may hold a password.
    #[arg(long, global = true, value_name = "URL", conflicts_with = "root")]
    registry: Option<String>,

    /// Where this process's hosts are served (listen, dial): IP or IP:PORT
    /// to bind its OS listener to. Default: $LONET_BIND, else 127.0.0.1.
    #[arg(long, global = true, value_name = "ADDR", value_parser = lonet::parse_os_addr)]
    bind: Option<SocketAddr>,

    /// The OS address peers dial for this process's hosts when it is not
    /// the one bound (NAT, containers, --bind 0.0.0.0): IP (the port bound)
    /// or IP:PORT. Default: $LONET_ANNOUNCE, else the address bound.
    #[arg(long, global = true, value_name = "ADDR", value_parser = lonet::parse_os_addr)]
    announce: Option<SocketAddr>,

    /// Show more of what happens on stderr: -v connections and hosts, -vv
    /// everything (warnings always show; RUST_LOG, if set, decides instead).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start two processes on a fresh network, show their hosts, the
    /// predicted addresses and the bytes they exchange, then clean up.
    Demo,
    /// List the networks of the registry, with their host counts.
    Ls,
    /// List a network's hosts, their OS addresses, and whether each is
    /// alive, dead or unknown.
    Hosts {
        /// The network's name (without the "lonet" prefix).
        net: String,
    },
    /// Create HOST on NET, listen, and write what each connection sends to stdout.
    Listen {
        /// The network's name (without the "lonet" prefix); created if missing.
        net: String,
        /// The host to create in this process.
        host: String,
        /// Where to listen: ":PORT" (default ":0", the lowest free port).
        #[arg(default_value = "")]
        laddr: String,
        /// Serve one connection only, sending stdin to it (like netcat).
        #[arg(long, conflicts_with = "echo")]
        once: bool,
        /// Send each connection's bytes back to it.
        #[arg(long)]
        echo: bool,
    },
    /// Create HOST on NET and dial ADDR: stdin goes to the connection, the
    /// connection to stdout; half-closes when stdin ends, exits when the peer
    /// closes (once all of stdin is sent, unless stdin is a terminal).
    Dial {
        /// The network's name (without the "lonet" prefix).
        net: String,
        /// The host to create in this process.
        host: String,
        /// The address to dial, "host:port".
        addr: String,
    },
    /// Set, heal or list the faults of NET (partitions, unreachable links,
    /// latency, bandwidth, resets): every process of the network applies
    /// them at once. Joins nothing: no host is made.
    #[command(after_help = fault::EXAMPLES)]
    Fault(fault::FaultArgs),
    /// Put real programs on NET: expose a real server as a host's port
    /// (`expose α:5432 --to 127.0.0.1:5432`), let real clients dial in from
    /// a host (`forward 127.0.0.1:15432 --from β --to α:5432`), or several
    /// of each (--expose, --forward). Runs until SIGTERM or Ctrl-C.
    #[command(after_help = bridge::EXAMPLES)]
    Bridge(bridge::BridgeArgs),
    /// Remove a network: its directory and registry file, or its rows in a
    /// PostgreSQL registry (refused while any of its hosts is alive), or
    /// only its dead hosts.
    Rm {
        /// The network's name (without the "lonet" prefix).
        net: String,
        /// Remove the network even if hosts are alive in it.
        #[arg(long)]
        force: bool,
        /// Remove only the entries of dead hosts, keeping the network.
        #[arg(long, conflicts_with = "force")]
        dead: bool,
    },
}

/// Exit codes besides 0 (success) and 2 (bad usage, from clap).
mod exit {
    /// Any other failure.
    pub const FAILURE: u8 = 1;
    /// The named network does not exist.
    pub const NO_NETWORK: u8 = 3;
    /// The dialed host does not exist.
    pub const NO_HOST: u8 = 4;
    /// The dialed address refused the connection.
    pub const REFUSED: u8 = 6;
    /// No route to the dialed host (a fault makes it unreachable).
    pub const UNREACHABLE: u8 = 7;
    /// A fault reset the connection.
    pub const RESET: u8 = 8;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    show_events(cli.verbose);
    // Check `lonet fault`'s arguments before anything runs: a bad one is a
    // usage error (exit 2), like those clap finds.
    let command = match cli.command {
        Command::Fault(args) => match args.action.plan() {
            Ok(plan) => Run::Fault(args.net, plan),
            Err(fault::Usage(msg)) => usage_error("fault", msg),
        },
        Command::Bridge(args) => {
            let net = args.net.clone();
            match args.plan() {
                Ok(plan) => Run::Bridge(net, plan),
                Err(bridge::Usage(msg)) => usage_error("bridge", msg),
            }
        }
        other => Run::Other(other),
    };
    let registry = match cli.registry.as_deref().map(str::parse).transpose() {
        Ok(url) => url,
        Err(e) => usage_error("", format!("--registry: {e}")),
    };
    let networks = match networks::Networks::choose(cli.root, registry) {
        Ok(networks) => networks,
        Err(e) => return fail(&e),
    };
    let join = |net: &str| {
        let mut builder = networks.builder(net);
        if let Some(addr) = cli.bind {
            builder = builder.bind(addr);
        }
        if let Some(addr) = cli.announce {
            builder = builder.announce(addr);
        }
        builder
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let result = runtime.block_on(async {
        let command = match command {
            Run::Fault(net, plan) => return fault::run(&networks, &net, plan).await,
            Run::Bridge(net, plan) => return bridge::run(join(&net), plan).await,
            Run::Other(command) => command,
        };
        match command {
            Command::Fault(_) | Command::Bridge(_) => Ok(()),
            Command::Demo => demo::run(&networks).await,
            Command::Ls => inspect::ls(&networks).await,
            Command::Hosts { net } => inspect::hosts(&networks, &net).await,
            Command::Listen {
                net,
                host,
                laddr,
                once,
                echo,
            } => peer::listen(join(&net), &host, &laddr, peer::Mode::new(once, echo)).await,
            Command::Dial { net, host, addr } => {
                networks.check_exists(&net).await?;
                peer::dial(join(&net), &host, &addr).await
            }
            Command::Rm { net, force, dead } => {
                let what = match (force, dead) {
                    (_, true) => inspect::Remove::DeadHosts,
                    (true, false) => inspect::Remove::Force,
                    (false, false) => inspect::Remove::Network,
                };
                inspect::rm(&networks, &net, what).await
            }
        }
    });
    // Do not wait for a blocked stdin reader.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Says `msg` with `lonet SUB`'s usage, and exits with 2.
fn usage_error(sub: &str, msg: String) -> ! {
    let kind = clap::error::ErrorKind::ValueValidation;
    let mut cmd = Cli::command();
    cmd.build();
    match cmd.find_subcommand_mut(sub) {
        Some(sub) => sub.error(kind, msg).exit(),
        None => cmd.error(kind, msg).exit(),
    }
}

/// A command, with `lonet fault`'s and `lonet bridge`'s arguments checked.
enum Run {
    Fault(String, fault::Plan),
    Bridge(String, bridge::Plan),
    Other(Command),
}

/// Prints the libraries' `tracing` events on stderr: warnings (a peer's
/// protocol error, a handshake that timed out) always, more with `-v`.
fn show_events(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // `lonet bridge` prints its connections' events itself, without the
    // level: not twice.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},lonet::bridge=warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

fn fail(e: &io::Error) -> ExitCode {
    eprintln!("lonet: {e}");
    ExitCode::from(match VirtError::of(e) {
        Some(VirtError::ConnRefused) => exit::REFUSED,
        Some(VirtError::NoHost) => exit::NO_HOST,
        Some(VirtError::HostUnreach) => exit::UNREACHABLE,
        Some(VirtError::ConnReset) => exit::RESET,
        _ if e.kind() == io::ErrorKind::NotFound => exit::NO_NETWORK,
        _ => exit::FAILURE,
    })
}
