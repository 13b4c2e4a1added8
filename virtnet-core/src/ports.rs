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
    /// An established connection, with the handle that shuts its transport.
    Conn(ShutdownHandle),
}

/// The sockets of one host, indexed by port.
///
/// Memory follows what is in use, never the port numbers: a listener on
/// port 4294967295 costs one entry.
pub(crate) struct SocketTable {
    /// The occupied ports.
    slots: BTreeMap<u32, Socket>,
    /// Every port below `dense_end` is occupied or in `holes`; none at or
    /// above it is in `holes`.
    dense_end: u32,
    /// Free ports below `dense_end`.
    holes: BTreeSet<u32>,
}

impl Default for SocketTable {
    fn default() -> SocketTable {
        SocketTable {
            slots: BTreeMap::new(),
            dense_end: 1,
            holes: BTreeSet::new(),
        }
    }
}

impl SocketTable {
    /// Takes the lowest free port.
    pub(crate) fn alloc(&mut self, socket: Socket) -> Option<u32> {
        let port = match self.holes.pop_first() {
            Some(port) => port,
            None => {
                // Past ports bound explicitly beyond the dense range.
                while self.slots.contains_key(&self.dense_end) {
                    self.dense_end = self.dense_end.checked_add(1)?;
                }
                let port = self.dense_end;
                self.dense_end = self.dense_end.checked_add(1)?;
                port
            }
        };
        self.slots.insert(port, socket);
        Some(port)
    }

    /// Takes `port` (not 0); gives the socket back if it is in use.
    pub(crate) fn bind(&mut self, port: u32, socket: Socket) -> Result<(), Socket> {
        if port == 0 || self.slots.contains_key(&port) {
            return Err(socket);
        }
        self.holes.remove(&port);
        self.slots.insert(port, socket);
        Ok(())
    }

    /// The socket on `port`.
    pub(crate) fn get(&self, port: u32) -> Option<&Socket> {
        self.slots.get(&port)
    }

    /// Replaces the socket on an occupied `port`; false if the port is free.
    pub(crate) fn replace(&mut self, port: u32, socket: Socket) -> bool {
        match self.slots.get_mut(&port) {
            Some(slot) => {
                *slot = socket;
                true
            }
            None => false,
        }
    }

    /// Frees `port`, returning what was there.
    pub(crate) fn free(&mut self, port: u32) -> Option<Socket> {
        let socket = self.slots.remove(&port)?;
        if port < self.dense_end {
            self.holes.insert(port);
            // Free ports at the end of the dense range leave it.
            while self.holes.last() == Some(&(self.dense_end - 1)) {
                self.holes.pop_last();
                self.dense_end -= 1;
            }
        }
        Some(socket)
    }

    /// Empties the table, returning every socket.
    pub(crate) fn drain(&mut self) -> Vec<Socket> {
        self.holes.clear();
        self.dense_end = 1;
        std::mem::take(&mut self.slots).into_values().collect()
    }
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
        assert_eq!(t.dense_end, 7);
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
        assert_eq!((t.slots.len(), t.holes.len()), (6, 0));
        assert!(t.free(u32::MAX).is_some());
        assert!(t.free(3).is_some());
        assert_eq!(t.alloc(Socket::Reserved), Some(3));
        assert_eq!(t.slots.len(), 5);
    }
}
