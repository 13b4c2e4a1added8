//! The registry scenarios: what every [`Registry`] must do, whether it keeps
//! its entries in memory (pipenet), in an SQLite file (lonet) or anywhere
//! else.
//!
//! A scenario takes a [`RegistryStore`]: a fresh, empty store on which it
//! opens as many handles as it needs (two handles stand for two processes
//! sharing one registry). Each scenario checks one rule of the spec's
//! "Registry" section, with exact error causes and texts, and panics on the
//! first broken one.
//!
//! `unannounce` and `list` are optional (the reference registry has
//! neither): a registry whose handles answer
//! [`RegistryCause::Unsupported`] passes their scenarios by doing so
//! consistently.
//!
//! # Running it against your registry
//! ```
//! use std::sync::Arc;
//! use conformance_tests::registry::RegistryStore;
//! use virtnet_core::{async_trait, Registry};
//!
//! /// One in-memory store; every `open` is another handle on it.
//! struct Ram(pipenet::RamRegistry);
//!
//! #[async_trait]
//! impl RegistryStore for Ram {
//!     async fn open(&self) -> Arc<dyn Registry> {
//!         Arc::new(self.0.handle())
//!     }
//! }
//!
//! conformance_tests::registry_suite!(|| async { Ram(pipenet::RamRegistry::new("ram")) });
//! # fn main() {}
//! ```
//! The factory is called once per scenario and must return a fresh, empty
//! store, so scenarios can run in parallel.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use virtnet_core::{async_trait, Registry, RegistryCause, RegistryError};

use crate::Failure;

/// A registry store under test: every [`open`](Self::open) returns a new
/// handle on the same store, as every process of a network opens the same
/// registry.
#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// A new handle on this store. Panics if it cannot be opened.
    async fn open(&self) -> Arc<dyn Registry>;
}

/// Asserts that `r` failed in operation `op` with arguments `args` and the
/// given cause, naming `reg`, and that the text reads
/// `<registry>: <op> <args>: <cause>`.
#[track_caller]
pub fn assert_registry_error<T: Debug>(
    r: Result<T, RegistryError>,
    reg: &dyn Registry,
    op: &str,
    args: &[&str],
    cause: &RegistryCause,
) {
    let err = r.expect_err(&format!("{op} {args:?} should fail with {cause}"));
    assert_eq!(
        std::mem::discriminant(err.cause()),
        std::mem::discriminant(cause),
        "cause of {err}"
    );
    assert_eq!(err.registry(), reg.name(), "registry of {err}");
    assert_eq!(err.op(), op, "op of {err}");
    assert_eq!(err.args(), args, "args of {err}");
    let mut text = format!("{}: {op}", reg.name());
    for a in args {
        text.push_str(&format!(" {a:?}"));
    }
    text.push_str(&format!(": {cause}"));
    assert_eq!(err.to_string(), text);
}

/// Whether `r` says the operation is not offered by this registry.
fn unsupported<T>(r: &Result<T, RegistryError>) -> bool {
    matches!(r, Err(e) if matches!(e.cause(), RegistryCause::Unsupported))
}

/// Announced entries can be queried, exactly as announced.
pub async fn announce_then_query(store: &dyn RegistryStore) {
    let reg = store.open().await;
    reg.announce("α", "127.0.0.1:1001")
        .await
        .expect("announce α");
    reg.announce("β", "")
        .await
        .expect("announce β with empty data");
    assert_eq!(reg.query("α").await.expect("query α"), "127.0.0.1:1001");
    assert_eq!(reg.query("β").await.expect("query β"), "");
    reg.close().await.expect("close");
}

/// A query for a host nobody announced fails with "no such host".
pub async fn query_unknown_host(store: &dyn RegistryStore) {
    let reg = store.open().await;
    assert_registry_error(
        reg.query("γ").await,
        &*reg,
        "query",
        &["γ"],
        &RegistryCause::NoHost,
    );
    reg.announce("α", "d").await.expect("announce α");
    // Names are compared exactly: no case folding, no trimming.
    for other in ["Α", "α ", " α", "a"] {
        assert_registry_error(
            reg.query(other).await,
            &*reg,
            "query",
            &[other],
            &RegistryCause::NoHost,
        );
    }
    reg.close().await.expect("close");
}

/// A second announce of a name fails with "host already registered" and
/// leaves the first entry as it was, whatever the data.
pub async fn duplicate_announce_refused(store: &dyn RegistryStore) {
    let reg = store.open().await;
    reg.announce("α", "first").await.expect("announce α");
    for data in ["second", "first", ""] {
        assert_registry_error(
            reg.announce("α", data).await,
            &*reg,
            "announce",
            &["α", data],
            &RegistryCause::HostDup,
        );
    }
    assert_eq!(reg.query("α").await.expect("query α"), "first");
    reg.close().await.expect("close");
}

/// After `close`, every call on that handle fails with "registry is down";
/// closing again is fine.
pub async fn close_then_down(store: &dyn RegistryStore) {
    let reg = store.open().await;
    reg.announce("α", "d").await.expect("announce α");
    reg.close().await.expect("close");
    let down = RegistryCause::Down;
    assert_registry_error(
        reg.announce("β", "d").await,
        &*reg,
        "announce",
        &["β", "d"],
        &down,
    );
    assert_registry_error(reg.query("α").await, &*reg, "query", &["α"], &down);
    let r = reg.unannounce("α", "d").await;
    if !unsupported(&r) {
        assert_registry_error(r, &*reg, "unannounce", &["α", "d"], &down);
    }
    let r = reg.list().await;
    if !unsupported(&r) {
        assert_registry_error(r, &*reg, "list", &[], &down);
    }
    reg.close().await.expect("second close");
    reg.close().await.expect("third close");
}

/// Closing one handle leaves the store and every other handle working, and
/// keeps what the closed handle announced.
pub async fn close_is_per_handle(store: &dyn RegistryStore) {
    let a = store.open().await;
    let b = store.open().await;
    a.announce("α", "from a").await.expect("a announces α");
    a.close().await.expect("close a");
    assert_eq!(b.query("α").await.expect("b queries α"), "from a");
    b.announce("β", "from b").await.expect("b announces β");
    assert_registry_error(
        b.announce("α", "from b").await,
        &*b,
        "announce",
        &["α", "from b"],
        &RegistryCause::HostDup,
    );
    let c = store.open().await;
    assert_eq!(c.query("α").await.expect("c queries α"), "from a");
    assert_eq!(c.query("β").await.expect("c queries β"), "from b");
    b.close().await.expect("close b");
    c.close().await.expect("close c");
}

/// Two handles on one store see each other's writes at once, and a name
/// taken through one is taken for the other.
pub async fn handles_share_one_store(store: &dyn RegistryStore) {
    let a = store.open().await;
    let b = store.open().await;
    a.announce("α", "127.0.0.1:1").await.expect("a announces α");
    assert_eq!(b.query("α").await.expect("b queries α"), "127.0.0.1:1");
    b.announce("β", "127.0.0.1:2").await.expect("b announces β");
    assert_eq!(a.query("β").await.expect("a queries β"), "127.0.0.1:2");
    assert_registry_error(
        b.announce("α", "127.0.0.1:3").await,
        &*b,
        "announce",
        &["α", "127.0.0.1:3"],
        &RegistryCause::HostDup,
    );
    assert_registry_error(
        a.announce("β", "127.0.0.1:4").await,
        &*a,
        "announce",
        &["β", "127.0.0.1:4"],
        &RegistryCause::HostDup,
    );
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

/// Many handles announcing one name at the same time: exactly one wins,
/// the others get "host already registered", and everyone then sees the
/// winner's data. Many handles announcing distinct names at once all
/// succeed.
pub async fn concurrent_announces(store: &dyn RegistryStore) {
    const N: usize = 12;
    let mut handles = Vec::new();
    for _ in 0..N {
        handles.push(store.open().await);
    }
    let tasks: Vec<_> = handles
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = h.clone();
            tokio::spawn(async move { h.announce("contested", &format!("handle {i}")).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.expect("announce task") {
            Ok(()) => winners.push(i),
            Err(e) => assert!(
                matches!(e.cause(), RegistryCause::HostDup),
                "handle {i}: {e}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let want = format!("handle {}", winners[0]);
    for h in &handles {
        assert_eq!(h.query("contested").await.expect("query"), want);
    }

    let tasks: Vec<_> = handles
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = h.clone();
            tokio::spawn(async move {
                for j in 0..10 {
                    h.announce(&format!("h{i}-{j}"), &format!("d{i}-{j}"))
                        .await?;
                }
                Ok::<(), RegistryError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("announce task").expect("announce");
    }
    for i in 0..N {
        for j in 0..10 {
            let got = handles[(i + 1) % N]
                .query(&format!("h{i}-{j}"))
                .await
                .expect("query");
            assert_eq!(got, format!("d{i}-{j}"));
        }
    }
    for h in &handles {
        h.close().await.expect("close");
    }
}

/// `unannounce` removes an entry only while it still holds the given data;
/// the name is then free again, for every handle.
pub async fn unannounce_needs_matching_data(store: &dyn RegistryStore) {
    let a = store.open().await;
    let b = store.open().await;
    a.announce("α", "mine").await.expect("announce α");
    let r = a.unannounce("α", "theirs").await;
    if unsupported(&r) {
        // Not offered: consistently so, and nothing changed.
        assert!(unsupported(&a.unannounce("α", "mine").await));
        assert_eq!(a.query("α").await.expect("query α"), "mine");
        return;
    }
    assert!(
        !r.expect("unannounce with other data"),
        "removed with other data"
    );
    assert_eq!(b.query("α").await.expect("query α"), "mine");
    assert!(!a.unannounce("γ", "mine").await.expect("unannounce unknown"));
    assert!(
        b.unannounce("α", "mine").await.expect("unannounce α"),
        "not removed"
    );
    assert_registry_error(
        a.query("α").await,
        &*a,
        "query",
        &["α"],
        &RegistryCause::NoHost,
    );
    assert!(!a.unannounce("α", "mine").await.expect("second unannounce"));
    // The name is free again, and the new entry is the new owner's.
    b.announce("α", "new owner")
        .await
        .expect("announce α again");
    assert!(!a.unannounce("α", "mine").await.expect("stale unannounce"));
    assert_eq!(a.query("α").await.expect("query α"), "new owner");
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

/// `replace` changes an entry only if it still holds the expected data, so
/// of two handles taking over one name at once exactly one succeeds.
pub async fn replace_needs_matching_data(store: &dyn RegistryStore) {
    let a = store.open().await;
    let b = store.open().await;
    a.announce("α", "dead").await.expect("announce α");
    let r = a.replace("α", "other", "mine").await;
    if unsupported(&r) {
        assert!(unsupported(&a.replace("α", "dead", "mine").await));
        assert_eq!(a.query("α").await.expect("query α"), "dead");
        return;
    }
    assert!(!r.expect("replace with other data"), "replaced other data");
    assert!(!a
        .replace("γ", "dead", "mine")
        .await
        .expect("replace unknown"));
    assert_registry_error(
        a.query("γ").await,
        &*a,
        "query",
        &["γ"],
        &RegistryCause::NoHost,
    );
    // Two take-overs of the same dead entry: exactly one wins.
    let (x, y) = tokio::join!(a.replace("α", "dead", "a's"), b.replace("α", "dead", "b's"));
    let (x, y) = (x.expect("replace from a"), y.expect("replace from b"));
    assert!(x ^ y, "exactly one replace wins: {x} {y}");
    let winner = if x { "a's" } else { "b's" };
    assert_eq!(a.query("α").await.expect("query α"), winner);
    assert_eq!(b.query("α").await.expect("query α"), winner);
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

/// `list` returns every entry exactly once, from any handle, and follows
/// announces and unannounces.
pub async fn list_every_entry(store: &dyn RegistryStore) {
    let a = store.open().await;
    let b = store.open().await;
    let r = a.list().await;
    if unsupported(&r) {
        assert!(unsupported(&b.list().await));
        return;
    }
    assert_eq!(
        r.expect("list empty"),
        vec![],
        "a fresh store lists nothing"
    );
    let mut want = BTreeMap::new();
    for i in 0..20 {
        let (h, d) = (format!("host{i}"), format!("127.0.0.1:{}", 2000 + i));
        let reg = if i % 2 == 0 { &a } else { &b };
        reg.announce(&h, &d).await.expect("announce");
        want.insert(h, d);
    }
    let sorted = |v: Vec<(String, String)>| -> BTreeMap<String, String> {
        let n = v.len();
        let m: BTreeMap<_, _> = v.into_iter().collect();
        assert_eq!(m.len(), n, "an entry is listed twice");
        m
    };
    assert_eq!(sorted(a.list().await.expect("list a")), want);
    assert_eq!(sorted(b.list().await.expect("list b")), want);
    let r = b.unannounce("host3", "127.0.0.1:2003").await;
    if !unsupported(&r) {
        assert!(r.expect("unannounce host3"));
        want.remove("host3");
        assert_eq!(sorted(a.list().await.expect("list a")), want);
    }
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

/// Names and data with quotes, backslashes, control characters, NUL,
/// Unicode and 4 KiB lengths come back byte for byte, through every
/// operation and every handle.
pub async fn awkward_strings_round_trip(store: &dyn RegistryStore) {
    let long_name = "n".repeat(4096);
    let long_data: String = "αβγ\"\\\n\0".chars().cycle().take(4096).collect();
    let entries: Vec<(String, String)> = vec![
        (r#"q"x\y"#.into(), r#"127.0.0.1:1 "quoted" \back\"#.into()),
        ("'single' `back`".into(), "%q %s %d".into()),
        ("new\nline\r\n".into(), "tab\there\n".into()),
        ("nul\0inside".into(), "data\0with\0nuls\0".into()),
        ("\0".into(), "\0".into()),
        (
            "ctl\u{1}\u{7f}\u{1b}[0m".into(),
            "\u{7}\u{8}\u{c}\u{b}".into(),
        ),
        ("α".into(), "β".into()),
        ("日本語:42".into(), "😀 \u{200b}\u{feff}\u{2028}".into()),
        ("e\u{301}".into(), "\u{10ffff}".into()),
        ("a".into(), "lower".into()),
        ("A".into(), "upper".into()),
        ("a ".into(), "trailing space".into()),
        ("x".into(), String::new()),
        ("' OR 1=1; --".into(), "'); DROP TABLE hosts; --".into()),
        (long_name.clone(), long_data.clone()),
        (format!("{long_name}\u{e9}"), long_name.clone()),
    ];
    let a = store.open().await;
    let b = store.open().await;
    for (h, d) in &entries {
        a.announce(h, d)
            .await
            .unwrap_or_else(|e| panic!("announce {h:?}: {e}"));
    }
    for (h, d) in &entries {
        for reg in [&a, &b] {
            let got = reg
                .query(h)
                .await
                .unwrap_or_else(|e| panic!("query {h:?}: {e}"));
            assert_eq!(&got, d, "data of {h:?}");
        }
        assert_registry_error(
            b.announce(h, "dup").await,
            &*b,
            "announce",
            &[h, "dup"],
            &RegistryCause::HostDup,
        );
    }
    let r = b.list().await;
    if !unsupported(&r) {
        let listed: BTreeMap<String, String> = r.expect("list").into_iter().collect();
        let want: BTreeMap<String, String> = entries.iter().cloned().collect();
        assert_eq!(listed, want);
    }
    let r = b.unannounce(&entries[3].0, &entries[3].1).await;
    if !unsupported(&r) {
        assert!(r.expect("unannounce"), "entry with NULs not removed");
        // Data that differs only after a NUL is other data.
        assert!(!b
            .unannounce(&entries[4].0, "\0\0")
            .await
            .expect("unannounce"));
        assert_eq!(a.query(&entries[4].0).await.expect("query"), "\0");
    }
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

macro_rules! scenarios {
    ($d:tt $($name:ident),* $(,)?) => {
        /// The names of all registry scenarios, in the order they are listed.
        pub const SCENARIOS: &[&str] = &[$(stringify!($name)),*];

        /// The registry scenario called `name`, as a function.
        fn scenario(name: &str) -> Option<fn(Arc<dyn RegistryStore>) -> BoxFuture<'static, ()>> {
            match name {
                $(stringify!($name) => Some(|store| Box::pin(async move { $name(&*store).await })),)*
                _ => None,
            }
        }

        /// Expands into two `#[tokio::test]`s per registry scenario, on a
        /// current-thread and on a multi-thread runtime (modules
        /// `registry_current_thread` and `registry_multi_thread`), each
        /// calling `$factory()` (an async closure or function returning a
        /// [`RegistryStore`](crate::registry::RegistryStore)) for a fresh,
        /// empty store and running the scenario with
        /// [`run_with_timeout`](crate::registry::run_with_timeout).
        ///
        /// `registry_suite!(factory, timeout = Duration::from_secs(N))` sets
        /// the timeout, as for [`network_suite!`](crate::network_suite).
        #[macro_export]
        macro_rules! registry_suite {
            (@suite $d factory:expr, $d timeout:expr) => {
                async fn __virtnet_registry_store() -> impl $crate::registry::RegistryStore + 'static {
                    ($d factory)().await
                }
                fn __virtnet_registry_timeout() -> ::std::time::Duration {
                    $crate::suite_timeout($d timeout)
                }
                $crate::__runtime_tests!(
                    registry_current_thread,
                    registry_multi_thread,
                    $crate::registry::__case,
                    super::__virtnet_registry_timeout,
                    super::__virtnet_registry_store,
                    [$($name),*]
                );
            };
            ($d factory:expr, timeout = $d timeout:expr $d(,)?) => {
                $crate::registry_suite!(@suite $d factory, ::core::option::Option::Some($d timeout));
            };
            ($d factory:expr $d(,)?) => {
                $crate::registry_suite!(@suite $d factory, ::core::option::Option::None);
            };
        }
    };
}

/// Runs the registry scenario called `name` on `store`, with the
/// [`timeout`](crate::timeout) of the environment or
/// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT), in a task of its own (see
/// [`crate::run`]).
pub async fn run(name: &str, store: impl RegistryStore + 'static) -> Result<(), Failure> {
    run_with_timeout(name, store, crate::timeout()).await
}

/// [`run`] with at most `timeout` for the scenario.
pub async fn run_with_timeout(
    name: &str,
    store: impl RegistryStore + 'static,
    timeout: Duration,
) -> Result<(), Failure> {
    let store: Arc<dyn RegistryStore> = Arc::new(store);
    crate::run::run_found(name, timeout, scenario(name), store).await
}

/// One test of [`registry_suite!`](crate::registry_suite).
#[doc(hidden)]
pub async fn __case<S: RegistryStore + 'static>(
    name: &str,
    timeout: Duration,
    store: impl Future<Output = S>,
) {
    let to_dyn = async { Arc::new(store.await) as Arc<dyn RegistryStore> };
    crate::run::case(name, timeout, to_dyn, scenario(name)).await
}

scenarios!($
    announce_then_query,
    query_unknown_host,
    duplicate_announce_refused,
    close_then_down,
    close_is_per_handle,
    handles_share_one_store,
    concurrent_announces,
    unannounce_needs_matching_data,
    replace_needs_matching_data,
    list_every_entry,
    awkward_strings_round_trip,
);
