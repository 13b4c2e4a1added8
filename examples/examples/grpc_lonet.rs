//! A gRPC service (the standard health service) on lonet host α in one
//! process, called from host β in another process.
//!
//! `cargo run -p virtnet-examples --example grpc_lonet`
//!
//! The example starts itself a second time as the server process; both join
//! a fresh network under a temporary directory, which is removed at the end.

use std::io;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::ServingStatus;
use virtnet_core::Addr;
use virtnet_examples::{grpc_channel, serve_health};

#[tokio::main]
async fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, root, name] = args.as_slice() {
        if role == "serve" {
            return serve(Path::new(root), name).await;
        }
    }
    let root = std::env::temp_dir().join(format!("virtnet-grpc-example-{}", std::process::id()));
    let result = call(&root).await;
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// The client process: starts the server process, then calls it.
async fn call(root: &Path) -> io::Result<()> {
    let net = lonet::Builder::new("").root(root).join().await?;
    let name = net.network().trim_start_matches("lonet").to_owned();
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg(root)
        .arg(&name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut out = BufReader::new(
        server
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?,
    )
    .lines();
    let ready = out
        .next_line()
        .await?
        .ok_or_else(|| io::Error::other("server exited"))?;
    println!("server process {}: {ready}", server.id().unwrap_or(0));

    let beta = net.new_host("β").await?;
    let server_addr = Addr::new(net.network(), "α", 50051);
    let channel = grpc_channel(Arc::new(beta), &server_addr)
        .await
        .map_err(io::Error::other)?;
    let mut client = HealthClient::new(channel);
    let check = client
        .check(HealthCheckRequest {
            service: "orders".into(),
        })
        .await
        .map_err(io::Error::other)?;
    println!("β: Check(orders) -> {:?}", check.get_ref().status());
    let mut watch = client
        .watch(HealthCheckRequest {
            service: "orders".into(),
        })
        .await
        .map_err(io::Error::other)?
        .into_inner();
    let first = watch
        .next()
        .await
        .ok_or_else(|| io::Error::other("stream ended"))?;
    println!(
        "β: Watch(orders) -> {:?}",
        first.map_err(io::Error::other)?.status()
    );
    let mut stdin = server
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no stdin"))?;
    stdin.write_all(b"down\n").await?;
    let second = watch
        .next()
        .await
        .ok_or_else(|| io::Error::other("stream ended"))?;
    println!(
        "β: Watch(orders) -> {:?} (after the server marked it down)",
        second.map_err(io::Error::other)?.status()
    );
    drop(stdin);
    let status = server.wait().await?;
    println!("server process exited: {status}");
    net.close().await
}

/// The server process: host α serves the health service on α:50051 until
/// its stdin ends; a "down" line marks the "orders" service not serving.
async fn serve(root: &Path, name: &str) -> io::Result<()> {
    let net = lonet::Builder::new(name).root(root).join().await?;
    let alpha = net.new_host("α").await?;
    let listener = alpha.listen(":50051").await?;
    let (reporter, server) = serve_health(listener);
    reporter
        .set_service_status("orders", ServingStatus::Serving)
        .await;
    println!("α serves grpc.health.v1 on α:50051 ({})", net.network());
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = commands.next_line().await? {
        if line == "down" {
            reporter
                .set_service_status("orders", ServingStatus::NotServing)
                .await;
        }
    }
    net.close().await?;
    server
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::other)
}
