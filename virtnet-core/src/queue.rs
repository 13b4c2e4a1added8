//! A listener's accept queue: connections that arrived and wait for
//! `accept`, the tasks waiting for them, and whether the listener is closed.
//!
//! The queue knows nothing of ports or hosts: the listener
//! ([`crate::listener`]) pops from it and allocates the port; the
//! subnetwork's delivery ([`crate::kernel`]) pushes into it.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

use crate::engine::{PendingConn, Queued, Withdraw};
use crate::{lock, Addr, VirtError};

/// The queue of one listener.
pub(crate) struct AcceptQueue {
    /// The listener's address.
    pub(crate) addr: Addr,
    state: Mutex<State>,
    /// Woken when the listener closes, for `ListenerCloser::closed`.
    closed: Notify,
}

struct State {
    /// The waiting connections, by increasing id.
    queue: VecDeque<(u64, Addr, Box<dyn PendingConn>)>,
    /// The id of the next connection queued.
    next_id: u64,
    /// How many connections may wait; past it, dials are refused.
    backlog: usize,
    /// Dials refused since the full queue was last looked through for
    /// abandoned connections (`None`: not full since the last accept). It is
    /// looked through again after an accept, or after as many refusals as
    /// it holds, so a refused dial costs O(1) on average.
    refused_since_sweep: Option<usize>,
    closed: Option<VirtError>,
    wakers: Vec<Waker>,
}

/// How many connections a listener queues by default, as Linux's
/// `somaxconn`.
pub(crate) const DEFAULT_BACKLOG: usize = 4096;

impl Default for State {
    fn default() -> State {
        State {
            queue: VecDeque::new(),
            next_id: 0,
            backlog: DEFAULT_BACKLOG,
            refused_since_sweep: None,
            closed: None,
            wakers: Vec::new(),
        }
    }
}

/// What [`AcceptQueue::poll_pop`] found.
pub(crate) enum Popped {
    /// The next connection, from the given source.
    Conn(Addr, Box<dyn PendingConn>),
    /// The listener is closed, for this reason.
    Closed(VirtError),
}

impl AcceptQueue {
    pub(crate) fn new(addr: Addr) -> AcceptQueue {
        AcceptQueue {
            addr,
            state: Mutex::default(),
            closed: Notify::new(),
        }
    }

    /// The next connection that is not abandoned, or the reason the
    /// listener is closed; registers `cx` while the queue is empty.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Popped> {
        let mut st = lock(&self.state);
        if let Some(reason) = st.closed {
            return Poll::Ready(Popped::Closed(reason));
        }
        while let Some((_, src, conn)) = st.queue.pop_front() {
            st.refused_since_sweep = None;
            if !conn.is_abandoned() {
                return Poll::Ready(Popped::Conn(src, conn));
            }
        }
        if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Whether connections wait in the queue.
    pub(crate) fn has_queued(&self) -> bool {
        !lock(&self.state).queue.is_empty()
    }

    /// How many connections wait in the queue.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// The reason the listener is closed, if it is.
    pub(crate) fn closed_reason(&self) -> Option<VirtError> {
        lock(&self.state).closed
    }

    /// Sets how many connections may wait (at least 1).
    pub(crate) fn set_backlog(&self, backlog: usize) {
        let mut st = lock(&self.state);
        st.backlog = backlog.max(1);
        st.refused_since_sweep = None;
    }

    /// Queues a connection; gives it back if the listener is closed, or if
    /// its backlog is full of connections whose dialers still wait.
    pub(crate) fn push(
        this: &Arc<AcceptQueue>,
        src: Addr,
        conn: Box<dyn PendingConn>,
    ) -> Result<Queued, Box<dyn PendingConn>> {
        let (queued, wakers) = {
            let mut st = lock(&this.state);
            if st.closed.is_some() {
                return Err(conn);
            }
            if st.queue.len() >= st.backlog {
                // Dialers that gave up make room.
                let sweep = st.refused_since_sweep.is_none_or(|n| n >= st.backlog);
                if sweep {
                    st.queue.retain(|(_, _, queued)| !queued.is_abandoned());
                    st.refused_since_sweep = Some(0);
                }
                if st.queue.len() >= st.backlog {
                    if let Some(n) = &mut st.refused_since_sweep {
                        *n += 1;
                    }
                    return Err(conn);
                }
            }
            let id = st.next_id;
            st.next_id += 1;
            st.queue.push_back((id, src, conn));
            let awaited = !st.wakers.is_empty();
            let queue: Weak<dyn Withdraw> = Arc::downgrade(this) as Weak<dyn Withdraw>;
            (
                Queued::new(queue, id, awaited),
                this.to_wake(&mut st.wakers),
            )
        };
        wakers.into_iter().for_each(Waker::wake);
        Ok(queued)
    }

    /// Closes with `reason`: refuses what is queued and wakes the accepts.
    /// False if it was already closed.
    pub(crate) fn shut(&self, reason: VirtError) -> bool {
        let (queue, wakers) = {
            let mut st = lock(&self.state);
            if st.closed.is_some() {
                return false;
            }
            st.closed = Some(reason);
            (
                std::mem::take(&mut st.queue),
                std::mem::take(&mut st.wakers),
            )
        };
        for (_, _, conn) in queue {
            conn.refuse(VirtError::ConnRefused);
        }
        wakers.into_iter().for_each(Waker::wake);
        self.closed.notify_waiters();
        true
    }

    /// Completes when the listener is closed.
    pub(crate) async fn wait_closed(&self) {
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.closed_reason().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Takes from `registered` the wakers an arrival wakes: all but that of
    /// a task driving arrivals in for this queue on this thread, which stays
    /// registered. That task looks at the queue right after; waking it while
    /// it runs would only re-queue it, as a yield, and on a multi-thread
    /// runtime that wakes another worker to steal it.
    fn to_wake(&self, registered: &mut Vec<Waker>) -> Vec<Waker> {
        match Driving::task_for(self) {
            Some(driving) if registered.iter().any(|w| w.will_wake(&driving)) => {
                let (stay, wake) = std::mem::take(registered)
                    .into_iter()
                    .partition(|w| w.will_wake(&driving));
                *registered = stay;
                wake
            }
            _ => std::mem::take(registered),
        }
    }
}

impl Withdraw for AcceptQueue {
    fn withdraw(&self, id: u64) -> bool {
        let withdrawn = {
            let mut st = lock(&self.state);
            match st.queue.binary_search_by_key(&id, |(queued, _, _)| *queued) {
                Ok(at) => st.queue.remove(at),
                Err(_) => None,
            }
        };
        // Dropped outside the lock: that may close a socket.
        withdrawn.is_some()
    }
}

thread_local! {
    /// The queue (its address) and the task whose accept is driving the
    /// engine on this thread at this moment (see [`Driving`]).
    static DRIVING: RefCell<Option<(usize, Waker)>> = const { RefCell::new(None) };
}

/// Marks the current task as driving arrivals in for a queue until dropped:
/// what the engine's accept driver queues there meanwhile does not wake
/// that task (see [`AcceptQueue::to_wake`]).
pub(crate) struct Driving;

impl Driving {
    pub(crate) fn start(queue: &AcceptQueue, waker: &Waker) -> Driving {
        Driving::set(Some((queue_id(queue), waker.clone())));
        Driving
    }

    /// Sets what `DRIVING` holds; a no-op while the thread's locals are
    /// being torn down.
    fn set(value: Option<(usize, Waker)>) {
        let _ = DRIVING.try_with(|d| {
            if let Ok(mut d) = d.try_borrow_mut() {
                *d = value;
            }
        });
    }

    /// The task driving arrivals in for `queue` on this thread, if any.
    fn task_for(queue: &AcceptQueue) -> Option<Waker> {
        let id = queue_id(queue);
        DRIVING
            .try_with(|d| match d.try_borrow().as_deref() {
                Ok(Some((driven, waker))) if *driven == id => Some(waker.clone()),
                _ => None,
            })
            .ok()
            .flatten()
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        Driving::set(None);
    }
}

fn queue_id(queue: &AcceptQueue) -> usize {
    std::ptr::from_ref(queue) as usize
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::engine::Transport;

    /// A pending connection whose dialer gives up when `gone` is set.
    struct Dialer {
        gone: Arc<AtomicBool>,
    }

    impl PendingConn for Dialer {
        fn accept(self: Box<Self>, _: &Addr) -> std::io::Result<Box<dyn Transport>> {
            Err(std::io::ErrorKind::ConnectionAborted.into())
        }

        fn refuse(self: Box<Self>, _: VirtError) {}

        fn is_abandoned(&self) -> bool {
            self.gone.load(Ordering::Relaxed)
        }
    }

    fn dialer() -> (Box<dyn PendingConn>, Arc<AtomicBool>) {
        let gone = Arc::new(AtomicBool::new(false));
        (Box::new(Dialer { gone: gone.clone() }), gone)
    }

    #[test]
    fn backlog_refuses_only_live_dialers_and_withdraw_takes_back() {
        let q = Arc::new(AcceptQueue::new(Addr::new("n", "α", 1)));
        q.set_backlog(2);
        let src = Addr::new("n", "β", 1);
        let (a, a_gone) = dialer();
        let (b, _) = dialer();
        let first = AcceptQueue::push(&q, src.clone(), a).ok().expect("queued");
        assert!(!first.awaited());
        let second = AcceptQueue::push(&q, src.clone(), b).ok().expect("queued");
        assert!(
            AcceptQueue::push(&q, src.clone(), dialer().0).is_err(),
            "full"
        );
        // a dialer that gave up makes room, at the latest after as many
        // refusals as the backlog holds
        a_gone.store(true, Ordering::Relaxed);
        let third = (0..3)
            .find_map(|_| AcceptQueue::push(&q, src.clone(), dialer().0).ok())
            .expect("room");
        assert_eq!(q.len(), 2);
        assert!(!first.withdraw(), "already dropped by the sweep");
        assert!(second.withdraw());
        assert!(third.withdraw());
        assert_eq!(q.len(), 0);
        q.shut(VirtError::SockDown);
        assert!(AcceptQueue::push(&q, src, dialer().0).is_err(), "closed");
    }
}
