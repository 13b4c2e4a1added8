//! The lonet handshake (being written).
