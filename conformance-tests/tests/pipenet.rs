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
