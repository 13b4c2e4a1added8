//! The conformance suites, unchanged, against lonet in one process: each
//! scenario on its own network under its own temporary root. The network
//! scenarios get the subnetwork, the networker scenarios its hosts α and β,
//! the fault scenarios the subnetwork (faults kept in its SQLite registry).

use conformance_tests::Fixture;

/// A fresh network under a temporary root of its own, kept as long as the
/// fixture.
async fn fresh() -> Fixture {
    let root = tempfile::tempdir().expect("temp dir");
    let net = lonet::Builder::new("conformance")
        .root(root.path())
        .join()
        .await
        .expect("join");
    Fixture::new(net).keep(root)
}

conformance_tests::subnetwork_suites!(fresh);
