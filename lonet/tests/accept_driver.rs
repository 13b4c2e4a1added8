//! A task waiting in `accept` takes OS connections in itself (the accept
//! driver); these check that nothing is lost or stalled: what it cannot
//! finish and what it stops watching go to the serve loop.
//!
//! They run on a current-thread runtime, where the order is fixed: once the
//! test's accept has polled the OS listener, it alone hears of arrivals.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use virtnet_core::{Addr, Host, SubNetwork, VirtError};

/// A guard against hangs only: no assertion depends on it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A handshake deadline no test run comes near.
const LONG: Duration = Duration::from_secs(60);

/// A fresh network `name` in a directory of its own (keep it alive), with
/// hosts α and β.
async fn alpha_beta(name: &str, handshake: Duration) -> (TempDir, SubNetwork, Host, Host) {
    let root = tempfile::tempdir().unwrap();
    let net = lonet::Builder::new(name)
        .root(root.path())
        .handshake_timeout(handshake)
        .join()
        .await
        .unwrap();
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    (root, net, alpha, beta)
}

/// Polls `f` once.
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
}

/// Dials `addr` from `from` and checks it is refused.
async fn assert_refused(from: &Host, addr: &str) {
    let refused = tokio::time::timeout(HANG_GUARD, from.dial(addr))
        .await
        .expect("answered")
        .unwrap_err();
    assert_eq!(VirtError::of(&refused), Some(VirtError::ConnRefused));
}

/// Reads one line from `peer`.
async fn read_line(peer: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0; 1];
    while !line.ends_with(b"\n") {
        let n = tokio::time::timeout(HANG_GUARD, peer.read(&mut byte))
            .await
            .expect("a reply")
            .unwrap();
        assert_eq!(n, 1, "closed before the end of the line: {line:?}");
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

/// A connection whose request line comes after it is taken off the OS
/// listener by a waiting accept goes to the serve loop, which reads the line
/// later: the accept then gets it.
#[tokio::test(flavor = "current_thread")]
async fn a_late_request_line_is_read_by_the_serve_loop() {
    let (_root, net, alpha, _beta) = alpha_beta("late", LONG).await;
    let l = alpha.listen(":1").await.unwrap();
    let os_addr = net.registry().query("α").await.unwrap();

    let mut accept = Box::pin(l.accept());
    assert!(poll_once(&mut accept).await.is_pending());
    let mut peer = TcpStream::connect(&os_addr).await.unwrap();
    // the accept takes the connection in, finds no line, hands it over
    assert!(poll_once(&mut accept).await.is_pending());

    let (src, dst) = (
        Addr::new("lonetlate", "β", 7),
        Addr::new("lonetlate", "α", 1),
    );
    peer.write_all(&lonet::handshake::request_line("lonetlate", &src, &dst))
        .await
        .unwrap();
    let conn = tokio::time::timeout(HANG_GUARD, accept)
        .await
        .expect("accepted")
        .unwrap();
    assert_eq!(conn.peer_addr().to_string(), "β:7");
    assert_eq!(conn.local_addr().to_string(), "α:2");
    assert_eq!(
        read_line(&mut peer).await,
        "< lonet \"lonetlate\" connected \"α:2\"\n"
    );
    net.close().await.unwrap();
}

/// After an accept polled the OS listener and was dropped, the serve loop
/// watches again (woken by the dropped driver, or else by its next check):
/// a dial to a port nobody listens on is refused though no accept is
/// pending anywhere.
#[tokio::test(flavor = "current_thread")]
async fn after_a_dropped_accept_the_serve_loop_answers() {
    let (_root, net, alpha, beta) = alpha_beta("rewatch", LONG).await;
    let l = alpha.listen(":1").await.unwrap();

    let mut accept = Box::pin(l.accept());
    assert!(poll_once(&mut accept).await.is_pending());
    drop(accept);

    assert_refused(&beta, "α:99").await;
    // and a dial to the listener waits in its queue for the next accept
    let (c, s) = tokio::join!(beta.dial("α:1"), l.accept());
    assert_eq!(c.unwrap().peer_addr(), s.unwrap().local_addr());
    net.close().await.unwrap();
}

/// An accept that is kept but not polled loses the watch at the serve
/// loop's next check: the same task's dial to another port is answered, not
/// stuck behind it.
#[tokio::test(flavor = "current_thread")]
async fn an_accept_left_unpolled_does_not_hold_up_other_dials() {
    let (_root, net, alpha, beta) = alpha_beta("unpolled", LONG).await;
    let l1 = alpha.listen(":1").await.unwrap();
    let l2 = alpha.listen(":2").await.unwrap();

    let mut accept = Box::pin(l1.accept());
    assert!(poll_once(&mut accept).await.is_pending());
    assert_refused(&beta, "α:99").await;
    let (c, s) = tokio::time::timeout(HANG_GUARD, async {
        tokio::join!(beta.dial("α:2"), l2.accept())
    })
    .await
    .expect("answered");
    assert_eq!(c.unwrap().peer_addr(), s.unwrap().local_addr());
    // the kept accept still gets its own connection
    let (c, s) = tokio::join!(beta.dial("α:1"), &mut accept);
    assert_eq!(c.unwrap().peer_addr(), s.unwrap().local_addr());
    net.close().await.unwrap();
}

/// While an accept waits in a task of its own (and so takes arrivals in),
/// every arrival of the subnetwork is answered: a refusal, a bad request, a
/// dial to another listener, and its own.
#[tokio::test(flavor = "current_thread")]
async fn a_waiting_accept_answers_every_arrival() {
    let (_root, net, alpha, beta) = alpha_beta("answers", LONG).await;
    let l1 = alpha.listen(":1").await.unwrap();
    let l2 = alpha.listen(":2").await.unwrap();
    let os_addr = net.registry().query("α").await.unwrap();
    let accept = tokio::spawn(async move { (l1.accept().await, l1) });
    tokio::task::yield_now().await;

    assert_refused(&beta, "α:99").await;

    let mut bad = TcpStream::connect(&os_addr).await.unwrap();
    bad.write_all(b"hello\n").await.unwrap();
    assert_eq!(
        read_line(&mut bad).await,
        "< lonet \"lonetanswers\" E \"protocol error: invalid dial request\"\n"
    );

    let (c, s) = tokio::join!(beta.dial("α:2"), l2.accept());
    let (c, s) = (c.unwrap(), s.unwrap());
    assert_eq!(c.peer_addr(), s.local_addr());
    assert_eq!(s.local_addr().to_string(), "α:3");

    let c = beta.dial("α:1").await.unwrap();
    let (s, _l1) = accept.await.unwrap();
    assert_eq!(c.peer_addr(), s.unwrap().local_addr());
    assert_eq!(c.peer_addr().to_string(), "α:4");
    net.close().await.unwrap();
}

/// A silent peer taken in by a waiting accept is dropped at the handshake
/// deadline; the accept goes on waiting and then accepts a real dial.
#[tokio::test(flavor = "current_thread")]
async fn a_silent_peer_is_dropped_at_the_deadline() {
    let (_root, net, alpha, beta) = alpha_beta("deadline", Duration::from_millis(300)).await;
    let l = alpha.listen(":1").await.unwrap();
    let os_addr = net.registry().query("α").await.unwrap();

    let mut accept = Box::pin(l.accept());
    assert!(poll_once(&mut accept).await.is_pending());
    let mut silent = TcpStream::connect(&os_addr).await.unwrap();
    let mut buf = [0; 64];
    tokio::select! {
        read = tokio::time::timeout(HANG_GUARD, silent.read(&mut buf)) => {
            let n = read.expect("dropped at the deadline").unwrap_or(0);
            assert_eq!(n, 0, "no reply, just closed: {:?}", &buf[..n]);
        }
        _ = &mut accept => panic!("nothing to accept"),
    }
    let (c, s) = tokio::join!(beta.dial("α:1"), &mut accept);
    assert_eq!(c.unwrap().peer_addr(), s.unwrap().local_addr());
    net.close().await.unwrap();
}
