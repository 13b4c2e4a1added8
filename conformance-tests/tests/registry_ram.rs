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
        if let Err(failure) = registry::run(name, fresh().await).await {
            panic!("{failure}");
        }
    }
    let failure = registry::run("no_such_scenario", fresh().await)
        .await
        .expect_err("an unknown scenario");
    assert_eq!(
        failure.kind(),
        &conformance_tests::FailureKind::UnknownScenario
    );
}

/// A registry that breaks one rule, to show the suite notices.
struct Broken {
    inner: RamRegistry,
    rule: &'static str,
}

#[async_trait]
impl Registry for Broken {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn announce(&self, host: &str, data: &str) -> Result<(), virtnet_core::RegistryError> {
        if self.rule == "duplicates" {
            // Overwrites instead of refusing.
            let _ = self
                .inner
                .unannounce(host, &self.inner.query(host).await.unwrap_or_default())
                .await;
        }
        self.inner.announce(host, data).await
    }
    async fn query(&self, host: &str) -> Result<String, virtnet_core::RegistryError> {
        if self.rule == "case" {
            // Finds names whatever their case.
            return match self.inner.query(host).await {
                Ok(d) => Ok(d),
                Err(_) => self.inner.query(&host.to_lowercase()).await,
            };
        }
        self.inner.query(host).await
    }
    async fn close(&self) -> Result<(), virtnet_core::RegistryError> {
        if self.rule == "close" {
            // Forgets to close.
            return Ok(());
        }
        self.inner.close().await
    }
}

struct BrokenStore(RamRegistry, &'static str);

#[async_trait]
impl RegistryStore for BrokenStore {
    async fn open(&self) -> Arc<dyn Registry> {
        Arc::new(Broken {
            inner: self.0.handle(),
            rule: self.1,
        })
    }
}

#[tokio::test]
async fn the_suite_catches_broken_registries() {
    for (rule, scenario) in [
        ("duplicates", "duplicate_announce_refused"),
        ("case", "query_unknown_host"),
        ("close", "close_then_down"),
    ] {
        let store = BrokenStore(RamRegistry::new("broken"), rule);
        let failure = registry::run(scenario, store)
            .await
            .expect_err(&format!("{scenario} passed a registry that breaks {rule}"));
        assert_eq!(failure.scenario(), scenario);
        assert!(failure.panic_message().is_some(), "{failure}");
    }
}
