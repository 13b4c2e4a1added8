//! Core behaviour that needs a hand-made engine or registry: cancellation of
//! `new_host`, registry failures surfacing in dials, engine errors.

use std::io;
use std::sync::{Arc, Mutex};

use futures::poll;
use tokio::sync::{mpsc, Notify};
use virtnet_core::engine::{Dialed, Engine, Inbox, PendingConn, Transport};
use virtnet_core::{
    async_trait, Addr, OpError, Registry, RegistryCause, RegistryError, SubNetwork, VirtError,
};

/// A registry whose announce records the entry and then waits to be released,
/// like a store that committed but has not answered yet.
#[derive(Default)]
struct SlowRegistry {
    hosts: Mutex<Vec<(String, String)>>,
    release: Notify,
    removed: Option<mpsc::UnboundedSender<String>>,
    fail_query: bool,
}

#[async_trait]
impl Registry for SlowRegistry {
    fn name(&self) -> &str {
        "slow"
    }
    async fn announce(&self, host: &str, data: &str) -> Result<(), RegistryError> {
        self.hosts.lock().unwrap().push((host.into(), data.into()));
        self.release.notified().await;
        Ok(())
    }
    async fn query(&self, host: &str) -> Result<String, RegistryError> {
        if self.fail_query {
            return Err(RegistryError::new(
                "slow",
                "query",
                &[host],
                RegistryCause::Other("disk on fire".into()),
            ));
        }
        let hosts = self.hosts.lock().unwrap();
        match hosts.iter().find(|(h, _)| h == host) {
            Some((_, d)) => Ok(d.clone()),
            None => Err(RegistryError::new(
                "slow",
                "query",
                &[host],
                RegistryCause::NoHost,
            )),
        }
    }
    async fn unannounce(&self, host: &str, data: &str) -> Result<bool, RegistryError> {
        let mut hosts = self.hosts.lock().unwrap();
        let before = hosts.len();
        hosts.retain(|(h, d)| !(h == host && d == data));
        if let Some(tx) = &self.removed {
            let _ = tx.send(host.to_owned());
        }
        Ok(hosts.len() < before)
    }
    async fn close(&self) -> Result<(), RegistryError> {
        Ok(())
    }
}

/// An engine that refuses every dial with a custom error.
struct FailingEngine;

#[async_trait]
impl Engine for FailingEngine {
    async fn new_host(&self, host: &str) -> io::Result<String> {
        Ok(format!("data-of-{host}"))
    }
    async fn dial(&self, _src: &Addr, _dst: &Addr, dst_data: &str) -> io::Result<Dialed> {
        Err(io::Error::other(format!("cannot reach {dst_data}")))
    }
    async fn close(&self) -> io::Result<()> {
        Ok(())
    }
}

fn failing_net(name: &str, registry: Arc<dyn Registry>) -> SubNetwork {
    SubNetwork::new(name, registry, |_inbox: Inbox| FailingEngine)
}

#[tokio::test]
async fn dropped_new_host_leaves_no_registry_entry() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let registry = Arc::new(SlowRegistry {
        removed: Some(tx),
        ..Default::default()
    });
    let net = failing_net("slownet", registry.clone());
    let mut new_host = Box::pin(net.new_host("α"));
    assert!(poll!(&mut new_host).is_pending());
    assert_eq!(
        registry.hosts.lock().unwrap().len(),
        1,
        "announce reached the store"
    );
    drop(new_host);
    assert_eq!(
        rx.recv().await.as_deref(),
        Some("α"),
        "the entry is removed"
    );
    assert!(registry.hosts.lock().unwrap().is_empty());
    assert!(net.host("α").is_none());
}

#[tokio::test]
async fn engine_and_registry_errors_become_dial_errors() {
    let registry = Arc::new(SlowRegistry::default());
    let net = failing_net("failnet", registry.clone());
    let mut new_host = Box::pin(net.new_host("α"));
    assert!(poll!(&mut new_host).is_pending());
    registry.release.notify_one();
    let a = new_host.await.unwrap();

    let err = a.dial("α:1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "dial failnet α:1->α:1: cannot reach data-of-α"
    );
    assert_eq!(err.kind(), io::ErrorKind::Other);
    let op = OpError::of(&err).expect("an OpError");
    assert_eq!(op.source().map(|a| a.to_string()).as_deref(), Some("α:1"));
    assert_eq!(
        op.destination().map(|a| a.to_string()).as_deref(),
        Some("α:1")
    );
    assert_eq!(VirtError::of(&err), None);

    let broken = Arc::new(SlowRegistry {
        fail_query: true,
        ..Default::default()
    });
    let net2 = failing_net("brokennet", broken.clone());
    let mut new_host = Box::pin(net2.new_host("β"));
    assert!(poll!(&mut new_host).is_pending());
    broken.release.notify_one();
    let b = new_host.await.unwrap();
    let err = b.dial("γ:1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "dial brokennet β:1->γ:1: slow: query \"γ\": disk on fire"
    );
    assert!(RegistryError::of(OpError::of(&err).unwrap().cause_ref()).is_some());
}

#[tokio::test]
async fn delivering_to_a_dropped_subnetwork_says_network_down() {
    struct Nobody;
    impl PendingConn for Nobody {
        fn accept(self: Box<Self>, _: &Addr) -> io::Result<Box<dyn Transport>> {
            Err(io::ErrorKind::Unsupported.into())
        }
        fn refuse(self: Box<Self>, _: VirtError) {}
    }
    let inbox = Arc::new(Mutex::new(None));
    let keep = inbox.clone();
    let net = SubNetwork::new(
        "gone",
        Arc::new(SlowRegistry::default()),
        move |i: Inbox| {
            *keep.lock().unwrap() = Some(i);
            FailingEngine
        },
    );
    let inbox = inbox.lock().unwrap().take().unwrap();
    assert_eq!(inbox.network().as_deref(), Some("gone"));
    let src = Addr::new("gone", "x", 1);
    let undelivered = inbox
        .deliver(src.clone(), &Addr::new("gone", "α", 1), Box::new(Nobody))
        .err()
        .unwrap();
    assert_eq!(undelivered.reason, VirtError::NoHost);
    drop(net);
    assert!(inbox.network().is_none());
    let undelivered = inbox
        .deliver(src, &Addr::new("gone", "α", 1), Box::new(Nobody))
        .err()
        .unwrap();
    assert_eq!(undelivered.reason, VirtError::NetDown);
}
