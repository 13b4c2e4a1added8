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
//! The code below follows the same order: the request line ([`request_line`],
//! [`MAX_REQUEST`]) and reading one line off the OS connection
//! ([`read_line`]); the acceptor side ([`parse_request`], [`RequestError`],
//! [`connected_line`], [`error_line`]); the dialer side ([`parse_reply`],
//! [`ReplyError`]). Which host, port or listener a request names is for the
//! caller to settle: this module only speaks the lines.
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

use std::error::Error;
use std::fmt;
use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use virtnet_core::Addr;

use virtnet_core::quote::{decode_rune, quote, scan_quoted};

// ---------------------------------------------------------------------------
// The request line.

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

/// Reads one line, up to and including its `\n`, from `stream`, never
/// consuming a byte past the `\n`: application bytes may follow at once, and
/// stay in the stream for whoever reads next.
///
/// The line is at most `max` bytes, `\n` included. Instead of reading one
/// byte per system call, it peeks at what has arrived, consumes exactly the
/// line if a `\n` is there, and otherwise consumes what was peeked (none of
/// it is past the line) and waits for more.
///
/// Errors:
/// - the stream ends before `\n`: [`io::ErrorKind::UnexpectedEof`], displayed
///   `unexpected EOF` (Go's `io.ErrUnexpectedEOF`);
/// - `max` bytes came without `\n`: [`io::ErrorKind::InvalidData`] carrying a
///   [`LineTooLong`] with those bytes (they are consumed); the acceptor turns
///   it into an invalid-dial-request reply with
///   [`RequestError::from_read_error`];
/// - any error of the stream itself.
///
/// Like `read_exact`, it is not cancel-safe: dropped midway, it may have
/// consumed part of the line.
pub async fn read_line(stream: &mut TcpStream, max: usize) -> io::Result<Vec<u8>> {
    // Handshake lines are short: peek in small steps, not `max` at once.
    const STEP: usize = 256;
    let mut line = Vec::new();
    let mut buf = [0; STEP];
    loop {
        let room = max.saturating_sub(line.len()).min(STEP);
        let Some(window) = buf.get_mut(..room).filter(|w| !w.is_empty()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                LineTooLong { line, max },
            ));
        };
        let n = stream.peek(window).await?;
        let peeked = window.get(..n).unwrap_or_default();
        if peeked.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unexpected EOF",
            ));
        }
        // Bytes up to the `\n`, or all peeked bytes when there is none yet.
        let (take, done) = match peeked.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (n, false),
        };
        let start = line.len();
        line.resize(start + take, 0);
        if let Some(dest) = line.get_mut(start..) {
            // The peeked bytes are in the socket already: this does not block.
            stream.read_exact(dest).await?;
        }
        if done {
            return Ok(line);
        }
    }
}

/// The error inside the [`io::Error`] of [`read_line`] when no `\n` came
/// within the limit. It keeps the bytes that were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTooLong {
    line: Vec<u8>,
    max: usize,
}

impl LineTooLong {
    /// The bytes read (and consumed) before giving up: the first `max`.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// The limit that was exceeded.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The `LineTooLong` inside `err`, if `err` came from [`read_line`]
    /// hitting its limit.
    pub fn of(err: &io::Error) -> Option<&LineTooLong> {
        err.get_ref()?.downcast_ref()
    }
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line too long: no newline within {} bytes", self.max)
    }
}

impl Error for LineTooLong {}

// ---------------------------------------------------------------------------
// Acceptor side.

/// Go's `fmt.Sscanf` format of the request line.
const REQUEST_FORMAT: &str = "> lonet %q dial %q %q\n";

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
fn parse_addr(network: &str, text: &[u8]) -> Option<Addr> {
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
pub fn error_line(network: &str, error: &str) -> Vec<u8> {
    reply_line(network, "E", error)
}

/// The error text of a refusal, which the dialer maps to its canonical
/// "connection refused" error.
pub const REFUSED: &str = "connection refused";

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

// ---------------------------------------------------------------------------
// Dialer side.

/// Go's `fmt.Sscanf` format of the reply line (`%s`: the verb is a word).
const REPLY_FORMAT: &str = "< lonet %q %s %q\n";

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

// ---------------------------------------------------------------------------
// Go's fmt.Sscanf, as far as the two formats above use it.

/// Whether `fmt`'s scanner counts `c` as a space (its own table: ASCII
/// `\t`..`\r` and space, U+0085, U+00A0, and the Unicode spaces and
/// separators). Newline is one of them but matches only a newline.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// The input of [`sscanf`], read rune by rune as Go's scanner reads it: each
/// byte that is not valid UTF-8 is one U+FFFD.
struct Input<'a> {
    rest: &'a [u8],
    /// The runes consumed so far, for [`unread`](Self::unread).
    whole: &'a [u8],
    last: usize,
}

impl<'a> Input<'a> {
    fn new(input: &'a [u8]) -> Input<'a> {
        Input {
            rest: input,
            whole: input,
            last: 0,
        }
    }

    /// The next rune, or `None` at the end.
    fn get(&mut self) -> Option<char> {
        let (c, width) = decode_rune(self.rest);
        if width == 0 {
            self.last = 0;
            return None;
        }
        self.advance(width);
        self.last = width;
        Some(c.unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// Puts back the rune [`get`](Self::get) returned last.
    fn unread(&mut self) {
        let at = self.whole.len().saturating_sub(self.rest.len());
        let back = at.saturating_sub(self.last);
        self.rest = self.whole.get(back..).unwrap_or_default();
        self.last = 0;
    }

    fn advance(&mut self, n: usize) {
        self.rest = self.rest.get(n..).unwrap_or_default();
    }

    /// `ss.SkipSpace` of a scan that does not take newlines as space: skips
    /// spaces; a newline is an error.
    fn skip_space(&mut self) -> Option<()> {
        while let Some(c) = self.get() {
            if c == '\n' {
                return None;
            }
            if !is_space(c) {
                self.unread();
                break;
            }
        }
        Some(())
    }

    /// The `%q` verb: spaces skipped, then one quoted string.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.skip_space()?;
        let (value, rest) = scan_quoted(self.rest).ok()?;
        self.rest = rest;
        self.last = 0;
        Some(value)
    }

    /// The `%s` verb: spaces skipped, then the runes up to the next space
    /// (newline included) or the end; at least one.
    fn word(&mut self) -> Option<Vec<u8>> {
        self.skip_space()?;
        let mut word = String::new();
        while let Some(c) = self.get() {
            if is_space(c) {
                self.unread();
                break;
            }
            word.push(c);
        }
        (!word.is_empty()).then(|| word.into_bytes())
    }
}

/// Go's `fmt.Sscanf(input, format, &s1, &s2, …)` with string operands and
/// the verbs `%q` and `%s` only: the scanned values, or `None` where Go
/// returns an error. As in Go:
/// - a character of the format other than `%`, space or newline must be the
///   next input rune;
/// - a run of spaces in the format (not next to a newline) consumes as many
///   input spaces as there are, and needs at least one, or the end of the
///   input; it does not consume a newline, and fails on one;
/// - a newline in the format, with the spaces before it, consumes input
///   spaces then a newline or the end of the input; spaces after it in the
///   format consume any spaces after that newline;
/// - each verb first skips spaces, and fails on a newline or at the end;
/// - the input after the format is done is not looked at.
///
/// `N` is the number of operands, which the format's verbs must match.
fn sscanf<const N: usize>(input: &[u8], format: &str) -> Option<[Vec<u8>; N]> {
    let mut input = Input::new(input);
    let mut values = Vec::new();
    let mut format = format.chars().peekable();
    while let Some(f) = format.next() {
        if is_space(f) {
            let mut newlines = 0;
            let mut trailing_space;
            let mut f = f;
            loop {
                if f == '\n' {
                    newlines += 1;
                    trailing_space = false;
                } else {
                    trailing_space = true;
                }
                match format.next_if(|&c| is_space(c)) {
                    Some(next) => f = next,
                    None => break,
                }
            }
            for _ in 0..newlines {
                let mut c = input.get();
                while c.is_some_and(|c| is_space(c) && c != '\n') {
                    c = input.get();
                }
                if !matches!(c, Some('\n') | None) {
                    return None;
                }
            }
            if trailing_space {
                let mut c = input.get();
                if newlines == 0 {
                    // A lone run of spaces needs a space, or the end.
                    if c.is_some_and(|c| !is_space(c) || c == '\n') {
                        return None;
                    }
                }
                while c.is_some_and(|c| is_space(c) && c != '\n') {
                    c = input.get();
                }
                if c.is_some() {
                    input.unread();
                }
            }
            continue;
        }
        if f == '%' {
            let value = match format.next()? {
                'q' => input.quoted()?,
                's' => input.word()?,
                _ => return None,
            };
            values.push(value);
            continue;
        }
        if input.get()? != f {
            return None;
        }
    }
    values.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use serde_json::Value;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;
    use virtnet_testdata::{interop_json, text, unhex, Rng, HANDSHAKE_VECTORS, QUOTE_VECTORS};

    fn cases<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
        v[key].as_array().unwrap_or_else(|| panic!("{key} missing"))
    }

    fn addr(network: &str, s: &str) -> Addr {
        Addr::parse(network, s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// A connected pair of loopback TCP streams: (dialer's, acceptor's).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let at = listener.local_addr().expect("local addr");
        let (dialed, accepted) = tokio::join!(TcpStream::connect(at), listener.accept());
        (dialed.expect("connect"), accepted.expect("accept").0)
    }

    /// Every guard on a test that talks TCP: no test hangs.
    async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("test timed out")
    }

    #[test]
    fn sscanf_dial_vectors() {
        let all = interop_json(QUOTE_VECTORS);
        let vectors = cases(&all, "sscanf_dial");
        assert!(vectors.len() >= 11);
        for case in vectors {
            let line = text(case, "line").as_bytes();
            let got = sscanf::<3>(line, REQUEST_FORMAT);
            let via_parse = parse_request(line, "lonetmynet");
            if case["ok"] == Value::Bool(true) {
                let want = ["network", "src", "dst"].map(|k| text(case, k).as_bytes().to_vec());
                assert_eq!(got, Some(want), "{line:?}");
                let (src, dst) = via_parse.unwrap_or_else(|e| panic!("{line:?}: {e}"));
                assert_eq!(src.to_string(), text(case, "src"));
                assert_eq!(dst.to_string(), text(case, "dst"));
                assert_eq!((src.network(), dst.network()), ("lonetmynet", "lonetmynet"));
            } else {
                assert_eq!(case["ok"], Value::Bool(false), "{case}");
                assert_eq!(got, None, "{line:?}");
                assert_eq!(
                    via_parse,
                    Err(RequestError::InvalidRequest(line.to_vec())),
                    "{line:?}"
                );
            }
        }
    }

    /// What the acceptor of `network` makes of one request: the reply line,
    /// and for a refused request its error. Requests that parse get the reply
    /// a running network gives in the vectors (that part is not the
    /// handshake's; the test plays it from the vectors' case names).
    fn accept(request: &[u8], network: &str, case: &str) -> (Vec<u8>, Option<RequestError>) {
        match parse_request(request, network) {
            Err(e) => (e.reply_line(network), Some(e)),
            Ok((src, dst)) => {
                let want: (&str, &str, &str) = match case {
                    "accepted" => ("py:1", "α:1", "α:2"),
                    "accepted-again-after-first-closed" => ("py:2", "α:1", "α:2"),
                    "accepted-escaped-forms" => ("py:3", "α:1", "α:3"),
                    "accepted-raw-backquotes" => ("py:4", "α:1", "α:2"),
                    "refused-not-listening" => ("py:1", "α:7", ""),
                    "refused-port-zero" => ("py:1", "α:0", ""),
                    "dst-host-not-here" => ("py:1", "γ:1", ""),
                    other => panic!("{other}: parsed as {src:?} -> {dst:?}"),
                };
                assert_eq!(
                    (src.to_string(), dst.to_string()),
                    (want.0.into(), want.1.into())
                );
                assert_eq!((src.network(), dst.network()), (network, network));
                let reply = if case.starts_with("accepted") {
                    connected_line(network, &addr(network, want.2))
                } else if case.starts_with("refused") {
                    error_line(network, REFUSED)
                } else {
                    error_line(network, &format!("address {dst}: no such host"))
                };
                (reply, None)
            }
        }
    }

    #[test]
    fn acceptor_replies_like_the_reference() {
        let all = interop_json(HANDSHAKE_VECTORS);
        let network = text(&all, "network");
        assert_eq!(network, "lonetvectors");
        let vectors = cases(&all, "acceptor_replies");
        assert_eq!(vectors.len(), 15);
        let mut logs = Vec::new();
        for case in vectors {
            let name = text(case, "case");
            let request = unhex(text(case, "request_hex"));
            assert_eq!(request, text(case, "request").as_bytes(), "{name}");
            let want = unhex(text(case, "reply_hex"));
            assert_eq!(want, text(case, "reply").as_bytes(), "{name}");
            // The acceptor parses what read_line gives it: an over-long line
            // never reaches parse_request (its \n is past the limit).
            let line = match request.get(..MAX_REQUEST) {
                Some(head) if !head.contains(&b'\n') => {
                    let err = RequestError::InvalidRequest(head.to_vec());
                    (err.reply_line(network), Some(err))
                }
                _ => accept(&request, network, name),
            };
            assert_eq!(
                line.0,
                want,
                "{name}: {:?}",
                String::from_utf8_lossy(&line.0)
            );
            if let Some(err) = line.1 {
                logs.push(err.to_string());
            }
        }
        // The reference's log lines, less the refusals and the host lookup
        // that are not the handshake's.
        let want_logs: Vec<String> = cases(&all, "acceptor_stderr_log")
            .iter()
            .map(|l| {
                let l = l.as_str().expect("log line");
                let (_, text) = l.split_once("loaccept: ").expect("loaccept prefix");
                text.to_owned()
            })
            .filter(|l| l.starts_with("protocol error"))
            .collect();
        assert_eq!(want_logs.len(), 8);
        assert_eq!(logs, want_logs);
    }

    #[tokio::test]
    async fn acceptor_replies_over_tcp() {
        let all = interop_json(HANDSHAKE_VECTORS);
        let network = text(&all, "network").to_owned();
        for case in cases(&all, "acceptor_replies") {
            let name = text(case, "case").to_owned();
            let request = unhex(text(case, "request_hex"));
            let want = unhex(text(case, "reply_hex"));
            let then = case["then_sent"].as_str().unwrap_or("").as_bytes().to_vec();
            let (mut dialer, mut acceptor) = within(pair()).await;
            // The dialer sends the request and, at once, its first bytes.
            let mut sent = request.clone();
            sent.extend_from_slice(&then);
            dialer.write_all(&sent).await.expect("write");
            let reply = match within(read_line(&mut acceptor, MAX_REQUEST)).await {
                Ok(line) => {
                    assert_eq!(line, request, "{name}");
                    accept(&line, &network, &name).0
                }
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{name}");
                    let err = RequestError::from_read_error(&e).expect("over-long");
                    assert_eq!(err, RequestError::InvalidRequest(request[..1024].to_vec()));
                    err.reply_line(&network)
                }
            };
            assert_eq!(reply, want, "{name}");
            if !then.is_empty() {
                // The application's bytes are still there, after the line.
                let mut got = vec![0; then.len()];
                within(acceptor.read_exact(&mut got))
                    .await
                    .expect("app bytes");
                assert_eq!(got, unhex(text(case, "echoed_hex")), "{name}");
            }
        }
    }

    /// What the reference dialer made of each reply, from its report: `Ok`
    /// with the remote address, or `Err` with its error text after the
    /// `loconnect 127.0.0.1:PORT: ` prefix.
    fn dialer_outcome(case: &Value) -> Result<String, String> {
        let first = cases(case, "dialer_stdout")[0]
            .as_str()
            .expect("stdout line");
        let event: Value = serde_json::from_str(first).expect("event json");
        if event["event"] == "connected" {
            return Ok(text(&event, "remote").to_owned());
        }
        let stderr = text(case, "dialer_stderr");
        if event["cause"] == REFUSED {
            assert!(stderr.ends_with(": connection refused"), "{stderr}");
            return Err(REFUSED.to_owned());
        }
        let (_, tail) = stderr
            .split_once("loconnect 127.0.0.1:PORT: ")
            .expect("loconnect prefix");
        Err(tail.to_owned())
    }

    #[test]
    fn dialer_requests_like_the_reference() {
        let all = interop_json(HANDSHAKE_VECTORS);
        let network = text(&all, "network");
        let vectors = cases(&all, "dialer_requests");
        assert_eq!(vectors.len(), 9);
        for case in vectors {
            let name = text(case, "case");
            let src = Addr::new(network, text(case, "dialer_host"), 1);
            let dst = addr(network, text(case, "dial_to"));
            let request = request_line(network, &src, &dst);
            assert_eq!(request, unhex(text(case, "request_hex")), "{name}");
            assert_eq!(request, text(case, "request").as_bytes(), "{name}");
            let reply = text(case, "reply_sent").as_bytes();
            if reply.is_empty() {
                assert_eq!(name, "dial-reply-eof");
                continue; // read_line's end-of-stream case: dialer_over_tcp
            }
            let got = parse_reply(reply, network, &dst);
            match (&got, dialer_outcome(case)) {
                (Ok(a), Ok(remote)) => {
                    assert_eq!(a.to_string(), remote, "{name}");
                    assert_eq!((a.network(), a.host()), (network, dst.host()), "{name}");
                }
                (Err(e), Err(text)) => assert_eq!(e.to_string(), text, "{name}"),
                (got, want) => panic!("{name}: got {got:?}, reference {want:?}"),
            }
            match name {
                "dial-refused" => assert_eq!(got, Err(ReplyError::Refused)),
                "dial-other-error" => {
                    assert_eq!(got, Err(ReplyError::Remote("some remote failure".into())))
                }
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn dialer_over_tcp() {
        let all = interop_json(HANDSHAKE_VECTORS);
        let network = text(&all, "network").to_owned();
        for case in cases(&all, "dialer_requests") {
            let name = text(case, "case");
            let src = Addr::new(network.as_str(), text(case, "dialer_host"), 1);
            let dst = addr(&network, text(case, "dial_to"));
            let reply = text(case, "reply_sent").as_bytes().to_vec();
            let (mut dialer, mut acceptor) = within(pair()).await;
            let request = request_line(&network, &src, &dst);
            dialer.write_all(&request).await.expect("write request");
            let line = within(read_line(&mut acceptor, MAX_REQUEST)).await;
            assert_eq!(line.expect("request"), request, "{name}");
            // The peer replies (and, when connected, says "hi"), then closes.
            let mut sent = reply.clone();
            if reply.starts_with(b"< lonet \"lonetvectors\" connected") {
                sent.extend_from_slice(b"hi");
            }
            acceptor.write_all(&sent).await.expect("write reply");
            drop(acceptor);
            let outcome = match within(read_line(&mut dialer, MAX_REQUEST)).await {
                Ok(line) => {
                    assert_eq!(line, reply, "{name}");
                    parse_reply(&line, &network, &dst)
                        .map(|a| a.to_string())
                        .map_err(|e| e.to_string())
                }
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{name}");
                    Err(e.to_string())
                }
            };
            assert_eq!(outcome, dialer_outcome(case), "{name}");
            if outcome.is_ok() {
                let mut rest = Vec::new();
                within(dialer.read_to_end(&mut rest)).await.expect("hi");
                assert_eq!(rest, b"hi", "{name}");
            }
        }
    }

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

    /// Results of Go 1.19.8's `fmt.Sscanf` with the two formats, beyond the
    /// vectors: `Some` values where Go returned no error.
    #[test]
    fn sscanf_like_go() {
        type Case = (&'static [u8], Option<[&'static [u8]; 3]>);
        let dial: &[Case] = &[
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\r\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\" \t \n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\nextra",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\n\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (b"> lonet \"n\" dial \"a:1\" \"b:2\" x", None),
            (
                b">\tlonet\t\"n\"\tdial\t\"a:1\"\t\"b:2\"\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b">\xc2\xa0lonet\xe3\x80\x80\"n\"\xe2\x80\x80dial\xc2\x85\"a:1\"\x0b\"b:2\"\x0c\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\xe2\x80\xa8\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (b"> lonet \"n\"dial \"a:1\" \"b:2\"\n", None),
            (b">lonet \"n\" dial \"a:1\" \"b:2\"\n", None),
            (b" > lonet \"n\" dial \"a:1\" \"b:2\"\n", None),
            (b"> lonet \"n\" dial \"a:1\"\"b:2\"\n", None),
            (b"> lonet \"n\" dial\n\"a:1\" \"b:2\"\n", None),
            (b"> lonet \"n\" dial \"a:1\" \n\"b:2\"\n", None),
            (
                b"> lonet \"n\" dial `a\n1` \"b:2\"\n",
                Some([b"n", b"a\n1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a\\n1\" \"b:2\"\n",
                Some([b"n", b"a\n1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial `a\r:1` \"b:2\"\n",
                Some([b"n", b"a\r:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial `\xff:1` \"b:2\"\n",
                Some([b"n", b"\xef\xbf\xbd:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"\xff:1\" \"b:2\"\n",
                Some([b"n", b"\xef\xbf\xbd:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"\\xff:1\" \"b:2\"\n",
                Some([b"n", b"\xff:1", b"b:2"]),
            ),
            (b"> lonet \"n\" dial \"a:1\" \"b:2\n", None),
            (b"> lonet \"n\" dial \"a:1\" `b:2\n", None),
            (b"> lonet \"n\" dial \"a:1\" 'b'\n", None),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\r",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\r\r\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (b"> lonet \xff\"n\" dial \"a:1\" \"b:2\"\n", None),
            (b"> lonet \"n\" dial \"a:1\" \"b:2\"\xff\n", None),
            (b"> lonet \"\" dial \"\" \"\"\n", Some([b"", b"", b""])),
            (b"> lonet `` dial `` ``", Some([b"", b"", b""])),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\" ",
                Some([b"n", b"a:1", b"b:2"]),
            ),
        ];
        for (line, want) in dial {
            let want = want.map(|v| v.map(<[u8]>::to_vec));
            assert_eq!(sscanf(line, REQUEST_FORMAT), want, "{line:?}");
        }
        let reply: &[Case] = &[
            (
                b"< lonet \"n\" connected \"b:3\"\n",
                Some([b"n", b"connected", b"b:3"]),
            ),
            (
                b"< lonet \"n\" E \"connection refused\"\n",
                Some([b"n", b"E", b"connection refused"]),
            ),
            (
                b"< lonet \"n\" E\"x\" \"y\"\n",
                Some([b"n", b"E\"x\"", b"y"]),
            ),
            (
                b"< lonet \"n\" E\xff \"y\"\n",
                Some([b"n", b"E\xef\xbf\xbd", b"y"]),
            ),
            (
                b"< lonet \"n\" \xce\xb1 \"y\"\n",
                Some([b"n", b"\xce\xb1", b"y"]),
            ),
            (b"< lonet \"n\"connected \"b:3\"\n", None),
            (b"< lonet \"n\" connected\"b:3\"\n", None),
            (
                b"< lonet \"n\"  connected \t \"b:3\"\n",
                Some([b"n", b"connected", b"b:3"]),
            ),
            (
                b"< lonet \"n\"\xc2\xa0connected\xc2\xa0\"b:3\"\n",
                Some([b"n", b"connected", b"b:3"]),
            ),
            (b"< lonet \"n\" connected\n\"b:3\"\n", None),
            (b"< lonet \"n\" connected \"b:3\" extra\n", None),
            (
                b"< lonet \"n\" connected \"b:3\"\n\nextra",
                Some([b"n", b"connected", b"b:3"]),
            ),
            (b"< lonet \"n\" connected", None),
            (b"< lonet \"n\" connected ", None),
            (
                b"< lonet \"n\" \"connected\" \"b:3\"\n",
                Some([b"n", b"\"connected\"", b"b:3"]),
            ),
            (b"< lonet \"n\" `E` \"x\"\n", Some([b"n", b"`E`", b"x"])),
            (
                b"< lonet \"n\" E `multi\nline`\n",
                Some([b"n", b"E", b"multi\nline"]),
            ),
            (b"garbage\n", None),
            (b"", None),
        ];
        for (line, want) in reply {
            let want = want.map(|v| v.map(<[u8]>::to_vec));
            assert_eq!(sscanf(line, REPLY_FORMAT), want, "{line:?}");
        }
    }

    #[tokio::test]
    async fn read_line_stops_at_newline() {
        // A request split over two writes, then application bytes at once.
        let (mut dialer, mut acceptor) = within(pair()).await;
        let reader = tokio::spawn(async move {
            let line = read_line(&mut acceptor, MAX_REQUEST).await;
            let mut app = [0; 5];
            acceptor.read_exact(&mut app).await.expect("app bytes");
            (line, app)
        });
        dialer
            .write_all(b"> lonet \"n\" dial")
            .await
            .expect("write");
        dialer.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(50)).await;
        dialer
            .write_all(b" \"a:1\" \"b:2\"\nhello")
            .await
            .expect("write");
        let (line, app) = within(reader).await.expect("reader");
        assert_eq!(line.expect("line"), b"> lonet \"n\" dial \"a:1\" \"b:2\"\n");
        assert_eq!(&app, b"hello");
    }

    #[tokio::test]
    async fn read_line_one_byte_at_a_time_and_back_to_back_lines() {
        let (mut dialer, mut acceptor) = within(pair()).await;
        let writer = tokio::spawn(async move {
            for &b in b"ab\n" {
                dialer.write_all(&[b]).await.expect("write");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            dialer.write_all(b"\nc\nd").await.expect("write");
            dialer
        });
        assert_eq!(
            within(read_line(&mut acceptor, 8)).await.expect("1"),
            b"ab\n"
        );
        assert_eq!(within(read_line(&mut acceptor, 8)).await.expect("2"), b"\n");
        assert_eq!(
            within(read_line(&mut acceptor, 8)).await.expect("3"),
            b"c\n"
        );
        let dialer = within(writer).await.expect("writer");
        drop(dialer);
        let eof = within(read_line(&mut acceptor, 8)).await.expect_err("eof");
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(eof.to_string(), "unexpected EOF");
    }

    #[tokio::test]
    async fn read_line_limits() {
        // Exactly MAX_REQUEST bytes with the newline: fine.
        let (mut dialer, mut acceptor) = within(pair()).await;
        let mut line = vec![b'a'; MAX_REQUEST - 1];
        line.push(b'\n');
        dialer.write_all(&line).await.expect("write");
        dialer.write_all(b"after").await.expect("write");
        assert_eq!(
            within(read_line(&mut acceptor, MAX_REQUEST))
                .await
                .expect("fits"),
            line
        );

        // One more byte: over-long, and the first MAX_REQUEST bytes are kept,
        // also when they arrive in pieces.
        let (mut dialer, mut acceptor) = within(pair()).await;
        let writer = tokio::spawn(async move {
            for chunk in [&[b'x'; 600][..], &[b'y'; 424][..], b"z\n"] {
                dialer.write_all(chunk).await.expect("write");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            dialer
        });
        let err = within(read_line(&mut acceptor, MAX_REQUEST))
            .await
            .expect_err("too long");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let too_long = LineTooLong::of(&err).expect("LineTooLong");
        assert_eq!(too_long.max(), MAX_REQUEST);
        assert_eq!(too_long.line().len(), MAX_REQUEST);
        assert!(too_long.line().starts_with(&[b'x'; 600]));
        assert!(too_long.line().ends_with(&[b'y'; 424]));
        let req = RequestError::from_read_error(&err).expect("request error");
        assert_eq!(req, RequestError::InvalidRequest(too_long.line().to_vec()));
        assert_eq!(
            req.reply_line("lonetvectors"),
            b"< lonet \"lonetvectors\" E \"protocol error: invalid dial request\"\n"
        );
        // Nothing past the limit was consumed.
        let mut rest = [0; 2];
        within(acceptor.read_exact(&mut rest)).await.expect("rest");
        assert_eq!(&rest, b"z\n");
        drop(within(writer).await);

        // A zero limit takes nothing.
        let (mut dialer, mut acceptor) = within(pair()).await;
        dialer.write_all(b"\n").await.expect("write");
        let err = within(read_line(&mut acceptor, 0)).await.expect_err("zero");
        assert_eq!(LineTooLong::of(&err).map(LineTooLong::line), Some(&b""[..]));
        assert!(RequestError::from_read_error(&io::Error::other("x")).is_none());
    }

    #[tokio::test]
    async fn read_line_eof_mid_line() {
        let (mut dialer, mut acceptor) = within(pair()).await;
        dialer.write_all(b"> lonet \"n\" di").await.expect("write");
        drop(dialer);
        let err = within(read_line(&mut acceptor, MAX_REQUEST))
            .await
            .expect_err("eof");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(err.to_string(), "unexpected EOF");
        assert!(RequestError::from_read_error(&err).is_none());
    }

    fn check_no_panic(line: &[u8]) {
        let dst = Addr::new("n", "b", 2);
        let _ = parse_request(line, "n").map_err(|e| (e.to_string(), e.reply_line("n")));
        let _ = parse_reply(line, "n", &dst).map_err(|e| e.to_string());
    }

    #[test]
    fn short_lines_never_panic() {
        check_no_panic(b"");
        for a in 0..=255u8 {
            check_no_panic(&[a]);
            for b in 0..=255u8 {
                check_no_panic(&[a, b]);
            }
        }
    }

    #[test]
    fn mutated_lines_never_panic() {
        let good: &[&[u8]] = &[
            b"> lonet \"n\" dial \"a:1\" \"b:2\"\n",
            b"< lonet \"n\" connected \"b:3\"\n",
            b"< lonet \"n\" E \"connection refused\"\n",
            b"> lonet `n` dial `a:1` `b:2`",
        ];
        let bytes = b" \t\n\r\"`'\\xuU0:>< \xff\xce\xb1\xc2\xa0E";
        for line in good {
            check_no_panic(line);
            for i in 0..=line.len() {
                for &b in bytes {
                    let mut l = line.to_vec();
                    l.insert(i, b);
                    check_no_panic(&l);
                    if i < line.len() {
                        l.remove(i);
                        l[i] = b;
                        check_no_panic(&l);
                        l.remove(i);
                        check_no_panic(&l);
                    }
                }
                check_no_panic(&line[..i]);
            }
        }
        let pieces: &[&[u8]] = &[
            b"> lonet ",
            b"< lonet ",
            b"dial ",
            b"connected ",
            b"E ",
            b"\"n\"",
            b"`n`",
            b"\"a:1\"",
            b"\"b:2\"",
            b" ",
            b"\t",
            b"\n",
            b"\r",
            b"\"",
            b"`",
            b"\\",
            b"\xff",
            "\u{a0}".as_bytes(),
            b"\"\\u03b1:1\"",
            b"x",
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let mut line = Vec::new();
            for _ in 0..rng.below(12) {
                line.extend_from_slice(pieces[rng.below(pieces.len())]);
            }
            check_no_panic(&line);
        }
    }
}
