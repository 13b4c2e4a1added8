//! The virtnet conformance suite: scenarios every virtual network must pass.
//!
//! pipenet, lonet and any third-party network run the same scenarios, so a
//! test written against one network behaves the same on the others.
//!
//! # Map
//! - [`network`]: the network scenarios (ports, lifecycle, errors, data,
//!   cancellation), with exact addresses and error texts. Each is an
//!   `async fn(`[`Fixture`]`)`; [`SCENARIOS`] lists them, [`run`] runs one by
//!   name.
//! - [`network_suite!`]: expands into a `#[tokio::test]` per network
//!   scenario and runtime, for a factory of fresh subnetworks. Start here.
//! - [`networker`]: scenarios over any pair of
//!   [`Networker`](virtnet_core::Networker)s, with or without predictable
//!   ports (virtnet hosts, real TCP): [`networker::Fixture`],
//!   [`networker::run`], and [`networker_suite!`].
//! - [`registry`]: the registry scenarios and [`registry_suite!`].
//! - [`faults`]: the fault scenarios (partition, unreachable, latency,
//!   bandwidth, reset, heal) and [`fault_suite!`], for networks whose
//!   registry keeps faults.
//! - [`subnetwork_suites!`]: the network, networker and fault suites at
//!   once, for a factory of fresh subnetworks.
//! - [`waiting`]: how a scenario says what it waits for
//!   ([`WaitingFor::waiting_for`], [`step`]), and [`spawn`] /
//!   [`spawn_blocked`] for tasks that keep those labels.
//! - `run.rs`: [`run_scenario`] (a scenario in its own task, under a
//!   timeout), [`Failure`], and the timeout knob.
//!
//! # Running it against your network
//! In a test file of your crate (with `tokio` as a dev-dependency, features
//! `macros` and `rt-multi-thread`):
//! ```
//! conformance_tests::network_suite!(|| async {
//!     pipenet::Network::new("conformance").subnetwork().clone()
//! });
//! # fn main() {}
//! ```
//! The factory is called once per test and must return a fresh subnetwork
//! (anything that converts into a [`Fixture`]; [`Fixture::keep`] holds what
//! must live as long, such as a temporary directory) of a network no other
//! scenario uses, so scenarios can run in parallel.
//!
//! Every scenario becomes two tests, `current_thread::<scenario>` and
//! `multi_thread::<scenario>`, one per tokio runtime flavor. To run one
//! scenario by hand, or all in a loop, call [`run`]`(name, fixture)`: it
//! returns `Ok(())` or a [`Failure`], also for an unknown name.
//!
//! # The suite fails, never hangs
//! Each scenario runs in a task of its own under a timeout. A scenario that
//! panics (an assertion failed) or does not finish in time ends as a
//! [`Failure`] naming the scenario and, for a timeout, every
//! [labelled](waiting) await still pending, for example:
//!
//! ```text
//! scenario host_close_interrupts timed out after 60s waiting for: read on
//! α:2->β:1 to end with "host is down" after closing host α; … (step: closing host α)
//! ```
//!
//! The timeout is [`DEFAULT_TIMEOUT`] (60 s), or per suite
//! `network_suite!(factory, timeout = Duration::from_secs(N))`, and the
//! environment variable [`TIMEOUT_ENV`] (`VIRTNET_CONFORMANCE_TIMEOUT`, in
//! seconds) overrides both. [`run_with_timeout`] takes an exact one.
//!
//! # Writing a scenario
//! Label each await that can block (`.waiting_for("accept on α:1")`), start
//! tasks with [`spawn`] so their labels count, wait on events (never
//! sleep): [`spawn_blocked`] returns once a spawned operation is blocked.

#![forbid(unsafe_code)]

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use virtnet_core::SubNetwork;

pub mod faults;
pub mod network;
pub mod networker;
pub mod registry;
mod run;
mod suites;
pub mod waiting;

pub use run::{
    run_scenario, suite_timeout, timeout, Failure, FailureKind, DEFAULT_TIMEOUT, TIMEOUT_ENV,
};
pub use waiting::{spawn, spawn_blocked, step, waiting_for, WaitingFor};

/// What a scenario runs on: a fresh subnetwork, plus anything that must live
/// as long as it (a temporary directory, a server process).
pub struct Fixture {
    /// The subnetwork under test. Scenarios create hosts `α` and `β` on it.
    pub net: SubNetwork,
    keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl Fixture {
    /// A fixture for `net`.
    pub fn new(net: SubNetwork) -> Fixture {
        Fixture {
            net,
            keep: Vec::new(),
        }
    }

    /// Keeps `value` alive until the scenario ends.
    pub fn keep(mut self, value: impl Any + Send + Sync) -> Fixture {
        self.keep.push(Box::new(value));
        self
    }
}

impl From<SubNetwork> for Fixture {
    fn from(net: SubNetwork) -> Fixture {
        Fixture::new(net)
    }
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("net", &self.net)
            .field("kept", &self.keep.len())
            .finish()
    }
}

/// The two modules of tests every suite macro makes: `$ct` runs each
/// scenario on a current-thread runtime, `$mt` on a multi-thread one; each
/// test calls `$case(name, $timeout(), $fixture())`.
#[doc(hidden)]
#[macro_export]
macro_rules! __runtime_tests {
    ($ct:ident, $mt:ident, $case:path, $timeout:path, $fixture:path, [$($name:ident),*]) => {
        /// The scenarios on a current-thread runtime.
        mod $ct {
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $name() {
                    $case(stringify!($name), $timeout(), $fixture()).await;
                }
            )*
        }
        /// The scenarios on a multi-thread runtime.
        mod $mt {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $case(stringify!($name), $timeout(), $fixture()).await;
                }
            )*
        }
    };
}

macro_rules! scenarios {
    ($d:tt $($name:ident),* $(,)?) => {
        /// The names of all network scenarios, in the order they are listed.
        pub const SCENARIOS: &[&str] = &[$(stringify!($name)),*];

        /// The network scenario called `name`, as a function.
        fn scenario(name: &str) -> Option<fn(Fixture) -> BoxFuture<'static, ()>> {
            match name {
                $(stringify!($name) => Some(|fx| Box::pin(network::$name(fx))),)*
                _ => None,
            }
        }

        /// Expands into two `#[tokio::test]`s per network scenario, one on a
        /// current-thread runtime (`current_thread::<scenario>`) and one on a
        /// multi-thread runtime (`multi_thread::<scenario>`). Each calls
        /// `$factory()` (an async closure or function returning something
        /// `Into<Fixture>`) for a fresh subnetwork and runs the scenario with
        /// [`run_with_timeout`](crate::run_with_timeout): a failing or hanging
        /// scenario fails its test with the [`Failure`](crate::Failure)'s text.
        ///
        /// `network_suite!(factory, timeout = Duration::from_secs(N))` sets
        /// this suite's timeout (default [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT));
        /// the environment variable [`TIMEOUT_ENV`](crate::TIMEOUT_ENV)
        /// overrides both. It defines the modules `current_thread` and
        /// `multi_thread` and two private functions `__virtnet_network_*`
        /// where it is invoked.
        #[macro_export]
        macro_rules! network_suite {
            (@suite $d factory:expr, $d timeout:expr) => {
                async fn __virtnet_network_fixture() -> $crate::Fixture {
                    (($d factory)().await).into()
                }
                fn __virtnet_network_timeout() -> ::std::time::Duration {
                    $crate::suite_timeout($d timeout)
                }
                $crate::__runtime_tests!(
                    current_thread,
                    multi_thread,
                    $crate::__network_case,
                    super::__virtnet_network_timeout,
                    super::__virtnet_network_fixture,
                    [$($name),*]
                );
            };
            ($d factory:expr, timeout = $d timeout:expr $d(,)?) => {
                $crate::network_suite!(@suite $d factory, ::core::option::Option::Some($d timeout));
            };
            ($d factory:expr $d(,)?) => {
                $crate::network_suite!(@suite $d factory, ::core::option::Option::None);
            };
        }
    };
}

/// Runs the network scenario called `name` on `fixture`, with the
/// [`timeout`] of the environment or [`DEFAULT_TIMEOUT`].
///
/// The scenario runs in a task of its own: an assertion that fails, a hang
/// and an unknown name all come back as a [`Failure`].
pub async fn run(name: &str, fixture: Fixture) -> Result<(), Failure> {
    run_with_timeout(name, fixture, timeout()).await
}

/// [`run`] with at most `timeout` for the scenario (the environment's
/// [`TIMEOUT_ENV`] does not apply).
pub async fn run_with_timeout(
    name: &str,
    fixture: Fixture,
    timeout: Duration,
) -> Result<(), Failure> {
    run::run_found(name, timeout, scenario(name), fixture).await
}

/// One test of [`network_suite!`]: makes the fixture, runs the scenario,
/// panics with the failure.
#[doc(hidden)]
pub async fn __network_case<X: Into<Fixture>>(
    name: &str,
    timeout: Duration,
    fixture: impl Future<Output = X>,
) {
    run::case(name, timeout, fixture, scenario(name)).await
}

scenarios!($
    reference_scenario,
    port_reuse_after_close,
    listen_on_busy_port,
    listen_on_other_host,
    dial_unknown_host,
    dial_without_listener,
    bad_addresses,
    duplicate_host,
    host_names_an_address_can_reach,
    dropped_host_leaves,
    dropping_everything_releases_the_network,
    host_close_interrupts,
    subnetwork_close,
    listener_close,
    listener_backlog,
    listener_stream,
    half_close,
    reset_reaches_the_peer,
    megabyte_each_way,
    concurrent_dials,
    dropped_dial_leaks_nothing,
    dropped_accept_leaks_nothing,
    pending_accepts_hold_up_no_other_dial,
    accepts_in_one_task,
    conn_drop_frees_port,
    networker_trait_object,
    auto_close,
    host_name_reuse,
    reference_scenario_traced,
    subnetwork_close_ends_cross_host_dial,
    subnetwork_close_ends_cross_host_read,
    host_close_cross_host,
);
