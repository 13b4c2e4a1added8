//! Ctrl-C and SIGTERM, for the commands that run until stopped.

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Ctrl-C and SIGTERM, caught from the moment this is made.
pub struct Interrupts {
    int: Signal,
    term: Signal,
}

impl Interrupts {
    /// Starts catching them.
    pub fn new() -> io::Result<Interrupts> {
        Ok(Interrupts {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Completes on the next Ctrl-C or SIGTERM (also one that came earlier
    /// and was not yet taken).
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
