//! The child processes: the report binary re-executes itself
//! (`--child dialer ...`, `--child scale ...`). [`remote_dials`] runs a
//! dialer child and collects its timings; [`child`] is the child's side.

use std::io::{BufRead, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::args::{run_on, Flavor};
use crate::dial::{read_line_from, time_dials, REQUEST};
use crate::scale::scale_child;
use crate::stats::Samples;
use crate::sys::raise_fd_limit;

/// Runs a dialer child of `kind` against `target` and collects its timings.
pub(crate) async fn remote_dials(
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

pub(crate) fn child(args: &[String]) {
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
