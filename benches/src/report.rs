//! The report binary's entry point: reads the command line (`--quick`,
//! `--child`, section names, `BENCH_ROUNDS`), prints the machine, then runs
//! the sections asked for.

use crate::args::Sizes;
use crate::child::child;
use crate::dial::dial_section;
use crate::pingpong::pingpong_section;
use crate::scale::scale_section;
use crate::stream::throughput_section;
use crate::sys::{cpu_model, loadavg};

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
