//! The ping-pong section: 1-byte round trips over each [`Kind`].

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::{run_on, Flavor, Sizes};
use crate::kinds::{BoxIo, Kind, KINDS};
use crate::stats::spread;

/// `n` round trips of 1 byte from `c` to `s` and back; the time they took.
pub async fn pingpong(mut c: BoxIo, mut s: BoxIo, n: usize) -> Duration {
    let server = tokio::spawn(async move {
        let mut b = [0_u8; 1];
        for _ in 0..n {
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        }
        s
    });
    let client = tokio::spawn(async move {
        let mut b = [7_u8; 1];
        let t = Instant::now();
        for _ in 0..n {
            c.write_all(&b).await.unwrap();
            c.read_exact(&mut b).await.unwrap();
        }
        (t.elapsed(), c)
    });
    let ((d, c), s) = (client.await.unwrap(), server.await.unwrap());
    drop((c, s));
    d
}

pub(crate) fn pingpong_section(sz: &Sizes) {
    println!(
        "\n## ping-pong\n\n{} round trips of 1 byte each way on one connection (client \
         and echoing server in two tasks).\n",
        sz.round_trips
    );
    println!(
        "| contender | runtime | round trips/s median (min–max of {}) | µs per round trip | / raw TCP |",
        sz.rounds
    );
    println!("|---|---|---:|---:|---:|");
    let tmp = tempfile::tempdir().unwrap();
    let n = sz.round_trips;
    for flavor in Flavor::ALL {
        let kinds: Vec<Kind> = KINDS
            .into_iter()
            .filter(|k| !matches!(k, Kind::PipenetCap(_)))
            .collect();
        let mut rates: Vec<Vec<f64>> = kinds.iter().map(|_| Vec::new()).collect();
        for _ in 0..sz.rounds {
            for (&kind, r) in kinds.iter().zip(&mut rates) {
                let root = tmp.path().to_owned();
                let d = run_on(flavor, move || async move {
                    kind.with_pair(root, |c, s| pingpong(c, s, n)).await
                });
                r.push(n as f64 / d.as_secs_f64());
            }
        }
        let tcp = spread(&rates[0]).0;
        for (kind, r) in kinds.into_iter().zip(&rates) {
            let (m, lo, hi) = spread(r);
            println!(
                "| {} | {} | {:.0} ({:.0}–{:.0}) | {:.2} | {:.2}× |",
                kind.name(),
                flavor.name(),
                m,
                lo,
                hi,
                1e6 / m,
                m / tcp
            );
        }
    }
}
