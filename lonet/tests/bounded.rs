//! Every wait of the handshake has a bound: a dial to an address that
//! never answers fails at the handshake deadline, and a refused dialer that
//! keeps its connection open loses it at the deadline. One test per file's
//! process where descriptors are counted (`/proc/self/fd`), so no other
//! test's sockets disturb the count.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

mod common;

use common::{descriptors, HANG_GUARD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_end_at_the_handshake_deadline() {
    let root = tempfile::tempdir().unwrap();
    let net = lonet::Builder::new("bounded")
        .root(root.path())
        .handshake_timeout(Duration::from_millis(300))
        .join()
        .await
        .unwrap();
    let beta = net.new_host("β").await.unwrap();

    // A registry entry whose address accepts but never answers (a port
    // reused by an unrelated program): the dial fails at the deadline.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap().to_string();
    net.registry().announce("mute", &mute_addr).await.unwrap();
    let err = tokio::time::timeout(HANG_GUARD, beta.dial("mute:1"))
        .await
        .expect("the dial ends by itself")
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "dial lonetbounded β:1->mute:1: loconnect {mute_addr}: no reply to the dial request within 300ms (the handshake deadline)"
        )
    );
    drop(mute);

    // A client that sends garbage, gets its refusal and keeps the
    // connection open: the acceptor's socket closes at the deadline.
    let os_addr = net.registry().query("β").await.unwrap();
    let before = descriptors::count();
    let mut garbage = tokio::net::TcpStream::connect(&os_addr).await.unwrap();
    garbage.write_all(b"garbage\n").await.unwrap();
    let mut reply = String::new();
    let mut reader = BufReader::new(&mut garbage);
    reader.read_line(&mut reply).await.unwrap();
    assert_eq!(
        reply,
        "< lonet \"lonetbounded\" E \"protocol error: invalid dial request\"\n"
    );
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    // Only the client's own socket is left once the acceptor gave up.
    descriptors::settle_to(
        before + 1,
        "the acceptor to close the refused connection at the deadline",
    )
    .await;
    drop(garbage);
    net.close().await.unwrap();
}
