//! 10,000 dials dropped while they wait on a listener that never accepts:
//! each leaves the queue, and its socket closes, when its dialer gives up,
//! so the queue is empty and the descriptors are back to their baseline.
//! One test in this file's process, so no other test's sockets disturb the
//! count.

mod common;

use common::{descriptors, HANG_GUARD};

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(HANG_GUARD, async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited {HANG_GUARD:?} for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_dials_leave_nothing_queued() {
    const BATCH: usize = 100;
    const BATCHES: usize = 100;
    let root = tempfile::tempdir().unwrap();
    let net = lonet::Builder::new("dropped")
        .root(root.path())
        .join()
        .await
        .unwrap();
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    let baseline = descriptors::count();
    for batch in 0..BATCHES {
        let dials: Vec<_> = (0..BATCH)
            .map(|_| {
                let b = beta.clone();
                tokio::spawn(async move { b.dial("α:1").await })
            })
            .collect();
        until(&format!("batch {batch} queued"), || l.queued() == BATCH).await;
        for dial in &dials {
            dial.abort();
        }
        for dial in dials {
            assert!(dial.await.unwrap_err().is_cancelled());
        }
        until(&format!("batch {batch} to leave the queue"), || {
            l.queued() == 0
        })
        .await;
    }
    descriptors::settle_to(baseline, "the descriptors to return to their baseline").await;
    // The listener still works.
    let (c, s) = tokio::join!(beta.dial("α:1"), l.accept());
    assert_eq!(c.unwrap().peer_addr(), s.unwrap().local_addr());
    net.close().await.unwrap();
}
