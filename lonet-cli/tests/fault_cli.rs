//! `lonet fault` across real OS processes: a listener, a dialer and the
//! `lonet fault` runs are separate processes sharing a network through its
//! registry file. Every test has its own temporary root and network name.
//! Tests synchronise on the children's output and exits (a process logs
//! when it takes a change of the fault rules); timeouts only turn a hang
//! into a failure, except where a test shows that bytes do *not* arrive
//! while a partition that every process has taken holds them (then it
//! watches for a while: anything arriving is a bug, not a race).
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// Long enough never to matter unless something hangs.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// `f`, or a panic naming `what` if it hangs.
async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}

/// A temporary directory holding the networks' root and the children's TMPDIR.
struct Root {
    tmp: TempDir,
}

/// A finished `lonet` run.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    /// The exit code; panics (showing the output) if killed by a signal.
    fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self:?}"))
    }

    /// Asserts that the run exited with `code`.
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "{self:?}");
        self
    }

    /// The stdout line starting with `prefix`, if any.
    fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout.lines().find(|l| l.starts_with(prefix))
    }
}

impl Root {
    fn new() -> Root {
        Root {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    /// Where networks live (`--root`); created by `lonet` when needed.
    fn path(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    /// `lonet --root <root> args…`, with no stdin and piped output.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lonet"));
        cmd.arg("--root")
            .arg(self.path())
            .args(args)
            .env("TMPDIR", self.tmp.path().join("tmp"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Starts `lonet args…` now, with `input` on stdin; the future is its run
    /// to the end.
    fn run(&self, args: &[&str], input: &[u8]) -> impl Future<Output = Output> + 'static {
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
    fn spawn(&self, args: &[&str]) -> Proc {
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
    async fn listen(&self, args: &[&str]) -> (Proc, String) {
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
    async fn hosts(&self, net: &str) -> Output {
        let out = self.run(&["hosts", net], b"").await;
        out.expect(0);
        assert_eq!(out.stdout.lines().next(), Some("HOST\tOS ADDRESS\tSTATUS"));
        out
    }
}

/// A running `lonet`: stdin to write, stdout to read, stderr read by lines.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: Lines<BufReader<ChildStderr>>,
    /// The stderr lines read so far.
    log: Vec<String>,
}

impl Proc {
    /// Reads stderr up to the first line starting with `prefix`; returns it.
    async fn wait_for(&mut self, prefix: &str) -> String {
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
    async fn wait_for_text(&mut self, text: &str) -> String {
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
    fn feed(&mut self, data: &[u8]) {
        let mut stdin = self.stdin.take().expect("stdin still open");
        let data = data.to_owned();
        // An error (the child exited without reading it all) shows in the
        // test's assertions on what the other side received.
        tokio::spawn(async move { stdin.write_all(&data).await });
    }

    /// Sends signal `sig` to the process.
    fn signal(&self, sig: Signal) {
        // The child is not reaped yet, so its pid cannot have been reused.
        let pid = self.child.id().expect("not reaped yet");
        let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
        kill_process(pid.expect("a valid pid"), sig).expect("kill");
    }

    /// Waits for the process to exit; returns its status, all of its stdout
    /// and the rest of its stderr (after the lines already read).
    async fn finish(mut self) -> Output {
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

/// How long a test watches to see that held bytes do not arrive, once
/// every process has taken the partition (an event it waits for first).
const HELD_FOR: Duration = Duration::from_millis(700);

/// Writes `data` to a running dialer's stdin, keeping it open.
async fn write(stdin: &mut ChildStdin, data: &[u8]) {
    stdin.write_all(data).await.unwrap();
    stdin.flush().await.unwrap();
}

/// Reads exactly `n` bytes of `proc`'s stdout.
async fn read_n(proc: &mut Proc, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    guard(
        "bytes on the dialer's stdout",
        proc.stdout.read_exact(&mut buf),
    )
    .await
    .unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_holds_bytes_until_healed_and_unreachable_fails_dials() {
    let root = Root::new();
    let net = "fpart";
    // -vv: each process logs when it takes a change of the fault rules.
    let (mut listener, _) = root.listen(&["-vv", net, "α", ":10", "--echo"]).await;
    let mut dialer = root.spawn(&["dial", "-vv", net, "β", "α:10"]);
    dialer.wait_for("connected ").await;
    let mut stdin = dialer.stdin.take().unwrap();
    write(&mut stdin, b"one\n").await;
    assert_eq!(read_n(&mut dialer, 4).await, b"one\n");

    // A third process partitions α and β: the echo of what β sends next is
    // held (in β's direction to α, and α's back).
    let out = root.run(&["fault", net, "partition", "α", "β"], b"").await;
    out.expect(0);
    assert!(out.stdout.contains("partition α β (version 1)"), "{out:?}");
    // Both processes take the change (they watch the registry).
    listener.wait_for_text("fault rules followed").await;
    dialer.wait_for_text("fault rules followed").await;
    // `ls` shows both directions; no host was made by `fault`.
    let ls = root.run(&["fault", net, "ls"], b"").await;
    ls.expect(0);
    assert!(
        ls.stdout
            .starts_with("version 1\tseed 0\nFROM\tTO\tFAULTS\n"),
        "{ls:?}"
    );
    assert!(ls.stdout.contains("α\tβ\tpartition\n"), "{ls:?}");
    assert!(ls.stdout.contains("β\tα\tpartition\n"), "{ls:?}");
    let hosts = root.hosts(net).await;
    assert_eq!(hosts.stdout.lines().count(), 3, "{hosts:?}");

    // Both ends hold the partition now: bytes arriving in this window
    // would be a bug, not a race.
    write(&mut stdin, b"two\n").await;
    let mut buf = [0; 4];
    let held = tokio::time::timeout(HELD_FOR, dialer.stdout.read_exact(&mut buf)).await;
    assert!(held.is_err(), "bytes crossed a partition: {buf:?}");

    // Healed, the held bytes arrive, in order.
    root.run(&["fault", net, "heal"], b"").await.expect(0);
    assert_eq!(read_n(&mut dialer, 4).await, b"two\n");
    write(&mut stdin, b"three\n").await;
    assert_eq!(read_n(&mut dialer, 6).await, b"three\n");
    drop(stdin);
    dialer.finish().await.expect(0);

    // Unreachable: a new dial fails at once, with its exit code.
    let out = root
        .run(&["fault", net, "unreachable", "α", "β"], b"")
        .await;
    out.expect(0);
    let start = Instant::now();
    let dial = root.run(&["dial", net, "β", "α:10"], b"").await;
    let took = start.elapsed();
    dial.expect(7);
    assert!(dial.stderr.contains("no route to host"), "{dial:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // Another host still reaches α.
    let ok = root.run(&["dial", net, "γ", "α:10"], b"hi\n").await;
    ok.expect(0);
    assert_eq!(ok.stdout, "hi\n");

    listener.signal(Signal::TERM);
    listener.finish().await.expect(0);
}

#[tokio::test]
async fn fault_sets_each_kind_and_lists_them() {
    let root = Root::new();
    let net = "fkinds";
    let (listener, _) = root.listen(&[net, "α"]).await;
    for (args, said) in [
        (
            &["partition", "α,β", "/", "γ"][..],
            "partition {α,β} | {γ} (version 1)",
        ),
        (
            &["unreachable", "α", "δ", "--oneway"],
            "unreachable α -> δ (version 2)",
        ),
        (
            &["latency", "α", "β", "20ms", "--jitter", "5ms"],
            "latency α β 20ms jitter 5ms (version 3)",
        ),
        (
            &["bandwidth", "β", "α", "1MiB/s", "--oneway"],
            "bandwidth β -> α 1MiB/s (version 4)",
        ),
        (&["seed", "42"], "seed 42 (version 5)"),
        (&["reset", "α", "β"], "reset α β (version 6)"),
        (&["heal", "α,β/γ"], "heal {α,β} | {γ} (version 7)"),
    ] {
        let out = root.run(&[&["fault", net][..], args].concat(), b"").await;
        out.expect(0);
        assert_eq!(out.stdout, format!("{net}: {said}\n"), "{args:?}");
    }
    let ls = root.run(&["fault", net, "ls"], b"").await;
    ls.expect(0);
    assert_eq!(
        ls.stdout,
        "version 7\tseed 42\n\
         FROM\tTO\tFAULTS\n\
         α\tβ\tlatency 20ms jitter 5ms, reset #1\n\
         α\tδ\tunreachable\n\
         β\tα\tlatency 20ms jitter 5ms, bandwidth 1MiB/s, reset #1\n"
    );
    root.run(&["fault", net, "heal"], b"").await.expect(0);
    let ls = root.run(&["fault", net, "ls"], b"").await;
    assert!(ls.stdout.contains("α\tβ\tnone (reset #1)"), "{ls:?}");
    assert!(!ls.stdout.contains("unreachable"), "{ls:?}");
    listener.signal(Signal::TERM);
    listener.finish().await.expect(0);
}

#[tokio::test]
async fn fault_usage_errors_exit_2_and_a_missing_network_3() {
    let root = Root::new();
    for (args, says) in [
        (&["fault", "n", "partition", "α"][..], "invalid hosts 'α'"),
        (
            &["fault", "n", "partition", "α", "α"],
            "the two hosts are the same",
        ),
        (
            &["fault", "n", "partition", "α,β", "/"],
            "a side has no host",
        ),
        (
            &["fault", "n", "latency", "α", "β", "soon"],
            "'soon' for '<LATENCY>'",
        ),
        (
            &["fault", "n", "latency", "α", "β", "1s", "--jitter", "x"],
            "'x' for '--jitter",
        ),
        (
            &["fault", "n", "bandwidth", "α", "β", "1XB/s"],
            "'1XB/s' for '<RATE>'",
        ),
        (
            &["fault", "n", "bandwidth", "α", "β", "0"],
            "at least 1 byte",
        ),
        (&["fault", "n", "seed", "-1"], "-1"),
        (
            &["fault", "n", "heal", "--oneway"],
            "--oneway needs the hosts",
        ),
        (&["fault", "n"], "Usage: lonet fault"),
        (&["fault", "n", "explode"], "explode"),
    ] {
        let out = root.run(args, b"").await;
        out.expect(2);
        assert!(out.stderr.contains(says), "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out:?}");
    }
    let missing = root
        .run(&["fault", "nosuchnet", "partition", "α", "β"], b"")
        .await;
    missing.expect(3);
    assert!(
        missing.stderr.contains("no network \"nosuchnet\""),
        "{missing:?}"
    );
    assert!(!root.path().join("nosuchnet").exists());

    let help = root.run(&["fault", "--help"], b"").await;
    help.expect(0);
    for form in [
        "partition α β ",
        "--oneway",
        "partition α,β / γ",
        "unreachable α β",
        "latency α β 20ms --jitter 5ms",
        "bandwidth α β 1MiB/s",
        "reset α β",
        "heal α β",
        "NET heal ",
        "seed 42",
        "NET ls",
    ] {
        assert!(help.stdout.contains(form), "{form:?} in {help:?}");
    }
}
