//! The registry conformance suite against the SQLite registry, with a fresh
//! file per scenario; every `open` opens the file again, as another process
//! of the network would.

use std::path::PathBuf;
use std::sync::Arc;

use conformance_tests::registry::RegistryStore;
use registry_sqlite::SqliteRegistry;
use tempfile::TempDir;
use virtnet_core::{async_trait, Registry};

struct Sqlite {
    path: PathBuf,
    _dir: TempDir,
}

#[async_trait]
impl RegistryStore for Sqlite {
    async fn open(&self) -> Arc<dyn Registry> {
        let reg = SqliteRegistry::open(&self.path, "conformance")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Arc::new(reg)
    }
}

async fn fresh() -> Sqlite {
    let dir = tempfile::tempdir().expect("temporary directory");
    Sqlite {
        path: dir.path().join("registry.db"),
        _dir: dir,
    }
}

conformance_tests::registry_suite!(fresh);
