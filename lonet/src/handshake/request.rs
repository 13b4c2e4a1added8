//! The acceptor's side: reading the dialer's request line.

use std::error::Error;
use std::fmt;
use std::io;

use virtnet_core::quote::quote;
use virtnet_core::Addr;

use super::lines::error_line;
use super::read::LineTooLong;
use super::scan::sscanf;

/// Go's `fmt.Sscanf` format of the request line.
pub(super) const REQUEST_FORMAT: &str = "> lonet %q dial %q %q\n";

/// Parses a dial request, as the acceptor of network `network` (its full
/// name) does, and returns the dialer's address and the dialed one, both on
/// `network`.
///
/// The line is read as Go's `fmt.Sscanf(line, "> lonet %q dial %q %q\n")`
/// reads it: the words must be there; each space in the format takes one or
/// more of `fmt`'s spaces (space, tab, `\r`, `\v`, `\f`, U+00A0, U+3000, …;
/// never a newline) or the end of the line, so `"n"dial` does not parse;
/// each `%q` skips such spaces, then takes a double-quoted string with any
/// Go escape or a back-quoted raw string; the final `\n` takes optional
/// spaces, then a newline or the end of the line (text after that newline
/// is ignored, as Go ignores it). Then, in the reference's order, the network
/// must be `network`, and the source and destination must parse as
/// addresses ([`Addr::parse`]; bytes that are not UTF-8 do not).
///
/// ```
/// use lonet::handshake::{parse_request, RequestError};
///
/// let line = b"> lonet `lonetmynet` dial \"\\u03b2:1\"  \"\xce\xb1:10\"\n";
/// let (src, dst) = parse_request(line, "lonetmynet").unwrap();
/// assert_eq!((src.to_string(), dst.to_string()), ("β:1".into(), "α:10".into()));
///
/// let err = parse_request(line, "lonetother").unwrap_err();
/// assert_eq!(err, RequestError::NetworkMismatch(b"lonetmynet".to_vec()));
/// assert_eq!(err.to_string(), r#"protocol error: network mismatch: "lonetmynet""#);
/// ```
pub fn parse_request(line: &[u8], network: &str) -> Result<(Addr, Addr), RequestError> {
    let Some([net, src, dst]) = sscanf(line, REQUEST_FORMAT) else {
        return Err(RequestError::InvalidRequest(line.to_vec()));
    };
    if net != network.as_bytes() {
        return Err(RequestError::NetworkMismatch(net));
    }
    let Some(src_addr) = parse_addr(network, &src) else {
        return Err(RequestError::SrcInvalid(src));
    };
    let Some(dst_addr) = parse_addr(network, &dst) else {
        return Err(RequestError::DstInvalid(dst));
    };
    Ok((src_addr, dst_addr))
}

/// `text` as an address on `network`, if it is UTF-8 and parses.
pub(super) fn parse_addr(network: &str, text: &[u8]) -> Option<Addr> {
    let text = std::str::from_utf8(text).ok()?;
    Addr::parse(network, text).ok()
}

/// A dial request the acceptor refuses before looking at its hosts.
///
/// Two texts: [`reply_text`](Self::reply_text) is what goes on the wire in the
/// `E` reply; `Display` is the reference acceptor's log text, which adds the
/// offending string, Go-quoted:
/// `protocol error: invalid dial request: "hello\n"`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The line does not parse as a dial request, or has no `\n` within
    /// [`MAX_REQUEST`] bytes. Holds the line as read (for an over-long one,
    /// its first [`MAX_REQUEST`] bytes).
    ///
    /// [`MAX_REQUEST`]: super::MAX_REQUEST
    InvalidRequest(Vec<u8>),
    /// The request is for another network; holds the network it names.
    NetworkMismatch(Vec<u8>),
    /// The source address does not parse; holds its text.
    SrcInvalid(Vec<u8>),
    /// The destination address does not parse; holds its text.
    DstInvalid(Vec<u8>),
}

impl RequestError {
    /// The error text the acceptor sends in its `E` reply, as the reference
    /// words it (`protocol error: invalid dial request`, …).
    pub fn reply_text(&self) -> &'static str {
        match self {
            RequestError::InvalidRequest(_) => "protocol error: invalid dial request",
            RequestError::NetworkMismatch(_) => "protocol error: network mismatch",
            RequestError::SrcInvalid(_) => "protocol error: src address invalid",
            RequestError::DstInvalid(_) => "protocol error: dst address invalid",
        }
    }

    /// The whole reply line for this error from the acceptor of `network`:
    /// [`error_line`]`(network, self.reply_text())`.
    pub fn reply_line(&self, network: &str) -> Vec<u8> {
        error_line(network, self.reply_text())
    }

    /// The invalid-dial-request error for an over-long request line, if
    /// `err` is [`read_line`]'s [`LineTooLong`] error; `None` for any other
    /// error (end of stream, I/O failure), which gets no reply.
    ///
    /// [`read_line`]: super::read_line
    pub fn from_read_error(err: &io::Error) -> Option<RequestError> {
        LineTooLong::of(err).map(|e| RequestError::InvalidRequest(e.line().to_vec()))
    }

    /// The offending text the error holds.
    fn subject(&self) -> &[u8] {
        match self {
            RequestError::InvalidRequest(s)
            | RequestError::NetworkMismatch(s)
            | RequestError::SrcInvalid(s)
            | RequestError::DstInvalid(s) => s,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reply_text(), quote(self.subject()))
    }
}

impl Error for RequestError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_name_the_offending_text() {
        let n = "lonetvectors";
        let cases: &[(&[u8], RequestError, &str)] = &[
            (
                b"> lonet \"lonetvectors\" dial \"\\xff:1\" \"a:1\"\n",
                RequestError::SrcInvalid(b"\xff:1".to_vec()),
                r#"protocol error: src address invalid: "\xff:1""#,
            ),
            (
                b"> lonet \"lonetvectors\" dial \"a:1\" \"\\xce:1\"\n",
                RequestError::DstInvalid(b"\xce:1".to_vec()),
                r#"protocol error: dst address invalid: "\xce:1""#,
            ),
            (
                b"> lonet \"lonetvectors\" dial \"a\" \"b\"\n",
                RequestError::SrcInvalid(b"a".to_vec()),
                r#"protocol error: src address invalid: "a""#,
            ),
            (
                b"> lonet \"\" dial \"a\" \"b\"\n",
                RequestError::NetworkMismatch(Vec::new()),
                r#"protocol error: network mismatch: """#,
            ),
            (
                b"> lonet \"lonetvectors\" dial \"a:1\" \"[b:2\"\n",
                RequestError::DstInvalid(b"[b:2".to_vec()),
                r#"protocol error: dst address invalid: "[b:2""#,
            ),
            (
                b"> lonet \"lonetvectors\" dial \"a:1\" \"b:2\"\r\n",
                RequestError::InvalidRequest(Vec::new()),
                "",
            ),
        ];
        for (line, want, display) in cases {
            let got = parse_request(line, n);
            if display.is_empty() {
                // `\r\n` is as good as `\n`.
                let (src, dst) = got.expect("crlf");
                assert_eq!(
                    (src.to_string(), dst.to_string()),
                    ("a:1".into(), "b:2".into())
                );
                continue;
            }
            let err = got.expect_err(display);
            assert_eq!(&err, want);
            assert_eq!(err.to_string(), *display);
            assert_eq!(err.reply_line(n), error_line(n, err.reply_text()));
        }
        let ok = parse_request(b"> lonet \"n\" dial \"[a:b]:1\" \"h:+5\"\n", "n").expect("ok");
        assert_eq!((ok.0.host(), ok.0.port(), ok.1.port()), ("a:b", 1, 5));
    }
}
