//! `lonet::bridge`: real programs on a lonet network, in-process. OS
//! servers and clients of the tests themselves (echo, sink, patterned
//! streams), and real programs: a PostgreSQL server with `psql` (under a
//! partition and its heal) and `python3 -m http.server` with `curl`.
//!
//! Each test has its own network and temporary root. Tests wait on events
//! (bytes arriving, the bridge's [`Event`]s, child output and exits); the
//! hang guard only turns a hang into a failure, except in two windows
//! where a test shows that something does *not* happen (a writer that
//! nobody reads from stops; a query across a partition gets no answer):
//! anything happening in them is a bug, not a race.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{unique_net, HANG_GUARD};
use lonet::bridge::{Bridge, End, Event, Route, Side, BUFFER};
use lonet::{Conn, Links, Listener, SubNetwork, VirtError};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use virtnet_testdata::programs::{echo_server, http_server, noise, postgres_server, program, Psql};

/// How long a test watches to see that something does not happen (see
/// the file's docs).
const HELD_FOR: Duration = Duration::from_millis(700);

/// `f`, or a panic naming `what` if it hangs.
async fn guard<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}

/// A fresh network in a temporary root, and a bridge on it whose events
/// the test reads.
struct Setup {
    _tmp: TempDir,
    net: SubNetwork,
    bridge: Bridge,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Setup {
    async fn new(prefix: &str) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let net = lonet::Builder::new(&unique_net(prefix))
            .root(tmp.path())
            .join()
            .await
            .unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let bridge = Bridge::with_observer(&net, move |e| {
            let _ = tx.send(e.clone());
        });
        Setup {
            _tmp: tmp,
            net,
            bridge,
            events,
        }
    }

    /// The next event.
    async fn event(&mut self) -> Event {
        guard("a bridge event", self.events.recv())
            .await
            .expect("the bridge is alive")
    }

    /// Events up to the first that `pick` picks, which it returns.
    async fn event_where<T>(&mut self, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        loop {
            let event = self.event().await;
            if let Some(t) = pick(&event) {
                return t;
            }
        }
    }

    /// Events up to the `Closed` one of a connection whose route shows as
    /// `route`; returns how it ended.
    async fn closed(&mut self, route: &str) -> End {
        self.event_where(|e| match e {
            Event::Closed { route: r, end, .. } if r.to_string() == route => Some(end.clone()),
            _ => None,
        })
        .await
    }

    /// Host α listening on `α:10`, and a forward from β to it: α's
    /// listener (which keeps α) and the forward's address.
    async fn forward_to_alpha(&self) -> (Listener, SocketAddr) {
        let alpha = self.net.new_host("α").await.unwrap();
        let l = alpha.listen(":10").await.unwrap();
        (l, self.forward("β", "α:10").await)
    }

    /// Forwards a free local port from `from` to `to`; the port's address.
    async fn forward(&self, from: &str, to: &str) -> SocketAddr {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        self.bridge
            .forward(any, from, to)
            .await
            .unwrap()
            .local_addr()
    }
}

/// An OS client of the forward at `port`, and its connection as `l`
/// accepts it.
async fn connect_through(port: SocketAddr, l: &Listener) -> (TcpStream, Conn) {
    let os = TcpStream::connect(port).await.unwrap();
    (os, guard("accept", l.accept()).await.unwrap())
}

/// An OS listener whose connections the test takes one by one.
async fn os_server() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

async fn accept_os(l: &TcpListener) -> TcpStream {
    guard("an OS accept", l.accept()).await.unwrap().0
}

async fn read_n(r: &mut (impl AsyncRead + Unpin), n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    guard("bytes", r.read_exact(&mut buf)).await.unwrap();
    buf
}

/// Reads to end of stream; what came.
async fn read_to_end(r: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut buf = Vec::new();
    guard("end of stream", r.read_to_end(&mut buf))
        .await
        .unwrap();
    buf
}

/// The kind of error the next reads end with (after any bytes).
async fn read_error(r: &mut (impl AsyncRead + Unpin)) -> std::io::ErrorKind {
    let mut buf = [0; 1024];
    guard("a read error", async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) => panic!("end of stream, not an error"),
                Ok(_) => continue,
                Err(e) => return e.kind(),
            }
        }
    })
    .await
}

/// Connects to `port` and reads: the kind of error either ends with (a
/// connection the bridge resets at once may fail to connect already).
async fn connect_and_read(port: SocketAddr) -> std::io::ErrorKind {
    match TcpStream::connect(port).await {
        Ok(mut os) => read_error(&mut os).await,
        Err(e) => e.kind(),
    }
}

/// Closes `s` with a TCP RST.
fn rst(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exposed_echo_server_answers_lonet_dials_with_predictable_addresses() {
    let mut s = Setup::new("bexpose").await;
    let echo = echo_server().await;
    let exposed = s.bridge.expose("α:7", &echo.to_string()).await.unwrap();
    assert_eq!(exposed.local_addr().to_string(), "α:7");
    assert_eq!(exposed.targets(), [echo]);
    let beta = s.net.new_host("β").await.unwrap();

    let mut c1 = beta.dial("α:7").await.unwrap();
    let mut c2 = beta.dial("α:7").await.unwrap();
    assert_eq!(
        (c1.local_addr().to_string(), c1.peer_addr().to_string()),
        ("β:1".to_owned(), "α:1".to_owned())
    );
    assert_eq!(
        (c2.local_addr().to_string(), c2.peer_addr().to_string()),
        ("β:2".to_owned(), "α:2".to_owned())
    );
    c1.write_all(b"one").await.unwrap();
    c2.write_all(b"two").await.unwrap();
    assert_eq!(read_n(&mut c2, 3).await, b"two");
    assert_eq!(read_n(&mut c1, 3).await, b"one");

    // Each connection was announced, with both of its sides.
    let mut opened = Vec::new();
    while opened.len() < 2 {
        if let Event::Opened { route } = s.event().await {
            assert!(matches!(route, Route::Exposed { server, .. } if server == echo));
            opened.push(route.to_string());
        }
    }
    opened.sort();
    assert_eq!(
        opened,
        [
            format!("α:1 <- β:1 -> {echo}"),
            format!("α:2 <- β:2 -> {echo}")
        ]
    );

    c1.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut c1).await, b"");
    let end = s.closed(&format!("α:1 <- β:1 -> {echo}")).await;
    assert_eq!(end, End::Closed);
    assert_eq!(s.bridge.open_connections(), 1);
    drop(c2);
    s.bridge.shutdown(HANG_GUARD).await.unwrap();
    s.net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_makes_os_clients_dial_from_its_host() {
    let mut s = Setup::new("bforward").await;
    let (l, port) = s.forward_to_alpha().await;

    let (mut os1, mut a1) = connect_through(port, &l).await;
    let (mut os2, mut a2) = connect_through(port, &l).await;
    assert_eq!(
        (a1.local_addr().to_string(), a1.peer_addr().to_string()),
        ("α:1".to_owned(), "β:1".to_owned())
    );
    assert_eq!(
        (a2.local_addr().to_string(), a2.peer_addr().to_string()),
        ("α:2".to_owned(), "β:2".to_owned())
    );
    os1.write_all(b"from os1").await.unwrap();
    assert_eq!(read_n(&mut a1, 8).await, b"from os1");
    a2.write_all(b"to os2").await.unwrap();
    assert_eq!(read_n(&mut os2, 6).await, b"to os2");

    let client = os1.local_addr().unwrap();
    let route = s
        .event_where(|e| match e {
            Event::Opened { route } if matches!(route, Route::Forwarded { client: c, .. } if *c == client) => {
                Some(route.to_string())
            }
            _ => None,
        })
        .await;
    assert_eq!(route, format!("{client} -> β:1 -> α:1"));

    drop((os1, os2));
    assert_eq!(read_to_end(&mut a1).await, b"");
    assert_eq!(read_to_end(&mut a2).await, b"");
    drop((a1, a2));
    s.bridge.shutdown(HANG_GUARD).await.unwrap();
    s.net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closes_are_carried_both_ways() {
    let mut s = Setup::new("bhalf").await;

    // Forward: the OS client half-closes; the lonet side reads its end and
    // still answers, then half-closes too.
    let (l, port) = s.forward_to_alpha().await;
    let (mut os, mut conn) = connect_through(port, &l).await;
    os.write_all(b"question").await.unwrap();
    os.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut conn).await, b"question");
    conn.write_all(b"answer after your end").await.unwrap();
    assert_eq!(read_n(&mut os, 21).await, b"answer after your end");
    conn.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut os).await, b"");
    let client = os.local_addr().unwrap();
    assert_eq!(
        s.closed(&format!("{client} -> β:1 -> α:1")).await,
        End::Closed
    );

    // Expose: the lonet dialer half-closes; the OS server reads its end
    // and still answers, then closes.
    let (server, at) = os_server().await;
    s.bridge.expose("γ:5", &at.to_string()).await.unwrap();
    let delta = s.net.new_host("δ").await.unwrap();
    let mut dialer = delta.dial("γ:5").await.unwrap();
    let mut accepted = accept_os(&server).await;
    dialer.write_all(b"request").await.unwrap();
    dialer.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut accepted).await, b"request");
    accepted.write_all(b"response").await.unwrap();
    drop(accepted);
    assert_eq!(read_to_end(&mut dialer).await, b"response");
    assert_eq!(s.closed(&format!("γ:1 <- δ:1 -> {at}")).await, End::Closed);
    s.bridge.shutdown(HANG_GUARD).await.unwrap();
    s.net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_are_carried_both_ways() {
    let mut s = Setup::new("breset").await;
    let (l, port) = s.forward_to_alpha().await;

    // An OS client's RST: the lonet side's read fails with a reset.
    let (os, mut conn) = connect_through(port, &l).await;
    let client = os.local_addr().unwrap();
    rst(os);
    let err = guard("a read", conn.read(&mut [0; 16])).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert_eq!(
        s.closed(&format!("{client} -> β:1 -> α:1")).await,
        End::Reset { by: Side::Os }
    );
    drop(conn);

    // A lonet reset: the OS client's read fails with a reset.
    let (mut os, conn) = connect_through(port, &l).await;
    os.write_all(b"x").await.unwrap();
    let client = os.local_addr().unwrap();
    conn.reset();
    assert_eq!(
        read_error(&mut os).await,
        std::io::ErrorKind::ConnectionReset
    );
    let end = s.closed(&format!("{client} -> β:1 -> α:1")).await;
    assert_eq!(end, End::Reset { by: Side::Network });

    // The same through an expose: the real server's RST reaches the lonet
    // dialer, and the dialer's reset reaches the real server.
    let (server, at) = os_server().await;
    s.bridge.expose("γ:5", &at.to_string()).await.unwrap();
    let delta = s.net.new_host("δ").await.unwrap();
    let mut dialer = delta.dial("γ:5").await.unwrap();
    rst(accept_os(&server).await);
    let err = guard("a read", dialer.read(&mut [0; 16]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    let dialer = delta.dial("γ:5").await.unwrap();
    let mut accepted = accept_os(&server).await;
    dialer.reset();
    assert_eq!(
        read_error(&mut accepted).await,
        std::io::ErrorKind::ConnectionReset
    );
    s.bridge.shutdown(HANG_GUARD).await.unwrap();
    s.net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_dials_and_connects_reset_the_connecting_side() {
    let mut s = Setup::new("bfail").await;
    // A forward to a host that does not exist: the OS client is reset, and
    // the bridge says why.
    let port = s.forward("β", "nobody:1").await;
    assert_eq!(
        connect_and_read(port).await,
        std::io::ErrorKind::ConnectionReset
    );
    let (to, error) = s
        .event_where(|e| match e {
            Event::Failed { to, error, .. } => Some((to.clone(), error.clone())),
            _ => None,
        })
        .await;
    assert_eq!(to, "nobody:1");
    assert!(error.ends_with("β:1->nobody:1: no such host"), "{error}");

    // A refused dial likewise.
    let _alpha = s.net.new_host("α").await.unwrap();
    let port = s.forward("β", "α:99").await;
    assert_eq!(
        connect_and_read(port).await,
        std::io::ErrorKind::ConnectionReset
    );
    let error = s
        .event_where(|e| match e {
            Event::Failed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .await;
    assert!(error.ends_with("connection refused"), "{error}");

    // An exposed port whose real server is gone: the dial is accepted,
    // then reset.
    let (gone, at) = os_server().await;
    drop(gone);
    s.bridge.expose("γ:5", &at.to_string()).await.unwrap();
    let delta = s.net.new_host("δ").await.unwrap();
    // The reset may come before the dialer has read the handshake's reply.
    let reset = match delta.dial("γ:5").await {
        Ok(mut dialer) => read_error(&mut dialer).await,
        Err(e) => e.kind(),
    };
    assert_eq!(reset, std::io::ErrorKind::ConnectionReset);
    let event = s
        .event_where(|e| matches!(e, Event::Failed { .. }).then(|| e.to_string()))
        .await;
    let said = format!("bridge: γ:1 <- δ:1 -> {at}: connect: ");
    assert!(event.starts_with(&said), "{event}");
    assert!(event.contains("refused"), "{event}");
    s.bridge.shutdown(HANG_GUARD).await.unwrap();
    s.net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_fail_naming_them() {
    let s = Setup::new("bargs").await;
    let err = s.bridge.expose("α", "127.0.0.1:1").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "bridge expose α to 127.0.0.1:1: address α: missing port in address"
    );
    let err = s.bridge.expose(":5", "127.0.0.1:1").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().ends_with("address :5: no host"), "{err}");
    let err = s.bridge.expose("α:5", "127.0.0.1").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .starts_with("bridge expose α:5 to 127.0.0.1: "),
        "{err}"
    );
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let err = s.bridge.forward(any, "β", "α").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "bridge forward 127.0.0.1:0 from β to α: address α: missing port in address"
    );
    // A port in use, on the OS and on a host.
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = taken.local_addr().unwrap();
    let err = s.bridge.forward(at, "β", "α:1").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    s.bridge.expose("α:5", "127.0.0.1:1").await.unwrap();
    let err = s.bridge.expose("α:5", "127.0.0.1:2").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "bridge expose α:5 to 127.0.0.1:2: listen {} α:5: address already in use",
            s.net.network()
        )
    );
    // After the shutdown, nothing more.
    s.bridge.shutdown(Duration::ZERO).await.unwrap();
    let err = s.bridge.expose("α:6", "127.0.0.1:1").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
    assert_eq!(
        err.to_string(),
        "bridge expose α:6 to 127.0.0.1:1: the bridge is shut down"
    );
    s.net.close().await.unwrap();
}

/// A deterministic stream of bytes: byte `i` is `data[i % len]`, with a
/// period that no chunk size here divides.
struct Pattern(Arc<Vec<u8>>);

impl Pattern {
    fn new(seed: u64) -> Pattern {
        let mut x = seed | 1;
        let data = (0..(1 << 20) + 13)
            .map(|_| {
                // xorshift64
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        Pattern(Arc::new(data))
    }

    /// Up to `max` bytes of the stream from `offset`.
    fn at(&self, offset: u64, max: usize) -> &[u8] {
        let start = (offset % self.0.len() as u64) as usize;
        let end = self.0.len().min(start + max);
        &self.0[start..end]
    }

    /// Writes the first `total` bytes of the stream, then half-closes.
    async fn send(&self, w: &mut (impl AsyncWrite + Unpin), total: u64) {
        let mut sent = 0;
        while sent < total {
            let chunk = self.at(sent, (total - sent).min(1 << 16) as usize);
            w.write_all(chunk).await.unwrap();
            sent += chunk.len() as u64;
        }
        w.shutdown().await.unwrap();
    }

    /// Reads to end of stream, checking every byte; how many came.
    async fn check(&self, r: &mut (impl AsyncRead + Unpin)) -> u64 {
        let mut buf = vec![0; 1 << 16];
        let mut got = 0;
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                return got;
            }
            let mut done = 0;
            while done < n {
                let want = self.at(got, n - done);
                assert!(
                    buf[done..done + want.len()] == *want,
                    "bytes {got}..{} differ",
                    got + want.len() as u64
                );
                done += want.len();
                got += want.len() as u64;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_mib_each_way_at_once_arrive_intact_through_forward_and_expose() {
    const TOTAL: u64 = 64 << 20;
    let s = Setup::new("bbulk").await;
    let (server, at) = os_server().await;
    s.bridge.expose("α:7", &at.to_string()).await.unwrap();
    let port = s.forward("β", "α:7").await;

    let (up, down) = (Arc::new(Pattern::new(1)), Arc::new(Pattern::new(2)));
    let client = TcpStream::connect(port).await.unwrap();
    let accepted = accept_os(&server).await;
    let side = |stream: TcpStream, send: Arc<Pattern>, check: Arc<Pattern>| async move {
        let (mut r, mut w) = stream.into_split();
        let sending = tokio::spawn(async move { send.send(&mut w, TOTAL).await });
        let got = check.check(&mut r).await;
        sending.await.unwrap();
        got
    };
    let (client_got, server_got) = guard(
        "64 MiB each way",
        futures_join(
            side(client, up.clone(), down.clone()),
            side(accepted, down, up),
        ),
    )
    .await;
    assert_eq!((client_got, server_got), (TOTAL, TOTAL));
    s.bridge.shutdown(HANG_GUARD).await.unwrap();
    s.net.close().await.unwrap();
}

/// Both futures, at once, in tasks of their own.
async fn futures_join<A, B>(a: A, b: B) -> (A::Output, B::Output)
where
    A: std::future::Future + Send + 'static,
    B: std::future::Future + Send + 'static,
    A::Output: Send,
    B::Output: Send,
{
    let (a, b) = tokio::join!(tokio::spawn(a), tokio::spawn(b));
    (a.unwrap(), b.unwrap())
}

/// The largest buffer the kernel gives a TCP socket for receiving and for
/// sending, by its autotuning limits.
fn tcp_buffer_limits() -> (u64, u64) {
    let max = |file: &str| {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(64 << 20)
    };
    (
        max("/proc/sys/net/ipv4/tcp_rmem"),
        max("/proc/sys/net/ipv4/tcp_wmem"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_stops_the_writer_at_a_bounded_count() {
    let s = Setup::new("bpressure").await;
    let (server, at) = os_server().await;
    s.bridge.expose("α:7", &at.to_string()).await.unwrap();
    let port = s.forward("β", "α:7").await;
    let mut client = TcpStream::connect(port).await.unwrap();
    let mut accepted = accept_os(&server).await;

    // The chain holds three TCP connections (client -> forward, β -> α,
    // expose -> server), each at most a receive and a send buffer, and the
    // bridge's two buffers of this direction. An unbounded queue anywhere
    // would let the writer go past that.
    let (rmem, wmem) = tcp_buffer_limits();
    let bound = 3 * (rmem + wmem) + 2 * BUFFER as u64;
    let pattern = Pattern::new(3);
    let mut written: u64 = 0;
    loop {
        let chunk = pattern.at(written, 1 << 20);
        match tokio::time::timeout(HELD_FOR, client.write(chunk)).await {
            Ok(n) => written += n.unwrap() as u64,
            Err(_) => break, // stalled: nobody reads
        }
        assert!(
            written <= bound,
            "the writer went on past {bound} bytes with nobody reading"
        );
    }
    assert!(written > 0);
    eprintln!("the writer stopped after {written} bytes (bound {bound})");

    // The reader reads again: every byte written arrives, in order, and
    // the writer finishes.
    let (mut r, mut w) = client.into_split();
    let total = written + (8 << 20);
    let writer = tokio::spawn(async move {
        let mut sent = written;
        while sent < total {
            let chunk = pattern.at(sent, (total - sent).min(1 << 20) as usize);
            w.write_all(chunk).await.unwrap();
            sent += chunk.len() as u64;
        }
        w.shutdown().await.unwrap();
        pattern
    });
    let mut got = Vec::new();
    let check = Pattern::new(3);
    let n = guard("the held bytes", check.check(&mut accepted)).await;
    assert_eq!(n, total);
    let _ = writer.await.unwrap();
    accepted.shutdown().await.unwrap();
    guard("end", r.read_to_end(&mut got)).await.unwrap();
    assert!(got.is_empty());
    s.bridge.shutdown(HANG_GUARD).await.unwrap();
    s.net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_listeners_at_once_lets_open_connections_finish_then_hosts_leave() {
    let mut s = Setup::new("bshut").await;
    let echo = echo_server().await;
    s.bridge.expose("α:7", &echo.to_string()).await.unwrap();
    let port = s.forward("β", "α:7").await;
    let mut open = TcpStream::connect(port).await.unwrap();
    open.write_all(b"before").await.unwrap();
    assert_eq!(read_n(&mut open, 6).await, b"before");
    let mut hosts = s.net.registry().list().await.unwrap();
    hosts.sort();
    assert_eq!(
        hosts.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
        ["α", "β"]
    );

    // The listeners close first, when `close_listeners` (the shutdown's
    // first step) returns: new connections are refused, by the OS and on
    // the network, while the open one goes on.
    s.bridge.close_listeners().await;
    let refused = TcpStream::connect(port).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let gamma = s.net.new_host("γ").await.unwrap();
    let refused = gamma.dial("α:7").await.unwrap_err();
    assert_eq!(VirtError::of(&refused), Some(VirtError::ConnRefused));
    let bridge = s.bridge.clone();
    let shutdown = tokio::spawn(async move { bridge.shutdown(HANG_GUARD).await });
    open.write_all(b"during").await.unwrap();
    assert_eq!(read_n(&mut open, 6).await, b"during");
    assert!(!shutdown.is_finished());
    open.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut open).await, b"");
    guard("the shutdown", shutdown).await.unwrap().unwrap();
    assert_eq!(s.bridge.open_connections(), 0);
    let hosts = s.net.registry().list().await.unwrap();
    assert_eq!(
        hosts.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
        ["γ"]
    );
    let client = open.local_addr().unwrap();
    assert_eq!(
        s.closed(&format!("{client} -> β:1 -> α:1")).await,
        End::Closed
    );
    s.net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_open_past_the_grace_are_reset() {
    let mut s = Setup::new("bgrace").await;
    let echo = echo_server().await;
    s.bridge.expose("α:7", &echo.to_string()).await.unwrap();
    let port = s.forward("β", "α:7").await;
    let mut open = TcpStream::connect(port).await.unwrap();
    open.write_all(b"hi").await.unwrap();
    assert_eq!(read_n(&mut open, 2).await, b"hi");
    let client = open.local_addr().unwrap();
    guard("the shutdown", s.bridge.shutdown(Duration::from_millis(10)))
        .await
        .unwrap();
    assert_eq!(
        read_error(&mut open).await,
        std::io::ErrorKind::ConnectionReset
    );
    // Both legs are cut; the reset of one may reach the other first.
    let (mut forward_leg, mut expose_leg) = (None, None);
    while forward_leg.is_none() || expose_leg.is_none() {
        if let Event::Closed { route, end, .. } = s.event().await {
            match route {
                Route::Forwarded { client: c, .. } if c == client => forward_leg = Some(end),
                Route::Exposed { .. } => expose_leg = Some(end),
                _ => {}
            }
        }
    }
    let (forward_leg, expose_leg) = (forward_leg.unwrap(), expose_leg.unwrap());
    assert!(
        [&forward_leg, &expose_leg].contains(&&End::Cut),
        "{forward_leg:?} {expose_leg:?}"
    );
    for end in [forward_leg, expose_leg] {
        assert!(matches!(end, End::Cut | End::Reset { .. }), "{end:?}");
    }
    assert!(s.net.registry().list().await.unwrap().is_empty());
    s.net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_bridge_stops_it() {
    let s = Setup::new("bdrop").await;
    let echo = echo_server().await;
    s.bridge.expose("α:7", &echo.to_string()).await.unwrap();
    let port = s.forward("β", "α:7").await;
    let mut open = TcpStream::connect(port).await.unwrap();
    open.write_all(b"hi").await.unwrap();
    assert_eq!(read_n(&mut open, 2).await, b"hi");
    let Setup {
        net, bridge, _tmp, ..
    } = s;
    drop(bridge);
    assert_eq!(
        read_error(&mut open).await,
        std::io::ErrorKind::ConnectionReset
    );
    guard("the forward's listener to close", async {
        while TcpStream::connect(port).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_reaches_postgres_through_the_bridge_and_a_partition_stalls_it_until_healed() {
    let mut s = Setup::new("bpsql").await;
    let (user, server, db) = postgres_server();
    s.bridge.expose("α:5432", &server).await.unwrap();
    let port = s.forward("β", "α:5432").await;
    let mut psql = Psql::start(&format!("postgresql://{user}@{port}/{db}"));

    psql.send("SELECT 42;").await;
    assert_eq!(psql.line().await, "42");
    psql.send("SELECT g FROM generate_series(1, 3) g;").await;
    for want in ["1", "2", "3"] {
        assert_eq!(psql.line().await, want);
    }
    let route = s
        .event_where(|e| match e {
            Event::Opened { route } if matches!(route, Route::Forwarded { .. }) => {
                Some(route.to_string())
            }
            _ => None,
        })
        .await;
    assert!(route.ends_with(" -> β:1 -> α:1"), "{route}");

    // A partition between β and α holds the query (and its answer): set in
    // this process, it is in force when `partition` returns.
    let faults = s.net.faults();
    faults.partition(Links::pair("β", "α")).await.unwrap();
    psql.send("SELECT 'after the heal';").await;
    let held = tokio::time::timeout(HELD_FOR, psql.line()).await;
    assert!(held.is_err(), "a query crossed a partition: {held:?}");
    faults.heal_all().await.unwrap();
    assert_eq!(psql.line().await, "after the heal");
    psql.finish().await;
    s.bridge.shutdown(HANG_GUARD).await.unwrap();
    s.net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_a_large_file_from_python_http_server_through_the_bridge() {
    let mut s = Setup::new("bhttp").await;
    let site = tempfile::tempdir().unwrap();
    let file = noise(20 << 20, 7);
    std::fs::write(site.path().join("big.bin"), &file).unwrap();
    let (_server, at) = http_server(site.path()).await;
    s.bridge.expose("α:80", &at.to_string()).await.unwrap();
    let port = s.forward("β", "α:80").await;

    let out = site.path().join("fetched.bin");
    let curl = tokio::process::Command::new(program("curl", "curl"))
        .args(["-sS", "--fail", "-o"])
        .arg(&out)
        .arg(format!("http://{port}/big.bin"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let curl = guard("curl", curl).await.unwrap();
    assert!(curl.status.success(), "curl: {curl:?}");
    let fetched = std::fs::read(&out).unwrap();
    assert_eq!(fetched.len(), file.len());
    assert!(fetched == file, "the fetched file differs");

    // Both legs closed cleanly, with the whole file counted out.
    let mut ends = Vec::new();
    while ends.len() < 2 {
        if let Event::Closed {
            route,
            end,
            outward,
            inward,
            ..
        } = s.event().await
        {
            ends.push((matches!(route, Route::Exposed { .. }), end, inward, outward));
        }
    }
    for (exposed, end, inward, outward) in ends {
        assert_eq!(end, End::Closed);
        let (request, response) = if exposed {
            (outward, inward)
        } else {
            (inward, outward)
        };
        assert!(response > file.len() as u64, "{response}");
        assert!(request > 0);
    }
    s.bridge.shutdown(HANG_GUARD).await.unwrap();
    s.net.close().await.unwrap();
}
