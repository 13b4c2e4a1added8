//! Runs the real `lonet` binary as child processes. Every test has its own
//! temporary root (passed with `--root`), and its children get a private
//! `TMPDIR` too, so nothing can reach the default root. Tests synchronise on
//! the children's output and exits only; [`HANG_GUARD`] merely turns a hang
//! into a failure. Children are killed when dropped.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::Root;
use rustix::process::Signal;
use tokio::io::AsyncWriteExt;

/// The names of the entries under `root` (none if it does not exist).
fn entries(root: &Root) -> Vec<String> {
    match std::fs::read_dir(root.path()) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn demo_predicts_addresses_and_cleans_up() {
    let root = Root::new();
    let out = root.run(&["demo"], b"").await;
    out.expect(0);
    assert!(
        out.stdout.contains(&root.path().display().to_string()),
        "the demo's network is not under --root: {out:?}"
    );
    for want in [
        "α's listener: as predicted (listening on α:10)",
        "β's connection: as predicted (connected β:1 -> α:1)",
        "α's accepted connection: as predicted (accepted α:1 <- β:1)",
        "β:1 sent \"hello from β\\n\" (14 bytes), then half-closed",
        "β:1 got back \"hello from β\\n\" (14 bytes) from α:1",
        "cleaned up",
    ] {
        assert!(out.stdout.contains(want), "missing {want:?} in {out:?}");
    }
    assert_eq!(entries(&root), Vec::<String>::new(), "left behind");
}

#[tokio::test]
async fn echo_listener_sends_back_and_leaves_on_sigterm() {
    let root = Root::new();
    let (mut listener, addr) = root.listen(&["echo", "α", ":7", "--echo"]).await;
    assert_eq!(addr, "α:7");
    assert!(listener.log[0].starts_with("listening on α:7 (network lonetecho)"));

    let data = "ping ✓\n".repeat(1000);
    let dialed = root
        .run(&["dial", "echo", "β", "α:7"], data.as_bytes())
        .await;
    dialed.expect(0);
    assert_eq!(dialed.stdout, data, "the echo differs");
    assert!(dialed.stderr.contains("connected β:1 -> α:1"), "{dialed:?}");
    assert_eq!(listener.wait_for("accepted ").await, "accepted α:1 <- β:1");

    listener.signal(Signal::TERM);
    let out = listener.finish().await;
    out.expect(0);
    assert!(out.stderr.contains("α:1 <- β:1: closed"), "{out:?}");
    let hosts = root.hosts("echo").await;
    assert_eq!(hosts.stdout.lines().count(), 1, "hosts remain: {hosts:?}");
}

#[tokio::test]
async fn once_exchanges_stdin_both_ways() {
    let root = Root::new();
    let (mut listener, addr) = root.listen(&["once", "α", "--once"]).await;
    assert_eq!(addr, "α:1", "the default port is the lowest free one");
    listener.feed(b"from alpha\n");

    let dialed = root
        .run(&["dial", "once", "β", &addr], b"from beta\n")
        .await;
    dialed.expect(0);
    assert_eq!(dialed.stdout, "from alpha\n");

    let out = listener.finish().await;
    out.expect(0);
    assert_eq!(out.stdout, "from beta\n");
    assert!(out.stderr.contains("accepted α:2 <- β:1"), "{out:?}");
    let hosts = root.hosts("once").await;
    assert_eq!(hosts.stdout.lines().count(), 1, "hosts remain: {hosts:?}");
}

/// A `--once` server refuses later dials at once instead of leaving them
/// waiting.
#[tokio::test]
async fn once_refuses_a_second_dial() {
    let root = Root::new();
    let (mut listener, addr) = root.listen(&["once2", "α", "--once"]).await;
    let mut first = root.spawn(&["dial", "once2", "β", &addr]);
    listener.wait_for_text("accepted α:2 <- β:1").await;
    let second = root.run(&["dial", "once2", "γ", &addr], b"").await;
    second.expect(6);
    assert!(
        second
            .stderr
            .contains("dial lonetonce2 γ:1->α:1: connection refused"),
        "{second:?}"
    );
    first.feed(b"bye\n");
    listener.feed(b"");
    first.finish().await.expect(0);
    let out = listener.finish().await;
    out.expect(0);
    assert_eq!(out.stdout, "bye\n");
}

/// Piped stdin is sent in full even when the peer has nothing to send and
/// half-closes at once (netcat-style file transfer, in both directions).
#[tokio::test]
async fn once_sends_all_piped_stdin_after_the_peer_finished() {
    let root = Root::new();
    let file: String = (0..30_000).map(|i| format!("line {i}\n")).collect();

    let (mut listener, addr) = root.listen(&["xfer", "α", "--once"]).await;
    listener.feed(file.as_bytes());
    let dialed = root.run(&["dial", "xfer", "β", &addr], b"").await;
    dialed.expect(0);
    assert!(
        dialed.stdout == file,
        "listener's stdin cut off: {dialed:.200?}"
    );
    listener.finish().await.expect(0);

    let (listener, addr) = root.listen(&["xfer", "α", "--once"]).await;
    let (dialed, out) = tokio::join!(
        root.run(&["dial", "xfer", "β", &addr], file.as_bytes()),
        listener.finish()
    );
    dialed.expect(0);
    out.expect(0);
    assert!(out.stdout == file, "dialer's stdin cut off: {out:.200?}");
}

#[tokio::test]
async fn default_listen_prints_every_connection() {
    let root = Root::new();
    let (mut listener, addr) = root.listen(&["print", "α", ":5"]).await;
    let (one, two) = tokio::join!(
        root.run(&["dial", "print", "β", &addr], b"one from beta\n"),
        root.run(&["dial", "print", "γ", &addr], b"two from gamma\n"),
    );
    one.expect(0);
    two.expect(0);
    assert_eq!((one.stdout.as_str(), two.stdout.as_str()), ("", ""));

    let first = listener.wait_for("accepted ").await;
    let second = listener.wait_for("accepted ").await;
    let mut peers = [first, second].map(|l| l.split(" <- ").nth(1).unwrap().to_owned());
    peers.sort();
    assert_eq!(peers, ["β:1", "γ:1"]);

    listener.signal(Signal::TERM);
    let out = listener.finish().await;
    out.expect(0);
    let mut got: Vec<&str> = out.stdout.lines().collect();
    got.sort();
    assert_eq!(got, ["one from beta", "two from gamma"], "{out:?}");
}

#[tokio::test]
async fn ls_and_hosts_follow_a_listener() {
    let root = Root::new();
    let empty = root.run(&["ls"], b"").await;
    empty.expect(0);
    assert_eq!(empty.stdout, "NETWORK\tHOSTS\n");

    let (listener, _) = root.listen(&["lsnet", "α", ":3"]).await;
    let ls = root.run(&["ls"], b"").await;
    ls.expect(0);
    assert_eq!(ls.stdout, "NETWORK\tHOSTS\nlsnet\t1\n");

    let hosts = root.hosts("lsnet").await;
    let alpha = hosts.line("α\t").expect("α listed");
    let fields: Vec<&str> = alpha.split('\t').collect();
    assert!(fields[1].starts_with("127.0.0.1:"), "{alpha:?}");
    assert_eq!(fields[2], "alive");
    assert_eq!(hosts.stdout.lines().count(), 2, "{hosts:?}");

    let dup = root.run(&["listen", "lsnet", "α", ":4"], b"").await;
    assert_eq!(dup.code(), 1, "{dup:?}");
    assert!(dup.stderr.contains("host already registered"), "{dup:?}");

    listener.signal(Signal::TERM);
    listener.finish().await.expect(0);
    assert!(root.hosts("lsnet").await.line("α").is_none());
    let ls = root.run(&["ls"], b"").await;
    assert_eq!(ls.stdout, "NETWORK\tHOSTS\nlsnet\t0\n");
}

/// `ls` and `hosts` check directories as `listen` does: a network directory
/// that is a symbolic link is reported as refused, never followed; a root
/// that another user lets everyone write to, without the sticky bit, is
/// refused outright.
#[tokio::test]
async fn ls_and_hosts_refuse_unsafe_directories() {
    let root = Root::new();
    let (listener, _) = root.listen(&["realnet", "α", ":1"]).await;
    // Someone plants a link to a live network under another name.
    std::os::unix::fs::symlink(root.path().join("realnet"), root.path().join("linked")).unwrap();
    let ls = root.run(&["ls"], b"").await;
    ls.expect(0);
    let linked = ls.line("linked\t").expect("the link is listed");
    assert!(linked.starts_with("linked\trefused: "), "{ls:?}");
    assert!(linked.contains("is a symbolic link"), "{ls:?}");
    assert_eq!(ls.line("realnet\t"), Some("realnet\t1"), "{ls:?}");
    let hosts = root.run(&["hosts", "linked"], b"").await;
    assert_eq!(hosts.code(), 1, "{hosts:?}");
    assert!(hosts.stderr.contains("is a symbolic link"), "{hosts:?}");
    assert!(hosts.line("α").is_none(), "{hosts:?}");
    listener.signal(Signal::TERM);
    listener.finish().await.expect(0);

    if rustix::process::geteuid().as_raw() != 0 {
        return; // only root can give the root directory to someone else
    }
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(root.path(), Some(65534), None).unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for args in [
        &["ls"][..],
        &["hosts", "realnet"],
        &["listen", "realnet", "β", ":1"],
    ] {
        let out = root.run(args, b"").await;
        assert_eq!(out.code(), 1, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("without the sticky bit"),
            "{args:?}: {out:?}"
        );
        assert!(!out.stdout.contains("realnet"), "{args:?}: {out:?}");
    }
}

/// A SIGTERM right after "listening on" is already a clean stop: the listener
/// catches signals before it says where it listens.
#[tokio::test]
async fn sigterm_right_after_listening_on_is_clean() {
    let root = Root::new();
    for _ in 0..10 {
        let (listener, _) = root.listen(&["early", "α"]).await;
        listener.signal(Signal::TERM);
        listener.finish().await.expect(0);
    }
    assert_eq!(root.hosts("early").await.stdout.lines().count(), 1);
}

#[tokio::test]
async fn a_killed_listeners_host_is_dead_and_its_name_taken_over() {
    let root = Root::new();
    let (listener, _) = root.listen(&["killed", "α", ":3"]).await;
    listener.signal(Signal::KILL);
    let out = listener.finish().await;
    assert_eq!(out.status.signal(), Some(Signal::KILL.as_raw()));

    let hosts = root.hosts("killed").await;
    let alpha = hosts.line("α\t").expect("a killed host's entry stays");
    assert!(alpha.ends_with("\tdead"), "{alpha:?}");
    let ls = root.run(&["ls"], b"").await;
    assert_eq!(ls.stdout, "NETWORK\tHOSTS\nkilled\t1\n");

    // Dialing the dead host is a refusal, with its exit code, in the words
    // every network uses (no OS error number).
    let dial = root.run(&["dial", "killed", "β", "α:3"], b"").await;
    dial.expect(6);
    assert!(
        dial.stderr
            .contains("dial lonetkilled β:1->α:3: loconnect 127.0.0.1:"),
        "{dial:?}"
    );
    assert!(dial.stderr.contains(": connection refused"), "{dial:?}");
    assert!(!dial.stderr.contains("os error"), "{dial:?}");

    // A new process takes the dead host's name over.
    let (again, _) = root.listen(&["killed", "α", ":3"]).await;
    let hosts = root.hosts("killed").await;
    let alpha = hosts.line("α\t").expect("α listed");
    assert!(alpha.ends_with("\talive"), "{alpha:?}");
    again.signal(Signal::TERM);
    again.finish().await.expect(0);
}

/// `rm` refuses a network with live hosts unless `--force`; `--dead`
/// removes only the dead hosts' entries.
#[tokio::test]
async fn rm_spares_live_hosts() {
    let root = Root::new();
    let (live, _) = root.listen(&["busy", "α"]).await;
    let (killed, _) = root.listen(&["busy", "β"]).await;
    killed.signal(Signal::KILL);
    killed.finish().await;

    let refused = root.run(&["rm", "busy"], b"").await;
    refused.expect(1);
    assert!(
        refused
            .stderr
            .contains("network busy has hosts that are alive or may be (α)"),
        "{refused:?}"
    );
    assert!(root.path().join("busy").is_dir());

    let dead = root.run(&["rm", "busy", "--dead"], b"").await;
    dead.expect(0);
    assert!(
        dead.stderr.contains("removed dead host β (127.0.0.1:"),
        "{dead:?}"
    );
    let hosts = root.hosts("busy").await;
    assert!(
        hosts.line("α\t").is_some() && hosts.line("β\t").is_none(),
        "{hosts:?}"
    );

    let forced = root.run(&["rm", "busy", "--force"], b"").await;
    forced.expect(0);
    assert!(!root.path().join("busy").exists());
    live.signal(Signal::KILL);
    live.finish().await;
}

#[tokio::test]
async fn rm_removes_a_network_and_refuses_other_paths() {
    let root = Root::new();
    let (listener, _) = root.listen(&["gone", "α"]).await;
    listener.signal(Signal::TERM);
    listener.finish().await.expect(0);
    assert!(root.path().join("gone").is_dir());

    let out = root.run(&["rm", "gone"], b"").await;
    out.expect(0);
    assert!(out.stderr.contains("removed network gone"), "{out:?}");
    assert!(!root.path().join("gone").exists());

    let again = root.run(&["rm", "gone"], b"").await;
    again.expect(3);
    assert!(again.stderr.contains("no network \"gone\""), "{again:?}");

    for bad in ["..", "a/b", ".", ""] {
        let out = root.run(&["rm", bad], b"").await;
        assert_ne!(out.code(), 0, "{bad:?}: {out:?}");
        assert!(out.stderr.contains("invalid network name"), "{out:?}");
    }
    std::fs::write(root.path().join("file"), b"keep").unwrap();
    std::os::unix::fs::symlink(root.tmp.path(), root.path().join("link")).unwrap();
    for other in ["file", "link"] {
        let out = root.run(&["rm", other], b"").await;
        assert_ne!(out.code(), 0, "{other:?}: {out:?}");
        assert!(out.stderr.contains("is not a network directory"), "{out:?}");
    }
    assert!(root.path().join("file").is_file() && root.path().is_dir());
}

#[tokio::test]
async fn dial_errors_have_their_exit_codes() {
    let root = Root::new();
    let missing = root.run(&["dial", "nosuchnet", "β", "α:7"], b"").await;
    missing.expect(3);
    assert!(missing.stderr.contains("nosuchnet"), "{missing:?}");
    assert!(entries(&root).is_empty(), "dial created a network");
    root.run(&["hosts", "nosuchnet"], b"").await.expect(3);

    let (_listener, _) = root.listen(&["errs", "α", ":7"]).await;
    let refused = root.run(&["dial", "errs", "β", "α:8"], b"").await;
    refused.expect(6);
    assert!(refused.stderr.contains("connection refused"), "{refused:?}");
    let no_host = root.run(&["dial", "errs", "β", "γ:7"], b"").await;
    no_host.expect(4);
    assert!(no_host.stderr.contains("no such host"), "{no_host:?}");
    // The failed dialers' β left the network with them.
    let hosts = root.hosts("errs").await;
    assert!(hosts.line("β").is_none(), "{hosts:?}");
}

#[tokio::test]
async fn interrupted_dialer_leaves_the_network() {
    let root = Root::new();
    let (_listener, addr) = root.listen(&["intr", "α"]).await;
    let mut dialer = root.spawn(&["dial", "intr", "β", &addr]);
    dialer.wait_for("connected ").await;
    assert!(root.hosts("intr").await.line("β\t").is_some());
    dialer.signal(Signal::TERM);
    dialer.finish().await.expect(0);
    assert!(root.hosts("intr").await.line("β").is_none());
}

#[tokio::test]
async fn bad_usage_exits_2() {
    let root = Root::new();
    for args in [
        &[][..],
        &["nosuchcommand"],
        &["dial"],
        &["dial", "net", "β"],
        &["listen", "net"],
        &["listen", "net", "α", "--once", "--echo"],
        &["hosts"],
        &["rm"],
        &["ls", "extra"],
    ] {
        let out = root.run(args, b"").await;
        out.expect(2);
        assert!(out.stderr.contains("Usage: lonet"), "{args:?}: {out:?}");
    }
    assert!(!root.path().exists(), "bad usage touched the root");
}

#[tokio::test]
async fn help_describes_every_command() {
    let root = Root::new();
    let top = root.run(&["--help"], b"").await;
    top.expect(0);
    for want in [
        "--root <DIR>",
        "demo",
        "ls",
        "hosts",
        "listen",
        "dial",
        "rm",
    ] {
        assert!(top.stdout.contains(want), "{want:?} in {top:?}");
    }
    for (command, wants) in [
        ("demo", &[][..]),
        ("ls", &[]),
        ("hosts", &["<NET>"]),
        (
            "listen",
            &["<NET>", "<HOST>", "[LADDR]", "--once", "--echo"],
        ),
        ("dial", &["<NET>", "<HOST>", "<ADDR>"]),
        ("rm", &["<NET>", "--force", "--dead"]),
    ] {
        let out = root.run(&[command, "--help"], b"").await;
        out.expect(0);
        assert!(out.stdout.contains(&format!("Usage: lonet {command}")));
        for want in ["--root <DIR>", "--help"].iter().chain(wants) {
            assert!(out.stdout.contains(want), "{want:?} in {out:?}");
        }
    }
    assert!(!root.path().exists(), "--help touched the root");
}

/// `lonet listen` shows the acceptor's warnings on stderr: a peer's protocol
/// error names the network; a probe that leaves without a word does not
/// warn.
#[tokio::test]
async fn listen_shows_protocol_errors_on_stderr() {
    let root = Root::new();
    let (mut listener, _) = root.listen(&["warn", "α", ":1"]).await;
    let hosts = root.hosts("warn").await;
    let os_addr = hosts
        .line("α\t")
        .and_then(|l| l.split('\t').nth(1))
        .expect("α's OS address")
        .to_owned();
    let mut peer = tokio::net::TcpStream::connect(&os_addr).await.unwrap();
    peer.write_all(b"garbage\n").await.unwrap();
    let line = listener.wait_for_text("protocol error").await;
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("invalid dial request"), "{line}");
    assert!(line.contains("network=lonetwarn"), "{line}");
    listener.signal(Signal::TERM);
    let out = listener.finish().await;
    out.expect(0);
    assert!(
        !out.stderr.contains("reading the request failed"),
        "{out:?}"
    );
}
