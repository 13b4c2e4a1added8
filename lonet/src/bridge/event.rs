//! What a bridge tells about its connections: [`Event`]s, whose `Display`
//! is the line it logs.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use virtnet_core::Addr;

/// Something that happened to a bridged connection. Its `Display` is the
/// line the bridge logs (with `tracing`, at info level) and `lonet bridge`
/// prints:
///
/// ```text
/// bridge: α:1 <- β:1 -> 127.0.0.1:5432                       (an expose)
/// bridge: 127.0.0.1:40112 -> β:1 -> α:1                      (a forward)
/// bridge: α:1 <- β:1 -> 127.0.0.1:5432: closed (120 bytes in, 540 out)
/// bridge: 127.0.0.1:40112 -> β:1 -> α:1: reset by 127.0.0.1:40112 (0 bytes in, 0 out)
/// bridge: 127.0.0.1:40114 -> β -> α:5432: dial lonetmynet β:2->α:5432: connection refused
/// ```
///
/// "In" is from the OS side into the network, "out" the other way.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A connection is bridged: both of its sides are connected and bytes
    /// flow.
    Opened {
        /// The connection.
        route: Route,
    },
    /// A bridged connection ended; both of its sides are closed.
    Closed {
        /// The connection.
        route: Route,
        /// How it ended.
        end: End,
        /// Bytes from the OS side into the network.
        inward: u64,
        /// Bytes from the network out to the OS side.
        outward: u64,
    },
    /// A connection could not be bridged: the real server refused (or
    /// could not be reached by) an exposed port's connection, or a
    /// forward's dial failed (no such host, refused, unreachable). The
    /// side that did connect was reset.
    Failed {
        /// Where the connection came from: `α:1 <- β:1` (an expose), or
        /// `127.0.0.1:40114 -> β` (a forward).
        from: String,
        /// Where it was going: the real server (an expose), or the address
        /// dialed (a forward).
        to: String,
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error.
        error: String,
    },
}

/// A bridged connection: its two sides.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// Accepted on an exposed port and connected to the real server.
    Exposed {
        /// The accepted connection's address on the exposed host (`α:1`).
        local: Addr,
        /// The dialer's address (`β:1`).
        peer: Addr,
        /// The real server's OS address.
        server: SocketAddr,
    },
    /// Accepted from an OS client by a forward and dialed into the network.
    Forwarded {
        /// The OS client's address.
        client: SocketAddr,
        /// The dialed connection's address on the forward's host (`β:1`).
        local: Addr,
        /// The accepted end's address (`α:1`).
        peer: Addr,
    },
}

impl Route {
    /// The address of `side`: the lonet peer, or the OS peer.
    pub fn side(&self, side: Side) -> String {
        match (self, side) {
            (Route::Exposed { peer, .. } | Route::Forwarded { peer, .. }, Side::Network) => {
                peer.to_string()
            }
            (Route::Exposed { server, .. }, Side::Os) => server.to_string(),
            (Route::Forwarded { client, .. }, Side::Os) => client.to_string(),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Exposed {
                local,
                peer,
                server,
            } => write!(f, "{local} <- {peer} -> {server}"),
            Route::Forwarded {
                client,
                local,
                peer,
            } => write!(f, "{client} -> {local} -> {peer}"),
        }
    }
}

/// One side of a bridged connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The lonet connection (the network's side).
    Network,
    /// The OS connection (the real program's side).
    Os,
}

/// How a bridged connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// Both directions reached end of stream, each passed on as a
    /// half-close; both sides closed normally.
    Closed,
    /// `by` reset the connection; the other side was reset too.
    Reset {
        /// The side that reset.
        by: Side,
    },
    /// Reading or writing `side` failed otherwise (its host closed, a
    /// broken pipe); the other side was reset.
    Failed {
        /// The side that failed.
        side: Side,
        /// The error.
        error: String,
    },
    /// The bridge shut down (its grace ran out) or was dropped while the
    /// connection was open: both sides were reset.
    Cut,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Opened { route } => write!(f, "bridge: {route}"),
            Event::Closed {
                route,
                end,
                inward,
                outward,
            } => {
                write!(f, "bridge: {route}: ")?;
                match end {
                    End::Closed => write!(f, "closed")?,
                    End::Reset { by } => write!(f, "reset by {}", route.side(*by))?,
                    End::Failed { side, error } => {
                        let other = match side {
                            Side::Network => Side::Os,
                            Side::Os => Side::Network,
                        };
                        write!(
                            f,
                            "{} failed: {error}; reset {}",
                            route.side(*side),
                            route.side(other)
                        )?
                    }
                    End::Cut => write!(f, "cut by the bridge's shutdown, both sides reset")?,
                }
                write!(f, " ({inward} bytes in, {outward} out)")
            }
            Event::Failed {
                from, to, error, ..
            } => write!(f, "bridge: {from} -> {to}: {error}"),
        }
    }
}
