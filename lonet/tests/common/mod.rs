//! What lonet's multi-process tests share: child processes of the test
//! binary itself, scripted over stdin and answering on stdout, and the
//! PostgreSQL server of the tests.
#![allow(dead_code)] // each test file uses its part

pub mod descriptors;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

/// The environment variable that makes the test binary a child playing a role.
pub const ROLE: &str = "LONET_TEST_CHILD";
/// Lines from a child to the parent start with this; the rest is test-harness noise.
pub const MARK: &str = "@@ ";
/// A guard against hangs only: no assertion depends on it.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// A child process of this test binary, playing `role` in its test
/// function `entry`.
pub struct Child {
    pub proc: tokio::process::Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Child {
    /// Runs this test binary's test `entry` as a child playing `role`,
    /// with `env` set, under `prefix` (a command that runs another, such as
    /// `ip netns exec NS`; empty: none).
    pub fn spawn(prefix: &[&str], entry: &str, role: &str, env: &[(&str, String)]) -> Child {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        cmd.args(["--exact", entry, "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = cmd.spawn().expect("spawn child");
        let stdin = proc.stdin.take().expect("child stdin");
        let lines = BufReader::new(proc.stdout.take().expect("child stdout")).lines();
        Child { proc, stdin, lines }
    }

    /// Sends the child one command line.
    pub async fn send(&mut self, command: &str) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("to child");
    }

    /// The child's next message (without the mark).
    pub async fn next(&mut self) -> String {
        let read = async {
            while let Some(line) = self.lines.next_line().await.expect("from child") {
                // the harness may print "test child_process_entry ... " first
                if let Some(at) = line.find(MARK) {
                    return line[at + MARK.len()..].to_owned();
                }
            }
            panic!("child exited without a message");
        };
        tokio::time::timeout(HANG_GUARD, read)
            .await
            .expect("child hangs")
    }

    /// Waits for the child to exit, and checks it succeeded.
    pub async fn exit_ok(mut self) {
        let status = tokio::time::timeout(HANG_GUARD, self.proc.wait())
            .await
            .expect("child hangs")
            .expect("wait for child");
        assert!(status.success(), "child failed: {status}");
    }
}

/// The commands a child reads from its parent.
pub type Commands = Lines<BufReader<tokio::io::Stdin>>;

/// The body of a test binary's child entry (the test function that
/// [`Child::spawn`] runs): in a child (`ROLE` set), joins network
/// `LONET_TEST_NET` (under `LONET_TEST_ROOT` if set, else where the
/// environment says, as `LONET_REGISTRY`), plays `ROLE` with `play`, closes
/// and exits; in a normal test run, returns at once.
pub fn child_main<F: std::future::Future<Output = ()>>(
    play: impl FnOnce(String, virtnet_core::SubNetwork, Commands) -> F,
) {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("child runtime");
    rt.block_on(async {
        let name = std::env::var("LONET_TEST_NET").expect("LONET_TEST_NET");
        let mut builder = lonet::Builder::new(&name);
        if let Ok(root) = std::env::var("LONET_TEST_ROOT") {
            builder = builder.root(root);
        }
        let net = builder.join().await.expect("child join");
        let commands = BufReader::new(tokio::io::stdin()).lines();
        play(role, net.clone(), commands).await;
        net.close().await.expect("child close");
    });
    std::process::exit(0);
}

/// Says `msg` to the parent (from a child).
pub fn say(msg: &str) {
    println!("{MARK}{msg}");
}

#[allow(unused_imports)] // not every test file needs the server
pub use virtnet_testdata::programs::postgres_url;

#[allow(unused_imports)] // not every test file names networks
pub use virtnet_testdata::unique_name as unique_net;

/// Says `conn N LOCAL PEER` for `c`, which becomes connection N.
fn keep_conn(conns: &mut Vec<virtnet_core::Conn>, c: virtnet_core::Conn) {
    say(&format!(
        "conn {} {} {}",
        conns.len(),
        c.local_addr(),
        c.peer_addr()
    ));
    conns.push(c);
}

/// Runs commands from the parent, one per line, answering each that has an
/// answer:
/// - `host NAME` → `host NAME`; `close-host` → `closed`
/// - `listen LADDR` → `listener J ADDR`; `accept J` → `conn I LOCAL PEER`
/// - `dial ADDR` → `conn I LOCAL PEER` or `error MESSAGE`
/// - `send I TEXT`; `recv I LEN` → `recv TEXT`; `eof I` → `eof` (the peer
///   closed) or `error KIND`
/// - `exit`
pub async fn script(net: &virtnet_core::SubNetwork, commands: &mut Commands) {
    use tokio::io::AsyncReadExt;
    let mut host: Option<virtnet_core::Host> = None;
    let mut listeners: Vec<virtnet_core::Listener> = Vec::new();
    let mut conns: Vec<virtnet_core::Conn> = Vec::new();
    let index = |s: &str| s.parse::<usize>().expect("an index");
    while let Some(line) = commands.next_line().await.expect("command") {
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("host"), Some(name), None) => {
                host = Some(net.new_host(name).await.expect("new_host"));
                say(&format!("host {name}"));
            }
            (Some("close-host"), None, None) => {
                host.take().expect("a host").close().await.expect("close");
                say("closed");
            }
            (Some("listen"), laddr, None) => {
                let laddr = laddr.unwrap_or("");
                let l = host
                    .as_ref()
                    .expect("a host")
                    .listen(laddr)
                    .await
                    .expect("listen");
                say(&format!("listener {} {}", listeners.len(), l.local_addr()));
                listeners.push(l);
            }
            (Some("accept"), Some(j), None) => {
                let c = listeners[index(j)].accept().await.expect("accept");
                keep_conn(&mut conns, c);
            }
            (Some("dial"), Some(addr), None) => {
                match host.as_ref().expect("a host").dial(addr).await {
                    Ok(c) => keep_conn(&mut conns, c),
                    Err(e) => say(&format!("error {e}")),
                }
            }
            (Some("send"), Some(i), Some(text)) => {
                conns[index(i)]
                    .write_all(text.as_bytes())
                    .await
                    .expect("send");
            }
            (Some("recv"), Some(i), Some(len)) => {
                let mut buf = vec![0; len.parse().expect("a length")];
                conns[index(i)].read_exact(&mut buf).await.expect("recv");
                say(&format!("recv {}", String::from_utf8_lossy(&buf)));
            }
            (Some("eof"), Some(i), None) => {
                let mut buf = [0; 1024];
                let end = loop {
                    match conns[index(i)].read(&mut buf).await {
                        Ok(0) => break "eof".to_owned(),
                        Ok(_) => continue,
                        Err(e) => break format!("error {:?}", e.kind()),
                    }
                };
                say(&end);
            }
            (Some("exit"), None, None) => return,
            _ => panic!("bad command {line:?}"),
        }
    }
}
