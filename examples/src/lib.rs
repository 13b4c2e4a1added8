//! Shared pieces of the examples and their tests: an axum app, an HTTP GET
//! over any networker, and a gRPC health service and channel.
//!
//! Run the examples with `cargo run -p virtnet-examples --example <name>`:
//! - `axum_pipenet`: an axum service on pipenet, queried by a hyper client;
//! - `grpc_lonet`: a gRPC service on a lonet host in one process, called from
//!   another process;
//! - `trace_assert`: a test-style program asserting an exact event sequence;
//! - `partition_counter`: a replicated counter on three hosts, a partition
//!   isolating its leader, under tokio's paused clock ([`counter`]);
//! - `lonet_partition`: two processes on lonet, a partition set from a
//!   third: a request times out, and succeeds after the heal;
//! - `paused_exchange`: 1,000 round trips with 50 ms of latency under a
//!   paused clock, timed on the wall clock.

#![forbid(unsafe_code)]

pub mod counter;
pub mod exchange;

use std::future::IntoFuture;
use std::io;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::server::HealthReporter;
use virtnet_core::integrations::Connector;
use virtnet_core::{Addr, Listener, Networker};

/// An app that greets its caller by its address: `GET /` → `hello β:1` on
/// pipenet or lonet, `hello 127.0.0.1:51234` on TCP.
pub fn hello_app() -> Router {
    Router::new().route(
        "/",
        get(|ConnectInfo(peer): ConnectInfo<Addr>| async move { format!("hello {peer}") }),
    )
}

/// Serves `app` on `listener` until the listener, its host or its network
/// closes; then finishes gracefully.
pub fn serve_http(listener: Listener, app: Router) -> JoinHandle<io::Result<()>> {
    let closed = listener.closer().closed();
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<Addr>())
        .with_graceful_shutdown(closed);
    tokio::spawn(server.into_future())
}

/// The URI host that stands for the server's address: URI hosts are ASCII,
/// virtnet hosts (`α`) need not be, so the connector maps this one to the
/// server's host.
const SERVER: &str = "server";

/// A connector from `client` on which URI host `server` means the host of
/// `server` (`α`, `127.0.0.1`, `::1`: the connector brackets it as needed).
fn connector(client: Arc<dyn Networker>, server: &Addr) -> Connector {
    Connector::new(client).alias(SERVER, server.host())
}

/// `http://server:<port><path>`: `path` on `server`, with its URI host the
/// alias [`connector`] maps to `server`'s host. (A URI port is at most
/// 65535; a virtnet port above that cannot be reached this way.)
fn server_uri(server: &Addr, path: &str) -> String {
    format!("http://{SERVER}:{}{path}", server.port())
}

/// `GET path` from `client` to `server` (a listener's
/// [`local_addr`](Listener::local_addr): `α:80` on pipenet or lonet,
/// `127.0.0.1:43121` on TCP). Returns the status and the body.
pub async fn http_get(
    client: Arc<dyn Networker>,
    server: &Addr,
    path: &str,
) -> io::Result<(u16, String)> {
    let connector = connector(client, server);
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let uri = server_uri(server, path)
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let response = client.get(uri).await.map_err(io::Error::other)?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

/// Serves the standard gRPC health service on `listener` until it closes.
/// The reporter sets the services' statuses.
///
/// A tonic server and client over pipenet, end to end:
/// ```
/// use std::sync::Arc;
/// use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
/// use virtnet_examples::{grpc_channel, serve_health};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let net = pipenet::Network::new("grpcdoc");
/// let alpha = net.new_host("α").await?;
/// let beta = net.new_host("β").await?;
/// let listener = alpha.listen(":50051").await?;
/// let addr = listener.local_addr().clone(); // α:50051
/// let (_reporter, server) = serve_health(listener);
///
/// let mut client = HealthClient::new(grpc_channel(Arc::new(beta), &addr).await?);
/// let reply = client.check(HealthCheckRequest { service: String::new() }).await?;
/// assert_eq!(reply.get_ref().status, 1); // SERVING
///
/// alpha.close().await?; // the server stops with its host
/// server.await??;
/// # Ok(()) }
/// ```
pub fn serve_health(
    listener: Listener,
) -> (
    HealthReporter,
    JoinHandle<Result<(), tonic::transport::Error>>,
) {
    let (reporter, service) = tonic_health::server::health_reporter();
    let closed = listener.closer().closed();
    let server = Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(listener, closed);
    (reporter, tokio::spawn(server))
}

/// A gRPC channel from `client` to `server` (a listener's
/// [`local_addr`](Listener::local_addr), on any network).
pub async fn grpc_channel(
    client: Arc<dyn Networker>,
    server: &Addr,
) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(server_uri(server, ""))?
        .connect_with_connector(connector(client, server))
        .await
}

/// The README's examples, compiled and run as doc tests (this crate has
/// every dependency they name).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
