//! A dial loop to run under a profiler (`perf stat`, `perf record`,
//! `strace -c -f`, `valgrind --tool=callgrind`): N dial+accept pairs of one
//! contender of the report, nothing else, then the mean time per dial on
//! stderr.
//!
//! ```text
//! cargo build -p benches --release --example dialprof
//! perf stat -e context-switches target/release/examples/dialprof multi lonet 20000
//! strace -f -c target/release/examples/dialprof current lonet-remote 5000
//! ```
//!
//! Runtimes: `multi` (2 workers), `current`. Contenders (the report's
//! functions of the same names in `benches`):
//! - `tcp`: raw TCP connect + accept in one task ([`benches::dial_tcp`]);
//! - `tcp-line`: the same plus a request line and a reply line, as lonet's
//!   handshake sends them ([`benches::dial_tcp_line`]);
//! - `pipenet`: two pipenet hosts ([`benches::dial_pipenet`]);
//! - `lonet`, `lonet-ram`: lonet, two hosts in this process (SQLite or
//!   in-memory registry);
//! - `lonet-remote`: lonet with the dialer in a child process (this binary
//!   again, which times the dials);
//! - `tcp-line-remote`: the floor under that: `tcp-line` with the connecting
//!   side in a child process.

use std::process::ExitCode;

use benches::{
    dial_lonet, dial_lonet_remote, dial_pipenet, dial_tcp, dial_tcp_line, dial_tcp_line_remote,
    run_on, Flavor,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        // The dialer of a `-remote` contender.
        benches::main();
        return ExitCode::SUCCESS;
    }
    let [flavor, contender, n] = args.as_slice() else {
        eprintln!("usage: dialprof multi|current CONTENDER N   (see the source)");
        return ExitCode::from(2);
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("dialprof: N must be a number");
        return ExitCode::from(2);
    };
    let Some(flavor) = Flavor::from_arg(flavor) else {
        eprintln!("dialprof: the runtime is multi or current");
        return ExitCode::from(2);
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_owned();
    let samples = match contender.as_str() {
        "tcp" => run_on(flavor, move || dial_tcp(0, n)),
        "tcp-line" => run_on(flavor, move || dial_tcp_line(0, n)),
        "pipenet" => run_on(flavor, move || dial_pipenet(0, n)),
        "lonet" => run_on(flavor, move || dial_lonet(root, false, 0, n)),
        "lonet-ram" => run_on(flavor, move || dial_lonet(root, true, 0, n)),
        "lonet-remote" => run_on(flavor, move || dial_lonet_remote(root, flavor, 0, n)),
        "tcp-line-remote" => run_on(flavor, move || dial_tcp_line_remote(flavor, 0, n)),
        other => {
            eprintln!("dialprof: unknown contender {other:?}");
            return ExitCode::from(2);
        }
    };
    let us = samples.total().as_secs_f64() * 1e6 / n.max(1) as f64;
    eprintln!("{contender}: {us:.1} µs per dial (mean of {n})");
    ExitCode::SUCCESS
}
