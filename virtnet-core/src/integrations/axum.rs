//! `axum::serve` on a virtnet listener.
//!
//! ```
//! use std::future::IntoFuture;
//!
//! use axum::{extract::ConnectInfo, routing::get, Router};
//! use virtnet_core::Addr;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let net = pipenet::Network::new("axumdoc");
//! let listener = net.new_host("α").await?.listen(":80").await?;
//! let closer = listener.closer();
//! let app = Router::new().route("/", get(|ConnectInfo(peer): ConnectInfo<Addr>| async move {
//!     format!("hello {peer}")
//! }));
//! let server = tokio::spawn(
//!     axum::serve(listener, app.into_make_service_with_connect_info::<Addr>())
//!         // closing the listener (or its host) ends the server gracefully
//!         .with_graceful_shutdown(closer.closed())
//!         .into_future(),
//! );
//! closer.close();
//! server.await.unwrap()?;
//! # Ok(()) }
//! ```

use std::io;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;

use crate::{Addr, Conn, Listener, VirtError};

/// Accepts until the listener is closed; after that, `accept` never
/// completes, so end the server with graceful shutdown on
/// [`ListenerCloser::closed`](crate::ListenerCloser::closed).
impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = Addr;

    async fn accept(&mut self) -> (Conn, Addr) {
        loop {
            match Listener::accept(self).await {
                Ok(conn) => {
                    let peer = conn.peer_addr().clone();
                    return (conn, peer);
                }
                Err(e) => match VirtError::of(&e) {
                    Some(VirtError::SockDown | VirtError::HostDown | VirtError::NetDown) => {
                        std::future::pending::<()>().await;
                    }
                    // Anything else (no free port) may pass: try again.
                    _ => tokio::task::yield_now().await,
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<Addr> {
        Ok(Listener::local_addr(self).clone())
    }
}

/// `ConnectInfo<Addr>`: the peer's virtnet address.
impl Connected<IncomingStream<'_, Listener>> for Addr {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Addr {
        stream.remote_addr().clone()
    }
}
