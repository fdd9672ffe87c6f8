//! A rewritten JSON body written out: byte for byte what
//! `serde_json::to_vec` writes (compact, members in order, the same
//! escapes), with the runs of string bytes that need no escape found eight
//! bytes at a time instead of one by one (the string contents are nearly
//! all of a chat body).

use crate::swar;
use serde_json::Value;

/// `serde_json::to_vec(v)`, faster; `size` is the expected length (the
/// body's), reserved at once.
pub(crate) fn to_vec(v: &Value, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + size / 8 + 16);
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Numbers are few: serde_json's own formatting (itoa, ryu).
        Value::Number(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (k, (name, item)) in map.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_str(out, name);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// A JSON string with serde_json's escapes: `\"`, `\\`, `\b \t \n \f \r`,
/// other control bytes as `\u00xx` (lower-case hex); everything else as is.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    escape_str(s, |piece| out.extend_from_slice(piece.as_bytes()));
}

/// Hands `s` as a quoted JSON string (serde_json's escapes, which are also
/// RFC 8785's) to `put`, piece by piece: the runs that need no escape whole,
/// found eight bytes at a time. The event writer (`trail::jcs`) uses it too.
pub(crate) fn escape_str(s: &str, mut put: impl FnMut(&str)) {
    put("\"");
    let b = s.as_bytes();
    let mut start = 0;
    loop {
        let p = next_escape(b, start);
        put(s.get(start..p).unwrap_or_default());
        let Some(&c) = b.get(p) else { break };
        match c {
            b'"' => put("\\\""),
            b'\\' => put("\\\\"),
            0x08 => put("\\b"),
            0x0c => put("\\f"),
            b'\n' => put("\\n"),
            b'\r' => put("\\r"),
            b'\t' => put("\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let hex = |n: u8| HEX.get(usize::from(n & 15)).copied().unwrap_or(b'0');
                let code = [b'\\', b'u', b'0', b'0', hex(c >> 4), hex(c)];
                put(std::str::from_utf8(&code).unwrap_or_default());
            }
        }
        start = p + 1;
    }
    put("\"");
}

fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// The bytes of `x` that need an escape.
fn escape_bytes(x: u64) -> u64 {
    // Below 0x20: the high bit clear and the low seven bits below 0x20.
    let control = swar::in_range(x & swar::LOW7, 0, 0x1f) & !x;
    control | swar::equal(x, b'"') | swar::equal(x, b'\\')
}

/// The first byte at or after `from` that needs an escape (`b.len()` when
/// none does).
fn next_escape(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(x) = swar::load(b, i) {
        let m = escape_bytes(x);
        if m != 0 {
            return i + swar::first(m);
        }
        i += 8;
    }
    while b.get(i).is_some_and(|&c| !needs_escape(c)) {
        i += 1;
    }
    i.min(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_byte_is_escaped_as_serde_json_escapes_it() {
        for c in 0u8..=0x7f {
            let s = String::from_utf8(vec![b'a', c, b'b', c]).unwrap_or_default();
            let v = Value::String(s);
            assert_eq!(to_vec(&v, 0), serde_json::to_vec(&v).unwrap_or_default(), "byte {c:#x}");
        }
        let m = u64::from_le_bytes(*b"abc\"d\\e\x1f");
        assert_eq!(escape_bytes(m), 0x8000_8000_8000_0000);
    }

    /// Random documents (strings of every kind of byte and length, numbers,
    /// nesting, odd member names) come out exactly as serde_json writes them.
    #[test]
    fn writes_what_serde_json_writes() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        let pieces = ["a", "é", "\"", "\\", "\n", "\u{1}", "\u{1f}", " ", "€", "\u{7f}", "/", "😀", "\t", "\r", "0"];
        let text = |next: &mut dyn FnMut() -> u64| {
            let n = next() % 40;
            (0..n).map(|_| pieces[next() as usize % pieces.len()]).collect::<String>()
        };
        for _ in 0..500 {
            let mut v = json!({});
            for _ in 0..(next() % 6) {
                let item = match next() % 7 {
                    0 => json!(text(&mut next)),
                    1 => json!(next() as i64 - (1 << 30)),
                    2 => json!((next() as f64) / 7.0),
                    3 => json!([text(&mut next), null, true, false, u64::MAX, -1.5e300]),
                    4 => {
                        let mut m = serde_json::Map::new();
                        m.insert(text(&mut next), json!({"x": [text(&mut next), {}]}));
                        m.insert(String::new(), json!([]));
                        Value::Object(m)
                    }
                    5 => json!(i64::MIN),
                    _ => json!(0.1),
                };
                v[text(&mut next)] = item;
            }
            let whole = json!([v.clone(), "tail", 3]);
            for doc in [v, whole] {
                assert_eq!(to_vec(&doc, 3), serde_json::to_vec(&doc).unwrap_or_default(), "{doc}");
            }
        }
    }
}
