//! The report's dial, stream and ping-pong measures as criterion benches,
//! each contender a function of one group, so criterion's statistics and
//! its saved baselines (`--save-baseline`, `--baseline`) apply to them.
//! The side-by-side table with ratios, the p99s, the dialer in another
//! process and the scale measure are in the report (`benches/report.rs`).
//!
//! Run: `cargo bench -p benches --bench contenders [-- FILTER]`; results in
//! `target/criterion/`. Every sample builds its connections (or network)
//! outside the timed part: only dials, streamed bytes and round trips are
//! timed.

use std::time::Duration;

use benches::{
    dial_lonet, dial_pipenet, dial_tcp, dial_turmoil, pingpong, run_on, stream, Flavor, Kind,
    KINDS, MIB,
};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

/// Untimed dials before each sample's timed ones.
const DIAL_WARMUP: usize = 20;
/// Bytes streamed per iteration (in the report's 64 KiB writes).
const STREAM_BYTES: usize = 64 * MIB;

fn dial_accept(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    for flavor in Flavor::ALL {
        let mut g = c.benchmark_group(format!("dial_accept/{}", flavor.arg()));
        g.bench_function("raw_tcp", |b| {
            b.iter_custom(|n| run_on(flavor, move || dial_tcp(DIAL_WARMUP, n as usize)).total())
        });
        g.bench_function("pipenet", |b| {
            b.iter_custom(|n| run_on(flavor, move || dial_pipenet(DIAL_WARMUP, n as usize)).total())
        });
        for (id, ram) in [("lonet", false), ("lonet_ram_registry", true)] {
            let root = tmp.path().join(format!("{}-{id}", flavor.arg()));
            std::fs::create_dir_all(&root).expect("root");
            g.bench_function(id, |b| {
                b.iter_custom(|n| {
                    let root = root.clone();
                    run_on(flavor, move || {
                        dial_lonet(root, ram, DIAL_WARMUP, n as usize)
                    })
                    .total()
                })
            });
        }
        g.finish();
    }
    c.bench_function("dial_accept/turmoil_wall_clock", |b| {
        b.iter_custom(|n| dial_turmoil(DIAL_WARMUP, n as usize).total())
    });
}

fn stream_throughput(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    for flavor in Flavor::ALL {
        let mut g = c.benchmark_group(format!("stream_64KiB_writes/{}", flavor.arg()));
        g.throughput(Throughput::Bytes(STREAM_BYTES as u64));
        g.sampling_mode(SamplingMode::Flat);
        for kind in KINDS {
            let root = tmp.path().to_owned();
            g.bench_function(kind.id(), |b| {
                b.iter_custom(|n| {
                    (0..n)
                        .map(|_| {
                            let root = root.clone();
                            run_on(flavor, move || async move {
                                kind.with_pair(root, |c, s| stream(c, s, STREAM_BYTES))
                                    .await
                            })
                        })
                        .sum()
                })
            });
        }
        g.finish();
    }
}

fn ping_pong(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    for flavor in Flavor::ALL {
        let mut g = c.benchmark_group(format!("ping_pong_1_byte/{}", flavor.arg()));
        for kind in KINDS {
            if matches!(kind, Kind::PipenetCap(_)) {
                continue;
            }
            let root = tmp.path().to_owned();
            g.bench_function(kind.id(), |b| {
                b.iter_custom(|n| {
                    let root = root.clone();
                    run_on(flavor, move || async move {
                        kind.with_pair(root, |c, s| pingpong(c, s, n as usize))
                            .await
                    })
                })
            });
        }
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
}

criterion_group! {
    name = contenders;
    config = config();
    targets = dial_accept, stream_throughput, ping_pong
}
criterion_main!(contenders);
