//! How an operation fails, before it is named: [`Fail`], and which
//! server and client errors mean "the server cannot be reached".

use std::error::Error;
use std::fmt;

use tokio_postgres::error::SqlState;
use virtnet_core::RegistryCause;

use crate::config::describe;

/// Why an operation failed.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The handle was closed.
    Down,
    /// `query` of a name with no entry.
    NoHost,
    /// `announce` of a taken name.
    HostDup,
    /// The server cannot be reached, or the connection was lost.
    Lost(Why),
    /// Anything else.
    Other(Why),
}

impl Fail {
    /// A failure with only a text.
    pub(crate) fn other(text: impl Into<String>) -> Fail {
        Fail::Other(Why::text(text))
    }

    /// A lost server, with only a text.
    pub(crate) fn lost(text: impl Into<String>) -> Fail {
        Fail::Lost(Why::text(text))
    }

    /// The failure a tokio-postgres error stands for. `ended` is why the
    /// connection ended, if its driver saw that: a call that finds the
    /// connection closed says so.
    pub(crate) fn of(e: tokio_postgres::Error, ended: Option<&str>) -> Fail {
        let lost = match e.as_db_error() {
            Some(db) => lost_code(db.code()),
            // Closed, or an I/O error on the socket (sending, receiving,
            // connecting).
            None => {
                e.is_closed()
                    || e.source()
                        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
            }
        };
        let text = match ended {
            Some(why) if e.is_closed() => format!("connection lost: {why}"),
            _ => describe(&e),
        };
        let why = Why {
            text,
            source: Some(e),
        };
        if lost {
            Fail::Lost(why)
        } else {
            Fail::Other(why)
        }
    }

    /// The registry cause of this failure.
    pub(crate) fn cause(self) -> RegistryCause {
        match self {
            Fail::Down => RegistryCause::Down,
            Fail::NoHost => RegistryCause::NoHost,
            Fail::HostDup => RegistryCause::HostDup,
            Fail::Lost(why) => RegistryCause::Unreachable(Box::new(why)),
            Fail::Other(why) => RegistryCause::Other(Box::new(why)),
        }
    }
}

/// Whether a server's error code says the connection is gone or cannot be
/// had now: class 08 (connection exception), the server shutting down or
/// terminating the session (`57P01`, `57P02`, `57P03`).
fn lost_code(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
}

/// What went wrong, as one line, with the tokio-postgres error (if any)
/// as its source.
#[derive(Debug)]
pub(crate) struct Why {
    text: String,
    source: Option<tokio_postgres::Error>,
}

impl Why {
    pub(crate) fn text(text: impl Into<String>) -> Why {
        Why {
            text: text.into(),
            source: None,
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Error for Why {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert!(lost_code(&SqlState::ADMIN_SHUTDOWN));
        assert!(lost_code(&SqlState::CONNECTION_FAILURE));
        assert!(lost_code(&SqlState::CANNOT_CONNECT_NOW));
        assert!(!lost_code(&SqlState::UNDEFINED_TABLE));
        assert!(!lost_code(&SqlState::INVALID_PASSWORD));
    }
}
