//! JSON bodies: parse, walk every string and number, rewrite, re-serialize.

use super::detect::Hit;
use super::{Actions, Classifier, ScanOutcome, Sink};
use serde_json::Value;

pub(crate) fn scan_json(cl: &Classifier, body: &[u8], actions: &Actions) -> ScanOutcome {
    // serde_json stops at depth 128 with an error (no stack overflow); such
    // bodies and invalid JSON are scanned as text.
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return cl.scan_text_body(body, actions, "$");
    };
    let mut sink = Sink::new(cl, actions);
    let mut path = String::from("$");
    let changed = walk(cl, &mut sink, &mut v, &mut path, "", None, false);
    let out = if changed.changed { serde_json::to_vec(&v).ok() } else { None };
    sink.finish(out)
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Walked {
    pub changed: bool,
    pub remove: bool,
}

fn is_clinical(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("diagnos") || k.contains("icd") || k.contains("condition") || k == "dx" || k.ends_with("_dx")
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
                path.push('[');
                path.push_str(&k.to_string());
                path.push(']');
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
            let mut removed: Vec<String> = Vec::new();
            for (k, item) in map.iter_mut() {
                push_key(path, k);
                let f = if cl.fields.is_empty() { forced } else { forced.or_else(|| field_rule(cl, path)) };
                let r = walk(cl, sink, item, path, k, f, icd || is_clinical(k));
                if r.remove {
                    removed.push(k.clone());
                }
                w.changed |= r.changed;
                path.truncate(len);
            }
            if !removed.is_empty() {
                map.retain(|k, _| !removed.contains(k));
            }
            w
        }
    }
}
