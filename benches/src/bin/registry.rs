//! Registry query latency, SQLite against PostgreSQL, in one process and
//! one run: `query` of one announced host, N times in a row (after a
//! warm-up), on each tokio runtime flavor.
//!
//! - SQLite: `registry_sqlite::SqliteRegistry` on a file in a temporary
//!   directory (a query goes to the handle's reader thread and back);
//! - PostgreSQL: `registry_postgres::PostgresRegistry` on the server at
//!   `VIRTNET_POSTGRES_SOCKET_URL` (meant: its local unix socket), else
//!   `VIRTNET_POSTGRES_URL`, in a network of its own that is removed at the
//!   end (a query is one prepared statement, one round trip).
//!
//! `cargo run -p benches --release --bin registry [-- --quick]`: N is
//! 5,000, or 200 with `--quick` (smoke only).

use std::time::{Duration, Instant};

use benches::{run_on, Flavor, Samples};
use registry_postgres::PostgresRegistry;
use registry_sqlite::SqliteRegistry;
use virtnet_core::Registry;

const HOST: &str = "α";
const DATA: &str = "127.0.0.1:4001";

fn main() {
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let n = if quick { 200 } else { 5_000 };
    let warmup = n / 10;
    let Some(url) = ["VIRTNET_POSTGRES_SOCKET_URL", "VIRTNET_POSTGRES_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
    else {
        eprintln!(
            "error: set VIRTNET_POSTGRES_SOCKET_URL (a PostgreSQL server's unix-socket URL, \
             such as postgres://virtnet@%2Ftmp%2Fpg%2Fsock:5432/postgres) or VIRTNET_POSTGRES_URL"
        );
        std::process::exit(2);
    };

    println!(
        "## registry query latency ({n} sequential queries of one announced host, after {warmup} untimed{})",
        if quick { "; quick mode: smoke only" } else { "" }
    );
    println!("PostgreSQL: {}", registry_postgres::redact(&url));
    println!();
    println!("| runtime | registry | median | p99 |");
    println!("|---|---|---|---|");
    let mut ratios = Vec::new();
    for flavor in Flavor::ALL {
        let runtime = match flavor {
            Flavor::Multi => "multi-thread (2 workers)",
            Flavor::Current => "current-thread",
        };
        let sqlite = run_on(flavor, move || sqlite(n, warmup));
        let url = url.clone();
        let postgres = run_on(flavor, move || postgres(url, n, warmup));
        for (name, s) in [("SQLite (temp file)", &sqlite), ("PostgreSQL", &postgres)] {
            println!(
                "| {runtime} | {name} | {} | {} |",
                us(s.median()),
                us(s.p99())
            );
        }
        ratios.push((
            runtime,
            ratio(postgres.median(), sqlite.median()),
            ratio(postgres.p99(), sqlite.p99()),
        ));
    }
    println!();
    for (runtime, median, p99) in ratios {
        println!("pg/sqlite, {runtime}: median ×{median:.2}, p99 ×{p99:.2}");
    }
}

/// `n` timed queries of `reg` after `warmup` untimed ones.
async fn measure(reg: &dyn Registry, n: usize, warmup: usize) -> Samples {
    for _ in 0..warmup {
        assert_eq!(reg.query(HOST).await.expect("query"), DATA);
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let data = reg.query(HOST).await.expect("query");
        samples.push(start.elapsed());
        assert_eq!(data, DATA);
    }
    Samples(samples)
}

async fn sqlite(n: usize, warmup: usize) -> Samples {
    let dir = tempfile::tempdir().expect("temporary directory");
    let reg = SqliteRegistry::open(dir.path().join("registry.db"), "bench")
        .await
        .expect("open the SQLite registry");
    reg.announce(HOST, DATA).await.expect("announce");
    let samples = measure(&reg, n, warmup).await;
    reg.close().await.expect("close");
    samples
}

async fn postgres(url: String, n: usize, warmup: usize) -> Samples {
    let network = format!("bench-registry-{}", std::process::id());
    let reg = PostgresRegistry::connect(&url, &network)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    reg.announce(HOST, DATA).await.expect("announce");
    let samples = measure(&reg, n, warmup).await;
    reg.remove_network().await.expect("remove the network");
    reg.close().await.expect("close");
    samples
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
