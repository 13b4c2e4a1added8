//! The reference's handshake transcripts (the testdata crate's
//! `interop/handshake-vectors.json`) replayed against a real lonet
//! subnetwork, in both roles: a raw TCP peer sends the reference's requests
//! to our acceptor, and plays the reference's replies to our dialer. Bytes
//! must match exactly.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use virtnet_core::SubNetwork;
use virtnet_testdata::{interop_json, text, unhex, HANDSHAKE_VECTORS};

fn vectors() -> Value {
    interop_json(HANDSHAKE_VECTORS)
}

/// Reads up to and including `\n`, or to end of stream.
async fn read_reply(s: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0];
    while s.read(&mut byte).await.unwrap() == 1 {
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    line
}

async fn join_vectors(root: &std::path::Path) -> SubNetwork {
    let v = vectors();
    let net = lonet::Builder::new(v["network_user_name"].as_str().unwrap())
        .root(root)
        .join()
        .await
        .unwrap();
    assert_eq!(net.network(), v["network"].as_str().unwrap());
    net
}

/// Our acceptor answers every request of the transcripts with the
/// reference's exact reply, and keeps serving afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptor_answers_like_the_reference() {
    let root = tempfile::tempdir().unwrap();
    let net = join_vectors(root.path()).await;
    let alpha = net.new_host("α").await.unwrap();
    let os_addr = net.registry().query("α").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    // An echo server on α:1 that reports each connection's end.
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        loop {
            let Ok(conn) = l.accept().await else { return };
            let ended_tx = ended_tx.clone();
            tokio::spawn(async move {
                let name = conn.local_addr().to_string();
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                drop((r, w));
                let _ = ended_tx.send(name);
            });
        }
    });

    let v = vectors();
    let mut open: Vec<TcpStream> = Vec::new();
    for case in v["acceptor_replies"].as_array().unwrap() {
        let name = text(case, "case");
        let mut s = TcpStream::connect(&os_addr).await.unwrap();
        s.write_all(&unhex(text(case, "request_hex")))
            .await
            .unwrap();
        let reply = read_reply(&mut s).await;
        assert_eq!(
            String::from_utf8_lossy(&reply),
            String::from_utf8_lossy(&unhex(text(case, "reply_hex"))),
            "{name}"
        );
        match case["echoed_hex"].as_str() {
            Some(echoed) => {
                s.write_all(text(case, "then_sent").as_bytes())
                    .await
                    .unwrap();
                let mut back = vec![0; echoed.len() / 2];
                s.read_exact(&mut back).await.unwrap();
                assert_eq!(back, unhex(echoed), "{name}: echo");
                open.push(s);
            }
            None => {
                let mut rest = Vec::new();
                // closed by the acceptor (a reset after an overlong line is fine)
                let _ = s.read_to_end(&mut rest).await;
                assert!(rest.is_empty(), "{name}: nothing after the error reply");
            }
        }
        // The transcripts' accepted ports show which earlier connections were
        // already closed: keep the second one open across the third.
        if name != "accepted-again-after-first-closed" {
            let closing = open.len();
            open.clear();
            for _ in 0..closing {
                ended.recv().await.unwrap();
            }
        }
    }
    // still serving: a normal dial works after all that
    let beta = net.new_host("β").await.unwrap();
    let mut c = beta.dial("α:1").await.unwrap();
    c.write_all(b"ok").await.unwrap();
    let mut buf = [0; 2];
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ok");
    server.abort();
    net.close().await.unwrap();
}

/// Our dialer sends the reference's exact request and judges each reply as
/// the reference does, with the same error texts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialer_speaks_like_the_reference() {
    let root = tempfile::tempdir().unwrap();
    let net = join_vectors(root.path()).await;
    let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap().to_string();
    net.registry().announce("pyhost", &peer_addr).await.unwrap();
    let peer = Arc::new(peer);

    let v = vectors();
    for case in v["dialer_requests"].as_array().unwrap() {
        let name = text(case, "case");
        let host = net.new_host(text(case, "dialer_host")).await.unwrap();
        let request = unhex(text(case, "request_hex"));
        let reply = text(case, "reply_sent").to_owned();
        let raw = peer.clone();
        let raw_peer = tokio::spawn(async move {
            let (mut s, _) = raw.accept().await.unwrap();
            let mut got = vec![0; request.len()];
            s.read_exact(&mut got).await.unwrap();
            s.write_all(reply.as_bytes()).await.unwrap();
            if reply.contains(" connected ") {
                s.write_all(b"hi").await.unwrap();
                return (got, request, Some(s));
            }
            (got, request, None) // closed, as the reference peer did
        });
        let result = host.dial(text(case, "dial_to")).await;
        let (got, request, _s) = raw_peer.await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&request),
            "{name}: request"
        );
        let events = case["dialer_stdout"].as_array().unwrap();
        let first: Value = serde_json::from_str(events[0].as_str().unwrap()).unwrap();
        match first["event"].as_str().unwrap() {
            "connected" => {
                let mut c = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(c.local_addr().to_string(), text(&first, "local"), "{name}");
                assert_eq!(c.peer_addr().to_string(), text(&first, "remote"), "{name}");
                let mut hi = [0; 2];
                c.read_exact(&mut hi).await.unwrap();
                assert_eq!(
                    &hi, b"hi",
                    "{name}: application bytes right after the reply"
                );
            }
            "error" => {
                let err = result.expect_err(name);
                let want = text(&first, "error").replace("127.0.0.1:PORT", &peer_addr);
                assert_eq!(err.to_string(), want, "{name}");
                let refused = first["exit"] == 6;
                assert_eq!(
                    virtnet_core::VirtError::of(&err) == Some(virtnet_core::VirtError::ConnRefused),
                    refused,
                    "{name}: canonical refusal"
                );
            }
            other => panic!("{name}: unknown event {other}"),
        }
    }
    net.close().await.unwrap();
}
