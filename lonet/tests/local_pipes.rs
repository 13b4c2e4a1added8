//! lonet with local pipes (`Builder::local_pipes(true)`): the conformance
//! suites, unchanged, with every dial between the subnetwork's own hosts
//! carried by an in-memory pipe. What the setting changes (OS sockets) is
//! checked in `local_pipes_os.rs`, a test binary of its own so that no other
//! test opens sockets meanwhile.

use conformance_tests::Fixture;

/// A fresh network with local pipes under a temporary root of its own.
async fn fresh() -> Fixture {
    let root = tempfile::tempdir().expect("temp dir");
    let net = lonet::Builder::new("pipes")
        .root(root.path())
        .local_pipes(true)
        .join()
        .await
        .expect("join");
    Fixture::new(net).keep(root)
}

conformance_tests::subnetwork_suites!(fresh);
