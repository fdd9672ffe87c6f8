//! `application/x-www-form-urlencoded` bodies: each value decoded, scanned
//! with its field name as context, and re-encoded when rewritten.

use super::{Actions, Classifier, ScanOutcome, Sink};

impl Classifier {
    pub(crate) fn scan_form(&self, body: &[u8], actions: &Actions) -> ScanOutcome {
        let mut sink = Sink::new(self, actions);
        let mut out: Vec<u8> = Vec::with_capacity(body.len());
        let mut changed = false;
        let mut first = true;
        for pair in body.split(|&c| c == b'&') {
            let (k, v) = match pair.iter().position(|&c| c == b'=') {
                Some(p) => (pair.get(..p).unwrap_or(&[]), Some(pair.get(p + 1..).unwrap_or(&[]))),
                None => (pair, None),
            };
            // A pair without `=` is a value too (`jane@example.com&x=1`).
            let (key, raw) = match v {
                Some(v) => (String::from_utf8_lossy(&url_decode(k)).into_owned(), url_decode(v)),
                None => (String::new(), url_decode(k)),
            };
            let loc = match v {
                Some(_) => format!("$.form.{}", self.location_name(&key)),
                None => "$.form".to_string(),
            };
            // A field name that is itself personal data gets the action too.
            let mut name_out: Option<Vec<u8>> = None;
            if v.is_some() {
                let hits = self.find(&key, "", false);
                let (new, remove) = sink.apply(&key, &hits, &loc, true);
                if remove {
                    changed = true;
                    continue;
                }
                name_out = new.map(|n| url_encode(&n).into_bytes());
            }
            // Invalid UTF-8 in a value must not hide the rest of it.
            let val = String::from_utf8_lossy(&raw);
            let hits = self.find(&val, &key, false);
            let (new, remove) = sink.apply(&val, &hits, &loc, true);
            if remove {
                changed = true;
                continue;
            }
            let value_out = new.map(|n| url_encode(&n).into_bytes());
            let keep: Vec<u8> = match (v, name_out, value_out) {
                (_, None, None) => pair.to_vec(),
                (Some(v), name, value) => [name.as_deref().unwrap_or(k), b"=", value.as_deref().unwrap_or(v)].concat(),
                (None, _, value) => value.unwrap_or_else(|| pair.to_vec()),
            };
            changed |= keep != pair;
            if !first {
                out.push(b'&');
            }
            first = false;
            out.extend_from_slice(&keep);
        }
        sink.finish(if changed { Some(out) } else { None })
    }
}

fn url_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'+' {
            out.push(b' ');
            i += 1;
        } else if c == b'%' {
            let hex = |x: u8| (x as char).to_digit(16);
            match (s.get(i + 1).and_then(|&x| hex(x)), s.get(i + 2).and_then(|&x| hex(x))) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~' | b'*') {
            out.push(c as char);
        } else if c == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}
