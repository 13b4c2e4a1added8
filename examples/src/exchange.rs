//! Round trips on pipenet, with or without latency, for the paused-clock
//! example and bench: how long a run takes in virtual time.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::Links;

/// `rounds` round trips of 8 bytes between two pipenet hosts, each way
/// delayed by `latency` (none if zero), on the current runtime. Returns the
/// time they took on tokio's clock (under a paused clock: virtual time).
pub async fn round_trips(rounds: u64, latency: Duration) -> std::io::Result<Duration> {
    let net = pipenet::Network::new("exchange");
    let alpha = net.new_host("α").await?;
    let beta = net.new_host("β").await?;
    if !latency.is_zero() {
        net.faults().latency(Links::pair("α", "β"), latency).await?;
    }
    let l = alpha.listen(":1").await?;
    let (mut c, mut s) = tokio::try_join!(beta.dial("α:1"), l.accept())?;
    let start = tokio::time::Instant::now();
    let echo = async move {
        let mut b = [0u8; 8];
        for _ in 0..rounds {
            s.read_exact(&mut b).await?;
            s.write_all(&b).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let ask = async {
        let mut b = [0u8; 8];
        for i in 0..rounds {
            c.write_all(&i.to_le_bytes()).await?;
            c.read_exact(&mut b).await?;
            if u64::from_le_bytes(b) != i {
                return Err(std::io::Error::other("the echo differs"));
            }
        }
        Ok(())
    };
    tokio::try_join!(echo, ask)?;
    let elapsed = start.elapsed();
    net.close().await?;
    Ok(elapsed)
}
