//! The in-memory registry pipenet uses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use virtnet_core::fault::{FaultStore, MemoryFaults};
use virtnet_core::{async_trait, Registry, RegistryCause, RegistryError};

/// A [`Registry`] kept in memory.
///
/// [`handle`](Self::handle) opens another handle on the same store (as two
/// processes would open the same registry file): each sees the other's
/// writes, and closing one does not close the other.
pub struct RamRegistry {
    name: Arc<str>,
    hosts: Arc<Mutex<HashMap<String, String>>>,
    faults: Arc<MemoryFaults>,
    closed: AtomicBool,
}

impl RamRegistry {
    /// An empty registry; `name` appears in its errors.
    pub fn new(name: &str) -> RamRegistry {
        RamRegistry {
            name: name.into(),
            hosts: Arc::default(),
            faults: Arc::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// Another handle on the same store.
    pub fn handle(&self) -> RamRegistry {
        RamRegistry {
            name: self.name.clone(),
            hosts: self.hosts.clone(),
            faults: self.faults.clone(),
            closed: AtomicBool::new(false),
        }
    }

    /// The store, or `Down` if this handle is closed.
    fn store(
        &self,
        op: &'static str,
        args: &[&str],
    ) -> Result<MutexGuard<'_, HashMap<String, String>>, RegistryError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.error(op, args, RegistryCause::Down));
        }
        Ok(self.hosts.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn error(&self, op: &'static str, args: &[&str], cause: RegistryCause) -> RegistryError {
        RegistryError::new(&self.name, op, args, cause)
    }
}

#[async_trait]
impl Registry for RamRegistry {
    fn name(&self) -> &str {
        &self.name
    }

    async fn announce(&self, host: &str, data: &str) -> Result<(), RegistryError> {
        let args = [host, data];
        let mut hosts = self.store("announce", &args)?;
        if hosts.contains_key(host) {
            return Err(self.error("announce", &args, RegistryCause::HostDup));
        }
        hosts.insert(host.to_owned(), data.to_owned());
        Ok(())
    }

    fn faults(&self) -> Option<Arc<dyn FaultStore>> {
        Some(self.faults.clone())
    }

    async fn query(&self, host: &str) -> Result<String, RegistryError> {
        let hosts = self.store("query", &[host])?;
        hosts
            .get(host)
            .cloned()
            .ok_or_else(|| self.error("query", &[host], RegistryCause::NoHost))
    }

    async fn unannounce(&self, host: &str, data: &str) -> Result<bool, RegistryError> {
        let mut hosts = self.store("unannounce", &[host, data])?;
        if hosts.get(host).is_some_and(|d| d == data) {
            hosts.remove(host);
            return Ok(true);
        }
        Ok(false)
    }

    async fn replace(&self, host: &str, old: &str, new: &str) -> Result<bool, RegistryError> {
        let mut hosts = self.store("replace", &[host, old, new])?;
        match hosts.get_mut(host) {
            Some(data) if data == old => {
                new.clone_into(data);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list(&self) -> Result<Vec<(String, String)>, RegistryError> {
        let hosts = self.store("list", &[])?;
        Ok(hosts.iter().map(|(h, d)| (h.clone(), d.clone())).collect())
    }

    async fn close(&self) -> Result<(), RegistryError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
