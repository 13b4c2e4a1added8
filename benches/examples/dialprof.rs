//! A dial loop to run under a profiler (`perf stat`, `perf record`,
//! `strace -c -f`, `valgrind --tool=callgrind`): N dial+accept pairs of one
//! contender, nothing else, then the mean time per dial on stderr.
//!
//! ```text
//! cargo build -p benches --release --example dialprof
//! perf stat -e context-switches target/release/examples/dialprof multi lonet 20000
//! strace -f -c target/release/examples/dialprof current lonet-remote 5000
//! ```
//!
//! Runtimes: `multi` (2 workers), `current`. Contenders:
//! - `tcp`: raw TCP connect + accept in one task, as in the report;
//! - `tcp-line`: the same plus a request line and a reply line, as lonet's
//!   handshake sends them;
//! - `lonet`, `lonet-ram`: lonet, two hosts in this process (SQLite or
//!   in-memory registry);
//! - `lonet-remote`: lonet with the dialer in a child process (this binary
//!   again), which prints its own mean;
//! - `tcp-line-remote`: the floor under that: raw TCP connect, a request
//!   line and a reply line, the connecting side in a child process.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REQUEST: &[u8] = "lonet \"lonetprof\" dial \"β:1\" \"α:10\"\n".as_bytes();
const REPLY: &[u8] = "lonet \"lonetprof\" connected \"α:2\"\n".as_bytes();

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flavor, contender, n, rest @ ..] = args.as_slice() else {
        eprintln!("usage: dialprof multi|current CONTENDER N   (see the source)");
        return ExitCode::from(2);
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("N must be a number");
        return ExitCode::from(2);
    };
    let rt = match flavor.as_str() {
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (flavor, contender, rest) = (flavor.clone(), contender.clone(), rest.to_vec());
    let root = tmp.path().to_owned();
    rt.block_on(async move {
        tokio::spawn(async move { run(&flavor, &contender, n, &rest, root).await })
            .await
            .expect("dial loop")
    });
    ExitCode::SUCCESS
}

async fn run(flavor: &str, contender: &str, n: usize, rest: &[String], root: PathBuf) {
    let t = Instant::now();
    match contender {
        "tcp" => {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            for _ in 0..n {
                let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
                drop((c.unwrap(), s.unwrap()));
            }
        }
        "tcp-line" => {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            for _ in 0..n {
                let dial = async {
                    let mut c = TcpStream::connect(addr).await.unwrap();
                    c.set_nodelay(true).unwrap();
                    c.write_all(REQUEST).await.unwrap();
                    read_line(&mut c).await;
                    c
                };
                let accept = async {
                    let (mut s, _) = l.accept().await.unwrap();
                    s.set_nodelay(true).unwrap();
                    read_line(&mut s).await;
                    s.write_all(REPLY).await.unwrap();
                    s
                };
                drop(tokio::join!(dial, accept));
            }
        }
        "lonet" | "lonet-ram" => {
            let mut b = lonet::Builder::new("prof").root(&root);
            if contender == "lonet-ram" {
                b = b.registry(Arc::new(pipenet::RamRegistry::new("lonetprof")));
            }
            let net = b.join().await.unwrap();
            let alpha = net.new_host("α").await.unwrap();
            let beta = net.new_host("β").await.unwrap();
            let l = alpha.listen(":10").await.unwrap();
            for _ in 0..n {
                let (c, s) = tokio::try_join!(beta.dial("α:10"), l.accept()).unwrap();
                drop((c, s));
            }
            net.close().await.unwrap();
        }
        "lonet-remote" => {
            let net = lonet::Builder::new("prof")
                .root(&root)
                .join()
                .await
                .unwrap();
            let alpha = net.new_host("α").await.unwrap();
            let l = alpha.listen(":10").await.unwrap();
            let accept = tokio::spawn(async move {
                while let Ok(c) = l.accept().await {
                    drop(c);
                }
            });
            child(flavor, "lonet-child", n, &root.to_string_lossy()).await;
            accept.abort();
            net.close().await.unwrap();
            return;
        }
        "lonet-child" => {
            let root = Path::new(&rest[0]);
            let net = lonet::Builder::new("prof").root(root).join().await.unwrap();
            let beta = net.new_host("β").await.unwrap();
            let t = Instant::now();
            for _ in 0..n {
                drop(beta.dial("α:10").await.unwrap());
            }
            report("lonet-remote", t, n);
            net.close().await.unwrap();
            return;
        }
        "tcp-line-remote" => {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap().to_string();
            let accept = tokio::spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    s.set_nodelay(true).unwrap();
                    read_line(&mut s).await;
                    s.write_all(REPLY).await.unwrap();
                }
            });
            child(flavor, "tcp-line-child", n, &addr).await;
            accept.abort();
            return;
        }
        "tcp-line-child" => {
            let t = Instant::now();
            for _ in 0..n {
                let mut c = TcpStream::connect(&rest[0]).await.unwrap();
                c.set_nodelay(true).unwrap();
                c.write_all(REQUEST).await.unwrap();
                read_line(&mut c).await;
            }
            report("tcp-line-remote", t, n);
            return;
        }
        other => panic!("unknown contender {other:?}"),
    }
    report(contender, t, n);
}

/// Runs this binary as the dialing child and waits for it.
async fn child(flavor: &str, contender: &str, n: usize, arg: &str) {
    let exe = std::env::current_exe().unwrap();
    let status = tokio::process::Command::new(exe)
        .args([flavor, contender, &n.to_string(), arg])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "{contender}: {status}");
}

async fn read_line(s: &mut TcpStream) {
    let mut buf = [0_u8; 128];
    let mut got = 0;
    while !buf[..got].contains(&b'\n') {
        let k = s.read(&mut buf[got..]).await.unwrap();
        assert!(k > 0, "end of stream before the line ended");
        got += k;
    }
}

fn report(contender: &str, t: Instant, n: usize) {
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    eprintln!("{contender}: {us:.1} µs per dial (mean of {n})");
}
