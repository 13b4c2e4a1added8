//! The registry conformance suite on PostgreSQL: each scenario gets a
//! fresh schema and a network of its own, and every `open` connects again,
//! as another process of the network would.
//!
//! The suite's tests are made by a macro and cannot skip one by one, so
//! they are built only when `VIRTNET_POSTGRES_URL` is set at build time
//! (`build.rs`); otherwise one test says they were skipped.

mod common;

#[cfg(virtnet_postgres)]
mod suite {
    use std::sync::Arc;

    use conformance_tests::registry::RegistryStore;
    use registry_postgres::PostgresRegistry;
    use virtnet_core::{async_trait, Registry};

    use super::common::{self, Schema};

    struct Postgres {
        url: String,
        network: String,
        _schema: Schema,
    }

    #[async_trait]
    impl RegistryStore for Postgres {
        async fn open(&self) -> Arc<dyn Registry> {
            let reg = PostgresRegistry::connect(&self.url, &self.network)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            Arc::new(reg)
        }
    }

    async fn fresh() -> Postgres {
        let server = common::server_url().expect(
            "built with VIRTNET_POSTGRES_URL set, but it is not set now: rebuild, or set it",
        );
        let schema = Schema::new(&server).await;
        Postgres {
            url: schema.url.clone(),
            network: common::unique("conformance"),
            _schema: schema,
        }
    }

    conformance_tests::registry_suite!(fresh);
}

#[cfg(not(virtnet_postgres))]
#[test]
fn registry_suite_skipped() {
    assert!(
        common::server_url().is_none(),
        "VIRTNET_POSTGRES_URL is set now but was not when this test was built: rebuild"
    );
}
