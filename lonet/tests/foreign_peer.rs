//! Faults on connections with a peer that does not shape: a raw TCP peer
//! that speaks the reference lonet's handshake and nothing more, as a
//! reference Go/Python process does (it registers its OS address, answers
//! dials of its host, refuses others as "no such host"). The Rust end must
//! apply every fault in full, in both directions: it shapes what it sends
//! too, and holds, fails or delays the dials the peer makes.
//!
//! Timing assertions are lower bounds only ("never early"); where a test
//! checks that bytes do *not* cross, it does so in one bounded window after
//! the fault is in place (set in this process, so in place at once).

use std::future::Future;
use std::time::Duration;

use lonet::handshake;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use virtnet_core::{Addr, Conn, Host, Links, SubNetwork, VirtError};

/// How long a test watches for bytes that must not arrive.
const QUIET: Duration = Duration::from_millis(300);
/// A guard against hangs only.
const HANG_GUARD: Duration = Duration::from_secs(30);

async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}

/// A peer that does not shape: host `ρ` of the network, served by a raw
/// TCP listener, announced in the registry as a reference process does.
struct RawPeer {
    network: String,
    os_addr: String,
    /// Connections dialed to `ρ`, after the `connected` reply.
    accepted: mpsc::UnboundedReceiver<TcpStream>,
    next_port: u32,
}

impl RawPeer {
    async fn join(net: &SubNetwork) -> RawPeer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let os_addr = listener.local_addr().unwrap().to_string();
        net.registry().announce("ρ", &os_addr).await.unwrap();
        let network = net.network().to_owned();
        let (to_test, accepted) = mpsc::unbounded_channel();
        let served = network.clone();
        tokio::spawn(async move {
            let mut port = 0;
            while let Ok((mut s, _)) = listener.accept().await {
                let line = handshake::read_line(&mut s, handshake::MAX_REQUEST)
                    .await
                    .unwrap();
                let (_src, dst) = handshake::parse_request(&line, &served).unwrap();
                if dst.host() != "ρ" {
                    // As the reference answers a dial of a host it lacks.
                    let text = format!("address {dst}: no such host");
                    s.write_all(&handshake::error_line(&served, &text))
                        .await
                        .unwrap();
                    continue;
                }
                port += 1;
                let me = Addr::new(served.as_str(), "ρ", port);
                s.write_all(&handshake::connected_line(&served, &me))
                    .await
                    .unwrap();
                let _ = to_test.send(s);
            }
        });
        RawPeer {
            network,
            os_addr,
            accepted,
            next_port: 0,
        }
    }

    /// The next connection dialed to ρ.
    async fn accepted(&mut self) -> TcpStream {
        guard("ρ's accept", self.accepted.recv()).await.unwrap()
    }

    /// Sends a dial request from ρ to `to` at OS address `os_addr`; the
    /// reply is read by the caller.
    async fn send_dial(&mut self, to: &str, os_addr: &str) -> TcpStream {
        self.next_port += 1;
        let src = Addr::new(self.network.as_str(), "ρ", 100 + self.next_port);
        let dst = Addr::parse(self.network.as_str(), to).unwrap();
        let mut s = TcpStream::connect(os_addr).await.unwrap();
        s.write_all(&handshake::request_line(&self.network, &src, &dst))
            .await
            .unwrap();
        s
    }
}

async fn reply(s: &mut TcpStream) -> String {
    let line = guard("a reply", handshake::read_line(s, 4096))
        .await
        .unwrap();
    String::from_utf8(line).unwrap()
}

async fn fresh() -> (tempfile::TempDir, SubNetwork) {
    let root = tempfile::tempdir().unwrap();
    let net = lonet::Builder::new("foreign")
        .root(root.path())
        .join()
        .await
        .unwrap();
    (root, net)
}

/// Host α of a fresh network, connected to a raw peer's host ρ.
struct Linked {
    net: SubNetwork,
    /// α's end (`α:1 -> ρ:1`).
    c: Conn,
    /// ρ's socket.
    s: TcpStream,
    /// What must live as long as the connection: the root, α, the peer.
    _kept: (tempfile::TempDir, Host, RawPeer),
}

/// A fresh network where α has dialed `ρ:1` and the raw peer accepted.
async fn alpha_dials_raw() -> Linked {
    let (root, net) = fresh().await;
    let alpha = net.new_host("α").await.unwrap();
    let mut raw = RawPeer::join(&net).await;
    let (c, s) = tokio::join!(alpha.dial("ρ:1"), raw.accepted());
    Linked {
        net,
        c: c.unwrap(),
        s,
        _kept: (root, alpha, raw),
    }
}

/// The question a Rust process asks another before it shapes for it:
/// answered "yes" by a Rust process, "no" by a reference one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_reference_processes_are_told_apart() {
    let (_root, net) = fresh().await;
    let _alpha = net.new_host("α").await.unwrap();
    let rust = net.registry().query("α").await.unwrap();
    let raw = RawPeer::join(&net).await;
    let n = net.network();
    let t = Duration::from_secs(5);
    assert_eq!(lonet::peer_shapes(n, &rust, t).await, Some(true));
    assert_eq!(lonet::peer_shapes(n, &raw.os_addr, t).await, Some(false));
    // Nobody there: cannot tell.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    assert_eq!(lonet::peer_shapes(n, &closed_addr, t).await, None);
    assert_eq!(lonet::peer_shapes(n, "not an address", t).await, None);
    net.close().await.unwrap();
}

/// Latency on a pair with a peer that does not shape: bytes take at least
/// the latency both ways, the ones α sends too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_applies_both_ways() {
    let Linked {
        net,
        mut c,
        mut s,
        _kept,
    } = alpha_dials_raw().await;
    assert_eq!(c.peer_addr().to_string(), "ρ:1");
    let latency = Duration::from_millis(150);
    net.faults()
        .latency(Links::pair("α", "ρ"), latency)
        .await
        .unwrap();

    // ρ → α: shaped as α receives it.
    let sent = Instant::now();
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0; 4];
    guard("α reads", c.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"ping");
    assert!(
        sent.elapsed() >= latency,
        "ρ → α early: {:?}",
        sent.elapsed()
    );

    // α → ρ: ρ does not shape, so α delays what it sends.
    let sent = Instant::now();
    c.write_all(b"pong").await.unwrap();
    guard("ρ reads", s.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"pong");
    assert!(
        sent.elapsed() >= latency,
        "α → ρ early: {:?}",
        sent.elapsed()
    );

    // In order, after a shutdown that follows them.
    let sent = Instant::now();
    for i in 0..10u8 {
        c.write_all(&[i]).await.unwrap();
    }
    c.shutdown().await.unwrap();
    let mut rest = Vec::new();
    guard("ρ reads to the end", s.read_to_end(&mut rest))
        .await
        .unwrap();
    assert_eq!(rest, (0..10).collect::<Vec<u8>>());
    assert!(
        sent.elapsed() >= latency,
        "α's shutdown early: {:?}",
        sent.elapsed()
    );
    net.close().await.unwrap();
}

/// A partition with a peer that does not shape holds α's bytes too: none
/// reaches ρ, α's writes succeed until the held bytes fill the window and
/// then wait; after the heal everything arrives, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_holds_what_alpha_sends() {
    let Linked {
        net,
        mut c,
        mut s,
        _kept,
    } = alpha_dials_raw().await;
    net.faults().partition(Links::pair("α", "ρ")).await.unwrap();

    const LEN: usize = 1 << 20;
    let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let mut write = Box::pin(async {
        c.write_all(&data).await.unwrap();
        c.shutdown().await.unwrap();
        c
    });
    // The write goes as far as the window and waits there.
    let waited = tokio::time::timeout(QUIET, &mut write).await;
    assert!(waited.is_err(), "1 MiB written across a partition");
    let mut buf = [0; 1];
    let crossed = tokio::time::timeout(QUIET, s.read(&mut buf)).await;
    assert!(
        crossed.is_err(),
        "a byte crossed the partition: {crossed:?}"
    );

    net.faults().heal(Links::pair("α", "ρ")).await.unwrap();
    let (c, got) = tokio::join!(guard("α's write after the heal", write), async {
        let mut got = Vec::new();
        guard("ρ reads after the heal", s.read_to_end(&mut got))
            .await
            .unwrap();
        got
    });
    assert!(
        got == data,
        "{} bytes arrived, not the {LEN} written in order",
        got.len()
    );
    drop(c);
    net.close().await.unwrap();
}

/// Bandwidth on a link to a peer that does not shape paces what α sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_paces_what_alpha_sends() {
    let Linked {
        net,
        mut c,
        mut s,
        _kept,
    } = alpha_dials_raw().await;
    let rate = 1 << 20; // 1 MiB/s: 256 KiB take at least 240 ms (10 KiB burst)
    net.faults()
        .bandwidth(Links::oneway("α", "ρ"), rate)
        .await
        .unwrap();
    let data = vec![7u8; 256 << 10];
    let sent = Instant::now();
    let (wrote, got) = tokio::join!(
        async {
            c.write_all(&data).await.unwrap();
            c.shutdown().await.unwrap();
        },
        async {
            let mut got = Vec::new();
            guard("ρ reads", s.read_to_end(&mut got)).await.unwrap();
            got
        }
    );
    let () = wrote;
    assert_eq!(got.len(), data.len());
    let floor = Duration::from_millis(240);
    assert!(
        sent.elapsed() >= floor,
        "256 KiB at 1 MiB/s in {:?}",
        sent.elapsed()
    );
    net.close().await.unwrap();
}

/// Dials from a peer that does not shape meet the faults at α's side: an
/// unreachable link refuses them with "no route to host", a partition
/// holds them until the heal, latency delays the answer a round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dials_from_the_peer_meet_the_faults() {
    let (_root, net) = fresh().await;
    let n = net.network().to_owned();
    let alpha = net.new_host("α").await.unwrap();
    let os_addr = net.registry().query("α").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    let mut raw = RawPeer::join(&net).await;
    let faults = net.faults();

    faults.unreachable(Links::pair("ρ", "α")).await.unwrap();
    let mut s = raw.send_dial("α:1", &os_addr).await;
    assert_eq!(
        reply(&mut s).await,
        format!("< lonet {n:?} E \"no route to host\"\n")
    );

    faults.heal_all().await.unwrap();
    faults.partition(Links::oneway("ρ", "α")).await.unwrap();
    let mut s = raw.send_dial("α:1", &os_addr).await;
    let held = tokio::time::timeout(QUIET, reply(&mut s)).await;
    assert!(held.is_err(), "answered across a partition: {held:?}");
    faults.heal_all().await.unwrap();
    let (answer, accepted) = tokio::join!(reply(&mut s), l.accept());
    let accepted = accepted.unwrap();
    assert_eq!(answer, format!("< lonet {n:?} connected \"α:2\"\n"));
    assert_eq!(accepted.peer_addr().to_string(), "ρ:102");
    drop(accepted);

    let latency = Duration::from_millis(100);
    faults
        .latency(Links::pair("ρ", "α"), latency)
        .await
        .unwrap();
    let sent = Instant::now();
    let mut s = raw.send_dial("α:1", &os_addr).await;
    let (answer, accepted) = tokio::join!(reply(&mut s), l.accept());
    assert!(answer.contains(" connected "), "{answer}");
    assert!(
        sent.elapsed() >= 2 * latency,
        "a dial answered within {:?}, less than the round trip",
        sent.elapsed()
    );
    drop(accepted);
    net.close().await.unwrap();
}

/// Between two Rust processes (here: two subnetworks of one network), a
/// dial across an unreachable link fails with the typed error, whichever
/// side applies it: the dialer's (it already follows the fault) or, when
/// the dial raced the fault, the acceptor's "no route to host" answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_answer_is_typed_for_a_rust_dialer() {
    let (root, net) = fresh().await;
    let other = lonet::Builder::new("foreign")
        .root(root.path())
        .join()
        .await
        .unwrap();
    let alpha = net.new_host("α").await.unwrap();
    let _l = alpha.listen(":1").await.unwrap();
    let beta = other.new_host("β").await.unwrap();
    // Only α's side knows of the fault (β's would refuse before dialing):
    // set in `net`, which installs it at once; `other` learns it later.
    net.faults()
        .unreachable(Links::pair("β", "α"))
        .await
        .unwrap();
    match beta.dial("α:1").await {
        Err(e) => assert_eq!(VirtError::of(&e), Some(VirtError::HostUnreach), "{e}"),
        Ok(c) => panic!("dialed across an unreachable link: {c:?}"),
    }
    net.close().await.unwrap();
    other.close().await.unwrap();
}

/// A reset with a peer that does not shape: α's operations fail with the
/// typed error at once, and the peer sees its connection end, then reset
/// (a write of its fails) once α's end is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_reaches_the_peer() {
    let Linked {
        net,
        mut c,
        mut s,
        _kept,
    } = alpha_dials_raw().await;
    net.faults().reset(Links::pair("α", "ρ")).await.unwrap();
    let err = c.write_all(b"x").await.unwrap_err();
    assert_eq!(VirtError::of(&err), Some(VirtError::ConnReset), "{err}");
    let mut buf = [0; 8];
    let end = guard("ρ sees the end", s.read(&mut buf)).await;
    assert!(matches!(end, Ok(0)) || end.is_err(), "{end:?}");
    drop(c);
    // The RST arrives: a write (soon, if not the first) fails.
    let failed = guard("ρ's writes fail", async {
        loop {
            if let Err(e) = s.write_all(b"more").await {
                return e;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        matches!(
            failed.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{failed}"
    );
    net.close().await.unwrap();
}

/// The same for a connection nobody uses: the reset shuts it (the peer
/// sees end of stream), and when α's end is dropped without another
/// operation the peer gets the RST, not just a close: its socket holds
/// the error before it writes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_of_an_idle_connection_reaches_the_peer_when_dropped() {
    let Linked {
        net,
        c,
        mut s,
        _kept,
    } = alpha_dials_raw().await;
    net.faults().reset(Links::pair("α", "ρ")).await.unwrap();
    let mut buf = [0; 8];
    let end = guard("ρ sees the end", s.read(&mut buf)).await;
    assert!(matches!(end, Ok(0)), "{end:?}");
    assert!(
        s.take_error().unwrap().is_none(),
        "an error before the drop"
    );
    drop(c);
    let error = guard("the RST reaches ρ", async {
        loop {
            if let Some(e) = s.take_error().unwrap() {
                return e;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{error}"
    );
    net.close().await.unwrap();
}
