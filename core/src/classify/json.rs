//! JSON bodies: parse, walk every string and number, rewrite, re-serialize.

use super::detect::Hit;
use super::{Actions, Classifier, ScanOutcome, Sink};
use serde_json::Value;
use std::fmt::Write as _;

/// Scans a JSON body; `parsed` sees the body's value as parsed, before any
/// rewriting, when it was parsed (not when the body is clean without a
/// parse, or not valid JSON without duplicate member names).
pub(crate) fn scan_json(
    cl: &Classifier,
    body: &[u8],
    actions: &Actions,
    parsed: &mut dyn FnMut(&Value),
) -> ScanOutcome {
    // serde_json stops at depth 128 with an error (no stack overflow); such
    // bodies, invalid JSON and objects with a duplicate member name are
    // scanned as text.
    if fast_path_clean(cl, body) {
        return ScanOutcome::default();
    }
    let Some(mut v) = super::strict_json::parse(body) else {
        return cl.scan_text_body(body, actions, "$");
    };
    parsed(&v);
    let mut sink = Sink::new(cl, actions);
    let mut path = String::from("$");
    let changed = walk(cl, &mut sink, &mut v, &mut path, "", None, false);
    let out = changed.changed.then(|| super::json_write::to_vec(&v, body.len()));
    sink.finish(out)
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Walked {
    pub changed: bool,
    pub remove: bool,
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

pub(crate) fn is_clinical(key: &str) -> bool {
    let k = key.as_bytes();
    contains_ci(k, b"diagnos")
        || contains_ci(k, b"icd")
        || contains_ci(k, b"condition")
        || key.eq_ignore_ascii_case("dx")
        || k.ends_with(b"_dx")
}

/// Most bodies hold nothing: when the raw bytes give no hit and scanning them
/// raw is provably at least as sensitive as scanning the parsed values, skip
/// parsing. Conditions: no backslash (string contents are then byte-identical
/// to the parsed values, and every `"` delimits a string), no `digit,digit`
/// outside strings (array numbers would read as thousands groups), no field
/// rules or anchored custom rules (they depend on value boundaries), no
/// clinical member names (ICD-10 is looked for only there), and no member name
/// over 32 bytes (its words could fall out of the context window).
fn fast_path_clean(cl: &Classifier, body: &[u8]) -> bool {
    if !cl.fields.is_empty() || cl.customs.iter().any(|c| c.anchored()) {
        return false;
    }
    if memchr::memchr(b'\\', body).is_some() {
        return false;
    }
    let mut i = 0;
    loop {
        let rest = body.get(i..).unwrap_or_default();
        let open = memchr::memchr(b'"', rest);
        if digit_comma_digit(rest.get(..open.unwrap_or(rest.len())).unwrap_or_default()) {
            return false;
        }
        let Some(open) = open else { break };
        let s = i + open + 1;
        let Some(len) = body.get(s..).and_then(|r| memchr::memchr(b'"', r)) else {
            return false; // unterminated string: not JSON, leave it to the full path
        };
        let e = s + len;
        let mut j = e + 1;
        while body.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if body.get(j) == Some(&b':') {
            let key = body.get(s..e).unwrap_or_default();
            if len > 32 || std::str::from_utf8(key).map_or(true, is_clinical) {
                return false;
            }
        }
        i = e + 1;
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    !cl.finds_any(text)
}

/// `digit,digit` in the structural part of a JSON text (`[1,2]`).
fn digit_comma_digit(b: &[u8]) -> bool {
    b.windows(3).any(|w| matches!(w, [x, b',', y] if x.is_ascii_digit() && y.is_ascii_digit()))
}

/// Appends `.key` or `['key']` to a rendered JSON path.
pub(crate) fn push_key(path: &mut String, key: &str) {
    let ident =
        key.bytes().enumerate().all(|(i, c)| c == b'_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
            && !key.is_empty();
    if ident {
        path.push('.');
        path.push_str(key);
    } else {
        path.push_str("['");
        for ch in key.chars() {
            if ch == '\'' || ch == '\\' {
                path.push('\\');
            }
            path.push(ch);
        }
        path.push_str("']");
    }
}

fn field_rule(cl: &Classifier, path: &str) -> Option<u16> {
    cl.fields.iter().find(|f| f.matches(path)).map(|f| f.entity)
}

/// Walks `v` (rewriting in place). `key` is the nearest member name, used as
/// context; `forced` is the entity of a field rule covering this subtree.
pub(crate) fn walk(
    cl: &Classifier,
    sink: &mut Sink<'_>,
    v: &mut Value,
    path: &mut String,
    key: &str,
    forced: Option<u16>,
    icd: bool,
) -> Walked {
    match v {
        Value::String(s) => {
            let hits = match forced {
                Some(ent) if !s.is_empty() => vec![Hit { start: 0, end: s.len(), entity: ent }],
                Some(_) => Vec::new(),
                None => cl.find(s, key, icd),
            };
            if hits.is_empty() {
                return Walked::default();
            }
            let (new, remove) = sink.apply(s, &hits, path, true);
            let changed = new.is_some();
            if let Some(n) = new {
                *s = n;
            }
            Walked { changed: changed || remove, remove }
        }
        Value::Number(n) => {
            let t = n.to_string();
            let hits = match forced {
                Some(ent) => vec![Hit { start: 0, end: t.len(), entity: ent }],
                None => cl.find(&t, key, false),
            };
            if hits.is_empty() {
                return Walked::default();
            }
            let (new, remove) = sink.apply(&t, &hits, path, true);
            let changed = new.is_some();
            if let Some(n) = new {
                *v = Value::String(n);
            }
            Walked { changed: changed || remove, remove }
        }
        Value::Bool(_) | Value::Null => Walked::default(),
        Value::Array(items) => {
            let mut w = Walked::default();
            let len = path.len();
            for (k, item) in items.iter_mut().enumerate() {
                let _ = write!(path, "[{k}]");
                let f = if cl.fields.is_empty() { forced } else { forced.or_else(|| field_rule(cl, path)) };
                let r = walk(cl, sink, item, path, key, f, icd);
                if r.remove {
                    *item = Value::Null;
                }
                w.changed |= r.changed;
                path.truncate(len);
            }
            w
        }
        Value::Object(map) => {
            let mut w = Walked::default();
            let len = path.len();
            let mut removed = std::collections::HashSet::new();
            let mut renamed: std::collections::HashMap<String, String> = std::collections::HashMap::new();
            for (k, item) in map.iter_mut() {
                let shown = cl.location_name(k);
                let name_has_data = matches!(shown, std::borrow::Cow::Owned(_));
                push_key(path, &shown);
                if name_has_data {
                    // The member name itself is personal data (a map keyed by
                    // email, say): it gets the category's action too.
                    let hits = cl.find(k, "", false);
                    let (new, remove) = sink.apply(k, &hits, path, true);
                    if remove {
                        removed.insert(k.clone());
                    } else if let Some(n) = new {
                        renamed.insert(k.clone(), n);
                    }
                    w.changed |= remove || renamed.contains_key(k.as_str());
                }
                let f = if cl.fields.is_empty() { forced } else { forced.or_else(|| field_rule(cl, path)) };
                // `{"sin": {"value": "…"}}`: a generic member name takes its
                // object's name as the value's context.
                let ctx = if !key.is_empty() && super::context::is_generic_key(k) { key } else { k.as_str() };
                let r = walk(cl, sink, item, path, ctx, f, icd || is_clinical(k));
                if r.remove {
                    removed.insert(k.clone());
                }
                w.changed |= r.changed;
                path.truncate(len);
            }
            if !removed.is_empty() {
                map.retain(|k, _| !removed.contains(k));
            }
            if !renamed.is_empty() {
                rename_members(map, &renamed);
            }
            w
        }
    }
}

/// Renames members in place of order. Two names that redact alike
/// (`[REDACTED:EMAIL]`) stay two members: the later ones get `#2`, `#3`...
fn rename_members(map: &mut serde_json::Map<String, Value>, renamed: &std::collections::HashMap<String, String>) {
    let old = std::mem::take(map);
    let taken: std::collections::HashSet<String> = old.keys().filter(|k| !renamed.contains_key(*k)).cloned().collect();
    let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
    // Next suffix to try per base name: many names that redact alike stay
    // linear (trying `#2`, `#3`... from the start each time was quadratic).
    let mut next: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut out = serde_json::Map::new();
    for (k, v) in old {
        let name = match renamed.get(&k) {
            Some(base) => {
                let n = next.entry(base.clone()).or_insert(1);
                let mut name = base.clone();
                while used.contains(&name) || taken.contains(&name) {
                    *n += 1;
                    name = format!("{base}#{n}");
                }
                name
            }
            None => k,
        };
        used.insert(name.clone());
        out.insert(name, v);
    }
    *map = out;
}
