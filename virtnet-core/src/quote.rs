//! Go string quoting: how the reference implementation writes strings, on
//! lonet's wire and in its messages.
//!
//! Every `"…"` on the lonet wire is Go's `%q` of a string, that is
//! `strconv.Quote` of a *byte* string. This module writes such strings
//! ([`quote`]), reads them back as Go's `strconv.Unquote` does ([`unquote`]),
//! and reads one quoted token off the front of a line as Go's `fmt` scanner
//! does for the `%q` verb ([`scan_quoted`]), which also takes back-quoted raw
//! strings.
//!
//! All three take bytes, not `&str`: a Go string may hold any bytes, and the
//! peer is hostile. Nothing here panics, whatever the input.
//!
//! ```
//! use virtnet_core::quote::{quote, scan_quoted, unquote};
//!
//! // Printable Unicode stays as it is; controls and `"` `\` are escaped.
//! assert_eq!(quote("α:1".as_bytes()), r#""α:1""#);
//! assert_eq!(quote(b"tab\there \"q\"\xff"), r#""tab\there \"q\"\xff""#);
//!
//! // Any Go form reads back.
//! assert_eq!(unquote(br#""\u03b1:1""#).unwrap(), "α:1".as_bytes());
//! assert_eq!(unquote(b"`raw \\n`").unwrap(), b"raw \\n");
//! assert_eq!(unquote(br#""\q""#).unwrap_err().to_string(), "invalid syntax");
//!
//! // Scanning stops after the closing quote and hands back the rest.
//! let (value, rest) = scan_quoted(r#""β:1" "α:2""#.as_bytes()).unwrap();
//! assert_eq!(value, "β:1".as_bytes());
//! assert_eq!(rest, r#" "α:2""#.as_bytes());
//! ```
//!
//! # Printable characters and the Unicode version
//!
//! Go keeps a character as it is when `unicode.IsPrint` says so: general
//! categories L, M, N, P, S, and the ASCII space. Everything else —
//! other spaces (U+00A0), format characters (U+200B, U+FEFF), separators
//! (U+2028), private use (U+E000), surrogates and unassigned code points —
//! is escaped. The categories come from the `unicode-properties` crate, whose
//! Unicode version ([`unicode_properties::UNICODE_VERSION`]) is newer than the
//! Unicode 13.0.0 of Go 1.19 (which produced the interop vectors). For a
//! character assigned after Unicode 13 the two therefore differ: Go 1.19 writes
//! `\uNNNN`, this module the character itself. Compared with Go 1.19.8's
//! `strconv.IsPrint` over every code point, that is 28,940 code points (185
//! ranges, all unassigned in Unicode 13) and no difference the other way.
//! Both forms are valid Go quoted strings that unquote to the same bytes, so
//! the wire stays compatible; only a byte-for-byte comparison of such a line
//! (or a log text) would notice. (Later Go releases move to later Unicode
//! versions too.)

use std::error::Error;
use std::fmt;

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// A quoted string that is not valid Go syntax.
///
/// Displays as `invalid syntax`, the text of Go's `strconv.ErrSyntax`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuoteError;

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid syntax")
    }
}

impl Error for QuoteError {}

/// Go's `strconv.Quote` (and `fmt`'s `%q`) of the byte string `s`.
///
/// The result is enclosed in `"`; `"` and `\` are escaped; `\a \b \f \n \r
/// \t \v` stand for those controls; other controls below U+0020 and U+007F
/// become `\xNN`; other characters that are not printable (see the
/// [module documentation](self)) become `\uNNNN` or `\UNNNNNNNN` (lowercase
/// hex); each byte that is not part of valid UTF-8 becomes `\xNN`.
/// Printable characters stay as they are.
///
/// ```
/// use virtnet_core::quote::quote;
///
/// assert_eq!(quote("日本語:42".as_bytes()), "\"日本語:42\"");
/// assert_eq!(quote("\u{a0}\u{10ffff}".as_bytes()), r#""\u00a0\U0010ffff""#);
/// assert_eq!(quote(b"ok\xe2\x82"), r#""ok\xe2\x82""#);
/// ```
pub fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for &b in chunk.invalid() {
            push_hex(&mut out, "\\x", u32::from(b), 2);
        }
    }
    out.push('"');
    out
}

/// Whether Go's `strconv.IsPrint` (equal to `unicode.IsPrint`) holds for `c`:
/// a letter, mark, number, punctuation or symbol, or the ASCII space.
fn is_print(c: char) -> bool {
    if c.is_ascii() {
        // ASCII's printable characters are exactly space to `~`.
        return matches!(c, ' '..='~');
    }
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Mark
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    )
}

/// Appends `c` as Go's `strconv.Quote` writes it between `"`.
fn push_escaped(out: &mut String, c: char) {
    let simple = match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        _ if is_print(c) => {
            out.push(c);
            return;
        }
        '\x07' => Some("\\a"),
        '\x08' => Some("\\b"),
        '\x0c' => Some("\\f"),
        '\n' => Some("\\n"),
        '\r' => Some("\\r"),
        '\t' => Some("\\t"),
        '\x0b' => Some("\\v"),
        _ => None,
    };
    if let Some(escape) = simple {
        out.push_str(escape);
        return;
    }
    let v = u32::from(c);
    if v < 0x20 || v == 0x7f {
        push_hex(out, "\\x", v, 2);
    } else if v < 0x10000 {
        push_hex(out, "\\u", v, 4);
    } else {
        push_hex(out, "\\U", v, 8);
    }
}

/// Appends `prefix` and the low `digits` hex digits of `v`, lowercase.
fn push_hex(out: &mut String, prefix: &str, v: u32, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str(prefix);
    for i in (0..digits).rev() {
        let nibble = (v >> (4 * i)) & 0xf;
        out.push(char::from(HEX[nibble as usize]));
    }
}

/// Go's `strconv.Unquote`: the value of a Go string or rune literal.
///
/// Takes the three forms Go does:
/// - double-quoted, with every Go escape: `\a \b \f \n \r \t \v \\ \"`,
///   `\xNN` (one byte), `\NNN` (octal, one byte, at most `\377`), `\uNNNN` and
///   `\UNNNNNNNN` (a Unicode scalar value, written as UTF-8). `\'` and a raw
///   newline are invalid. A raw byte that is not valid UTF-8 becomes U+FFFD,
///   as in Go.
/// - back-quoted raw strings: no escapes, no `` ` `` inside; carriage returns
///   are dropped (Go drops `\r` from raw strings); other bytes are kept.
/// - single-quoted rune literals: one character or escape (`\"` is invalid
///   there, `\'` valid). Like Go, an empty `''` gives an empty value.
///
/// Anything else, including text after the closing quote, is a
/// [`QuoteError`].
///
/// ```
/// use virtnet_core::quote::unquote;
///
/// assert_eq!(unquote(br#""\x41\101\u0041""#).unwrap(), b"AAA");
/// assert_eq!(unquote(b"'c'").unwrap(), b"c");
/// assert!(unquote(br#""\400""#).is_err());
/// assert!(unquote(b"\"tail\"extra").is_err());
/// ```
pub fn unquote(s: &[u8]) -> Result<Vec<u8>, QuoteError> {
    let (&q, rest) = s.split_first().ok_or(QuoteError)?;
    let (&last, body) = rest.split_last().ok_or(QuoteError)?;
    if q != last {
        return Err(QuoteError);
    }
    match q {
        b'`' => {
            if body.contains(&b'`') {
                return Err(QuoteError);
            }
            return Ok(body.iter().copied().filter(|&b| b != b'\r').collect());
        }
        b'"' | b'\'' => {}
        _ => return Err(QuoteError),
    }
    if body.contains(&b'\n') {
        return Err(QuoteError);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (value, tail) = unquote_char(rest, q)?;
        value.append_to(&mut out);
        rest = tail;
        if q == b'\'' && !rest.is_empty() {
            // A rune literal holds one character.
            return Err(QuoteError);
        }
    }
    Ok(out)
}

/// One decoded character of a quoted string.
enum Value {
    /// A single byte (`\xNN`, `\NNN`, an ASCII character or simple escape).
    Byte(u8),
    /// A Unicode character, appended as UTF-8.
    Char(char),
}

impl Value {
    fn append_to(self, out: &mut Vec<u8>) {
        match self {
            Value::Byte(b) => out.push(b),
            Value::Char(c) => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// Go's `strconv.UnquoteChar`: decodes the first character or escape of `s`
/// (the inside of a literal quoted with `quote`) and returns the rest.
fn unquote_char(s: &[u8], quote: u8) -> Result<(Value, &[u8]), QuoteError> {
    let (&c, rest) = s.split_first().ok_or(QuoteError)?;
    if c == quote && (quote == b'\'' || quote == b'"') {
        return Err(QuoteError);
    }
    if c >= 0x80 {
        let (r, width) = decode_rune(s);
        let tail = s.get(width..).unwrap_or_default();
        return Ok((Value::Char(r.unwrap_or(char::REPLACEMENT_CHARACTER)), tail));
    }
    if c != b'\\' {
        return Ok((Value::Byte(c), rest));
    }
    let (&e, rest) = rest.split_first().ok_or(QuoteError)?;
    let simple = match e {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        b'\\' => Some(b'\\'),
        b'\'' | b'"' if e == quote => Some(e),
        _ => None,
    };
    if let Some(b) = simple {
        return Ok((Value::Byte(b), rest));
    }
    match e {
        b'x' | b'u' | b'U' => {
            let n = match e {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let digits = rest.get(..n).ok_or(QuoteError)?;
            let mut v: u32 = 0;
            for &d in digits {
                let x = char::from(d).to_digit(16).ok_or(QuoteError)?;
                v = (v << 4) | x;
            }
            let tail = rest.get(n..).unwrap_or_default();
            if e == b'x' {
                // Two hex digits: always below 0x100.
                let b = u8::try_from(v).map_err(|_| QuoteError)?;
                return Ok((Value::Byte(b), tail));
            }
            let c = char::from_u32(v).ok_or(QuoteError)?;
            Ok((Value::Char(c), tail))
        }
        b'0'..=b'7' => {
            let digits = rest.get(..2).ok_or(QuoteError)?;
            let mut v = u32::from(e - b'0');
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return Err(QuoteError);
                }
                v = (v << 3) | u32::from(d - b'0');
            }
            let b = u8::try_from(v).map_err(|_| QuoteError)?;
            Ok((Value::Byte(b), rest.get(2..).unwrap_or_default()))
        }
        _ => Err(QuoteError),
    }
}

/// Go's `utf8.DecodeRune`: the first character of `s` and its length in
/// bytes, or `None` and 1 when `s` does not start with valid UTF-8
/// (`None` and 0 when `s` is empty).
pub fn decode_rune(s: &[u8]) -> (Option<char>, usize) {
    if let Some(&b) = s.first().filter(|b| b.is_ascii()) {
        return (Some(char::from(b)), 1);
    }
    let head = s.get(..4).unwrap_or(s);
    match head.utf8_chunks().next() {
        None => (None, 0),
        Some(chunk) => match chunk.valid().chars().next() {
            Some(c) => (Some(c), c.len_utf8()),
            None => (None, 1),
        },
    }
}

/// Appends `s` as Go's `fmt` scanner reads it, rune by rune: valid UTF-8 as
/// it is, and U+FFFD for each byte that is not valid UTF-8.
fn push_runes(out: &mut Vec<u8>, s: &[u8]) {
    for chunk in s.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        for _ in chunk.invalid() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

/// Reads one quoted token from the start of `input` as Go's `fmt` scanner
/// does for the `%q` verb, and returns its value and the input after the
/// closing quote.
///
/// The token is either
/// - double-quoted: it runs to the first `"` that is not escaped (the byte
///   after each `\` is skipped) and its value is that of [`unquote`]; or
/// - back-quoted: it runs to the next `` ` ``, with no escapes, and its value
///   is the text in between, newlines and carriage returns included (unlike
///   [`unquote`], the scanner keeps `\r`); bytes that are not valid UTF-8
///   each become U+FFFD, since the scanner reads runes.
///
/// Leading spaces are *not* skipped (the `%q` verb skips them before it gets
/// here, and the handshake parser does so): `input` must start with the
/// quote. A missing quote, a token that does not end, or a malformed
/// double-quoted string is a [`QuoteError`].
///
/// ```
/// use virtnet_core::quote::scan_quoted;
///
/// let (value, rest) = scan_quoted(b"`lonet\"x` dial").unwrap();
/// assert_eq!((value.as_slice(), rest), (&b"lonet\"x"[..], &b" dial"[..]));
/// assert!(scan_quoted(b"\"unterminated").is_err());
/// assert!(scan_quoted(b" \"x\"").is_err());
/// ```
pub fn scan_quoted(input: &[u8]) -> Result<(Vec<u8>, &[u8]), QuoteError> {
    match input.first() {
        Some(b'`') => {
            let body = input.get(1..).unwrap_or_default();
            let end = body.iter().position(|&b| b == b'`').ok_or(QuoteError)?;
            let mut value = Vec::with_capacity(end);
            push_runes(&mut value, body.get(..end).unwrap_or_default());
            Ok((value, body.get(end + 1..).unwrap_or_default()))
        }
        Some(b'"') => {
            let mut i = 1;
            loop {
                match input.get(i) {
                    None => return Err(QuoteError),
                    Some(b'"') => break,
                    // In a valid escape only the character right after the
                    // backslash can be `"` or `\`: skip it. (Go skips a whole
                    // rune; the bytes after its first are never `"` or `\`.)
                    Some(b'\\') => i += 2,
                    Some(_) => i += 1,
                }
            }
            let token = input.get(..=i).ok_or(QuoteError)?;
            let value = unquote(token)?;
            Ok((value, input.get(i + 1..).unwrap_or_default()))
        }
        _ => Err(QuoteError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use virtnet_testdata::{interop_json, text, unhex, Rng, QUOTE_VECTORS};

    /// The interop vectors made by Go 1.19 (the testdata crate's
    /// `interop/quote-vectors.json`).
    fn vectors() -> serde_json::Value {
        interop_json(QUOTE_VECTORS)
    }

    #[test]
    fn quote_vectors_both_directions() {
        let all = vectors();
        let cases = all["quote"].as_array().expect("quote vectors");
        assert!(cases.len() >= 30);
        for case in cases {
            let input = unhex(text(case, "input_hex"));
            let quoted = text(case, "quoted");
            assert_eq!(quote(&input), quoted, "quote({input:02x?})");
            assert_eq!(unquote(quoted.as_bytes()), Ok(input.clone()), "{quoted}");
            let (value, rest) = scan_quoted(quoted.as_bytes()).expect(quoted);
            assert_eq!((value, rest), (input, &b""[..]), "scan {quoted}");
        }
    }

    #[test]
    fn unquote_vectors() {
        let all = vectors();
        let cases = all["unquote"].as_array().expect("unquote vectors");
        assert!(cases.len() >= 25);
        for case in cases {
            let input = text(case, "input");
            let got = unquote(input.as_bytes());
            if case["ok"] == serde_json::Value::Bool(true) {
                let want = case["output_hex"].as_str().map(unhex).unwrap_or_default();
                assert_eq!(got, Ok(want), "unquote({input:?})");
            } else {
                assert_eq!(case["ok"], serde_json::Value::Bool(false), "{case}");
                let err = got.expect_err(input);
                assert_eq!(err.to_string(), text(case, "error"), "{input:?}");
            }
        }
    }

    /// Results of Go 1.19.8's `strconv.Quote` on strings beyond the vectors.
    #[test]
    fn quote_more_like_go() {
        let cases: &[(&[u8], &str)] = &[
            (b"\x80", r#""\x80""#),
            ("\u{80}".as_bytes(), r#""\u0080""#),
            ("\u{9f}".as_bytes(), r#""\u009f""#),
            ("\u{a1}".as_bytes(), "\"\u{a1}\""),
            ("\u{ad}".as_bytes(), r#""\u00ad""#),
            ("\u{fffd}".as_bytes(), "\"\u{fffd}\""),
            (b"\xef\xbf\xbd\xef\xbf", "\"\u{fffd}\\xef\\xbf\""),
            (b"\xed\xa0\x80", r#""\xed\xa0\x80""#),
            (b"\xc0\xaf", r#""\xc0\xaf""#),
            (b"\xf4\x90\x80\x80", r#""\xf4\x90\x80\x80""#),
            (
                "\u{2029}\u{3000}\u{1680}".as_bytes(),
                r#""\u2029\u3000\u1680""#,
            ),
            ("\u{e0001}".as_bytes(), r#""\U000e0001""#),
            ("\u{f0000}".as_bytes(), r#""\U000f0000""#),
            ("\u{1f600}\u{301}".as_bytes(), "\"\u{1f600}\u{301}\""),
            (b"'`\x1b", r#""'`\x1b""#),
            (b" ~", "\" ~\""),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input), *want, "quote({input:02x?})");
            assert_eq!(unquote(want.as_bytes()), Ok(input.to_vec()), "{want}");
        }
    }

    /// Results of Go 1.19.8's `strconv.Unquote` beyond the vectors.
    #[test]
    fn unquote_more_like_go() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"''", b""),
            (b"'\\''", b"'"),
            (b"'\"'", b"\""),
            ("'α'".as_bytes(), "α".as_bytes()),
            (b"'\\x41'", b"A"),
            (b"'\\u00e9'", "é".as_bytes()),
            (b"'\xff'", "\u{fffd}".as_bytes()),
            (b"\"\xff\"", "\u{fffd}".as_bytes()),
            (b"\"a\xe2\x82b\"", "a\u{fffd}\u{fffd}b".as_bytes()),
            (b"`a\rb\r`", b"ab"),
            (b"`\xff\n\"`", b"\xff\n\""),
            (b"\"'\"", b"'"),
            (b"\"\\u00ff\\xff\"", b"\xc3\xbf\xff"),
            (b"\"\\U0010FFFF\"", "\u{10ffff}".as_bytes()),
            (b"\"\\uD7FF\\uE000\"", "\u{d7ff}\u{e000}".as_bytes()),
            (b"\"\\r\"", b"\r"),
            (b"\"\r\"", b"\r"),
            (b"\"\\\\\"", b"\\"),
        ];
        for (input, want) in ok {
            assert_eq!(unquote(input), Ok(want.to_vec()), "unquote({input:02x?})");
        }
        let bad: &[&[u8]] = &[
            b"",
            b"\"",
            b"`",
            b"'",
            b"x",
            b"\"a`",
            b"'ab'",
            b"'\\\"'",
            b"'''",
            b"'\n'",
            b"`a`b`",
            b"\"a\"b\"",
            b"\"\\\"",
            b"\"\\",
            b"\"\\x\"",
            b"\"\\xg0\"",
            b"\"\\u00\"",
            b"\"\\udfff\"",
            b"\"\\U0000d800\"",
            b"\"\\U\"",
            b"\"\\08\"",
            b"\"\\7\"",
            b"\"\\e\"",
            b"\"\\\n\"",
            b"\"\\\xce\xb1\"",
        ];
        for input in bad {
            assert_eq!(unquote(input), Err(QuoteError), "unquote({input:02x?})");
        }
    }

    /// What Go 1.19.8's `fmt.Sscanf(input, "%q", &s)` reads, beyond the
    /// double-quoted case that is [`unquote`].
    #[test]
    fn scan_like_fmt() {
        let ok: &[(&[u8], &[u8], &[u8])] = &[
            (b"\"a\" b", b"a", b" b"),
            (b"\"a\"\"b\"", b"a", b"\"b\""),
            (b"\"a\\\"b\"c", b"a\"b", b"c"),
            (b"``", b"", b""),
            (b"`a\r\nb`x", b"a\r\nb", b"x"),
            (
                b"`\xff\xe2\x82`",
                "\u{fffd}\u{fffd}\u{fffd}".as_bytes(),
                b"",
            ),
            (b"`\"`\"", b"\"", b"\""),
            (b"\"\xff\"", "\u{fffd}".as_bytes(), b""),
        ];
        for (input, value, rest) in ok {
            let got = scan_quoted(input);
            assert_eq!(got, Ok((value.to_vec(), *rest)), "scan({input:02x?})");
        }
        let bad: &[&[u8]] = &[
            b"",
            b" \"a\"",
            b"a\"",
            b"'a'",
            b"`abc",
            b"\"abc",
            b"\"abc\\\"",
            b"\"abc\\",
            b"\"a\nb\"",
            b"\"\\q\"",
        ];
        for input in bad {
            assert_eq!(scan_quoted(input), Err(QuoteError), "scan({input:02x?})");
        }
    }

    #[test]
    fn printable_like_go() {
        // Latin-1: printable are 0x20..=0x7e and 0xa1..=0xff except 0xad.
        for v in 0..=0xffu32 {
            let c = char::from_u32(v).expect("latin-1");
            let go = (0x20..=0x7e).contains(&v) || ((0xa1..=0xff).contains(&v) && v != 0xad);
            assert_eq!(is_print(c), go, "U+{v:04X}");
        }
        let printable = ['α', 'é', '\u{301}', '日', '😀', '\u{fffd}', '٣', '€', '_'];
        let not = [
            '\u{a0}', '\u{200b}', '\u{feff}', '\u{2028}', '\u{2029}', '\u{d7ff}',
        ];
        let not_more = [
            '\u{e000}',
            '\u{10ffff}',
            '\u{f8ff}',
            '\u{e0001}',
            '\u{3000}',
        ];
        for c in printable {
            assert!(is_print(c), "{c:?}");
        }
        for c in not.into_iter().chain(not_more) {
            assert!(!is_print(c), "{c:?}");
        }
    }

    fn check_any(input: &[u8]) {
        let quoted = quote(input);
        assert_eq!(unquote(quoted.as_bytes()), Ok(input.to_vec()), "{quoted}");
        let mut followed = quoted.clone().into_bytes();
        followed.extend_from_slice(b" rest");
        let scanned = scan_quoted(&followed);
        assert_eq!(scanned, Ok((input.to_vec(), &b" rest"[..])), "{quoted}");
        // Arbitrary input never panics; whatever unquotes also re-quotes.
        if let Ok(value) = unquote(input) {
            assert_eq!(unquote(quote(&value).as_bytes()), Ok(value));
        }
        if let Ok((_, rest)) = scan_quoted(input) {
            assert!(rest.len() < input.len());
        }
    }

    #[test]
    fn every_short_string_round_trips_and_never_panics() {
        check_any(b"");
        for a in 0..=255u8 {
            check_any(&[a]);
            for b in 0..=255u8 {
                check_any(&[a, b]);
            }
        }
    }

    #[test]
    fn quote_shaped_strings_never_panic() {
        // Every 1–3 byte body of a quoted string over an alphabet of the
        // characters that matter to the parsers.
        let alphabet: &[u8] = b"\"'`\\xuU0789afAF\n\r \xff\xce\xb1\xe2\x82";
        let mut inputs = Vec::new();
        for &q in b"\"'`" {
            for &a in alphabet {
                inputs.push(vec![q, a, q]);
                for &b in alphabet {
                    inputs.push(vec![q, a, b, q]);
                    for &c in alphabet {
                        inputs.push(vec![q, a, b, c, q]);
                        inputs.push(vec![q, b'\\', a, b, c, q]);
                    }
                }
            }
        }
        for input in &inputs {
            check_any(input);
        }
    }

    #[test]
    fn random_strings_round_trip_and_never_panic() {
        let pieces: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"`",
            b"'",
            b"\\x",
            b"\\u",
            b"\\U",
            b"\\0",
            b"\\377",
            b"\n",
            b"\r",
            b" ",
            b"a",
            b"7",
            b"f",
            b"\xff",
            b"\xc3",
            b"\xe2\x82",
            "α".as_bytes(),
            "😀".as_bytes(),
            "\u{a0}".as_bytes(),
            "\u{e000}".as_bytes(),
            b"\x00",
            b"\x7f",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut s = Vec::new();
            if rng.below(2) == 0 {
                s.push(b"\"`'"[rng.below(3)]);
            }
            for _ in 0..rng.below(24) {
                if rng.below(3) == 0 {
                    s.push(rng.next_u64() as u8);
                } else {
                    s.extend_from_slice(pieces[rng.below(pieces.len())]);
                }
            }
            if rng.below(2) == 0 {
                s.push(b"\"`'"[rng.below(3)]);
            }
            check_any(&s);
        }
    }
}
