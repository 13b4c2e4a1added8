//! A host's socket table: which ports are in use, and by what. A plain
//! data structure; the host ([`crate::kernel::HostCore`]) locks it.
//!
//! Ports start at 1 and autobind takes the lowest free one, so addresses are
//! predictable. Allocation is O(log n): the table keeps the set of free ports
//! below its end.

use std::collections::BTreeSet;
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
#[derive(Default)]
pub(crate) struct SocketTable {
    /// `slots[i]` is port `i + 1`.
    slots: Vec<Option<Socket>>,
    /// Free ports below `slots.len() + 1`.
    holes: BTreeSet<u32>,
}

impl SocketTable {
    /// Takes the lowest free port.
    pub(crate) fn alloc(&mut self, socket: Socket) -> Option<u32> {
        if let Some(port) = self.holes.pop_first() {
            self.slots[idx(port)] = Some(socket);
            return Some(port);
        }
        let port = u32::try_from(self.slots.len() + 1).ok()?;
        self.slots.push(Some(socket));
        Some(port)
    }

    /// Takes `port` (not 0); gives the socket back if it is in use.
    pub(crate) fn bind(&mut self, port: u32, socket: Socket) -> Result<(), Socket> {
        let i = idx(port);
        if i < self.slots.len() {
            if self.slots[i].is_some() {
                return Err(socket);
            }
            self.holes.remove(&port);
        } else {
            let end = self.slots.len() as u32 + 1;
            self.holes.extend(end..port);
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i] = Some(socket);
        Ok(())
    }

    /// The socket on `port`.
    pub(crate) fn get(&self, port: u32) -> Option<&Socket> {
        self.slots.get(idx(port))?.as_ref()
    }

    /// Replaces the socket on an occupied `port`; false if the port is free.
    pub(crate) fn replace(&mut self, port: u32, socket: Socket) -> bool {
        match self.slots.get_mut(idx(port)) {
            Some(slot @ Some(_)) => {
                *slot = Some(socket);
                true
            }
            _ => false,
        }
    }

    /// Frees `port`, returning what was there.
    pub(crate) fn free(&mut self, port: u32) -> Option<Socket> {
        let socket = self.slots.get_mut(idx(port))?.take()?;
        self.holes.insert(port);
        while matches!(self.slots.last(), Some(None)) {
            self.holes.remove(&(self.slots.len() as u32));
            self.slots.pop();
        }
        Some(socket)
    }

    /// Empties the table, returning every socket.
    pub(crate) fn drain(&mut self) -> Vec<Socket> {
        self.holes.clear();
        self.slots.drain(..).flatten().collect()
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
        // trailing free slots are trimmed; holes stay consistent
        assert_eq!(t.slots.len(), 6);
        assert!(t.holes.is_empty());
        assert_eq!(t.alloc(Socket::Reserved), Some(7));
        assert!(t.free(0).is_none());
        assert!(t.get(0).is_none());
        assert!(!t.replace(99, Socket::Reserved));
        assert_eq!(t.drain().len(), 7);
        assert_eq!(t.alloc(Socket::Reserved), Some(1));
    }
}
