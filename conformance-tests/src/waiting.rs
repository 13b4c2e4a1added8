//! What a scenario is waiting for: labels that a timed-out scenario reports.
//!
//! A scenario runs under a timeout (see [`run_scenario`](crate::run_scenario)).
//! When it expires, the [`Failure`](crate::Failure) names every labelled
//! await that was still pending, so "timed out" says *what* never came:
//! "read on α:2->β:1 to end with host is down".
//!
//! - [`WaitingFor::waiting_for`]: labels one await,
//!   `l.accept().waiting_for("accept on α:1").await`. The label counts from
//!   the future's first poll until it completes or is dropped; several may
//!   be pending at once (the two sides of a `join!`), and all are reported.
//! - [`step`]: names the current phase of a scenario; reported with a
//!   timeout or a panic.
//! - [`spawn`]: `tokio::spawn` that keeps the labels of the spawned task
//!   (a plain `tokio::spawn`ed task's labels are not seen).
//! - [`spawn_blocked`]: spawns a future and returns once it is blocked
//!   (has returned `Pending` once), an event to wait on instead of a sleep.
//!
//! Outside a scenario run (no runner around), labels and steps cost little
//! and do nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What one scenario run is waiting for, shared by its tasks and its runner.
#[derive(Default)]
pub(crate) struct Waits {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    /// Labelled awaits pending now, in the order they started.
    pending: Vec<(u64, String)>,
    step: Option<String>,
}

impl Waits {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start(&self, what: String) -> u64 {
        let mut st = self.state();
        st.next += 1;
        let id = st.next;
        st.pending.push((id, what));
        id
    }

    fn end(&self, id: u64) {
        self.state().pending.retain(|(i, _)| *i != id);
    }

    /// The labels of the awaits pending now.
    pub(crate) fn pending(&self) -> Vec<String> {
        self.state()
            .pending
            .iter()
            .map(|(_, w)| w.clone())
            .collect()
    }

    /// The last [`step`].
    pub(crate) fn step(&self) -> Option<String> {
        self.state().step.clone()
    }
}

tokio::task_local! {
    static WAITS: Arc<Waits>;
}

fn current() -> Option<Arc<Waits>> {
    WAITS.try_with(Arc::clone).ok()
}

/// Runs `fut` with `waits` as the place its labels go.
pub(crate) fn scope<F: Future>(waits: Arc<Waits>, fut: F) -> impl Future<Output = F::Output> {
    WAITS.scope(waits, fut)
}

/// Names the current phase of the running scenario ("host α closed; checking
/// its peers"), until the next `step`. Reported when the scenario times out
/// or panics.
pub fn step(what: impl Into<String>) {
    if let Some(waits) = current() {
        waits.state().step = Some(what.into());
    }
}

/// Labels an await: see [`WaitingFor::waiting_for`].
pub fn waiting_for<F: Future>(what: impl Into<String>, fut: F) -> Labelled<F> {
    Labelled {
        fut: Box::pin(fut),
        what: Some(what.into()),
        waits: current(),
        id: None,
    }
}

/// Labels futures with what awaiting them waits for.
pub trait WaitingFor: Future + Sized {
    /// This future, reported as `what` if the scenario times out while it
    /// is pending.
    fn waiting_for(self, what: impl Into<String>) -> Labelled<Self> {
        waiting_for(what, self)
    }
}

impl<F: Future> WaitingFor for F {}

/// A future with a label (see [`WaitingFor::waiting_for`]).
pub struct Labelled<F> {
    fut: Pin<Box<F>>,
    what: Option<String>,
    waits: Option<Arc<Waits>>,
    /// Its entry among the pending labels, from the first poll on.
    id: Option<u64>,
}

impl<F> Labelled<F> {
    fn end(&mut self) {
        if let (Some(waits), Some(id)) = (&self.waits, self.id.take()) {
            waits.end(id);
        }
    }
}

impl<F: Future> Future for Labelled<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if let Some(what) = this.what.take() {
            if this.waits.is_none() {
                this.waits = current();
            }
            if let Some(waits) = &this.waits {
                this.id = Some(waits.start(what));
            }
        }
        let polled = this.fut.as_mut().poll(cx);
        if polled.is_ready() {
            this.end();
        }
        polled
    }
}

impl<F> Drop for Labelled<F> {
    fn drop(&mut self) {
        self.end();
    }
}

/// `tokio::spawn`, keeping the spawned task's labels and steps in the
/// running scenario's report.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match current() {
        Some(waits) => tokio::spawn(scope(waits, fut)),
        None => tokio::spawn(fut),
    }
}

/// Spawns `fut` (as [`spawn`] does) and returns once it is blocked: once it
/// has returned `Pending` for the first time, or has finished. So a
/// scenario can block a read or a dial in a task, then act on it, without
/// sleeping.
pub async fn spawn_blocked<F>(what: impl Into<String>, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let what = what.into();
    let (tx, rx) = oneshot::channel();
    let task = spawn(FirstPending {
        fut: Box::pin(fut),
        blocked: Some(tx),
    });
    // An error means it finished without blocking: the caller's checks
    // of its result will say so.
    let _ = rx.waiting_for(format!("{what} to block")).await;
    task
}

/// Tells `blocked` when the future first returns `Pending`.
struct FirstPending<F> {
    fut: Pin<Box<F>>,
    blocked: Option<oneshot::Sender<()>>,
}

impl<F: Future> Future for FirstPending<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let polled = this.fut.as_mut().poll(cx);
        match polled {
            Poll::Pending => {
                if let Some(tx) = this.blocked.take() {
                    let _ = tx.send(());
                }
            }
            Poll::Ready(_) => this.blocked = None,
        }
        polled
    }
}
