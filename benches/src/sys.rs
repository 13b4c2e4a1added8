//! What the report reads from or asks of the system: the CPU model, the
//! load average, this process's RSS from `/proc`, the open-file limit.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

pub(crate) fn cpu_model() -> String {
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

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `VmRSS` or `VmHWM` of this process, in KiB.
pub(crate) fn proc_status_kib(field: &str) -> f64 {
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

/// Raises this process's soft limit on open files to its hard limit, for
/// the scale child's thousands of connections (no limit counts as the
/// highest).
pub(crate) fn raise_fd_limit() {
    let r = getrlimit(Resource::Nofile);
    if r.current.unwrap_or(u64::MAX) < r.maximum.unwrap_or(u64::MAX) {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: r.maximum,
                maximum: r.maximum,
            },
        );
    }
}
