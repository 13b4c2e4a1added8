//! Running one scenario: in a task of its own, under a timeout, so that a
//! panic or a hang becomes a [`Failure`] that says what went wrong.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::waiting::{self, Waits};

/// How long a scenario may take unless configured otherwise: generous, since
/// a passing scenario takes milliseconds; only a hang reaches it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that sets the timeout of every scenario, in
/// seconds (`"90"`, `"2.5"`). It overrides [`DEFAULT_TIMEOUT`] and the
/// `timeout = …` of the suite macros, but not an explicit
/// [`run_scenario`] / `run_with_timeout` argument.
pub const TIMEOUT_ENV: &str = "VIRTNET_CONFORMANCE_TIMEOUT";

/// The timeout of a scenario: [`TIMEOUT_ENV`] if set, else [`DEFAULT_TIMEOUT`].
///
/// # Panics
/// If [`TIMEOUT_ENV`] is set to anything but a positive number of seconds.
pub fn timeout() -> Duration {
    suite_timeout(None)
}

/// The timeout of a suite configured with `timeout = configured`:
/// [`TIMEOUT_ENV`] if set, else `configured`, else [`DEFAULT_TIMEOUT`].
///
/// # Panics
/// If [`TIMEOUT_ENV`] is set to anything but a positive number of seconds.
pub fn suite_timeout(configured: Option<Duration>) -> Duration {
    match std::env::var(TIMEOUT_ENV) {
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs > 0.0 => Duration::from_secs_f64(secs),
            _ => panic!("{TIMEOUT_ENV}={text:?}: expected a positive number of seconds"),
        },
        Err(_) => configured.unwrap_or(DEFAULT_TIMEOUT),
    }
}

/// Why a scenario failed: its name and what happened.
///
/// Its `Display` says it all, for example
/// `scenario host_close_interrupts timed out after 2s waiting for: read on
/// α:2->β:1 to end with "host is down" (step: α closed)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    scenario: String,
    kind: FailureKind,
}

/// What went wrong in a [`Failure`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FailureKind {
    /// No scenario has this name.
    UnknownScenario,
    /// The scenario panicked (an assertion failed): the panic message.
    Panicked {
        /// The panic message.
        message: String,
        /// The last [`step`](crate::waiting::step) it announced.
        step: Option<String>,
    },
    /// The scenario did not finish in time.
    TimedOut {
        /// The timeout.
        after: Duration,
        /// The labelled awaits that were pending, in the order they started
        /// (`Display` shows the first ten).
        waiting_for: Vec<String>,
        /// The last [`step`](crate::waiting::step) it announced.
        step: Option<String>,
    },
}

impl Failure {
    /// A failure of `scenario`.
    pub fn new(scenario: impl Into<String>, kind: FailureKind) -> Failure {
        Failure {
            scenario: scenario.into(),
            kind,
        }
    }

    /// The name of the scenario.
    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// What went wrong.
    pub fn kind(&self) -> &FailureKind {
        &self.kind
    }

    /// Whether the scenario timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, FailureKind::TimedOut { .. })
    }

    /// What a timed-out scenario was waiting for (empty otherwise).
    pub fn waiting_for(&self) -> &[String] {
        match &self.kind {
            FailureKind::TimedOut { waiting_for, .. } => waiting_for,
            _ => &[],
        }
    }

    /// The panic message of a scenario that panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.kind {
            FailureKind::Panicked { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.scenario;
        match &self.kind {
            FailureKind::UnknownScenario => write!(f, "no scenario named {name:?}"),
            FailureKind::Panicked { message, step } => {
                write!(f, "scenario {name} failed")?;
                if let Some(step) = step {
                    write!(f, " (step: {step})")?;
                }
                write!(f, ": {message}")
            }
            FailureKind::TimedOut {
                after,
                waiting_for,
                step,
            } => {
                write!(f, "scenario {name} timed out after {after:?} ")?;
                if waiting_for.is_empty() {
                    write!(f, "waiting for nothing it labelled")?;
                } else {
                    // Many concurrent waits (200 dials) would drown the rest.
                    const SHOWN: usize = 10;
                    let shown = &waiting_for[..waiting_for.len().min(SHOWN)];
                    write!(f, "waiting for: {}", shown.join("; "))?;
                    if waiting_for.len() > SHOWN {
                        write!(f, "; and {} more", waiting_for.len() - SHOWN)?;
                    }
                }
                if let Some(step) = step {
                    write!(f, " (step: {step})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Failure {}

/// The text of a panic payload.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

/// Runs `scenario`, called `name`, in a task of its own with at most
/// `timeout` to finish: a panic or a timeout is a [`Failure`], never a
/// panic or a hang of the caller. On timeout the task is aborted, and the
/// failure lists the [labelled awaits](crate::waiting) still pending.
///
/// The scenario runs on the caller's runtime (current-thread or
/// multi-thread alike); it must not block the thread.
pub async fn run_scenario<F>(name: &str, timeout: Duration, scenario: F) -> Result<(), Failure>
where
    F: Future<Output = ()> + Send + 'static,
{
    let waits = Arc::new(Waits::default());
    let mut task = tokio::spawn(waiting::scope(waits.clone(), scenario));
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            let message = if e.is_panic() {
                panic_text(&*e.into_panic())
            } else {
                format!("its task was cancelled: {e}")
            };
            Err(Failure::new(
                name,
                FailureKind::Panicked {
                    message,
                    step: waits.step(),
                },
            ))
        }
        Err(_) => {
            let failure = Failure::new(
                name,
                FailureKind::TimedOut {
                    after: timeout,
                    waiting_for: waits.pending(),
                    step: waits.step(),
                },
            );
            task.abort();
            Err(failure)
        }
    }
}

/// Runs `scenario`, the one called `name` if there is one, on `fixture`.
pub(crate) async fn run_found<F>(
    name: &str,
    timeout: Duration,
    scenario: Option<fn(F) -> BoxFuture<'static, ()>>,
    fixture: F,
) -> Result<(), Failure> {
    match scenario {
        Some(scenario) => run_scenario(name, timeout, scenario(fixture)).await,
        None => Err(Failure::new(name, FailureKind::UnknownScenario)),
    }
}

/// One generated test: makes the fixture, runs the scenario, panics with
/// the failure.
pub(crate) async fn case<F, X: Into<F>>(
    name: &str,
    timeout: Duration,
    fixture: impl Future<Output = X>,
    scenario: Option<fn(F) -> BoxFuture<'static, ()>>,
) {
    let outcome = match make_fixture(name, timeout, fixture).await {
        Ok(fixture) => run_found(name, timeout, scenario, fixture.into()).await,
        Err(failure) => Err(failure),
    };
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// Makes the fixture of scenario `name` with `make`, under `timeout`, its
/// panic caught: the first thing a suite macro's test does.
pub(crate) async fn make_fixture<X>(
    name: &str,
    timeout: Duration,
    make: impl Future<Output = X>,
) -> Result<X, Failure> {
    let step = Some("making the fixture with the suite's factory".to_owned());
    let made = tokio::time::timeout(timeout, AssertUnwindSafe(make).catch_unwind()).await;
    match made {
        Ok(Ok(fixture)) => Ok(fixture),
        Ok(Err(payload)) => Err(Failure::new(
            name,
            FailureKind::Panicked {
                message: panic_text(&*payload),
                step,
            },
        )),
        Err(_) => Err(Failure::new(
            name,
            FailureKind::TimedOut {
                after: timeout,
                waiting_for: vec!["the suite's factory to make a fixture".to_owned()],
                step,
            },
        )),
    }
}
