//! The fault scenarios: what partitions, unreachable links, latency,
//! bandwidth limits, resets and heals do, the same on every network.
//!
//! Each takes a [`Fixture`] (a fresh subnetwork whose registry keeps
//! faults), creates hosts `α` and `β` (and `γ` where it needs a third), and
//! sets faults through [`SubNetwork::faults`](virtnet_core::SubNetwork::faults).
//! Timing is asserted as lower bounds only (latency never delivers early,
//! a rate is never exceeded); whatever a scenario waits for is an event.
//! Run them all with [`fault_suite!`](crate::fault_suite).

use std::io;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::poll;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use virtnet_core::{Conn, Fault, Faults, Host, Links, VirtError};

use crate::network::connect;
use crate::run::timeout;
use crate::waiting::{spawn_blocked, step, WaitingFor};
use crate::{Failure, Fixture};

/// More than any transport buffers (a pipe, a loopback TCP pair with its
/// kernel buffers), so a writer across a partition must wait.
const HELD: usize = 16 << 20;

async fn host(fx: &Fixture, name: &str) -> Host {
    fx.net
        .new_host(name)
        .waiting_for(format!("new host {name}"))
        .await
        .unwrap_or_else(|e| panic!("new host {name}: {e}"))
}

/// α listening on :10, β, and a connection β:1 → α:2 (client, server).
async fn pair(fx: &Fixture) -> (Host, Host, Conn, Conn) {
    let a = host(fx, "α").await;
    let b = host(fx, "β").await;
    let l = a.listen(":10").await.expect("listen α:10");
    let (c, s) = connect(&b, "α:10", &l).await;
    (a, b, c, s)
}

fn faults(fx: &Fixture) -> Faults {
    fx.net.faults()
}

async fn must(what: &str, r: io::Result<()>) {
    if let Err(e) = r {
        panic!("{what}: {e}");
    }
}

/// Byte `i` of a stream that shows any loss, duplication or reordering.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

fn assert_fault(e: &io::Error, kind: io::ErrorKind, cause: VirtError, text: &str) {
    assert_eq!(e.kind(), kind, "{e}");
    assert_eq!(VirtError::of(e), Some(cause), "{e}");
    assert!(
        e.to_string().ends_with(text),
        "{e:?} should end with {text:?}"
    );
}

/// A writer across a partition fills the window and then waits; after the
/// heal every byte arrives, in order, once.
pub async fn partition_holds_bytes_in_order(fx: Fixture) {
    let (_a, _b, mut c, mut s) = pair(&fx).await;
    step("partition α β");
    must(
        "partition",
        faults(&fx).partition(Links::pair("α", "β")).await,
    )
    .await;
    let writer = spawn_blocked("writing 16 MiB across the partition", async move {
        let data: Vec<u8> = (0..HELD).map(pattern).collect();
        c.write_all(&data).await.map(|()| c)
    })
    .await;
    let mut buf = [0u8; 1];
    assert!(
        poll!(Box::pin(s.read(&mut buf))).is_pending(),
        "no byte crosses a partition"
    );
    assert!(
        !writer.is_finished(),
        "the writer waits once the window is full"
    );
    step("heal");
    must("heal", faults(&fx).heal(Links::pair("α", "β")).await).await;
    let mut got = vec![0u8; HELD];
    s.read_exact(&mut got)
        .waiting_for("16 MiB after the heal")
        .await
        .expect("read after heal");
    let wrong = got.iter().enumerate().position(|(i, b)| *b != pattern(i));
    assert_eq!(wrong, None, "bytes arrive in order, each once");
    let c = writer
        .waiting_for("the writer to finish")
        .await
        .expect("writer task")
        .expect("write across the healed partition");
    drop(c);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .waiting_for("end of stream")
        .await
        .expect("eof");
    assert!(rest.is_empty(), "nothing more: {} extra bytes", rest.len());
}

/// One connection end split between a reading and a writing task, both
/// waiting on a partition: the heal wakes both (each waits for the change
/// on its own; neither takes the other's place).
pub async fn heal_wakes_a_split_connection(fx: Fixture) {
    let (_a, _b, c, mut s) = pair(&fx).await;
    must(
        "partition",
        faults(&fx).partition(Links::pair("α", "β")).await,
    )
    .await;
    s.write_all(b"x").await.expect("write α -> β"); // held at β
    let (mut r, mut w) = tokio::io::split(c);
    let reader = spawn_blocked("a read at β across the partition", async move {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).await.map(|_| b)
    })
    .await;
    let writer = spawn_blocked("writing 16 MiB from β across the partition", async move {
        w.write_all(&vec![7u8; HELD]).await
    })
    .await;
    step("heal");
    must("heal", faults(&fx).heal_all().await).await;
    let mut got = vec![0u8; HELD];
    s.read_exact(&mut got)
        .waiting_for("16 MiB at α after the heal")
        .await
        .expect("read at α");
    assert!(got.iter().all(|b| *b == 7), "intact");
    let read = reader
        .waiting_for("β's reader to wake after the heal")
        .await
        .expect("reader task")
        .expect("read at β");
    assert_eq!(&read, b"x");
    writer
        .waiting_for("β's writer to finish after the heal")
        .await
        .expect("writer task")
        .expect("write from β");
}

/// A one-way partition holds one direction only.
pub async fn oneway_partition_holds_one_direction(fx: Fixture) {
    let (_a, _b, mut c, mut s) = pair(&fx).await;
    must(
        "partition β -> α",
        faults(&fx).partition(Links::oneway("β", "α")).await,
    )
    .await;
    c.write_all(b"held").await.expect("write β -> α");
    s.write_all(b"free").await.expect("write α -> β");
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf)
        .waiting_for("α's bytes at β: that direction is open")
        .await
        .expect("read at β");
    assert_eq!(&buf, b"free");
    assert!(
        poll!(Box::pin(s.read(&mut buf))).is_pending(),
        "β -> α is held"
    );
    must("heal", faults(&fx).heal_all().await).await;
    s.read_exact(&mut buf)
        .waiting_for("β's bytes at α after the heal")
        .await
        .expect("read at α");
    assert_eq!(&buf, b"held");
}

/// A dial across a partition waits until the heal; a dial dropped while it
/// waits frees its port.
pub async fn dial_across_partition_waits(fx: Fixture) {
    let a = host(&fx, "α").await;
    let b = host(&fx, "β").await;
    let l = a.listen(":10").await.expect("listen");
    must(
        "partition",
        faults(&fx).partition(Links::pair("α", "β")).await,
    )
    .await;
    let b2 = b.clone();
    let dropped = spawn_blocked("a dial across the partition", async move {
        b2.dial("α:10").await
    })
    .await;
    assert!(!dropped.is_finished(), "the dial waits");
    dropped.abort();
    assert!(dropped.await.expect_err("aborted").is_cancelled());
    let b2 = b.clone();
    let dial = spawn_blocked("a second dial across the partition", async move {
        b2.dial("α:10").await
    })
    .await;
    must("heal", faults(&fx).heal(Links::pair("β", "α")).await).await;
    let s = l
        .accept()
        .waiting_for("accept after the heal")
        .await
        .expect("accept");
    let c = dial
        .waiting_for("the dial after the heal")
        .await
        .expect("dial task")
        .expect("dial after the heal");
    assert_eq!(
        c.local_addr().to_string(),
        "β:1",
        "the dropped dial freed β:1"
    );
    assert_eq!(s.peer_addr(), c.local_addr());
}

/// An unreachable link fails dials at once with the typed error and resets
/// the connections across it; after the heal, dials work again.
pub async fn unreachable_fails_fast_and_resets(fx: Fixture) {
    let (a, b, mut c, mut s) = pair(&fx).await;
    let l = a.listen(":11").await.expect("listen α:11");
    must(
        "unreachable",
        faults(&fx).unreachable(Links::pair("α", "β")).await,
    )
    .await;
    let e = b
        .dial("α:11")
        .waiting_for("a dial to an unreachable host to fail")
        .await
        .expect_err("dial across an unreachable link");
    assert_fault(
        &e,
        io::ErrorKind::HostUnreachable,
        VirtError::HostUnreach,
        "no route to host",
    );
    assert_eq!(
        e.to_string(),
        format!("dial {} β:2->α:11: no route to host", fx.net.network())
    );
    let e = c.write_all(b"x").await.expect_err("write across it");
    assert_fault(
        &e,
        io::ErrorKind::ConnectionReset,
        VirtError::ConnReset,
        "connection reset by peer",
    );
    let mut buf = [0u8; 1];
    let e = s
        .read(&mut buf)
        .waiting_for("read at α to fail")
        .await
        .expect_err("read");
    assert_fault(
        &e,
        io::ErrorKind::ConnectionReset,
        VirtError::ConnReset,
        "connection reset by peer",
    );
    must("heal", faults(&fx).heal_all().await).await;
    let (mut c2, mut s2) = connect(&b, "α:11", &l).await;
    c2.write_all(b"ok").await.expect("write after heal");
    let mut buf = [0u8; 2];
    s2.read_exact(&mut buf)
        .waiting_for("read after heal")
        .await
        .expect("read");
    assert_eq!(&buf, b"ok");
}

/// A reset fails pending and later operations on both ends; connections
/// made after it are not affected.
pub async fn reset_fails_both_ends(fx: Fixture) {
    let (a, b, mut c, s) = pair(&fx).await;
    let reader = spawn_blocked("a read at α", async move {
        let mut s = s;
        let mut buf = [0u8; 1];
        s.read(&mut buf).await
    })
    .await;
    must("reset", faults(&fx).reset(Links::pair("α", "β")).await).await;
    let e = reader
        .waiting_for("the pending read to fail")
        .await
        .expect("reader task")
        .expect_err("read after reset");
    assert_fault(
        &e,
        io::ErrorKind::ConnectionReset,
        VirtError::ConnReset,
        "connection reset by peer",
    );
    let e = c.write_all(b"x").await.expect_err("write after reset");
    assert_fault(
        &e,
        io::ErrorKind::ConnectionReset,
        VirtError::ConnReset,
        "connection reset by peer",
    );
    let mut buf = [0u8; 1];
    let e = c.read(&mut buf).await.expect_err("read after reset");
    assert_fault(
        &e,
        io::ErrorKind::ConnectionReset,
        VirtError::ConnReset,
        "connection reset by peer",
    );
    let l = a.listen(":12").await.expect("listen");
    let (mut c2, mut s2) = connect(&b, "α:12", &l).await;
    c2.write_all(b"new").await.expect("a new connection works");
    let mut buf = [0u8; 3];
    s2.read_exact(&mut buf)
        .waiting_for("read on the new connection")
        .await
        .expect("read");
    assert_eq!(&buf, b"new");
}

/// Latency never delivers early, keeps order, and a dial takes a round trip.
pub async fn latency_never_early(fx: Fixture) {
    let (_a, b, mut c, mut s) = pair(&fx).await;
    let base = Duration::from_millis(50);
    let jitter = Duration::from_millis(20);
    must(
        "latency",
        faults(&fx)
            .set(Links::pair("α", "β"), Fault::Latency { base, jitter })
            .await,
    )
    .await;
    for round in 0..5u8 {
        let sent = Instant::now();
        c.write_all(&[round; 3]).await.expect("write");
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf)
            .waiting_for("the delayed bytes")
            .await
            .expect("read");
        assert_eq!(buf, [round; 3], "in order");
        assert!(
            sent.elapsed() >= base,
            "round {round}: arrived after {:?}",
            sent.elapsed()
        );
    }
    let a = fx.net.host("α").expect("α");
    let l = a.listen(":13").await.expect("listen");
    let started = Instant::now();
    let (c2, _s2) = connect(&b, "α:13", &l).await;
    assert!(
        started.elapsed() >= 2 * base,
        "a dial takes a round trip: {:?}",
        started.elapsed()
    );
    drop(c2);
}

/// A bandwidth limit is never exceeded (beyond its small burst).
pub async fn bandwidth_never_exceeded(fx: Fixture) {
    let (_a, _b, mut c, mut s) = pair(&fx).await;
    let rate: u64 = 1 << 20;
    must(
        "bandwidth",
        faults(&fx).bandwidth(Links::oneway("β", "α"), rate).await,
    )
    .await;
    let size = 512 << 10;
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let data: Vec<u8> = (0..size).map(pattern).collect();
        c.write_all(&data).await.map(|()| c)
    });
    let mut got = vec![0u8; size];
    s.read_exact(&mut got)
        .waiting_for("512 KiB at 1 MiB/s")
        .await
        .expect("read");
    let elapsed = started.elapsed();
    // The burst is a hundredth of a second's worth.
    let least = Duration::from_secs_f64((size as f64 - rate as f64 / 100.0) / rate as f64);
    assert!(
        elapsed >= least,
        "512 KiB at 1 MiB/s took {elapsed:?}, less than {least:?}"
    );
    assert!(
        got.iter().enumerate().all(|(i, b)| *b == pattern(i)),
        "intact"
    );
    writer.await.expect("writer").expect("write");
}

/// A partition between groups holds every link between the sides, and
/// none within a side.
pub async fn group_partition(fx: Fixture) {
    let a = host(&fx, "α").await;
    let b = host(&fx, "β").await;
    let g = host(&fx, "γ").await;
    let la = a.listen(":10").await.expect("listen α");
    let lg = g.listen(":10").await.expect("listen γ");
    let (mut ba, mut ab) = connect(&b, "α:10", &la).await;
    let (mut bg, mut gb) = connect(&b, "γ:10", &lg).await;
    must(
        "partition {α} | {β,γ}",
        faults(&fx)
            .partition(Links::between(["α"], ["β", "γ"]))
            .await,
    )
    .await;
    bg.write_all(b"same side").await.expect("write β -> γ");
    let mut buf = [0u8; 9];
    gb.read_exact(&mut buf)
        .waiting_for("β's bytes at γ")
        .await
        .expect("read");
    assert_eq!(&buf, b"same side");
    ba.write_all(b"x").await.expect("write β -> α");
    ab.write_all(b"y").await.expect("write α -> β");
    let mut one = [0u8; 1];
    assert!(
        poll!(Box::pin(ab.read(&mut one))).is_pending(),
        "β -> α is held"
    );
    assert!(
        poll!(Box::pin(ba.read(&mut one))).is_pending(),
        "α -> β is held"
    );
    must("heal", faults(&fx).heal_all().await).await;
    ab.read_exact(&mut one)
        .waiting_for("β's byte at α")
        .await
        .expect("read");
    assert_eq!(&one, b"x");
    ba.read_exact(&mut one)
        .waiting_for("α's byte at β")
        .await
        .expect("read");
    assert_eq!(&one, b"y");
}

/// The rules read back as set, and a heal removes them.
pub async fn rules_read_back(fx: Fixture) {
    let _a = host(&fx, "α").await;
    let f = faults(&fx);
    must("partition", f.partition(Links::oneway("α", "β")).await).await;
    must(
        "latency",
        f.latency(Links::oneway("β", "α"), Duration::from_millis(7))
            .await,
    )
    .await;
    let rules = f.rules().await.expect("rules");
    assert!(rules.get("α", "β").expect("α -> β").partition);
    assert_eq!(
        rules.get("β", "α").expect("β -> α").latency,
        Duration::from_millis(7)
    );
    assert!(rules.get("α", "γ").is_none());
    must("heal", f.heal_all().await).await;
    let rules = f.rules().await.expect("rules");
    assert!(rules.links.values().all(|l| l.is_healthy()), "{rules:?}");
}

macro_rules! scenarios {
    ($d:tt $($name:ident),* $(,)?) => {
        /// The names of all fault scenarios, in the order they are listed.
        pub const SCENARIOS: &[&str] = &[$(stringify!($name)),*];

        fn scenario(name: &str) -> Option<fn(Fixture) -> BoxFuture<'static, ()>> {
            match name {
                $(stringify!($name) => Some(|fx| Box::pin($name(fx))),)*
                _ => None,
            }
        }

        /// Expands into two `#[tokio::test]`s per fault scenario,
        /// `fault_scenarios::current_thread::<scenario>` and
        /// `fault_scenarios::multi_thread::<scenario>`, each calling
        /// `$factory()` (an async closure or function returning something
        /// `Into<`[`Fixture`](crate::Fixture)`>`, whose registry keeps faults)
        /// and running the scenario with
        /// [`faults::run_with_timeout`](crate::faults::run_with_timeout).
        ///
        /// `fault_suite!(factory, timeout = Duration::from_secs(N))` sets the
        /// timeout, as for [`network_suite!`](crate::network_suite). It
        /// defines the module `fault_scenarios` and two private functions
        /// `__virtnet_fault_*` where it is invoked.
        #[macro_export]
        macro_rules! fault_suite {
            (@suite $d factory:expr, $d timeout:expr) => {
                async fn __virtnet_fault_fixture() -> $crate::Fixture {
                    (($d factory)().await).into()
                }
                fn __virtnet_fault_timeout() -> ::std::time::Duration {
                    $crate::suite_timeout($d timeout)
                }
                /// The fault scenarios.
                mod fault_scenarios {
                    $crate::__runtime_tests!(
                        current_thread,
                        multi_thread,
                        $crate::faults::__case,
                        super::super::__virtnet_fault_timeout,
                        super::super::__virtnet_fault_fixture,
                        [$($name),*]
                    );
                }
            };
            ($d factory:expr, timeout = $d timeout:expr $d(,)?) => {
                $crate::fault_suite!(@suite $d factory, ::core::option::Option::Some($d timeout));
            };
            ($d factory:expr $d(,)?) => {
                $crate::fault_suite!(@suite $d factory, ::core::option::Option::None);
            };
        }
    };
}

scenarios!($
    partition_holds_bytes_in_order,
    heal_wakes_a_split_connection,
    oneway_partition_holds_one_direction,
    dial_across_partition_waits,
    unreachable_fails_fast_and_resets,
    reset_fails_both_ends,
    latency_never_early,
    bandwidth_never_exceeded,
    group_partition,
    rules_read_back,
);

/// Runs the fault scenario called `name` on `fixture`, with the
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
    crate::run::run_found(name, timeout, scenario(name), fixture).await
}

/// One test of [`fault_suite!`](crate::fault_suite).
#[doc(hidden)]
pub async fn __case<X: Into<Fixture>>(
    name: &str,
    timeout: Duration,
    fixture: impl std::future::Future<Output = X>,
) {
    crate::run::case(name, timeout, fixture, scenario(name)).await
}
