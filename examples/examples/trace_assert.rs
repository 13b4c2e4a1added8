//! A test in the shape you would write for your own system: run it, then
//! assert the exact sequence of network events, addresses included.
//!
//! `cargo run -p virtnet-examples --example trace_assert`

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use virtnet_core::trace::Trace;
use virtnet_core::Networker;

#[tokio::main]
async fn main() -> io::Result<()> {
    let net = pipenet::Network::new("traced");
    let trace = Trace::new();
    let server = trace.wrap(net.new_host("server").await?);
    let client = trace.wrap(net.new_host("client").await?);

    // The system under test: a one-shot echo.
    let listener = server.listen(":7").await?;
    let echo = tokio::spawn(async move {
        let mut conn = listener.accept().await?;
        let mut buf = [0; 4];
        conn.read_exact(&mut buf).await?;
        conn.write_all(&buf).await?;
        io::Result::Ok(())
    });
    let mut conn = client.dial("server:7").await?;
    conn.write_all(b"ping").await?;
    let mut buf = [0; 4];
    conn.read_exact(&mut buf).await?;
    echo.await.map_err(io::Error::other)??;
    drop(conn);

    let expected = [
        "listen server:7",
        "dial client -> server:7",
        "accept server:1 <- client:1",
        "connect client:1 -> server:1",
        r#"write client:1 -> server:1 "ping""#,
        r#"write server:1 -> client:1 "ping""#,
        "close server:1 -> client:1",
        "close-listener server:7",
        "close client:1 -> server:1",
    ];
    let got = trace.lines();
    for line in &got {
        println!("{line}");
    }
    assert_eq!(
        got, expected,
        "the network events differ from the expected sequence"
    );
    println!("ok: {} events, exactly as expected", got.len());
    net.close().await
}
