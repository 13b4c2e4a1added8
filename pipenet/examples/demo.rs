//! The pipenet demo: two hosts on an in-process network, showing that every
//! address is predictable before it is handed out.
//!
//! Run it with `cargo run -p pipenet --example demo`.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> io::Result<()> {
    let net = pipenet::Network::new("demo");
    let alpha = net.new_host("α").await?;
    let beta = net.new_host("β").await?;
    println!(
        "network {}: hosts {} and {}",
        net.name(),
        alpha.name(),
        beta.name()
    );

    let listener = alpha.listen(":10").await?;
    check("α listens on", listener.local_addr(), "α:10");

    let mut open = Vec::new();
    for (round, (client_port, server_port)) in
        [("β:1", "α:1"), ("β:2", "α:2")].into_iter().enumerate()
    {
        println!("β dials α:10, expecting {client_port} <-> {server_port}");
        let (mut client, mut server) = tokio::try_join!(beta.dial("α:10"), listener.accept())?;
        check("  dialer's address", client.local_addr(), client_port);
        check("  accepted address", server.local_addr(), server_port);
        check("  server sees peer", server.peer_addr(), client_port);

        let msg = format!("ping {round}");
        client.write_all(msg.as_bytes()).await?;
        let mut buf = vec![0; msg.len()];
        server.read_exact(&mut buf).await?;
        server.write_all(b"pong").await?;
        let mut reply = [0; 4];
        client.read_exact(&mut reply).await?;
        println!(
            "  {} sent {:?}, {} got {:?} and answered {:?}",
            client.local_addr(),
            msg,
            server.local_addr(),
            String::from_utf8_lossy(&buf),
            String::from_utf8_lossy(&reply)
        );
        open.push((client, server));
    }
    drop(open);
    // Both connections are closed now: their ports are free again.
    let (client, server) = tokio::try_join!(beta.dial("α:10"), listener.accept())?;
    println!("closed connections free their ports:");
    check("  dialer's address", client.local_addr(), "β:1");
    check("  accepted address", server.local_addr(), "α:1");

    match beta.dial("α:99").await {
        Err(e) => println!("β dials α:99, where nobody listens: {e}"),
        Ok(c) => return Err(io::Error::other(format!("unexpected connection {c:?}"))),
    }
    net.close().await?;
    println!("network closed");
    Ok(())
}

fn check(what: &str, got: &pipenet::Addr, want: &str) {
    let mark = if got.to_string() == want {
        "as predicted"
    } else {
        "NOT AS PREDICTED"
    };
    println!("{what} {got} ({mark})");
    if got.to_string() != want {
        std::process::exit(1);
    }
}
