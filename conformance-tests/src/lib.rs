//! The virtnet conformance suite: scenarios every virtual network must pass.
//!
//! pipenet, lonet and any third-party network run the same scenarios, so a
//! test written against one network behaves the same on the others.
//!
//! - [`network`]: the network scenarios (ports, lifecycle, errors, data,
//!   cancellation). Each is an `async fn(Fixture)`.
//! - [`registry`]: the registry scenarios.
//! - [`network_suite!`]: expands into one `#[tokio::test]` per network
//!   scenario, for a factory of fresh subnetworks. Start here.
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
//! The factory is called once per scenario and must return a fresh
//! subnetwork (anything that converts into a [`Fixture`]) of a network no
//! other scenario uses, so scenarios can run in parallel.

#![forbid(unsafe_code)]

use std::any::Any;

use virtnet_core::SubNetwork;

pub mod network;
pub mod registry;

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

macro_rules! scenarios {
    ($d:tt $($name:ident),* $(,)?) => {
        /// The names of all network scenarios, in the order they are listed.
        pub const SCENARIOS: &[&str] = &[$(stringify!($name)),*];

        /// Runs the network scenario called `name` on `fixture`; false if there
        /// is no such scenario.
        pub async fn run(name: &str, fixture: Fixture) -> bool {
            match name {
                $(stringify!($name) => network::$name(fixture).await,)*
                _ => return false,
            }
            true
        }

        /// Expands into one `#[tokio::test]` per network scenario, each
        /// calling `$factory()` (an async closure or function returning
        /// something `Into<Fixture>`) for a fresh subnetwork.
        #[macro_export]
        macro_rules! network_suite {
            ($d factory:expr) => {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let fixture: $crate::Fixture = (($d factory)().await).into();
                        $crate::network::$name(fixture).await;
                    }
                )*
            };
        }
    };
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
    host_close_interrupts,
    subnetwork_close,
    listener_close,
    listener_stream,
    half_close,
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
);

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
