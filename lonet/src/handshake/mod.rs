//! The lonet handshake: one request line from the dialer, one reply line from
//! the acceptor, then the OS connection is the application's.
//!
//! The protocol, as `lonet-wire.md` ("Handshake") states it:
//!
//! > The dialer on host α, wanting `β:portβ`, queries the registry for β,
//! > opens an OS TCP connection to β's `osladdr` and writes one line:
//! >
//! > ```text
//! > > lonet "<network>" dial "<α:portα>" "<β:portβ>"\n
//! > ```
//! >
//! > `<network>` is the *full* name (`lonetmynet`). `α:portα` is the dialer's
//! > freshly allocated source address.
//! >
//! > The acceptor reads one line, at most 1024 bytes including `\n`, and
//! > answers one line. On success it allocates the accepted connection's port
//! > on β and replies
//! >
//! > ```text
//! > < lonet "<network>" connected "<β:portβ'>"\n
//! > ```
//! >
//! > after which the OS connection carries the application's bytes directly,
//! > in both directions. On failure it replies
//! >
//! > ```text
//! > < lonet "<network>" E "<error>"\n
//! > ```
//! >
//! > and closes. Error texts the reference sends:
//! > - `connection refused` — nothing listens on `β:portβ` (the dialer maps
//! >   this one text back to its canonical "connection refused" error);
//! > - `protocol error: invalid dial request` — the line does not parse;
//! > - `protocol error: network mismatch` — another network's dial;
//! > - `protocol error: src address invalid`, `protocol error: dst address invalid`;
//! > - `address β:portβ: no such host` — β is not a host of this subnetwork.
//! >
//! > The dialer checks the reply: the verb must be `connected` or `E`; the
//! > network must be its own; the accepted address must parse and be on the
//! > host it dialed. Anything else is a protocol error and the OS connection
//! > is closed.
//!
//! Every `"…"` is Go's `%q` ([`crate::quote`]). The reference parses the
//! request with Go's `fmt.Sscanf(line, "> lonet %q dial %q %q\n", …)` and the
//! reply with `fmt.Sscanf(line, "< lonet %q %s %q\n", …)`; this module reads
//! both exactly as those calls do (see [`parse_request`] and [`parse_reply`]),
//! so it takes back-quoted strings, any Go escape and runs of spaces.
//!
//! The module's files:
//! - `lines.rs` builds the lines ([`request_line`], [`connected_line`],
//!   [`error_line`]) and holds their limit and texts ([`MAX_REQUEST`],
//!   [`REFUSED`]);
//! - `read.rs` reads one line off the OS connection ([`read_line`],
//!   [`LineTooLong`]);
//! - `request.rs` is the acceptor's side: it reads a request
//!   ([`parse_request`], [`RequestError`]);
//! - `reply.rs` is the dialer's side: it checks the reply ([`parse_reply`],
//!   [`ReplyError`]);
//! - `scan.rs` is Go's `fmt.Sscanf`, as far as the two formats use it;
//! - `tests.rs` replays the reference's handshake and quote vectors.
//!
//! Which host, port or listener a request names is for the caller to
//! settle: this module only speaks the lines.
//!
//! ```
//! use lonet::handshake::{
//!     connected_line, parse_reply, parse_request, request_line, ReplyError,
//! };
//! use virtnet_core::Addr;
//!
//! let net = "lonetmynet";
//! let src = Addr::parse(net, "α:1").unwrap();
//! let dst = Addr::parse(net, "β:10").unwrap();
//!
//! // The dialer writes its request.
//! let request = request_line(net, &src, &dst);
//! assert_eq!(request, "> lonet \"lonetmynet\" dial \"α:1\" \"β:10\"\n".as_bytes());
//!
//! // The acceptor reads it and answers.
//! let (from, to) = parse_request(&request, net).unwrap();
//! assert_eq!((from, to.clone()), (src, dst.clone()));
//! let reply = connected_line(net, &to.with_port(11));
//! assert_eq!(reply, "< lonet \"lonetmynet\" connected \"β:11\"\n".as_bytes());
//!
//! // The dialer checks the reply.
//! assert_eq!(parse_reply(&reply, net, &dst).unwrap().to_string(), "β:11");
//!
//! // Failures, on both sides.
//! let err = parse_request(b"hello\n", net).unwrap_err();
//! assert_eq!(err.reply_text(), "protocol error: invalid dial request");
//! assert_eq!(err.to_string(), r#"protocol error: invalid dial request: "hello\n""#);
//! assert_eq!(
//!     err.reply_line(net),
//!     b"< lonet \"lonetmynet\" E \"protocol error: invalid dial request\"\n"
//! );
//! let refused = b"< lonet \"lonetmynet\" E \"connection refused\"\n";
//! assert_eq!(parse_reply(refused, net, &dst), Err(ReplyError::Refused));
//! ```

mod lines;
mod read;
mod reply;
mod request;
mod scan;
#[cfg(test)]
mod tests;

pub use lines::{
    connected_line, error_line, request_line, MAX_REQUEST, REFUSED, SHAPES, SHAPES_HOST,
};
pub use read::{read_line, LineTooLong};
pub use reply::{parse_reply, ReplyError};
pub use request::{parse_request, RequestError};
