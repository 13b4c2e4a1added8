//! `lonet bridge`: real programs on a network, a thin layer over
//! [`lonet::bridge`]. Exposes real servers as host ports and lets real
//! clients dial in from hosts, in one process, until SIGTERM or Ctrl-C;
//! then it stops accepting, lets open connections finish for `--grace`,
//! and its hosts leave the network.
//!
//! On stderr: a `bridging …` line per listener once it listens, `ready`
//! once all do, one `bridge: …` line per bridged connection as it opens
//! and as it closes (the library's [`lonet::bridge::Event`]s), and the
//! shutdown's steps.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::signals::Interrupts;
use clap::{Args, Subcommand};
use lonet::bridge::Bridge;
use virtnet_core::SubNetwork;

/// Examples, shown by `lonet bridge --help`.
pub const EXAMPLES: &str = "\
Examples:
  lonet bridge NET expose α:5432 --to 127.0.0.1:5432
      Host α listens on port 5432 of NET; each connection it accepts
      (α:1, α:2, …) is forwarded to the real server at 127.0.0.1:5432.
  lonet bridge NET forward 127.0.0.1:15432 --from β --to α:5432
      Real clients connect to 127.0.0.1:15432 (psql -h 127.0.0.1 -p 15432);
      each connection becomes a dial from host β to α:5432 (β:1, β:2, …).
  lonet bridge NET --expose α:5432=127.0.0.1:5432 --forward 127.0.0.1:15432=β:α:5432
      Both in one process; repeat --expose and --forward for more, with or
      without one of the forms above. In one process the dial from β to α
      is an in-memory pipe: client and server are two TCP connections apart
      (three across bridge processes).
  lonet fault NET partition β α
      Faults apply to bridged traffic as to any other: psql's next query
      waits until `lonet fault NET heal`.

Bytes flow both ways with backpressure; a half-close (end of stream one way)
and a reset are passed on. Each bridged connection is a line on stderr:
  bridge: α:1 <- β:1 -> 127.0.0.1:5432
  bridge: 127.0.0.1:40112 -> β:1 -> α:1
SIGTERM or Ctrl-C: the listeners close at once, open connections may finish
for --grace, then the rest are reset and the bridge's hosts leave NET (a
second signal cuts at once).";

/// Shown by `lonet bridge NET expose --help`.
const EXPOSE_EXAMPLE: &str = "\
Example:
  lonet bridge NET expose α:5432 --to 127.0.0.1:5432
      α:5432 on NET is the PostgreSQL server at 127.0.0.1:5432: a dial from
      β to α:5432 is accepted as α:1 and connected to the server.";

/// Shown by `lonet bridge NET forward --help`.
const FORWARD_EXAMPLE: &str = "\
Example:
  lonet bridge NET forward 127.0.0.1:15432 --from β --to α:5432
  psql -h 127.0.0.1 -p 15432 -U postgres
      psql's connection to 127.0.0.1:15432 is a dial from β to α:5432 (β:1).
      Port 0 (127.0.0.1:0) takes a free port; the `bridging` line says which.";

/// `lonet bridge NET …`.
#[derive(Args, Debug)]
pub struct BridgeArgs {
    /// The network's name (without the "lonet" prefix); created if missing.
    pub net: String,
    #[command(subcommand)]
    form: Option<Form>,
    /// Exposes a real server: HOST:PORT=TO (α:5432=127.0.0.1:5432).
    /// Repeatable.
    #[arg(long = "expose", value_name = "HOST:PORT=TO", value_parser = parse_expose, global = true)]
    exposes: Vec<Expose>,
    /// Forwards an OS listener into the network: LISTEN=FROM:TO
    /// (127.0.0.1:15432=β:α:5432; a host name with ':' in brackets).
    /// Repeatable.
    #[arg(long = "forward", value_name = "LISTEN=FROM:TO", value_parser = parse_forward, global = true)]
    forwards: Vec<Forward>,
    /// How long open connections may go on after SIGTERM or Ctrl-C before
    /// they are reset.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::fault::parse_duration, global = true)]
    grace: Duration,
}

/// The two forms of a single expose or forward.
#[derive(Subcommand, Debug)]
enum Form {
    /// Exposes a real server as a host's port: HOST listens on HOST:PORT,
    /// and each connection it accepts is connected to the server TO.
    #[command(after_help = EXPOSE_EXAMPLE)]
    Expose {
        /// The host's address: HOST:PORT (α:5432). The host is made in this
        /// process.
        addr: String,
        /// The real server: IP:PORT or NAME:PORT.
        #[arg(long)]
        to: String,
    },
    /// Lets real clients dial into the network: listens on the OS address
    /// LISTEN, and makes each connection a dial from host FROM to TO.
    #[command(after_help = FORWARD_EXAMPLE)]
    Forward {
        /// The OS address to listen on: IP:PORT (port 0: a free one).
        #[arg(value_parser = lonet::parse_os_addr)]
        listen: SocketAddr,
        /// The host that dials, made in this process.
        #[arg(long)]
        from: String,
        /// The address it dials: HOST:PORT (α:5432).
        #[arg(long)]
        to: String,
    },
}

/// An expose: the host's address, and the real server's.
#[derive(Clone, Debug)]
pub struct Expose {
    addr: String,
    to: String,
}

/// A forward: the OS address, the host that dials and the address dialed.
#[derive(Clone, Debug)]
pub struct Forward {
    listen: SocketAddr,
    from: String,
    to: String,
}

/// A usage error in `lonet bridge`'s arguments: what to tell the user.
#[derive(Debug)]
pub struct Usage(pub String);

/// What to bridge: every expose and forward, and the grace.
#[derive(Debug)]
pub struct Plan {
    exposes: Vec<Expose>,
    forwards: Vec<Forward>,
    grace: Duration,
}

impl BridgeArgs {
    /// Checks that there is something to bridge.
    pub fn plan(self) -> Result<Plan, Usage> {
        let mut exposes = Vec::new();
        let mut forwards = Vec::new();
        match self.form {
            Some(Form::Expose { addr, to }) => exposes.push(Expose { addr, to }),
            Some(Form::Forward { listen, from, to }) => forwards.push(Forward { listen, from, to }),
            None => {}
        }
        exposes.extend(self.exposes);
        forwards.extend(self.forwards);
        if exposes.is_empty() && forwards.is_empty() {
            return Err(Usage(
                "nothing to bridge: give `expose HOST:PORT --to ADDR`, \
                 `forward LISTEN --from HOST --to HOST:PORT`, --expose or --forward"
                    .to_owned(),
            ));
        }
        Ok(Plan {
            exposes,
            forwards,
            grace: self.grace,
        })
    }
}

/// `HOST:PORT=TO`: the real server's address comes after the last `=`.
fn parse_expose(text: &str) -> Result<Expose, String> {
    match text.rsplit_once('=') {
        Some((addr, to)) if !addr.is_empty() && !to.is_empty() => Ok(Expose {
            addr: addr.to_owned(),
            to: to.to_owned(),
        }),
        _ => Err(format!(
            "{text:?}: want HOST:PORT=TO, such as α:5432=127.0.0.1:5432"
        )),
    }
}

/// `LISTEN=FROM:TO`: the OS address before the first `=`, then the host
/// (in brackets if its name has a `:`), then the address dialed.
fn parse_forward(text: &str) -> Result<Forward, String> {
    let usage = || format!("{text:?}: want LISTEN=FROM:TO, such as 127.0.0.1:15432=β:α:5432");
    let (listen, rest) = text.split_once('=').ok_or_else(usage)?;
    let listen = lonet::parse_os_addr(listen).map_err(|e| format!("{}: {e}", usage()))?;
    let (from, to) = match rest.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once("]:").ok_or_else(usage)?,
        None => rest.split_once(':').ok_or_else(usage)?,
    };
    if from.is_empty() || to.is_empty() {
        return Err(usage());
    }
    Ok(Forward {
        listen,
        from: from.to_owned(),
        to: to.to_owned(),
    })
}

/// Joins `network` (creating it if needed), bridges what `plan` says until
/// SIGTERM or Ctrl-C, then shuts down gracefully and leaves the network.
///
/// The bridge's own hosts are connected by local pipes: a forward to a
/// port this process also exposes is carried by two TCP connections (the
/// client's, the server's), not three.
pub async fn run(network: lonet::Builder, plan: Plan) -> io::Result<()> {
    // Signals are caught before anything is said, so that whoever waits
    // for `ready` can stop us cleanly at once.
    let mut interrupts = Interrupts::new()?;
    let subnet = network.local_pipes(true).join().await?;
    let result = serve(&subnet, plan, &mut interrupts).await;
    let closed = subnet.close().await;
    result.and(closed)
}

async fn serve(subnet: &SubNetwork, plan: Plan, interrupts: &mut Interrupts) -> io::Result<()> {
    let bridge = Bridge::with_observer(subnet, |event| eprintln!("{event}"));
    let network = subnet.network();
    let setup = async {
        for expose in &plan.exposes {
            let exposed = bridge.expose(&expose.addr, &expose.to).await?;
            eprintln!(
                "bridging {} -> {} (network {network})",
                exposed.local_addr(),
                expose.to
            );
        }
        for forward in &plan.forwards {
            let forwarded = bridge
                .forward(forward.listen, &forward.from, &forward.to)
                .await?;
            eprintln!(
                "bridging {} -> {} -> {} (network {network})",
                forwarded.local_addr(),
                forward.from,
                forward.to
            );
        }
        io::Result::Ok(())
    };
    let set_up = tokio::select! {
        set_up = setup => set_up,
        // Interrupted before anything was bridged: nothing to wait for.
        () = interrupts.recv() => return bridge.shutdown(Duration::ZERO).await,
    };
    if let Err(e) = set_up {
        let _ = bridge.shutdown(Duration::ZERO).await;
        return Err(e);
    }
    eprintln!(
        "ready: {} exposed, {} forwarded (network {network})",
        plan.exposes.len(),
        plan.forwards.len()
    );
    interrupts.recv().await;
    bridge.close_listeners().await;
    eprintln!(
        "shutting down: listeners closed, {} connection(s) open, grace {}",
        bridge.open_connections(),
        humantime::format_duration(plan.grace)
    );
    tokio::select! {
        done = bridge.shutdown(plan.grace) => done?,
        () = interrupts.recv() => {
            eprintln!("second signal: cutting open connections now");
            bridge.shutdown(Duration::ZERO).await?;
        }
    }
    eprintln!("stopped: the bridge's hosts left {network}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_and_forward_flags_parse() {
        let e = parse_expose("α:5432=127.0.0.1:5432").unwrap();
        assert_eq!(
            (e.addr.as_str(), e.to.as_str()),
            ("α:5432", "127.0.0.1:5432")
        );
        let e = parse_expose("a=b:1=localhost:80").unwrap();
        assert_eq!((e.addr.as_str(), e.to.as_str()), ("a=b:1", "localhost:80"));
        assert!(parse_expose("α:5432").is_err());
        assert!(parse_expose("=127.0.0.1:1").is_err());

        let f = parse_forward("127.0.0.1:15432=β:α:5432").unwrap();
        assert_eq!(f.listen, "127.0.0.1:15432".parse().unwrap());
        assert_eq!((f.from.as_str(), f.to.as_str()), ("β", "α:5432"));
        let f = parse_forward("[::1]:0=[a:b]:[c:d]:1").unwrap();
        assert_eq!(f.listen, "[::1]:0".parse().unwrap());
        assert_eq!((f.from.as_str(), f.to.as_str()), ("a:b", "[c:d]:1"));
        assert!(parse_forward("127.0.0.1:15432=β").is_err());
        assert!(parse_forward("127.0.0.1:15432").is_err());
        assert!(parse_forward("nowhere=β:α:1").is_err());
        assert!(parse_forward("127.0.0.1:1=:α:1").is_err());
    }
}
