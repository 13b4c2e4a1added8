//! The network scenarios. Each takes a [`Fixture`] holding a fresh
//! subnetwork, creates hosts `α` and `β` on it, and asserts exact addresses,
//! error kinds and error texts. They panic on the first broken rule.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::sync::Arc;

use futures::{poll, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::trace::Trace;
use virtnet_core::{Conn, Host, Listener, Networker, RegistryCause, VirtError};

use crate::Fixture;

/// More than any transport buffers (pipenet's pipe, a loopback TCP pair), so
/// writing it without a reader blocks.
const BLOCKING_WRITE: usize = 64 << 20;

async fn hosts(fx: &Fixture) -> (Host, Host) {
    let a = fx.net.new_host("α").await.expect("new host α");
    let b = fx.net.new_host("β").await.expect("new host β");
    (a, b)
}

/// Dials `addr` from `from` while `l` accepts; returns (client, server).
pub async fn connect(from: &Host, addr: &str, l: &Listener) -> (Conn, Conn) {
    let (c, s) = tokio::join!(from.dial(addr), l.accept());
    (c.expect("dial"), s.expect("accept"))
}

/// Asserts that `r` failed with canonical cause `cause` and exactly `text`.
#[track_caller]
pub fn assert_fails<T: Debug>(r: io::Result<T>, cause: VirtError, text: &str) {
    let err = r.expect_err(text);
    assert_eq!(err.to_string(), text);
    assert_eq!(VirtError::of(&err), Some(cause), "cause of {err}");
    assert_eq!(err.kind(), cause.io_kind(), "kind of {err}");
}

fn addrs(c: &Conn) -> (String, String) {
    (c.local_addr().to_string(), c.peer_addr().to_string())
}

fn pair(local: &str, peer: &str) -> (String, String) {
    (local.to_owned(), peer.to_owned())
}

async fn ping_pong(c: &mut Conn, s: &mut Conn) {
    c.write_all(b"ping").await.expect("write ping");
    let mut buf = [0; 4];
    s.read_exact(&mut buf).await.expect("read ping");
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong").await.expect("write pong");
    c.read_exact(&mut buf).await.expect("read pong");
    assert_eq!(&buf, b"pong");
}

/// The spec's reference scenario, step by step, with exact addresses.
pub async fn reference_scenario(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    assert_fails(
        a.dial(":0").await,
        VirtError::ConnRefused,
        &format!("dial {n} α:1->α:0: connection refused"),
    );
    let l1 = a.listen("").await.expect("listen");
    assert_eq!(l1.local_addr().to_string(), "α:1");
    assert_eq!(l1.local_addr().network(), n);
    assert_fails(
        a.dial(":0").await,
        VirtError::ConnRefused,
        &format!("dial {n} α:2->α:0: connection refused"),
    );
    let (mut c1c, mut c1s) = connect(&b, "α:1", &l1).await;
    assert_eq!(addrs(&c1c), pair("β:1", "α:2"));
    assert_eq!(addrs(&c1s), pair("α:2", "β:1"));
    let (c2c, c2s) = connect(&b, "α:1", &l1).await;
    assert_eq!(addrs(&c2c), pair("β:2", "α:3"));
    assert_eq!(addrs(&c2s), pair("α:3", "β:2"));
    let l2 = a.listen(":0").await.expect("listen");
    assert_eq!(l2.local_addr().to_string(), "α:4");
    ping_pong(&mut c1c, &mut c1s).await;
    fx.net.close().await.expect("close");
}

/// Closing a listener or a connection frees its port; autobind takes the
/// lowest free port again.
pub async fn port_reuse_after_close(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l1 = a.listen("").await.unwrap();
    let l2 = a.listen("").await.unwrap();
    let l3 = a.listen("").await.unwrap();
    assert_eq!(l3.local_addr().port(), 3);
    drop(l2);
    assert_eq!(
        a.listen(":0").await.unwrap().local_addr().to_string(),
        "α:2"
    );
    // that listener was dropped again at once: α:2 is free
    let (c, s) = connect(&b, "α:1", &l1).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    drop((c, s));
    l1.close();
    let (c, s) = connect(&b, "α:3", &l3).await;
    assert_eq!(addrs(&c), pair("β:1", "α:1"));
    assert_eq!(addrs(&s), pair("α:1", "β:1"));
    fx.net.close().await.unwrap();
}

/// Listening on a port in use, by a listener or by a connection, fails.
pub async fn listen_on_busy_port(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let l = a.listen(":10").await.unwrap();
    assert_eq!(l.local_addr().to_string(), "α:10");
    assert_fails(
        a.listen(":10").await,
        VirtError::AddrInUse,
        &format!("listen {n} α:10: address already in use"),
    );
    assert_fails(
        a.listen("α:10").await,
        VirtError::AddrInUse,
        &format!("listen {n} α:10: address already in use"),
    );
    let (_c, s) = connect(&b, "α:10", &l).await;
    assert_eq!(s.local_addr().to_string(), "α:1");
    assert_fails(
        a.listen(":1").await,
        VirtError::AddrInUse,
        &format!("listen {n} α:1: address already in use"),
    );
    // ports below a fixed one stay free for autobind
    assert_eq!(a.listen("").await.unwrap().local_addr().to_string(), "α:2");
    fx.net.close().await.unwrap();
}

/// Listening on another host's address fails.
pub async fn listen_on_other_host(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, _b) = hosts(&fx).await;
    assert_fails(
        a.listen("β:1").await,
        VirtError::AddrNoListen,
        &format!("listen {n} β:1: cannot listen on requested address"),
    );
    assert_fails(
        a.listen("γ:0").await,
        VirtError::AddrNoListen,
        &format!("listen {n} γ:0: cannot listen on requested address"),
    );
    // nothing was taken
    assert_eq!(a.listen("").await.unwrap().local_addr().port(), 1);
    fx.net.close().await.unwrap();
}

/// Dialing a host that no registry knows fails with "no such host", and
/// frees the source port.
pub async fn dial_unknown_host(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (_a, b) = hosts(&fx).await;
    assert_fails(
        b.dial("γ:1").await,
        VirtError::NoHost,
        &format!("dial {n} β:1->γ:1: no such host"),
    );
    assert_fails(
        b.dial("γ:2").await,
        VirtError::NoHost,
        &format!("dial {n} β:1->γ:2: no such host"),
    );
    fx.net.close().await.unwrap();
}

/// Dialing a port nobody listens on is refused.
pub async fn dial_without_listener(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    assert_fails(
        b.dial("α:7").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:7: connection refused"),
    );
    // a connection's port is not a listener either
    let l = a.listen("").await.unwrap();
    let (_c, _s) = connect(&b, "α:1", &l).await;
    assert_fails(
        b.dial("α:2").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:2->α:2: connection refused"),
    );
    fx.net.close().await.unwrap();
}

/// Malformed addresses are rejected with Go's texts, naming the source port,
/// which is freed again.
pub async fn bad_addresses(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    for (addr, why) in [
        ("α", "missing port in address"),
        ("α:x", "invalid port"),
        ("α:-1", "invalid port"),
        ("[α:1", "missing ']' in address"),
    ] {
        let err = b.dial(addr).await.expect_err(addr);
        assert_eq!(
            err.to_string(),
            format!("dial {n} β:1->{addr}: address {addr}: {why}")
        );
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = a.listen(addr).await.expect_err(addr);
        assert_eq!(
            err.to_string(),
            format!("listen {n} {addr}: address {addr}: {why}")
        );
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    fx.net.close().await.unwrap();
}

/// A host name is unique over the network.
pub async fn duplicate_host(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (_a, _b) = hosts(&fx).await;
    assert_fails(
        fx.net.new_host("α").await,
        VirtError::HostDup,
        &format!("new host {n} α: host already registered"),
    );
    assert_eq!(
        fx.net.host("α").map(|h| h.name().to_owned()),
        Some("α".into())
    );
    fx.net.close().await.unwrap();
}

/// Blocks an accept (on α:1), a read (on α:2) and a write (on α:3) on host
/// `a`, runs `close`, and asserts that each ends with `cause`. Returns the
/// listener, the read connection's two ends and the write connection's
/// client end (β:1, α:2, β:2), for further checks.
async fn assert_blocked_ops_end(
    a: &Host,
    b: &Host,
    cause: VirtError,
    close: impl Future<Output = ()>,
) -> (Listener, Conn, Conn, Conn) {
    let n = a.network().to_owned();
    let l = a.listen("").await.unwrap();
    let (c1, mut s1) = connect(b, "α:1", &l).await;
    let (c2, mut s2) = connect(b, "α:1", &l).await;

    let mut accept = Box::pin(l.accept());
    assert!(poll!(&mut accept).is_pending());
    let mut buf = [0; 8];
    let mut read = Box::pin(s1.read(&mut buf));
    assert!(poll!(&mut read).is_pending());
    let big = vec![0u8; BLOCKING_WRITE];
    let mut write = Box::pin(s2.write_all(&big));
    assert!(poll!(&mut write).is_pending());

    close.await;
    let what = cause.as_str();
    assert_fails(accept.await, cause, &format!("accept {n} α:1: {what}"));
    assert_fails(read.await, cause, &format!("read {n} α:2->β:1: {what}"));
    assert_fails(write.await, cause, &format!("write {n} α:3->β:2: {what}"));
    (l, c1, s1, c2)
}

/// Closing a host ends its blocked accept, read and write with "host is
/// down", shows its peers end of stream, and refuses new operations.
pub async fn host_close_interrupts(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let (l, mut c1, mut s1, _c2) = assert_blocked_ops_end(&a, &b, VirtError::HostDown, async {
        a.close().await.expect("close α");
    })
    .await;
    assert!(a.is_closed());
    // later operations on its connections fail the same way
    assert_fails(
        s1.write_all(b"x").await,
        VirtError::HostDown,
        &format!("write {n} α:2->β:1: host is down"),
    );
    // the peer sees end of stream
    let mut buf = [0; 8];
    assert_eq!(c1.read(&mut buf).await.expect("peer read"), 0);
    // new operations are refused
    assert_fails(
        a.dial("β:1").await,
        VirtError::HostDown,
        &format!("dial {n} α:0->β:1: host is down"),
    );
    assert_fails(
        a.listen(":5").await,
        VirtError::HostDown,
        &format!("listen {n} α:5: host is down"),
    );
    assert_fails(
        l.accept().await,
        VirtError::HostDown,
        &format!("accept {n} α:1: host is down"),
    );
    // the host is gone from the network: dials to it fail
    let err = b.dial("α:1").await.expect_err("dial closed host");
    let cause = VirtError::of(&err);
    assert!(
        cause == Some(VirtError::NoHost) || cause == Some(VirtError::ConnRefused),
        "dial to a closed host: {err}"
    );
    assert!(
        err.to_string().starts_with(&format!("dial {n} β:3->α:1: ")),
        "{err}"
    );
    assert!(fx.net.host("α").is_none());
    // the other host is unaffected
    let lb = b.listen("").await.unwrap();
    assert_eq!(lb.local_addr().to_string(), "β:3");
    fx.net.close().await.unwrap();
}

/// Closing the subnetwork ends everything with "network is down" and closes
/// the registry.
pub async fn subnetwork_close(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let _conns = assert_blocked_ops_end(&a, &b, VirtError::NetDown, async {
        fx.net.close().await.expect("close");
    })
    .await;
    assert!(fx.net.is_closed() && a.is_closed() && b.is_closed());
    assert_fails(
        b.dial("α:1").await,
        VirtError::NetDown,
        &format!("dial {n} β:0->α:1: network is down"),
    );
    assert_fails(
        a.listen("").await,
        VirtError::NetDown,
        &format!("listen {n} α:0: network is down"),
    );
    assert_fails(
        fx.net.new_host("γ").await,
        VirtError::NetDown,
        &format!("new host {n} γ: network is down"),
    );
    // closing again, and closing its hosts, is harmless
    fx.net.close().await.expect("second close");
    a.close().await.expect("host close after network close");
    let err = fx
        .net
        .registry()
        .query("α")
        .await
        .expect_err("registry after close");
    assert!(matches!(err.cause(), RegistryCause::Down), "{err}");
    assert!(
        err.to_string().ends_with(": query \"α\": registry is down"),
        "{err}"
    );
}

/// Closing a listener ends a pending accept with "socket is down", refuses
/// queued and later dials, and frees its port.
pub async fn listener_close(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let l = a.listen("").await.unwrap();
    let mut accept = Box::pin(l.accept());
    assert!(poll!(&mut accept).is_pending());
    l.close();
    assert_fails(
        accept.await,
        VirtError::SockDown,
        &format!("accept {n} α:1: socket is down"),
    );
    assert_fails(
        b.dial("α:1").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:1: connection refused"),
    );

    // a dial waiting in the queue is refused when the listener closes
    let l = a.listen("").await.unwrap();
    assert_eq!(l.local_addr().to_string(), "α:1");
    let mut dial = Box::pin(b.dial("α:1"));
    assert!(poll!(&mut dial).is_pending());
    drop(l);
    assert_fails(
        dial.await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:1: connection refused"),
    );
    fx.net.close().await.unwrap();
}

/// A listener is a stream of connections that ends when it is closed.
pub async fn listener_stream(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let mut l = a.listen(":3").await.unwrap();
    let (c, s) = tokio::join!(b.dial("α:3"), l.next());
    let (c, s) = (c.unwrap(), s.expect("stream item").unwrap());
    assert_eq!(addrs(&c), pair("β:1", "α:1"));
    assert_eq!(addrs(&s), pair("α:1", "β:1"));
    l.close();
    assert!(l.next().await.is_none());
    assert!(l.next().await.is_none());
    fx.net.close().await.unwrap();
}

/// Half-close in each direction: the peer reads end of stream and can still
/// write back.
pub async fn half_close(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = a.listen("").await.unwrap();
    for client_first in [true, false] {
        let (c, s) = connect(&b, "α:1", &l).await;
        let (mut first, mut second) = if client_first { (c, s) } else { (s, c) };
        first.write_all(b"request").await.unwrap();
        first.shutdown().await.unwrap();
        let mut got = Vec::new();
        second.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        second.write_all(b"reply").await.unwrap();
        second.shutdown().await.unwrap();
        got.clear();
        first.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"reply");
    }
    fx.net.close().await.unwrap();
}

/// 1 MiB in each direction at once arrives intact.
pub async fn megabyte_each_way(fx: Fixture) {
    const LEN: usize = 1 << 20;
    let (a, b) = hosts(&fx).await;
    let l = a.listen("").await.unwrap();
    let (c, s) = connect(&b, "α:1", &l).await;
    let pattern = |seed: u8| -> Vec<u8> { (0..LEN).map(|i| (i % 251) as u8 ^ seed).collect() };
    let exchange = |conn: Conn, out: Vec<u8>| {
        tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(conn);
            let send = async move {
                w.write_all(&out).await?;
                w.shutdown().await
            };
            let recv = async move {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.map(|_| got)
            };
            let (sent, got) = tokio::join!(send, recv);
            sent.map(|_| got)
        })
    };
    let (from_s, from_c) = (exchange(c, pattern(1)), exchange(s, pattern(2)));
    let got_by_c = from_s.await.unwrap().unwrap().unwrap();
    let got_by_s = from_c.await.unwrap().unwrap().unwrap();
    assert!(
        got_by_c == pattern(2),
        "client received the server's bytes intact"
    );
    assert!(
        got_by_s == pattern(1),
        "server received the client's bytes intact"
    );
    fx.net.close().await.unwrap();
}

/// 200 dials at once to one listener: all accepted, with distinct,
/// predictable ports.
pub async fn concurrent_dials(fx: Fixture) {
    const N: u32 = 200;
    let (a, b) = hosts(&fx).await;
    let l = a.listen("").await.unwrap();
    let dials: Vec<_> = (0..N)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.dial("α:1").await })
        })
        .collect();
    let mut server_ports = BTreeSet::new();
    let mut server_peers = BTreeSet::new();
    let mut accepted = Vec::new();
    for _ in 0..N {
        let s = l.accept().await.expect("accept");
        server_ports.insert(s.local_addr().port());
        server_peers.insert(s.peer_addr().port());
        accepted.push(s);
    }
    let mut client_ports = BTreeSet::new();
    let mut client_peers = BTreeSet::new();
    for d in dials {
        let c = d.await.unwrap().expect("dial");
        client_ports.insert(c.local_addr().port());
        client_peers.insert(c.peer_addr().port());
    }
    assert_eq!(server_ports, (2..=N + 1).collect());
    assert_eq!(client_peers, server_ports);
    assert_eq!(client_ports, (1..=N).collect());
    assert_eq!(server_peers, client_ports);
    fx.net.close().await.unwrap();
}

/// A dial dropped before it was accepted frees its port, and accept never
/// returns its abandoned connection.
pub async fn dropped_dial_leaks_nothing(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = a.listen("").await.unwrap();
    for _ in 0..3 {
        let mut dial = Box::pin(b.dial("α:1"));
        assert!(poll!(&mut dial).is_pending());
    }
    let (mut c, mut s) = connect(&b, "α:1", &l).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    assert_eq!(addrs(&s), pair("α:2", "β:1"));
    ping_pong(&mut c, &mut s).await;
    fx.net.close().await.unwrap();
}

/// An accept dropped while waiting loses no connection and takes no port.
pub async fn dropped_accept_leaks_nothing(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = a.listen("").await.unwrap();
    for _ in 0..3 {
        let mut accept = Box::pin(l.accept());
        assert!(poll!(&mut accept).is_pending());
    }
    let (mut c, mut s) = connect(&b, "α:1", &l).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    ping_pong(&mut c, &mut s).await;
    fx.net.close().await.unwrap();
}

/// A pending accept holds up no other dial, whether it was dropped or is
/// kept without being polled (an engine whose accepts take arrivals in
/// themselves must hand that work back): a dial to a port nobody listens on
/// is refused, and one to another listener is accepted there.
pub async fn pending_accepts_hold_up_no_other_dial(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let l1 = a.listen(":1").await.unwrap();
    let l2 = a.listen(":2").await.unwrap();
    {
        let mut dropped = Box::pin(l1.accept());
        assert!(poll!(&mut dropped).is_pending());
    }
    assert_fails(
        b.dial("α:9").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:9: connection refused"),
    );
    let mut kept = Box::pin(l1.accept());
    assert!(poll!(&mut kept).is_pending());
    assert_fails(
        b.dial("α:9").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:9: connection refused"),
    );
    let (c, s) = connect(&b, "α:2", &l2).await;
    assert_eq!(addrs(&c), pair("β:1", "α:3"));
    assert_eq!(addrs(&s), pair("α:3", "β:1"));
    // the kept accept still gets its own connection
    let (c1, s1) = tokio::join!(b.dial("α:1"), &mut kept);
    assert_eq!(addrs(&c1.unwrap()), pair("β:2", "α:4"));
    assert_eq!(addrs(&s1.unwrap()), pair("α:4", "β:2"));
    drop((c, s));
    fx.net.close().await.unwrap();
}

/// Several accepts pending in one task, two on one listener and one on
/// another, all get their connections.
pub async fn accepts_in_one_task(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l1 = a.listen(":1").await.unwrap();
    let l2 = a.listen(":2").await.unwrap();
    let dials = tokio::spawn(async move {
        let mut conns = Vec::new();
        for addr in ["α:1", "α:2", "α:1"] {
            conns.push(b.dial(addr).await.expect("dial"));
        }
        conns
    });
    let (s1, s2, s3) = tokio::join!(l1.accept(), l2.accept(), l1.accept());
    let (s1, s2, s3) = (
        s1.expect("accept"),
        s2.expect("accept"),
        s3.expect("accept"),
    );
    assert_eq!(addrs(&s2), pair("α:4", "β:2"));
    let server: BTreeSet<_> = [&s1, &s2, &s3].into_iter().map(addrs).collect();
    let client: BTreeSet<_> = dials
        .await
        .unwrap()
        .iter()
        .map(|c| {
            let (local, peer) = addrs(c);
            (peer, local)
        })
        .collect();
    assert_eq!(server, client);
    let want: BTreeSet<_> = [pair("α:3", "β:1"), pair("α:4", "β:2"), pair("α:5", "β:3")].into();
    assert_eq!(server, want);
    fx.net.close().await.unwrap();
}

/// Dropping a connection shows the peer end of stream and frees the port.
pub async fn conn_drop_frees_port(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = a.listen("").await.unwrap();
    let (c, mut s) = connect(&b, "α:1", &l).await;
    drop(c);
    let mut buf = [0; 1];
    assert_eq!(s.read(&mut buf).await.unwrap(), 0);
    drop(s);
    let (c, s) = connect(&b, "α:1", &l).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    assert_eq!(addrs(&s), pair("α:2", "β:1"));
    fx.net.close().await.unwrap();
}

/// A host works as an `Arc<dyn Networker>` moved into spawned tasks.
pub async fn networker_trait_object(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let server: Arc<dyn Networker> = Arc::new(a);
    let client: Arc<dyn Networker> = Arc::new(b);
    assert_eq!((server.network(), server.name()), (n.as_str(), "α"));
    let l = server
        .listen(":80")
        .await
        .expect("listen through the trait object");
    let serve = tokio::spawn(async move {
        let mut s = l.accept().await?;
        let mut buf = [0; 5];
        s.read_exact(&mut buf).await?;
        s.write_all(&buf).await?;
        io::Result::Ok((s.local_addr().to_string(), s.peer_addr().to_string()))
    });
    let call = tokio::spawn(async move {
        let mut c = client.dial("α:80").await?;
        c.write_all(b"hello").await?;
        let mut buf = [0; 5];
        c.read_exact(&mut buf).await?;
        io::Result::Ok((c.local_addr().to_string(), buf))
    });
    let (server_side, client_side) = (serve.await.unwrap().unwrap(), call.await.unwrap().unwrap());
    assert_eq!(server_side, pair("α:1", "β:1"));
    assert_eq!(client_side.0, "β:1");
    assert_eq!(&client_side.1, b"hello");
    fx.net.close().await.unwrap();
}

/// With auto-close, closing the last host closes the subnetwork.
pub async fn auto_close(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    fx.net.auto_close();
    a.close().await.unwrap();
    assert!(!fx.net.is_closed());
    b.close().await.unwrap();
    assert!(fx.net.is_closed());
    assert_fails(
        fx.net.new_host("γ").await,
        VirtError::NetDown,
        &format!("new host {n} γ: network is down"),
    );
}

/// A closed host's name can be taken again (where the registry can remove
/// entries), and the new host starts from port 1.
pub async fn host_name_reuse(fx: Fixture) {
    let (a, _b) = hosts(&fx).await;
    let _l = a.listen("").await.unwrap();
    a.close().await.unwrap();
    let supports_removal = fx.net.registry().query("α").await.is_err();
    if supports_removal {
        let a2 = fx.net.new_host("α").await.expect("α again");
        assert_eq!(a2.listen("").await.unwrap().local_addr().to_string(), "α:1");
    }
    fx.net.close().await.unwrap();
}

/// The reference scenario through an event [`Trace`]: the exact events, in
/// order, on any network.
pub async fn reference_scenario_traced(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let trace = Trace::new();
    let (a, b) = (trace.wrap(a), trace.wrap(b));
    let _ = a.dial(":0").await;
    let l1 = a.listen("").await.unwrap();
    let _ = a.dial(":0").await;
    let (c1c, c1s) = tokio::join!(b.dial("α:1"), l1.accept());
    let (mut c1c, mut c1s) = (c1c.unwrap(), c1s.unwrap());
    let (c2c, c2s) = tokio::join!(b.dial("α:1"), l1.accept());
    let l2 = a.listen(":0").await.unwrap();
    ping_pong(&mut c1c, &mut c1s).await;
    c1c.shutdown().await.unwrap();
    drop((c1c, c1s, c2c, c2s, l2, l1));
    a.close().await.unwrap();
    b.close().await.unwrap();
    let expected = [
        "dial α -> :0".to_owned(),
        format!("dial-failed α -> :0: dial {n} α:1->α:0: connection refused"),
        "listen α:1".into(),
        "dial α -> :0".into(),
        format!("dial-failed α -> :0: dial {n} α:2->α:0: connection refused"),
        "dial β -> α:1".into(),
        "accept α:2 <- β:1".into(),
        "connect β:1 -> α:2".into(),
        "dial β -> α:1".into(),
        "accept α:3 <- β:2".into(),
        "connect β:2 -> α:3".into(),
        "listen α:4".into(),
        r#"write β:1 -> α:2 "ping""#.into(),
        r#"write α:2 -> β:1 "pong""#.into(),
        "shutdown β:1 -> α:2".into(),
        "close β:1 -> α:2".into(),
        "close α:2 -> β:1".into(),
        "close β:2 -> α:3".into(),
        "close α:3 -> β:2".into(),
        "close-listener α:4".into(),
        "close-listener α:1".into(),
        "close-host α".into(),
        "close-host β".into(),
    ];
    assert_eq!(trace.lines(), expected);
    fx.net.close().await.unwrap();
}
