//! An axum service on pipenet host α, queried by a hyper client on host β.
//!
//! `cargo run -p virtnet-examples --example axum_pipenet`

use std::io;
use std::sync::Arc;

use virtnet_examples::{hello_app, http_get, serve_http};

#[tokio::main]
async fn main() -> io::Result<()> {
    let net = pipenet::Network::new("web");
    let alpha = net.new_host("α").await?;
    let beta = net.new_host("β").await?;
    let listener = alpha.listen(":80").await?;
    let addr = listener.local_addr().clone();
    println!("axum serves on {addr} ({})", net.name());
    let server = serve_http(listener, hello_app());

    // URIs are ASCII: the URI host "server" is mapped to host α by the connector.
    let (status, body) = http_get(Arc::new(beta), &addr, "/").await?;
    println!("β: GET http://server:80/ (server = {addr}) -> {status} {body:?}");
    assert_eq!(body, "hello β:1", "the server saw β's predictable address");

    alpha.close().await?;
    server.await.map_err(io::Error::other)??;
    println!("α closed: the server finished gracefully");
    net.close().await
}
