//! The timing of a shaped link, shared by the two places bytes are shaped:
//! a receiving end's [`Shaper`](super::shaper::Shaper), and the
//! [`Outbox`](super::outbox::Outbox) that sends for an end whose peer does
//! not shape.
//!
//! - [`Delay`]: when bytes may pass (latency plus seeded jitter, never
//!   before bytes that came earlier);
//! - [`Bucket`]: a token bucket for the bandwidth;
//! - [`Alarm`]: a wake-up at an instant, finer than tokio's timer.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::rules::LinkFaults;

/// When bytes taken now may pass a link with latency and jitter.
pub(crate) struct Delay {
    rng: u64,
    last_due: Option<Instant>,
}

impl Delay {
    /// A delay whose jitter follows the sequence seeded by `seed`.
    pub(crate) fn new(seed: u64) -> Delay {
        Delay {
            rng: seed,
            last_due: None,
        }
    }

    /// When bytes taken now may pass the link with faults `f`: after its
    /// latency and a random jitter, never before bytes taken earlier.
    pub(crate) fn due(&mut self, f: &LinkFaults) -> Instant {
        let mut delay = f.latency;
        if !f.jitter.is_zero() {
            let nanos = u64::try_from(f.jitter.as_nanos()).unwrap_or(u64::MAX);
            delay += Duration::from_nanos(self.next_random() % nanos.saturating_add(1));
        }
        // Delays are bounded where they are set; a rule from elsewhere (a
        // store written by another version) must not overflow the clock.
        let now = Instant::now();
        let due = now
            .checked_add(delay)
            .unwrap_or(now + Duration::from_secs(86_400));
        let due = self.last_due.map_or(due, |last| due.max(last));
        self.last_due = Some(due);
        due
    }

    /// splitmix64: a small, seeded, reproducible sequence.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A token bucket: a rate, with a burst of a hundredth of a second's worth
/// (at least a byte, at most `max_burst`).
#[derive(Default)]
pub(crate) struct Bucket {
    tokens: f64,
    refilled: Option<Instant>,
}

impl Bucket {
    /// How many of `n` bytes may pass now at `rate` bytes per second (at
    /// least one, and they are taken), or how long to wait before any may.
    pub(crate) fn take(&mut self, rate: u64, n: usize, max_burst: usize) -> Result<usize, Instant> {
        let now = Instant::now();
        let rate = rate.max(1) as f64;
        let burst = (rate / 100.0).clamp(1.0, max_burst as f64);
        let last = self.refilled.unwrap_or(now);
        self.tokens = (self.tokens + now.duration_since(last).as_secs_f64() * rate).min(burst);
        if self.refilled.is_none() {
            self.tokens = burst;
        }
        self.refilled = Some(now);
        let want = (n as f64).min(burst);
        if self.tokens < want {
            let wait = Duration::from_secs_f64((want - self.tokens) / rate);
            return Err(now + wait);
        }
        let n = n.min(self.tokens as usize);
        self.tokens -= n as f64;
        Ok(n)
    }
}

/// How close to a deadline the finer timer takes over from tokio's.
const FINE: Duration = Duration::from_millis(2);

/// A wake-up at an instant. tokio's timer rounds deadlines up to its next
/// millisecond tick, so for the last stretch a finer timer
/// ([`super::timer`]) adds a wake-up at the instant itself; tokio's timer,
/// armed at the instant too, stays the one that counts under a paused
/// clock.
#[derive(Default)]
pub(crate) struct Alarm {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Alarm {
    /// Wakes the task of `cx` at `at` (at once if `at` has passed).
    pub(crate) fn wake_at(&mut self, cx: &mut Context<'_>, at: Instant) {
        let now = Instant::now();
        // A clock that runs ahead of the real one was paused and advanced
        // (a test's virtual time): tokio's timer is exact there.
        let virtual_clock = now.into_std() > std::time::Instant::now() + FINE;
        let tokio_at = if virtual_clock || at.saturating_duration_since(now) <= FINE {
            if !virtual_clock {
                super::timer::wake_at(at.into_std(), cx.waker());
            }
            at
        } else {
            at - FINE
        };
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                sleep.as_mut().reset(tokio_at);
                sleep
            }
            None => self
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(tokio_at))),
        };
        if sleep.as_mut().poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
    }
}
