//! `lonet fault` across real OS processes: a listener, a dialer and the
//! `lonet fault` runs are separate processes sharing a network through its
//! registry file. Every test has its own temporary root and network name.
//! Tests synchronise on the children's output and exits (a process logs
//! when it takes a change of the fault rules); timeouts only turn a hang
//! into a failure, except where a test shows that bytes do *not* arrive
//! while a partition that every process has taken holds them (then it
//! watches for a while: anything arriving is a bug, not a race).

mod common;

use std::time::{Duration, Instant};

use common::{guard, Proc, Root};
use rustix::process::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;

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
