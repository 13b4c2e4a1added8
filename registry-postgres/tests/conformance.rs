//! The registry conformance suite on PostgreSQL: each scenario gets a
//! fresh schema and a network of its own, and every `open` connects again,
//! as another process of the network would.
//! Needs `VIRTNET_POSTGRES_URL` (`.ci/test` sets it).

mod common;

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
        let server = common::server_url();
        let schema = Schema::new(&server).await;
        Postgres {
            url: schema.url.clone(),
            network: common::unique("conformance"),
            _schema: schema,
        }
    }

    conformance_tests::registry_suite!(fresh);
}
