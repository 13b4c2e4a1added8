//! Sending through a link's faults, for a connection end whose peer does
//! not shape what it receives (a reference Go/Python lonet process): the
//! bytes this end writes wait here, stamped when written, and a task of
//! their own writes them to the connection when the link lets them pass.
//!
//! A partition stops the task: what is written meanwhile is held here, up
//! to [`WINDOW`] bytes, then the writer waits (as TCP's window would make
//! it), and after the heal it all flows, in order. Latency and jitter delay
//! each byte from when it was written; bandwidth paces the task. A shutdown
//! is passed on after the bytes written before it. When the connection is
//! dropped, the task still delivers what it holds, unless the link is
//! partitioned or reset; then the held bytes are dropped with it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::AsyncWrite;
use tokio::time::Instant;

use super::pace::{Alarm, Bucket, Delay};
use super::rules::{Link, LinkFaults};
use super::shaper::WINDOW;
use super::state::FaultState;
use crate::lock;

/// A writer the task sends with.
pub(crate) type Writer = Box<dyn AsyncWrite + Send + Sync + Unpin>;

/// The connection's side: where its writes go.
pub(crate) struct Outbox {
    shared: Arc<Mutex<Shared>>,
    delay: Delay,
}

/// What the connection and the task share.
#[derive(Default)]
struct Shared {
    /// Bytes written and when each piece may be sent.
    queue: VecDeque<(Instant, Vec<u8>)>,
    queued: usize,
    /// The connection shut its writing side: pass it on after the queue.
    shutdown: bool,
    /// The connection is gone.
    dropped: bool,
    /// Why the task stopped sending, for the connection's next write.
    failed: Option<io::ErrorKind>,
    /// The connection's writer, waiting for room.
    writer: Option<Waker>,
    /// The task, waiting for bytes.
    task: Option<Waker>,
}

impl Outbox {
    /// Starts sending through `link` with `writer`, for a connection made
    /// when the network had made `born` resets; jitter seeded by `seed`.
    /// `None` outside a tokio runtime (nothing to run the task on).
    pub(crate) fn start(
        state: Arc<FaultState>,
        link: Link,
        born: u64,
        writer: Writer,
        seed: u64,
    ) -> Option<Outbox> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let task = Sender {
            shared: shared.clone(),
            waiter: state.waiter(),
            state,
            link,
            born,
            writer,
            bucket: Bucket::default(),
            alarm: Alarm::default(),
            shut: false,
        };
        runtime.spawn(task.run());
        Some(Outbox {
            shared,
            delay: Delay::new(seed),
        })
    }

    /// Takes what fits of `data` (stamped by the link's faults `f` now),
    /// or waits for room.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        f: &LinkFaults,
    ) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.shared);
        if let Some(kind) = shared.failed {
            return Poll::Ready(Err(kind.into()));
        }
        if data.is_empty() {
            // A flush (or an empty write): nothing to wait for.
            return Poll::Ready(Ok(0));
        }
        if shared.shutdown {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = WINDOW.saturating_sub(shared.queued);
        if room == 0 {
            shared.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        let due = self.delay.due(f);
        shared.queue.push_back((due, data[..n].to_vec()));
        shared.queued += n;
        if let Some(task) = shared.task.take() {
            task.wake();
        }
        Poll::Ready(Ok(n))
    }

    /// Shuts the writing side after what was written; done at once.
    pub(crate) fn shutdown(&mut self) -> io::Result<()> {
        let mut shared = lock(&self.shared);
        if let Some(kind) = shared.failed {
            return Err(kind.into());
        }
        shared.shutdown = true;
        if let Some(task) = shared.task.take() {
            task.wake();
        }
        Ok(())
    }
}

impl Outbox {
    /// Drops what is held, unsent, and stops the task (the connection is
    /// being reset).
    pub(crate) fn abort(&mut self) {
        let mut shared = lock(&self.shared);
        shared.queue.clear();
        shared.queued = 0;
        shared.dropped = true;
        shared.failed = Some(io::ErrorKind::ConnectionReset);
        if let Some(task) = shared.task.take() {
            task.wake();
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut shared = lock(&self.shared);
        shared.dropped = true;
        if let Some(task) = shared.task.take() {
            task.wake();
        }
    }
}

/// The task's side.
struct Sender {
    shared: Arc<Mutex<Shared>>,
    state: Arc<FaultState>,
    waiter: u64,
    link: Link,
    born: u64,
    writer: Writer,
    bucket: Bucket,
    alarm: Alarm,
    /// The shutdown was passed on.
    shut: bool,
}

impl Sender {
    async fn run(mut self) {
        poll_fn(|cx| self.poll_send(cx)).await;
        self.state.forget(self.waiter);
    }

    /// Sends what may be sent; ready when there is nothing more to do.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let seen = self.state.version();
            let f = self.state.rules().link(&self.link);
            let reset = f.unreachable || f.reset > self.born;
            let mut shared = lock(&self.shared);
            if shared.failed.is_some() {
                // Aborted: nothing more is sent.
                return Poll::Ready(());
            }
            if reset || (f.partition && shared.dropped) {
                // The connection fails (or is gone): what it held goes.
                shared.failed.get_or_insert(io::ErrorKind::ConnectionReset);
                wake(shared.writer.take());
                return Poll::Ready(());
            }
            // Woken by a change of the rules, and by the connection.
            self.state.wake_on_change(self.waiter, seen, cx.waker());
            shared.task = Some(cx.waker().clone());
            if f.partition {
                return Poll::Pending;
            }
            let Some((due, data)) = shared.queue.front() else {
                if shared.shutdown && !self.shut {
                    drop(shared);
                    match Pin::new(&mut self.writer).poll_shutdown(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(_) => self.shut = true,
                    }
                    continue;
                }
                return if shared.dropped {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                };
            };
            if *due > Instant::now() {
                let due = *due;
                drop(shared);
                self.alarm.wake_at(cx, due);
                return Poll::Pending;
            }
            let mut n = data.len();
            if let Some(rate) = f.bandwidth {
                match self.bucket.take(rate, n, WINDOW) {
                    Ok(allowed) => n = allowed,
                    Err(at) => {
                        drop(shared);
                        self.alarm.wake_at(cx, at);
                        return Poll::Pending;
                    }
                }
            }
            // Written from a copy of the head, outside the lock: the
            // connection may push meanwhile, never take from the front.
            let chunk = data[..n].to_vec();
            drop(shared);
            match Pin::new(&mut self.writer).poll_write(cx, &chunk) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    let mut shared = lock(&self.shared);
                    shared.failed = Some(e.kind());
                    wake(shared.writer.take());
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(written)) => {
                    let mut shared = lock(&self.shared);
                    if let Some((_, head)) = shared.queue.front_mut() {
                        if written >= head.len() {
                            shared.queue.pop_front();
                        } else {
                            head.drain(..written);
                        }
                    }
                    shared.queued = shared.queued.saturating_sub(written);
                    wake(shared.writer.take());
                }
            }
        }
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}
