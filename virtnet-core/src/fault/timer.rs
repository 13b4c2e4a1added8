//! Wake-ups finer than tokio's timer, whose millisecond ticks round every
//! deadline up (a byte due at 10.3 ms would wait for the 11 ms tick). One
//! thread per process, started on first use, wakes tasks at their instant
//! (within tens of microseconds). Only ever an extra wake-up next to a
//! tokio timer: a task woken here checks tokio's clock itself, so under a
//! paused clock nothing happens before tokio's timer says so.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

use crate::lock;

/// One wake-up: when, and a sequence number to order equal instants.
struct Entry {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Where wake-ups go to the timer thread.
type Requests = Mutex<Sender<(Instant, Waker)>>;

/// Wakes `waker` at `at` (or at once, if that has passed). Without a timer
/// thread (it could not be started) it does nothing: the caller's tokio
/// timer still wakes the task, a little later.
pub(crate) fn wake_at(at: Instant, waker: &Waker) {
    static TIMER: OnceLock<Option<Requests>> = OnceLock::new();
    let timer = TIMER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(Instant, Waker)>();
        std::thread::Builder::new()
            .name("virtnet-timer".into())
            .spawn(move || run(rx))
            .ok()
            .map(|_| Mutex::new(tx))
    });
    if let Some(tx) = timer {
        let _ = lock(tx).send((at, waker.clone()));
    }
}

fn run(rx: mpsc::Receiver<(Instant, Waker)>) {
    let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(e)) = heap.pop() {
                e.waker.wake();
            }
        }
        let next = match heap.peek() {
            Some(Reverse(e)) => rx.recv_timeout(e.at.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, waker)) => {
                seq += 1;
                heap.push(Reverse(Entry { at, seq, waker }));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
