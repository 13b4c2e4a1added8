//! Shaping one connection end's incoming bytes by the faults on its link.
//!
//! Each end shapes what it receives (the link from its peer to itself), so
//! a connection between two processes is shaped once per direction, by the
//! receiver. (An end whose peer does not shape sends through an
//! [`Outbox`](super::outbox::Outbox) too.) Held bytes stay in the transport (a partition stops reading
//! it, so the writer feels the window fill); delayed bytes wait here, at
//! most [`WINDOW`] of them, stamped when they were read off the transport.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

use super::pace::{Alarm, Bucket, Delay};
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
    delay: Delay,
    bucket: Bucket,
    alarm: Alarm,
    /// The seed of the jitter of what this end sends, when it sends for a
    /// peer that does not shape.
    out_seed: u64,
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
        let seed = |a: &str, b: &str, ports: (u32, u32)| {
            rules.seed
                ^ fnv(a.as_bytes()).rotate_left(17)
                ^ fnv(b.as_bytes()).rotate_left(41)
                ^ (u64::from(ports.0) << 32 | u64::from(ports.1))
        };
        // The receiving end of the other direction would seed its jitter
        // with the names and ports the other way round.
        let (rng, out_seed) = (
            seed(local, peer, ports),
            seed(peer, local, (ports.1, ports.0)),
        );
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
            delay: Delay::new(rng),
            bucket: Bucket::default(),
            alarm: Alarm::default(),
            out_seed,
        }
    }

    /// The faults on the link from this end to its peer, as of now.
    pub(crate) fn outgoing(&mut self) -> &LinkFaults {
        self.refresh();
        &self.faults_out
    }

    /// The outgoing link, and the seed for the jitter of what this end
    /// sends itself (for a peer that does not shape).
    pub(crate) fn outgoing_link(&self) -> (&Link, u64) {
        (&self.outgoing, self.out_seed)
    }

    /// The network's reset count when the connection was made.
    pub(crate) fn born(&self) -> u64 {
        self.born
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

    /// Whether a fault has reset this connection (or made its link
    /// unreachable), as of the latest rules.
    pub(crate) fn is_reset(&mut self) -> bool {
        self.refresh()
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

    /// When bytes read now may be delivered.
    fn due(&mut self) -> Instant {
        self.delay.due(&self.faults_in)
    }

    /// Hands over the head of the queue if it is due and the bandwidth
    /// allows; `None` (with a timer armed where one is needed) if not.
    fn deliver(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Option<Result<(), Failure>> {
        let due = self.queue.front()?.0;
        if due > Instant::now() {
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
            match self.bucket.take(rate, n, WINDOW) {
                Ok(allowed) => n = allowed,
                Err(at) => {
                    self.sleep_until(cx, at);
                    return None;
                }
            }
        }
        buf.put_slice(&data[*pos..*pos + n]);
        *pos += n;
        self.queued -= n;
        if *pos == data.len() {
            self.queue.pop_front();
        }
        Some(Ok(()))
    }

    /// Wakes the task at `at`.
    fn sleep_until(&mut self, cx: &mut Context<'_>, at: Instant) {
        self.alarm.wake_at(cx, at);
    }
}

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
