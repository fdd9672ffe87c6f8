//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! Object members sorted by the UTF-16 code units of their names, no
//! whitespace, strings escaped as ECMAScript's `JSON.stringify` does, numbers
//! in ECMAScript's shortest round-trip form. Event hashes are computed over
//! this form, so any verifier in any language gets the same bytes.

use serde_json::Value;
use std::fmt::Write as _;

/// The canonical form of `value`.
pub fn canonicalize(value: &Value) -> String {
    let mut out = String::with_capacity(512);
    write_value(value, &mut out);
    out
}

/// Appends the canonical form of `value` to `out`.
pub fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

/// Appends `s` as a canonical JSON string.
pub fn write_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    crate::classify::json_write::escape_str(s, |piece| out.push_str(piece));
}

fn write_number(n: &serde_json::Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&es_number(f));
    } else {
        out.push_str("null");
    }
}

/// ECMAScript `Number.prototype.toString` for finite doubles.
fn es_number(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    if f == 0.0 {
        return "0".into();
    }
    // Rust's `{:e}` yields the shortest round-trip digits: "d.ddde-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let k = digits.len() as i32;
    let n = exp.parse::<i32>().unwrap_or(0) + 1;
    let mut s = String::new();
    if f < 0.0 {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        s.push_str(int);
        s.push('.');
        s.push_str(frac);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-n) as usize));
        s.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        s.push_str(first);
        if !rest.is_empty() {
            s.push('.');
            s.push_str(rest);
        }
        s.push('e');
        s.push(if n > 0 { '+' } else { '-' });
        s.push_str(&(n - 1).abs().to_string());
    }
    s
}

/// The canonical form of a JSON object given as a map.
pub fn canonicalize_map(map: &serde_json::Map<String, Value>) -> String {
    let mut out = String::with_capacity(1024);
    write_object(map, &mut out);
    out
}

/// The canonical form of `map`, and where the value of its top-level member
/// `key` lies in it (so a caller can splice in a new value without
/// canonicalizing everything again).
pub fn canonicalize_map_marking(
    map: &serde_json::Map<String, Value>,
    key: &str,
) -> (String, Option<std::ops::Range<usize>>) {
    let mut out = String::with_capacity(1024);
    let mut mark = None;
    write_members(map, &mut out, |k, start, end| {
        if k == key {
            mark = Some(start..end);
        }
    });
    (out, mark)
}

fn write_object(map: &serde_json::Map<String, Value>, out: &mut String) {
    write_members(map, out, |_, _, _| {});
}

/// Writes an object; `seen(name, start, end)` gets each member value's span.
fn write_members(map: &serde_json::Map<String, Value>, out: &mut String, mut seen: impl FnMut(&str, usize, usize)) {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // UTF-16 code unit order; for ASCII names (all of the event's own) that
    // is byte order.
    members.sort_by(|a, b| {
        if a.0.is_ascii() && b.0.is_ascii() {
            a.0.cmp(b.0)
        } else {
            a.0.encode_utf16().cmp(b.0.encode_utf16())
        }
    });
    out.push('{');
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(k, out);
        out.push(':');
        let start = out.len();
        write_value(v, out);
        seen(k, start, out.len());
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn marks_a_top_level_member() {
        let v = json!({"b": {"x": [1, "\""]}, "a": 1, "c": {"b": 2}});
        let Value::Object(m) = &v else { unreachable!() };
        let (text, mark) = canonicalize_map_marking(m, "b");
        assert_eq!(text, canonicalize(&v));
        assert_eq!(mark.and_then(|r| text.get(r)), Some(r#"{"x":[1,"\""]}"#));
    }

    #[test]
    fn sorts_keys_by_utf16_and_strips_whitespace() {
        // RFC 8785 section 3.2.3 ordering example (subset).
        let v = json!({"\u{20ac}": "Euro Sign", "\r": "Carriage Return", "1": "One", "\u{1f600}": "Emoji", "\u{80}": "Control", "\u{fb33}": "Hebrew"});
        assert_eq!(
            canonicalize(&v),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji\",\"\u{fb33}\":\"Hebrew\"}"
        );
    }

    #[test]
    fn escapes_like_json_stringify() {
        let v = json!(["\u{1}\u{1f}\"\\/\u{7f}\u{2028}", "\u{8}\u{c}\n\r\t"]);
        assert_eq!(canonicalize(&v), "[\"\\u0001\\u001f\\\"\\\\/\u{7f}\u{2028}\",\"\\b\\f\\n\\r\\t\"]");
    }

    #[test]
    fn every_character_at_every_offset_is_escaped_like_json_stringify() {
        // Each ASCII character and a few others, alone and inside runs that
        // put it at every position of the eight-byte word scan.
        let chars: Vec<char> = (0u8..0x80).map(char::from).chain(['\u{e9}', '\u{2028}', '\u{1f600}']).collect();
        for c in chars {
            for pad in 0..17 {
                let s = format!("{}{c}{}", "a".repeat(pad), "b".repeat(17 - pad));
                let mut out = String::new();
                write_string(&s, &mut out);
                assert_eq!(out, serde_json::to_string(&s).unwrap_or_default(), "{c:?} at {pad}");
            }
        }
    }

    #[test]
    fn numbers_in_ecmascript_form() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5, "1.5"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (-123.456e-10, "-1.23456e-8"),
            (333333333.3333332, "333333333.3333332"),
            (9007199254740992.0, "9007199254740992"),
        ];
        for (f, want) in cases {
            assert_eq!(es_number(f), want, "{f}");
        }
        assert_eq!(canonicalize(&json!({"b": 2, "a": [1, -7, true, null]})), "{\"a\":[1,-7,true,null],\"b\":2}");
    }
}
