//! Go's `fmt.Sscanf`, as far as the handshake's two formats use it.

use virtnet_core::quote::{decode_rune, scan_quoted};

/// Whether `fmt`'s scanner counts `c` as a space (its own table: ASCII
/// `\t`..`\r` and space, U+0085, U+00A0, and the Unicode spaces and
/// separators). Newline is one of them but matches only a newline.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// The input of [`sscanf`], read rune by rune as Go's scanner reads it: each
/// byte that is not valid UTF-8 is one U+FFFD.
struct Input<'a> {
    rest: &'a [u8],
    /// The runes consumed so far, for [`unread`](Self::unread).
    whole: &'a [u8],
    last: usize,
}

impl<'a> Input<'a> {
    fn new(input: &'a [u8]) -> Input<'a> {
        Input {
            rest: input,
            whole: input,
            last: 0,
        }
    }

    /// The next rune, or `None` at the end.
    fn get(&mut self) -> Option<char> {
        let (c, width) = decode_rune(self.rest);
        if width == 0 {
            self.last = 0;
            return None;
        }
        self.advance(width);
        self.last = width;
        Some(c.unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// Puts back the rune [`get`](Self::get) returned last.
    fn unread(&mut self) {
        let at = self.whole.len().saturating_sub(self.rest.len());
        let back = at.saturating_sub(self.last);
        self.rest = self.whole.get(back..).unwrap_or_default();
        self.last = 0;
    }

    fn advance(&mut self, n: usize) {
        self.rest = self.rest.get(n..).unwrap_or_default();
    }

    /// `ss.SkipSpace` of a scan that does not take newlines as space: skips
    /// spaces; a newline is an error.
    fn skip_space(&mut self) -> Option<()> {
        while let Some(c) = self.get() {
            if c == '\n' {
                return None;
            }
            if !is_space(c) {
                self.unread();
                break;
            }
        }
        Some(())
    }

    /// The `%q` verb: spaces skipped, then one quoted string.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.skip_space()?;
        let (value, rest) = scan_quoted(self.rest).ok()?;
        self.rest = rest;
        self.last = 0;
        Some(value)
    }

    /// The `%s` verb: spaces skipped, then the runes up to the next space
    /// (newline included) or the end; at least one.
    fn word(&mut self) -> Option<Vec<u8>> {
        self.skip_space()?;
        let mut word = String::new();
        while let Some(c) = self.get() {
            if is_space(c) {
                self.unread();
                break;
            }
            word.push(c);
        }
        (!word.is_empty()).then(|| word.into_bytes())
    }
}

/// Go's `fmt.Sscanf(input, format, &s1, &s2, …)` with string operands and
/// the verbs `%q` and `%s` only: the scanned values, or `None` where Go
/// returns an error. As in Go:
/// - a character of the format other than `%`, space or newline must be the
///   next input rune;
/// - a run of spaces in the format (not next to a newline) consumes as many
///   input spaces as there are, and needs at least one, or the end of the
///   input; it does not consume a newline, and fails on one;
/// - a newline in the format, with the spaces before it, consumes input
///   spaces then a newline or the end of the input; spaces after it in the
///   format consume any spaces after that newline;
/// - each verb first skips spaces, and fails on a newline or at the end;
/// - the input after the format is done is not looked at.
///
/// `N` is the number of operands, which the format's verbs must match.
pub(super) fn sscanf<const N: usize>(input: &[u8], format: &str) -> Option<[Vec<u8>; N]> {
    let mut input = Input::new(input);
    let mut values = Vec::new();
    let mut format = format.chars().peekable();
    while let Some(f) = format.next() {
        if is_space(f) {
            let mut newlines = 0;
            let mut trailing_space;
            let mut f = f;
            loop {
                if f == '\n' {
                    newlines += 1;
                    trailing_space = false;
                } else {
                    trailing_space = true;
                }
                match format.next_if(|&c| is_space(c)) {
                    Some(next) => f = next,
                    None => break,
                }
            }
            for _ in 0..newlines {
                let mut c = input.get();
                while c.is_some_and(|c| is_space(c) && c != '\n') {
                    c = input.get();
                }
                if !matches!(c, Some('\n') | None) {
                    return None;
                }
            }
            if trailing_space {
                let mut c = input.get();
                if newlines == 0 {
                    // A lone run of spaces needs a space, or the end.
                    if c.is_some_and(|c| !is_space(c) || c == '\n') {
                        return None;
                    }
                }
                while c.is_some_and(|c| is_space(c) && c != '\n') {
                    c = input.get();
                }
                if c.is_some() {
                    input.unread();
                }
            }
            continue;
        }
        if f == '%' {
            let value = match format.next()? {
                'q' => input.quoted()?,
                's' => input.word()?,
                _ => return None,
            };
            values.push(value);
            continue;
        }
        if input.get()? != f {
            return None;
        }
    }
    values.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::handshake::reply::REPLY_FORMAT;
    use crate::handshake::request::REQUEST_FORMAT;

    /// Results of Go 1.19.8's `fmt.Sscanf` with the two formats, beyond the
    /// vectors: `Some` values where Go returned no error.
    #[test]
    fn sscanf_like_go() {
        type Case = (&'static [u8], Option<[&'static [u8]; 3]>);
        let dial: &[Case] = &[
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\r\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\" \t \n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\nextra",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\n\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (b"> lonet \"n\" dial \"a:1\" \"b:2\" x", None),
            (
                b">\tlonet\t\"n\"\tdial\t\"a:1\"\t\"b:2\"\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b">\xc2\xa0lonet\xe3\x80\x80\"n\"\xe2\x80\x80dial\xc2\x85\"a:1\"\x0b\"b:2\"\x0c\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\xe2\x80\xa8\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (b"> lonet \"n\"dial \"a:1\" \"b:2\"\n", None),
            (b">lonet \"n\" dial \"a:1\" \"b:2\"\n", None),
            (b" > lonet \"n\" dial \"a:1\" \"b:2\"\n", None),
            (b"> lonet \"n\" dial \"a:1\"\"b:2\"\n", None),
            (b"> lonet \"n\" dial\n\"a:1\" \"b:2\"\n", None),
            (b"> lonet \"n\" dial \"a:1\" \n\"b:2\"\n", None),
            (
                b"> lonet \"n\" dial `a\n1` \"b:2\"\n",
                Some([b"n", b"a\n1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a\\n1\" \"b:2\"\n",
                Some([b"n", b"a\n1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial `a\r:1` \"b:2\"\n",
                Some([b"n", b"a\r:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial `\xff:1` \"b:2\"\n",
                Some([b"n", b"\xef\xbf\xbd:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"\xff:1\" \"b:2\"\n",
                Some([b"n", b"\xef\xbf\xbd:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"\\xff:1\" \"b:2\"\n",
                Some([b"n", b"\xff:1", b"b:2"]),
            ),
            (b"> lonet \"n\" dial \"a:1\" \"b:2\n", None),
            (b"> lonet \"n\" dial \"a:1\" `b:2\n", None),
            (b"> lonet \"n\" dial \"a:1\" 'b'\n", None),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\r",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\"\r\r\n",
                Some([b"n", b"a:1", b"b:2"]),
            ),
            (b"> lonet \xff\"n\" dial \"a:1\" \"b:2\"\n", None),
            (b"> lonet \"n\" dial \"a:1\" \"b:2\"\xff\n", None),
            (b"> lonet \"\" dial \"\" \"\"\n", Some([b"", b"", b""])),
            (b"> lonet `` dial `` ``", Some([b"", b"", b""])),
            (
                b"> lonet \"n\" dial \"a:1\" \"b:2\" ",
                Some([b"n", b"a:1", b"b:2"]),
            ),
        ];
        for (line, want) in dial {
            let want = want.map(|v| v.map(<[u8]>::to_vec));
            assert_eq!(sscanf(line, REQUEST_FORMAT), want, "{line:?}");
        }
        let reply: &[Case] = &[
            (
                b"< lonet \"n\" connected \"b:3\"\n",
                Some([b"n", b"connected", b"b:3"]),
            ),
            (
                b"< lonet \"n\" E \"connection refused\"\n",
                Some([b"n", b"E", b"connection refused"]),
            ),
            (
                b"< lonet \"n\" E\"x\" \"y\"\n",
                Some([b"n", b"E\"x\"", b"y"]),
            ),
            (
                b"< lonet \"n\" E\xff \"y\"\n",
                Some([b"n", b"E\xef\xbf\xbd", b"y"]),
            ),
            (
                b"< lonet \"n\" \xce\xb1 \"y\"\n",
                Some([b"n", b"\xce\xb1", b"y"]),
            ),
            (b"< lonet \"n\"connected \"b:3\"\n", None),
            (b"< lonet \"n\" connected\"b:3\"\n", None),
            (
                b"< lonet \"n\"  connected \t \"b:3\"\n",
                Some([b"n", b"connected", b"b:3"]),
            ),
            (
                b"< lonet \"n\"\xc2\xa0connected\xc2\xa0\"b:3\"\n",
                Some([b"n", b"connected", b"b:3"]),
            ),
            (b"< lonet \"n\" connected\n\"b:3\"\n", None),
            (b"< lonet \"n\" connected \"b:3\" extra\n", None),
            (
                b"< lonet \"n\" connected \"b:3\"\n\nextra",
                Some([b"n", b"connected", b"b:3"]),
            ),
            (b"< lonet \"n\" connected", None),
            (b"< lonet \"n\" connected ", None),
            (
                b"< lonet \"n\" \"connected\" \"b:3\"\n",
                Some([b"n", b"\"connected\"", b"b:3"]),
            ),
            (b"< lonet \"n\" `E` \"x\"\n", Some([b"n", b"`E`", b"x"])),
            (
                b"< lonet \"n\" E `multi\nline`\n",
                Some([b"n", b"E", b"multi\nline"]),
            ),
            (b"garbage\n", None),
            (b"", None),
        ];
        for (line, want) in reply {
            let want = want.map(|v| v.map(<[u8]>::to_vec));
            assert_eq!(sscanf(line, REPLY_FORMAT), want, "{line:?}");
        }
    }
}
