//! Test data of the virtnet workspace, and the one way every test loads it.
//!
//! `interop/` holds the reference (Go) lonet's interop material, copied
//! into the repository as it was produced so that a clone needs nothing
//! beside it. Its `README.md` says how and when each file was made. The
//! files are never written to: a test that needs to write (the registry)
//! works on a copy ([`copy_interop`]).
//!
//! - [`GO_REGISTRY`]: a registry the reference wrote for network `gomade`;
//! - [`HANDSHAKE_VECTORS`]: the reference's handshake transcripts;
//! - [`QUOTE_VECTORS`]: Go's `%q`, `strconv.Unquote` and `Sscanf` results.
//!
//! Beside the data, the small helpers more than one test needs: [`unhex`],
//! [`text`], the generator [`Rng`], [`unique_name`]; [`netns`], two
//! "machines" in network namespaces; and [`programs`], the real programs
//! the tests drive (PostgreSQL's `psql`, `python3 -m http.server`).
//!
//! This crate is for tests only (a dev-dependency, never published). Its
//! helpers panic with a message naming the file or value at fault, since
//! that is how a test fails.
//!
//! ```
//! use virtnet_testdata::{interop_json, text, unhex, QUOTE_VECTORS};
//!
//! let vectors = interop_json(QUOTE_VECTORS);
//! let first = &vectors["quote"][0];
//! assert!(!text(first, "quoted").is_empty());
//! assert_eq!(unhex("ceb1"), "α".as_bytes());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod netns;
pub mod programs;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The reference's registry file for network `gomade` (hosts `α`, `β` and
/// `q"x\y`). Open only a copy: see [`copy_interop`].
pub const GO_REGISTRY: &str = "go-registry.db";

/// The reference's handshake transcripts, both roles, as JSON.
pub const HANDSHAKE_VECTORS: &str = "handshake-vectors.json";

/// Go's `%q`, `strconv.Unquote` and dial-line `Sscanf` results, as JSON.
pub const QUOTE_VECTORS: &str = "quote-vectors.json";

/// The folder of the interop files, inside this crate.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// The path of the interop file `name` (one of [`GO_REGISTRY`],
/// [`HANDSHAKE_VECTORS`], [`QUOTE_VECTORS`], or `README.md`).
pub fn interop_path(name: &str) -> PathBuf {
    interop_dir().join(name)
}

/// The interop file `name`, parsed as JSON.
///
/// # Panics
///
/// If the file cannot be read or is not JSON.
pub fn interop_json(name: &str) -> Value {
    let path = interop_path(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Copies the interop file `name` to `dest`, with its SQLite `-wal` and
/// `-shm` companions if it has any (as `dest-wal`, `dest-shm`), and makes
/// the copies writable: the originals are read-only, and so would be copies
/// that keep their permissions. Returns `dest`.
///
/// # Panics
///
/// If a file cannot be copied or made writable.
pub fn copy_interop(name: &str, dest: &Path) -> PathBuf {
    let from = interop_path(name);
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(&from, suffix);
        if !suffix.is_empty() && !from.exists() {
            continue;
        }
        let to = with_suffix(dest, suffix);
        fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
        let mut perm = fs::metadata(&to)
            .unwrap_or_else(|e| panic!("metadata of {}: {e}", to.display()))
            .permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        fs::set_permissions(&to, perm)
            .unwrap_or_else(|e| panic!("make {} writable: {e}", to.display()));
    }
    dest.to_path_buf()
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The bytes a string of hex digit pairs spells: `unhex("ceb1")` is `α` in
/// UTF-8.
///
/// # Panics
///
/// If `hex` has an odd length or a character that is not a hex digit.
pub fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex {hex:?}");
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .unwrap_or_else(|| panic!("bad hex at {i} in {hex:?}"))
        })
        .collect()
}

/// The string field `key` of the JSON object `v`.
///
/// # Panics
///
/// If there is no such field or it is not a string.
pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// A name no other test run uses (for networks in a shared database, which
/// must not meet): `prefix`, this process, a counter and the time.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{}x{}x{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A small deterministic generator (xorshift64*), so that randomized tests
/// reproduce: the same seed gives the same numbers. The seed must not be 0.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interop_file_is_here() {
        for name in [GO_REGISTRY, HANDSHAKE_VECTORS, QUOTE_VECTORS, "README.md"] {
            assert!(interop_path(name).is_file(), "{name}");
        }
        assert_eq!(interop_json(HANDSHAKE_VECTORS)["network"], "lonetvectors");
        assert!(interop_json(QUOTE_VECTORS)["quote"].is_array());
    }

    #[test]
    fn copies_are_writable_and_identical() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = copy_interop(GO_REGISTRY, &dir.path().join("registry.db"));
        let copied = fs::read(&dest).expect("copy");
        assert_eq!(
            copied,
            fs::read(interop_path(GO_REGISTRY)).expect("original")
        );
        assert!(!fs::metadata(&dest)
            .expect("metadata")
            .permissions()
            .readonly());
    }

    #[test]
    fn unhex_and_text() {
        assert_eq!(unhex(""), b"");
        assert_eq!(unhex("00ff7Fce"), [0, 0xff, 0x7f, 0xce]);
        let v: Value = serde_json::from_str(r#"{"a": "b"}"#).expect("json");
        assert_eq!(text(&v, "a"), "b");
    }

    #[test]
    #[should_panic(expected = "odd hex")]
    fn unhex_refuses_odd_lengths() {
        unhex("abc");
    }

    #[test]
    fn rng_is_xorshift64_star() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        let mut again = Rng(0x2545_f491_4f6c_dd1d);
        assert_eq!(first, (0..3).map(|_| again.next_u64()).collect::<Vec<_>>());
        assert!((0..1000).all(|_| rng.below(7) < 7));
    }
}
