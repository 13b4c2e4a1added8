//! Query latency of the SQLite registry at 10, 1,000 and 10,000 hosts.
//!
//! A lonet dial does one registry query, so this is part of dial latency.
//! Each iteration is one `query` awaited on a tokio runtime: the request
//! goes to the handle's reader thread, which runs the cached `SELECT` and
//! answers. Hosts are queried in a scattered order, so the B-tree is not
//! walked along one path.
//!
//! `registry_query/<runtime>/<hosts>` times queries back to back, as in a
//! burst of dials. `registry_query_after_pause/<hosts>` leaves 200 µs
//! between queries (not timed), so the handle's reader thread has gone to
//! sleep and each query pays for waking it, as a lone dial does.
//!
//! Run: `cargo bench -p registry-sqlite --bench query`; medians are in
//! `target/criterion/<group>/<runtime>/<hosts>/new/estimates.json`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use registry_sqlite::SqliteRegistry;
use virtnet_core::Registry;

fn host(i: usize) -> String {
    format!("host-{i}")
}

fn query_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry_query");
    for (flavor, rt) in [
        (
            "current_thread",
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime"),
        ),
        (
            "multi_thread",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .expect("runtime"),
        ),
    ] {
        for n in [10usize, 1_000, 10_000] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("registry.db");
            let reg = rt.block_on(async {
                let reg = SqliteRegistry::open(&path, "bench").await.expect("open");
                for i in 0..n {
                    reg.announce(&host(i), &format!("127.0.0.1:{}", 10_000 + i % 50_000))
                        .await
                        .expect("announce");
                }
                reg
            });
            // A stride coprime with n visits every host, out of order.
            let names: Vec<String> = (0..n).map(|i| host((i * 7919) % n)).collect();
            let mut next = 0;
            group.bench_with_input(BenchmarkId::new(flavor, n), &n, |b, _| {
                b.to_async(&rt).iter(|| {
                    let name = &names[next % n];
                    next += 1;
                    let reg = &reg;
                    async move { black_box(reg.query(name).await.expect("query")) }
                });
            });
            rt.block_on(reg.close()).expect("close");
        }
    }
    group.finish();
}

fn query_latency_after_pause(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry_query_after_pause");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for n in [10usize, 10_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.db");
        let reg = rt.block_on(async {
            let reg = SqliteRegistry::open(&path, "bench").await.expect("open");
            for i in 0..n {
                reg.announce(&host(i), "127.0.0.1:1")
                    .await
                    .expect("announce");
            }
            reg
        });
        let names: Vec<String> = (0..n).map(|i| host((i * 7919) % n)).collect();
        let mut next = 0;
        group.bench_with_input(BenchmarkId::new("current_thread", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    std::thread::sleep(Duration::from_micros(200));
                    let name = &names[next % n];
                    next += 1;
                    let start = Instant::now();
                    black_box(rt.block_on(reg.query(name)).expect("query"));
                    total += start.elapsed();
                }
                total
            });
        });
        rt.block_on(reg.close()).expect("close");
    }
    group.finish();
}

criterion_group!(benches, query_latency, query_latency_after_pause);
criterion_main!(benches);
