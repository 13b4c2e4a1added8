//! The dialer's side: checking the acceptor's reply line.

use std::error::Error;
use std::fmt;

use virtnet_core::quote::quote;
use virtnet_core::Addr;

use super::lines::REFUSED;
use super::request::parse_addr;
use super::scan::sscanf;

/// Go's `fmt.Sscanf` format of the reply line (`%s`: the verb is a word).
pub(super) const REPLY_FORMAT: &str = "< lonet %q %s %q\n";

/// Checks the acceptor's reply `line` to a dial of `dst` on network `network`
/// (full name), and returns the accepted connection's address (the peer's
/// address of the new connection).
///
/// The line is read as Go's `fmt.Sscanf(line, "< lonet %q %s %q\n")` reads it
/// (the verb is a space-delimited word; see [`parse_request`] for the rest).
/// Then:
/// - a verb other than `connected` or `E` is [`ReplyError::InvalidVerb`];
/// - a network other than `network` is [`ReplyError::NetworkMismatch`], for
///   `E` replies too: the spec wants the network to be the dialer's own, and
///   another network's refusal should not pass for this one's;
/// - `E "connection refused"` is [`ReplyError::Refused`], any other `E` text
///   is [`ReplyError::Remote`];
/// - `connected` needs an address that parses on `network` and whose host is
///   `dst`'s host ([`ReplyError::AcceptAddrInvalid`],
///   [`ReplyError::AcceptOtherHost`]).
///
/// [`parse_request`]: super::parse_request
///
/// ```
/// use lonet::handshake::{parse_reply, ReplyError};
/// use virtnet_core::Addr;
///
/// let dst = Addr::parse("lonetmynet", "pyhost:5").unwrap();
/// let ok = parse_reply(b"< lonet \"lonetmynet\" connected `pyhost:9`\n", "lonetmynet", &dst);
/// assert_eq!(ok.unwrap().to_string(), "pyhost:9");
///
/// let other = parse_reply(b"< lonet \"lonetmynet\" E \"some remote failure\"\n", "lonetmynet", &dst);
/// assert_eq!(other, Err(ReplyError::Remote("some remote failure".into())));
///
/// let bad = parse_reply(b"< lonet \"lonetmynet\" connected \"elsewhere:3\"\n", "lonetmynet", &dst);
/// assert_eq!(
///     bad.unwrap_err().to_string(),
///     r#"protocol error: connected, but accept address is for different host: "elsewhere""#
/// );
/// ```
pub fn parse_reply(line: &[u8], network: &str, dst: &Addr) -> Result<Addr, ReplyError> {
    let Some([net, verb, arg]) = sscanf(line, REPLY_FORMAT) else {
        return Err(ReplyError::InvalidReply(line.to_vec()));
    };
    // `%s` reads runes, so the verb is UTF-8 already.
    let verb = String::from_utf8_lossy(&verb).into_owned();
    if verb != "connected" && verb != "E" {
        return Err(ReplyError::InvalidVerb(verb));
    }
    if net != network.as_bytes() {
        return Err(ReplyError::NetworkMismatch { verb, network: net });
    }
    if verb == "E" {
        if arg == REFUSED.as_bytes() {
            return Err(ReplyError::Refused);
        }
        return Err(ReplyError::Remote(
            String::from_utf8_lossy(&arg).into_owned(),
        ));
    }
    let Some(accepted) = parse_addr(network, &arg) else {
        return Err(ReplyError::AcceptAddrInvalid(arg));
    };
    if accepted.host() != dst.host() {
        return Err(ReplyError::AcceptOtherHost(accepted.host().to_owned()));
    }
    Ok(accepted)
}

/// A reply that does not connect. Its `Display` is the reference dialer's
/// text for the same case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// The line does not parse as a reply; holds the line as read.
    /// `protocol error: invalid dial reply: "garbage\n"`.
    InvalidReply(Vec<u8>),
    /// The verb is neither `connected` nor `E`; holds the verb.
    /// `protocol error: invalid reply verb: "accepted"`.
    InvalidVerb(String),
    /// The reply names another network.
    /// `protocol error: connected, but network mismatch: "lonetother"`
    /// (with `E, but` for an `E` reply).
    NetworkMismatch {
        /// The reply's verb: `connected` or `E`.
        verb: String,
        /// The network the reply names.
        network: Vec<u8>,
    },
    /// `connected`, with an address that does not parse; holds its text.
    /// `protocol error: connected, but accept address invalid: "pyhost"`
    /// (the reference's transcripts have no such case; this text follows
    /// their style).
    AcceptAddrInvalid(Vec<u8>),
    /// `connected`, with an address on another host; holds that host.
    /// `protocol error: connected, but accept address is for different host: "elsewhere"`.
    AcceptOtherHost(String),
    /// `E "connection refused"`: nothing listens on the dialed address. The
    /// caller reports its canonical "connection refused" error.
    Refused,
    /// `E` with any other text: the acceptor's error, displayed as it is
    /// (bytes that are not UTF-8 become U+FFFD).
    Remote(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const P: &str = "protocol error";
        match self {
            ReplyError::InvalidReply(line) => write!(f, "{P}: invalid dial reply: {}", quote(line)),
            ReplyError::InvalidVerb(verb) => {
                write!(f, "{P}: invalid reply verb: {}", quote(verb.as_bytes()))
            }
            ReplyError::NetworkMismatch { verb, network } => {
                write!(f, "{P}: {verb}, but network mismatch: {}", quote(network))
            }
            ReplyError::AcceptAddrInvalid(addr) => write!(
                f,
                "{P}: connected, but accept address invalid: {}",
                quote(addr)
            ),
            ReplyError::AcceptOtherHost(host) => write!(
                f,
                "{P}: connected, but accept address is for different host: {}",
                quote(host.as_bytes())
            ),
            ReplyError::Refused => f.write_str(REFUSED),
            ReplyError::Remote(text) => f.write_str(text),
        }
    }
}

impl Error for ReplyError {}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::handshake::tests::addr;

    #[test]
    fn reply_errors() {
        let n = "lonetmynet";
        let dst = addr(n, "β:10");
        let cases: &[(&[u8], Result<&str, ReplyError>, &str)] = &[
            (
                b"< lonet \"lonetmynet\" connected \"\xce\xb2:11\"\n",
                Ok("β:11"),
                "",
            ),
            (
                b"< lonet `lonetmynet`  connected  `\xce\xb2:0`",
                Ok("β:0"),
                "",
            ),
            (
                b"< lonet \"lonetmynet\" connected \"\xce\xb2\"\n",
                Err(ReplyError::AcceptAddrInvalid("β".into())),
                r#"protocol error: connected, but accept address invalid: "β""#,
            ),
            (
                b"< lonet \"lonetmynet\" connected \"\\xff:1\"\n",
                Err(ReplyError::AcceptAddrInvalid(b"\xff:1".to_vec())),
                r#"protocol error: connected, but accept address invalid: "\xff:1""#,
            ),
            (
                b"< lonet \"lonetother\" E \"connection refused\"\n",
                Err(ReplyError::NetworkMismatch {
                    verb: "E".into(),
                    network: b"lonetother".to_vec(),
                }),
                r#"protocol error: E, but network mismatch: "lonetother""#,
            ),
            (
                b"< lonet \"lonetother\" what \"x\"\n",
                Err(ReplyError::InvalidVerb("what".into())),
                r#"protocol error: invalid reply verb: "what""#,
            ),
            (
                b"< lonet \"lonetmynet\" E\"x\" \"y\"\n",
                Err(ReplyError::InvalidVerb("E\"x\"".into())),
                r#"protocol error: invalid reply verb: "E\"x\"""#,
            ),
            (
                b"< lonet \"lonetmynet\" \xff \"y\"\n",
                Err(ReplyError::InvalidVerb("\u{fffd}".into())),
                "protocol error: invalid reply verb: \"\u{fffd}\"",
            ),
            (
                b"< lonet \"lonetmynet\" E \"\xff\"\n",
                Err(ReplyError::Remote("\u{fffd}".into())),
                "\u{fffd}",
            ),
            (
                b"< lonet \"lonetmynet\" E \"connection refused\" \n",
                Err(ReplyError::Refused),
                "connection refused",
            ),
            (
                b"< lonet \"lonetmynet\" E \"connection refused\" x\n",
                Err(ReplyError::InvalidReply(
                    b"< lonet \"lonetmynet\" E \"connection refused\" x\n".to_vec(),
                )),
                r#"protocol error: invalid dial reply: "< lonet \"lonetmynet\" E \"connection refused\" x\n""#,
            ),
            (
                b"< lonet \"lonetmynet\"\nE \"x\"\n",
                Err(ReplyError::InvalidReply(
                    b"< lonet \"lonetmynet\"\nE \"x\"\n".to_vec(),
                )),
                r#"protocol error: invalid dial reply: "< lonet \"lonetmynet\"\nE \"x\"\n""#,
            ),
        ];
        for (line, want, display) in cases {
            let got = parse_reply(line, n, &dst);
            match (got, want) {
                (Ok(a), Ok(s)) => {
                    assert_eq!(a.to_string(), *s);
                    assert_eq!(a.network(), n);
                }
                (Err(e), Err(w)) => {
                    assert_eq!(&e, w, "{line:?}");
                    assert_eq!(e.to_string(), *display);
                }
                (got, want) => panic!("{line:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
