//! What a run is told: its [`Sizes`] (full or quick) and the runtime
//! [`Flavor`]s, named on command lines by [`Flavor::arg`] and parsed back
//! by [`Flavor::from_arg`]; [`run_on`] runs a measure on a fresh runtime
//! of a flavor.

use std::future::Future;

use tokio::runtime::Runtime;

/// A kibibyte.
pub const KIB: usize = 1024;
/// A mebibyte.
pub const MIB: usize = 1024 * KIB;
const GIB: usize = 1024 * MIB;

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Timed dials per contender (after `dial_warmup` untimed ones).
    pub dials: usize,
    /// Untimed dials before the timed ones.
    pub dial_warmup: usize,
    /// Bytes streamed over one connection.
    pub stream_bytes: usize,
    /// Bytes streamed over turmoil (its simulation is slow).
    pub turmoil_bytes: usize,
    /// Round trips in the ping-pong.
    pub round_trips: usize,
    /// Rounds in which the contenders take turns (noise shows as spread).
    pub rounds: usize,
    /// Idle pairs on pipenet.
    pub pipenet_pairs: &'static [usize],
    /// Idle pairs on lonet.
    pub lonet_pairs: &'static [usize],
}

impl Sizes {
    /// The full run, the one BENCHMARKS.md records.
    pub const FULL: Sizes = Sizes {
        dials: 2_000,
        dial_warmup: 200,
        stream_bytes: GIB,
        turmoil_bytes: 64 * MIB,
        round_trips: 50_000,
        rounds: 4,
        pipenet_pairs: &[1_000, 10_000, 100_000],
        lonet_pairs: &[1_000, 5_000],
    };
    /// Smoke test: everything once, tiny.
    pub const QUICK: Sizes = Sizes {
        dials: 20,
        dial_warmup: 2,
        stream_bytes: 4 * MIB,
        turmoil_bytes: MIB,
        round_trips: 100,
        rounds: 1,
        pipenet_pairs: &[100],
        lonet_pairs: &[20],
    };
}

/// The runtimes every async measure runs on.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Flavor {
    /// A multi-thread runtime with 2 workers.
    Multi,
    /// A current-thread runtime.
    Current,
}

impl Flavor {
    /// Both, in report order.
    pub const ALL: [Flavor; 2] = [Flavor::Multi, Flavor::Current];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Flavor::Multi => "multi-thread (2 workers)",
            Flavor::Current => "current-thread",
        }
    }

    /// The flavor [`arg`](Self::arg) names, if any.
    pub fn from_arg(arg: &str) -> Option<Flavor> {
        Flavor::ALL.into_iter().find(|f| f.arg() == arg)
    }

    /// A short name: `multi`, `current`.
    pub fn arg(self) -> &'static str {
        match self {
            Flavor::Multi => "multi",
            Flavor::Current => "current",
        }
    }

    /// A fresh runtime of this flavor (multi-thread: 2 workers).
    pub fn runtime(self) -> Runtime {
        match self {
            Flavor::Multi => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
            Flavor::Current => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
        .expect("tokio runtime")
    }
}

/// Runs `f` on a fresh runtime of `flavor`, inside a spawned task (so that
/// on the multi-thread runtime it runs on a worker, not on this thread).
pub fn run_on<F, Fut, T>(flavor: Flavor, f: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let rt = flavor.runtime();
    let fut = f();
    rt.block_on(async move { tokio::spawn(fut).await.expect("bench task") })
}
