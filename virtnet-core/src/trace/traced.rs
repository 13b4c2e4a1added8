//! [`Traced`]: any [`Networker`] that records into a [`Trace`].

use std::io;

use async_trait::async_trait;

use super::{Event, Trace};
use crate::{Conn, Listener, Networker};

impl Trace {
    /// `net`, recording into this trace.
    pub fn wrap<N: Networker>(&self, net: N) -> Traced<N> {
        Traced {
            inner: net,
            trace: self.clone(),
        }
    }
}

/// A [`Networker`] that records what it does into a [`Trace`]; its
/// listeners and connections record too.
#[derive(Debug)]
pub struct Traced<N> {
    inner: N,
    trace: Trace,
}

impl<N> Traced<N> {
    /// The wrapped networker.
    pub fn inner(&self) -> &N {
        &self.inner
    }

    /// The trace it records into.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }
}

#[async_trait]
impl<N: Networker> Networker for Traced<N> {
    fn network(&self) -> &str {
        self.inner.network()
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn dial(&self, addr: &str) -> io::Result<Conn> {
        let net = self.inner.network();
        let (from, to) = (self.inner.name().to_owned(), addr.to_owned());
        self.trace.record(
            net,
            Event::Dial {
                from: from.clone(),
                to: to.clone(),
            },
        );
        match self.inner.dial(addr).await {
            Ok(mut conn) => {
                let (local, peer) = (conn.local_addr().clone(), conn.peer_addr().clone());
                self.trace.record(net, Event::Connect { local, peer });
                conn.observe(self.trace.clone());
                Ok(conn)
            }
            Err(e) => {
                let error = e.to_string();
                self.trace
                    .record(net, Event::DialFailed { from, to, error });
                Err(e)
            }
        }
    }

    async fn listen(&self, laddr: &str) -> io::Result<Listener> {
        let mut listener = self.inner.listen(laddr).await?;
        let addr = listener.local_addr().clone();
        self.trace
            .record(self.inner.network(), Event::Listen { addr });
        listener.observe(self.trace.clone());
        Ok(listener)
    }

    async fn close(&self) -> io::Result<()> {
        let result = self.inner.close().await;
        let host = self.inner.name().to_owned();
        self.trace
            .record(self.inner.network(), Event::CloseHost { host });
        result
    }
}
