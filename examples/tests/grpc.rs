//! tonic over virtnet: the gRPC health service, unary (`Check`) and
//! streaming (`Watch`) calls, on pipenet, on lonet, on lonet across two
//! processes (this test binary re-runs itself as the server process), and
//! on the OS's TCP network.

use std::sync::Arc;

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tonic_health::pb::health_check_response::ServingStatus as Status;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use virtnet_core::tcp::TcpNetworker;
use virtnet_core::{Addr, Networker, SubNetwork};
use virtnet_examples::{grpc_channel, serve_health};

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

/// Unary and streaming calls from `client` to the health service at
/// `server`, whose statuses `reporter` sets.
async fn check_and_watch(client: Arc<dyn Networker>, server: &Addr, reporter: &HealthReporter) {
    reporter
        .set_service_status("orders", ServingStatus::Serving)
        .await;

    let mut client = HealthClient::new(grpc_channel(client, server).await.unwrap());
    let reply = client.check(request("")).await.unwrap();
    assert_eq!(reply.get_ref().status(), Status::Serving);
    let unknown = client.check(request("nope")).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let mut watch = client.watch(request("orders")).await.unwrap().into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        Status::Serving
    );
    reporter
        .set_service_status("orders", ServingStatus::NotServing)
        .await;
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        Status::NotServing
    );
}

/// Unary and streaming calls from β to the health service on α:50051.
async fn health_calls(net: &SubNetwork) {
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    let listener = alpha.listen(":50051").await.unwrap();
    let addr = listener.local_addr().clone();
    assert_eq!(addr.to_string(), "α:50051");
    let (reporter, server) = serve_health(listener);

    check_and_watch(Arc::new(beta), &addr, &reporter).await;

    alpha.close().await.unwrap();
    server.await.unwrap().expect("server ends cleanly");
    net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_on_pipenet() {
    health_calls(pipenet::Network::new("grpc").subnetwork()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_on_lonet() {
    let root = tempfile::tempdir().unwrap();
    health_calls(
        &lonet::Builder::new("grpc")
            .root(root.path())
            .join()
            .await
            .unwrap(),
    )
    .await;
}

/// The server on a real TCP port the OS picks; closing its listener ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_on_tcp() {
    let listener = TcpNetworker::new().listen("").await.unwrap();
    let addr = listener.local_addr().clone();
    assert!(addr.to_string().starts_with("127.0.0.1:"), "{addr}");
    let closer = listener.closer();
    let (reporter, server) = serve_health(listener);

    check_and_watch(Arc::new(TcpNetworker::new()), &addr, &reporter).await;

    closer.close();
    server.await.unwrap().expect("server ends cleanly");
}

/// The server (host α) in a child process, the client (host β) here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_on_lonet_across_processes() {
    let root = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "grpc_server_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VIRTNET_GRPC_ROOT", root.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("server process exited early");
        if line.contains("@@ serving") {
            break;
        }
    }
    let net = lonet::Builder::new("grpcx")
        .root(root.path())
        .join()
        .await
        .unwrap();
    let beta = net.new_host("β").await.unwrap();
    let alpha = Addr::new(net.network(), "α", 50051);
    let mut client = HealthClient::new(grpc_channel(Arc::new(beta), &alpha).await.unwrap());
    assert_eq!(
        client.check(request("")).await.unwrap().get_ref().status(),
        Status::Serving
    );
    let mut watch = client.watch(request("orders")).await.unwrap().into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        Status::Serving
    );
    // ask the server process to mark the service down, as it would in real life
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"down\n").await.unwrap();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        Status::NotServing
    );
    drop(stdin); // the server process stops
    assert!(child.wait().await.unwrap().success());
    net.close().await.unwrap();
}

/// Not a test: the server process of `grpc_on_lonet_across_processes`. In a
/// normal run (no root in the environment) it does nothing.
#[test]
fn grpc_server_process() {
    let Some(root) = std::env::var_os("VIRTNET_GRPC_ROOT") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let net = lonet::Builder::new("grpcx")
            .root(root)
            .join()
            .await
            .unwrap();
        let alpha = net.new_host("α").await.unwrap();
        let (reporter, server) = serve_health(alpha.listen(":50051").await.unwrap());
        reporter
            .set_service_status("orders", ServingStatus::Serving)
            .await;
        println!("@@ serving");
        let mut commands = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = commands.next_line().await.unwrap() {
            if line == "down" {
                reporter
                    .set_service_status("orders", ServingStatus::NotServing)
                    .await;
            }
        }
        net.close().await.unwrap();
        server.await.unwrap().unwrap();
    });
    std::process::exit(0);
}
