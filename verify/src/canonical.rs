//! The fast path: an event line that is already in RFC 8785 canonical form
//! (as the filter ships it) is hashed as it stands, without building a
//! `serde_json::Value` of it.
//!
//! [`scan`] checks, in one pass over the bytes, that the line is exactly
//! what `proxy_audit_core::jcs::canonicalize` would write for it: no
//! whitespace, object members in strictly ascending order (ASCII names
//! only), strings escaped as JCS escapes them, integers without sign or
//! leading-zero noise (at most 15 digits, so every reader agrees on them),
//! `true`/`false`/`null`, depth at most [`MAX_DEPTH`]. It records where the
//! top-level members the verifier reads lie, and the `hash` member of
//! `chain`. Then `chain.hash` is SHA-256 of the line with that member cut
//! out: removing a member of a canonical object leaves it canonical.
//! Anything else (a float, a non-ASCII member name, pretty-printed JSON)
//! returns `None` and takes the slow path, which canonicalizes a parsed
//! value: both give the same hash for the same event.

use std::ops::Range;

/// Deeper lines take the slow path (whose parser stops at 128).
pub const MAX_DEPTH: usize = 64;

/// Where the parts the verifier reads lie in a canonical line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Spans {
    /// Values of the top-level members `chain`, `id`, `kind`, `time`, `trail`.
    pub chain: Option<Range<usize>>,
    pub id: Option<Range<usize>>,
    pub kind: Option<Range<usize>>,
    pub time: Option<Range<usize>>,
    pub trail: Option<Range<usize>>,
    /// The bytes to cut to remove `chain.hash`: the member and one comma.
    pub hash_cut: Option<Range<usize>>,
    /// The value of `chain.hash`.
    pub hash: Option<Range<usize>>,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// `Some` when `line` is one canonical JSON object; see the module doc.
pub fn scan(line: &[u8]) -> Option<Spans> {
    // UTF-8 is checked where it can occur: inside strings (everything else
    // the grammar allows is ASCII).
    if line.first() != Some(&b'{') {
        return None;
    }
    let mut s = Scanner { b: line, i: 0 };
    let mut spans = Spans::default();
    s.object(0, Some(&mut spans), false)?;
    (s.i == line.len()).then_some(spans)
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, None, false).map(|_| ()),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// `-?(0|[1-9][0-9]{0,14})`, not `-0`.
    fn integer(&mut self) -> Option<()> {
        let neg = self.eat(b'-').is_some();
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let digits = self.b.get(start..self.i)?;
        let ok = match digits {
            [] => false,
            [b'0'] => !neg,
            [b'0', ..] => false,
            d => d.len() <= 15,
        };
        // A fraction or an exponent: not an integer, slow path.
        (ok && !matches!(self.peek(), Some(b'.' | b'e' | b'E'))).then_some(())
    }

    /// A string as JCS writes it; returns its raw content range and
    /// whether it holds an escape or a non-ASCII byte.
    fn string(&mut self) -> Option<(Range<usize>, bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let (mut escaped, mut non_ascii) = (false, false);
        let b = self.b;
        let mut i = self.i;
        loop {
            // Eight bytes at a time while none of them needs a look.
            while let Some(word) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
                if needs_a_look(u64::from_le_bytes(word)) {
                    break;
                }
                i += 8;
            }
            let c = *b.get(i)?;
            match c {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i += self.escape(i)?;
                }
                0..=0x1f => return None, // a raw control character: not JSON
                0x80.. => {
                    non_ascii = true;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        if non_ascii {
            // Written as is; it must be valid UTF-8.
            std::str::from_utf8(b.get(start..i)?).ok()?;
        }
        self.i = i + 1;
        Some((start..i, escaped || non_ascii))
    }

    /// The length of the escape at `at`, if it is one JCS writes.
    fn escape(&self, at: usize) -> Option<usize> {
        match *self.b.get(at + 1)? {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
            b'u' => {
                // Only control characters without a short form, lowercase hex.
                let hex = self.b.get(at + 2..at + 6)?;
                let lower = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
                if !(hex.starts_with(b"00") && hex.iter().all(lower)) {
                    return None;
                }
                let v = u8::from_str_radix(std::str::from_utf8(hex.get(2..)?).ok()?, 16).ok()?;
                if v >= 0x20 || matches!(v, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                    return None;
                }
                Some(6)
            }
            _ => None,
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(());
        }
        loop {
            self.value(depth)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An object with strictly ascending ASCII member names. `top` records
    /// the members the verifier reads; `chain` records `hash`.
    fn object(&mut self, depth: usize, mut top: Option<&mut Spans>, chain: bool) -> Option<Spans> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        let mut found = Spans::default();
        if self.eat(b'}').is_some() {
            return Some(found);
        }
        let mut prev: Option<Range<usize>> = None;
        loop {
            let member_start = self.i;
            let (name, escaped) = self.string()?;
            if escaped {
                return None; // escaped or non-ASCII names: the slow path sorts them by UTF-16
            }
            if let Some(p) = &prev {
                if !ascending(self.b.get(p.clone())?, self.b.get(name.clone())?) {
                    return None;
                }
            }
            self.eat(b':')?;
            let value_start = self.i;
            let key = self.b.get(name.clone())?;
            let is_chain = top.is_some() && key == b"chain";
            if is_chain {
                let inner = self.object(depth + 1, None, true)?;
                found.hash_cut = inner.hash_cut;
                found.hash = inner.hash;
            } else {
                self.value(depth)?;
            }
            let value = value_start..self.i;
            if top.is_some() {
                match key {
                    b"chain" => found.chain = Some(value),
                    b"id" => found.id = Some(value),
                    b"kind" => found.kind = Some(value),
                    b"time" => found.time = Some(value),
                    b"trail" => found.trail = Some(value),
                    _ => {}
                }
            } else if chain && key == b"hash" {
                found.hash = Some(value.clone());
                // Cut the member with the comma before it, or after it when it is the first.
                found.hash_cut = Some(if prev.is_some() {
                    member_start - 1..self.i
                } else if self.peek() == Some(b',') {
                    member_start..self.i + 1
                } else {
                    member_start..self.i
                });
            }
            prev = Some(name);
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    if let Some(t) = top.as_deref_mut() {
                        *t = found.clone();
                    }
                    return Some(found);
                }
                _ => return None,
            }
        }
    }
}

/// The quick look: where the members the verifier reads lie, without
/// checking that the line is canonical. The top-level object and `chain`
/// must be written without whitespace, with strictly ascending member names
/// (so each member is there once); other values are only skipped (strings
/// up to their closing quote, objects and arrays to their closing bracket).
/// The caller takes the line as written only when SHA-256 of its bytes
/// without `chain.hash` is that hash (then these are the very bytes that
/// were sealed), and otherwise calls [`scan`].
pub fn quick(line: &[u8]) -> Option<Spans> {
    let mut q = Quick { b: line, i: 0 };
    let mut spans = Spans::default();
    q.object(true, &mut spans)?;
    (q.i == line.len()).then_some(spans)
}

struct Quick<'a> {
    b: &'a [u8],
    i: usize,
}

impl Quick<'_> {
    fn byte(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.byte()? == c).then(|| self.i += 1)
    }

    /// A string from its opening quote; returns its content range.
    fn string(&mut self) -> Option<Range<usize>> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            // Eight bytes at a time: the first quote or backslash in them.
            let c = match self.b.get(self.i..self.i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
                Some(w) => match quote_or_backslash(u64::from_le_bytes(w)) {
                    0 => {
                        self.i += 8;
                        continue;
                    }
                    m => {
                        self.i += (m.trailing_zeros() / 8) as usize;
                        *self.b.get(self.i)?
                    }
                },
                None => *self.b.get(self.i)?,
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Some(start..self.i - 1);
                }
                b'\\' => self.i += 2, // the byte after the backslash is not the end
                _ => self.i += 1,
            }
        }
    }

    /// Skips any value (not checked beyond its brackets and strings).
    fn skip(&mut self) -> Option<()> {
        match self.byte()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.byte()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                let rest = self.b.get(self.i..)?;
                let end = rest.iter().position(|c| matches!(c, b',' | b'}' | b']')).unwrap_or(rest.len());
                (end > 0).then(|| self.i += end)
            }
        }
    }

    /// The top-level object (`top`) or `chain` (recording `hash`).
    fn object(&mut self, top: bool, spans: &mut Spans) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        let mut prev: Option<Range<usize>> = None;
        loop {
            let member_start = self.i;
            let name = self.string()?;
            let key = self.b.get(name.clone())?;
            if let Some(p) = &prev {
                if !ascending(self.b.get(p.clone())?, key) {
                    return None;
                }
            }
            self.eat(b':')?;
            let value_start = self.i;
            if top && key == b"chain" {
                self.object(false, spans)?;
            } else {
                self.skip()?;
            }
            let value = value_start..self.i;
            if top {
                match key {
                    b"chain" => spans.chain = Some(value),
                    b"id" => spans.id = Some(value),
                    b"kind" => spans.kind = Some(value),
                    b"time" => spans.time = Some(value),
                    b"trail" => spans.trail = Some(value),
                    _ => {}
                }
            } else if key == b"hash" {
                spans.hash = Some(value);
                // As `scan` cuts it: with the comma before, or after when first.
                spans.hash_cut = Some(if prev.is_some() {
                    member_start - 1..self.i
                } else if self.byte() == Some(b',') {
                    member_start..self.i + 1
                } else {
                    member_start..self.i
                });
            }
            prev = Some(name);
            match self.byte()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// The bytes of `w` (little endian) that are `"` or `\\`: the high bit of
/// each, exact up to the first (bytes above it may be marked wrongly), 0
/// when there is none.
fn quote_or_backslash(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    zero_bytes(w ^ (ONES * u64::from(b'"'))) | zero_bytes(w ^ (ONES * u64::from(b'\\')))
}

/// Whether any byte of `w` is `"`, `\\`, a control character or not ASCII
/// (bit tricks: each test is exact as a yes/no, so no byte is skipped wrongly).
fn needs_a_look(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    w & HIGH != 0
        || zero_byte(w ^ (ONES * u64::from(b'"')))
        || zero_byte(w ^ (ONES * u64::from(b'\\')))
        || w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
}

/// `a < b` bytewise (names are short: no call to memcmp).
fn ascending(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// The members of a canonical object (already checked by [`scan`]): name
/// bytes and value bytes.
pub fn members(obj: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut s = Scanner { b: obj, i: 1 };
    std::iter::from_fn(move || {
        if s.peek()? == b'}' {
            return None;
        }
        let (name, _) = s.string()?;
        s.eat(b':')?;
        let start = s.i;
        s.value(0)?;
        let value = s.b.get(start..s.i)?;
        if s.peek() == Some(b',') {
            s.i += 1;
        }
        Some((s.b.get(name)?, value))
    })
}

/// The content of a JSON string value without escapes (`None` for any
/// other value, or a string with an escape).
pub fn plain_string(v: &[u8]) -> Option<&str> {
    let inner = v.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if memchr::memchr2(b'\\', b'"', inner).is_some() {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proxy_audit_core::jcs::canonicalize;
    use serde_json::{json, Value};

    fn hash_by_cut(line: &str) -> Option<String> {
        let s = scan(line.as_bytes())?;
        let cut = s.hash_cut?;
        let mut bytes = line.as_bytes().to_vec();
        bytes.drain(cut);
        Some(proxy_audit_core::ids::sha256_hex(&bytes))
    }

    #[test]
    fn canonical_lines_pass_and_hash_like_the_slow_path() {
        let ev = json!({"kind": "access", "id": "ab", "time": "2026-12-01T00:00:00.000Z",
            "chain": {"emitter": "e/ü/\u{1}", "seq": 12, "prev": "0".repeat(64), "hash": "f".repeat(64)},
            "data": {"findings": [], "x": [1, -2, 0, true, false, null, {"q": "\u{7f}\u{2028}é\"\\\n\t"}]},
            "trail": {"head_seq": 3}});
        let line = canonicalize(&ev);
        let s = scan(line.as_bytes()).unwrap_or_else(|| panic!("not canonical: {line}"));
        assert_eq!(&line[s.kind.unwrap()], "\"access\"");
        assert_eq!(&line[s.id.unwrap()], "\"ab\"");
        assert_eq!(&line[s.trail.unwrap()], "{\"head_seq\":3}");
        assert_eq!(&line[s.hash.unwrap()], format!("\"{}\"", "f".repeat(64)));
        assert_eq!(hash_by_cut(&line), Some(proxy_audit_core::chain::compute_hash(&ev)));
        // chain.hash as the only member, and as the first.
        for chain in [json!({"hash": "x"}), json!({"hash": "x", "seq": 1})] {
            let ev = json!({"chain": chain, "kind": "k"});
            assert_eq!(hash_by_cut(&canonicalize(&ev)), Some(proxy_audit_core::chain::compute_hash(&ev)));
        }
    }

    /// Strings with escapes at every offset of an eight-byte word, and
    /// structure the quick look must not be fooled by.
    #[test]
    fn the_quick_look_reads_strings_and_nesting_exactly() {
        for pad in 0..17 {
            let text = format!("{}\\\"{}\\\\", "x".repeat(pad), "y".repeat(pad));
            let line = format!(
                r#"{{"a":"{text}","b":[{{"chain":1}},"]}}"],"chain":{{"emitter":"{text}","hash":"h","seq":1}},"id":"{text}"}}"#
            );
            let s = quick(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(&line[s.id.clone().unwrap()], format!("\"{text}\""));
            assert_eq!(&line[s.hash.clone().unwrap()], "\"h\"");
            assert_eq!(scan(line.as_bytes()), Some(s), "{line}");
        }
        // Names out of order, repeated, or whitespace at the top: not taken.
        for line in [r#"{"b":1,"a":2}"#, r#"{"chain":{},"chain":{}}"#, r#"{ "a":1}"#, r#"{"a":"x"#, r#"{"a":[1}"#] {
            assert!(quick(line.as_bytes()).is_none(), "{line}");
        }
    }

    #[test]
    fn anything_not_canonical_takes_the_slow_path() {
        for line in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a": 1}"#,
            r#" {"a":1}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":1234567890123456}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\u000A"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\/"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"é":1}"#,
            r#"{"a":1}x"#,
            r#"{"a":tru}"#,
            r#"[1]"#,
        ] {
            assert!(scan(line.as_bytes()).is_none(), "{line}");
            // Whatever serde makes of it, the slow path decides.
            let _ = serde_json::from_str::<Value>(line);
        }
        assert!(scan(b"{\"a\":\"\xff\"}").is_none());
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(scan(deep.as_bytes()).is_none());
        assert!(scan(br#"{"a":"\u001f","b":[{}],"c":-5}"#).is_some());
    }

    /// Random values: whatever `canonicalize` writes, `scan` accepts unless
    /// it holds a float or a non-ASCII name; and what `scan` accepts is a
    /// fixed point of parse + canonicalize.
    #[test]
    fn agrees_with_canonicalize_on_random_values() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        fn gen(next: &mut dyn FnMut() -> u64, depth: u32) -> Value {
            let strs = ["", "a", "é", "\u{1}", "\"", "\\", "\n", "\u{2028}", "x\u{7f}", "\u{1f600}"];
            match next() % if depth > 3 { 5 } else { 7 } {
                0 => Value::Null,
                1 => Value::Bool(next().is_multiple_of(2)),
                2 => json!((next() % 2_000_000) as i64 - 1_000_000),
                3 => json!(strs[(next() % strs.len() as u64) as usize]),
                4 => json!((next() % 1000) as f64 / 8.0),
                5 => Value::Array((0..next() % 4).map(|_| gen(next, depth + 1)).collect()),
                _ => {
                    let names = ["a", "b", "chain", "id", "z", "hash", "aa", "B"];
                    let mut m = serde_json::Map::new();
                    for _ in 0..next() % 5 {
                        m.insert(names[(next() % names.len() as u64) as usize].to_string(), gen(next, depth + 1));
                    }
                    Value::Object(m)
                }
            }
        }
        for _ in 0..3000 {
            let v = json!({"chain": {"hash": "h", "seq": 1}, "x": gen(&mut next, 0)});
            let line = canonicalize(&v);
            let has_float = line.contains('.') && v.to_string().contains('.') && {
                fn floats(v: &Value) -> bool {
                    match v {
                        Value::Number(n) => n.is_f64(),
                        Value::Array(a) => a.iter().any(floats),
                        Value::Object(m) => m.values().any(floats),
                        _ => false,
                    }
                }
                floats(&v)
            };
            // The quick look finds the same spans in every canonical line.
            if let Some(full) = scan(line.as_bytes()) {
                assert_eq!(quick(line.as_bytes()), Some(full), "{line}");
            }
            match scan(line.as_bytes()) {
                Some(_) => {
                    let back: Value = serde_json::from_str(&line).unwrap();
                    assert_eq!(canonicalize(&back), line);
                    assert_eq!(hash_by_cut(&line), Some(proxy_audit_core::chain::compute_hash(&back)));
                }
                None => assert!(has_float, "canonical but refused: {line}"),
            }
        }
    }
}
