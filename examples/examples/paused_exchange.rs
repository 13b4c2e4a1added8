//! pipenet under tokio's paused clock: 1,000 round trips with 50 ms of
//! latency each way (100 s of virtual time), timed on the wall clock.
//!
//! `cargo run -p virtnet-examples --release --example paused_exchange`

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::Links;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let wall = Instant::now();
    let virtual_time = rt.block_on(async {
        let net = pipenet::Network::new("fpaused");
        let alpha = net.new_host("α").await.expect("α");
        let beta = net.new_host("β").await.expect("β");
        net.faults()
            .latency(Links::pair("α", "β"), Duration::from_millis(50))
            .await
            .expect("latency");
        let l = alpha.listen(":1").await.expect("listen");
        let (mut c, mut s) = tokio::try_join!(beta.dial("α:1"), l.accept()).expect("connect");
        let start = tokio::time::Instant::now();
        let echo = tokio::spawn(async move {
            let mut b = [0u8; 8];
            for _ in 0..1_000 {
                s.read_exact(&mut b).await.expect("read");
                s.write_all(&b).await.expect("write");
            }
        });
        let mut b = [0u8; 8];
        for i in 0..1_000u64 {
            c.write_all(&i.to_le_bytes()).await.expect("write");
            c.read_exact(&mut b).await.expect("read");
            assert_eq!(u64::from_le_bytes(b), i);
        }
        echo.await.expect("echo");
        let elapsed = start.elapsed();
        net.close().await.expect("close");
        elapsed
    });
    println!("## pipenet under a paused clock (1,000 round trips, 50 ms each way)");
    println!(
        "virtual time {:?}, wall-clock time {:?}",
        virtual_time,
        wall.elapsed()
    );
}
