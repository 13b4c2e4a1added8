//! `lonet::bridge` against a direct loopback TCP connection, in one run,
//! to the same OS servers:
//!
//! - **direct**: client → server, one loopback TCP connection;
//! - **bridged, one bridge process**: client → the bridge's OS forward
//!   listener → a lonet dial from β to α:1 → the same bridge's expose of
//!   α:1 → server. With local pipes (as `lonet bridge` runs) the dial is an
//!   in-memory pipe: two TCP connections;
//! - **bridged, two bridge processes**: the forward in one bridge, the
//!   expose in another (each on its own subnetwork): the dial is loopback
//!   TCP with its handshake, three TCP connections;
//! - **two plain OS proxies in a row**: the same three TCP connections
//!   through tokio's `copy_bidirectional` with buffers of the bridge's
//!   largest size ([`lonet::bridge::BUFFER`]), no lonet: the floor of any
//!   bridge built this way;
//! - **one plain OS proxy**: two TCP connections, the least any relay
//!   between an OS client and an OS server can be.
//!
//! The client, each bridge and the servers run on runtimes of their own,
//! in threads of their own, as separate processes would: the client and
//! the servers on current-thread runtimes; the bridges on multi-thread
//! runtimes with 2 workers (as `lonet bridge` runs on a 2-vCPU machine),
//! and one on a current-thread runtime, each on a fresh network.
//!
//! Measures (contenders take turns in each round, so a change in the
//! machine's load hits them all):
//! - **throughput**: the client writes N bytes in 64 KiB writes on a new
//!   connection and half-closes; the sink server reads to the end and
//!   answers the count; timed from connect to the answer. Median (min–max)
//!   of the rounds, and the CPU time of the whole process (client, servers,
//!   bridge) per GiB, from `/proc/self/stat`.
//! - **round trip**: 1 byte to the echo server and back, on one connection,
//!   after an untimed warm-up; median and p99 of every round trip.
//!
//! `cargo run -p benches --release --bin bridge [-- --quick]`: 1 GiB × 5
//! rounds and 5 rounds of 5,000 round trips; `--quick`: 16 MiB × 1 round
//! and 200 round trips (smoke only). Round trips on a VM are dominated by
//! waking idle vCPUs; `taskset -c 0 target/release/bridge` runs every
//! thread on one CPU, which leaves the path's own cost.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use benches::{Flavor, Samples};
use lonet::bridge::Bridge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Settings {
    bytes: u64,
    throughput_rounds: usize,
    round_trips: usize,
    latency_rounds: usize,
    warmup: usize,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let settings = if quick {
        Settings {
            bytes: 16 << 20,
            throughput_rounds: 1,
            round_trips: 200,
            latency_rounds: 1,
            warmup: 20,
        }
    } else {
        Settings {
            bytes: 1 << 30,
            throughput_rounds: 5,
            round_trips: 5_000,
            latency_rounds: 5,
            warmup: 1_000,
        }
    };

    // The servers: a sink and an echo, on their own runtime and thread.
    let (servers_tx, servers_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        Flavor::Current.runtime().block_on(async move {
            let sink = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
            let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
            let addrs = (sink.local_addr().unwrap(), echo.local_addr().unwrap());
            servers_tx.send(addrs).unwrap();
            tokio::join!(serve(sink, sink_one), serve(echo, echo_one));
        })
    });
    let (sink, echo) = servers_rx.recv().expect("servers");

    // The bridges, exposing both servers and forwarding a port to each:
    // in one process (on either runtime), or across two.
    let tmp = tempfile::tempdir().expect("tempdir");
    let bridges = [
        start_bridges(tmp.path(), Topology::One(Flavor::Multi), sink, echo),
        start_bridges(tmp.path(), Topology::One(Flavor::Current), sink, echo),
        start_bridges(tmp.path(), Topology::Two, sink, echo),
    ];
    // The floor of any such chain: the same three TCP connections through
    // two plain OS proxies (tokio's copy_bidirectional), no lonet; and the
    // least any relay can be, one proxy.
    let two = start_proxies(sink, echo, 2);
    let one = start_proxies(sink, echo, 1);
    let paths: Vec<(&str, SocketAddr, SocketAddr)> = [("direct loopback TCP", sink, echo)]
        .into_iter()
        .chain(bridges.iter().map(|b| (b.name, b.sink, b.echo)))
        .chain([
            (
                "two plain OS proxies in a row (3 TCP connections, no lonet)",
                two.0,
                two.1,
            ),
            ("one plain OS proxy (2 TCP connections)", one.0, one.1),
        ])
        .collect();

    let client = Flavor::Current.runtime();
    println!(
        "## bridge: direct loopback TCP vs through a bridge (forward -> lonet -> expose){}",
        if quick {
            "; quick mode: smoke only"
        } else {
            ""
        }
    );
    println!();
    println!(
        "CPUs this process may run on: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();

    // Throughput, and the CPU time it takes.
    let mut rates = vec![Vec::new(); paths.len()];
    let mut cpu = vec![0.0; paths.len()];
    for _ in 0..settings.throughput_rounds {
        for (i, (_, sink, _)) in paths.iter().enumerate() {
            let before = cpu_seconds();
            rates[i].push(client.block_on(throughput(*sink, settings.bytes)));
            cpu[i] += cpu_seconds() - before;
        }
    }
    let gib = (settings.bytes * settings.throughput_rounds as u64) as f64 / (1u64 << 30) as f64;
    println!(
        "### throughput: {} MiB one way, {} round(s): MiB/s median (min–max); \
         CPU seconds per GiB (this process: client, servers and bridge)",
        settings.bytes >> 20,
        settings.throughput_rounds
    );
    println!();
    println!("| path | MiB/s | CPU s/GiB | / direct (MiB/s) | / direct (CPU) |");
    println!("|---|---|---|---|---|");
    let direct = spread(&rates[0]).0;
    for (i, (name, _, _)) in paths.iter().enumerate() {
        let (median, min, max) = spread(&rates[i]);
        println!(
            "| {name} | {median:.0} ({min:.0}–{max:.0}) | {:.2} | {:.2} | {:.2} |",
            cpu[i] / gib,
            median / direct,
            cpu[i] / cpu[0].max(f64::MIN_POSITIVE)
        );
    }
    println!();

    // Round trips.
    let mut samples = vec![Vec::new(); paths.len()];
    for _ in 0..settings.latency_rounds {
        for (i, (_, _, echo)) in paths.iter().enumerate() {
            let trips = round_trips(*echo, settings.round_trips, settings.warmup);
            samples[i].extend(client.block_on(trips).0);
        }
    }
    println!(
        "### round trip: 1 byte, {} round(s) of {} after {} untimed, µs",
        settings.latency_rounds, settings.round_trips, settings.warmup
    );
    println!();
    println!("| path | median | p99 | added: median | added: p99 |");
    println!("|---|---|---|---|---|");
    let samples: Vec<Samples> = samples.into_iter().map(Samples).collect();
    let (direct_median, direct_p99) = (us(samples[0].median()), us(samples[0].p99()));
    for ((name, _, _), s) in paths.iter().zip(&samples) {
        let (median, p99) = (us(s.median()), us(s.p99()));
        println!(
            "| {name} | {median:.1} | {p99:.1} | {:.1} | {:.1} |",
            median - direct_median,
            p99 - direct_p99
        );
    }

    for bridge in bridges.into_iter().flat_map(|b| b.threads) {
        bridge.stop();
    }
}

/// Where a bridged path's expose and forward are.
#[derive(Clone, Copy)]
enum Topology {
    /// Both in one bridge process, on this runtime.
    One(Flavor),
    /// The forward in one bridge process, the expose in another, each on a
    /// multi-thread runtime.
    Two,
}

/// A bridged path: its bridge threads, and the forwards to each server.
struct Bridged {
    name: &'static str,
    /// The forward to the sink server.
    sink: SocketAddr,
    /// The forward to the echo server.
    echo: SocketAddr,
    threads: Vec<BridgeThread>,
}

/// A bridge running in a thread of its own, as a process would.
struct BridgeThread {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl BridgeThread {
    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("bridge thread");
    }
}

/// Starts the bridges of `topology` on a fresh network under `root`: α:1
/// is the sink, α:2 the echo, and a forward from β to each.
fn start_bridges(
    root: &std::path::Path,
    topology: Topology,
    sink: SocketAddr,
    echo: SocketAddr,
) -> Bridged {
    let net = format!("bench{}", std::process::id());
    let (name, net) = match topology {
        Topology::One(Flavor::Multi) => (
            "bridged, one bridge process (2 TCP connections + a pipe)",
            format!("{net}m"),
        ),
        Topology::One(Flavor::Current) => (
            "bridged, one bridge process on a current-thread runtime",
            format!("{net}c"),
        ),
        Topology::Two => (
            "bridged, two bridge processes (3 TCP connections)",
            format!("{net}t"),
        ),
    };
    let exposes = vec![("α:1", sink), ("α:2", echo)];
    let forwards = vec!["α:1", "α:2"];
    let (threads, addrs) = match topology {
        Topology::One(runtime) => {
            let (thread, addrs) = start_bridge(root, &net, runtime, exposes, forwards);
            (vec![thread], addrs)
        }
        Topology::Two => {
            let (exposer, _) = start_bridge(root, &net, Flavor::Multi, exposes, vec![]);
            let (forwarder, addrs) = start_bridge(root, &net, Flavor::Multi, vec![], forwards);
            (vec![exposer, forwarder], addrs)
        }
    };
    Bridged {
        name,
        sink: addrs[0],
        echo: addrs[1],
        threads,
    }
}

/// Starts one bridge on network `net` under `root` (joined as `lonet
/// bridge` does, with local pipes) exposing `exposes` and forwarding to
/// `forwards` from β; the forwards' OS addresses.
fn start_bridge(
    root: &std::path::Path,
    net: &str,
    runtime: Flavor,
    exposes: Vec<(&'static str, SocketAddr)>,
    forwards: Vec<&'static str>,
) -> (BridgeThread, Vec<SocketAddr>) {
    let (root, net) = (root.to_owned(), net.to_owned());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        runtime.runtime().block_on(async move {
            let net = lonet::Builder::new(&net)
                .root(&root)
                .local_pipes(true)
                .join()
                .await
                .expect("join");
            let bridge = Bridge::new(&net);
            for (addr, server) in exposes {
                bridge
                    .expose(addr, &server.to_string())
                    .await
                    .expect("expose");
            }
            let mut addrs = Vec::new();
            for to in forwards {
                let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
                let forward = bridge.forward(any, "β", to).await.expect("forward");
                addrs.push(forward.local_addr());
            }
            ready_tx.send(addrs).unwrap();
            let _ = stop_rx.await;
            bridge
                .shutdown(Duration::from_secs(5))
                .await
                .expect("shutdown");
            net.close().await.expect("close");
        })
    });
    let addrs = ready_rx.recv().expect("the bridge started");
    (BridgeThread { stop, thread }, addrs)
}

/// `hops` plain OS proxies in a row in front of each server, on a
/// current-thread runtime in a thread of their own; the first proxies'
/// addresses.
fn start_proxies(sink: SocketAddr, echo: SocketAddr, hops: usize) -> (SocketAddr, SocketAddr) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        Flavor::Current.runtime().block_on(async move {
            let mut firsts = Vec::new();
            for server in [sink, echo] {
                let mut first = server;
                for _ in 0..hops {
                    first = proxy(first).await;
                }
                firsts.push(first);
            }
            tx.send((firsts[0], firsts[1])).unwrap();
            std::future::pending::<()>().await
        })
    });
    rx.recv().expect("proxies")
}

/// A plain TCP proxy to `to`; its address.
async fn proxy(to: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let at = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(to).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional_with_sizes(
                    &mut inbound,
                    &mut outbound,
                    lonet::bridge::BUFFER,
                    lonet::bridge::BUFFER,
                )
                .await;
            });
        }
    });
    at
}

/// Serves every connection of `listener` with `one`, each in a task.
async fn serve<F, Fut>(listener: TcpListener, one: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    while let Ok((s, _)) = listener.accept().await {
        let _ = s.set_nodelay(true);
        tokio::spawn(one(s));
    }
}

/// Reads to the end, then answers the count (8 bytes) and closes.
async fn sink_one(mut s: TcpStream) {
    let mut buf = vec![0; 64 * 1024];
    let mut n: u64 = 0;
    loop {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(_) => return,
        }
    }
    let _ = s.write_all(&n.to_be_bytes()).await;
}

/// Sends back every byte.
async fn echo_one(mut s: TcpStream) {
    let (mut r, mut w) = s.split();
    let _ = tokio::io::copy(&mut r, &mut w).await;
}

/// Writes `bytes` to the sink at `addr`; MiB/s, connect to answer.
async fn throughput(addr: SocketAddr, bytes: u64) -> f64 {
    let buf = vec![0x5a; 64 * 1024];
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut sent = 0;
    while sent < bytes {
        let n = (bytes - sent).min(buf.len() as u64) as usize;
        s.write_all(&buf[..n]).await.expect("write");
        sent += n as u64;
    }
    s.shutdown().await.expect("shutdown");
    let mut answer = [0; 8];
    s.read_exact(&mut answer).await.expect("the sink's count");
    let took = start.elapsed();
    assert_eq!(
        u64::from_be_bytes(answer),
        bytes,
        "the sink got another count"
    );
    bytes as f64 / (1 << 20) as f64 / took.as_secs_f64()
}

/// `n` timed 1-byte round trips to the echo at `addr`, after `warmup`.
async fn round_trips(addr: SocketAddr, n: usize, warmup: usize) -> Samples {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut byte = [7u8];
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let start = Instant::now();
        s.write_all(&byte).await.expect("write");
        s.read_exact(&mut byte).await.expect("read");
        if i >= warmup {
            samples.push(start.elapsed());
        }
    }
    Samples(samples)
}

/// This process's CPU time so far (user and system, all threads), from
/// `/proc/self/stat` (in clock ticks, 100 a second on Linux); 0 where
/// there is none.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // After the command's name in parentheses: utime and stime are the
    // 12th and 13th fields.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
