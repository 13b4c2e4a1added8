//! The handshake against the reference's vectors (the testdata crate's
//! `interop/`), in memory and over loopback TCP, and its parsers against
//! arbitrary lines. Tests of one part alone sit in that part's file.

use super::*;

use std::io;
use std::time::Duration;

use super::request::REQUEST_FORMAT;
use super::scan::sscanf;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use virtnet_core::Addr;
use virtnet_testdata::{interop_json, text, unhex, Rng, HANDSHAKE_VECTORS, QUOTE_VECTORS};

fn cases<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key].as_array().unwrap_or_else(|| panic!("{key} missing"))
}

pub(super) fn addr(network: &str, s: &str) -> Addr {
    Addr::parse(network, s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A connected pair of loopback TCP streams: (dialer's, acceptor's).
pub(super) async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let at = listener.local_addr().expect("local addr");
    let (dialed, accepted) = tokio::join!(TcpStream::connect(at), listener.accept());
    (dialed.expect("connect"), accepted.expect("accept").0)
}

/// Every guard on a test that talks TCP: no test hangs.
pub(super) async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
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
