//! lonet between two network namespaces (two "machines" joined by a veth
//! pair, `virtnet_testdata::netns`) against raw TCP between the same two,
//! in one run (BENCHMARKS.md, "Across machines"):
//!
//! - a server process in namespace `a` serves host α (listening on `α:1`,
//!   the registry in PostgreSQL, its OS listener on `a`'s address) and a
//!   raw TCP listener on the same address that greets each connection with
//!   one byte as it accepts it;
//! - a client process in namespace `b` times, alternately, a lonet dial
//!   from β to `α:1` (which returns once α's listener accepted it) and a
//!   raw TCP connect plus the read of the greeting (so both include the
//!   server's accept), N of each after a warm-up.
//!
//! Needs root (namespaces) and `VIRTNET_POSTGRES_URL` (a server on
//! 127.0.0.1, as `.ci/postgres start` prints).
//!
//! `cargo run -p benches --release --bin netns [-- N | --quick]` (N = 2000).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use benches::Flavor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => return serve(&args[1]),
        Some("client") => return client(&args[1], args[2].parse().expect("N")),
        _ => {}
    }
    let n: usize = match args.first().map(String::as_str) {
        None => 2000,
        Some("--quick") => 50,
        Some(n) => n.parse().expect("usage: netns [N | --quick]"),
    };
    let url = std::env::var("VIRTNET_POSTGRES_URL")
        .expect("VIRTNET_POSTGRES_URL: a PostgreSQL server on 127.0.0.1 (.ci/postgres start DIR)");
    let ns = virtnet_testdata::netns::Namespaces::create("n")
        .unwrap_or_else(|e| panic!("network namespaces cannot be made here (root?): {e}"));
    let url = url
        .replacen("@127.0.0.1:", &format!("@{}:", ns.root_ip()), 1)
        .replacen("@localhost:", &format!("@{}:", ns.root_ip()), 1);
    let net = format!("bench{}", std::process::id());
    let exe = std::env::current_exe().expect("own path");
    let in_ns = |which: &str, bind: String, args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", which])
            .arg(&exe)
            .args(args)
            .env("LONET_REGISTRY", &url)
            .env("LONET_BIND", bind)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn in namespace")
    };
    let mut server = in_ns(&ns.a, ns.ip_of(&ns.a), &["serve", &net]);
    let mut from_server = BufReader::new(server.stdout.take().expect("stdout"));
    let mut line = String::new();
    from_server.read_line(&mut line).expect("server says ready");
    let raw = line
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("server: {line:?}"))
        .to_owned();

    let mut client = in_ns(&ns.b, ns.ip_of(&ns.b), &["client", &net, &n.to_string()]);
    let mut to_client = client.stdin.take().expect("stdin");
    writeln!(to_client, "{raw}").expect("to client");
    let mut from_client = BufReader::new(client.stdout.take().expect("stdout"));
    let mut result = String::new();
    std::io::Read::read_to_string(&mut from_client, &mut result).expect("client's report");
    assert!(client.wait().expect("client").success(), "client failed");
    drop(server.stdin.take());
    assert!(server.wait().expect("server").success(), "server failed");
    print!("{result}");
    remove_network(&url, &net);
}

/// Removes the bench's network from the database.
fn remove_network(url: &str, net: &str) {
    Flavor::Multi.runtime().block_on(async {
        if let Ok(r) = registry_postgres::PostgresRegistry::connect(url, net).await {
            let _ = r.remove_network().await;
        }
    });
}

/// The server, in namespace `a`: α listens on `α:1` and accepts (and
/// drops) connections; a raw listener beside it greets and drops. Says
/// `ready RAW_ADDR`; ends when stdin closes.
fn serve(net: &str) {
    Flavor::Multi.runtime().block_on(async {
        let subnet = lonet::Builder::new(net).join().await.expect("join");
        let alpha = subnet.new_host("α").await.expect("host α");
        let l = alpha.listen(":1").await.expect("listen");
        let bind = std::env::var("LONET_BIND").expect("LONET_BIND");
        let raw = tokio::net::TcpListener::bind((bind.as_str(), 0))
            .await
            .expect("raw listener");
        println!("ready {}", raw.local_addr().expect("raw addr"));
        let lonet = tokio::spawn(async move {
            while let Ok(c) = l.accept().await {
                drop(c);
            }
        });
        let raw = tokio::spawn(async move {
            while let Ok((mut s, _)) = raw.accept().await {
                let _ = s.write_all(b"!").await;
            }
        });
        // Until the parent closes stdin.
        let mut stdin = tokio::io::stdin();
        let mut buf = [0; 16];
        while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        lonet.abort();
        raw.abort();
        subnet.close().await.expect("close");
    });
}

/// The client, in namespace `b`: reads the raw server's address from
/// stdin, then times `n` lonet dials and `n` raw connects, alternately,
/// after 100 of each as a warm-up, and prints the table.
fn client(net: &str, n: usize) {
    let mut raw = String::new();
    std::io::stdin().read_line(&mut raw).expect("raw address");
    let raw: std::net::SocketAddr = raw.trim().parse().expect("raw address");
    let (lonet_t, raw_t) = Flavor::Multi.runtime().block_on(async {
        let subnet = lonet::Builder::new(net).join().await.expect("join");
        let beta = subnet.new_host("β").await.expect("host β");
        let mut lonet_t = Vec::with_capacity(n);
        let mut raw_t = Vec::with_capacity(n);
        for i in 0..n + 100 {
            let t = Instant::now();
            let c = beta.dial("α:1").await.expect("lonet dial");
            let lonet_d = t.elapsed();
            drop(c);
            let t = Instant::now();
            let mut s = tokio::net::TcpStream::connect(raw).await.expect("connect");
            let mut greeting = [0; 1];
            s.read_exact(&mut greeting).await.expect("greeting");
            let raw_d = t.elapsed();
            drop(s);
            if i >= 100 {
                lonet_t.push(lonet_d);
                raw_t.push(raw_d);
            }
        }
        subnet.close().await.expect("close");
        (lonet_t, raw_t)
    });
    let (l50, l99) = quantiles(lonet_t);
    let (r50, r99) = quantiles(raw_t);
    println!("dial+accept between two network namespaces (veth), {n} each, alternating:");
    println!(
        "  raw TCP (connect + 1-byte greeting)  p50 {:>8.1} µs  p99 {:>8.1} µs",
        us(r50),
        us(r99)
    );
    println!(
        "  lonet dial β -> α:1                  p50 {:>8.1} µs  p99 {:>8.1} µs",
        us(l50),
        us(l99)
    );
    println!(
        "  ratio lonet/raw                      p50 {:>8.2}×    p99 {:>8.2}×",
        us(l50) / us(r50),
        us(l99) / us(r99)
    );
}

fn quantiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at = |q: f64| v[(((v.len() - 1) as f64) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
