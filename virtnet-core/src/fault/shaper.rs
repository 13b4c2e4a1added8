//! Shaping one connection end's incoming bytes by the faults on its link.
//!
//! Each end shapes what it receives (the link from its peer to itself), so
//! a connection between two processes is shaped once per direction, by the
//! receiver. Held bytes stay in the transport (a partition stops reading
//! it, so the writer feels the window fill); delayed bytes wait here, at
//! most [`WINDOW`] of them, stamped when they were read off the transport.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::rules::{Link, LinkFaults};
use super::state::FaultState;

/// The most bytes a shaper holds back (delayed, not yet due).
pub(crate) const WINDOW: usize = 64 * 1024;

/// Why a shaped operation failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The link was reset (or made unreachable) after the connection was made.
    Reset,
    /// The transport failed.
    Io(io::Error),
}

/// What came off the transport, and when it may be read.
enum Item {
    Data(Vec<u8>, usize),
    Eof,
    Err(io::Error),
}

/// The incoming side of one connection end, under faults.
pub(crate) struct Shaper {
    state: Arc<FaultState>,
    /// Where a read, and a write, of this end wait for a fault change:
    /// apart, as a split connection reads and writes in two tasks.
    read_waiter: u64,
    write_waiter: u64,
    incoming: Link,
    outgoing: Link,
    /// The network's reset count when the connection was made.
    born: u64,
    seen: u64,
    faults_in: LinkFaults,
    faults_out: LinkFaults,
    reset: bool,
    /// Bytes this end wrote while its outgoing link was partitioned.
    held_out: u64,
    /// Held bytes set free by the partition's end, not yet reported.
    released: Option<u64>,
    queue: VecDeque<(Instant, Item)>,
    queued: usize,
    ended: bool,
    last_due: Option<Instant>,
    tokens: f64,
    refilled: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    rng: u64,
}

impl Shaper {
    /// The shaper of the end `local` whose peer is `peer` (host names), for
    /// a connection made when the network had made `born` resets.
    pub(crate) fn new(
        state: Arc<FaultState>,
        local: &str,
        peer: &str,
        ports: (u32, u32),
        born: u64,
    ) -> Shaper {
        let rules = state.rules();
        let incoming = Link::new(peer, local);
        let outgoing = incoming.reversed();
        let rng = rules.seed
            ^ fnv(local.as_bytes()).rotate_left(17)
            ^ fnv(peer.as_bytes()).rotate_left(41)
            ^ (u64::from(ports.0) << 32 | u64::from(ports.1));
        Shaper {
            read_waiter: state.waiter(),
            write_waiter: state.waiter(),
            faults_in: rules.link(&incoming),
            faults_out: rules.link(&outgoing),
            seen: rules.version,
            state,
            incoming,
            outgoing,
            born,
            reset: false,
            held_out: 0,
            released: None,
            queue: VecDeque::new(),
            queued: 0,
            ended: false,
            last_due: None,
            tokens: 0.0,
            refilled: None,
            sleep: None,
            rng,
        }
    }

    /// Catches up with the rules; true if the connection is (now) reset.
    fn refresh(&mut self) -> bool {
        if self.state.version() != self.seen {
            let rules = self.state.rules();
            self.seen = rules.version;
            self.faults_in = rules.link(&self.incoming);
            let was_held = self.faults_out.partition;
            self.faults_out = rules.link(&self.outgoing);
            if was_held && !self.faults_out.partition && self.held_out > 0 {
                self.released = Some(std::mem::take(&mut self.held_out));
            }
        }
        let (i, o) = (&self.faults_in, &self.faults_out);
        if i.unreachable || o.unreachable || i.reset > self.born || o.reset > self.born {
            self.reset = true;
        }
        self.reset
    }

    /// Counts `n` bytes written by this end: held, if its outgoing link is
    /// partitioned (nothing crosses it).
    pub(crate) fn wrote(&mut self, n: usize) {
        if self.faults_out.partition {
            self.held_out += n as u64;
        }
    }

    /// How many bytes this end wrote during a partition that has ended
    /// since, once (after catching up with the rules).
    pub(crate) fn take_released(&mut self) -> Option<u64> {
        self.refresh();
        self.released.take()
    }

    fn wake_on_change(&self, waiter: u64, cx: &Context<'_>) {
        self.state.wake_on_change(waiter, self.seen, cx.waker());
    }

    /// Whether a reset happened; for writes, which are not shaped here (the
    /// peer shapes them as its incoming bytes). Registers for a wake-up
    /// at the next change when `pending`.
    pub(crate) fn check_write(&mut self, cx: &Context<'_>, pending: bool) -> Result<(), Failure> {
        if self.refresh() {
            return Err(Failure::Reset);
        }
        if pending {
            self.wake_on_change(self.write_waiter, cx);
        }
        Ok(())
    }

    /// Reads from `io` through the faults of the incoming link.
    pub(crate) fn poll_read<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut R,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<Result<(), Failure>> {
        loop {
            if self.refresh() {
                return Poll::Ready(Err(Failure::Reset));
            }
            if self.faults_in.partition {
                self.wake_on_change(self.read_waiter, cx);
                return Poll::Pending;
            }
            if !self.faults_in.shapes() && self.queue.is_empty() {
                let read = Pin::new(&mut *io).poll_read(cx, buf).map_err(Failure::Io);
                if read.is_pending() {
                    self.wake_on_change(self.read_waiter, cx);
                }
                return read;
            }
            self.pump(cx, io);
            match self.deliver(cx, buf) {
                Some(done) => return Poll::Ready(done),
                None if self.state.version() != self.seen => continue,
                None => {
                    self.wake_on_change(self.read_waiter, cx);
                    return Poll::Pending;
                }
            }
        }
    }

    /// Takes what the transport has, up to the window, stamping each piece
    /// with when it may be read.
    fn pump<R: AsyncRead + Unpin + ?Sized>(&mut self, cx: &mut Context<'_>, io: &mut R) {
        let mut chunk = [0u8; 16 * 1024];
        while !self.ended && self.queued < WINDOW {
            let mut rb = ReadBuf::new(&mut chunk);
            let item = match Pin::new(&mut *io).poll_read(cx, &mut rb) {
                Poll::Pending => return,
                Poll::Ready(Ok(())) if rb.filled().is_empty() => Item::Eof,
                Poll::Ready(Ok(())) => Item::Data(rb.filled().to_vec(), 0),
                Poll::Ready(Err(e)) => Item::Err(e),
            };
            let due = self.due();
            match &item {
                Item::Data(d, _) => self.queued += d.len(),
                Item::Eof | Item::Err(_) => self.ended = true,
            }
            self.queue.push_back((due, item));
        }
    }

    /// When bytes read now may be delivered: after the latency and a
    /// random jitter, never before bytes read earlier.
    fn due(&mut self) -> Instant {
        let f = &self.faults_in;
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

    /// Hands over the head of the queue if it is due and the bandwidth
    /// allows; `None` (with a timer armed where one is needed) if not.
    fn deliver(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Option<Result<(), Failure>> {
        let now = Instant::now();
        let due = self.queue.front()?.0;
        if due > now {
            self.sleep_until(cx, due);
            return None;
        }
        let rate = self.faults_in.bandwidth;
        let (_, item) = self.queue.front_mut()?;
        let (data, pos) = match item {
            Item::Eof => return Some(Ok(())),
            Item::Err(_) => {
                let Some((_, Item::Err(e))) = self.queue.pop_front() else {
                    return None;
                };
                return Some(Err(Failure::Io(e)));
            }
            Item::Data(data, pos) => (data, pos),
        };
        let mut n = (data.len() - *pos).min(buf.remaining());
        if let Some(rate) = rate {
            let rate = rate.max(1) as f64;
            let burst = (rate / 100.0).clamp(1.0, WINDOW as f64);
            let last = self.refilled.unwrap_or(now);
            self.tokens = (self.tokens + now.duration_since(last).as_secs_f64() * rate).min(burst);
            if self.refilled.is_none() {
                self.tokens = burst;
            }
            self.refilled = Some(now);
            let want = (n as f64).min(burst);
            if self.tokens < want {
                let wait = Duration::from_secs_f64((want - self.tokens) / rate);
                self.sleep_until(cx, now + wait);
                return None;
            }
            n = n.min(self.tokens as usize);
            self.tokens -= n as f64;
        }
        buf.put_slice(&data[*pos..*pos + n]);
        *pos += n;
        self.queued -= n;
        if *pos == data.len() {
            self.queue.pop_front();
        }
        Some(Ok(()))
    }

    /// Wakes the task at `at`. tokio's timer rounds deadlines up to its
    /// next millisecond tick, so for the last stretch a finer timer adds a
    /// wake-up at `at` itself; tokio's timer, armed at `at` too, stays the
    /// one that counts under a paused clock.
    fn sleep_until(&mut self, cx: &mut Context<'_>, at: Instant) {
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

/// How close to a deadline the finer timer takes over from tokio's.
const FINE: Duration = Duration::from_millis(2);

impl Drop for Shaper {
    fn drop(&mut self) {
        self.state.forget(self.read_waiter);
        self.state.forget(self.write_waiter);
    }
}

/// FNV-1a, to fold names into the jitter's seed.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
