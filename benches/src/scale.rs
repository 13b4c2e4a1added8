//! The scale section: N idle connection pairs on pipenet and on lonet, each
//! N in a child process of its own (so its peak RSS is its own).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::args::Sizes;
use crate::sys::proc_status_kib;

pub(crate) fn scale_section(sz: &Sizes) {
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

pub(crate) async fn scale_child(net: String, n: usize, root: std::path::PathBuf) {
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
