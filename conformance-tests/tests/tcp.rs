//! The scenarios that apply to the operating system's network (no
//! predictable ports, accepted connections share the listener's port), on
//! virtnet's `TcpNetworker` over loopback.

use std::sync::Arc;

use conformance_tests::networker::Fixture;
use virtnet_core::tcp::TcpNetworker;

async fn loopback() -> Fixture {
    Fixture::new(Arc::new(TcpNetworker::new()), Arc::new(TcpNetworker::new()))
}

conformance_tests::networker_suite!(loopback);
