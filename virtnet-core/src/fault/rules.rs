//! The fault rules of a network: what is set on which link, as data that a
//! store can keep and every process reads the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::quote::{quote, scan_quoted};

/// An ordered pair of hosts: bytes from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    /// The sending host.
    pub from: String,
    /// The receiving host.
    pub to: String,
}

impl Link {
    /// The link from `from` to `to`.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Link {
        Link {
            from: from.into(),
            to: to.into(),
        }
    }

    /// The same hosts, the other way.
    pub fn reversed(&self) -> Link {
        Link::new(self.to.clone(), self.from.clone())
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)
    }
}

/// What is set on one link. The default is a healthy link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// No byte crosses; bytes wait, in order, until the partition heals.
    pub partition: bool,
    /// Dials fail at once with "no route to host"; connections are reset.
    pub unreachable: bool,
    /// Every byte arrives no earlier than this after it was written.
    pub latency: Duration,
    /// Plus a uniform random extra delay of up to this.
    pub jitter: Duration,
    /// At most this many bytes per second cross.
    pub bandwidth: Option<u64>,
    /// The sequence number ([`FaultRules::resets`]) of the last reset of the
    /// link; connections made before it are reset.
    pub reset: u64,
}

impl LinkFaults {
    /// Whether nothing is set that affects bytes or dials (an old reset
    /// does not count).
    pub fn is_healthy(&self) -> bool {
        !self.partition
            && !self.unreachable
            && self.latency.is_zero()
            && self.jitter.is_zero()
            && self.bandwidth.is_none()
    }

    /// Whether bytes are delayed or paced on the link.
    pub fn shapes(&self) -> bool {
        !self.latency.is_zero() || !self.jitter.is_zero() || self.bandwidth.is_some()
    }
}

/// Every fault of a network, with a version that grows with each change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultRules {
    /// Grows by one with every change; 0 for a network where no fault was
    /// ever set.
    pub version: u64,
    /// The seed of the jitter's random numbers.
    pub seed: u64,
    /// How many resets were ever made; each reset takes the next number.
    pub resets: u64,
    /// The links with something set, by link.
    pub links: BTreeMap<Link, LinkFaults>,
}

/// The first line of [`FaultRules::encode`]'s text.
const MAGIC: &str = "virtnet-faults 1";

impl FaultRules {
    /// What is set on `link` (a healthy link if nothing is).
    pub fn link(&self, link: &Link) -> LinkFaults {
        self.links.get(link).cloned().unwrap_or_default()
    }

    /// What is set on the link from `from` to `to`.
    pub fn get(&self, from: &str, to: &str) -> Option<&LinkFaults> {
        // A lookup without allocating would need a borrowed key type; the
        // table is small and only read when a fault was ever set.
        self.links.get(&Link::new(from, to))
    }

    /// Applies `change` to `link`'s faults; a link left with nothing set is
    /// dropped from the table, unless it keeps a reset number that
    /// connections still compare against.
    pub fn update(&mut self, link: &Link, change: impl FnOnce(&mut LinkFaults)) {
        let mut faults = self.link(link);
        change(&mut faults);
        if faults.is_healthy() && faults.reset == 0 {
            self.links.remove(link);
        } else {
            self.links.insert(link.clone(), faults);
        }
    }

    /// The rules as text, one line per link: what stores keep.
    ///
    /// ```text
    /// virtnet-faults 1
    /// version 3
    /// seed 42
    /// resets 1
    /// link "α" "β" partition latency=20000000 jitter=0 bandwidth=- reset=1
    /// ```
    pub fn encode(&self) -> String {
        let mut out = format!(
            "{MAGIC}\nversion {}\nseed {}\nresets {}\n",
            self.version, self.seed, self.resets
        );
        for (link, f) in &self.links {
            out.push_str(&format!(
                "link {} {}{}{} latency={} jitter={} bandwidth={} reset={}\n",
                quote(link.from.as_bytes()),
                quote(link.to.as_bytes()),
                if f.partition { " partition" } else { "" },
                if f.unreachable { " unreachable" } else { "" },
                f.latency.as_nanos(),
                f.jitter.as_nanos(),
                f.bandwidth.map_or("-".to_owned(), |b| b.to_string()),
                f.reset,
            ));
        }
        out
    }

    /// Reads what [`encode`](Self::encode) wrote; `None` for anything else.
    pub fn decode(text: &str) -> Option<FaultRules> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut rules = FaultRules::default();
        let number = |line: Option<&str>, key: &str| -> Option<u64> {
            line?.strip_prefix(key)?.strip_prefix(' ')?.parse().ok()
        };
        rules.version = number(lines.next(), "version")?;
        rules.seed = number(lines.next(), "seed")?;
        rules.resets = number(lines.next(), "resets")?;
        for line in lines {
            let (link, faults) = decode_link(line)?;
            rules.links.insert(link, faults);
        }
        Some(rules)
    }
}

fn decode_link(line: &str) -> Option<(Link, LinkFaults)> {
    let rest = line.strip_prefix("link ")?.as_bytes();
    let (from, rest) = scan_quoted(rest).ok()?;
    let rest = rest.strip_prefix(b" ")?;
    let (to, rest) = scan_quoted(rest).ok()?;
    let link = Link::new(String::from_utf8(from).ok()?, String::from_utf8(to).ok()?);
    let mut f = LinkFaults::default();
    for word in std::str::from_utf8(rest).ok()?.split_whitespace() {
        let nanos = |v: &str| v.parse::<u64>().ok().map(Duration::from_nanos);
        match word.split_once('=') {
            None if word == "partition" => f.partition = true,
            None if word == "unreachable" => f.unreachable = true,
            Some(("latency", v)) => f.latency = nanos(v)?,
            Some(("jitter", v)) => f.jitter = nanos(v)?,
            Some(("bandwidth", "-")) => f.bandwidth = None,
            Some(("bandwidth", v)) => f.bandwidth = Some(v.parse().ok()?),
            Some(("reset", v)) => f.reset = v.parse().ok()?,
            _ => return None,
        }
    }
    Some((link, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        let mut rules = FaultRules {
            version: 3,
            seed: 42,
            resets: 1,
            ..FaultRules::default()
        };
        rules.update(&Link::new("α", "β\"x"), |f| {
            f.partition = true;
            f.latency = Duration::from_millis(20);
            f.bandwidth = Some(1 << 20);
            f.reset = 1;
        });
        rules.update(&Link::new("β", "α"), |f| f.unreachable = true);
        let text = rules.encode();
        assert!(text.contains(r#"link "α" "β\"x" partition latency=20000000"#));
        assert_eq!(FaultRules::decode(&text), Some(rules));
        assert_eq!(FaultRules::decode("nonsense"), None);
        assert_eq!(
            FaultRules::decode(&text.replace("latency=", "latency=x")),
            None
        );
    }

    #[test]
    fn a_healed_link_leaves_the_table() {
        let mut rules = FaultRules::default();
        let link = Link::new("α", "β");
        rules.update(&link, |f| f.partition = true);
        rules.update(&link, |f| f.partition = false);
        assert!(rules.links.is_empty());
    }
}
