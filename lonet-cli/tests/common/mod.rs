//! The harness the CLI tests share: the real `lonet` binary as child
//! processes, each test under its own temporary root (`--root`), its
//! children with a private `TMPDIR` too. Tests synchronise on the
//! children's output and exits only; [`HANG_GUARD`] merely turns a hang
//! into a failure. Children are killed when dropped.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// `f`, or a panic naming `what` if it hangs.
pub async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}

/// A temporary directory holding the networks' root and the children's
/// TMPDIR; or, made by [`Root::postgres`], the children's TMPDIR and a
/// PostgreSQL registry for the networks.
pub struct Root {
    pub tmp: TempDir,
    registry: Option<String>,
}

/// A finished `lonet` run.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code; panics (showing the output) if killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self:?}"))
    }

    /// Asserts that the run exited with `code`.
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "{self:?}");
        self
    }

    /// The stdout line starting with `prefix`, if any.
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout.lines().find(|l| l.starts_with(prefix))
    }
}

impl Root {
    pub fn new() -> Root {
        Root {
            tmp: tempfile::tempdir().unwrap(),
            registry: None,
        }
    }

    /// Children that keep their networks in the tests' PostgreSQL database
    /// (`--registry`, from `VIRTNET_POSTGRES_URL`, which `.ci/test` sets).
    pub fn postgres() -> Root {
        let url = virtnet_testdata::programs::postgres_url();
        Root {
            tmp: tempfile::tempdir().unwrap(),
            registry: Some(url),
        }
    }

    /// The PostgreSQL URL of a [`Root::postgres`].
    pub fn registry_url(&self) -> &str {
        self.registry.as_deref().expect("a PostgreSQL root")
    }

    /// Where networks live (`--root`); created by `lonet` when needed.
    pub fn path(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    /// `lonet --root <root> args…` (or `--registry <url>`), with no stdin
    /// and piped output.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lonet"));
        match &self.registry {
            Some(url) => cmd.arg("--registry").arg(url),
            None => cmd.arg("--root").arg(self.path()),
        };
        cmd.args(args)
            .env_remove("LONET_REGISTRY")
            .env_remove("LONET_BIND")
            .env_remove("LONET_ANNOUNCE")
            .env("TMPDIR", self.tmp.path().join("tmp"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Starts `lonet args…` now, with `input` on stdin; the future is its run
    /// to the end.
    pub fn run(&self, args: &[&str], input: &[u8]) -> impl Future<Output = Output> + 'static {
        let mut child = self.command(args).stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_owned();
        let what = format!("lonet {args:?}");
        async move {
            guard(&what, async {
                let feed = async move {
                    // The child may have exited without reading it all.
                    let _ = stdin.write_all(&input).await;
                };
                let (out, ()) = tokio::join!(child.wait_with_output(), feed);
                let out = out.unwrap();
                Output {
                    status: out.status,
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                }
            })
            .await
        }
    }

    /// Starts `lonet args…` with a piped stdin.
    pub fn spawn(&self, args: &[&str]) -> Proc {
        let mut child = self.command(args).stdin(Stdio::piped()).spawn().unwrap();
        Proc {
            stdin: child.stdin.take(),
            stdout: child.stdout.take().unwrap(),
            stderr: BufReader::new(child.stderr.take().unwrap()).lines(),
            log: Vec::new(),
            child,
        }
    }

    /// Starts `lonet listen args…` and waits until it says where it listens;
    /// returns it and that address.
    pub async fn listen(&self, args: &[&str]) -> (Proc, String) {
        let mut listener = self.spawn(&[&["listen"], args].concat());
        let line = listener.wait_for("listening on ").await;
        let addr = line["listening on ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        (listener, addr)
    }

    /// `lonet hosts net`, which must succeed.
    pub async fn hosts(&self, net: &str) -> Output {
        let out = self.run(&["hosts", net], b"").await;
        out.expect(0);
        assert_eq!(out.stdout.lines().next(), Some("HOST\tOS ADDRESS\tSTATUS"));
        out
    }
}

/// A running `lonet`: stdin to write, stdout to read, stderr read by lines.
pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: ChildStdout,
    pub stderr: Lines<BufReader<ChildStderr>>,
    /// The stderr lines read so far.
    pub log: Vec<String>,
}

impl Proc {
    /// Reads stderr up to the first line starting with `prefix`; returns it.
    pub async fn wait_for(&mut self, prefix: &str) -> String {
        let what = format!("a stderr line starting with {prefix:?}");
        guard(&what, async {
            while let Some(line) = self.stderr.next_line().await.unwrap() {
                self.log.push(line.clone());
                if line.starts_with(prefix) {
                    return line;
                }
            }
            panic!("stderr ended without {prefix:?}: {:?}", self.log);
        })
        .await
    }

    /// Reads stderr up to the first line containing `text`; returns it.
    pub async fn wait_for_text(&mut self, text: &str) -> String {
        let what = format!("a stderr line containing {text:?}");
        guard(&what, async {
            while let Some(line) = self.stderr.next_line().await.unwrap() {
                self.log.push(line.clone());
                if line.contains(text) {
                    return line;
                }
            }
            panic!("stderr ended without {text:?}: {:?}", self.log);
        })
        .await
    }

    /// Writes `data` to stdin in the background, then closes it.
    pub fn feed(&mut self, data: &[u8]) {
        let mut stdin = self.stdin.take().expect("stdin still open");
        let data = data.to_owned();
        // An error (the child exited without reading it all) shows in the
        // test's assertions on what the other side received.
        tokio::spawn(async move { stdin.write_all(&data).await });
    }

    /// Sends signal `sig` to the process.
    pub fn signal(&self, sig: Signal) {
        // The child is not reaped yet, so its pid cannot have been reused.
        let pid = self.child.id().expect("not reaped yet");
        let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
        kill_process(pid.expect("a valid pid"), sig).expect("kill");
    }

    /// Waits for the process to exit; returns its status, all of its stdout
    /// and the rest of its stderr (after the lines already read).
    pub async fn finish(mut self) -> Output {
        drop(self.stdin.take());
        guard("a child's exit", async {
            let mut stdout = Vec::new();
            let mut stderr = self.log.join("\n");
            let (out, err) = tokio::join!(self.stdout.read_to_end(&mut stdout), async {
                while let Some(line) = self.stderr.next_line().await? {
                    stderr.push('\n');
                    stderr.push_str(&line);
                }
                std::io::Result::Ok(())
            });
            out.unwrap();
            err.unwrap();
            Output {
                status: self.child.wait().await.unwrap(),
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr,
            }
        })
        .await
    }
}

#[allow(unused_imports)] // not every test file names networks
pub use virtnet_testdata::unique_name as unique_net;
