//! `lonet fault`: setting, healing and listing a network's faults from the
//! shell, in its registry file, without joining it (no host, no OS
//! listener). Every process of the network applies the change within
//! milliseconds, to new and established connections.
//!
//! A change is made on the stored [`FaultRules`] with the meaning
//! `virtnet_core::Faults` gives it, as a compare-and-swap on the version
//! (again if another change came first).

use std::io;
use std::time::Duration;

use clap::{Args, Subcommand};
use virtnet_core::fault::{FaultRules, Link, LinkFaults};
use virtnet_core::Registry;

use crate::networks::Networks;

/// Examples, shown by `lonet fault --help`.
pub const EXAMPLES: &str = "\
Examples:
  lonet fault NET partition α β            no byte crosses between α and β (both ways)
  lonet fault NET partition α β --oneway   only from α to β
  lonet fault NET partition α,β / γ        between the sides {α,β} and {γ}
  lonet fault NET unreachable α β          dials fail with \"no route to host\"; connections reset
  lonet fault NET latency α β 20ms --jitter 5ms
  lonet fault NET bandwidth α β 1MiB/s
  lonet fault NET reset α β                reset the connections between α and β now
  lonet fault NET heal α β                 remove every fault between α and β
  lonet fault NET heal                     remove every fault of the network
  lonet fault NET seed 42                  the seed of the jitter's random delays
  lonet fault NET ls                       the faults set, by link";

/// `lonet fault NET …`.
#[derive(Args, Debug)]
pub struct FaultArgs {
    /// The network's name (without the "lonet" prefix); it must exist.
    pub net: String,
    #[command(subcommand)]
    pub action: Action,
}

/// What `lonet fault` does.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// No byte crosses the links: bytes wait, in order, until healed; dials wait.
    Partition(LinkArgs),
    /// Dials over the links fail at once with "no route to host";
    /// established connections are reset.
    Unreachable(LinkArgs),
    /// Every byte arrives no earlier than LATENCY (plus up to --jitter) after it was sent.
    Latency {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// The delay, e.g. 20ms, 1s, 1m 30s.
        #[arg(value_parser = parse_duration)]
        latency: Duration,
        /// Plus a random extra delay of up to this (from the network's seed).
        #[arg(long, value_parser = parse_duration, default_value = "0s")]
        jitter: Duration,
        /// Only from A to B.
        #[arg(long)]
        oneway: bool,
    },
    /// At most RATE bytes per second cross the links.
    Bandwidth {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// Bytes per second: 1000, 500B/s, 64KiB/s, 1MiB/s, 1GiB/s, 10kB/s, 1MB/s.
        #[arg(value_parser = parse_rate)]
        rate: u64,
        /// Only from A to B.
        #[arg(long)]
        oneway: bool,
    },
    /// Resets the connections established on the links now (later ones are not affected).
    Reset(LinkArgs),
    /// Removes every fault from the links, or from the whole network if no
    /// host is given; held bytes flow.
    Heal {
        /// "A B", or "A,B / C"; none: every link.
        hosts: Vec<String>,
        /// Only from A to B.
        #[arg(long)]
        oneway: bool,
    },
    /// Sets the seed of the jitter's random delays (for connections made after).
    Seed {
        /// The seed.
        seed: u64,
    },
    /// Lists the faults set, by link, with the rules' version and seed.
    Ls,
}

/// The links of a fault: two hosts, or two sides of hosts.
#[derive(Args, Debug)]
pub struct LinkArgs {
    /// "A B" (both directions), or "A,B / C" (every link between the sides).
    #[arg(required = true, num_args = 1..)]
    hosts: Vec<String>,
    /// Only from A to B (from the first side to the second).
    #[arg(long)]
    oneway: bool,
}

/// A usage error in `lonet fault`'s arguments: what to tell the user.
#[derive(Debug)]
pub struct Usage(pub String);

/// One checked change of the rules, or a listing.
pub enum Plan {
    /// Sets what `apply` sets on each of `links`.
    Set {
        /// What is done, for the user.
        what: String,
        /// The links, each one direction.
        links: Vec<Link>,
        /// The change on each link.
        apply: Box<dyn Fn(&mut LinkFaults)>,
    },
    /// Resets the connections on `links`.
    Reset {
        /// What is done, for the user.
        what: String,
        /// The links, each one direction.
        links: Vec<Link>,
    },
    /// Removes every fault from `links` (every link if `None`).
    Heal {
        /// What is done, for the user.
        what: String,
        /// The links, each one direction; `None`: all.
        links: Option<Vec<Link>>,
    },
    /// Sets the jitter's seed.
    Seed(u64),
    /// Prints the rules.
    List,
}

impl Action {
    /// Checks the arguments and says what to do.
    pub fn plan(self) -> Result<Plan, Usage> {
        Ok(match self {
            Action::Partition(l) => {
                let (links, text) = links(&l.hosts, l.oneway)?;
                Plan::Set {
                    what: format!("partition {text}"),
                    links,
                    apply: Box::new(|f| f.partition = true),
                }
            }
            Action::Unreachable(l) => {
                let (links, text) = links(&l.hosts, l.oneway)?;
                Plan::Set {
                    what: format!("unreachable {text}"),
                    links,
                    apply: Box::new(|f| f.unreachable = true),
                }
            }
            Action::Latency {
                a,
                b,
                latency,
                jitter,
                oneway,
            } => {
                let (links, text) = links(&[a, b], oneway)?;
                let mut what = format!("latency {text} {}", humantime::format_duration(latency));
                if !jitter.is_zero() {
                    what += &format!(" jitter {}", humantime::format_duration(jitter));
                }
                Plan::Set {
                    what,
                    links,
                    apply: Box::new(move |f| {
                        f.latency = latency;
                        f.jitter = jitter;
                    }),
                }
            }
            Action::Bandwidth { a, b, rate, oneway } => {
                let (links, text) = links(&[a, b], oneway)?;
                Plan::Set {
                    what: format!("bandwidth {text} {}", show_rate(rate)),
                    links,
                    apply: Box::new(move |f| f.bandwidth = Some(rate)),
                }
            }
            Action::Reset(l) => {
                let (links, text) = links(&l.hosts, l.oneway)?;
                Plan::Reset {
                    what: format!("reset {text}"),
                    links,
                }
            }
            Action::Heal { hosts, oneway } if hosts.is_empty() => {
                if oneway {
                    return Err(Usage(
                        "--oneway needs the hosts of the links to heal".to_owned(),
                    ));
                }
                Plan::Heal {
                    what: "heal".to_owned(),
                    links: None,
                }
            }
            Action::Heal { hosts, oneway } => {
                let (links, text) = links(&hosts, oneway)?;
                Plan::Heal {
                    what: format!("heal {text}"),
                    links: Some(links),
                }
            }
            Action::Seed { seed } => Plan::Seed(seed),
            Action::Ls => Plan::List,
        })
    }
}

/// The links `hosts` names, each one direction, and how to show them: `A
/// B` (both ways), or `A,B / C` (also as one argument `A,B/C`: every link
/// between the sides, both ways); with `oneway` only from the first to the
/// second.
fn links(hosts: &[String], oneway: bool) -> Result<(Vec<Link>, String), Usage> {
    let bad = |why: &str| {
        Usage(format!(
            "invalid hosts '{}': {why} (want \"A B\" or \"A,B / C\")",
            hosts.join(" ")
        ))
    };
    let side = |words: &[String]| -> Vec<String> {
        words
            .iter()
            .flat_map(|w| w.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let sides = if let Some(at) = hosts.iter().position(|h| h == "/") {
        Some((side(&hosts[..at]), side(&hosts[at + 1..])))
    } else if let [one] = hosts {
        one.split_once('/')
            .map(|(a, b)| (side(&[a.to_owned()]), side(&[b.to_owned()])))
    } else {
        None
    };
    let (a, b, text) = match sides {
        Some((a, b)) => {
            if a.is_empty() || b.is_empty() {
                return Err(bad("a side has no host"));
            }
            if let Some(h) = a.iter().find(|h| b.contains(h)) {
                return Err(bad(&format!("{h} is on both sides")));
            }
            let arrow = if oneway { "->" } else { "|" };
            let text = format!("{{{}}} {arrow} {{{}}}", a.join(","), b.join(","));
            (a, b, text)
        }
        None => match hosts {
            [a, b] if a == b => return Err(bad("the two hosts are the same")),
            [a, b] => {
                let text = if oneway {
                    format!("{a} -> {b}")
                } else {
                    format!("{a} {b}")
                };
                (vec![a.clone()], vec![b.clone()], text)
            }
            _ => return Err(bad("give two hosts, or two sides separated by /")),
        },
    };
    let mut links = Vec::new();
    for x in &a {
        for y in &b {
            links.push(Link::new(x.as_str(), y.as_str()));
            if !oneway {
                links.push(Link::new(y.as_str(), x.as_str()));
            }
        }
    }
    Ok((links, text))
}

/// A duration: `20ms`, `1s`, `1m 30s` (humantime's forms), at most a day
/// ([`virtnet_core::MAX_DELAY`]).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (want e.g. 20ms, 1s, 1m 30s)"))?;
    if d > virtnet_core::MAX_DELAY {
        return Err(format!("{text}: more than a day"));
    }
    Ok(d)
}

/// A rate in bytes per second: a number with an optional unit, `B/s`,
/// `kB/s` / `MB/s` / `GB/s` (powers of 1000) or `KiB/s` / `MiB/s` /
/// `GiB/s` (powers of 1024); the `/s` may be left out. Must be positive.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let want = "want e.g. 1000, 64KiB/s, 1MiB/s, 10MB/s";
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    let scale: u64 = match unit {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} ({want})")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a number of bytes per second ({want})"))?;
    let bytes = (value * scale as f64).round();
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("must be at least 1 byte per second ({want})"));
    }
    // In range: checked above.
    Ok(bytes as u64)
}

/// `rate` with the largest binary unit that divides it.
fn show_rate(rate: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if rate.is_multiple_of(scale) {
            return format!("{}{unit}/s", rate / scale);
        }
    }
    format!("{rate}B/s")
}

/// Carries out `plan` on network `net`'s registry.
pub async fn run(networks: &Networks, net: &str, plan: Plan) -> io::Result<()> {
    let registry = networks.open(net).await?;
    let result = carry_out(&*registry, net, plan).await;
    let _ = registry.close().await;
    result
}

/// A change of the whole rules.
type RulesChange = Box<dyn Fn(&mut FaultRules)>;

async fn carry_out(registry: &dyn Registry, net: &str, plan: Plan) -> io::Result<()> {
    let store = registry.faults().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "faults are not supported by this registry",
        )
    })?;
    let (what, change): (String, RulesChange) = match plan {
        Plan::List => {
            let rules = store.load().await?;
            print!("{}", table(&rules));
            return Ok(());
        }
        Plan::Set { what, links, apply } => (
            what,
            Box::new(move |rules| {
                for link in &links {
                    rules.update(link, |f| apply(f));
                }
            }),
        ),
        Plan::Reset { what, links } => (
            what,
            Box::new(move |rules| {
                rules.resets += 1;
                let n = rules.resets;
                for link in &links {
                    rules.update(link, |f| f.reset = n);
                }
            }),
        ),
        Plan::Heal { what, links } => (
            what,
            Box::new(move |rules| {
                let all: Vec<Link> = match &links {
                    Some(links) => links.clone(),
                    None => rules.links.keys().cloned().collect(),
                };
                for link in &all {
                    rules.update(link, |f| {
                        *f = LinkFaults {
                            reset: f.reset,
                            ..LinkFaults::default()
                        }
                    });
                }
            }),
        ),
        Plan::Seed(seed) => (format!("seed {seed}"), Box::new(move |r| r.seed = seed)),
    };
    loop {
        let mut rules = store.load().await?;
        let base = rules.version;
        change(&mut rules);
        rules.version = base + 1;
        if store.store_if(base, &rules).await? {
            println!("{net}: {what} (version {})", rules.version);
            return Ok(());
        }
    }
}

/// The rules as `lonet fault ls` prints them.
fn table(rules: &FaultRules) -> String {
    let mut out = format!("version {}\tseed {}\n", rules.version, rules.seed);
    out.push_str("FROM\tTO\tFAULTS\n");
    for (link, f) in &rules.links {
        let mut faults = Vec::new();
        if f.partition {
            faults.push("partition".to_owned());
        }
        if f.unreachable {
            faults.push("unreachable".to_owned());
        }
        if !f.latency.is_zero() || !f.jitter.is_zero() {
            let mut l = format!("latency {}", humantime::format_duration(f.latency));
            if !f.jitter.is_zero() {
                l += &format!(" jitter {}", humantime::format_duration(f.jitter));
            }
            faults.push(l);
        }
        if let Some(rate) = f.bandwidth {
            faults.push(format!("bandwidth {}", show_rate(rate)));
        }
        if faults.is_empty() {
            faults.push(format!("none (reset #{})", f.reset));
        } else if f.reset > 0 {
            faults.push(format!("reset #{}", f.reset));
        }
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            link.from,
            link.to,
            faults.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_their_units() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert!(parse_duration("2days").is_err());
        assert_eq!(parse_duration("1day"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_rate("500B/s"), Ok(500));
        assert_eq!(parse_rate("64KiB/s"), Ok(64 * 1024));
        assert_eq!(parse_rate("1MiB/s"), Ok(1 << 20));
        assert_eq!(parse_rate("1.5MiB/s"), Ok(3 << 19));
        assert_eq!(parse_rate("2GiB"), Ok(2 << 30));
        assert_eq!(parse_rate("10kB/s"), Ok(10_000));
        assert_eq!(parse_rate("1MB/s"), Ok(1_000_000));
        for bad in ["", "fast", "1XB/s", "0", "-1MiB/s", "0.1B/s", "1e30GiB/s"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
        assert_eq!(show_rate(1 << 20), "1MiB/s");
        assert_eq!(show_rate(1000), "1000B/s");
    }

    #[test]
    fn links_take_pairs_and_sides() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (l, text) = links(&s(&["α", "β"]), false).unwrap();
        assert_eq!(l, [Link::new("α", "β"), Link::new("β", "α")]);
        assert_eq!(text, "α β");
        let (l, text) = links(&s(&["α", "β"]), true).unwrap();
        assert_eq!(l, [Link::new("α", "β")]);
        assert_eq!(text, "α -> β");
        let (l, text) = links(&s(&["α,β", "/", "γ"]), false).unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!(text, "{α,β} | {γ}");
        let (l, _) = links(&s(&["α,β/γ"]), true).unwrap();
        assert_eq!(l, [Link::new("α", "γ"), Link::new("β", "γ")]);
        for bad in [
            &["α"][..],
            &["α", "β", "γ"],
            &["α", "α"],
            &["/", "β"],
            &["α", "/", "α"],
        ] {
            let err = links(&s(bad), false).unwrap_err();
            assert!(err.0.starts_with("invalid hosts"), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn the_table_shows_each_link() {
        let mut rules = FaultRules {
            version: 3,
            seed: 7,
            ..FaultRules::default()
        };
        rules.update(&Link::new("α", "β"), |f| {
            f.partition = true;
            f.latency = Duration::from_millis(20);
            f.jitter = Duration::from_millis(5);
        });
        rules.update(&Link::new("β", "α"), |f| f.bandwidth = Some(1 << 20));
        assert_eq!(
            table(&rules),
            "version 3\tseed 7\nFROM\tTO\tFAULTS\n\
             α\tβ\tpartition, latency 20ms jitter 5ms\n\
             β\tα\tbandwidth 1MiB/s\n"
        );
    }
}
