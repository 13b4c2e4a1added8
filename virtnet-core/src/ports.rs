//! A host's socket table: which ports are in use, and by what. A plain
//! data structure; the host ([`crate::kernel::HostCore`]) locks it.
//!
//! Ports start at 1 and autobind takes the lowest free one, so addresses are
//! predictable. Allocation is O(log n): the table keeps the set of free ports
//! below its end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::engine::ShutdownHandle;
use crate::queue::AcceptQueue;

/// What occupies a port.
pub(crate) enum Socket {
    /// Taken, but not yet a connection: a dial in flight, or an accept being set up.
    Reserved,
    /// A listener, by its accept queue.
    Listener(Arc<AcceptQueue>),
    /// An established connection, with the handle that shuts its transport
    /// and the [`host_key`] of its peer's host (for faults that reset a
    /// link's connections; a key, not the name, so that making a connection
    /// costs no reference count).
    Conn(ShutdownHandle, u64),
}

/// A 64-bit key of a host name (FNV-1a).
pub(crate) fn host_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The sockets of one host, indexed by port.
///
/// Ports from 1 up are kept densely, as autobind allocates them; a port
/// bound far beyond them (more than [`FAR`] past the dense range) is kept
/// apart, so memory follows the ports in use, never their numbers: a
/// listener on port 4294967295 costs one entry.
#[derive(Default)]
pub(crate) struct SocketTable {
    /// `slots[i]` is port `i + 1`.
    slots: Vec<Option<Socket>>,
    /// Free ports below `slots.len() + 1`.
    holes: BTreeSet<u32>,
    /// Ports above `slots.len()`, bound explicitly.
    far: BTreeMap<u32, Socket>,
}

/// How far past the dense range a bound port may lie and still extend it.
const FAR: u32 = 4096;

impl SocketTable {
    /// Takes the lowest free port.
    pub(crate) fn alloc(&mut self, socket: Socket) -> Option<u32> {
        if let Some(port) = self.holes.pop_first() {
            self.slots[idx(port)] = Some(socket);
            return Some(port);
        }
        loop {
            let port = u32::try_from(self.slots.len() + 1).ok()?;
            match self.far.remove(&port) {
                // Bound explicitly: it joins the dense range, taken.
                Some(bound) => self.slots.push(Some(bound)),
                None => {
                    self.slots.push(Some(socket));
                    return Some(port);
                }
            }
        }
    }

    /// Takes `port` (not 0); gives the socket back if it is in use.
    pub(crate) fn bind(&mut self, port: u32, socket: Socket) -> Result<(), Socket> {
        let (i, end) = (idx(port), self.end());
        if port == 0 || self.get(port).is_some() {
            return Err(socket);
        }
        if i < self.slots.len() {
            self.holes.remove(&port);
        } else if port - end < FAR {
            self.slots.resize_with(i + 1, || None);
            for p in end..port {
                match self.far.remove(&p) {
                    Some(bound) => self.slots[idx(p)] = Some(bound),
                    None => {
                        self.holes.insert(p);
                    }
                }
            }
        } else {
            self.far.insert(port, socket);
            return Ok(());
        }
        self.slots[i] = Some(socket);
        Ok(())
    }

    /// The socket on `port`.
    pub(crate) fn get(&self, port: u32) -> Option<&Socket> {
        match self.slots.get(idx(port)) {
            Some(slot) => slot.as_ref(),
            None => self.far.get(&port),
        }
    }

    /// Replaces the socket on an occupied `port`; false if the port is free.
    pub(crate) fn replace(&mut self, port: u32, socket: Socket) -> bool {
        let slot = match self.slots.get_mut(idx(port)) {
            Some(slot) => slot.as_mut(),
            None => self.far.get_mut(&port),
        };
        match slot {
            Some(slot) => {
                *slot = socket;
                true
            }
            None => false,
        }
    }

    /// Frees `port`, returning what was there.
    pub(crate) fn free(&mut self, port: u32) -> Option<Socket> {
        let Some(slot) = self.slots.get_mut(idx(port)) else {
            return self.far.remove(&port);
        };
        let socket = slot.take()?;
        self.holes.insert(port);
        while matches!(self.slots.last(), Some(None)) {
            self.holes.remove(&(self.slots.len() as u32));
            self.slots.pop();
        }
        Some(socket)
    }

    /// Empties the table, returning every socket.
    /// Every socket, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Socket> {
        self.slots.iter().flatten().chain(self.far.values())
    }

    pub(crate) fn drain(&mut self) -> Vec<Socket> {
        self.holes.clear();
        let far = std::mem::take(&mut self.far).into_values();
        self.slots.drain(..).flatten().chain(far).collect()
    }

    /// The first port past the dense range.
    fn end(&self) -> u32 {
        self.slots.len() as u32 + 1
    }
}

fn idx(port: u32) -> usize {
    // Port 0 maps past any real slot, so it is never found or freed.
    (port as usize).wrapping_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_port_first() {
        let mut t = SocketTable::default();
        assert_eq!(t.alloc(Socket::Reserved), Some(1));
        assert_eq!(t.alloc(Socket::Reserved), Some(2));
        assert_eq!(t.alloc(Socket::Reserved), Some(3));
        assert!(t.free(2).is_some());
        assert!(t.free(2).is_none());
        assert_eq!(t.alloc(Socket::Reserved), Some(2));
        assert!(t.bind(10, Socket::Reserved).is_ok());
        assert!(t.bind(10, Socket::Reserved).is_err());
        assert!(t.bind(3, Socket::Reserved).is_err());
        assert_eq!(t.alloc(Socket::Reserved), Some(4));
        assert!(t.bind(5, Socket::Reserved).is_ok());
        assert_eq!(t.alloc(Socket::Reserved), Some(6));
        assert!(t.free(10).is_some());
        // trailing free ports are trimmed; holes stay consistent
        assert_eq!(t.slots.len(), 6);
        assert!(t.holes.is_empty());
        assert_eq!(t.alloc(Socket::Reserved), Some(7));
        assert!(t.free(0).is_none());
        assert!(t.get(0).is_none());
        assert!(!t.replace(99, Socket::Reserved));
        assert_eq!(t.drain().len(), 7);
        assert_eq!(t.alloc(Socket::Reserved), Some(1));
    }

    #[test]
    fn huge_ports_cost_one_entry() {
        let mut t = SocketTable::default();
        assert!(t.bind(u32::MAX, Socket::Reserved).is_ok());
        assert!(t.bind(u32::MAX - 1, Socket::Reserved).is_ok());
        assert!(t.bind(0, Socket::Reserved).is_err());
        assert_eq!(t.alloc(Socket::Reserved), Some(1));
        assert!(t.bind(3, Socket::Reserved).is_ok());
        assert_eq!(t.alloc(Socket::Reserved), Some(2));
        assert_eq!(t.alloc(Socket::Reserved), Some(4));
        assert_eq!((t.slots.len(), t.far.len(), t.holes.len()), (4, 2, 0));
        assert!(t.free(u32::MAX).is_some());
        assert!(t.free(3).is_some());
        assert_eq!(t.alloc(Socket::Reserved), Some(3));
        assert!(t.get(u32::MAX - 1).is_some() && t.get(u32::MAX).is_none());
        // a port bound a little past the dense range joins it when
        // autobind reaches it, and is skipped
        assert!(t.bind(4 + FAR + 1, Socket::Reserved).is_ok());
        assert!(t.bind(4 + FAR + 1, Socket::Reserved).is_err());
        assert!(t.bind(7, Socket::Reserved).is_ok());
        assert_eq!(t.alloc(Socket::Reserved), Some(5));
        assert_eq!(t.alloc(Socket::Reserved), Some(6));
        assert_eq!(t.alloc(Socket::Reserved), Some(8));
        assert!(t.replace(4 + FAR + 1, Socket::Reserved));
        assert_eq!(t.drain().len(), 10);
        assert!(t.far.is_empty());
    }
}
