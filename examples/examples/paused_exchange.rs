//! pipenet under tokio's paused clock: 1,000 round trips with 50 ms of
//! latency each way (100 s of virtual time), timed on the wall clock.
//!
//! `cargo run -p virtnet-examples --release --example paused_exchange`

use std::time::{Duration, Instant};

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let wall = Instant::now();
    let virtual_time = rt
        .block_on(virtnet_examples::exchange::round_trips(
            1_000,
            Duration::from_millis(50),
        ))
        .expect("exchange");
    println!("## pipenet under a paused clock (1,000 round trips, 50 ms each way)");
    println!(
        "virtual time {:?}, wall-clock time {:?}",
        virtual_time,
        wall.elapsed()
    );
}
