//! The stream throughput section: [`stream`] over each [`Kind`], and
//! turmoil.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::args::{run_on, Flavor, Sizes, KIB, MIB};
use crate::kinds::{Kind, KINDS};
use crate::stats::{gbps, spread};

/// The size of each write in the throughput measure.
pub const WRITE_SIZE: usize = 64 * KIB;

/// Streams `total` bytes in `WRITE_SIZE` writes from `w` to `r` (two tasks);
/// returns the time until the reader has them all.
pub async fn stream<W, R>(mut w: W, mut r: R, total: usize) -> Duration
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5a_u8; WRITE_SIZE];
        let mut left = total;
        while left > 0 {
            let k = left.min(WRITE_SIZE);
            w.write_all(&chunk[..k]).await.unwrap();
            left -= k;
        }
        w
    });
    let reader = tokio::spawn(async move {
        let mut buf = vec![0_u8; WRITE_SIZE];
        let mut got = 0;
        while got < total {
            let k = r.read(&mut buf).await.unwrap();
            assert!(k > 0, "early end of stream");
            got += k;
        }
        r
    });
    let (w, r) = tokio::join!(writer, reader);
    let e = t.elapsed();
    drop((w.unwrap(), r.unwrap()));
    e
}

/// turmoil: wall-clock time to stream `total` bytes client → server, until
/// the server acknowledges having read them all.
fn stream_turmoil(total: usize) -> Duration {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(365 * 24 * 3600))
        .min_message_latency(Duration::ZERO)
        .max_message_latency(Duration::ZERO)
        .build();
    sim.host("server", move || async move {
        let l = turmoil::net::TcpListener::bind("0.0.0.0:10").await?;
        let (mut s, _) = l.accept().await?;
        let mut buf = vec![0_u8; WRITE_SIZE];
        let mut got = 0;
        while got < total {
            let k = s.read(&mut buf).await?;
            assert!(k > 0);
            got += k;
        }
        s.write_all(b"!").await?;
        std::future::pending::<()>().await;
        Ok(())
    });
    let out = Arc::new(Mutex::new(Duration::ZERO));
    let out2 = out.clone();
    sim.client("client", async move {
        let mut s = turmoil::net::TcpStream::connect("server:10").await?;
        let chunk = vec![0x5a_u8; WRITE_SIZE];
        let t = Instant::now();
        let mut left = total;
        while left > 0 {
            let k = left.min(WRITE_SIZE);
            s.write_all(&chunk[..k]).await?;
            left -= k;
        }
        let mut ack = [0_u8; 1];
        s.read_exact(&mut ack).await?;
        *out2.lock().unwrap() = t.elapsed();
        Ok(())
    });
    sim.run().unwrap();
    let d = *out.lock().unwrap();
    d
}

/// `mem_only`: only the in-memory contenders (duplex, pipenet), for quick
/// comparisons while working on the pipe.
pub(crate) fn throughput_section(sz: &Sizes, mem_only: bool) {
    println!(
        "\n## stream throughput\n\n{} MiB in {} KiB writes over one connection, writer and \
         reader in two tasks; GB/s = 10^9 bytes/s; {} rounds, the contenders taking turns. \
         Ratios are of medians.\n",
        sz.stream_bytes / MIB,
        WRITE_SIZE / KIB,
        sz.rounds
    );
    println!(
        "| contender | runtime | GB/s median (min–max of {}) | / raw TCP | / best duplex |",
        sz.rounds
    );
    println!("|---|---|---:|---:|---:|");
    let tmp = tempfile::tempdir().unwrap();
    let total = sz.stream_bytes;
    for flavor in Flavor::ALL {
        let mut rates: Vec<Vec<f64>> = KINDS.iter().map(|_| Vec::new()).collect();
        for _ in 0..sz.rounds {
            for (kind, r) in KINDS.into_iter().zip(&mut rates) {
                if mem_only && matches!(kind, Kind::Tcp | Kind::Lonet) {
                    r.push(f64::NAN);
                    continue;
                }
                let root = tmp.path().to_owned();
                let d = run_on(flavor, move || async move {
                    kind.with_pair(root, |c, s| stream(c, s, total)).await
                });
                r.push(gbps(total, d));
            }
        }
        let med: Vec<f64> = rates.iter().map(|r| spread(r).0).collect();
        let tcp = med[0];
        let best_duplex = KINDS
            .iter()
            .zip(&med)
            .filter(|(k, _)| matches!(k, Kind::Duplex(_)))
            .map(|(_, &m)| m)
            .fold(0.0, f64::max);
        for (kind, r) in KINDS.into_iter().zip(&rates) {
            let (m, lo, hi) = spread(r);
            println!(
                "| {} | {} | {:.2} ({:.2}–{:.2}) | {:.2}× | {:.2}× |",
                kind.name(),
                flavor.name(),
                m,
                lo,
                hi,
                m / tcp,
                m / best_duplex
            );
        }
    }
    if mem_only {
        return;
    }
    let d = stream_turmoil(sz.turmoil_bytes);
    println!(
        "| turmoil 0.7 ({} MiB, wall clock, zero simulated latency) | its own | {:.3} | | |",
        sz.turmoil_bytes / MIB,
        gbps(sz.turmoil_bytes, d)
    );
}
