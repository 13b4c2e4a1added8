//! `lonet listen` and `lonet dial`: a host of this process, wired to stdin
//! and stdout.

use std::io::{self, IsTerminal};
use std::sync::Arc;

use crate::signals::Interrupts;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;
use virtnet_core::{Conn, Listener, SubNetwork};

/// What `listen` does with each connection.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Write what every connection sends to stdout.
    Print,
    /// Serve one connection, netcat-style: stdin to it, it to stdout.
    Once,
    /// Send each connection's bytes back to it.
    Echo,
}

impl Mode {
    /// The mode chosen by the `--once` / `--echo` flags.
    pub fn new(once: bool, echo: bool) -> Mode {
        match (once, echo) {
            (true, _) => Mode::Once,
            (false, true) => Mode::Echo,
            (false, false) => Mode::Print,
        }
    }
}

/// Joins `network` (creating it if needed), creates `host`, listens on `laddr`
/// and serves connections until interrupted (or, with `--once`, until the
/// one connection ends). The host leaves the network on exit.
pub async fn listen(
    network: lonet::Builder,
    host: &str,
    laddr: &str,
    mode: Mode,
) -> io::Result<()> {
    // Catch signals before saying "listening on", so that whoever waits for
    // that line can stop us cleanly at once.
    let mut interrupts = Interrupts::new()?;
    let subnet = network.join().await?;
    let result = tokio::select! {
        result = serve(&subnet, host, laddr, mode) => result,
        () = interrupts.recv() => Ok(()),
    };
    let closed = subnet.close().await;
    result.and(closed)
}

async fn serve(subnet: &SubNetwork, host: &str, laddr: &str, mode: Mode) -> io::Result<()> {
    let host = subnet.new_host(host).await?;
    let listener = host.listen(laddr).await?;
    eprintln!(
        "listening on {} (network {})",
        listener.local_addr(),
        subnet.network()
    );
    match mode {
        Mode::Once => {
            let conn = announce(listener.accept().await?);
            // Served: later dials are refused at once, not left waiting.
            listener.close();
            stdio(conn).await
        }
        Mode::Print | Mode::Echo => accept_loop(&listener, mode).await,
    }
}

async fn accept_loop(listener: &Listener, mode: Mode) -> io::Result<()> {
    let stdout = Arc::new(Mutex::new(tokio::io::stdout()));
    loop {
        let conn = announce(listener.accept().await?);
        let stdout = stdout.clone();
        tokio::spawn(async move {
            let (local, peer) = (conn.local_addr().clone(), conn.peer_addr().clone());
            let (mut r, mut w) = tokio::io::split(conn);
            let result = match mode {
                Mode::Echo => {
                    async {
                        tokio::io::copy(&mut r, &mut w).await?;
                        w.shutdown().await
                    }
                    .await
                }
                _ => copy_locked(&mut r, &stdout).await,
            };
            match result {
                Ok(()) => eprintln!("{local} <- {peer}: closed"),
                Err(e) => eprintln!("{local} <- {peer}: {e}"),
            }
        });
    }
}

/// Copies `r` to the shared stdout, one chunk at a time.
async fn copy_locked(
    r: &mut (impl AsyncRead + Unpin),
    stdout: &Mutex<tokio::io::Stdout>,
) -> io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let mut out = stdout.lock().await;
        out.write_all(&buf[..n]).await?;
        out.flush().await?;
    }
}

/// Joins `network` (which the caller checked exists), creates `host`, dials `addr`,
/// and connects the connection to stdin and stdout until the peer closes or
/// we are interrupted. The host leaves the network on exit.
pub async fn dial(network: lonet::Builder, host: &str, addr: &str) -> io::Result<()> {
    let mut interrupts = Interrupts::new()?;
    let subnet = network.join().await?;
    let session = async {
        let host = subnet.new_host(host).await?;
        let conn = host.dial(addr).await?;
        eprintln!("connected {} -> {}", conn.local_addr(), conn.peer_addr());
        stdio(conn).await
    };
    let result = tokio::select! {
        result = session => result,
        () = interrupts.recv() => Ok(()),
    };
    let closed = subnet.close().await;
    result.and(closed)
}

fn announce(conn: Conn) -> Conn {
    eprintln!("accepted {} <- {}", conn.local_addr(), conn.peer_addr());
    conn
}

/// stdin to `conn` (half-closing it when stdin ends), `conn` to stdout.
///
/// Returns once the peer has closed its side and, unless stdin is a
/// terminal, all of stdin is sent: like netcat, piped data is never cut off
/// because the peer finished first. With a terminal, returns when the peer
/// closes.
async fn stdio(conn: Conn) -> io::Result<()> {
    let (mut r, w) = tokio::io::split(conn);
    let up = tokio::spawn(send_stdin(w));
    let mut stdout = tokio::io::stdout();
    let down = tokio::io::copy(&mut r, &mut stdout).await;
    let down = down.and(stdout.flush().await);
    if down.is_err() || io::stdin().is_terminal() {
        up.abort();
        return down.map(drop);
    }
    up.await.map_err(io::Error::other)?
}

async fn send_stdin(mut w: impl AsyncWrite + Unpin) -> io::Result<()> {
    tokio::io::copy(&mut tokio::io::stdin(), &mut w).await?;
    w.shutdown().await
}
