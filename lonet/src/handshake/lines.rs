//! Building the handshake's lines: the dialer's request, the acceptor's
//! replies, and the limit and texts that go with them.

use virtnet_core::quote::quote;
use virtnet_core::Addr;

/// The longest request line an acceptor reads, `\n` included.
pub const MAX_REQUEST: usize = 1024;

/// The request line the dialer writes:
/// `> lonet "<network>" dial "<src>" "<dst>"\n`.
///
/// `network` is the full network name (`lonetmynet`); `src` is the dialer's
/// address, `dst` the one it dials. Strings are quoted with
/// [`quote`].
pub fn request_line(network: &str, src: &Addr, dst: &Addr) -> Vec<u8> {
    let src = src.to_string();
    let dst = dst.to_string();
    let mut line = Vec::with_capacity(32 + network.len() + src.len() + dst.len());
    line.extend_from_slice(b"> lonet ");
    line.extend_from_slice(quote(network.as_bytes()).as_bytes());
    line.extend_from_slice(b" dial ");
    line.extend_from_slice(quote(src.as_bytes()).as_bytes());
    line.push(b' ');
    line.extend_from_slice(quote(dst.as_bytes()).as_bytes());
    line.push(b'\n');
    line
}

/// The acceptor's success reply: `< lonet "<network>" connected "<addr>"\n`,
/// where `accepted` is the accepted connection's address on the dialed host.
pub fn connected_line(network: &str, accepted: &Addr) -> Vec<u8> {
    reply_line(network, "connected", &accepted.to_string())
}

/// The acceptor's failure reply: `< lonet "<network>" E "<error>"\n`.
///
/// `error` is one of the texts of the protocol: `connection refused` (see
/// [`REFUSED`]), a [`RequestError::reply_text`], or
/// `address <addr>: no such host`.
///
/// [`RequestError::reply_text`]: super::RequestError::reply_text
pub fn error_line(network: &str, error: &str) -> Vec<u8> {
    reply_line(network, "E", error)
}

/// The error text of a refusal, which the dialer maps to its canonical
/// "connection refused" error.
pub const REFUSED: &str = "connection refused";

/// The host a dial asks for to learn whether the process it reaches shapes
/// what it receives by the network's faults ([`crate::peer_shapes`]): no
/// real host is named so. A Rust acceptor answers [`SHAPES`] (in an `E`
/// reply); a reference acceptor, which does not shape, answers that it has
/// no such host, as to any unknown host. Nothing new is on the wire: the
/// request is an ordinary dial of an unknown host, port 0.
pub const SHAPES_HOST: &str = "virtnet\0shapes";

/// A Rust acceptor's answer to a dial of [`SHAPES_HOST`].
pub const SHAPES: &str = "virtnet: this process shapes what it receives";

fn reply_line(network: &str, verb: &str, arg: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(16 + network.len() + verb.len() + arg.len());
    line.extend_from_slice(b"< lonet ");
    line.extend_from_slice(quote(network.as_bytes()).as_bytes());
    line.push(b' ');
    line.extend_from_slice(verb.as_bytes());
    line.push(b' ');
    line.extend_from_slice(quote(arg.as_bytes()).as_bytes());
    line.push(b'\n');
    line
}
