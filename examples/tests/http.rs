//! axum served on a virtnet host, queried by hyper through another host, on
//! pipenet and on lonet; the server sees the caller's virtnet address. And
//! the same over the OS's TCP network, where it sees the caller's OS address.

use std::sync::Arc;

use virtnet_core::tcp::TcpNetworker;
use virtnet_core::{Host, Networker, SubNetwork, VirtError};
use virtnet_examples::{hello_app, http_get, serve_http};

async fn round_trip(net: &SubNetwork) {
    let alpha = net.new_host("α").await.unwrap();
    let beta: Host = net.new_host("β").await.unwrap();
    let listener = alpha.listen(":80").await.unwrap();
    let addr = listener.local_addr().clone();
    assert_eq!(addr.to_string(), "α:80");
    let server = serve_http(listener, hello_app());
    let (status, body) = http_get(Arc::new(beta.clone()), &addr, "/").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello β:1"));
    // a second request may reuse the connection; a new client dials again
    let (_, body) = http_get(Arc::new(beta), &addr, "/").await.unwrap();
    assert!(body == "hello β:1" || body == "hello β:2", "{body}");
    // closing the server's host ends the server gracefully
    alpha.close().await.unwrap();
    server.await.unwrap().expect("server ends cleanly");
    net.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_and_hyper_on_pipenet() {
    round_trip(pipenet::Network::new("http").subnetwork()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_and_hyper_on_lonet() {
    let root = tempfile::tempdir().unwrap();
    let net = lonet::Builder::new("http")
        .root(root.path())
        .join()
        .await
        .unwrap();
    round_trip(&net).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_listener_stops_the_server_and_refuses_new_requests() {
    let net = pipenet::Network::new("httpclose");
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    let listener = alpha.listen(":80").await.unwrap();
    let addr = listener.local_addr().clone();
    let closer = listener.closer();
    let server = serve_http(listener, hello_app());
    assert_eq!(
        http_get(Arc::new(beta.clone()), &addr, "/")
            .await
            .unwrap()
            .0,
        200
    );
    closer.close();
    server.await.unwrap().expect("server ends cleanly");
    let err = http_get(Arc::new(beta), &addr, "/").await.unwrap_err();
    assert!(refused(&err), "{err:?}");
    net.close().await.unwrap();
}

/// The server on a real TCP port the OS picks, the client dialing from
/// 127.0.0.1: the server sees the client's OS address; closing the listener
/// ends the server gracefully and frees the port, so a new request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_and_hyper_on_tcp() {
    let listener = TcpNetworker::new().listen("").await.unwrap();
    let addr = listener.local_addr().clone();
    assert!(addr.to_string().starts_with("127.0.0.1:"), "{addr}");
    let closer = listener.closer();
    let server = serve_http(listener, hello_app());
    let client: Arc<dyn Networker> = Arc::new(TcpNetworker::new());

    let (status, body) = http_get(client.clone(), &addr, "/").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let peer = body
        .strip_prefix("hello 127.0.0.1:")
        .unwrap_or_else(|| panic!("{body}"));
    let port: u16 = peer.parse().unwrap_or_else(|_| panic!("{body}"));
    assert_ne!(port, 0, "{body}");
    // a new client dials again, and is greeted the same way
    let (status, body) = http_get(client.clone(), &addr, "/").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("hello 127.0.0.1:"), "{body}");

    closer.close();
    server.await.unwrap().expect("server ends cleanly");
    let err = http_get(client, &addr, "/").await.unwrap_err();
    assert!(refused(&err), "{err:?}");
}

/// Whether `err`, or an error it wraps, is virtnet's "connection refused".
fn refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if VirtError::of(io) == Some(VirtError::ConnRefused) {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                if refused(inner) {
                    return true;
                }
            }
        }
        next = e.source();
    }
    false
}
