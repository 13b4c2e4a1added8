//! Two processes on a lonet network, a partition set from a third: the
//! client's request times out while the partition holds, and succeeds
//! after the heal.
//!
//! `cargo run -p virtnet-examples --example lonet_partition`
//!
//! This process is the third one: it starts itself twice (`server`: host α
//! answering `ping N` with `pong N` on α:80; `client`: host β, sending a
//! request per line of its stdin and saying `ok N` or `timeout N`), then
//! sets the partition and heals it through its own subnetwork of the same
//! network, as `lonet fault NET partition α β` / `lonet fault NET heal` would
//! from a shell.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use virtnet_core::Links;

const NET: &str = "partitiondemo";
/// How long the client waits for an answer.
const PATIENCE: Duration = Duration::from_millis(500);

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("server") => rt.block_on(server(Path::new(&args[1]))),
        Some("client") => rt.block_on(client(Path::new(&args[1]))),
        _ => rt.block_on(driver()),
    }
}

async fn join(root: &Path) -> std::io::Result<lonet::SubNetwork> {
    lonet::Builder::new(NET).root(root).join().await
}

/// Host α: answers `ping N` with `pong N`, on every connection.
async fn server(root: &Path) -> std::io::Result<()> {
    let net = join(root).await?;
    let alpha = net.new_host("α").await?;
    let l = alpha.listen(":80").await?;
    println!("ready {}", l.local_addr());
    loop {
        let conn = l.accept().await?;
        tokio::spawn(async move {
            let (r, mut w) = tokio::io::split(conn);
            let mut lines = tokio::io::BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(n) = line.strip_prefix("ping ") {
                    if w.write_all(format!("pong {n}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// Host β: a request per line of stdin, each answered `ok N` or `timeout N`.
async fn client(root: &Path) -> std::io::Result<()> {
    let net = join(root).await?;
    let beta = net.new_host("β").await?;
    let conn = beta.dial("α:80").await?;
    println!("connected {} -> {}", conn.local_addr(), conn.peer_addr());
    let (r, mut w) = tokio::io::split(conn);
    let mut answers = tokio::io::BufReader::new(r).lines();
    let mut commands = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut n = 0;
    while let Some(_command) = commands.next_line().await? {
        n += 1;
        w.write_all(format!("ping {n}\n").as_bytes()).await?;
        let wanted = format!("pong {n}");
        let answer = tokio::time::timeout(PATIENCE, async {
            // Answers to requests that timed out come late: skip them.
            while let Some(line) = answers.next_line().await? {
                if line == wanted {
                    return Ok(());
                }
            }
            Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        })
        .await;
        match answer {
            Ok(Ok(())) => println!("ok {n}"),
            Ok(Err(e)) => return Err(e),
            Err(_) => println!("timeout {n} (no answer in {PATIENCE:?})"),
        }
    }
    Ok(())
}

/// A child process of this program, and its stdout by lines.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Proc {
    fn start(role: &str, root: &Path) -> std::io::Result<Proc> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(role)
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        Ok(Proc {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    fn line(&mut self) -> std::io::Result<String> {
        self.lines
            .next()
            .unwrap_or_else(|| Err(std::io::Error::other("the child ended")))
    }

    /// Asks the client for one request; its answer line.
    fn request(&mut self) -> std::io::Result<String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("stdin closed"))?;
        stdin.write_all(b"request\n")?;
        stdin.flush()?;
        self.line()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> std::io::Result<()> {
    let root = std::env::temp_dir().join(format!("lonet-partition-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let mut server = Proc::start("server", &root)?;
    println!("server: {}", server.line()?);
    let mut client = Proc::start("client", &root)?;
    println!("client: {}", client.line()?);
    println!("client: {}", client.request()?);

    let net = join(&root).await?;
    let faults = net.faults();
    println!("third process: partition α β   (lonet fault {NET} partition α β)");
    faults.partition(Links::pair("α", "β")).await?;
    // The other processes take the change within milliseconds; until the
    // first request times out, try again.
    for _ in 0..10 {
        let answer = client.request()?;
        println!("client: {answer}");
        if answer.starts_with("timeout") {
            break;
        }
    }
    println!("third process: heal   (lonet fault {NET} heal)");
    faults.heal_all().await?;
    loop {
        let answer = client.request()?;
        println!("client: {answer}");
        if answer.starts_with("ok") {
            break;
        }
    }
    drop((client, server));
    net.close().await?;
    std::fs::remove_dir_all(&root)
}
