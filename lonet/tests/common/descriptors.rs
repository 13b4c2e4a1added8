//! This process's open descriptors (`/proc/self/fd`), for the tests that
//! check that nothing is left open. Such a test is the only one in its
//! binary, so no other test's sockets disturb the count.

use super::HANG_GUARD;

/// What each open descriptor refers to (`socket:[…]`, a path, …). Panics
/// if `/proc/self/fd` cannot be read: a count of nothing would prove
/// nothing.
pub fn open() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .collect()
}

/// How many descriptors are open.
pub fn count() -> usize {
    open().len()
}

/// How many of them are sockets.
pub fn sockets() -> usize {
    open().iter().filter(|t| t.starts_with("socket:")).count()
}

/// Waits until at most `limit` descriptors are open; panics after
/// [`HANG_GUARD`] with `what` and those still open.
pub async fn settle_to(limit: usize, what: &str) {
    let settled = tokio::time::timeout(HANG_GUARD, async {
        while count() > limit {
            tokio::task::yield_now().await;
        }
    })
    .await;
    if settled.is_err() {
        let mut left = open();
        left.sort();
        panic!(
            "waited {HANG_GUARD:?} for {what}: {} descriptors open, {limit} expected: {left:#?}",
            left.len()
        );
    }
}
