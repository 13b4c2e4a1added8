//! The registry conformance suite (to be written).
