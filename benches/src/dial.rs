//! The dial+accept latency section and its contenders: raw TCP, pipenet,
//! lonet in one process or with the dialer in another, raw TCP with a
//! lonet-sized line each way, and turmoil.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::args::{run_on, Flavor, Sizes};
use crate::child::remote_dials;
use crate::stats::{us, Samples};

/// Times `n` dial+accept pairs after `warmup` untimed ones; both ends are
/// dropped (closed) after each.
pub(crate) async fn time_dials<F, Fut>(warmup: usize, n: usize, mut one: F) -> Samples
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..warmup {
        one().await;
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        one().await;
        v.push(t.elapsed());
    }
    Samples(v)
}

/// Raw TCP: `n` timed connect+accept pairs on 127.0.0.1.
pub async fn dial_tcp(warmup: usize, n: usize) -> Samples {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    time_dials(warmup, n, || async {
        let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
        drop((c.unwrap(), s.unwrap()));
    })
    .await
}

/// pipenet: `n` timed dial+accept pairs, β to α:10.
pub async fn dial_pipenet(warmup: usize, n: usize) -> Samples {
    dial_hosts(
        pipenet::Network::new("dialbench").subnetwork().clone(),
        warmup,
        n,
    )
    .await
}

/// Dials α:10 from β on `net`, both hosts made here, then closes `net`.
async fn dial_hosts(net: virtnet_core::SubNetwork, warmup: usize, n: usize) -> Samples {
    let a = net.new_host("α").await.unwrap();
    let b = net.new_host("β").await.unwrap();
    let l = a.listen(":10").await.unwrap();
    let s = time_dials(warmup, n, || async {
        let (c, s) = tokio::try_join!(b.dial("α:10"), l.accept()).unwrap();
        drop((c, s));
    })
    .await;
    net.close().await.unwrap();
    s
}

/// lonet, both hosts in this process (`ram_registry`: with pipenet's
/// in-memory registry instead of SQLite): `n` timed dial+accept pairs.
pub async fn dial_lonet(
    root: std::path::PathBuf,
    ram_registry: bool,
    warmup: usize,
    n: usize,
) -> Samples {
    let mut builder = lonet::Builder::new("dialbench").root(&root);
    if ram_registry {
        builder = builder.registry(Arc::new(pipenet::RamRegistry::new("lonetdialbench")));
    }
    dial_hosts(builder.join().await.unwrap(), warmup, n).await
}

/// lonet with the dialing host in a child process: the child times its
/// dials (a dial completes when this process's listener accepts it).
pub async fn dial_lonet_remote(
    root: std::path::PathBuf,
    flavor: Flavor,
    warmup: usize,
    n: usize,
) -> Samples {
    let net = lonet::Builder::new("remotebench")
        .root(&root)
        .join()
        .await
        .unwrap();
    let a = net.new_host("α").await.unwrap();
    let l = a.listen(":10").await.unwrap();
    let acceptor = tokio::spawn(async move {
        while let Ok(c) = l.accept().await {
            drop(c);
        }
    });
    let target = root.to_string_lossy().into_owned();
    let samples = remote_dials("lonet", target, flavor, warmup, n).await;
    acceptor.abort();
    net.close().await.unwrap();
    samples
}

/// The floor under a dial across processes: raw TCP connect, a request
/// line and a reply line, the connecting side in a child process (what a
/// lonet dial does on the wire, without lonet).
pub async fn dial_tcp_line_remote(flavor: Flavor, warmup: usize, n: usize) -> Samples {
    use tokio::io::AsyncReadExt;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            s.set_nodelay(true).unwrap();
            if read_line_from(&mut s).await && s.write_all(REPLY).await.is_err() {
                continue;
            }
            // wait for the dialer to close, as a lonet acceptor's conn would
            let _ = s.read(&mut [0; 1]).await;
        }
    });
    let samples = remote_dials("tcp-line", addr.to_string(), flavor, warmup, n).await;
    acceptor.abort();
    samples
}

/// Raw TCP with a lonet-sized line each way, both ends in one task: what
/// lonet's wire protocol costs a dial without lonet (for profiling; the
/// report's baseline is [`dial_tcp`]).
pub async fn dial_tcp_line(warmup: usize, n: usize) -> Samples {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    time_dials(warmup, n, || async {
        let dial = async {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.set_nodelay(true).unwrap();
            c.write_all(REQUEST).await.unwrap();
            assert!(read_line_from(&mut c).await, "reply line");
            c
        };
        let accept = async {
            let (mut s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            assert!(read_line_from(&mut s).await, "request line");
            s.write_all(REPLY).await.unwrap();
            s
        };
        drop(tokio::join!(dial, accept));
    })
    .await
}

/// The request and reply lines of [`dial_tcp_line_remote`] and [`dial_tcp_line`], as long as lonet's.
pub(crate) const REQUEST: &[u8] =
    b"lonet \"lonetremotebench\" dial \"\xce\xb2:1\" \"\xce\xb1:10\"\n";
const REPLY: &[u8] = b"lonet \"lonetremotebench\" connected \"\xce\xb1:2\"\n";

/// Reads up to a `\n` (false at end of stream).
pub(crate) async fn read_line_from(s: &mut TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0; 128];
    let mut got = 0;
    while !buf[..got].contains(&b'\n') {
        match s.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => return false,
            Ok(k) => got += k,
        }
    }
    true
}

/// turmoil: wall-clock time of each connect, as seen by the client, with
/// the server accepting in a loop (zero simulated latency).
pub fn dial_turmoil(warmup: usize, n: usize) -> Samples {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(365 * 24 * 3600))
        .min_message_latency(Duration::ZERO)
        .max_message_latency(Duration::ZERO)
        .build();
    sim.host("server", || async {
        let l = turmoil::net::TcpListener::bind("0.0.0.0:10").await?;
        loop {
            let (s, _) = l.accept().await?;
            drop(s);
        }
    });
    let out = Arc::new(Mutex::new(Vec::new()));
    let out2 = out.clone();
    sim.client("client", async move {
        for i in 0..warmup + n {
            let t = Instant::now();
            let s = turmoil::net::TcpStream::connect("server:10").await?;
            let e = t.elapsed();
            drop(s);
            if i >= warmup {
                out2.lock().unwrap().push(e);
            }
        }
        Ok(())
    });
    sim.run().unwrap();
    let v = std::mem::take(&mut *out.lock().unwrap());
    Samples(v)
}

pub(crate) fn dial_section(sz: &Sizes) {
    println!(
        "\n## dial+accept latency\n\n{} timed dials per contender (in {} rounds, the \
         contenders taking turns, each round after {} untimed dials); each dial is awaited \
         together with its accept, then both ends are closed.\n",
        sz.dials, sz.rounds, sz.dial_warmup
    );
    println!("| contender | runtime | median µs | p99 µs | median / raw TCP |");
    println!("|---|---|---:|---:|---:|");
    let tmp = tempfile::tempdir().unwrap();
    let (w, n) = (sz.dial_warmup, sz.dials / sz.rounds);
    const NAMES: [&str; 6] = [
        "raw TCP 127.0.0.1",
        "pipenet",
        "lonet (two hosts, one process)",
        "lonet (dialer in another process)",
        "lonet, in-memory registry instead of SQLite (for comparison)",
        "raw TCP + a line each way, dialer in another process (for comparison)",
    ];
    for flavor in Flavor::ALL {
        let root = tmp.path().join(flavor.arg());
        std::fs::create_dir_all(&root).unwrap();
        let mut all: Vec<Samples> = NAMES.iter().map(|_| Samples(Vec::new())).collect();
        for _ in 0..sz.rounds {
            for (i, s) in all.iter_mut().enumerate() {
                let r = root.clone();
                let got = match i {
                    0 => run_on(flavor, move || dial_tcp(w, n)),
                    1 => run_on(flavor, move || dial_pipenet(w, n)),
                    2 => run_on(flavor, move || dial_lonet(r, false, w, n)),
                    3 => run_on(flavor, move || dial_lonet_remote(r, flavor, w, n)),
                    4 => run_on(flavor, move || dial_lonet(r, true, w, n)),
                    _ => run_on(flavor, move || dial_tcp_line_remote(flavor, w, n)),
                };
                s.0.extend(got.0);
            }
        }
        let base = all[0].median();
        for (name, s) in NAMES.iter().zip(&all) {
            println!(
                "| {name} | {} | {:.2} | {:.2} | {:.2}× |",
                flavor.name(),
                us(s.median()),
                us(s.p99()),
                s.median().as_secs_f64() / base.as_secs_f64()
            );
        }
    }
    let t = dial_turmoil(w, sz.dials);
    println!(
        "| turmoil 0.7 (wall clock, zero simulated latency) | its own | {:.2} | {:.2} | |",
        us(t.median()),
        us(t.p99())
    );
}
