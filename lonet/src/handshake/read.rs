//! Reading one handshake line off the OS connection, and never a byte more.

use std::error::Error;
use std::fmt;
use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

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
///
/// [`RequestError::from_read_error`]: super::RequestError::from_read_error
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use crate::handshake::tests::{pair, within};
    use crate::handshake::{RequestError, MAX_REQUEST};

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
}
