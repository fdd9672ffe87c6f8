//! Reading a streamed event without parsing it: most events of a stream
//! are the previous event with another text piece (`{"id":…,"choices":[{
//! "index":0,"delta":{"content":"…"},"finish_reason":null}]}`). When the
//! new event's bytes equal the previous one's everywhere but inside the
//! string literal of its text piece, its parsed value is the previous value
//! with that one string replaced, exactly what parsing it would give: the
//! previous value is reused instead of building a new `serde_json::Value`
//! (an `IndexMap` per object, a `String` per member name and value).

use super::{get_str, get_str_at, positions, Ptr, Seg};
use serde_json::Value;

/// The last event read: its data, the byte span of its text piece's string
/// literal (quotes included), where that string is in its value, the value.
pub(super) struct Template {
    data: String,
    lit: (usize, usize),
    /// Where that string is by position (see [`positions`]): every event
    /// read has this value's structure.
    pos: Vec<usize>,
    value: Value,
    /// Whether the event is the usage-only chunk and whether it has
    /// `"usage": null` (for `emit`): the same for every event read from it.
    pub(super) flags: (bool, bool),
    /// Whether the data is serde_json's writing of its value, so that every
    /// event read from it is, but for its text piece's literal: found out
    /// with the first event read (a template no event repeats costs
    /// nothing).
    pub(super) canonical: Option<bool>,
}

impl Template {
    /// A template of `value`, the parse of `data`, whose text piece is the
    /// string at `ptr`; `None` when that string's literal is not found (a
    /// member name on the way escaped or repeated, a value not reached).
    /// The value comes back when it is not.
    pub(super) fn new(
        data: &str,
        ptr: Ptr,
        mut value: Value,
        flags: (bool, bool),
        reuse: Option<Template>,
    ) -> Result<Template, Value> {
        let Some(lit) = literal_span(data.as_bytes(), &ptr) else { return Err(value) };
        // The span is checked against the value: its literal decodes to the
        // string the value holds there.
        let text = data.get(lit.0..lit.1).and_then(|l| serde_json::from_str::<String>(l).ok());
        if text.is_none() || get_str(&mut value, &ptr).map(|s| &*s) != text.as_ref() {
            return Err(value);
        }
        let Some(pos) = positions(&value, &ptr) else { return Err(value) };
        let mut own = reuse.map(|t| t.data).unwrap_or_default();
        own.clear();
        own.push_str(data);
        Ok(Template { data: own, lit, pos, value, flags, canonical: None })
    }

    /// The parse of `data` when it is this template's event with another
    /// string in the text piece's literal: the template is then `data`'s,
    /// its value lent out until [`Self::restore`]; `None` (the template
    /// unchanged) when it is not.
    pub(super) fn read(&mut self, data: &str) -> Option<Value> {
        let (new_end, plain) = self.compare(data.as_bytes())?;
        let lit = data.get(self.lit.0..new_end)?;
        let v = self.take(lit, plain)?;
        self.data.clear();
        self.data.push_str(data);
        Some(v)
    }

    /// [`Self::read`] of an event's data as bytes not yet checked to be
    /// UTF-8, with its data: the bytes before and after the text piece's
    /// literal are the last event's, which were text, so only the literal
    /// is checked, and the data is put together from the three.
    pub(super) fn read_bytes(&mut self, new: &[u8]) -> Option<(String, Value)> {
        let (new_end, plain) = self.compare(new)?;
        let (s, e) = self.lit;
        let lit = std::str::from_utf8(new.get(s..new_end)?).ok()?;
        let mut data = String::with_capacity(new.len());
        data.push_str(self.data.get(..s)?);
        data.push_str(lit);
        data.push_str(self.data.get(e..)?);
        let v = self.take(lit, plain)?;
        self.data.clear();
        self.data.push_str(&data);
        Some((data, v))
    }

    /// Whether `new` is the last event's bytes but inside the text piece's
    /// literal: then where that literal ends in `new`, and whether it is
    /// plain (no escape, no control character: its own text).
    fn compare(&self, new: &[u8]) -> Option<(usize, bool)> {
        let (s, e) = self.lit;
        let old = self.data.as_bytes();
        if !crate::swar::same(new.get(..s)?, old.get(..s)?) {
            return None;
        }
        // The closing quote, when the literal has no escape and no control
        // character before it (the usual piece): then it is its own text.
        let plain = match new.get(s) {
            Some(b'"') => special(new, s + 1).filter(|&q| new.get(q) == Some(&b'"')),
            _ => None,
        };
        let new_end = match plain {
            Some(q) => q + 1,
            None => string_end(new, s)?,
        };
        if !crate::swar::same(new.get(new_end..)?, old.get(e..)?) {
            return None;
        }
        Some((new_end, plain.is_some()))
    }

    /// Writes the new literal `lit` (at the template's literal start) into
    /// the value and lends the value out.
    fn take(&mut self, lit: &str, plain: bool) -> Option<Value> {
        // The literal as JSON: escapes decoded, control characters refused
        // (then the event is not JSON, as the full parse would find). One
        // without escapes is its own text, written into the old string.
        let inner = lit.get(1..lit.len() - 1)?;
        if !plain && inner.bytes().any(|b| b == b'\\' || b < 0x20) {
            let text = serde_json::from_str::<String>(lit).ok()?;
            *get_str_at(&mut self.value, &self.pos)? = text;
        } else {
            let slot = get_str_at(&mut self.value, &self.pos)?;
            slot.clear();
            slot.push_str(inner);
        }
        self.lit = (self.lit.0, self.lit.0 + lit.len());
        Some(std::mem::take(&mut self.value))
    }

    /// The span of the text piece's literal in the last event's data.
    pub(super) fn lit(&self) -> (usize, usize) {
        self.lit
    }

    /// Gives the template its value back (the event was read and not
    /// changed: the value is again the parse of its data).
    pub(super) fn restore(&mut self, value: Value) {
        self.value = value;
    }
}

/// The first byte from `from` on that is `"`, `\\` or a control character,
/// eight bytes at a time.
fn special(b: &[u8], from: usize) -> Option<usize> {
    use crate::swar;
    let mut i = from;
    while let Some(x) = swar::load(b, i) {
        let control = swar::in_range(x & swar::LOW7, 0, 0x1f) & !x;
        let m = control | swar::equal(x, b'"') | swar::equal(x, b'\\');
        if m != 0 {
            return Some(i + swar::first(m));
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|k| i + k)
}

/// The end (after the closing quote) of the JSON string literal whose
/// opening quote is at `at`. Only `"` and `\` matter: neither occurs inside
/// a multi-byte UTF-8 sequence.
fn string_end(b: &[u8], at: usize) -> Option<usize> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        let k = memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        i += k;
        if b.get(i) == Some(&b'"') {
            return Some(i + 1);
        }
        i += 2;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end of the JSON value starting at `at` (the text parsed as JSON
/// already: only its nesting is followed).
fn value_end(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at)? {
        b'"' => string_end(b, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while b.get(i).is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                i += 1;
            }
            Some(i)
        }
    }
}

/// The span of the string literal `ptr` names in the JSON text `b`; `None`
/// when a member name on the way is escaped or appears twice in its object
/// (then which one the parse kept is not a byte question).
fn literal_span(b: &[u8], ptr: &[Seg]) -> Option<(usize, usize)> {
    let mut i = skip_ws(b, 0);
    for seg in ptr {
        match seg {
            Seg::Key(k) => {
                if b.get(i) != Some(&b'{') {
                    return None;
                }
                i = skip_ws(b, i + 1);
                let mut found = None;
                while b.get(i) != Some(&b'}') {
                    let name_end = string_end(b, i)?;
                    let name = b.get(i + 1..name_end - 1)?;
                    if name.contains(&b'\\') {
                        return None;
                    }
                    i = skip_ws(b, name_end);
                    if b.get(i) != Some(&b':') {
                        return None;
                    }
                    i = skip_ws(b, i + 1);
                    if name == k.as_bytes() {
                        if found.is_some() {
                            return None;
                        }
                        found = Some(i);
                    }
                    i = skip_ws(b, value_end(b, i)?);
                    if b.get(i) == Some(&b',') {
                        i = skip_ws(b, i + 1);
                    }
                }
                i = found?;
            }
            Seg::Idx(n) => {
                if b.get(i) != Some(&b'[') {
                    return None;
                }
                i = skip_ws(b, i + 1);
                for _ in 0..*n {
                    i = skip_ws(b, value_end(b, i)?);
                    if b.get(i) != Some(&b',') {
                        return None;
                    }
                    i = skip_ws(b, i + 1);
                }
            }
        }
    }
    Some((i, string_end(b, i)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn ptr() -> Ptr {
        Ptr::from([
            Seg::Key(Cow::Borrowed("choices")),
            Seg::Idx(0),
            Seg::Key(Cow::Borrowed("delta")),
            Seg::Key(Cow::Borrowed("content")),
        ])
    }

    fn template(data: &str) -> Option<Template> {
        Template::new(data, ptr(), serde_json::from_str(data).unwrap(), (false, false), None).ok()
    }

    const A: &str = r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}"#;

    /// Events that repeat `A` but for their text piece (escapes, empty, non-ASCII, a backslash).
    const NEXT: [&str; 4] = [
        r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":" wo\"rld \u00e9\n"},"finish_reason":null}]}"#,
        r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":""},"finish_reason":null}]}"#,
        r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":"naïve – ok"},"finish_reason":null}]}"#,
        r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":"ü \\"},"finish_reason":null}]}"#,
    ];

    #[test]
    fn an_event_with_another_piece_reads_as_its_parse() {
        let mut t = template(A).unwrap();
        for next in NEXT {
            let v = t.read(next).unwrap();
            assert_eq!(v, serde_json::from_str::<Value>(next).unwrap());
            t.restore(v);
        }
    }

    #[test]
    fn an_event_read_as_bytes_reads_as_its_parse_with_its_data() {
        let mut t = template(A).unwrap();
        for next in NEXT {
            let (data, v) = t.read_bytes(next.as_bytes()).unwrap();
            assert_eq!(data, next);
            assert_eq!(v, serde_json::from_str::<Value>(next).unwrap());
            t.restore(v);
        }
        // Not UTF-8 in the literal: not read, the template unchanged.
        let mut bad = br#"{"id":"c-1","choices":[{"index":0,"delta":{"content":"a"#.to_vec();
        bad.extend_from_slice(b"\xff\"},\"finish_reason\":null}]}");
        assert_eq!(t.read_bytes(&bad), None);
        assert_eq!(t.read(A), Some(serde_json::from_str::<Value>(A).unwrap()));
    }

    #[test]
    fn anything_else_changed_is_not_read() {
        for next in [
            r#"{"id":"c-2","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}"#,
            r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
            r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":"x","role":"a"},"finish_reason":null}]}"#,
            r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":5},"finish_reason":null}]}"#,
            // Not JSON: a raw control character, a bad escape.
            "{\"id\":\"c-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\u{1}\"},\"finish_reason\":null}]}",
            r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":"a\q"},"finish_reason":null}]}"#,
            r#"{"id":"c-1","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]} x"#,
        ] {
            let mut t = template(A).unwrap();
            assert_eq!(t.read(next), None, "{next}");
            // Unchanged: the first event still reads.
            assert_eq!(t.read(A), Some(serde_json::from_str::<Value>(A).unwrap()));
        }
    }

    #[test]
    fn special_finds_the_first_quote_backslash_or_control() {
        let is = |c: u8| c == b'"' || c == b'\\' || c < 0x20;
        for c in 0..=255u8 {
            for at in 0..20 {
                let mut b = vec![b'a'; 20];
                b[at] = c;
                for from in 0..=20 {
                    let expect = (from..20).find(|&i| is(b[i]));
                    assert_eq!(special(&b, from), expect, "{c} at {at} from {from}");
                }
            }
        }
        assert_eq!(special(b"", 0), None);
        assert_eq!(special(b"ab", 3), None);
    }

    #[test]
    fn the_literal_is_found_or_refused() {
        fn at(d: &str) -> Option<&str> {
            literal_span(d.as_bytes(), &ptr()).map(|(s, e)| &d[s..e])
        }
        assert_eq!(at(A), Some(r#""Hello""#));
        assert_eq!(
            at(r#" { "x" : [1, {"a":"]}"}], "choices" : [ {"delta" : {"content" : "h\"i"} } ] } "#),
            Some(r#""h\"i""#)
        );
        assert_eq!(at(r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#), None);
        assert_eq!(at(r#"{"choices":[{"delta":{"cont\u0065nt":"a"}}]}"#), None);
        assert_eq!(at(r#"{"choices":[{"delta":{"content":1}}]}"#), None);
        assert_eq!(at(r#"{"choices":[]}"#), None);
        assert_eq!(at(r#"{"choices":[{"delta":{}}]}"#), None);
        let second = vec![Seg::Key(Cow::Borrowed("a")), Seg::Idx(1)];
        assert_eq!(literal_span(br#"{"a":[{"b":[1,2]},"x"]}"#, &second), Some((18, 21)));
    }
}
