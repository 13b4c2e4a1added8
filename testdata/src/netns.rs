//! Two "machines" on one: network namespaces joined by veth links, for
//! tests and benchmarks of what crosses a real network stack. Needs root
//! and iproute2's `ip`.
//!
//! Addresses come from 198.18.0.0/15, the range reserved for network
//! benchmarks.

use std::process::Command;

/// Two namespaces, `a` and `b`, joined by a veth pair (`198.18.K.1` in
/// `a`, `198.18.K.2` in `b`), each also joined to the root namespace by a
/// veth pair of its own (root `198.19.K.1` ↔ `a` `198.19.K.2`, root
/// `198.19.K.5` ↔ `b` `198.19.K.6`). `a` and `b` route everything else to
/// the root namespace, which routes to their `198.18.K.x` addresses. K
/// differs between test runs, so runs at once do not collide. Removed on
/// drop.
pub struct Namespaces {
    /// The first namespace's name.
    pub a: String,
    /// The second namespace's name.
    pub b: String,
    k: u8,
}

impl Namespaces {
    /// Makes the namespaces; `tag` (a letter or two) tells apart those of
    /// one process. The error says which `ip` command failed, and why.
    pub fn create(tag: &str) -> Result<Namespaces, String> {
        let pid = std::process::id() % 100_000;
        // A third octet of 10..=249, from the pid and the tag.
        let k = 10 + ((pid + tag.len() as u32 * 37) % 240) as u8;
        let ns = Namespaces {
            a: format!("vn{pid}{tag}a"),
            b: format!("vn{pid}{tag}b"),
            k,
        };
        // Leftovers of a run that was killed with this pid: gone.
        let _ = ip(&["netns", "del", &ns.a]);
        let _ = ip(&["netns", "del", &ns.b]);
        ns.build(pid, tag)?;
        Ok(ns)
    }

    fn build(&self, pid: u32, tag: &str) -> Result<(), String> {
        let (a, b, k) = (self.a.as_str(), self.b.as_str(), self.k);
        let dev = |s: &str| format!("vn{pid}{tag}{s}");
        let (ab, ba, ra, ar, rb, br) = (
            dev("ab"),
            dev("ba"),
            dev("ra"),
            dev("ar"),
            dev("rb"),
            dev("br"),
        );
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        for (ns, dev, peer, peer_ns, addr, peer_addr) in [
            (
                Some(a),
                &ab,
                &ba,
                Some(b),
                format!("198.18.{k}.1/24"),
                format!("198.18.{k}.2/24"),
            ),
            (
                None,
                &ra,
                &ar,
                Some(a),
                format!("198.19.{k}.1/30"),
                format!("198.19.{k}.2/30"),
            ),
            (
                None,
                &rb,
                &br,
                Some(b),
                format!("198.19.{k}.5/30"),
                format!("198.19.{k}.6/30"),
            ),
        ] {
            ip(&["link", "add", dev, "type", "veth", "peer", "name", peer])?;
            if let Some(ns) = ns {
                ip(&["link", "set", dev, "netns", ns])?;
            }
            if let Some(peer_ns) = peer_ns {
                ip(&["link", "set", peer, "netns", peer_ns])?;
            }
            ip_in(ns, &["addr", "add", &addr, "dev", dev])?;
            ip_in(peer_ns, &["addr", "add", &peer_addr, "dev", peer])?;
            ip_in(ns, &["link", "set", dev, "up"])?;
            ip_in(peer_ns, &["link", "set", peer, "up"])?;
        }
        ip_in(Some(a), &["link", "set", "lo", "up"])?;
        ip_in(Some(b), &["link", "set", "lo", "up"])?;
        ip_in(
            Some(a),
            &["route", "add", "default", "via", &format!("198.19.{k}.1")],
        )?;
        ip_in(
            Some(b),
            &["route", "add", "default", "via", &format!("198.19.{k}.5")],
        )?;
        ip(&[
            "route",
            "add",
            &format!("198.18.{k}.1/32"),
            "via",
            &format!("198.19.{k}.2"),
        ])?;
        ip(&[
            "route",
            "add",
            &format!("198.18.{k}.2/32"),
            "via",
            &format!("198.19.{k}.6"),
        ])?;
        Ok(())
    }

    /// The root namespace's address, which both namespaces reach.
    pub fn root_ip(&self) -> String {
        format!("198.19.{}.1", self.k)
    }

    /// The address of namespace `a` (`b`: `198.18.K.2`) on the link
    /// between them.
    pub fn ip_of(&self, ns: &str) -> String {
        let last = if ns == self.a { 1 } else { 2 };
        format!("198.18.{}.{last}", self.k)
    }

    /// A command prefix that runs in namespace `ns`.
    pub fn exec<'a>(&'a self, ns: &'a str) -> [&'a str; 4] {
        ["ip", "netns", "exec", ns]
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // The veth pairs, their root ends and routes go with the namespaces.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    ip_in(None, args)
}

/// Runs `ip ARGS` in namespace `ns` (None: the root namespace).
fn ip_in(ns: Option<&str>, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces for a test, or None (said on stderr) where they cannot
/// be made; but where `VIRTNET_TEST_STRICT` is set (CI), that panics.
pub fn namespaces(tag: &str) -> Option<Namespaces> {
    match Namespaces::create(tag) {
        Ok(ns) => Some(ns),
        Err(e) if std::env::var_os("VIRTNET_TEST_STRICT").is_some() => {
            panic!("network namespaces cannot be created here: {e} (CI runs as root and can)")
        }
        Err(e) => {
            eprintln!("skipped: network namespaces cannot be created here: {e}");
            None
        }
    }
}
