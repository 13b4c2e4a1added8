//! The suite fails, never hangs: deliberately buggy networks, built on
//! `virtnet_core::SubNetwork` with engines of their own, make scenarios
//! time out with a failure that names the scenario and what it waited for.
//!
//! Each test runs on both runtimes (a current-thread and a multi-thread
//! one), since a hang can look different on each.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use conformance_tests::{run_scenario, run_with_timeout, step, Failure, FailureKind, WaitingFor};
use pipenet::RamRegistry;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::oneshot;
use virtnet_core::engine::{
    async_trait, Dialed, Engine, Inbox, PendingConn, ShutdownHandle, Transport,
};
use virtnet_core::{Addr, SubNetwork, VirtError};

/// Short: these scenarios are expected to hang.
const SHORT: Duration = Duration::from_secs(2);

/// Which rule the engine breaks.
#[derive(Clone, Copy, Debug)]
enum Bug {
    /// `Transport::shutdown_handle` does nothing: a host or subnetwork that
    /// goes down leaves reads and writes on its connections blocked.
    AbortDoesNothing,
    /// Deliveries never report `is_abandoned`, and accepting one succeeds
    /// even when its dialer is gone: a dropped dial's connection is
    /// accepted in place of a live one.
    IgnoresAbandonedDials,
}

/// An in-process engine over `tokio::io::duplex`, with one bug.
struct BuggyEngine {
    inbox: Inbox,
    bug: Bug,
}

/// One end of a duplex pipe.
struct Duplex(DuplexStream);

impl AsyncRead for Duplex {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Duplex {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Transport for Duplex {
    /// The bug shared by both engines: shutting the transport down from
    /// outside does nothing.
    fn shutdown_handle(&self) -> ShutdownHandle {
        Box::new(|| {})
    }
}

/// A pipe end waiting in a listener's queue, with the line back to its dialer.
struct Pending {
    end: DuplexStream,
    answer: oneshot::Sender<Result<Addr, VirtError>>,
    bug: Bug,
}

impl PendingConn for Pending {
    fn accept(self: Box<Self>, local: &Addr) -> io::Result<Box<dyn Transport>> {
        let told = self.answer.send(Ok(local.clone()));
        match self.bug {
            // The dialer being gone goes unnoticed.
            Bug::IgnoresAbandonedDials => Ok(Box::new(Duplex(self.end))),
            Bug::AbortDoesNothing => match told {
                Ok(()) => Ok(Box::new(Duplex(self.end))),
                Err(_) => Err(io::ErrorKind::ConnectionAborted.into()),
            },
        }
    }

    fn refuse(self: Box<Self>, reason: VirtError) {
        let _ = self.answer.send(Err(reason));
    }

    fn is_abandoned(&self) -> bool {
        match self.bug {
            Bug::IgnoresAbandonedDials => false,
            Bug::AbortDoesNothing => self.answer.is_closed(),
        }
    }
}

#[async_trait]
impl Engine for BuggyEngine {
    async fn new_host(&self, _host: &str) -> io::Result<String> {
        Ok(String::new())
    }

    async fn dial(&self, src: &Addr, dst: &Addr, _dst_data: &str) -> io::Result<Dialed> {
        let (mine, theirs) = tokio::io::duplex(64 << 10);
        let (answer, accepted) = oneshot::channel();
        let pending = Box::new(Pending {
            end: theirs,
            answer,
            bug: self.bug,
        });
        self.inbox
            .deliver(src.clone(), dst, pending)
            .map_err(|undelivered| io::Error::from(undelivered.reason))?;
        match accepted.await {
            Ok(Ok(peer)) => Ok(Dialed {
                transport: Box::new(Duplex(mine)),
                peer,
            }),
            Ok(Err(reason)) => Err(reason.into()),
            Err(_) => Err(VirtError::ConnRefused.into()),
        }
    }

    async fn close(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A fresh subnetwork of a network whose engine has `bug`.
fn buggy(bug: Bug) -> SubNetwork {
    static N: AtomicUsize = AtomicUsize::new(0);
    let network = format!("buggy{}", N.fetch_add(1, Ordering::Relaxed));
    let registry = Arc::new(RamRegistry::new(&network));
    SubNetwork::new(network, registry, |inbox| BuggyEngine { inbox, bug })
}

/// Runs `scenario` on a network with `bug` with the short timeout; asserts
/// that it fails by timing out, in about that time, and returns the failure.
async fn times_out(bug: Bug, scenario: &str) -> Failure {
    let started = Instant::now();
    let failure = run_with_timeout(scenario, buggy(bug).into(), SHORT)
        .await
        .expect_err(&format!("{scenario} passed on an engine with {bug:?}"));
    let took = started.elapsed();
    assert!(
        took >= SHORT,
        "{scenario} timed out after {took:?}: {failure}"
    );
    assert!(
        took < SHORT * 5,
        "{scenario} took {took:?} to time out: {failure}"
    );
    assert_eq!(failure.scenario(), scenario);
    assert!(failure.is_timeout(), "{failure}");
    let text = failure.to_string();
    assert!(
        text.starts_with(&format!(
            "scenario {scenario} timed out after 2s waiting for: "
        )),
        "{text}"
    );
    eprintln!("{text}");
    failure
}

/// Runs `test` on a current-thread runtime, then on a multi-thread one.
fn on_both_runtimes<F: std::future::Future<Output = ()>>(test: impl Fn() -> F) {
    for multi in [false, true] {
        let mut builder = if multi {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        let rt = builder.enable_all().build().expect("runtime");
        rt.block_on(test());
    }
}

#[test]
fn no_abort_hangs_host_close_interrupts_which_fails_in_time() {
    on_both_runtimes(|| async {
        let failure = times_out(Bug::AbortDoesNothing, "host_close_interrupts").await;
        // the accept ends (the core closes listeners); the read and write
        // would end only if the engine's abort woke them
        let read = "read on α:2->β:1 to end with \"host is down\" after closing host α";
        let write = "write on α:3->β:2 to end with \"host is down\" after closing host α";
        let waits = failure.waiting_for();
        assert!(waits.iter().any(|w| w == read), "{failure}");
        assert!(waits.iter().any(|w| w == write), "{failure}");
        assert!(
            waits.iter().any(|w| w == "the task reading on α:2"),
            "{failure}"
        );
        assert!(failure.to_string().contains(read), "{failure}");
        assert!(
            failure.to_string().ends_with("(step: closing host α)"),
            "{failure}"
        );
    });
}

#[test]
fn no_abort_hangs_subnetwork_close_scenarios_which_fail_in_time() {
    on_both_runtimes(|| async {
        let failure = times_out(Bug::AbortDoesNothing, "subnetwork_close").await;
        let read = "read on α:2->β:1 to end with \"network is down\" after closing the subnetwork";
        assert!(failure.waiting_for().iter().any(|w| w == read), "{failure}");

        let failure = times_out(
            Bug::AbortDoesNothing,
            "subnetwork_close_ends_cross_host_read",
        )
        .await;
        let read = "read on β:1->α:2 to end with \"network is down\" after the subnetwork closed";
        assert!(failure.waiting_for().iter().any(|w| w == read), "{failure}");
    });
}

#[test]
fn ignored_abandoned_dials_hang_dropped_dial_leaks_nothing_which_fails_in_time() {
    on_both_runtimes(|| async {
        let failure = times_out(Bug::IgnoresAbandonedDials, "dropped_dial_leaks_nothing").await;
        // the accept took a dropped dial's connection: the live dial waits
        assert_eq!(failure.waiting_for(), ["dial α:1 from β"], "{failure}");
        assert!(
            failure
                .to_string()
                .ends_with("(step: 3 dials dropped; a 4th dial and an accept)"),
            "{failure}"
        );
    });
}

/// The buggy engines are otherwise sound: scenarios that need neither
/// abort nor abandoned dials pass on them.
#[test]
fn buggy_engines_pass_what_their_bugs_do_not_touch() {
    on_both_runtimes(|| async {
        for bug in [Bug::AbortDoesNothing, Bug::IgnoresAbandonedDials] {
            for scenario in ["reference_scenario", "half_close", "listener_close"] {
                if let Err(failure) = run_with_timeout(scenario, buggy(bug).into(), SHORT * 5).await
                {
                    panic!("{bug:?}: {failure}");
                }
            }
        }
    });
}

/// The runner on its own: a panic, a hang and an unknown name each become a
/// failure that says so.
#[test]
fn the_runner_turns_panics_and_hangs_into_failures() {
    on_both_runtimes(|| async {
        let failure = run_scenario("panics", SHORT, async {
            step("about to panic");
            panic!("the assertion text");
        })
        .await
        .unwrap_err();
        assert_eq!(
            failure.kind(),
            &FailureKind::Panicked {
                message: "the assertion text".into(),
                step: Some("about to panic".into()),
            }
        );
        assert_eq!(
            failure.to_string(),
            "scenario panics failed (step: about to panic): the assertion text"
        );

        let timeout = Duration::from_millis(200);
        let failure = run_scenario("hangs", timeout, async {
            step("the last step");
            let never = std::future::pending::<()>();
            let (_, _) = tokio::join!(
                never.waiting_for("something that never comes"),
                conformance_tests::spawn(
                    std::future::pending::<()>().waiting_for("a spawned task's wait")
                ),
            );
        })
        .await
        .unwrap_err();
        // the spawned task may register its wait first on a multi-thread runtime
        let mut waits = failure.waiting_for().to_vec();
        waits.sort();
        assert_eq!(
            waits,
            ["a spawned task's wait", "something that never comes"]
        );
        let text = failure.to_string();
        assert!(
            text.starts_with("scenario hangs timed out after 200ms waiting for: "),
            "{text}"
        );
        assert!(text.ends_with(" (step: the last step)"), "{text}");

        let failure = run_scenario("hangs-unlabelled", timeout, std::future::pending())
            .await
            .unwrap_err();
        assert_eq!(
            failure.to_string(),
            "scenario hangs-unlabelled timed out after 200ms waiting for nothing it labelled"
        );

        assert!(run_scenario("passes", timeout, async {}).await.is_ok());

        let failure = run_with_timeout("nope", buggy(Bug::AbortDoesNothing).into(), timeout)
            .await
            .unwrap_err();
        assert_eq!(failure.kind(), &FailureKind::UnknownScenario);
    });
}
