//! `lonet demo`: two processes on a fresh network, with predicted addresses.

use std::io;
use std::process::Stdio;

use rustix::process::{kill_process, Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

use crate::networks::Networks;

const MESSAGE: &[u8] = "hello from β\n".as_bytes();

/// Runs the demo on a fresh network of `networks`' registry, removing the
/// network afterwards.
pub async fn run(networks: &Networks) -> io::Result<()> {
    let name = match networks {
        Networks::Files(root) => {
            let (name, dir) = lonet::dirs::new_network_dir(root)?;
            println!(
                "lonet demo: a fresh network lonet{name} (registry in {})",
                dir.display()
            );
            name
        }
        Networks::Postgres(_) => {
            let name = fresh_name();
            println!(
                "lonet demo: a fresh network lonet{name} (registry {})",
                networks.url()
            );
            name
        }
    };
    let result = exchange(networks, &name).await;
    let removed = match networks.remove(&name).await {
        // In a database, a network whose hosts all left is gone already.
        Err(e)
            if e.kind() == io::ErrorKind::NotFound && matches!(networks, Networks::Postgres(_)) =>
        {
            Ok(())
        }
        other => other,
    };
    result?;
    removed?;
    println!("cleaned up: both processes have exited and the network is removed");
    Ok(())
}

/// A network name no other run has: `demo`, the pid and the time.
fn fresh_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("demo{}x{nanos}", std::process::id())
}

async fn exchange(networks: &Networks, name: &str) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let lonet = |args: &[&str]| {
        let mut cmd = Command::new(&exe);
        // The URL itself, not its display (which hides a password).
        match networks {
            Networks::Files(root) => cmd.arg("--root").arg(root),
            Networks::Postgres(url) => cmd.arg("--registry").arg(url),
        };
        cmd.args(args).kill_on_drop(true);
        cmd
    };

    let mut server = lonet(&["listen", name, "α", ":10", "--echo"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut server_log = log_of(&mut server)?;
    let listening = expect_line(&mut server_log, "listening on ").await?;
    println!("process 1 (pid {}) hosts α: {listening}", pid(&server));
    check("α's listener", &listening, "listening on α:10")?;

    let mut client = lonet(&["dial", name, "β", "α:10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut client_log = log_of(&mut client)?;
    let connected = expect_line(&mut client_log, "connected ").await?;
    println!(
        "process 2 (pid {}) hosts β: dialed α:10, {connected}",
        pid(&client)
    );
    check("β's connection", &connected, "connected β:1 -> α:1")?;
    let accepted = expect_line(&mut server_log, "accepted ").await?;
    println!("process 1 {accepted}");
    check("α's accepted connection", &accepted, "accepted α:1 <- β:1")?;

    let mut stdin = client
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no stdin"))?;
    stdin.write_all(MESSAGE).await?;
    drop(stdin); // β half-closes: α's echo ends, and so does the connection
    println!(
        "β:1 sent {:?} ({} bytes), then half-closed",
        String::from_utf8_lossy(MESSAGE),
        MESSAGE.len()
    );
    let mut echoed = Vec::new();
    let mut stdout = client
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    stdout.read_to_end(&mut echoed).await?;
    println!(
        "β:1 got back {:?} ({} bytes) from α:1",
        String::from_utf8_lossy(&echoed),
        echoed.len()
    );
    if echoed != MESSAGE {
        return Err(io::Error::other("the echo differs from what was sent"));
    }
    let status = client.wait().await?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "the dialing process failed: {status}"
        )));
    }
    terminate(&server);
    let status = server.wait().await?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "the listening process failed: {status}"
        )));
    }
    Ok(())
}

fn log_of(child: &mut Child) -> io::Result<Lines<BufReader<ChildStderr>>> {
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("no stderr"))?;
    Ok(BufReader::new(stderr).lines())
}

/// The next line of a child's log that starts with `prefix`.
async fn expect_line(log: &mut Lines<BufReader<ChildStderr>>, prefix: &str) -> io::Result<String> {
    while let Some(line) = log.next_line().await? {
        if line.starts_with(prefix) {
            return Ok(line);
        }
        eprintln!("  (child: {line})");
    }
    Err(io::Error::other(format!(
        "a child process exited before saying {prefix:?}"
    )))
}

fn check(what: &str, got: &str, want: &str) -> io::Result<()> {
    if got.starts_with(want) {
        println!("  {what}: as predicted ({want})");
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{what}: predicted {want:?}, got {got:?}"
        )))
    }
}

fn pid(child: &Child) -> String {
    child.id().map_or_else(|| "?".into(), |p| p.to_string())
}

/// Asks a child to stop, as Ctrl-C would.
fn terminate(child: &Child) {
    // `id` is `None` once the child is reaped, so the pid is still our
    // child's, not a reused one.
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .and_then(Pid::from_raw);
    if let Some(pid) = pid {
        let _ = kill_process(pid, Signal::TERM);
    }
}
