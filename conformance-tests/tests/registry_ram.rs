//! The registry conformance suite against pipenet's in-memory registry.

use std::sync::Arc;

use conformance_tests::registry::{self, RegistryStore};
use pipenet::RamRegistry;
use virtnet_core::{async_trait, Registry};

/// One in-memory store; every `open` is another handle on it.
struct Ram(RamRegistry);

#[async_trait]
impl RegistryStore for Ram {
    async fn open(&self) -> Arc<dyn Registry> {
        Arc::new(self.0.handle())
    }
}

async fn fresh() -> Ram {
    Ram(RamRegistry::new("ram"))
}

conformance_tests::registry_suite!(fresh);

#[tokio::test]
async fn run_by_name_knows_every_scenario() {
    for name in registry::SCENARIOS {
        assert!(registry::run(name, &fresh().await).await, "{name}");
    }
    assert!(!registry::run("no_such_scenario", &fresh().await).await);
}
