//! A replicated counter on three pipenet hosts, and what a partition does to
//! it: the story the `partition_counter` example prints and its test
//! asserts, exactly, under tokio's paused clock.
//!
//! α is the leader. β and γ are followers listening on port 7; each applies
//! `inc N` lines and answers `ack N`. The leader commits an increment once
//! one follower acknowledges it within [`LEASE`] (with itself, a majority
//! of three); otherwise it reports no quorum. Every link has 10 ms of
//! latency and up to 5 ms of jitter, from the network's seed.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;
use virtnet_core::trace::Trace;
use virtnet_core::{Conn, Fault, Links, Networker};

/// How long the leader waits for an acknowledgement.
pub const LEASE: Duration = Duration::from_millis(100);

/// What happened: the leader's log (with virtual times) and the trace of
/// the network (faults, connections, every write).
#[derive(Debug, PartialEq, Eq)]
pub struct Story {
    /// `"  27ms α commit 1 (ack from β)"`, …
    pub log: Vec<String>,
    /// The network's event trace, as lines.
    pub trace: Vec<String>,
    /// The followers' counters at the end.
    pub followers: Vec<(String, u64)>,
}

/// A follower: applies increments, acknowledges each; returns its counter
/// when the leader closes the connection.
async fn follow(conn: Conn) -> io::Result<u64> {
    let (r, mut w) = tokio::io::split(conn);
    let mut lines = BufReader::new(r).lines();
    let mut counter = 0;
    while let Some(line) = lines.next_line().await? {
        if let Some(n) = line.strip_prefix("inc ").and_then(|n| n.parse().ok()) {
            counter = n;
            w.write_all(format!("ack {n}\n").as_bytes()).await?;
        }
    }
    Ok(counter)
}

/// One follower connection as the leader sees it.
struct Peer {
    name: String,
    lines: tokio::io::Lines<BufReader<tokio::io::ReadHalf<Conn>>>,
    w: tokio::io::WriteHalf<Conn>,
}

impl Peer {
    /// The next `ack n`, skipping older ones (answers to rounds that timed out).
    async fn ack(&mut self, n: u64) -> io::Result<String> {
        while let Some(line) = self.lines.next_line().await? {
            if line == format!("ack {n}") {
                return Ok(self.name.clone());
            }
        }
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

/// Sends increment `n` to both followers and waits for one ack within the lease.
async fn round(
    peers: &mut [Peer; 2],
    n: u64,
    start: Instant,
    log: &mut Vec<String>,
) -> io::Result<()> {
    for p in peers.iter_mut() {
        p.w.write_all(format!("inc {n}\n").as_bytes()).await?;
    }
    let [p1, p2] = peers;
    let first = tokio::time::timeout(LEASE, async {
        tokio::select! {
            biased;
            who = p1.ack(n) => who,
            who = p2.ack(n) => who,
        }
    })
    .await;
    let at = start.elapsed().as_millis();
    log.push(match first {
        Ok(who) => format!("{at:>4}ms α commit {n} (ack from {})", who?),
        Err(_) => format!("{at:>4}ms α no quorum for {n}"),
    });
    Ok(())
}

/// Plays the story on a fresh pipenet with jitter seed `seed`. Run it
/// under a paused clock (`#[tokio::test(start_paused = true)]`) for exact,
/// repeatable times.
pub async fn partition_story(seed: u64) -> io::Result<Story> {
    let net = pipenet::Network::new("counter");
    let trace = Trace::new();
    let faults = net.faults().observe(&trace);
    faults.set_seed(seed).await?;
    let jittery = Fault::Latency {
        base: Duration::from_millis(10),
        jitter: Duration::from_millis(5),
    };
    faults
        .set(Links::between(["α"], ["β", "γ"]), jittery)
        .await?;

    let alpha = trace.wrap(net.new_host("α").await?);
    let mut followers = Vec::new();
    for name in ["β", "γ"] {
        let host = trace.wrap(net.new_host(name).await?);
        let l = host.listen(":7").await?;
        followers.push(tokio::spawn(async move {
            let conn = l.accept().await?;
            follow(conn).await
        }));
    }
    let start = Instant::now();
    let mut log = Vec::new();
    let mut peers = Vec::new();
    for name in ["β", "γ"] {
        let conn = alpha.dial(&format!("{name}:7")).await?;
        let (r, w) = tokio::io::split(conn);
        let lines = BufReader::new(r).lines();
        peers.push(Peer {
            name: name.to_owned(),
            lines,
            w,
        });
    }
    let mut peers: [Peer; 2] = match peers.try_into() {
        Ok(p) => p,
        Err(_) => return Err(io::Error::other("two followers")),
    };
    log.push(format!(
        "{:>4}ms α connected to β and γ",
        start.elapsed().as_millis()
    ));

    round(&mut peers, 1, start, &mut log).await?;
    faults.partition(Links::between(["α"], ["β", "γ"])).await?;
    log.push(format!(
        "{:>4}ms partition {{α}} | {{β,γ}}",
        start.elapsed().as_millis()
    ));
    round(&mut peers, 2, start, &mut log).await?;
    faults.heal(Links::between(["α"], ["β", "γ"])).await?;
    log.push(format!("{:>4}ms heal", start.elapsed().as_millis()));
    round(&mut peers, 3, start, &mut log).await?;

    drop(peers);
    let mut counters = Vec::new();
    for (name, f) in ["β", "γ"].into_iter().zip(followers) {
        let counter = f.await.map_err(io::Error::other)??;
        counters.push((name.to_owned(), counter));
    }
    net.close().await?;
    Ok(Story {
        log,
        trace: trace.lines(),
        followers: counters,
    })
}
