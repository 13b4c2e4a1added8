//! `lonet listen` and `lonet dial`: a host of this process, wired to stdin
//! and stdout.

use std::io;
use std::path::Path;
use std::sync::Arc;

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

/// Joins `net` (creating it if needed), creates `host`, listens on `laddr`
/// and serves connections until interrupted (or, with `--once`, until the
/// one connection ends). The host leaves the network on exit.
pub async fn listen(root: &Path, net: &str, host: &str, laddr: &str, mode: Mode) -> io::Result<()> {
    let subnet = lonet::Builder::new(net).root(root).join().await?;
    let result = serve(&subnet, host, laddr, mode).await;
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
    if let Mode::Once = mode {
        return tokio::select! {
            conn = listener.accept() => stdio(announce(conn?)).await,
            () = interrupted() => Ok(()),
        };
    }
    let stdout = Arc::new(Mutex::new(tokio::io::stdout()));
    tokio::select! {
        result = accept_loop(&listener, mode, stdout) => result,
        () = interrupted() => Ok(()),
    }
}

async fn accept_loop(
    listener: &Listener,
    mode: Mode,
    stdout: Arc<Mutex<tokio::io::Stdout>>,
) -> io::Result<()> {
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

/// Checks that network `net` exists, joins it, creates `host`, dials `addr`,
/// and connects the connection to stdin and stdout.
pub async fn dial(root: &Path, net: &str, host: &str, addr: &str) -> io::Result<()> {
    lonet::dirs::check_name(net)?;
    if !root.join(net).join(lonet::dirs::REGISTRY_FILE).is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network {net:?} under {}", root.display()),
        ));
    }
    let subnet = lonet::Builder::new(net).root(root).join().await?;
    let result = async {
        let host = subnet.new_host(host).await?;
        let conn = host.dial(addr).await?;
        eprintln!("connected {} -> {}", conn.local_addr(), conn.peer_addr());
        stdio(conn).await
    }
    .await;
    let closed = subnet.close().await;
    result.and(closed)
}

fn announce(conn: Conn) -> Conn {
    eprintln!("accepted {} <- {}", conn.local_addr(), conn.peer_addr());
    conn
}

/// stdin to `conn` (half-closing it when stdin ends), `conn` to stdout;
/// returns when the peer closes.
async fn stdio(conn: Conn) -> io::Result<()> {
    let (mut r, w) = tokio::io::split(conn);
    let up = tokio::spawn(send_stdin(w));
    let mut stdout = tokio::io::stdout();
    let down = tokio::io::copy(&mut r, &mut stdout).await;
    let flushed = stdout.flush().await;
    up.abort();
    down.and(flushed).map(|_| ())
}

async fn send_stdin(mut w: impl AsyncWrite + Unpin) -> io::Result<()> {
    tokio::io::copy(&mut tokio::io::stdin(), &mut w).await?;
    w.shutdown().await
}

/// Completes on Ctrl-C or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
