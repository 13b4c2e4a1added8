//! Faults: partitions, unreachable links, latency, bandwidth and resets,
//! as rules on links between hosts.
//!
//! The rules ([`FaultRules`]) live in a [`FaultStore`] the network's
//! registry keeps, so every subnetwork of the network (every process of a
//! lonet network) applies the same ones. Users set them through
//! [`Faults`](crate::Faults), from [`SubNetwork::faults`](crate::SubNetwork::faults).
//! Each connection end shapes the bytes it receives; until a fault is ever
//! set on the network, connections take their plain path. A peer that does
//! not shape (see [`Engine::peer_shapes`](crate::engine::Engine::peer_shapes):
//! a reference lonet process) gets both directions shaped by this end: it
//! sends through an outbox that holds, delays and paces its bytes, and
//! the dials that peer makes wait, fail or are delayed on arrival
//! ([`Inbox::arrival`](crate::engine::Inbox::arrival)).

pub(crate) mod outbox;
pub(crate) mod pace;
mod rules;
pub(crate) mod shaper;
pub(crate) mod state;
mod store;
mod timer;

pub use rules::{FaultRules, Link, LinkFaults};
pub use store::{FaultStore, MemoryFaults};
