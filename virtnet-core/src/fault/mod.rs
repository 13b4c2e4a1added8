//! Faults: partitions, unreachable links, latency, bandwidth and resets,
//! as rules on links between hosts.
//!
//! The rules ([`FaultRules`]) live in a [`FaultStore`] the network's
//! registry keeps, so every subnetwork of the network (every process of a
//! lonet network) applies the same ones. Users set them through
//! [`Faults`](crate::Faults), from [`SubNetwork::faults`](crate::SubNetwork::faults).
//! Each connection end shapes the bytes it receives; until a fault is ever
//! set on the network, connections take their plain path.

mod rules;
pub(crate) mod shaper;
pub(crate) mod state;
mod store;
mod timer;

pub use rules::{FaultRules, Link, LinkFaults};
pub use store::{FaultStore, MemoryFaults};
