//! The network conformance suite against pipenet, with a fresh network per
//! scenario.

use std::sync::atomic::{AtomicUsize, Ordering};

fn fresh_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("conformance{}", N.fetch_add(1, Ordering::Relaxed))
}

conformance_tests::network_suite!(|| async {
    pipenet::Network::new(&fresh_name()).subnetwork().clone()
});

#[tokio::test]
async fn run_by_name_knows_every_scenario() {
    for name in conformance_tests::SCENARIOS {
        let net = pipenet::Network::new(&fresh_name());
        assert!(
            conformance_tests::run(name, net.subnetwork().clone().into()).await,
            "{name}"
        );
    }
    let net = pipenet::Network::new(&fresh_name());
    assert!(!conformance_tests::run("no_such_scenario", net.subnetwork().clone().into()).await);
}
