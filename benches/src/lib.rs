//! virtnet benchmarks: pipenet and lonet side by side with raw loopback TCP,
//! `tokio::io::duplex` and turmoil, every contender measured in the same
//! process and run, and reported as ratios to the baselines of that run.
//!
//! `cargo bench -p benches` (or `cargo run -p benches --release --bin
//! report`) runs everything and prints one table per measure; `--quick`
//! (also `--test`, as criterion spells it) runs each measure once with tiny
//! sizes, for CI. Names after the flags pick sections: `dial`, `throughput`,
//! `pingpong`, `scale`.
//!
//! The binary re-executes itself (`--child ...`) for the lonet dialer in
//! another process and for each scale run, which gets a fresh process so its
//! peak RSS is its own.

use std::future::Future;
use std::io::{BufRead, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// A kibibyte.
pub const KIB: usize = 1024;
/// A mebibyte.
pub const MIB: usize = 1024 * KIB;
const GIB: usize = 1024 * MIB;

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Timed dials per contender (after `dial_warmup` untimed ones).
    pub dials: usize,
    /// Untimed dials before the timed ones.
    pub dial_warmup: usize,
    /// Bytes streamed over one connection.
    pub stream_bytes: usize,
    /// Bytes streamed over turmoil (its simulation is slow).
    pub turmoil_bytes: usize,
    /// Round trips in the ping-pong.
    pub round_trips: usize,
    /// Rounds in which the contenders take turns (noise shows as spread).
    pub rounds: usize,
    /// Idle pairs on pipenet.
    pub pipenet_pairs: &'static [usize],
    /// Idle pairs on lonet.
    pub lonet_pairs: &'static [usize],
}

impl Sizes {
    /// The sizes of the issue.
    pub const FULL: Sizes = Sizes {
        dials: 2_000,
        dial_warmup: 200,
        stream_bytes: GIB,
        turmoil_bytes: 64 * MIB,
        round_trips: 50_000,
        rounds: 4,
        pipenet_pairs: &[1_000, 10_000, 100_000],
        lonet_pairs: &[1_000, 5_000],
    };
    /// Smoke test: everything once, tiny.
    pub const QUICK: Sizes = Sizes {
        dials: 20,
        dial_warmup: 2,
        stream_bytes: 4 * MIB,
        turmoil_bytes: MIB,
        round_trips: 100,
        rounds: 1,
        pipenet_pairs: &[100],
        lonet_pairs: &[20],
    };
}

/// The size of each write in the throughput measure.
pub const WRITE_SIZE: usize = 64 * KIB;

/// Entry point of the report binaries.
pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick" || a == "--test");
    let sections: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let want = |s: &str| sections.is_empty() || sections.contains(&s);
    let mut sizes = if quick { Sizes::QUICK } else { Sizes::FULL };
    if let Some(r) = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        sizes.rounds = r;
    }
    println!(
        "# virtnet benchmarks{}\n\nmachine: {} CPUs, {}; load average before: {}",
        if quick {
            " (quick mode: smoke only)"
        } else {
            ""
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        loadavg()
    );
    if want("dial") {
        dial_section(&sizes);
    }
    if want("throughput") {
        throughput_section(&sizes, false);
    } else if sections.contains(&"throughput-mem") {
        throughput_section(&sizes, true);
    }
    if want("pingpong") {
        pingpong_section(&sizes);
    }
    if want("scale") {
        scale_section(&sizes);
    }
    println!("\nload average after: {}", loadavg());
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------- runtimes

/// The runtimes every async measure runs on.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Flavor {
    /// A multi-thread runtime with 2 workers.
    Multi,
    /// A current-thread runtime.
    Current,
}

impl Flavor {
    /// Both, in report order.
    pub const ALL: [Flavor; 2] = [Flavor::Multi, Flavor::Current];

    fn name(self) -> &'static str {
        match self {
            Flavor::Multi => "multi-thread (2 workers)",
            Flavor::Current => "current-thread",
        }
    }

    /// The flavor [`arg`](Self::arg) names, if any.
    pub fn from_arg(arg: &str) -> Option<Flavor> {
        Flavor::ALL.into_iter().find(|f| f.arg() == arg)
    }

    /// A short name: `multi`, `current`.
    pub fn arg(self) -> &'static str {
        match self {
            Flavor::Multi => "multi",
            Flavor::Current => "current",
        }
    }

    fn runtime(self) -> Runtime {
        match self {
            Flavor::Multi => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
            Flavor::Current => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
        .expect("tokio runtime")
    }
}

/// Runs `f` on a fresh runtime of `flavor`, inside a spawned task (so that
/// on the multi-thread runtime it runs on a worker, not on this thread).
pub fn run_on<F, Fut, T>(flavor: Flavor, f: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let rt = flavor.runtime();
    let fut = f();
    rt.block_on(async move { tokio::spawn(fut).await.expect("bench task") })
}

// ---------------------------------------------------------------- stats

/// Latency samples.
pub struct Samples(pub Vec<Duration>);

impl Samples {
    /// Their sum.
    pub fn total(&self) -> Duration {
        self.0.iter().sum()
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i]
    }
    fn median(&self) -> Duration {
        self.quantile(0.5)
    }
    fn p99(&self) -> Duration {
        self.quantile(0.99)
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

// ---------------------------------------------------------------- dial

/// Times `n` dial+accept pairs after `warmup` untimed ones; both ends are
/// dropped (closed) after each.
async fn time_dials<F, Fut>(warmup: usize, n: usize, mut one: F) -> Samples
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
const REQUEST: &[u8] = b"lonet \"lonetremotebench\" dial \"\xce\xb2:1\" \"\xce\xb1:10\"\n";
const REPLY: &[u8] = b"lonet \"lonetremotebench\" connected \"\xce\xb1:2\"\n";

/// Reads up to a `\n` (false at end of stream).
async fn read_line_from(s: &mut TcpStream) -> bool {
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

/// Runs a dialer child of `kind` against `target` and collects its timings.
async fn remote_dials(
    kind: &'static str,
    target: String,
    flavor: Flavor,
    warmup: usize,
    n: usize,
) -> Samples {
    let exe = std::env::current_exe().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(exe)
            .args(["--child", "dialer", kind])
            .arg(&target)
            .arg("remotebench")
            .arg(flavor.arg())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut to = child.stdin.take().unwrap();
        let mut from = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        from.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{kind} dialer child");
        writeln!(to, "dial {warmup} {n}").unwrap();
        line.clear();
        from.read_line(&mut line).unwrap();
        let v: Vec<Duration> = line
            .split_whitespace()
            .skip(1)
            .map(|t| Duration::from_nanos(t.parse().unwrap()))
            .collect();
        drop(to);
        assert!(child.wait().unwrap().success());
        Samples(v)
    })
    .await
    .unwrap()
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

fn dial_section(sz: &Sizes) {
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

/// Median, min and max of some rates.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

// ---------------------------------------------------------------- throughput

/// Streams `total` bytes in `WRITE_SIZE` writes from `w` to `r` (two tasks);
/// returns the time until the reader has them all.
pub async fn stream<W, R>(mut w: W, mut r: R, total: usize) -> Duration
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5a_u8; WRITE_SIZE];
        let mut left = total;
        while left > 0 {
            let k = left.min(WRITE_SIZE);
            w.write_all(&chunk[..k]).await.unwrap();
            left -= k;
        }
        w
    });
    let reader = tokio::spawn(async move {
        let mut buf = vec![0_u8; WRITE_SIZE];
        let mut got = 0;
        while got < total {
            let k = r.read(&mut buf).await.unwrap();
            assert!(k > 0, "early end of stream");
            got += k;
        }
        r
    });
    let (w, r) = tokio::join!(writer, reader);
    let e = t.elapsed();
    drop((w.unwrap(), r.unwrap()));
    e
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(l.local_addr().unwrap()), l.accept());
    let (c, s) = (c.unwrap(), s.unwrap().0);
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    (c, s)
}

async fn pipenet_pair(net: &pipenet::Network) -> (virtnet_core::Conn, virtnet_core::Conn) {
    let a = net.new_host("α").await.unwrap();
    let b = net.new_host("β").await.unwrap();
    let l = a.listen("").await.unwrap();
    let addr = l.local_addr().to_string();
    tokio::try_join!(b.dial(&addr), l.accept()).unwrap()
}

async fn lonet_pair(net: &virtnet_core::SubNetwork) -> (virtnet_core::Conn, virtnet_core::Conn) {
    let a = match net.host("α") {
        Some(h) => h,
        None => net.new_host("α").await.unwrap(),
    };
    let b = match net.host("β") {
        Some(h) => h,
        None => net.new_host("β").await.unwrap(),
    };
    let l = a.listen("").await.unwrap();
    let addr = l.local_addr().to_string();
    tokio::try_join!(b.dial(&addr), l.accept()).unwrap()
}

/// The kinds of connection measured for throughput and ping-pong.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Raw TCP on 127.0.0.1.
    Tcp,
    /// `tokio::io::duplex` with this capacity.
    Duplex(usize),
    /// pipenet with its default settings.
    Pipenet,
    /// pipenet with another pipe capacity (for comparison).
    PipenetCap(usize),
    /// lonet, both hosts in this process.
    Lonet,
}

impl Kind {
    /// The report's name for it.
    pub fn name(self) -> String {
        match self {
            Kind::Tcp => "raw TCP 127.0.0.1".into(),
            Kind::Duplex(c) => format!("tokio::io::duplex {} KiB", c / KIB),
            Kind::Pipenet => "pipenet (default settings)".into(),
            Kind::PipenetCap(c) => format!("pipenet, {} KiB pipe capacity", c / KIB),
            Kind::Lonet => "lonet".into(),
        }
    }

    /// A short name for criterion: `raw_tcp`, `duplex_64KiB`, …
    pub fn id(self) -> String {
        match self {
            Kind::Tcp => "raw_tcp".into(),
            Kind::Duplex(c) => format!("duplex_{}KiB", c / KIB),
            Kind::Pipenet => "pipenet".into(),
            Kind::PipenetCap(c) => format!("pipenet_{}KiB", c / KIB),
            Kind::Lonet => "lonet".into(),
        }
    }

    /// Runs `f` on a connected pair of this kind.
    pub async fn with_pair<F, Fut, T>(self, root: std::path::PathBuf, f: F) -> T
    where
        F: FnOnce(BoxIo, BoxIo) -> Fut,
        Fut: Future<Output = T>,
    {
        match self {
            Kind::Tcp => {
                let (c, s) = tcp_pair().await;
                f(Box::new(c), Box::new(s)).await
            }
            Kind::Duplex(cap) => {
                let (c, s) = tokio::io::duplex(cap);
                f(Box::new(c), Box::new(s)).await
            }
            Kind::Pipenet | Kind::PipenetCap(_) => {
                let net = match self {
                    Kind::PipenetCap(c) => pipenet::Network::builder("streambench")
                        .pipe_capacity(c)
                        .build(),
                    _ => pipenet::Network::new("streambench"),
                };
                let (c, s) = pipenet_pair(&net).await;
                let out = f(Box::new(c), Box::new(s)).await;
                net.close().await.unwrap();
                out
            }
            Kind::Lonet => {
                let net = lonet::Builder::new("streambench")
                    .root(&root)
                    .join()
                    .await
                    .unwrap();
                let (c, s) = lonet_pair(&net).await;
                let out = f(Box::new(c), Box::new(s)).await;
                net.close().await.unwrap();
                out
            }
        }
    }
}

/// A connection end of any kind.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}
/// A boxed connection end.
pub type BoxIo = Box<dyn Io>;

/// Every kind, in report order.
pub const KINDS: [Kind; 7] = [
    Kind::Tcp,
    Kind::Duplex(64 * KIB),
    Kind::Duplex(256 * KIB),
    Kind::Duplex(MIB),
    Kind::Pipenet,
    Kind::PipenetCap(MIB),
    Kind::Lonet,
];

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

/// turmoil: wall-clock time to stream `total` bytes client → server, until
/// the server acknowledges having read them all.
fn stream_turmoil(total: usize) -> Duration {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(365 * 24 * 3600))
        .min_message_latency(Duration::ZERO)
        .max_message_latency(Duration::ZERO)
        .build();
    sim.host("server", move || async move {
        let l = turmoil::net::TcpListener::bind("0.0.0.0:10").await?;
        let (mut s, _) = l.accept().await?;
        let mut buf = vec![0_u8; WRITE_SIZE];
        let mut got = 0;
        while got < total {
            let k = s.read(&mut buf).await?;
            assert!(k > 0);
            got += k;
        }
        s.write_all(b"!").await?;
        std::future::pending::<()>().await;
        Ok(())
    });
    let out = Arc::new(Mutex::new(Duration::ZERO));
    let out2 = out.clone();
    sim.client("client", async move {
        let mut s = turmoil::net::TcpStream::connect("server:10").await?;
        let chunk = vec![0x5a_u8; WRITE_SIZE];
        let t = Instant::now();
        let mut left = total;
        while left > 0 {
            let k = left.min(WRITE_SIZE);
            s.write_all(&chunk[..k]).await?;
            left -= k;
        }
        let mut ack = [0_u8; 1];
        s.read_exact(&mut ack).await?;
        *out2.lock().unwrap() = t.elapsed();
        Ok(())
    });
    sim.run().unwrap();
    let d = *out.lock().unwrap();
    d
}

/// `mem_only`: only the in-memory contenders (duplex, pipenet), for quick
/// comparisons while working on the pipe.
fn throughput_section(sz: &Sizes, mem_only: bool) {
    println!(
        "\n## stream throughput\n\n{} MiB in {} KiB writes over one connection, writer and \
         reader in two tasks; GB/s = 10^9 bytes/s; {} rounds, the contenders taking turns. \
         Ratios are of medians.\n",
        sz.stream_bytes / MIB,
        WRITE_SIZE / KIB,
        sz.rounds
    );
    println!(
        "| contender | runtime | GB/s median (min–max of {}) | / raw TCP | / best duplex |",
        sz.rounds
    );
    println!("|---|---|---:|---:|---:|");
    let tmp = tempfile::tempdir().unwrap();
    let total = sz.stream_bytes;
    for flavor in Flavor::ALL {
        let mut rates: Vec<Vec<f64>> = KINDS.iter().map(|_| Vec::new()).collect();
        for _ in 0..sz.rounds {
            for (kind, r) in KINDS.into_iter().zip(&mut rates) {
                if mem_only && matches!(kind, Kind::Tcp | Kind::Lonet) {
                    r.push(f64::NAN);
                    continue;
                }
                let root = tmp.path().to_owned();
                let d = run_on(flavor, move || async move {
                    kind.with_pair(root, |c, s| stream(c, s, total)).await
                });
                r.push(gbps(total, d));
            }
        }
        let med: Vec<f64> = rates.iter().map(|r| spread(r).0).collect();
        let tcp = med[0];
        let best_duplex = KINDS
            .iter()
            .zip(&med)
            .filter(|(k, _)| matches!(k, Kind::Duplex(_)))
            .map(|(_, &m)| m)
            .fold(0.0, f64::max);
        for (kind, r) in KINDS.into_iter().zip(&rates) {
            let (m, lo, hi) = spread(r);
            println!(
                "| {} | {} | {:.2} ({:.2}–{:.2}) | {:.2}× | {:.2}× |",
                kind.name(),
                flavor.name(),
                m,
                lo,
                hi,
                m / tcp,
                m / best_duplex
            );
        }
    }
    if mem_only {
        return;
    }
    let d = stream_turmoil(sz.turmoil_bytes);
    println!(
        "| turmoil 0.7 ({} MiB, wall clock, zero simulated latency) | its own | {:.3} | | |",
        sz.turmoil_bytes / MIB,
        gbps(sz.turmoil_bytes, d)
    );
}

// ---------------------------------------------------------------- ping-pong

/// `n` 1-byte request/response round trips; returns round trips per second.
/// `n` round trips of 1 byte from `c` to `s` and back; the time they took.
pub async fn pingpong(mut c: BoxIo, mut s: BoxIo, n: usize) -> Duration {
    let server = tokio::spawn(async move {
        let mut b = [0_u8; 1];
        for _ in 0..n {
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        }
        s
    });
    let client = tokio::spawn(async move {
        let mut b = [7_u8; 1];
        let t = Instant::now();
        for _ in 0..n {
            c.write_all(&b).await.unwrap();
            c.read_exact(&mut b).await.unwrap();
        }
        (t.elapsed(), c)
    });
    let ((d, c), s) = (client.await.unwrap(), server.await.unwrap());
    drop((c, s));
    d
}

fn pingpong_section(sz: &Sizes) {
    println!(
        "\n## ping-pong\n\n{} round trips of 1 byte each way on one connection (client \
         and echoing server in two tasks).\n",
        sz.round_trips
    );
    println!(
        "| contender | runtime | round trips/s median (min–max of {}) | µs per round trip | / raw TCP |",
        sz.rounds
    );
    println!("|---|---|---:|---:|---:|");
    let tmp = tempfile::tempdir().unwrap();
    let n = sz.round_trips;
    for flavor in Flavor::ALL {
        let kinds: Vec<Kind> = KINDS
            .into_iter()
            .filter(|k| !matches!(k, Kind::PipenetCap(_)))
            .collect();
        let mut rates: Vec<Vec<f64>> = kinds.iter().map(|_| Vec::new()).collect();
        for _ in 0..sz.rounds {
            for (&kind, r) in kinds.iter().zip(&mut rates) {
                let root = tmp.path().to_owned();
                let d = run_on(flavor, move || async move {
                    kind.with_pair(root, |c, s| pingpong(c, s, n)).await
                });
                r.push(n as f64 / d.as_secs_f64());
            }
        }
        let tcp = spread(&rates[0]).0;
        for (kind, r) in kinds.into_iter().zip(&rates) {
            let (m, lo, hi) = spread(r);
            println!(
                "| {} | {} | {:.0} ({:.0}–{:.0}) | {:.2} | {:.2}× |",
                kind.name(),
                flavor.name(),
                m,
                lo,
                hi,
                1e6 / m,
                m / tcp
            );
        }
    }
}

// ---------------------------------------------------------------- scale

fn scale_section(sz: &Sizes) {
    println!(
        "\n## scale: idle connection pairs\n\nEach N in a fresh child process \
         (multi-thread runtime, 2 workers): N dial+accept pairs, all kept open. \
         Per-pair RSS = (peak RSS − RSS before the first dial) / N.\n"
    );
    println!(
        "| network | N pairs | total time ms | µs per pair | peak RSS MiB | RSS KiB per pair |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let exe = std::env::current_exe().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let runs = sz
        .pipenet_pairs
        .iter()
        .map(|&n| ("pipenet", n))
        .chain(sz.lonet_pairs.iter().map(|&n| ("lonet", n)));
    for (net, n) in runs {
        let out = Command::new(&exe)
            .args(["--child", "scale", net, &n.to_string()])
            .arg(tmp.path())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            println!(
                "| {net} | {n} | failed: {} {} | | | |",
                out.status,
                text.trim()
            );
            continue;
        }
        let f: Vec<f64> = text
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        let (ns, base_kib, peak_kib) = (f[0], f[1], f[2]);
        println!(
            "| {net} | {n} | {:.1} | {:.2} | {:.1} | {:.2} |",
            ns / 1e6,
            ns / 1e3 / n as f64,
            peak_kib / 1024.0,
            (peak_kib - base_kib) / n as f64
        );
    }
}

/// `VmRSS` or `VmHWM` of this process, in KiB.
fn proc_status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

fn raise_fd_limit() {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

async fn scale_child(net: String, n: usize, root: std::path::PathBuf) {
    let mut conns = Vec::with_capacity(2 * n);
    let (a, b, pipe_net, lo_net);
    if net == "pipenet" {
        let nw = pipenet::Network::new("scale");
        a = nw.new_host("α").await.unwrap();
        b = nw.new_host("β").await.unwrap();
        pipe_net = Some(nw);
        lo_net = None;
    } else {
        let nw = lonet::Builder::new("scale")
            .root(&root)
            .join()
            .await
            .unwrap();
        a = nw.new_host("α").await.unwrap();
        b = nw.new_host("β").await.unwrap();
        lo_net = Some(nw);
        pipe_net = None;
    }
    let l = a.listen(":10").await.unwrap();
    // Warm up allocator and runtime so the baseline is fair.
    let (c, s) = tokio::try_join!(b.dial("α:10"), l.accept()).unwrap();
    drop((c, s));
    let base = proc_status_kib("VmRSS:");
    let t = Instant::now();
    for _ in 0..n {
        let (c, s) = tokio::try_join!(b.dial("α:10"), l.accept()).unwrap();
        conns.push(c);
        conns.push(s);
    }
    let e = t.elapsed();
    let peak = proc_status_kib("VmHWM:");
    println!("{} {} {}", e.as_nanos(), base, peak);
    std::io::stdout().flush().unwrap();
    drop(conns);
    if let Some(nw) = pipe_net {
        nw.close().await.unwrap();
    }
    if let Some(nw) = lo_net {
        nw.close().await.unwrap();
    }
}

/// A dialer in another process, of `kind` `lonet` (joins the network under
/// root `target`, makes host β, dials `α:10`) or `tcp-line` (connects to
/// `target`, sends a line, reads the reply line). Says `ready`; on
/// `dial W N` makes W untimed then N timed dials and answers `lat <ns>...`;
/// ends at end of input.
async fn dialer_child(kind: String, target: String, name: String) {
    let lonet = if kind == "lonet" {
        let net = lonet::Builder::new(&name)
            .root(Path::new(&target))
            .join()
            .await
            .unwrap();
        let b = net.new_host("β").await.unwrap();
        Some((net, b))
    } else {
        None
    };
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        let f: Vec<usize> = line
            .split_whitespace()
            .skip(1)
            .map(|t| t.parse().unwrap())
            .collect();
        let (w, n) = (f[0], f[1]);
        let s = match &lonet {
            Some((_, b)) => {
                time_dials(w, n, || async {
                    drop(b.dial("α:10").await.unwrap());
                })
                .await
            }
            None => {
                time_dials(w, n, || async {
                    let mut c = TcpStream::connect(&target).await.unwrap();
                    c.set_nodelay(true).unwrap();
                    c.write_all(REQUEST).await.unwrap();
                    assert!(read_line_from(&mut c).await, "reply line");
                })
                .await
            }
        };
        let mut out = String::from("lat");
        for d in &s.0 {
            out.push_str(&format!(" {}", d.as_nanos()));
        }
        println!("{out}");
        std::io::stdout().flush().unwrap();
    }
    if let Some((net, _)) = lonet {
        net.close().await.unwrap();
    }
}

fn child(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("scale") => {
            raise_fd_limit();
            let net = args[1].clone();
            let n: usize = args[2].parse().unwrap();
            let root = Path::new(&args[3]).join(format!("{net}-{n}"));
            std::fs::create_dir_all(&root).unwrap();
            run_on(Flavor::Multi, move || scale_child(net, n, root));
        }
        Some("dialer") => {
            let (kind, target, name) = (args[1].clone(), args[2].clone(), args[3].clone());
            let flavor = Flavor::from_arg(&args[4]).expect("runtime of the dialer child");
            run_on(flavor, move || dialer_child(kind, target, name));
        }
        other => panic!("unknown child mode {other:?}"),
    }
}
