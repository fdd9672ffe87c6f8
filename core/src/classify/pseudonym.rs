//! Pseudonyms (`pseu_` + 16 hex of HMAC-SHA256 under the configured key:
//! the same value gives the same token, never an unkeyed hash) and their
//! restore into responses (`classification.restore`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) fn pseudonym(key: &[u8], value: &str) -> String {
    let mut out = String::with_capacity(21);
    out.push_str("pseu_");
    if let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) {
        mac.update(value.as_bytes());
        let tag = mac.finalize().into_bytes();
        for b in tag.iter().take(8) {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out
}

/// Puts pseudonymized originals back where their tokens appear (for
/// `classification.restore`). Returns `None` when nothing was replaced. When
/// the body looks like JSON the originals are inserted JSON-escaped.
pub fn restore(body: &[u8], pseudonyms: &[(String, String)]) -> Option<Vec<u8>> {
    if pseudonyms.is_empty() {
        return None;
    }
    // JSON, and SSE whose data lines are JSON: originals go in JSON-escaped.
    let json_like = matches!(body.iter().find(|c| !c.is_ascii_whitespace()), Some(b'{' | b'['))
        || [&b"data:"[..], b"event:", b"id:", b":"].iter().any(|p| body.starts_with(p));
    let by_token: std::collections::HashMap<&[u8], &str> =
        pseudonyms.iter().map(|(t, o)| (t.as_bytes(), o.as_str())).collect();
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    let mut changed = false;
    let mut last = 0;
    while i + 21 <= body.len() {
        if body.get(i..i + 5) == Some(b"pseu_") {
            if let Some(tok) = body.get(i..i + 21).filter(|_| !body.get(i + 21).is_some_and(u8::is_ascii_hexdigit)) {
                if let Some(orig) = by_token.get(tok) {
                    out.extend_from_slice(body.get(last..i).unwrap_or(&[]));
                    if json_like {
                        let quoted = serde_json::to_string(orig).unwrap_or_default();
                        let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or("");
                        out.extend_from_slice(inner.as_bytes());
                    } else {
                        out.extend_from_slice(orig.as_bytes());
                    }
                    i += 21;
                    last = i;
                    changed = true;
                    continue;
                }
            }
        }
        i += 1;
    }
    if !changed {
        return None;
    }
    out.extend_from_slice(body.get(last..).unwrap_or(&[]));
    Some(out)
}
