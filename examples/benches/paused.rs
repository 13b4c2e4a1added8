//! pipenet under tokio's paused clock: 1,000 round trips with 50 ms of
//! latency each way (100 s of virtual time) against the same 1,000 round
//! trips with no fault, both on a paused current-thread runtime. Their
//! ratio is the cost of the latency in wall-clock time.
//!
//! `cargo bench -p virtnet-examples --bench paused`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use virtnet_examples::exchange::round_trips;

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("paused_1000_round_trips");
    g.sample_size(20);
    for (name, latency) in [
        ("no_fault", Duration::ZERO),
        ("latency_50ms", Duration::from_millis(50)),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let rt = paused();
                let virtual_time = rt.block_on(round_trips(1_000, latency)).expect("exchange");
                // Each round trip takes the latency twice, in virtual time.
                assert!(virtual_time >= 2_000 * latency);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
