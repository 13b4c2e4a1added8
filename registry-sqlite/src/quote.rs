//! Go's `%q` (`strconv.Quote`), for the reference's error messages.
//!
//! The reference reports a foreign meta value as `have "…"` with Go quoting;
//! this reproduces it so both implementations print the same text: `"` and
//! `\` escaped, `\a \b \f \n \r \t \v` for those controls, other
//! non-printable characters as `\xNN`, `\uNNNN` or `\UNNNNNNNN`, printable
//! Unicode kept, and bytes that are not UTF-8 as `\xNN`.

use std::fmt::Write;

/// `bytes` quoted as Go's `strconv.Quote` would.
pub(crate) fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

fn push_char(out: &mut String, c: char) {
    let escaped = match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\u{7}' => "\\a",
        '\u{8}' => "\\b",
        '\u{c}' => "\\f",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\u{b}' => "\\v",
        _ => "",
    };
    if !escaped.is_empty() {
        out.push_str(escaped);
    } else if c < ' ' || c == '\u{7f}' {
        let _ = write!(out, "\\x{:02x}", u32::from(c));
    } else if is_printable(c) {
        out.push(c);
    } else if u32::from(c) < 0x1_0000 {
        let _ = write!(out, "\\u{:04x}", u32::from(c));
    } else {
        let _ = write!(out, "\\U{:08x}", u32::from(c));
    }
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols
/// and the ASCII space. Rust's `escape_debug` keeps exactly the graphic
/// characters, except that it escapes a combining mark at the start of a
/// string, so the character is tested after a letter.
fn is_printable(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let mut probe = String::with_capacity(5);
    probe.push('a');
    probe.push(c);
    probe.escape_debug().eq(probe.chars())
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn matches_go_on_the_reference_vectors() {
        // A copy of `quote` in ../shared/interop/quote-vectors.json (Go 1.19):
        // (input as hex, Go's %q).
        let vectors: &[(&str, &str)] = &[
            ("", r#""""#),
            ("6c6f6e65746d796e6574", r#""lonetmynet""#),
            ("ceb13a31", "\"α:1\""),
            ("612262", r#""a\"b""#),
            ("6261636b5c736c617368", r#""back\\slash""#),
            ("7461620968657265", r#""tab\there""#),
            ("6e6c0a78", r#""nl\nx""#),
            ("07080c0a0d090b", r#""\a\b\f\n\r\t\v""#),
            ("00", r#""\x00""#),
            ("011f", r#""\x01\x1f""#),
            ("7f", r#""\x7f""#),
            ("ff", r#""\xff""#),
            ("c3", r#""\xc3""#),
            ("6f6be282", r#""ok\xe2\x82""#),
            ("c2a0", r#""\u00a0""#),
            ("e2808b", r#""\u200b""#),
            ("efbbbf", r#""\ufeff""#),
            ("e280a8", r#""\u2028""#),
            ("f09f9880", "\"😀\""),
            ("f48fbfbf", r#""\U0010ffff""#),
            ("e697a5e69cace8aa9e3a3432", "\"日本語:42\""),
            ("65cc81", "\"e\u{301}\""),
            ("5b3a3a315d3a3830", r#""[::1]:80""#),
            (
                "686f737420776974682073706163653a31",
                r#""host with space:1""#,
            ),
            ("6072617760", r#""`raw`""#),
            ("2773696e676c6527", r#""'single'""#),
            ("25712573", r#""%q%s""#),
            ("ed9fbf", r#""\ud7ff""#),
            ("ee8080", r#""\ue000""#),
        ];
        for (hex, want) in vectors {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(go_quote(&bytes), *want, "input {hex}");
        }
    }

    #[test]
    fn matches_the_shared_vector_file_when_present() {
        // The same check straight from the shared file, so a regenerated
        // file is picked up; the list above keeps the test self-contained.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/interop/quote-vectors.json"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let mut checked = 0;
        // Minimal extraction of the `"input_hex": "…", "quoted": "…"` pairs
        // (the file is JSON; `quoted` is a JSON string holding Go's output).
        let mut rest = text.as_str();
        while let Some(i) = rest.find("\"input_hex\": \"") {
            rest = &rest[i + 14..];
            let end = rest.find('"').unwrap();
            let hex = &rest[..end];
            let q = rest.find("\"quoted\": ").unwrap();
            rest = &rest[q + 10..];
            let (quoted, after) = json_string(rest);
            rest = after;
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(go_quote(&bytes), quoted, "input {hex}");
            checked += 1;
        }
        assert!(checked >= 29, "only {checked} vectors found in {path}");
    }

    /// Decodes the JSON string at the start of `s`; returns it and the rest.
    fn json_string(s: &str) -> (String, &str) {
        let mut out = String::new();
        let mut chars = s.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (out, &s[i + 1..]),
                '\\' => {
                    let (_, e) = chars.next().unwrap();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex: String = (0..4).map(|_| chars.next().unwrap().1).collect();
                            out.push(
                                char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap(),
                            );
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        panic!("unterminated JSON string");
    }
}
