//! Event traces: what happened on the network, in order, for tests to assert.
//!
//! Wrap any [`Networker`](crate::Networker) with [`Trace::wrap`]; the wrapper records listen,
//! dial attempts and their outcome, accepts, every write (with its bytes),
//! shutdowns and closes, as typed [`Event`]s. Compare them with an expected
//! list, or send them as JSON lines to a file ([`Trace::json_lines`]) so that
//! traces of several processes can be merged. Recording can be switched off
//! and on at run time ([`Trace::set_enabled`]).
//!
//! ```
//! use tokio::io::AsyncWriteExt;
//! use virtnet_core::trace::Trace;
//! use virtnet_core::Networker;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let net = pipenet::Network::new("traced");
//! let trace = Trace::new();
//! let alpha = trace.wrap(net.new_host("α").await?);
//! let beta = trace.wrap(net.new_host("β").await?);
//!
//! let l = alpha.listen(":10").await?;
//! let (mut c, s) = tokio::try_join!(beta.dial("α:10"), l.accept())?;
//! c.write_all(b"hi").await?;
//! drop((c, s));
//! assert_eq!(
//!     trace.lines(),
//!     [
//!         "listen α:10",
//!         "dial β -> α:10",
//!         "accept α:1 <- β:1",
//!         "connect β:1 -> α:1",
//!         r#"write β:1 -> α:1 "hi""#,
//!         "close β:1 -> α:1",
//!         "close α:1 -> β:1",
//!     ]
//! );
//! # net.close().await
//! # }
//! ```

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{lock, Addr};

mod traced;

pub use traced::Traced;

/// One thing that happened on the network.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A listener started on `addr`.
    Listen {
        /// Where it listens.
        addr: Addr,
    },
    /// Host `from` started dialing `to` (as the caller wrote it).
    Dial {
        /// The dialing host.
        from: String,
        /// The address asked for.
        to: String,
    },
    /// A dial succeeded.
    Connect {
        /// The dialer's end.
        local: Addr,
        /// The accepted end.
        peer: Addr,
    },
    /// A dial failed.
    DialFailed {
        /// The dialing host.
        from: String,
        /// The address asked for.
        to: String,
        /// The error's text.
        error: String,
    },
    /// A listener accepted a connection.
    Accept {
        /// The accepted connection's own address.
        local: Addr,
        /// The dialer's address.
        peer: Addr,
    },
    /// Bytes were written on a connection.
    Write {
        /// The writing end.
        local: Addr,
        /// The other end.
        peer: Addr,
        /// What was written.
        data: Vec<u8>,
    },
    /// A connection was half-closed by `local`.
    Shutdown {
        /// The end that shut down its writing.
        local: Addr,
        /// The other end.
        peer: Addr,
    },
    /// A connection end was closed (dropped).
    Close {
        /// The closed end.
        local: Addr,
        /// The other end.
        peer: Addr,
    },
    /// A listener was closed.
    CloseListener {
        /// Where it listened.
        addr: Addr,
    },
    /// A host was closed.
    CloseHost {
        /// The host.
        host: String,
    },
    /// Faults were set or healed (`partition {α} | {β,γ}`, `heal α β`,
    /// `latency α β 20ms jitter 5ms seed 7`), through a
    /// [`Faults`](crate::Faults) handle that observes this trace.
    Fault {
        /// What was done, as the line shows it.
        action: String,
    },
    /// A partition of the link from `local` to `peer` ended, setting free
    /// the bytes `local` wrote while it held them (reported by the writing
    /// end, at its first operation after the heal).
    Released {
        /// The writing end.
        local: Addr,
        /// The other end.
        peer: Addr,
        /// How many bytes were written during the partition.
        bytes: u64,
    },
    /// A connection end failed with "connection reset by peer" because a
    /// fault reset it.
    Reset {
        /// The end that saw the reset.
        local: Addr,
        /// The other end.
        peer: Addr,
    },
}

impl Event {
    /// The event's name (`"dial"`, `"connect"`, …), as in JSON lines.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Listen { .. } => "listen",
            Event::Dial { .. } => "dial",
            Event::Connect { .. } => "connect",
            Event::DialFailed { .. } => "dial-failed",
            Event::Accept { .. } => "accept",
            Event::Write { .. } => "write",
            Event::Shutdown { .. } => "shutdown",
            Event::Close { .. } => "close",
            Event::CloseListener { .. } => "close-listener",
            Event::CloseHost { .. } => "close-host",
            Event::Fault { .. } => "fault",
            Event::Reset { .. } => "reset",
            Event::Released { .. } => "released",
        }
    }

    /// The event as one JSON object (no newline), with the network name,
    /// this process's id and the time, so traces of processes can be merged.
    pub fn to_json(&self, network: &str) -> String {
        let mut out = String::from("{");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let _ = write!(out, "\"time_ns\":{nanos},\"pid\":{},", std::process::id());
        field(&mut out, "network", network);
        out.push(',');
        field(&mut out, "event", self.name());
        let mut put = |k: &str, v: &str| {
            out.push(',');
            field(&mut out, k, v);
        };
        match self {
            Event::Listen { addr } | Event::CloseListener { addr } => {
                put("addr", &addr.to_string())
            }
            Event::Dial { from, to } => {
                put("from", from);
                put("to", to);
            }
            Event::DialFailed { from, to, error } => {
                put("from", from);
                put("to", to);
                put("error", error);
            }
            Event::Connect { local, peer }
            | Event::Accept { local, peer }
            | Event::Shutdown { local, peer }
            | Event::Close { local, peer }
            | Event::Reset { local, peer } => {
                put("local", &local.to_string());
                put("peer", &peer.to_string());
            }
            Event::Write { local, peer, data } => {
                put("local", &local.to_string());
                put("peer", &peer.to_string());
                match std::str::from_utf8(data) {
                    Ok(text) => put("data", text),
                    Err(_) => put(
                        "data_hex",
                        &data.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                    ),
                }
            }
            Event::CloseHost { host } => put("host", host),
            Event::Fault { action } => put("action", action),
            Event::Released { local, peer, bytes } => {
                put("local", &local.to_string());
                put("peer", &peer.to_string());
                put("bytes", &bytes.to_string());
            }
        }
        out.push('}');
        out
    }
}

/// One line per event: `dial β -> α:1`, `connect β:1 -> α:2`,
/// `write β:1 -> α:2 "ping"` (data quoted as Go's `%q`).
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Listen { addr } => write!(f, "listen {addr}"),
            Event::Dial { from, to } => write!(f, "dial {from} -> {to}"),
            Event::Connect { local, peer } => write!(f, "connect {local} -> {peer}"),
            Event::DialFailed { from, to, error } => {
                write!(f, "dial-failed {from} -> {to}: {error}")
            }
            Event::Accept { local, peer } => write!(f, "accept {local} <- {peer}"),
            Event::Write { local, peer, data } => {
                write!(f, "write {local} -> {peer} {}", crate::quote::quote(data))
            }
            Event::Shutdown { local, peer } => write!(f, "shutdown {local} -> {peer}"),
            Event::Close { local, peer } => write!(f, "close {local} -> {peer}"),
            Event::CloseListener { addr } => write!(f, "close-listener {addr}"),
            Event::CloseHost { host } => write!(f, "close-host {host}"),
            Event::Fault { action } => f.write_str(action),
            Event::Reset { local, peer } => write!(f, "reset {local} -> {peer}"),
            Event::Released { local, peer, bytes } => {
                write!(
                    f,
                    "released {local} -> {peer}: {bytes} bytes held by a partition"
                )
            }
        }
    }
}

fn field(out: &mut String, key: &str, value: &str) {
    let _ = write!(out, "\"{key}\":\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A shared, switchable recorder of [`Event`]s. Cheap to clone: clones
/// record into the same trace.
#[derive(Clone)]
pub struct Trace(Arc<TraceInner>);

struct TraceInner {
    enabled: AtomicBool,
    /// One lock for both, held across the operation an event records (see
    /// [`Trace::around`]), so the order of events is the order in which
    /// their effects became visible: a peer cannot record reading a write
    /// before the writer recorded it.
    state: Mutex<State>,
}

struct State {
    events: Vec<Event>,
    json: Option<Box<dyn Write + Send>>,
}

impl State {
    fn push(&mut self, network: &str, event: Event) {
        if let Some(out) = self.json.as_mut() {
            let line = event.to_json(network);
            // A failing trace file must not break the network under test.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
        self.events.push(event);
    }
}

impl Default for Trace {
    fn default() -> Trace {
        Trace::new()
    }
}

impl Trace {
    /// An empty trace, recording.
    pub fn new() -> Trace {
        Trace(Arc::new(TraceInner {
            enabled: AtomicBool::new(true),
            state: Mutex::new(State {
                events: Vec::new(),
                json: None,
            }),
        }))
    }

    /// Also writes every event as a JSON line to `out`.
    pub fn json_lines(self, out: impl Write + Send + 'static) -> Trace {
        lock(&self.0.state).json = Some(Box::new(out));
        self
    }

    /// Also appends every event as a JSON line to the file at `path`
    /// (created if missing), so that several processes can share one file.
    pub fn json_file(self, path: impl AsRef<Path>) -> io::Result<Trace> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(self.json_lines(file))
    }

    /// Switches recording on or off.
    pub fn set_enabled(&self, on: bool) {
        self.0.enabled.store(on, Ordering::Release);
    }

    /// Whether it records.
    pub fn is_enabled(&self) -> bool {
        self.0.enabled.load(Ordering::Acquire)
    }

    /// The events so far, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.0.state).events.clone()
    }

    /// The events so far, one line each (see [`Event`]'s `Display`).
    pub fn lines(&self) -> Vec<String> {
        lock(&self.0.state)
            .events
            .iter()
            .map(Event::to_string)
            .collect()
    }

    /// Takes the events so far, leaving the trace empty.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut lock(&self.0.state).events)
    }

    pub(crate) fn record(&self, network: &str, event: Event) {
        if self.is_enabled() {
            lock(&self.0.state).push(network, event);
        }
    }

    /// Runs `op` (which must not block or record) while holding the trace,
    /// then records the event it returns, if any: whatever `op` makes
    /// visible to other tasks is recorded before they can record reacting
    /// to it.
    pub(crate) fn around<R>(&self, network: &str, op: impl FnOnce() -> (R, Option<Event>)) -> R {
        if !self.is_enabled() {
            return op().0;
        }
        let mut state = lock(&self.0.state);
        let (result, event) = op();
        if let Some(event) = event {
            state.push(network, event);
        }
        result
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("enabled", &self.is_enabled())
            .field("events", &lock(&self.0.state).events.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_escape_and_name_everything() {
        let a = Addr::new("pipeX", "α", 1);
        let b = Addr::new("pipeX", "β", 2);
        let e = Event::Write {
            local: a.clone(),
            peer: b.clone(),
            data: b"say \"hi\"\n".to_vec(),
        };
        let json = e.to_json("pipeX");
        assert!(
            json.ends_with(r#""network":"pipeX","event":"write","local":"α:1","peer":"β:2","data":"say \"hi\"\n"}"#),
            "{json}"
        );
        let bin = Event::Write {
            local: a,
            peer: b,
            data: vec![0xff, 0],
        };
        assert!(bin.to_json("n").ends_with(r#""data_hex":"ff00"}"#));
        assert_eq!(bin.to_string(), r#"write α:1 -> β:2 "\xff\x00""#);
    }

    #[test]
    fn switching_off_records_nothing() {
        let t = Trace::new();
        t.set_enabled(false);
        t.record("n", Event::CloseHost { host: "α".into() });
        assert!(t.events().is_empty());
        t.set_enabled(true);
        t.record("n", Event::CloseHost { host: "α".into() });
        assert_eq!(t.lines(), ["close-host α"]);
        assert_eq!(t.take().len(), 1);
        assert!(t.events().is_empty());
    }
}
