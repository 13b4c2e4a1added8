//! Fault measures (BENCHMARKS.md, "Faults"):
//!
//! - `propagation`: a fault set in this process, seen by another process
//!   watching the same lonet registry (`FaultStore::changed`), 250 changes;
//! - `latency`: 10 ms injected one way on lonet (two hosts, real loopback
//!   TCP): the extra round-trip time against the same connection without it;
//! - `bandwidth`: 10 MiB/s on lonet, the rate a reader gets over 5 s;
//! - `idle`: the CPU time a process spends in 5 s on an idle lonet network
//!   (two hosts, a connection, no fault; then with a fault set and healed),
//!   following its fault rules.
//!
//! (pipenet under a paused clock is measured by the `paused_exchange`
//! example of `virtnet-examples`: this crate keeps tokio without
//! `test-util`, so its other measures stay comparable with earlier runs.)
//!
//! `cargo run -p benches --release --bin faults [-- SECTIONS]` (all by default).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use benches::Flavor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::{Links, Registry};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("watch") {
        return watch(&args[1], &args[2]);
    }
    let all = args.is_empty();
    let want = |s: &str| all || args.iter().any(|a| a == s);
    if want("propagation") {
        propagation();
    }
    if want("latency") {
        latency();
    }
    if want("bandwidth") {
        bandwidth();
    }
    if want("idle") {
        idle();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The child: watches the registry's faults, prints each version it sees.
fn watch(path: &str, net: &str) {
    Flavor::Multi.runtime().block_on(async {
        let registry = registry_sqlite::SqliteRegistry::open(path, net)
            .await
            .expect("open registry");
        let store = registry.faults().expect("a fault store");
        let mut seen = store.load().await.expect("load").version;
        println!("ready {seen}");
        loop {
            let rules = store.changed(seen).await.expect("changed");
            seen = rules.version;
            println!("v {seen}");
            let _ = std::io::stdout().flush();
        }
    });
}

fn propagation() {
    const CHANGES: usize = 250;
    let root = tempfile::tempdir().expect("temp dir");
    let rt = Flavor::Multi.runtime();
    let net = rt.block_on(async {
        let net = lonet::Builder::new("fprop")
            .root(root.path())
            .join()
            .await
            .expect("join");
        // The first change makes the faults table.
        net.faults().heal_all().await.expect("first change");
        net
    });
    let path = root.path().join("fprop").join("registry.db");
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["watch", &path.display().to_string(), "fprop"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn watcher");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next().expect("ready line").expect("read");
    assert!(ready.starts_with("ready "), "{ready}");
    let faults = net.faults();
    let (mut total, mut after_store) = (Vec::new(), Vec::new());
    for i in 0..CHANGES {
        let start = Instant::now();
        rt.block_on(async {
            if i % 2 == 0 {
                faults.partition(Links::pair("α", "β")).await
            } else {
                faults.heal_all().await
            }
        })
        .expect("change");
        let stored = Instant::now();
        let line = lines.next().expect("a version line").expect("read");
        let seen = Instant::now();
        assert!(line.starts_with("v "), "{line}");
        total.push(seen - start);
        after_store.push(seen - stored);
    }
    let _ = child.kill();
    let _ = child.wait();
    total.sort();
    after_store.sort();
    println!("## propagation across processes ({CHANGES} changes, SQLite registry, inotify)");
    println!(
        "set → seen in the other process: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&total, 0.5),
        percentile(&total, 0.99),
        total[total.len() - 1]
    );
    println!(
        "of which after `set` returned: p50 {:?}, p99 {:?}",
        percentile(&after_store, 0.5),
        percentile(&after_store, 0.99)
    );
    rt.block_on(net.close()).expect("close");
}

/// Two lonet hosts in one process, a connection β → α, echo on α.
async fn lonet_pair(root: &std::path::Path, name: &str) -> (lonet::SubNetwork, virtnet_core::Conn) {
    let net = lonet::Builder::new(name)
        .root(root)
        .join()
        .await
        .expect("join");
    let alpha = net.new_host("α").await.expect("α");
    let beta = net.new_host("β").await.expect("β");
    let l = alpha.listen(":1").await.expect("listen");
    let (c, mut s) = tokio::try_join!(beta.dial("α:1"), l.accept()).expect("connect");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    (net, c)
}

async fn round_trips(c: &mut virtnet_core::Conn, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    let mut b = [0u8; 1];
    for _ in 0..n {
        let start = Instant::now();
        c.write_all(b"x").await.expect("write");
        c.read_exact(&mut b).await.expect("read");
        out.push(start.elapsed());
    }
    out.sort();
    out
}

fn latency() {
    let root = tempfile::tempdir().expect("temp dir");
    Flavor::Multi.runtime().block_on(async {
        let (net, mut c) = lonet_pair(root.path(), "flat").await;
        round_trips(&mut c, 200).await;
        let base = round_trips(&mut c, 2_000).await;
        let injected = Duration::from_millis(10);
        net.faults()
            .latency(Links::oneway("β", "α"), injected)
            .await
            .expect("latency");
        let with = round_trips(&mut c, 300).await;
        let base_median = percentile(&base, 0.5);
        let mut errors: Vec<Duration> = with
            .iter()
            .map(|rtt| rtt.saturating_sub(base_median).saturating_sub(injected))
            .collect();
        errors.sort();
        let early = with.iter().filter(|rtt| **rtt < injected).count();
        println!("## latency precision on lonet (10 ms one way, 1-byte round trips)");
        println!(
            "round trip without: p50 {:?}, p99 {:?}; with: p50 {:?}, p99 {:?}, min {:?}",
            base_median,
            percentile(&base, 0.99),
            percentile(&with, 0.5),
            percentile(&with, 0.99),
            with[0]
        );
        println!(
            "extra round trip minus 10 ms (error): p50 {:?}, p99 {:?}, max {:?}; early deliveries: {early}",
            percentile(&errors, 0.5),
            percentile(&errors, 0.99),
            errors[errors.len() - 1]
        );
        net.close().await.expect("close");
    });
}

fn bandwidth() {
    let root = tempfile::tempdir().expect("temp dir");
    Flavor::Multi.runtime().block_on(async {
        let net = lonet::Builder::new("fbw")
            .root(root.path())
            .join()
            .await
            .expect("join");
        let alpha = net.new_host("α").await.expect("α");
        let beta = net.new_host("β").await.expect("β");
        let l = alpha.listen(":1").await.expect("listen");
        let (mut c, mut s) = tokio::try_join!(beta.dial("α:1"), l.accept()).expect("connect");
        let rate: u64 = 10 << 20;
        net.faults()
            .bandwidth(Links::oneway("β", "α"), rate)
            .await
            .expect("bandwidth");
        let writer = tokio::spawn(async move {
            let chunk = vec![7u8; 64 << 10];
            while c.write_all(&chunk).await.is_ok() {}
        });
        let mut buf = vec![0u8; 64 << 10];
        // Past the initial burst and the transport's buffers.
        let mut warm = 0;
        while warm < (2 << 20) {
            warm += s.read(&mut buf).await.expect("read");
        }
        let start = Instant::now();
        let mut got: u64 = 0;
        while start.elapsed() < Duration::from_secs(5) {
            got += s.read(&mut buf).await.expect("read") as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        let measured = got as f64 / secs;
        println!("## bandwidth precision on lonet (10 MiB/s set, one connection, 5 s)");
        println!(
            "measured {:.3} MiB/s over {secs:.2} s: {:+.2}% of the set rate",
            measured / (1 << 20) as f64,
            (measured / rate as f64 - 1.0) * 100.0
        );
        writer.abort();
        net.close().await.expect("close");
    });
}

/// This process's CPU time (user + system, all threads) so far, from
/// `/proc/self/stat` (in clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th fields of the line.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<u64> = rest.split(' ').map(|f| f.parse().unwrap_or(0)).collect();
    Duration::from_millis((fields[11] + fields[12]) * 10)
}

fn idle() {
    let root = tempfile::tempdir().expect("temp dir");
    let rt = Flavor::Multi.runtime();
    println!("## an idle lonet network (two hosts, one connection), 5 s each");
    rt.block_on(async {
        let (net, c) = lonet_pair(root.path(), "fidle").await;
        for phase in ["no fault ever set", "a fault set, then healed"] {
            if phase != "no fault ever set" {
                let f = net.faults();
                f.partition(Links::pair("α", "β")).await.expect("partition");
                f.heal_all().await.expect("heal");
            }
            let (cpu, wall) = (cpu_time(), Instant::now());
            tokio::time::sleep(Duration::from_secs(5)).await;
            println!(
                "{phase}: {:?} of CPU in {:?}",
                cpu_time() - cpu,
                wall.elapsed()
            );
        }
        drop(c);
        net.close().await.expect("close");
    });
}
