//! One stream of the report's throughput measure (64 KiB writes, one
//! connection) in a process of its own, for profilers and for runs that do
//! not share a process: `streamprof tcp|lonet|pipenet|duplex MIB multi|current`; prints
//! GB/s on stderr.
//!
//! ```text
//! cargo build -p benches --release --example streamprof
//! for i in $(seq 10); do for k in tcp lonet; do target/release/examples/streamprof $k 1024 multi; done; done
//! ```

use std::process::ExitCode;

use benches::{run_on, stream, Flavor, Kind, MIB};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, mib, flavor] = args.as_slice() else {
        eprintln!("usage: streamprof tcp|lonet|pipenet|duplex MIB multi|current");
        return ExitCode::from(2);
    };
    let (kind, name) = match kind.as_str() {
        "tcp" => (Kind::Tcp, "tcp"),
        "lonet" => (Kind::Lonet, "lonet"),
        "pipenet" => (Kind::Pipenet, "pipenet"),
        "duplex" => (Kind::Duplex(256 * 1024), "duplex"),
        _ => {
            eprintln!("streamprof: contender is tcp, lonet, pipenet or duplex");
            return ExitCode::from(2);
        }
    };
    let Ok(mib) = mib.parse::<usize>() else {
        eprintln!("streamprof: MIB must be a number");
        return ExitCode::from(2);
    };
    let Some(flavor) = Flavor::from_arg(flavor) else {
        eprintln!("streamprof: the runtime is multi or current");
        return ExitCode::from(2);
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_owned();
    let bytes = mib * MIB;
    let took = run_on(flavor, move || async move {
        kind.with_pair(root, |c, s| stream(c, s, bytes)).await
    });
    eprintln!("{name} {:.2} GB/s", bytes as f64 / took.as_secs_f64() / 1e9);
    ExitCode::SUCCESS
}
