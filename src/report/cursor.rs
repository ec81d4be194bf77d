//! A cursor over JSON bytes: whitespace, strings, numbers, literals and whole
//! values skipped, with nothing built on the heap.
//!
//! The report parser reads 10^5 flat records of short strings; a general JSON
//! library spends most of its time in visitor calls and UTF-8 checks of text
//! we never look at. The cursor finds a string's end eight bytes at a time and
//! leaves decoding and UTF-8 checks to the caller, for the values it uses.
//!
//! Every method either moves past a complete token or stops with
//! [`Stop::More`] when the bytes end inside it, so a caller that receives its
//! input in pieces can retry the same unit once more bytes have arrived.

use std::ops::Range;

use super::swar;

/// Why a cursor method did not move past a token.
#[derive(Debug)]
pub enum Stop<E> {
    /// The bytes end inside the token: retry with more input.
    More,
    /// Not valid JSON at the cursor's position, with a reason.
    Json(&'static str),
    /// The caller's own error (a bad value in a valid document).
    Report(E),
}

/// JSON nesting deeper than this is refused (a stack guard, like serde_json's).
const MAX_DEPTH: usize = 128;

/// A raw string token: its content between the quotes, still escaped.
#[derive(Debug, Clone)]
pub struct RawStr {
    pub content: Range<usize>,
    /// Whether the content holds backslash escapes (then it must be decoded).
    pub escaped: bool,
    /// Whether every byte of the content is ASCII (so it is valid UTF-8).
    /// May be false for an ASCII string, never true for another.
    pub ascii: bool,
}

pub struct Cursor<'b> {
    pub bytes: &'b [u8],
    pub pos: usize,
}

impl<'b> Cursor<'b> {
    pub fn new(bytes: &'b [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline]
    pub fn peek<E>(&mut self) -> Result<u8, Stop<E>> {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Ok(b);
            }
            self.pos += 1;
        }
        Err(Stop::More)
    }

    /// Skips whitespace and consumes `byte`, or fails with `expected`.
    #[inline]
    pub fn eat<E>(&mut self, byte: u8, expected: &'static str) -> Result<(), Stop<E>> {
        if self.peek()? != byte {
            return Err(Stop::Json(expected));
        }
        self.pos += 1;
        Ok(())
    }

    /// Reads a string token (after optional whitespace).
    #[inline(always)]
    pub fn string<E>(&mut self) -> Result<RawStr, Stop<E>> {
        if self.peek()? != b'"' {
            return Err(Stop::Json("expected a string"));
        }
        self.string_rest(self.pos + 1)
    }

    /// Reads the rest of a string token whose content starts at `start`
    /// (just after its opening quote).
    #[inline(always)]
    pub fn string_rest<E>(&mut self, start: usize) -> Result<RawStr, Stop<E>> {
        let mut i = start;
        let mut escaped = false;
        let mut high = 0u8;
        loop {
            let (stop, seen) = string_stop(&self.bytes[i..]);
            high |= seen;
            i += stop.ok_or(Stop::More)?;
            match self.bytes[i] {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    match escape_len(&self.bytes[i..]) {
                        Ok(len) => i += len,
                        Err(stop) => {
                            // At the backslash, however the string was entered.
                            self.pos = i;
                            return Err(stop);
                        }
                    }
                }
                _ => {
                    self.pos = i;
                    return Err(Stop::Json("control character in a string"));
                }
            }
        }
        self.pos = i + 1;
        Ok(RawStr {
            content: start..i,
            escaped,
            ascii: high < 0x80,
        })
    }

    /// Reads a number token (at its first byte) and returns its bytes.
    #[inline(always)]
    pub fn number<E>(&mut self) -> Result<Range<usize>, Stop<E>> {
        let bytes = self.bytes;
        let start = self.pos;
        let mut i = start;
        let at = |i: usize| bytes.get(i).copied().ok_or(Stop::More);
        if at(i)? == b'-' {
            i += 1;
        }
        let digits = |mut i: usize| -> Result<usize, Stop<E>> {
            let first = i;
            while at(i)?.is_ascii_digit() {
                i += 1;
            }
            if i == first {
                return Err(Stop::Json("a number needs digits"));
            }
            Ok(i)
        };
        let int_end = digits(i)?;
        if at(i)? == b'0' && int_end > i + 1 {
            self.pos = i;
            return Err(Stop::Json("a number cannot start with 0"));
        }
        i = int_end;
        if at(i)? == b'.' {
            i = digits(i + 1)?;
        }
        if matches!(at(i)?, b'e' | b'E') {
            i += 1;
            if matches!(at(i)?, b'+' | b'-') {
                i += 1;
            }
            i = digits(i)?;
        }
        self.pos = i;
        Ok(start..i)
    }

    /// Consumes the literal `word` (`true`, `false` or `null`) at the cursor.
    pub fn literal<E>(&mut self, word: &'static [u8]) -> Result<(), Stop<E>> {
        let rest = &self.bytes[self.pos..];
        let n = rest.len().min(word.len());
        if rest[..n] != word[..n] {
            return Err(Stop::Json("expected a value"));
        }
        if n < word.len() {
            return Err(Stop::More);
        }
        self.pos += word.len();
        Ok(())
    }

    /// Skips one whole value of any kind (after optional whitespace).
    pub fn skip_value<E>(&mut self) -> Result<(), Stop<E>> {
        self.skip_nested(0)
    }

    fn skip_nested<E>(&mut self, depth: usize) -> Result<(), Stop<E>> {
        if depth > MAX_DEPTH {
            return Err(Stop::Json("nested too deeply"));
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.skip_container(depth, b'}', true),
            b'[' => self.skip_container(depth, b']', false),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => Err(Stop::Json("expected a value")),
        }
    }

    /// Skips an object (`keyed`) or an array; the cursor is at its opening byte.
    fn skip_container<E>(&mut self, depth: usize, close: u8, keyed: bool) -> Result<(), Stop<E>> {
        self.pos += 1;
        if self.peek()? == close {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if keyed {
                self.string()?;
                self.eat(b':', "expected `:`")?;
            }
            self.skip_nested(depth + 1)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b if b == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ if keyed => return Err(Stop::Json("expected `,` or `}`")),
                _ => return Err(Stop::Json("expected `,` or `]`")),
            }
        }
    }
}

/// A run of up to [`Pattern::MAX`] bytes seen before, matched against the
/// input eight bytes at a time: a cheap test for "the same bytes again".
#[derive(Debug, Clone, Default)]
pub struct Pattern {
    words: [u64; 4],
    /// Which bytes of each word belong to the pattern.
    masks: [u64; 4],
    len: usize,
}

impl Pattern {
    pub const MAX: usize = 32;

    /// The pattern of `bytes`; `None` if empty or longer than [`Pattern::MAX`].
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > Self::MAX {
            return None;
        }
        let mut padded = [0u8; Self::MAX];
        padded[..bytes.len()].copy_from_slice(bytes);
        let mut pattern = Self {
            len: bytes.len(),
            ..Self::default()
        };
        for k in 0..4 {
            pattern.words[k] = swar::word_at(&padded, 8 * k);
            let own = bytes.len().saturating_sub(8 * k).min(8);
            pattern.masks[k] = if own == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * own)) - 1
            };
        }
        Some(pattern)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether `input` starts with the pattern's bytes.
    #[inline(always)]
    pub fn matches(&self, input: &[u8]) -> bool {
        let Some(window) = input.first_chunk::<{ Self::MAX }>() else {
            // Near the end of the input: byte by byte.
            return input.len() >= self.len
                && (0..self.len).all(|i| {
                    let w = self.words[i / 8].to_le_bytes();
                    w[i % 8] == input[i]
                });
        };
        let differ = |k: usize| (swar::word_at(window, 8 * k) ^ self.words[k]) & self.masks[k];
        differ(0) | differ(1) | differ(2) | differ(3) == 0
    }
}

/// Position of the first byte that ends or escapes a string, or is a control
/// character (`None` if there is none), and 0x80 if a byte read on the way,
/// at least each one before it, was not ASCII (else 0).
#[inline(always)]
fn string_stop(bytes: &[u8]) -> (Option<usize>, u8) {
    let mut i = 0;
    let mut high = 0u64;
    while i + 8 <= bytes.len() {
        let word = swar::word_at(bytes, i);
        high |= swar::non_ascii(word);
        let found = swar::equal(word, b'"') | swar::equal(word, b'\\') | swar::below(word, 0x20);
        if found != 0 {
            return (Some(i + swar::first(found)), ascii_flag(high));
        }
        i += 8;
    }
    for (p, &b) in bytes[i..].iter().enumerate() {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return (Some(i + p), ascii_flag(high));
        }
        high |= u64::from(b & 0x80);
    }
    (None, ascii_flag(high))
}

/// 0x80 if `high` has any bit set, else 0.
#[inline(always)]
fn ascii_flag(high: u64) -> u8 {
    if high != 0 { 0x80 } else { 0 }
}

/// Length of the escape sequence at the start of `bytes` (which begins with `\`).
fn escape_len<E>(bytes: &[u8]) -> Result<usize, Stop<E>> {
    match bytes.get(1).ok_or(Stop::More)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(2),
        b'u' => {
            let hex = bytes.get(2..6).ok_or(Stop::More)?;
            if hex.iter().all(u8::is_ascii_hexdigit) {
                Ok(6)
            } else {
                Err(Stop::Json("invalid \\u escape in a string"))
            }
        }
        _ => Err(Stop::Json("invalid escape in a string")),
    }
}

/// Decodes the escapes of a string's `content` (already checked by
/// [`Cursor::string`]) into `out`. Fails on an unpaired UTF-16 surrogate.
pub fn unescape(content: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let hex = |at: usize| -> u32 {
        content[at..at + 4]
            .iter()
            .fold(0, |n, b| n * 16 + char::from(*b).to_digit(16).unwrap_or(0))
    };
    let mut i = 0;
    while i < content.len() {
        let Some(skip) = content[i..].iter().position(|&b| b == b'\\') else {
            out.extend_from_slice(&content[i..]);
            break;
        };
        out.extend_from_slice(&content[i..i + skip]);
        i += skip;
        let simple = match content[i + 1] {
            b'b' => Some(b'\x08'),
            b'f' => Some(b'\x0c'),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            other => Some(other),
        };
        if let Some(b) = simple {
            out.push(b);
            i += 2;
            continue;
        }
        let unit = hex(i + 2);
        i += 6;
        let code = match unit {
            0xD800..=0xDBFF => {
                if content.get(i..i + 2) != Some(b"\\u") {
                    return Err("unpaired surrogate in a \\u escape");
                }
                let low = hex(i + 2);
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err("unpaired surrogate in a \\u escape");
                }
                i += 6;
                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err("unpaired surrogate in a \\u escape"),
            _ => unit,
        };
        let c = char::from_u32(code).ok_or("invalid \\u escape in a string")?;
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Result<T> = std::result::Result<T, Stop<()>>;

    #[test]
    fn string_stop_finds_the_first_special_byte_at_every_offset() {
        for len in 0..20 {
            for special in [b'"', b'\\', b'\n', 0x1f, 0x00] {
                let mut bytes = vec![b'a'; len];
                bytes.push(special);
                bytes.extend_from_slice(b"\"xyz\\");
                assert_eq!(
                    string_stop(&bytes).0,
                    Some(len),
                    "len {len}, byte {special}"
                );
            }
            // Bytes that are none of them: high bytes, space, 0x7f, 0x21.
            let plain: Vec<u8> = (0..len)
                .map(|i| [0xff, b' ', 0x7f, 0x21, 0xc3][i % 5])
                .collect();
            assert_eq!(string_stop(&plain), (None, if len > 0 { 0x80 } else { 0 }));
            // A non-ASCII byte before the stop is always seen.
            let mut text = vec![b'a'; len];
            text.extend_from_slice("é\"".as_bytes());
            assert_eq!(string_stop(&text), (Some(len + 2), 0x80), "len {len}");
            let ascii = [vec![b'a'; len], b"\"".to_vec()].concat();
            assert_eq!(string_stop(&ascii), (Some(len), 0), "len {len}");
        }
    }

    #[test]
    fn strings_end_at_the_unescaped_quote() {
        let mut c = Cursor::new(br#"  "a\"b\u00e9\\" , "#);
        let s: RawStr = c.string::<()>().unwrap();
        assert!(s.escaped);
        let mut out = Vec::new();
        unescape(&c.bytes[s.content.clone()], &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\"bé\\");
        assert_eq!(c.peek::<()>().unwrap(), b',');
    }

    #[test]
    fn tokens_cut_short_ask_for_more_and_bad_ones_are_json_errors() {
        let more = |r: Result<()>| matches!(r, Err(Stop::More));
        let bad = |r: Result<()>| matches!(r, Err(Stop::Json(_)));
        let string = |b: &[u8]| Cursor::new(b).string().map(drop);
        let skip = |b: &[u8]| Cursor::new(b).skip_value();
        assert!(more(string(b"\"abc")));
        assert!(more(string(b"\"ab\\")));
        assert!(more(string(b"\"ab\\u00")));
        assert!(bad(string(b"\"a\nb\"")));
        assert!(bad(string(b"\"a\\qb\"")));
        assert!(bad(string(b"\"a\\u00zz\"")));
        assert!(more(skip(b"12")), "a number may go on");
        assert!(more(skip(b"nul")));
        assert!(bad(skip(b"nil")));
        assert!(bad(skip(b"012 ")));
        assert!(bad(skip(b"1.e5 ")));
        assert!(bad(skip(b"- ")));
        assert!(more(skip(br#"{"a": [1, {"b": "#)));
        assert!(bad(skip(br#"{"a" 1}"#)));
        assert!(bad(skip(br#"[1 2]"#)));
        assert!(bad(skip(br#"{"a": 1]"#)));
        assert!(bad(skip(&[b'['; 200])));
        let mut c = Cursor::new(br#"{"a": [1, -2.5e+3, true, null, "x"], "b": {}} tail"#);
        c.skip_value::<()>().unwrap();
        assert_eq!(&c.bytes[c.pos..], b" tail");
    }

    #[test]
    fn patterns_match_the_same_bytes_only() {
        let text = br#""completed-sessions": "21", "x": 1"#;
        for len in [1, 7, 8, 9, 16, 23, 32] {
            let p = Pattern::new(&text[..len]).unwrap();
            assert_eq!(p.len(), len);
            assert!(p.matches(text), "len {len}");
            assert!(
                p.matches(&text[..len]),
                "len {len}, input cut to the pattern"
            );
            assert!(!p.matches(&text[..len - 1]), "len {len}, input too short");
            let mut other = text.to_vec();
            other[len - 1] ^= 1;
            assert!(!p.matches(&other), "len {len}, last byte differs");
            assert!(
                !p.matches(&other[..len]),
                "len {len}, last byte differs, short input"
            );
        }
        assert!(Pattern::new(b"").is_none());
        assert!(Pattern::new(&[b'a'; 33]).is_none());
    }

    #[test]
    fn unescape_decodes_surrogate_pairs_and_refuses_lone_ones() {
        let decode = |s: &str| {
            let mut out = Vec::new();
            unescape(s.as_bytes(), &mut out).map(|()| String::from_utf8(out).unwrap())
        };
        assert_eq!(decode(r"\ud83d\ude00!").unwrap(), "😀!");
        assert_eq!(decode(r"tab\there\/").unwrap(), "tab\there/");
        assert!(decode(r"\ud83d").is_err());
        assert!(decode(r"\ude00").is_err());
        assert!(decode(r"\ud83d\u0041").is_err());
    }
}
