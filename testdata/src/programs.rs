//! Real programs the tests drive: where they are, the tests' PostgreSQL
//! server (started by `.ci/test`), `psql` as a scripted client, `python3
//! -m http.server`, an OS echo server, and noise to serve.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A guard against hangs only: no assertion depends on it.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn guard<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}

/// Where program `name` is on the `PATH`, or a panic saying to install
/// `package` (which `.ci/test` does when run as root).
pub fn program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: install {package} (.ci/test installs it when run as root)")
        })
}

/// The URL of the tests' PostgreSQL server: `VIRTNET_POSTGRES_URL`, which
/// `.ci/test` (README's test command) sets after starting the server. A
/// test that needs it fails without it, saying so.
pub fn postgres_url() -> String {
    match std::env::var("VIRTNET_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "VIRTNET_POSTGRES_URL is not set: run the tests with .ci/test, which starts a PostgreSQL server for them"
        ),
    }
}

/// The tests' PostgreSQL server as (user, OS address, database), from
/// [`postgres_url`] (`postgres://USER@HOST:PORT/DB`).
pub fn postgres_server() -> (String, String, String) {
    let url = postgres_url();
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .unwrap_or_else(|| panic!("VIRTNET_POSTGRES_URL {url:?} is not postgres://…"));
    let (authority, db) = rest.split_once('/').unwrap_or((rest, "postgres"));
    let db = db.split('?').next().unwrap_or("postgres");
    let (user, hostport) = authority
        .rsplit_once('@')
        .unwrap_or_else(|| panic!("VIRTNET_POSTGRES_URL {url:?} names no user"));
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    (user.to_owned(), hostport, db.to_owned())
}

/// `psql` on `url`, reading queries from stdin, answering one line per
/// value on stdout (`-A -t -q`, stopping at the first error).
pub struct Psql {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Psql {
    /// Starts `psql` on `url`.
    pub fn start(url: &str) -> Psql {
        let mut child = Command::new(program("psql", "postgresql-client"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", url])
            .env("PGSSLMODE", "disable")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start psql");
        Psql {
            stdin: child.stdin.take().expect("psql's stdin"),
            stdout: BufReader::new(child.stdout.take().expect("psql's stdout")).lines(),
            child,
        }
    }

    /// Sends one query (a line).
    pub async fn send(&mut self, query: &str) {
        self.stdin
            .write_all(format!("{query}\n").as_bytes())
            .await
            .expect("to psql");
        self.stdin.flush().await.expect("to psql");
    }

    /// The next line psql answers.
    pub async fn line(&mut self) -> String {
        guard("a line from psql", self.stdout.next_line())
            .await
            .expect("from psql")
            .expect("psql ended")
    }

    /// Ends psql's input and checks that it exits successfully.
    pub async fn finish(self) {
        drop(self.stdin);
        let out = guard("psql's exit", self.child.wait_with_output())
            .await
            .expect("psql's exit");
        assert!(out.status.success(), "psql: {out:?}");
    }
}

/// `python3 -m http.server` serving `dir` on a free port of 127.0.0.1: the
/// process (killed when dropped) and its address.
pub async fn http_server(dir: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(program("python3", "python3"))
        .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
        .arg("--directory")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3 -m http.server");
    let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
    // "Serving HTTP on 127.0.0.1 port 41865 (http://127.0.0.1:41865/) ..."
    let line = guard("the HTTP server's first line", lines.next_line())
        .await
        .expect("from python3")
        .expect("python3 said nothing");
    let port: u16 = line
        .split(" port ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// An OS echo server on a free port of 127.0.0.1 (a task of the current
/// runtime): every connection's bytes back to it, then a half-close when it
/// half-closes. Its address.
pub async fn echo_server() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the echo server");
    let addr = l.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    addr
}

/// `n` bytes of xorshift noise from `seed`.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}
