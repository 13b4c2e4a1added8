//! The network conformance suite, unchanged, against lonet in one process:
//! each scenario on its own network under its own temporary root.

conformance_tests::network_suite!(|| async {
    let root = tempfile::tempdir().expect("temp dir");
    let net = lonet::Builder::new("conformance")
        .root(root.path())
        .join()
        .await
        .expect("join");
    conformance_tests::Fixture::new(net).keep(root)
});
