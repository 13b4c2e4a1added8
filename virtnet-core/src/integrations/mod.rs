//! Integrations with the Rust network stack, each behind a cargo feature
//! (all off by default):
//!
//! - `axum`: [`Listener`](crate::Listener) is an `axum::serve::Listener`
//!   whose address is the virtnet [`Addr`](crate::Addr), so
//!   `ConnectInfo<Addr>` gives the peer's virtnet address.
//! - `hyper`: [`Connector`], a `tower::Service<Uri>` that dials through any
//!   `Arc<dyn Networker>`, for hyper-util's client and tonic's channels; and
//!   [`Conn`](crate::Conn) is a hyper-util `Connection`.
//! - `tonic`: [`Conn`](crate::Conn) is tonic's `Connected` (connect info: the
//!   peer's [`Addr`](crate::Addr)), so `serve_with_incoming(listener)` works.
//!
//! tokio-util's `Framed` codecs need no feature: `Conn` is `AsyncRead +
//! AsyncWrite`.

#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "hyper")]
mod hyper;
#[cfg(feature = "tonic")]
mod tonic;

#[cfg(feature = "hyper")]
pub use self::hyper::Connector;
