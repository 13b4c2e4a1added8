//! The connection URL: parsing it into a [`Config`] with this crate's
//! defaults, and [`redact`], the form that may be shown.

use std::time::Duration;

use tokio_postgres::Config;

/// How long opening a connection may take (the TCP or socket connect, the
/// startup and authentication, the schema check), unless the URL sets
/// `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `application_name` the server shows for this crate's connections,
/// unless the URL sets one.
pub(crate) const APPLICATION_NAME: &str = "virtnet-registry";

/// How long a TCP connection stays silent before the OS probes whether
/// the server is still there (tokio-postgres's own default is two hours;
/// a URL that sets `keepalives_idle` keeps its value).
const KEEPALIVES_IDLE: Duration = Duration::from_secs(30);
const LIBPQ_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// The connection settings of `url`, with this crate's defaults filled
/// in, and the time allowed to open a connection. The error says what is
/// wrong with the URL (never its password).
pub(crate) fn parse(url: &str) -> Result<(Config, Duration), String> {
    let mut config: Config = url
        .parse()
        .map_err(|e| format!("invalid PostgreSQL URL: {}", describe(&e)))?;
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        return Err("invalid PostgreSQL URL: it names no host".to_owned());
    }
    let timeout = match config.get_connect_timeout() {
        Some(t) => *t,
        None => {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
            DEFAULT_CONNECT_TIMEOUT
        }
    };
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    if config.get_keepalives_idle() == LIBPQ_KEEPALIVES_IDLE {
        config.keepalives_idle(KEEPALIVES_IDLE);
    }
    Ok((config, timeout))
}

/// A tokio-postgres error as one line: the server's message for an error
/// the server sent (`FATAL: terminating connection due to administrator
/// command`), else the client's with each cause after a colon (`error
/// connecting to server: Connection refused (os error 111)`).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.to_string().replace('\n', "; ");
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// `url` with its password, if it has one, replaced by `***`: the form
/// this crate shows in names, errors and logs.
///
/// Both forms tokio-postgres reads are covered: a URL
/// (`postgres://user:secret@host/db?password=secret` becomes
/// `postgres://user:***@host/db?password=***`) and key-value settings
/// (`host=db password='se cret'` becomes `host=db password=***`). The
/// rest is kept as written, so the result names the same server, user and
/// database.
///
/// ```
/// use registry_postgres::redact;
///
/// assert_eq!(
///     redact("postgres://virtnet:hunter2@db.example:5432/postgres"),
///     "postgres://virtnet:***@db.example:5432/postgres",
/// );
/// assert_eq!(redact("host=/run/pg user=virtnet password=hunter2"), "host=/run/pg user=virtnet password=***");
/// assert_eq!(redact("postgres://virtnet@127.0.0.1/postgres"), "postgres://virtnet@127.0.0.1/postgres");
/// ```
pub fn redact(url: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            return redact_url(scheme, rest);
        }
    }
    redact_settings(url)
}

/// A URL after its scheme, read as tokio-postgres reads it: the user
/// information runs to the first `@`, its password from its first `:`;
/// the parameters follow the first `?` after it.
fn redact_url(scheme: &str, rest: &str) -> String {
    let mut out = scheme.to_owned();
    let rest = match rest.find('@') {
        Some(at) => {
            let creds = &rest[..at];
            match creds.find(':') {
                Some(colon) => {
                    out.push_str(&creds[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(creds),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let Some(q) = rest.find('?') else {
        out.push_str(rest);
        return out;
    };
    out.push_str(&rest[..=q]);
    for (i, param) in rest[q + 1..].split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match param.split_once('=') {
            Some((key, _)) if percent_decode(key) == "password" => {
                out.push_str(key);
                out.push_str("=***");
            }
            _ => out.push_str(param),
        }
    }
    out
}

/// `%XX` escapes decoded (invalid ones kept as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Key-value settings (`host=… password=…`), read as tokio-postgres reads
/// them: whitespace between settings, values plain or in single quotes,
/// a backslash escaping the next character. What cannot be read is cut
/// off at the first `password` (it cannot connect anyway).
fn redact_settings(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.char_indices().peekable();
    let mut copied = 0;
    loop {
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(key_start, _)) = it.peek() else {
            break;
        };
        while it
            .next_if(|(_, c)| !c.is_whitespace() && *c != '=')
            .is_some()
        {}
        let key_end = it.peek().map_or(s.len(), |(i, _)| *i);
        let key = &s[key_start..key_end];
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if it.next_if(|(_, c)| *c == '=').is_none() {
            return cut_at_password(s);
        }
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let value_start = it.peek().map_or(s.len(), |(i, _)| *i);
        let quoted = it.next_if(|(_, c)| *c == '\'').is_some();
        let mut closed = !quoted;
        while let Some((_, c)) = it.next() {
            match c {
                '\\' => {
                    it.next();
                }
                '\'' if quoted => {
                    closed = true;
                    break;
                }
                c if !quoted && c.is_whitespace() => break,
                _ => {}
            }
        }
        if !closed {
            return cut_at_password(s);
        }
        let value_end = it.peek().map_or(s.len(), |(i, _)| *i);
        // A plain value ends at the whitespace it consumed.
        let value_end = if quoted {
            value_end
        } else {
            s[value_start..value_end].trim_end().len() + value_start
        };
        if key == "password" {
            out.push_str(&s[copied..value_start]);
            out.push_str("***");
            copied = value_end;
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// `s` up to its first `password`, followed by `password=***`; `s` itself
/// if it has none.
fn cut_at_password(s: &str) -> String {
    match s.find("password") {
        Some(i) => format!("{}password=***", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for (url, want) in [
            ("postgres://u:p@h/db", "postgres://u:***@h/db"),
            ("postgresql://u:p%40ss@h:1/db", "postgresql://u:***@h:1/db"),
            ("postgres://u:p:q@h/db", "postgres://u:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://:p@h", "postgres://:***@h"),
            (
                "postgres://u@h/db?sslmode=disable&password=p&x=1",
                "postgres://u@h/db?sslmode=disable&password=***&x=1",
            ),
            ("postgres://h?pass%77ord=p", "postgres://h?pass%77ord=***"),
            (
                "postgres://u@%2Ftmp%2Fsock:5432/postgres",
                "postgres://u@%2Ftmp%2Fsock:5432/postgres",
            ),
            ("postgres://u:p@", "postgres://u:***@"),
            ("", ""),
        ] {
            assert_eq!(redact(url), want, "{url}");
        }
    }

    #[test]
    fn settings() {
        for (s, want) in [
            ("host=h password=p user=u", "host=h password=*** user=u"),
            ("password = p", "password = ***"),
            ("password='a b\\' c' user=u", "password=*** user=u"),
            ("password=a\\ b", "password=***"),
            ("host=h", "host=h"),
            ("host=h password='unterminated", "host=h password=***"),
            ("host=h password", "host=h password=***"),
            ("  ", "  "),
        ] {
            assert_eq!(redact(s), want, "{s}");
        }
    }

    #[test]
    fn parse_fills_defaults_and_names_problems() {
        let (config, timeout) = parse("postgres://u@127.0.0.1:1/db").unwrap();
        assert_eq!(timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(config.get_application_name(), Some(APPLICATION_NAME));
        let (config, timeout) =
            parse("postgres://u@h/db?connect_timeout=3&application_name=mine").unwrap();
        assert_eq!(timeout, Duration::from_secs(3));
        assert_eq!(config.get_application_name(), Some("mine"));

        let err = parse("postgres://u:secret@h:notaport/db").unwrap_err();
        assert!(err.starts_with("invalid PostgreSQL URL: "), "{err}");
        assert!(err.contains("port"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(
            parse("postgres:///db").unwrap_err(),
            "invalid PostgreSQL URL: it names no host"
        );
        assert!(parse("nonsense").is_err());
    }
}
