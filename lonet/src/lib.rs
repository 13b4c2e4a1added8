//! lonet: a virtnet network spread over several OS processes (work in progress).
#![warn(missing_docs)]

pub mod handshake;
pub mod quote;
