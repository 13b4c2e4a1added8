//! virtnet benchmarks: pipenet and lonet side by side with raw loopback TCP,
//! `tokio::io::duplex` and turmoil, every contender measured in the same
//! process and run, and reported as ratios to the baselines of that run.
//!
//! `cargo bench -p benches` (or `cargo run -p benches --release --bin
//! report`) runs everything and prints one table per measure; `--quick`
//! (also `--test`, as criterion spells it) runs each measure once with tiny
//! sizes, for CI. Names after the flags pick sections: `dial`, `throughput`,
//! `pingpong`, `scale`.
//!
//! The binary re-executes itself (`--child ...`) for the lonet dialer in
//! another process and for each scale run, which gets a fresh process so its
//! peak RSS is its own.
//!
//! # Modules
//!
//! - `report`: [`main`], the entry point: command line, machine, sections.
//! - `args`: [`Sizes`] of a run, runtime [`Flavor`]s, [`run_on`].
//! - `stats`: [`Samples`], medians, quantiles, spreads, unit conversions.
//! - `dial`: the dial+accept section and its contenders ([`dial_tcp`],
//!   [`dial_pipenet`], [`dial_lonet`], [`dial_lonet_remote`],
//!   [`dial_tcp_line`], [`dial_tcp_line_remote`], [`dial_turmoil`]).
//! - `kinds`: the connection [`Kind`]s of the stream and ping-pong measures
//!   and how a pair of each is made.
//! - `stream`: the throughput section and [`stream`].
//! - `pingpong`: the ping-pong section and [`pingpong`].
//! - `scale`: the idle-pairs section and its child's work.
//! - `child`: the child processes (`--child dialer`, `--child scale`).
//! - `sys`: CPU model, load average, RSS from `/proc`, open-file limit.

#![forbid(unsafe_code)]

mod args;
mod child;
mod dial;
mod kinds;
mod pingpong;
mod report;
mod scale;
mod stats;
mod stream;
mod sys;

pub use args::{run_on, Flavor, Sizes, KIB, MIB};
pub use dial::{
    dial_lonet, dial_lonet_remote, dial_pipenet, dial_tcp, dial_tcp_line, dial_tcp_line_remote,
    dial_turmoil,
};
pub use kinds::{BoxIo, Io, Kind, KINDS};
pub use pingpong::pingpong;
pub use report::main;
pub use stats::Samples;
pub use stream::{stream, WRITE_SIZE};
