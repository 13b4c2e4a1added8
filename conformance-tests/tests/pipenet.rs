//! The conformance suites against pipenet, with a fresh network per
//! scenario: the network scenarios on a subnetwork, the networker scenarios
//! on its hosts α and β.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use conformance_tests::{networker, FailureKind};

fn fresh_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("conformance{}", N.fetch_add(1, Ordering::Relaxed))
}

conformance_tests::network_suite!(|| async {
    pipenet::Network::new(&fresh_name()).subnetwork().clone()
});

async fn hosts() -> networker::Fixture {
    let net = pipenet::Network::new(&fresh_name());
    let a = net.new_host("α").await.expect("host α");
    let b = net.new_host("β").await.expect("host β");
    networker::Fixture::new(Arc::new(a), Arc::new(b)).keep(net)
}

conformance_tests::networker_suite!(hosts, timeout = std::time::Duration::from_secs(30));

#[tokio::test]
async fn run_by_name_knows_every_scenario() {
    for name in conformance_tests::SCENARIOS {
        let net = pipenet::Network::new(&fresh_name());
        if let Err(failure) = conformance_tests::run(name, net.subnetwork().clone().into()).await {
            panic!("{failure}");
        }
    }
    let net = pipenet::Network::new(&fresh_name());
    let failure = conformance_tests::run("no_such_scenario", net.subnetwork().clone().into())
        .await
        .expect_err("an unknown scenario");
    assert_eq!(failure.kind(), &FailureKind::UnknownScenario);
    assert_eq!(
        failure.to_string(),
        "no scenario named \"no_such_scenario\""
    );

    for name in networker::SCENARIOS {
        if let Err(failure) = networker::run(name, hosts().await).await {
            panic!("{failure}");
        }
    }
    let failure = networker::run("no_such_scenario", hosts().await)
        .await
        .expect_err("an unknown scenario");
    assert_eq!(failure.kind(), &FailureKind::UnknownScenario);
}

/// A dial dropped while it waits in a listener's queue takes its pipe off
/// the queue at once, so it leaves room in a full backlog.
#[tokio::test]
async fn abandoned_dials_leave_the_queue_at_once() {
    let net = pipenet::Network::new(&fresh_name());
    let alpha = net.new_host("α").await.unwrap();
    let beta = net.new_host("β").await.unwrap();
    let l = alpha.listen(":1").await.unwrap();
    l.set_backlog(1);
    for _ in 0..100 {
        let b = beta.clone();
        let dial = tokio::spawn(async move { b.dial("α:1").await });
        while l.queued() == 0 {
            tokio::task::yield_now().await;
        }
        dial.abort();
        assert!(dial.await.unwrap_err().is_cancelled());
        assert_eq!(l.queued(), 0, "the abandoned dial left the queue");
    }
    let (c, s) = tokio::join!(beta.dial("α:1"), l.accept());
    assert_eq!(c.unwrap().peer_addr(), s.unwrap().local_addr());
    net.close().await.unwrap();
}

conformance_tests::fault_suite!(|| async {
    pipenet::Network::new(&fresh_name()).subnetwork().clone()
});
