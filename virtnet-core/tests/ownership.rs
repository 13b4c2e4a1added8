//! A host dropped where no tokio runtime runs still leaves the registry (on a
//! thread of its own).

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipenet::{RamRegistry, Registry, VirtError};

#[test]
fn a_host_dropped_outside_any_runtime_leaves_the_registry() {
    let store = RamRegistry::new("pipenoruntime");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let host = rt.block_on(async {
        let net = pipenet::Network::builder("noruntime")
            .registry(Arc::new(store.handle()))
            .build();
        net.new_host("α").await.unwrap()
    });
    drop(rt);
    assert!(futures::executor::block_on(store.query("α")).is_ok());
    drop(host); // the last handle of α and of its network
    let deadline = Instant::now() + Duration::from_secs(60);
    let err = loop {
        match futures::executor::block_on(store.query("α")) {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => std::thread::yield_now(),
            Ok(_) => panic!("α never left the registry"),
        }
    };
    assert_eq!(
        VirtError::of(&std::io::Error::from(err)),
        Some(VirtError::NoHost)
    );
}
