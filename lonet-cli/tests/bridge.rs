//! `lonet bridge` with real programs: a PostgreSQL server exposed by one
//! bridge process and reached by `psql` through another's forward (with a
//! partition set by `lonet fault` and healed), `pgbench`'s clients at once
//! through the same two bridges (every transaction recorded exactly once),
//! `python3 -m http.server` fetched with `curl` through a bridge of several
//! exposes and forwards, and SIGTERM's graceful shutdown.
//!
//! Every test has its own temporary root and network name. Tests wait on
//! the children's output and exits; the hang guard only turns a hang into
//! a failure, except where a test shows that a query across a partition
//! that every process has taken gets no answer (then it watches for a
//! while: an answer arriving is a bug, not a race).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{guard, unique_net, Proc, Root};
use rustix::process::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use virtnet_testdata::programs::{echo_server, http_server, noise, postgres_server, program, Psql};

/// How long a test watches to see that a held query gets no answer, once
/// every process has taken the partition (an event it waits for first).
const HELD_FOR: Duration = Duration::from_millis(700);

/// Starts `lonet bridge args…` and waits until it is ready; returns it and
/// the OS addresses of its forwards, in order.
async fn bridge(root: &Root, args: &[&str]) -> (Proc, Vec<SocketAddr>) {
    let mut proc = root.spawn(&[&["bridge"], args].concat());
    let mut forwards = Vec::new();
    loop {
        let line = proc.wait_for("").await;
        if line.starts_with("ready: ") {
            return (proc, forwards);
        }
        // "bridging 127.0.0.1:PORT -> β -> α:5432 (network …)"
        if let Some(rest) = line.strip_prefix("bridging ") {
            let first = rest.split(' ').next().unwrap();
            if let Ok(addr) = first.parse() {
                forwards.push(addr);
            }
        }
    }
}

/// Reads `proc`'s stderr until a line containing each of `texts` has
/// come, in any order; returns those lines, in the order of `texts`.
async fn wait_all(proc: &mut Proc, texts: &[&str]) -> Vec<String> {
    let mut found: Vec<Option<String>> = vec![None; texts.len()];
    while found.iter().any(Option::is_none) {
        let line = proc.wait_for("").await;
        for (text, slot) in texts.iter().zip(&mut found) {
            if slot.is_none() && line.contains(text) {
                *slot = Some(line.clone());
            }
        }
    }
    found.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_through_two_bridge_processes_stalls_across_a_partition_until_healed() {
    let root = Root::new();
    let net = unique_net("bpsql");
    let (user, server, db) = postgres_server();
    // -vv: each process logs when it takes a change of the fault rules.
    let (mut exposer, mut forwarder, port) = bridge_postgres(&root, &["-vv"], &net, &server).await;
    let mut psql = Psql::start(&format!("postgresql://{user}@{port}/{db}"));
    psql_queries(&mut psql).await;
    // Both processes said which connection is psql's: predictable
    // addresses for a program that knows nothing of lonet.
    let line = forwarder.wait_for("bridge: ").await;
    assert!(line.ends_with(" -> β:1 -> α:1"), "{line}");
    let line = exposer.wait_for("bridge: ").await;
    assert_eq!(line, format!("bridge: α:1 <- β:1 -> {server}"));
    partition_holds_psql(&root, &net, &mut psql, &mut [&mut exposer, &mut forwarder]).await;
    psql.finish().await;
    forwarder.wait_for_text(" -> β:1 -> α:1: closed").await;

    for proc in [&exposer, &forwarder] {
        proc.signal(Signal::TERM);
    }
    exposer.finish().await.expect(0);
    forwarder.finish().await.expect(0);
    let hosts = root.hosts(&net).await;
    assert_eq!(hosts.stdout.lines().count(), 1, "{hosts:?}");
}

/// The PostgreSQL server at `server` exposed as α:5432 of `net` by one
/// bridge process and forwarded from β by another, both given `flags`
/// first; returns them (exposer, forwarder) and the forward's OS address.
async fn bridge_postgres(
    root: &Root,
    flags: &[&str],
    net: &str,
    server: &str,
) -> (Proc, Proc, SocketAddr) {
    let expose = [flags, &[net, "expose", "α:5432", "--to", server]].concat();
    let (exposer, _) = bridge(root, &expose).await;
    let forward = [
        flags,
        &[
            net,
            "forward",
            "127.0.0.1:0",
            "--from",
            "β",
            "--to",
            "α:5432",
        ],
    ]
    .concat();
    let (forwarder, forwards) = bridge(root, &forward).await;
    (exposer, forwarder, forwards[0])
}

/// The same in one bridge process that exposes α:5432 and forwards to it:
/// the dial from β to α is an in-memory pipe there (local pipes), and the
/// partition, set by another process, holds it all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_through_one_bridge_process_stalls_across_a_partition_until_healed() {
    let root = Root::new();
    let net = unique_net("bpsql1");
    let (user, server, db) = postgres_server();
    let expose = format!("α:5432={server}");
    let args = [
        "-vv",
        &net,
        "--expose",
        &expose,
        "--forward",
        "127.0.0.1:0=β:α:5432",
    ];
    let (mut bridge, forwards) = bridge(&root, &args).await;
    let port = forwards[0];
    let mut psql = Psql::start(&format!("postgresql://{user}@{port}/{db}"));
    psql_queries(&mut psql).await;
    let lines = wait_all(&mut bridge, &["-> β:1 -> α:1", "bridge: α:1 <- β:1 -> "]).await;
    assert_eq!(lines[1], format!("bridge: α:1 <- β:1 -> {server}"));
    partition_holds_psql(&root, &net, &mut psql, &mut [&mut bridge]).await;
    psql.finish().await;
    bridge.wait_for_text(" -> β:1 -> α:1: closed").await;
    bridge.signal(Signal::TERM);
    bridge.finish().await.expect(0);
    let hosts = root.hosts(&net).await;
    assert_eq!(hosts.stdout.lines().count(), 1, "{hosts:?}");
}

/// Queries through `psql` that must work.
async fn psql_queries(psql: &mut Psql) {
    psql.send("SELECT 42;").await;
    assert_eq!(psql.line().await, "42");
    psql.send("SELECT g * 10 FROM generate_series(1, 3) g;")
        .await;
    for want in ["10", "20", "30"] {
        assert_eq!(psql.line().await, want);
    }
}

/// Another process partitions β and α; once every bridge has taken it
/// (`-vv` says so), a query gets no answer; after the heal it does.
async fn partition_holds_psql(root: &Root, net: &str, psql: &mut Psql, bridges: &mut [&mut Proc]) {
    let out = root.run(&["fault", net, "partition", "β", "α"], b"").await;
    out.expect(0);
    for bridge in bridges.iter_mut() {
        bridge.wait_for_text("fault rules followed").await;
    }
    psql.send("SELECT 'after the heal';").await;
    let held = tokio::time::timeout(HELD_FOR, psql.line()).await;
    assert!(held.is_err(), "a query crossed a partition: {held:?}");
    root.run(&["fault", net, "heal"], b"").await.expect(0);
    assert_eq!(psql.line().await, "after the heal");
}

/// Runs `pgbench args…`; returns its report (stdout), failing the test if
/// it fails.
async fn pgbench(args: &[&str]) -> String {
    let run = Command::new(program("pgbench", "postgresql-client"))
        .args(args)
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let done = guard("pgbench", run).await.unwrap();
    assert!(done.status.success(), "pgbench {args:?}: {done:?}");
    String::from_utf8_lossy(&done.stdout).into_owned()
}

/// Runs `statement` with `psql` on `url`, which must succeed.
async fn psql_run(url: &str, statement: &str) {
    let mut psql = Psql::start(url);
    psql.send(statement).await;
    psql.finish().await;
}

/// `pgbench` loads its tables and then runs 8 clients at once, each
/// transaction several round trips, through a forward in one bridge
/// process and an expose in another. A direct connection then finds every
/// transaction recorded exactly once, and the balances agree with the
/// history: nothing lost or duplicated in either direction under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_clients_at_once_through_two_bridge_processes_lose_and_duplicate_nothing() {
    const CLIENTS: usize = 8;
    const EACH: usize = 50;
    let root = Root::new();
    let net = unique_net("bpgbench");
    let (user, server, db) = postgres_server();
    let direct = format!("postgresql://{user}@{server}/{db}");
    // A database of its own: tests run in parallel on one server.
    psql_run(&direct, &format!("CREATE DATABASE {net};")).await;
    // Checks go over a direct connection, not through the bridge.
    let mut check = Psql::start(&format!("postgresql://{user}@{server}/{net}"));

    let (exposer, forwarder, port) = bridge_postgres(&root, &[], &net, &server).await;
    let through = format!("postgresql://{user}@{port}/{net}");

    // Loading: 100,000 rows of COPY from the client, then an index build.
    pgbench(&["-i", "-s", "1", "-q", &through]).await;
    check.send("SELECT count(*) FROM pgbench_accounts;").await;
    assert_eq!(check.line().await, "100000");

    let (clients, each) = (CLIENTS.to_string(), EACH.to_string());
    let report = pgbench(&["-n", "-c", &clients, "-j", "2", "-t", &each, &through]).await;
    let total = CLIENTS * EACH;
    assert!(
        report.contains(&format!(
            "number of transactions actually processed: {total}/{total}"
        )),
        "{report}"
    );
    assert!(
        report.contains("number of failed transactions: 0 "),
        "{report}"
    );
    check.send("SELECT count(*) FROM pgbench_history;").await;
    assert_eq!(check.line().await, total.to_string());
    // Each transaction adds its delta to one account, teller and branch
    // and records it once in the history.
    for (table, balance) in [
        ("pgbench_accounts", "abalance"),
        ("pgbench_tellers", "tbalance"),
        ("pgbench_branches", "bbalance"),
    ] {
        check
            .send(&format!(
                "SELECT (SELECT sum({balance}) FROM {table}) = (SELECT sum(delta) FROM pgbench_history);"
            ))
            .await;
        assert_eq!(check.line().await, "t", "{table}");
    }
    check.finish().await;

    for proc in [&exposer, &forwarder] {
        proc.signal(Signal::TERM);
    }
    exposer.finish().await.expect(0);
    forwarder.finish().await.expect(0);
    psql_run(&direct, &format!("DROP DATABASE {net} WITH (FORCE);")).await;
}

async fn curl(url: &str, out: &Path) {
    let run = Command::new(program("curl", "curl"))
        .args(["-sS", "--fail", "-o"])
        .arg(out)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let done = guard("curl", run).await.unwrap();
    assert!(done.status.success(), "curl {url}: {done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_a_large_file_intact_through_several_exposes_and_forwards() {
    let root = Root::new();
    let net = unique_net("bhttp");
    let site = tempfile::tempdir().unwrap();
    let file = noise(20 << 20, 11);
    std::fs::write(site.path().join("big.bin"), &file).unwrap();
    let (_server, at) = http_server(site.path()).await;
    let (expose80, expose81) = (format!("α:80={at}"), format!("α:81={at}"));
    let (mut proc, forwards) = bridge(
        &root,
        &[
            &net,
            "--expose",
            &expose80,
            "--expose",
            &expose81,
            "--forward",
            "127.0.0.1:0=β:α:80",
            "--forward",
            "127.0.0.1:0=γ:α:81",
        ],
    )
    .await;
    assert_eq!(forwards.len(), 2);

    for (forward, dialer) in forwards.iter().zip(["β:1", "γ:1"]) {
        let out = site.path().join(format!("fetched-{dialer}.bin"));
        curl(&format!("http://{forward}/big.bin"), &out).await;
        let fetched = std::fs::read(&out).unwrap();
        assert_eq!(fetched.len(), file.len());
        assert!(
            fetched == file,
            "the file fetched through {forward} differs"
        );
        // The fetch was a dial from the forward's host to its port; both
        // of its legs closed (so the next fetch is accepted as α:1 again).
        let lines = wait_all(
            &mut proc,
            &[
                &format!(" -> {dialer} -> α:1: closed"),
                &format!("bridge: α:1 <- {dialer} -> {at}: closed"),
            ],
        )
        .await;
        assert!(lines[0].starts_with("bridge: 127.0.0.1:"), "{lines:?}");
    }
    proc.signal(Signal::TERM);
    let out = proc.finish().await;
    out.expect(0);
    assert!(out.stderr.contains("stopped: "), "{out:?}");
}

async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    guard("bytes", s.read_exact(&mut buf)).await.unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_listeners_lets_open_connections_finish_then_the_hosts_leave() {
    let root = Root::new();
    let net = unique_net("bterm");
    let echo = echo_server().await;
    let expose = format!("α:7={echo}");
    let (mut proc, forwards) = bridge(
        &root,
        &[
            &net,
            "--grace",
            "1h",
            "--expose",
            &expose,
            "--forward",
            "127.0.0.1:0=β:α:7",
        ],
    )
    .await;
    let port = forwards[0];
    let mut open = TcpStream::connect(port).await.unwrap();
    open.write_all(b"one").await.unwrap();
    assert_eq!(read_n(&mut open, 3).await, b"one");
    wait_all(
        &mut proc,
        &[" -> β:1 -> α:1", &format!("bridge: α:1 <- β:1 -> {echo}")],
    )
    .await;

    proc.signal(Signal::TERM);
    proc.wait_for("shutting down: listeners closed, 2 connection(s) open, grace 1h")
        .await;
    // The listeners are closed, the open connection goes on.
    let refused = TcpStream::connect(port).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    root.run(&["dial", &net, "δ", "α:7"], b"").await.expect(6);
    let hosts = root.hosts(&net).await;
    assert!(hosts.stdout.contains("α\t"), "{hosts:?}");
    open.write_all(b"two").await.unwrap();
    assert_eq!(read_n(&mut open, 3).await, b"two");

    // Once it ends, the bridge exits, and its hosts are gone.
    open.shutdown().await.unwrap();
    let mut rest = Vec::new();
    guard("the end", open.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
    let out = proc.finish().await;
    out.expect(0);
    assert!(
        out.stderr
            .contains(" -> β:1 -> α:1: closed (6 bytes in, 6 out)"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("stopped: the bridge's hosts left"),
        "{out:?}"
    );
    let hosts = root.hosts(&net).await;
    assert_eq!(hosts.stdout.lines().count(), 1, "{hosts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_open_past_the_grace_are_reset_and_the_bridge_exits() {
    let root = Root::new();
    let net = unique_net("bgrace");
    let echo = echo_server().await;
    let expose = format!("α:7={echo}");
    let (proc, forwards) = bridge(
        &root,
        &[
            &net,
            "--grace",
            "10ms",
            "--expose",
            &expose,
            "--forward",
            "127.0.0.1:0=β:α:7",
        ],
    )
    .await;
    let mut open = TcpStream::connect(forwards[0]).await.unwrap();
    open.write_all(b"hi").await.unwrap();
    assert_eq!(read_n(&mut open, 2).await, b"hi");
    proc.signal(Signal::TERM);
    let out = proc.finish().await;
    out.expect(0);
    assert!(
        out.stderr.contains("cut by the bridge's shutdown"),
        "{out:?}"
    );
    let err = guard("a read", open.read(&mut [0; 8])).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let hosts = root.hosts(&net).await;
    assert_eq!(hosts.stdout.lines().count(), 1, "{hosts:?}");
}

#[tokio::test]
async fn help_explains_each_form_and_bad_arguments_are_refused() {
    let root = Root::new();
    let help = root.run(&["bridge", "--help"], b"").await;
    help.expect(0);
    for form in [
        "lonet bridge NET expose α:5432 --to 127.0.0.1:5432",
        "lonet bridge NET forward 127.0.0.1:15432 --from β --to α:5432",
        "--expose α:5432=127.0.0.1:5432 --forward 127.0.0.1:15432=β:α:5432",
        "--grace",
        "SIGTERM",
    ] {
        assert!(help.stdout.contains(form), "{form:?} in {help:?}");
    }
    let help = root.run(&["bridge", "n", "expose", "--help"], b"").await;
    help.expect(0);
    assert!(
        help.stdout
            .contains("lonet bridge NET expose α:5432 --to 127.0.0.1:5432"),
        "{help:?}"
    );
    let help = root.run(&["bridge", "n", "forward", "--help"], b"").await;
    help.expect(0);
    assert!(
        help.stdout.contains("psql -h 127.0.0.1 -p 15432"),
        "{help:?}"
    );

    for (args, says) in [
        (&["bridge", "n"][..], "nothing to bridge"),
        (&["bridge", "n", "expose", "α:1"], "--to <TO>"),
        (&["bridge", "n", "--expose", "α:1"], "want HOST:PORT=TO"),
        (
            &["bridge", "n", "--forward", "127.0.0.1:1=β"],
            "want LISTEN=FROM:TO",
        ),
        (
            &[
                "bridge", "n", "forward", "nowhere", "--from", "β", "--to", "α:1",
            ],
            "nowhere",
        ),
        (
            &[
                "bridge",
                "n",
                "--grace",
                "soon",
                "--expose",
                "α:1=127.0.0.1:1",
            ],
            "soon",
        ),
    ] {
        let out = root.run(args, b"").await;
        out.expect(2);
        assert!(out.stderr.contains(says), "{args:?}: {out:?}");
    }
    let out = root
        .run(&["bridge", "n", "expose", "α:1", "--to", "127.0.0.1"], b"")
        .await;
    out.expect(1);
    assert!(
        out.stderr.contains("bridge expose α:1 to 127.0.0.1: "),
        "{out:?}"
    );
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = format!("{}=β:α:1", taken.local_addr().unwrap());
    let out = root.run(&["bridge", "n", "--forward", &at], b"").await;
    out.expect(1);
    assert!(out.stderr.contains("bridge forward "), "{out:?}");
}
