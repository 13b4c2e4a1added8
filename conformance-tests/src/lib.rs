//! The virtnet conformance suite (being written).
pub mod registry;
