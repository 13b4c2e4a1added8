//! Go `%q` quoting (`virtnet_core::quote`) on arbitrary bytes.
//!
//! `quote` takes a byte string (any bytes: invalid UTF-8 is written as
//! `\xNN`), so the round trip is over all byte strings, not only UTF-8 ones.
//!
//! Properties, for arbitrary bytes `s`:
//! - `unquote(quote(s)) == s`;
//! - `scan_quoted(quote(s) + rest)` gives back `s` and exactly `rest`
//!   (`rest` is the tail of `s` after its first byte, any bytes);
//! - `unquote(s)`, `scan_quoted(s)` and `decode_rune(s)` never panic, and
//!   `decode_rune` reports a width within `s` (0 only for empty `s`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnet_core::quote::{decode_rune, quote, scan_quoted, unquote};

fuzz_target!(|s: &[u8]| {
    let quoted = quote(s);
    assert_eq!(
        unquote(quoted.as_bytes()).as_deref(),
        Ok(s),
        "unquote(quote({s:02x?})) with quote = {quoted:?}"
    );

    let rest = s.get(1..).unwrap_or_default();
    let mut line = quoted.clone().into_bytes();
    line.extend_from_slice(rest);
    let scanned = scan_quoted(&line);
    assert_eq!(
        scanned.as_ref().map(|(v, r)| (v.as_slice(), *r)),
        Ok((s, rest)),
        "scan_quoted of {quoted:?} followed by {rest:02x?}"
    );

    let _ = unquote(s);
    let _ = scan_quoted(s);
    let (c, width) = decode_rune(s);
    assert!(width <= s.len());
    assert_eq!(width == 0, s.is_empty());
    if let Some(c) = c {
        assert_eq!(width, c.len_utf8());
    }
});
