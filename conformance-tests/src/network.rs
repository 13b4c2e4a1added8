//! The network scenarios. Each takes a [`Fixture`] holding a fresh
//! subnetwork, creates hosts `α` and `β` on it, and asserts exact addresses,
//! error kinds and error texts. They panic on the first broken rule.
//!
//! Every await that can block is [labelled](crate::waiting) with what it
//! waits for, so a scenario that hangs on a broken network times out with a
//! [`Failure`](crate::Failure) that says what never came.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::sync::Arc;

use futures::{poll, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::trace::Trace;
use virtnet_core::{Conn, Host, Listener, Networker, RegistryCause, VirtError};

use crate::waiting::{spawn, spawn_blocked, step, WaitingFor};
use crate::Fixture;

/// More than any transport buffers (pipenet's pipe, a loopback TCP pair), so
/// writing it without a reader blocks.
const BLOCKING_WRITE: usize = 64 << 20;

async fn hosts(fx: &Fixture) -> (Host, Host) {
    let a = new_host(fx, "α").await;
    let b = new_host(fx, "β").await;
    (a, b)
}

async fn new_host(fx: &Fixture, name: &str) -> Host {
    fx.net
        .new_host(name)
        .waiting_for(format!("new host {name}"))
        .await
        .unwrap_or_else(|e| panic!("new host {name}: {e}"))
}

/// Dials `addr` from `from` while `l` accepts; returns (client, server).
pub async fn connect(from: &Host, addr: &str, l: &Listener) -> (Conn, Conn) {
    let (c, s) = tokio::join!(
        from.dial(addr)
            .waiting_for(format!("dial {addr} from {}", from.name())),
        l.accept()
            .waiting_for(format!("accept on {}", l.local_addr())),
    );
    (
        c.unwrap_or_else(|e| panic!("dial {addr}: {e}")),
        s.unwrap_or_else(|e| panic!("accept on {}: {e}", l.local_addr())),
    )
}

/// `h.dial(addr)`, labelled.
async fn dial(h: &Host, addr: &str) -> io::Result<Conn> {
    h.dial(addr)
        .waiting_for(format!("dial {addr} from {}", h.name()))
        .await
}

/// `h.listen(laddr)`, labelled.
async fn listen(h: &Host, laddr: &str) -> io::Result<Listener> {
    h.listen(laddr)
        .waiting_for(format!("listen on {laddr:?} on {}", h.name()))
        .await
}

/// `h.listen(laddr)`, which must succeed.
async fn listening(h: &Host, laddr: &str) -> Listener {
    listen(h, laddr)
        .await
        .unwrap_or_else(|e| panic!("listen on {laddr:?} on {}: {e}", h.name()))
}

/// `l.accept()`, labelled.
async fn accept(l: &Listener) -> io::Result<Conn> {
    l.accept()
        .waiting_for(format!("accept on {}", l.local_addr()))
        .await
}

/// Closes host `h`, which must succeed.
async fn close_host(h: &Host) {
    h.close()
        .waiting_for(format!("close host {}", h.name()))
        .await
        .unwrap_or_else(|e| panic!("close host {}: {e}", h.name()));
}

/// Closes the subnetwork, which must succeed: the last step of most
/// scenarios.
async fn close_net(fx: &Fixture) {
    fx.net
        .close()
        .waiting_for("close the subnetwork")
        .await
        .expect("close the subnetwork");
}

/// Asserts that `r` failed with canonical cause `cause` and exactly `text`.
#[track_caller]
pub fn assert_fails<T: Debug>(r: io::Result<T>, cause: VirtError, text: &str) {
    let err = match r {
        Ok(v) => panic!("expected the error {text:?}, got Ok({v:?})"),
        Err(err) => err,
    };
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
    let (cs, ss) = (c.local_addr().to_string(), s.local_addr().to_string());
    c.write_all(b"ping")
        .waiting_for(format!("write ping on {cs}"))
        .await
        .expect("write ping");
    let mut buf = [0; 4];
    s.read_exact(&mut buf)
        .waiting_for(format!("read ping on {ss}"))
        .await
        .expect("read ping");
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong")
        .waiting_for(format!("write pong on {ss}"))
        .await
        .expect("write pong");
    c.read_exact(&mut buf)
        .waiting_for(format!("read pong on {cs}"))
        .await
        .expect("read pong");
    assert_eq!(&buf, b"pong");
}

/// The spec's reference scenario, step by step, with exact addresses.
pub async fn reference_scenario(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    assert_fails(
        dial(&a, ":0").await,
        VirtError::ConnRefused,
        &format!("dial {n} α:1->α:0: connection refused"),
    );
    let l1 = listening(&a, "").await;
    assert_eq!(l1.local_addr().to_string(), "α:1");
    assert_eq!(l1.local_addr().network(), n);
    assert_fails(
        dial(&a, ":0").await,
        VirtError::ConnRefused,
        &format!("dial {n} α:2->α:0: connection refused"),
    );
    let (mut c1c, mut c1s) = connect(&b, "α:1", &l1).await;
    assert_eq!(addrs(&c1c), pair("β:1", "α:2"));
    assert_eq!(addrs(&c1s), pair("α:2", "β:1"));
    let (c2c, c2s) = connect(&b, "α:1", &l1).await;
    assert_eq!(addrs(&c2c), pair("β:2", "α:3"));
    assert_eq!(addrs(&c2s), pair("α:3", "β:2"));
    let l2 = listening(&a, ":0").await;
    assert_eq!(l2.local_addr().to_string(), "α:4");
    ping_pong(&mut c1c, &mut c1s).await;
    close_net(&fx).await;
}

/// Closing a listener or a connection frees its port; autobind takes the
/// lowest free port again.
pub async fn port_reuse_after_close(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l1 = listening(&a, "").await;
    let l2 = listening(&a, "").await;
    let l3 = listening(&a, "").await;
    assert_eq!(l3.local_addr().port(), 3);
    drop(l2);
    assert_eq!(listening(&a, ":0").await.local_addr().to_string(), "α:2");
    // that listener was dropped again at once: α:2 is free
    let (c, s) = connect(&b, "α:1", &l1).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    drop((c, s));
    l1.close();
    let (c, s) = connect(&b, "α:3", &l3).await;
    assert_eq!(addrs(&c), pair("β:1", "α:1"));
    assert_eq!(addrs(&s), pair("α:1", "β:1"));
    close_net(&fx).await;
}

/// Listening on a port in use, by a listener or by a connection, fails.
pub async fn listen_on_busy_port(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, ":10").await;
    assert_eq!(l.local_addr().to_string(), "α:10");
    assert_fails(
        listen(&a, ":10").await,
        VirtError::AddrInUse,
        &format!("listen {n} α:10: address already in use"),
    );
    assert_fails(
        listen(&a, "α:10").await,
        VirtError::AddrInUse,
        &format!("listen {n} α:10: address already in use"),
    );
    let (_c, s) = connect(&b, "α:10", &l).await;
    assert_eq!(s.local_addr().to_string(), "α:1");
    assert_fails(
        listen(&a, ":1").await,
        VirtError::AddrInUse,
        &format!("listen {n} α:1: address already in use"),
    );
    // ports below a fixed one stay free for autobind
    assert_eq!(listening(&a, "").await.local_addr().to_string(), "α:2");
    close_net(&fx).await;
}

/// Listening on another host's address fails.
pub async fn listen_on_other_host(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, _b) = hosts(&fx).await;
    assert_fails(
        listen(&a, "β:1").await,
        VirtError::AddrNoListen,
        &format!("listen {n} β:1: cannot listen on requested address"),
    );
    assert_fails(
        listen(&a, "γ:0").await,
        VirtError::AddrNoListen,
        &format!("listen {n} γ:0: cannot listen on requested address"),
    );
    // nothing was taken
    assert_eq!(listening(&a, "").await.local_addr().port(), 1);
    close_net(&fx).await;
}

/// Dialing a host that no registry knows fails with "no such host", and
/// frees the source port.
pub async fn dial_unknown_host(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (_a, b) = hosts(&fx).await;
    assert_fails(
        dial(&b, "γ:1").await,
        VirtError::NoHost,
        &format!("dial {n} β:1->γ:1: no such host"),
    );
    assert_fails(
        dial(&b, "γ:2").await,
        VirtError::NoHost,
        &format!("dial {n} β:1->γ:2: no such host"),
    );
    close_net(&fx).await;
}

/// Dialing a port nobody listens on is refused.
pub async fn dial_without_listener(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    assert_fails(
        dial(&b, "α:7").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:7: connection refused"),
    );
    // a connection's port is not a listener either
    let l = listening(&a, "").await;
    let (_c, _s) = connect(&b, "α:1", &l).await;
    assert_fails(
        dial(&b, "α:2").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:2->α:2: connection refused"),
    );
    close_net(&fx).await;
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
        let err = dial(&b, addr).await.expect_err(addr);
        assert_eq!(
            err.to_string(),
            format!("dial {n} β:1->{addr}: address {addr}: {why}")
        );
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = listen(&a, addr).await.expect_err(addr);
        assert_eq!(
            err.to_string(),
            format!("listen {n} {addr}: address {addr}: {why}")
        );
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    close_net(&fx).await;
}

/// A host name is unique over the network.
pub async fn duplicate_host(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (_a, _b) = hosts(&fx).await;
    assert_fails(
        fx.net
            .new_host("α")
            .waiting_for("new host α, a second time")
            .await,
        VirtError::HostDup,
        &format!("new host {n} α: host already registered"),
    );
    assert_eq!(
        fx.net.host("α").map(|h| h.name().to_owned()),
        Some("α".into())
    );
    close_net(&fx).await;
}

/// `new_host` refuses, with `InvalidInput`, names no address can reach: the
/// empty name (in an address it means "this host") and names that do not
/// read back from `name:port`; nothing is announced for them.
pub async fn host_names_an_address_can_reach(fx: Fixture) {
    let n = fx.net.network().to_owned();
    for bad in ["", "[", "]", "a[b", "x]"] {
        let e = fx
            .net
            .new_host(bad)
            .waiting_for(format!("new host {bad:?}"))
            .await
            .expect_err(bad);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("new host {n} {bad}: invalid host name {bad:?}: ")),
            "{e}"
        );
        let inner = virtnet_core::OpError::of(&e).expect("an OpError");
        assert!(
            inner
                .cause_ref()
                .get_ref()
                .is_some_and(|c| c.is::<virtnet_core::InvalidHostName>()),
            "{e}"
        );
        assert!(
            fx.net.registry().query(bad).await.is_err(),
            "{bad:?} is not announced"
        );
    }
    // names with a colon are written in brackets and read back
    let v6 = new_host(&fx, "a:b").await;
    let l = v6
        .listen("[a:b]:7")
        .waiting_for("listen [a:b]:7")
        .await
        .unwrap();
    assert_eq!(l.local_addr().to_string(), "[a:b]:7");
    close_net(&fx).await;
}

/// Dropping every handle of a host (the host, its listeners and
/// connections) without closing it takes it off the network: the
/// subnetwork no longer lists it, it leaves the registry, dials to it find
/// no such host, and its name can be taken again.
pub async fn dropped_host_leaves(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = a.listen(":1").waiting_for("listen α:1").await.unwrap();
    let (c, s) = connect(&b, "α:1", &l).await;
    drop((a, l, s));
    assert!(fx.net.host("α").is_none(), "α is dropped");
    let registry = fx.net.registry().clone();
    async {
        while registry.query("α").await.is_ok() {
            tokio::task::yield_now().await;
        }
    }
    .waiting_for("α to leave the registry")
    .await;
    let mut c = c;
    let mut buf = [0; 1];
    let n = c
        .read(&mut buf)
        .waiting_for("β:1 to read the end of its dropped peer")
        .await
        .expect("end of stream");
    assert_eq!(n, 0);
    let e = b.dial("α:1").waiting_for("dial α:1, dropped").await;
    assert_eq!(
        VirtError::of(e.as_ref().unwrap_err()),
        Some(VirtError::NoHost)
    );
    let a = new_host(&fx, "α").await;
    assert_eq!(
        a.listen("")
            .waiting_for("listen")
            .await
            .unwrap()
            .local_addr()
            .port(),
        1
    );
    close_net(&fx).await;
}

/// Dropping the last handle of everything (the subnetwork, its hosts, a
/// listener, both ends of a connection) without closing anything releases
/// the network: its hosts leave the registry.
pub async fn dropping_everything_releases_the_network(fx: Fixture) {
    let Fixture { net, keep } = fx;
    let registry = net.registry().clone();
    let fx = Fixture::new(net);
    let (a, b) = hosts(&fx).await;
    let l = a.listen(":1").waiting_for("listen α:1").await.unwrap();
    let (c, s) = connect(&b, "α:1", &l).await;
    drop((fx, s, a, l, c, b));
    for host in ["α", "β"] {
        async {
            while registry.query(host).await.is_ok() {
                tokio::task::yield_now().await;
            }
        }
        .waiting_for(format!("{host} to leave the registry"))
        .await;
    }
    drop(keep);
}

/// A listener queues at most its backlog of dials; past it, dials are
/// refused like a full SYN queue, and an accept makes room again.
pub async fn listener_backlog(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let l = a.listen(":1").waiting_for("listen α:1").await.unwrap();
    assert_eq!(virtnet_core::Listener::DEFAULT_BACKLOG, 4096);
    l.set_backlog(2);
    let dials: Vec<_> = (0..2)
        .map(|i| {
            let b = b.clone();
            spawn(async move { b.dial("α:1").waiting_for(format!("queued dial #{i}")).await })
        })
        .collect();
    async {
        while l.queued() < 2 {
            tokio::task::yield_now().await;
        }
    }
    .waiting_for("two dials queued on α:1")
    .await;
    assert_fails(
        b.dial("α:1")
            .waiting_for("a third dial, past the backlog")
            .await,
        VirtError::ConnRefused,
        &format!("dial {n} β:3->α:1: connection refused"),
    );
    let mut accepted = Vec::new();
    for i in 0..2 {
        accepted.push(
            l.accept()
                .waiting_for(format!("accept #{i}"))
                .await
                .expect("accept"),
        );
    }
    let mut clients = Vec::new();
    for (i, dial) in dials.into_iter().enumerate() {
        clients.push(
            dial.waiting_for(format!("queued dial #{i}"))
                .await
                .expect("dial task")
                .expect("a queued dial connects"),
        );
    }
    assert_eq!(l.queued(), 0);
    let (c, _s) = connect(&b, "α:1", &l).await;
    assert_eq!(
        c.local_addr().port(),
        3,
        "the refused dial's port was freed"
    );
    close_net(&fx).await;
}

/// Blocks an accept (on α:1), a read (on α:2) and a write (on α:3) on host
/// `a`, each in a task of its own (so the close must wake each, not only
/// make a later poll fail), runs `close` (described by `closing`), and
/// asserts that each ends with `cause`. Returns the listener, the read
/// connection's two ends and the write connection's client end (β:1, α:2,
/// β:2), for further checks.
async fn assert_blocked_ops_end(
    a: &Host,
    b: &Host,
    cause: VirtError,
    closing: &str,
    close: impl Future<Output = ()>,
) -> (Listener, Conn, Conn, Conn) {
    let n = a.network().to_owned();
    let what = cause.as_str();
    let l = listening(a, "").await;
    let (c1, mut s1) = connect(b, "α:1", &l).await;
    let (c2, mut s2) = connect(b, "α:1", &l).await;

    let label = format!("accept on α:1 to end with {what:?} after {closing}");
    let accept = spawn_blocked("accept on α:1", async move {
        let accepted = l.accept().waiting_for(label).await;
        (accepted, l)
    })
    .await;
    let label = format!("read on α:2->β:1 to end with {what:?} after {closing}");
    let read = spawn_blocked("read on α:2", async move {
        let mut buf = [0; 8];
        let read = s1.read(&mut buf).waiting_for(label).await;
        (read, s1)
    })
    .await;
    let label = format!("write on α:3->β:2 to end with {what:?} after {closing}");
    let write = spawn_blocked("write on α:3", async move {
        let big = vec![0u8; BLOCKING_WRITE];
        s2.write_all(&big).waiting_for(label).await
    })
    .await;

    step(closing.to_owned());
    close.waiting_for(closing.to_owned()).await;
    let (accepted, l) = accept
        .waiting_for("the task accepting on α:1")
        .await
        .expect("accept task");
    assert_fails(accepted, cause, &format!("accept {n} α:1: {what}"));
    let (read, s1) = read
        .waiting_for("the task reading on α:2")
        .await
        .expect("read task");
    assert_fails(read, cause, &format!("read {n} α:2->β:1: {what}"));
    let written = write
        .waiting_for("the task writing on α:3")
        .await
        .expect("write task");
    assert_fails(written, cause, &format!("write {n} α:3->β:2: {what}"));
    (l, c1, s1, c2)
}

/// Closing a host ends its blocked accept, read and write with "host is
/// down", shows its peers end of stream, and refuses new operations.
pub async fn host_close_interrupts(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let (l, mut c1, mut s1, _c2) =
        assert_blocked_ops_end(&a, &b, VirtError::HostDown, "closing host α", async {
            a.close().await.expect("close α");
        })
        .await;
    assert!(a.is_closed());
    step("α closed: later operations");
    // later operations on its connections fail the same way
    assert_fails(
        s1.write_all(b"x")
            .waiting_for("write on α:2 after close")
            .await,
        VirtError::HostDown,
        &format!("write {n} α:2->β:1: host is down"),
    );
    // the peer sees end of stream
    let mut buf = [0; 8];
    assert_eq!(
        c1.read(&mut buf)
            .waiting_for("read on β:1 to see end of stream after α closed")
            .await
            .expect("peer read"),
        0
    );
    // new operations are refused
    assert_fails(
        dial(&a, "β:1").await,
        VirtError::HostDown,
        &format!("dial {n} α:0->β:1: host is down"),
    );
    assert_fails(
        listen(&a, ":5").await,
        VirtError::HostDown,
        &format!("listen {n} α:5: host is down"),
    );
    assert_fails(
        accept(&l).await,
        VirtError::HostDown,
        &format!("accept {n} α:1: host is down"),
    );
    // the host is gone from the network: dials to it fail
    let err = dial(&b, "α:1").await.expect_err("dial closed host");
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
    let lb = listening(&b, "").await;
    assert_eq!(lb.local_addr().to_string(), "β:3");
    close_net(&fx).await;
}

/// Closing the subnetwork ends everything with "network is down" and closes
/// the registry.
pub async fn subnetwork_close(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let _conns = assert_blocked_ops_end(
        &a,
        &b,
        VirtError::NetDown,
        "closing the subnetwork",
        async {
            fx.net.close().await.expect("close");
        },
    )
    .await;
    assert!(fx.net.is_closed() && a.is_closed() && b.is_closed());
    step("subnetwork closed: later operations");
    assert_fails(
        dial(&b, "α:1").await,
        VirtError::NetDown,
        &format!("dial {n} β:0->α:1: network is down"),
    );
    assert_fails(
        listen(&a, "").await,
        VirtError::NetDown,
        &format!("listen {n} α:0: network is down"),
    );
    assert_fails(
        fx.net.new_host("γ").waiting_for("new host γ").await,
        VirtError::NetDown,
        &format!("new host {n} γ: network is down"),
    );
    // closing again, and closing its hosts, is harmless
    fx.net
        .close()
        .waiting_for("close the subnetwork again")
        .await
        .expect("second close");
    a.close()
        .waiting_for("close host α after the subnetwork")
        .await
        .expect("host close after network close");
    let err = fx
        .net
        .registry()
        .query("α")
        .waiting_for("registry query after close")
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
    let l = listening(&a, "").await;
    let mut pending = Box::pin(
        l.accept()
            .waiting_for("accept on α:1 to end with \"socket is down\" after its listener closed"),
    );
    assert!(poll!(&mut pending).is_pending());
    step("listener α:1 closed");
    l.close();
    assert_fails(
        pending.await,
        VirtError::SockDown,
        &format!("accept {n} α:1: socket is down"),
    );
    assert_fails(
        dial(&b, "α:1").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:1: connection refused"),
    );

    // a dial waiting in the queue is refused when the listener closes
    step("a queued dial, listener dropped");
    let l = listening(&a, "").await;
    assert_eq!(l.local_addr().to_string(), "α:1");
    let mut queued = Box::pin(
        b.dial("α:1")
            .waiting_for("dial α:1 queued on a dropped listener to be refused"),
    );
    assert!(poll!(&mut queued).is_pending());
    drop(l);
    assert_fails(
        queued.await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:1: connection refused"),
    );
    close_net(&fx).await;
}

/// A listener is a stream of connections that ends when it is closed.
pub async fn listener_stream(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let mut l = listening(&a, ":3").await;
    let (c, s) = tokio::join!(
        dial(&b, "α:3"),
        l.next().waiting_for("the next item of α:3's stream")
    );
    let (c, s) = (c.unwrap(), s.expect("stream item").unwrap());
    assert_eq!(addrs(&c), pair("β:1", "α:1"));
    assert_eq!(addrs(&s), pair("α:1", "β:1"));
    l.close();
    assert!(l
        .next()
        .waiting_for("the end of α:3's stream after close")
        .await
        .is_none());
    assert!(l
        .next()
        .waiting_for("the end of α:3's stream, again")
        .await
        .is_none());
    close_net(&fx).await;
}

/// Half-close in each direction: the peer reads end of stream and can still
/// write back.
pub async fn half_close(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, "").await;
    for client_first in [true, false] {
        step(if client_first {
            "the client half-closes first"
        } else {
            "the server half-closes first"
        });
        let (c, s) = connect(&b, "α:1", &l).await;
        let (mut first, mut second) = if client_first { (c, s) } else { (s, c) };
        first
            .write_all(b"request")
            .waiting_for("write request")
            .await
            .unwrap();
        first
            .shutdown()
            .waiting_for("shutdown after the request")
            .await
            .unwrap();
        let mut got = Vec::new();
        second
            .read_to_end(&mut got)
            .waiting_for("read the request to end of stream")
            .await
            .unwrap();
        assert_eq!(got, b"request");
        second
            .write_all(b"reply")
            .waiting_for("write reply")
            .await
            .unwrap();
        second
            .shutdown()
            .waiting_for("shutdown after the reply")
            .await
            .unwrap();
        got.clear();
        first
            .read_to_end(&mut got)
            .waiting_for("read the reply to end of stream")
            .await
            .unwrap();
        assert_eq!(got, b"reply");
    }
    close_net(&fx).await;
}

/// `Conn::reset` is seen by the peer as a reset, not an end of stream: its
/// pending read fails with `ConnectionReset` (as over TCP, only the first
/// operation to see the reset need fail); bytes the resetting end never
/// read do not matter.
pub async fn reset_reaches_the_peer(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, "").await;
    for server_resets in [true, false] {
        step(if server_resets {
            "the server resets"
        } else {
            "the client resets"
        });
        let (c, s) = connect(&b, "α:1", &l).await;
        let (resetting, mut peer) = if server_resets { (s, c) } else { (c, s) };
        peer.write_all(b"unread")
            .waiting_for("write what the resetting end never reads")
            .await
            .unwrap();
        let mut buf = [0; 8];
        let pending = spawn(async move {
            let got = peer.read(&mut buf).await;
            (peer, got)
        });
        resetting.reset();
        let (_peer, got) = pending
            .waiting_for("the peer's pending read to end")
            .await
            .unwrap();
        let err = got.expect_err("a read across a reset must fail, not see end of stream");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    }
    close_net(&fx).await;
}

/// 1 MiB in each direction at once arrives intact.
pub async fn megabyte_each_way(fx: Fixture) {
    const LEN: usize = 1 << 20;
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, "").await;
    let (c, s) = connect(&b, "α:1", &l).await;
    let pattern = |seed: u8| -> Vec<u8> { (0..LEN).map(|i| (i % 251) as u8 ^ seed).collect() };
    let exchange = |conn: Conn, out: Vec<u8>| {
        let me = conn.local_addr().to_string();
        spawn(async move {
            let (mut r, mut w) = tokio::io::split(conn);
            let send = async move {
                w.write_all(&out).await?;
                w.shutdown().await
            };
            let recv = async move {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.map(|_| got)
            };
            let (sent, got) = tokio::join!(
                send.waiting_for(format!("{me}: write 1 MiB and shut down")),
                recv.waiting_for(format!("{me}: read 1 MiB to end of stream")),
            );
            sent.map(|_| got)
        })
    };
    let (from_s, from_c) = (exchange(c, pattern(1)), exchange(s, pattern(2)));
    let got_by_c = from_s.waiting_for("the client's exchange task").await;
    let got_by_s = from_c.waiting_for("the server's exchange task").await;
    let got_by_c = got_by_c.unwrap().unwrap().unwrap();
    let got_by_s = got_by_s.unwrap().unwrap().unwrap();
    assert!(
        got_by_c == pattern(2),
        "client received the server's bytes intact"
    );
    assert!(
        got_by_s == pattern(1),
        "server received the client's bytes intact"
    );
    close_net(&fx).await;
}

/// 200 dials at once to one listener: all accepted, with distinct,
/// predictable ports.
pub async fn concurrent_dials(fx: Fixture) {
    const N: u32 = 200;
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, "").await;
    let dials: Vec<_> = (0..N)
        .map(|i| {
            let b = b.clone();
            spawn(async move { b.dial("α:1").waiting_for(format!("dial #{i} of α:1")).await })
        })
        .collect();
    let mut server_ports = BTreeSet::new();
    let mut server_peers = BTreeSet::new();
    let mut accepted = Vec::new();
    for i in 0..N {
        let s = l
            .accept()
            .waiting_for(format!("accept #{i} on α:1"))
            .await
            .expect("accept");
        server_ports.insert(s.local_addr().port());
        server_peers.insert(s.peer_addr().port());
        accepted.push(s);
    }
    let mut client_ports = BTreeSet::new();
    let mut client_peers = BTreeSet::new();
    for (i, d) in dials.into_iter().enumerate() {
        let c = d
            .waiting_for(format!("dial task #{i}"))
            .await
            .unwrap()
            .expect("dial");
        client_ports.insert(c.local_addr().port());
        client_peers.insert(c.peer_addr().port());
    }
    assert_eq!(server_ports, (2..=N + 1).collect());
    assert_eq!(client_peers, server_ports);
    assert_eq!(client_ports, (1..=N).collect());
    assert_eq!(server_peers, client_ports);
    close_net(&fx).await;
}

/// A dial dropped before it was accepted frees its port, and accept never
/// returns its abandoned connection.
pub async fn dropped_dial_leaks_nothing(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, "").await;
    for _ in 0..3 {
        let mut dropped = Box::pin(b.dial("α:1"));
        assert!(poll!(&mut dropped).is_pending());
    }
    step("3 dials dropped; a 4th dial and an accept");
    let (mut c, mut s) = connect(&b, "α:1", &l).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    assert_eq!(addrs(&s), pair("α:2", "β:1"));
    ping_pong(&mut c, &mut s).await;
    close_net(&fx).await;
}

/// An accept dropped while waiting loses no connection and takes no port.
pub async fn dropped_accept_leaks_nothing(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, "").await;
    for _ in 0..3 {
        let mut dropped = Box::pin(l.accept());
        assert!(poll!(&mut dropped).is_pending());
    }
    step("3 accepts dropped; a dial and a 4th accept");
    let (mut c, mut s) = connect(&b, "α:1", &l).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    ping_pong(&mut c, &mut s).await;
    close_net(&fx).await;
}

/// A pending accept holds up no other dial, whether it was dropped or is
/// kept without being polled (an engine whose accepts take arrivals in
/// themselves must hand that work back): a dial to a port nobody listens on
/// is refused, and one to another listener is accepted there.
pub async fn pending_accepts_hold_up_no_other_dial(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let l1 = listening(&a, ":1").await;
    let l2 = listening(&a, ":2").await;
    {
        let mut dropped = Box::pin(l1.accept());
        assert!(poll!(&mut dropped).is_pending());
    }
    step("an accept on α:1 dropped");
    assert_fails(
        dial(&b, "α:9").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:9: connection refused"),
    );
    let mut kept = Box::pin(
        l1.accept()
            .waiting_for("the kept accept on α:1 to get its connection"),
    );
    assert!(poll!(&mut kept).is_pending());
    step("an accept on α:1 kept unpolled");
    assert_fails(
        dial(&b, "α:9").await,
        VirtError::ConnRefused,
        &format!("dial {n} β:1->α:9: connection refused"),
    );
    let (c, s) = connect(&b, "α:2", &l2).await;
    assert_eq!(addrs(&c), pair("β:1", "α:3"));
    assert_eq!(addrs(&s), pair("α:3", "β:1"));
    // the kept accept still gets its own connection
    step("the kept accept polled again");
    let (c1, s1) = tokio::join!(dial(&b, "α:1"), &mut kept);
    assert_eq!(addrs(&c1.unwrap()), pair("β:2", "α:4"));
    assert_eq!(addrs(&s1.unwrap()), pair("α:4", "β:2"));
    drop((c, s));
    close_net(&fx).await;
}

/// Several accepts pending in one task, two on one listener and one on
/// another, all get their connections.
pub async fn accepts_in_one_task(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l1 = listening(&a, ":1").await;
    let l2 = listening(&a, ":2").await;
    let dials = spawn(async move {
        let mut conns = Vec::new();
        for addr in ["α:1", "α:2", "α:1"] {
            conns.push(dial(&b, addr).await.expect("dial"));
        }
        conns
    });
    let (s1, s2, s3) = tokio::join!(
        l1.accept().waiting_for("the first accept on α:1"),
        l2.accept().waiting_for("the accept on α:2"),
        l1.accept().waiting_for("the second accept on α:1"),
    );
    let (s1, s2, s3) = (
        s1.expect("accept"),
        s2.expect("accept"),
        s3.expect("accept"),
    );
    assert_eq!(addrs(&s2), pair("α:4", "β:2"));
    let server: BTreeSet<_> = [&s1, &s2, &s3].into_iter().map(addrs).collect();
    let client: BTreeSet<_> = dials
        .waiting_for("the dialing task")
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
    close_net(&fx).await;
}

/// Dropping a connection shows the peer end of stream and frees the port.
pub async fn conn_drop_frees_port(fx: Fixture) {
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, "").await;
    let (c, mut s) = connect(&b, "α:1", &l).await;
    drop(c);
    let mut buf = [0; 1];
    assert_eq!(
        s.read(&mut buf)
            .waiting_for("read on α:2 to see end of stream after β:1 was dropped")
            .await
            .unwrap(),
        0
    );
    drop(s);
    let (c, s) = connect(&b, "α:1", &l).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    assert_eq!(addrs(&s), pair("α:2", "β:1"));
    close_net(&fx).await;
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
        .waiting_for("listen on :80 through the trait object")
        .await
        .expect("listen through the trait object");
    let serve = spawn(async move {
        let mut s = l.accept().waiting_for("server task: accept").await?;
        let mut buf = [0; 5];
        s.read_exact(&mut buf)
            .waiting_for("server task: read")
            .await?;
        s.write_all(&buf).waiting_for("server task: write").await?;
        io::Result::Ok((s.local_addr().to_string(), s.peer_addr().to_string()))
    });
    let call = spawn(async move {
        let mut c = client
            .dial("α:80")
            .waiting_for("client task: dial α:80")
            .await?;
        c.write_all(b"hello")
            .waiting_for("client task: write")
            .await?;
        let mut buf = [0; 5];
        c.read_exact(&mut buf)
            .waiting_for("client task: read")
            .await?;
        io::Result::Ok((c.local_addr().to_string(), buf))
    });
    let server_side = serve.waiting_for("the server task").await;
    let client_side = call.waiting_for("the client task").await;
    let (server_side, client_side) = (server_side.unwrap().unwrap(), client_side.unwrap().unwrap());
    assert_eq!(server_side, pair("α:1", "β:1"));
    assert_eq!(client_side.0, "β:1");
    assert_eq!(&client_side.1, b"hello");
    close_net(&fx).await;
}

/// With auto-close, closing the last host closes the subnetwork.
pub async fn auto_close(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    fx.net.auto_close();
    close_host(&a).await;
    assert!(!fx.net.is_closed());
    close_host(&b).await;
    assert!(fx.net.is_closed());
    assert_fails(
        fx.net.new_host("γ").waiting_for("new host γ").await,
        VirtError::NetDown,
        &format!("new host {n} γ: network is down"),
    );
}

/// A closed host's name can be taken again (where the registry can remove
/// entries), and the new host starts from port 1.
pub async fn host_name_reuse(fx: Fixture) {
    let (a, _b) = hosts(&fx).await;
    let _l = listening(&a, "").await;
    close_host(&a).await;
    let supports_removal = fx
        .net
        .registry()
        .query("α")
        .waiting_for("registry query α")
        .await
        .is_err();
    if supports_removal {
        let a2 = new_host(&fx, "α").await;
        assert_eq!(listening(&a2, "").await.local_addr().to_string(), "α:1");
    }
    close_net(&fx).await;
}

/// The reference scenario through an event [`Trace`]: the exact events, in
/// order, on any network.
pub async fn reference_scenario_traced(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let trace = Trace::new();
    let (a, b) = (trace.wrap(a), trace.wrap(b));
    let _ = a.dial(":0").waiting_for("dial :0 from α").await;
    let l1 = a.listen("").waiting_for("listen on α").await.unwrap();
    let _ = a.dial(":0").waiting_for("dial :0 from α").await;
    let (c1c, c1s) = tokio::join!(
        b.dial("α:1").waiting_for("dial α:1 from β"),
        l1.accept().waiting_for("accept on α:1")
    );
    let (mut c1c, mut c1s) = (c1c.unwrap(), c1s.unwrap());
    let (c2c, c2s) = tokio::join!(
        b.dial("α:1").waiting_for("dial α:1 from β"),
        l1.accept().waiting_for("accept on α:1")
    );
    let l2 = a.listen(":0").waiting_for("listen on α").await.unwrap();
    ping_pong(&mut c1c, &mut c1s).await;
    c1c.shutdown().waiting_for("shutdown β:1").await.unwrap();
    drop((c1c, c1s, c2c, c2s, l2, l1));
    a.close().waiting_for("close host α").await.unwrap();
    b.close().waiting_for("close host β").await.unwrap();
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
    close_net(&fx).await;
}

/// Closing the subnetwork ends a dial from one of its hosts to another that
/// waits in the listener's queue (α listens on :11 but never accepts) with
/// "network is down", never "connection refused" (the listener went down
/// too, but because its network did).
pub async fn subnetwork_close_ends_cross_host_dial(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let _l = listening(&a, ":11").await;
    let dialing = spawn_blocked("dial α:11 from β", async move {
        b.dial("α:11")
            .waiting_for(
                "dial α:11 from β to end with \"network is down\" after the subnetwork closed",
            )
            .await
    })
    .await;
    step("the subnetwork closed while β dials α:11");
    close_net(&fx).await;
    let dialed = dialing
        .waiting_for("the dialing task")
        .await
        .expect("dialing task");
    assert_fails(
        dialed,
        VirtError::NetDown,
        &format!("dial {n} β:1->α:11: network is down"),
    );
}

/// Closing the subnetwork ends reads blocked on both ends of a connection
/// between two of its hosts with "network is down", never end of stream
/// (`Ok(0)`), even though each end also sees its peer go down.
pub async fn subnetwork_close_ends_cross_host_read(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, "").await;
    let (mut c, mut s) = connect(&b, "α:1", &l).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    assert_eq!(addrs(&s), pair("α:2", "β:1"));
    let read_c = spawn_blocked("read on β:1", async move {
        let mut buf = [0; 8];
        c.read(&mut buf)
            .waiting_for(
                "read on β:1->α:2 to end with \"network is down\" after the subnetwork closed",
            )
            .await
    })
    .await;
    let read_s = spawn_blocked("read on α:2", async move {
        let mut buf = [0; 8];
        s.read(&mut buf)
            .waiting_for(
                "read on α:2->β:1 to end with \"network is down\" after the subnetwork closed",
            )
            .await
    })
    .await;
    step("the subnetwork closed while β:1 and α:2 read");
    close_net(&fx).await;
    let read_c = read_c.waiting_for("the task reading on β:1").await;
    let read_s = read_s.waiting_for("the task reading on α:2").await;
    assert_fails(
        read_c.expect("read task"),
        VirtError::NetDown,
        &format!("read {n} β:1->α:2: network is down"),
    );
    assert_fails(
        read_s.expect("read task"),
        VirtError::NetDown,
        &format!("read {n} α:2->β:1: network is down"),
    );
}

/// Closing host α ends a read blocked on α's end of a connection to β with
/// "host is down"; β's end, whose host is up, sees end of stream (the spec:
/// the peers of a closed host see end of stream), also in a read that was
/// blocked when α closed; and β stays usable: it listens, and a new host γ
/// dials it.
pub async fn host_close_cross_host(fx: Fixture) {
    let n = fx.net.network().to_owned();
    let (a, b) = hosts(&fx).await;
    let l = listening(&a, "").await;
    let (mut c, mut s) = connect(&b, "α:1", &l).await;
    assert_eq!(addrs(&c), pair("β:1", "α:2"));
    assert_eq!(addrs(&s), pair("α:2", "β:1"));
    let read_s = spawn_blocked("read on α:2", async move {
        let mut buf = [0; 8];
        let read = s
            .read(&mut buf)
            .waiting_for("read on α:2->β:1 to end with \"host is down\" after α closed")
            .await;
        (read, s)
    })
    .await;
    let read_c = spawn_blocked("read on β:1", async move {
        let mut buf = [0; 8];
        let read = c
            .read(&mut buf)
            .waiting_for("read on β:1->α:2 to see end of stream after α closed")
            .await;
        (read, c)
    })
    .await;
    step("α closed while α:2 and β:1 read");
    close_host(&a).await;
    let (read, _s) = read_s
        .waiting_for("the task reading on α:2")
        .await
        .expect("read task");
    assert_fails(
        read,
        VirtError::HostDown,
        &format!("read {n} α:2->β:1: host is down"),
    );
    let (read, mut c) = read_c
        .waiting_for("the task reading on β:1")
        .await
        .expect("read task");
    assert_eq!(read.expect("β:1 reads end of stream after α closed"), 0);
    // and again: end of stream stays
    let mut buf = [0; 8];
    assert_eq!(
        c.read(&mut buf)
            .waiting_for("a second read on β:1 after α closed")
            .await
            .expect("β:1 reads end of stream again"),
        0
    );
    assert!(!b.is_closed());

    step("β after α closed: listen, and a new host γ dials it");
    let lb = listening(&b, "").await;
    assert_eq!(lb.local_addr().to_string(), "β:2");
    let g = new_host(&fx, "γ").await;
    let (mut gc, mut bs) = connect(&g, "β:2", &lb).await;
    assert_eq!(addrs(&gc), pair("γ:1", "β:3"));
    assert_eq!(addrs(&bs), pair("β:3", "γ:1"));
    ping_pong(&mut gc, &mut bs).await;
    // and β dials out
    let lg = listening(&g, "").await;
    let (mut bc, mut gs) = connect(&b, "γ:2", &lg).await;
    assert_eq!(addrs(&bc), pair("β:4", "γ:3"));
    ping_pong(&mut bc, &mut gs).await;
    drop(c);
    close_net(&fx).await;
}
