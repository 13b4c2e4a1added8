//! [`subnetwork_suites!`]: every suite that runs on a subnetwork, at once.

/// Expands into [`network_suite!`](crate::network_suite!),
/// [`networker_suite!`](crate::networker_suite!) between hosts `α` and `β`
/// of each subnetwork ([`networker::Fixture::hosts_of`](crate::networker::Fixture::hosts_of))
/// and [`fault_suite!`](crate::fault_suite!), all with `$factory` (an async
/// closure or function returning a fresh subnetwork, or a
/// [`Fixture`](crate::Fixture) of one, whose registry keeps faults). As
/// each of those, it defines modules and private functions where it is
/// invoked, so invoke it once per test file (module).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// async fn fresh() -> virtnet_core::SubNetwork {
///     static N: AtomicUsize = AtomicUsize::new(0);
///     let name = format!("suites{}", N.fetch_add(1, Ordering::Relaxed));
///     pipenet::Network::new(&name).subnetwork().clone()
/// }
///
/// conformance_tests::subnetwork_suites!(fresh);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! subnetwork_suites {
    ($factory:expr $(,)?) => {
        $crate::network_suite!($factory);
        $crate::networker_suite!(|| async {
            $crate::networker::Fixture::hosts_of(($factory)().await).await
        });
        $crate::fault_suite!($factory);
    };
}
