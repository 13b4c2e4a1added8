//! Scenarios over any [`Networker`]: what holds on every network, whether
//! or not its ports are predictable (virtnet hosts, real TCP over the OS).
//!
//! A scenario takes a [`Fixture`] of two access points `a` and `b`. It
//! listens on `""` (any free port), and dials a listener at
//! `listener.local_addr().to_string()`. It asserts nothing about port
//! numbers, nor that an accepted connection shares its listener's port
//! (virtnet gives it a fresh port, TCP the same one): only what holds for
//! both, such as `client.local_addr() == server.peer_addr()`.
//!
//! [`networker_suite!`](crate::networker_suite) makes the tests;
//! [`run`] runs one scenario by name. Both work like their counterparts for
//! the [`network`](crate::network) scenarios (a timeout, two runtimes).
//!
//! # Running it against your networker
//! ```
//! use std::sync::Arc;
//! use conformance_tests::networker::Fixture;
//!
//! conformance_tests::networker_suite!(|| async {
//!     let net = pipenet::Network::new("networker-doc");
//!     let a = net.new_host("α").await.expect("α");
//!     let b = net.new_host("β").await.expect("β");
//!     Fixture::new(Arc::new(a), Arc::new(b)).keep(net)
//! });
//! # fn main() {}
//! ```
//! The factory is called once per scenario; with predictable ports it must
//! return access points of a network no other scenario uses.

use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{poll, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::{Conn, Listener, Networker, VirtError};

use crate::run::{self, timeout};
use crate::waiting::{spawn, step, WaitingFor};
use crate::Failure;

/// What a networker scenario runs on: two access points, where `b` can dial
/// what `a` listens on and the other way round, plus anything that must
/// live as long as they do.
pub struct Fixture {
    /// One access point (the server side, mostly).
    pub a: Arc<dyn Networker>,
    /// The other access point (the client side, mostly).
    pub b: Arc<dyn Networker>,
    keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl Fixture {
    /// A fixture of `a` and `b`.
    pub fn new(a: Arc<dyn Networker>, b: Arc<dyn Networker>) -> Fixture {
        Fixture {
            a,
            b,
            keep: Vec::new(),
        }
    }

    /// A fixture of hosts `α` (`a`) and `β` (`b`), made on the subnetwork
    /// of `fixture`, which is kept as long as this one.
    pub async fn hosts_of(fixture: impl Into<crate::Fixture>) -> Fixture {
        let fixture = fixture.into();
        let a = fixture.net.new_host("α").await.expect("host α");
        let b = fixture.net.new_host("β").await.expect("host β");
        Fixture::new(Arc::new(a), Arc::new(b)).keep(fixture)
    }

    /// Keeps `value` alive until the scenario ends.
    pub fn keep(mut self, value: impl Any + Send + Sync) -> Fixture {
        self.keep.push(Box::new(value));
        self
    }
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("a", &(self.a.network(), self.a.name()))
            .field("b", &(self.b.network(), self.b.name()))
            .field("kept", &self.keep.len())
            .finish()
    }
}

/// Asserts that `r` failed with canonical cause `cause` and its
/// [`io::ErrorKind`], whatever its text.
#[track_caller]
pub fn assert_cause<T: fmt::Debug>(r: io::Result<T>, cause: VirtError, what: &str) {
    let err = match r {
        Ok(v) => panic!("{what}: expected the cause {cause:?}, got Ok({v:?})"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), cause.io_kind(), "{what}: kind of {err}");
    assert_eq!(VirtError::of(&err), Some(cause), "{what}: cause of {err}");
}

/// Listens on any free port of `n`.
async fn listen(n: &dyn Networker) -> Listener {
    n.listen("")
        .waiting_for(format!("listen on {}", n.name()))
        .await
        .unwrap_or_else(|e| panic!("listen on {}: {e}", n.name()))
}

/// Dials `l` (at `l.local_addr().to_string()`) from `from` while `l`
/// accepts; returns (client, server) after checking what holds for both on
/// every network.
pub async fn connect(from: &dyn Networker, l: &Listener) -> (Conn, Conn) {
    let addr = l.local_addr().to_string();
    let (c, s) = tokio::join!(
        from.dial(&addr)
            .waiting_for(format!("dial {addr} from {}", from.name())),
        l.accept().waiting_for(format!("accept on {addr}")),
    );
    let (c, s) = (
        c.unwrap_or_else(|e| panic!("dial {addr}: {e}")),
        s.unwrap_or_else(|e| panic!("accept on {addr}: {e}")),
    );
    check_ends(&c, &s, l);
    (c, s)
}

/// What holds for a connection on every network.
#[track_caller]
fn check_ends(client: &Conn, server: &Conn, l: &Listener) {
    assert_eq!(
        client.local_addr(),
        server.peer_addr(),
        "client local = server peer"
    );
    assert_eq!(
        client.peer_addr().host(),
        l.local_addr().host(),
        "the client's peer is on the listener's host"
    );
    assert_eq!(
        server.local_addr().host(),
        l.local_addr().host(),
        "the server end is on the listener's host"
    );
}

/// `ping` one way, `pong` back.
async fn ping_pong(c: &mut Conn, s: &mut Conn) {
    let mut buf = [0; 4];
    c.write_all(b"ping")
        .waiting_for("write ping")
        .await
        .expect("write ping");
    s.read_exact(&mut buf)
        .waiting_for("read ping")
        .await
        .expect("read ping");
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong")
        .waiting_for("write pong")
        .await
        .expect("write pong");
    c.read_exact(&mut buf)
        .waiting_for("read pong")
        .await
        .expect("read pong");
    assert_eq!(&buf, b"pong");
}

async fn close_both(fx: &Fixture) {
    fx.a.close().waiting_for("close a").await.expect("close a");
    fx.b.close().waiting_for("close b").await.expect("close b");
}

/// Data both ways, on a connection from `b` to `a` and one from `a` to `b`,
/// with consistent addresses.
pub async fn ping_pong_both_ways(fx: Fixture) {
    let la = listen(&*fx.a).await;
    let lb = listen(&*fx.b).await;
    step("b dials a");
    let (mut c, mut s) = connect(&*fx.b, &la).await;
    ping_pong(&mut c, &mut s).await;
    step("a dials b");
    let (mut c2, mut s2) = connect(&*fx.a, &lb).await;
    ping_pong(&mut c2, &mut s2).await;
    // the first connection still works
    ping_pong(&mut s, &mut c).await;
    drop((c, s, c2, s2));
    close_both(&fx).await;
}

/// 1 MiB in each direction at once arrives intact.
pub async fn megabyte_each_way(fx: Fixture) {
    const LEN: usize = 1 << 20;
    let l = listen(&*fx.a).await;
    let (c, s) = connect(&*fx.b, &l).await;
    let pattern = |seed: u8| -> Vec<u8> { (0..LEN).map(|i| (i % 251) as u8 ^ seed).collect() };
    let exchange = |conn: Conn, out: Vec<u8>| {
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
                send.waiting_for("write 1 MiB and shut down"),
                recv.waiting_for("read 1 MiB to end of stream")
            );
            sent.map(|_| got)
        })
    };
    let (from_s, from_c) = (exchange(c, pattern(1)), exchange(s, pattern(2)));
    let got_by_c = from_s.waiting_for("the client's exchange").await.unwrap();
    let got_by_s = from_c.waiting_for("the server's exchange").await.unwrap();
    let (got_by_c, got_by_s) = (got_by_c.unwrap().unwrap(), got_by_s.unwrap().unwrap());
    assert!(
        got_by_c == pattern(2),
        "client received the server's bytes intact"
    );
    assert!(
        got_by_s == pattern(1),
        "server received the client's bytes intact"
    );
    close_both(&fx).await;
}

/// When the peer's end is dropped, reads see end of stream and writes soon
/// fail with `broken pipe` or `connection reset`, worded the same on every
/// network: `write <net> <local>-><peer>: broken pipe`, without an OS error
/// number.
pub async fn peer_dropped(fx: Fixture) {
    let l = listen(&*fx.a).await;
    let (mut c, s) = connect(&*fx.b, &l).await;
    drop(s);
    let mut buf = [0; 8];
    let n = c
        .read(&mut buf)
        .waiting_for("read end of stream from the dropped peer")
        .await
        .expect("end of stream");
    assert_eq!(n, 0);
    // TCP may take a write or two before the peer's reset arrives.
    let err = async {
        loop {
            match c.write_all(&[0; 1024]).await {
                Err(e) => break e,
                Ok(()) => tokio::task::yield_now().await,
            }
        }
    }
    .waiting_for("a write to the dropped peer to fail")
    .await;
    let (net, local, peer) = (c.local_addr().network(), c.local_addr(), c.peer_addr());
    let expected = match err.kind() {
        io::ErrorKind::BrokenPipe => "broken pipe",
        io::ErrorKind::ConnectionReset => "connection reset",
        other => panic!("write to a dropped peer failed with {other:?}: {err}"),
    };
    assert_eq!(
        err.to_string(),
        format!("write {net} {local}->{peer}: {expected}")
    );
}

/// Half-close in each direction: the peer reads end of stream and can still
/// write back.
pub async fn half_close(fx: Fixture) {
    let l = listen(&*fx.a).await;
    for client_first in [true, false] {
        step(if client_first {
            "the client half-closes"
        } else {
            "the server half-closes"
        });
        let (c, s) = connect(&*fx.b, &l).await;
        let (mut first, mut second) = if client_first { (c, s) } else { (s, c) };
        first
            .write_all(b"request")
            .waiting_for("write request")
            .await
            .unwrap();
        first.shutdown().waiting_for("shutdown").await.unwrap();
        let mut got = Vec::new();
        second
            .read_to_end(&mut got)
            .waiting_for("read request to end of stream")
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
            .waiting_for("shutdown the reply")
            .await
            .unwrap();
        got.clear();
        first
            .read_to_end(&mut got)
            .waiting_for("read reply to end of stream")
            .await
            .unwrap();
        assert_eq!(got, b"reply");
    }
    close_both(&fx).await;
}

/// Closing a listener ends a pending accept with "socket is down"
/// ([`io::ErrorKind::NotConnected`]); dials to its address are then refused.
pub async fn listener_close(fx: Fixture) {
    let l = listen(&*fx.a).await;
    let addr = l.local_addr().to_string();
    let mut accept = Box::pin(
        l.accept()
            .waiting_for(format!("accept on {addr} to end with socket is down")),
    );
    assert!(
        poll!(&mut accept).is_pending(),
        "accept with nobody dialing"
    );
    step("listener closed");
    l.close();
    assert_cause(
        accept.await,
        VirtError::SockDown,
        "accept after listener close",
    );
    assert_cause(
        fx.b.dial(&addr)
            .waiting_for(format!("dial {addr} after its listener closed"))
            .await,
        VirtError::ConnRefused,
        "dial to a closed listener",
    );
    // the access point still listens and connects
    let l = listen(&*fx.a).await;
    let (mut c, mut s) = connect(&*fx.b, &l).await;
    ping_pong(&mut c, &mut s).await;
    drop((c, s));
    close_both(&fx).await;
}

/// A dial to a port nobody listens on (any more) is refused.
pub async fn dial_without_listener(fx: Fixture) {
    let l = listen(&*fx.a).await;
    let addr = l.local_addr().to_string();
    drop(l);
    assert_cause(
        fx.b.dial(&addr)
            .waiting_for(format!("dial {addr}, where nobody listens"))
            .await,
        VirtError::ConnRefused,
        "dial without listener",
    );
    // a second try is refused the same way (the failure left nothing behind)
    assert_cause(
        fx.b.dial(&addr)
            .waiting_for(format!("dial {addr} again"))
            .await,
        VirtError::ConnRefused,
        "second dial without listener",
    );
    close_both(&fx).await;
}

/// Accepts dropped while waiting lose no connection: the next accept gets
/// the next dial.
pub async fn dropped_accept_leaks_nothing(fx: Fixture) {
    let l = listen(&*fx.a).await;
    for _ in 0..3 {
        let mut accept = Box::pin(l.accept());
        assert!(
            poll!(&mut accept).is_pending(),
            "accept with nobody dialing"
        );
    }
    let (mut c, mut s) = connect(&*fx.b, &l).await;
    ping_pong(&mut c, &mut s).await;
    drop((c, s));
    close_both(&fx).await;
}

/// A listener is a stream of connections that ends when it is closed.
pub async fn listener_stream(fx: Fixture) {
    let mut l = listen(&*fx.a).await;
    let addr = l.local_addr().to_string();
    for _ in 0..2 {
        let (c, s) = tokio::join!(
            fx.b.dial(&addr).waiting_for(format!("dial {addr}")),
            l.next()
                .waiting_for("the listener stream's next connection"),
        );
        let (mut c, s) = (c.expect("dial"), s.expect("a stream item").expect("accept"));
        let mut s = s;
        check_ends(&c, &s, &l);
        ping_pong(&mut c, &mut s).await;
    }
    l.close();
    assert!(l
        .next()
        .waiting_for("the stream's end after close")
        .await
        .is_none());
    assert!(l
        .next()
        .waiting_for("the stream's end, again")
        .await
        .is_none());
    close_both(&fx).await;
}

/// 50 dials at once from spawned tasks: all accepted, with distinct
/// addresses that match end to end.
pub async fn concurrent_dials(fx: Fixture) {
    const N: usize = 50;
    let l = listen(&*fx.a).await;
    let addr = l.local_addr().to_string();
    let dials: Vec<_> = (0..N)
        .map(|i| {
            let (b, addr) = (fx.b.clone(), addr.clone());
            spawn(async move {
                b.dial(&addr)
                    .waiting_for(format!("dial #{i} of {addr}"))
                    .await
            })
        })
        .collect();
    let mut server_peers = BTreeSet::new();
    let mut server_locals = BTreeSet::new();
    let mut accepted = Vec::new();
    for i in 0..N {
        let s = l
            .accept()
            .waiting_for(format!("accept #{i} on {addr}"))
            .await
            .expect("accept");
        server_peers.insert(s.peer_addr().to_string());
        server_locals.insert(s.local_addr().to_string());
        accepted.push(s);
    }
    let mut client_locals = BTreeSet::new();
    let mut client_peers = BTreeSet::new();
    for (i, d) in dials.into_iter().enumerate() {
        let c = d
            .waiting_for(format!("dial task #{i}"))
            .await
            .unwrap()
            .expect("dial");
        assert_eq!(c.peer_addr().host(), l.local_addr().host());
        client_locals.insert(c.local_addr().to_string());
        client_peers.insert(c.peer_addr().to_string());
        accepted.push(c);
    }
    assert_eq!(client_locals.len(), N, "distinct client addresses");
    assert_eq!(client_locals, server_peers);
    assert_eq!(client_peers, server_locals);
    drop(accepted);
    close_both(&fx).await;
}

/// Listeners and connections moved into other tasks keep working: a
/// server task owns the listener and each accepted connection goes to a
/// task of its own; a client connection is written in one task and read in
/// another.
pub async fn moved_across_tasks(fx: Fixture) {
    const CLIENTS: usize = 3;
    let l = listen(&*fx.a).await;
    let addr = l.local_addr().to_string();
    let server = spawn(async move {
        let mut echoes = Vec::new();
        for i in 0..CLIENTS {
            let mut s = l
                .accept()
                .waiting_for(format!("server task: accept #{i}"))
                .await?;
            echoes.push(spawn(async move {
                let mut buf = [0; 5];
                s.read_exact(&mut buf)
                    .waiting_for("echo task: read")
                    .await?;
                s.write_all(&buf).waiting_for("echo task: write").await?;
                io::Result::Ok(s.peer_addr().to_string())
            }));
        }
        io::Result::Ok((l, echoes))
    });
    let mut peers = BTreeSet::new();
    for i in 0..CLIENTS {
        let (b, addr) = (fx.b.clone(), addr.clone());
        let writer = spawn(async move {
            let mut c = b
                .dial(&addr)
                .waiting_for(format!("client task #{i}: dial"))
                .await?;
            c.write_all(b"hello")
                .waiting_for(format!("client task #{i}: write"))
                .await?;
            io::Result::Ok(c)
        });
        let mut c = writer
            .waiting_for("a client task")
            .await
            .unwrap()
            .expect("client");
        let reader = spawn(async move {
            let mut buf = [0; 5];
            c.read_exact(&mut buf)
                .waiting_for(format!("reader task #{i}: read"))
                .await?;
            io::Result::Ok((c, buf))
        });
        let (c, buf) = reader
            .waiting_for("a reader task")
            .await
            .unwrap()
            .expect("read echo");
        assert_eq!(&buf, b"hello");
        peers.insert(c.local_addr().to_string());
    }
    let (l, echoes) = server
        .waiting_for("the server task")
        .await
        .unwrap()
        .expect("server");
    let mut echoed = BTreeSet::new();
    for echo in echoes {
        echoed.insert(
            echo.waiting_for("an echo task")
                .await
                .unwrap()
                .expect("echo"),
        );
    }
    assert_eq!(peers, echoed, "the server saw each client's address");
    // the listener came back from its task and still accepts
    let (mut c, mut s) = connect(&*fx.b, &l).await;
    ping_pong(&mut c, &mut s).await;
    drop((c, s, l));
    close_both(&fx).await;
}

macro_rules! scenarios {
    ($d:tt $($name:ident),* $(,)?) => {
        /// The names of all networker scenarios, in the order they are listed.
        pub const SCENARIOS: &[&str] = &[$(stringify!($name)),*];

        fn scenario(name: &str) -> Option<fn(Fixture) -> BoxFuture<'static, ()>> {
            match name {
                $(stringify!($name) => Some(|fx| Box::pin($name(fx))),)*
                _ => None,
            }
        }

        /// Expands into two `#[tokio::test]`s per networker scenario,
        /// `networker_scenarios::current_thread::<scenario>` and
        /// `networker_scenarios::multi_thread::<scenario>`, each calling `$factory()`
        /// (an async closure or function returning something
        /// `Into<`[`networker::Fixture`](crate::networker::Fixture)`>`) and
        /// running the scenario with
        /// [`networker::run_with_timeout`](crate::networker::run_with_timeout).
        ///
        /// `networker_suite!(factory, timeout = Duration::from_secs(N))` sets
        /// the timeout, as for [`network_suite!`](crate::network_suite). It
        /// defines the module `networker_scenarios` and two private functions
        /// `__virtnet_networker_*` where it is invoked.
        #[macro_export]
        macro_rules! networker_suite {
            (@suite $d factory:expr, $d timeout:expr) => {
                async fn __virtnet_networker_fixture() -> $crate::networker::Fixture {
                    (($d factory)().await).into()
                }
                fn __virtnet_networker_timeout() -> ::std::time::Duration {
                    $crate::suite_timeout($d timeout)
                }
                /// The networker scenarios.
                mod networker_scenarios {
                    $crate::__runtime_tests!(
                        current_thread,
                        multi_thread,
                        $crate::networker::__case,
                        super::super::__virtnet_networker_timeout,
                        super::super::__virtnet_networker_fixture,
                        [$($name),*]
                    );
                }
            };
            ($d factory:expr, timeout = $d timeout:expr $d(,)?) => {
                $crate::networker_suite!(@suite $d factory, ::core::option::Option::Some($d timeout));
            };
            ($d factory:expr $d(,)?) => {
                $crate::networker_suite!(@suite $d factory, ::core::option::Option::None);
            };
        }
    };
}

scenarios!($
    ping_pong_both_ways,
    megabyte_each_way,
    half_close,
    peer_dropped,
    listener_close,
    dial_without_listener,
    dropped_accept_leaks_nothing,
    listener_stream,
    concurrent_dials,
    moved_across_tasks,
);

/// Runs the networker scenario called `name` on `fixture`, with the
/// [`timeout`] of the environment or
/// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT); see [`crate::run`].
pub async fn run(name: &str, fixture: Fixture) -> Result<(), Failure> {
    run_with_timeout(name, fixture, timeout()).await
}

/// [`run`] with at most `timeout` for the scenario.
pub async fn run_with_timeout(
    name: &str,
    fixture: Fixture,
    timeout: Duration,
) -> Result<(), Failure> {
    run::run_found(name, timeout, scenario(name), fixture).await
}

/// One test of [`networker_suite!`](crate::networker_suite).
#[doc(hidden)]
pub async fn __case<X: Into<Fixture>>(
    name: &str,
    timeout: Duration,
    fixture: impl Future<Output = X>,
) {
    run::case(name, timeout, fixture, scenario(name)).await
}
