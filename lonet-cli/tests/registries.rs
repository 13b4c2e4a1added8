//! The `lonet` command with its networks in PostgreSQL (`--registry`,
//! `LONET_REGISTRY`), and with its OS listener on chosen addresses
//! (`--bind`, `--announce`).

mod common;

use common::{unique_net, Root};
use rustix::process::Signal;

/// listen, dial, ls, hosts, fault, rm: all through the database.
#[tokio::test]
async fn every_command_works_with_a_postgres_registry() {
    let root = Root::postgres();
    let net = unique_net("cli");
    let (listener, addr) = root.listen(&[&net, "α", ":10", "--echo"]).await;
    assert_eq!(addr, "α:10");

    let out = root
        .run(&["dial", &net, "β", "α:10"], b"over postgres")
        .await;
    out.expect(0);
    assert_eq!(out.stdout, "over postgres");
    assert!(out.stderr.contains("connected β:1 -> α:1"), "{out:?}");

    let ls = root.run(&["ls"], b"").await;
    ls.expect(0);
    assert_eq!(ls.stdout.lines().next(), Some("NETWORK\tHOSTS"));
    assert!(
        ls.stdout.lines().any(|l| l == format!("{net}\t1")),
        "{ls:?}"
    );

    let hosts = root.hosts(&net).await;
    let alpha = hosts.line("α\t").expect("α listed");
    assert!(alpha.starts_with("α\t127.0.0.1:"), "{alpha:?}");
    assert!(alpha.ends_with("\talive"), "{alpha:?}");

    root.run(&["fault", &net, "partition", "α", "β"], b"")
        .await
        .expect(0);
    let faults = root.run(&["fault", &net, "ls"], b"").await;
    faults.expect(0);
    assert!(faults.stdout.contains("partition"), "{faults:?}");
    root.run(&["fault", &net, "heal"], b"").await.expect(0);

    let busy = root.run(&["rm", &net], b"").await;
    busy.expect(1);
    assert!(busy.stderr.contains("alive or may be (α)"), "{busy:?}");

    listener.signal(Signal::TERM);
    listener.finish().await.expect(0);
    assert!(root.hosts(&net).await.line("α").is_none());
    let rm = root.run(&["rm", &net], b"").await;
    rm.expect(0);
    assert!(
        rm.stderr.contains(&format!("removed network {net}")),
        "{rm:?}"
    );
    let ls = root.run(&["ls"], b"").await;
    assert!(!ls.stdout.contains(&net), "{ls:?}");
    // Gone: the commands that need it say so, with the "no network" code.
    let gone = root.run(&["hosts", &net], b"").await;
    gone.expect(3);
    assert!(
        gone.stderr
            .contains(&format!("no network {net:?} in postgres://")),
        "{gone:?}"
    );
    root.run(&["dial", &net, "β", "α:10"], b"").await.expect(3);
    root.run(&["rm", &net], b"").await.expect(3);
}

/// Without `--registry`, `LONET_REGISTRY` chooses the registry.
#[tokio::test]
async fn lonet_registry_in_the_environment_chooses_postgres() {
    let root = Root::postgres();
    let net = unique_net("env");
    let (listener, _) = root.listen(&[&net, "α"]).await;
    // A bare `lonet` (the harness's passes --registry).
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lonet"))
        .args(["hosts", &net])
        .env("LONET_REGISTRY", root.registry_url())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("α\t")), "{stdout}");
    listener.signal(Signal::TERM);
    listener.finish().await.expect(0);
    // In a database a network is its rows: with its last host gone (and no
    // faults kept), it is gone too.
    root.run(&["hosts", &net], b"").await.expect(3);
}

/// Bad registry options are usage errors, naming what is wrong and never
/// printing a password.
#[tokio::test]
async fn bad_registry_options_are_usage_errors() {
    let root = Root::new();
    // A bare `lonet` (the harness's passes --root).
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lonet"))
        .args(["--registry", "mysql://u:secret@h/db", "ls"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown registry URL scheme \"mysql\""),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
    // --root (which `Root` passes) and --registry exclude each other.
    let out = root.run(&["--registry", "sqlite:", "ls"], b"").await;
    out.expect(2);
    assert!(out.stderr.contains("cannot be used with"), "{out:?}");
    let out = root.run(&["--bind", "here", "ls"], b"").await;
    out.expect(2);
    assert!(
        out.stderr.contains("is not an IP address or IP:PORT"),
        "{out:?}"
    );
}

/// `--bind` puts the OS listener on another address, and the registry
/// says so; `--announce` tells peers another address than the one bound;
/// a listener on every address with nothing to announce is refused.
#[tokio::test]
async fn bind_and_announce_choose_the_os_address() {
    let root = Root::new();
    let (bound, _) = root
        .listen(&["--bind", "127.0.0.2", "addrs", "α", ":1", "--echo"])
        .await;
    let hosts = root.hosts("addrs").await;
    assert!(hosts.line("α\t127.0.0.2:").is_some(), "{hosts:?}");

    let (announced, _) = root
        .listen(&[
            "--bind",
            "0.0.0.0",
            "--announce",
            "127.0.0.3",
            "addrs",
            "γ",
            ":1",
            "--echo",
        ])
        .await;
    let hosts = root.hosts("addrs").await;
    assert!(hosts.line("γ\t127.0.0.3:").is_some(), "{hosts:?}");
    // Peers dial the announced address, which reaches the listener on 0.0.0.0.
    let out = root.run(&["dial", "addrs", "β", "γ:1"], b"via .3").await;
    out.expect(0);
    assert_eq!(out.stdout, "via .3");
    let out = root.run(&["dial", "addrs", "δ", "α:1"], b"via .2").await;
    out.expect(0);
    assert_eq!(out.stdout, "via .2");

    let refused = root
        .run(&["listen", "--bind", "0.0.0.0", "addrs", "ε"], b"")
        .await;
    refused.expect(1);
    assert!(refused.stderr.contains("peers cannot dial"), "{refused:?}");
    assert!(root.hosts("addrs").await.line("ε").is_none());

    for p in [bound, announced] {
        p.signal(Signal::TERM);
        p.finish().await.expect(0);
    }
}

/// The demo runs on a PostgreSQL registry too, and leaves nothing there.
#[tokio::test]
async fn demo_runs_on_postgres() {
    let root = Root::postgres();
    let out = root.run(&["demo"], b"").await;
    out.expect(0);
    assert!(out.stdout.contains("connected β:1 -> α:1"), "{out:?}");
    let net = out
        .stdout
        .split("a fresh network lonet")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the demo names its network")
        .to_owned();
    let ls = root.run(&["ls"], b"").await;
    ls.expect(0);
    assert!(!ls.stdout.contains(&net), "{ls:?}");
}
