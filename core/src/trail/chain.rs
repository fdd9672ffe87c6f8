//! Hash chains: one per emitter (a VM instance on one worker).
//!
//! `chain.hash` = SHA-256 over the RFC 8785 canonical JSON of the event with
//! `chain.hash` removed; `chain.prev` is the previous event's hash (64 zeros
//! for seq 0); seq starts at 0 and grows by one per event, with no gaps.

use crate::ids::sha256_hex;
use crate::jcs;
use serde_json::{json, Map, Value};

pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event sealed into the chain.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub seq: u64,
    pub hash: String,
    /// The canonical JSON line, `chain.hash` included (what `ndjson` ships).
    pub line: String,
}

/// The head of one emitter's chain.
#[derive(Debug, Clone)]
pub struct Chain {
    emitter: String,
    next_seq: u64,
    prev: String,
}

impl Chain {
    pub fn new(emitter: impl Into<String>) -> Self {
        Chain { emitter: emitter.into(), next_seq: 0, prev: ZERO_HASH.to_string() }
    }

    pub fn emitter(&self) -> &str {
        &self.emitter
    }

    /// Seq the next sealed event will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// (seq, hash) of the last sealed event, if any.
    pub fn head(&self) -> Option<(u64, &str)> {
        self.next_seq.checked_sub(1).map(|s| (s, self.prev.as_str()))
    }

    /// Sets `event.chain`, computes the hash and advances the head.
    pub fn seal(&mut self, event: &mut Map<String, Value>) -> Sealed {
        let seq = self.next_seq;
        event.insert("chain".into(), json!({"emitter": self.emitter, "seq": seq, "prev": self.prev}));
        let (mut line, chain_at) = jcs::canonicalize_map_marking(event, "chain");
        let hash = sha256_hex(line.as_bytes());
        if let Some(Value::Object(chain)) = event.get_mut("chain") {
            chain.insert("hash".into(), Value::String(hash.clone()));
        }
        // The line with the hash: only the `chain` member changes.
        match (chain_at, event.get("chain")) {
            (Some(at), Some(chain)) => line.replace_range(at, &jcs::canonicalize(chain)),
            _ => line = jcs::canonicalize_map(event),
        }
        self.prev = hash.clone();
        self.next_seq += 1;
        Sealed { seq, hash, line }
    }
}

impl Chain {
    /// Seals an event given as its canonical members before and after
    /// `chain` (see `RequestEvent::canonical_parts`): the chain member is
    /// written between them, the text hashed once, and the hash spliced in.
    pub fn seal_parts(&mut self, before: &str, after: &str) -> Sealed {
        let seq = self.next_seq;
        let mut text = String::with_capacity(before.len() + after.len() + self.emitter.len() + 180);
        text.push('{');
        text.push_str(before);
        if !before.is_empty() {
            text.push(',');
        }
        text.push_str("\"chain\":{\"emitter\":");
        jcs::write_string(&self.emitter, &mut text);
        text.push(',');
        let splice = text.len();
        text.push_str("\"prev\":\"");
        text.push_str(&self.prev);
        text.push_str("\",\"seq\":");
        crate::event::push_u64(&mut text, seq);
        text.push('}');
        if !after.is_empty() {
            text.push(',');
            text.push_str(after);
        }
        text.push('}');
        let hash = sha256_hex(text.as_bytes());
        let mut member = String::with_capacity(hash.len() + 11);
        member.push_str("\"hash\":\"");
        member.push_str(&hash);
        member.push_str("\",");
        text.insert_str(splice, &member);
        self.prev = hash.clone();
        self.next_seq += 1;
        Sealed { seq, hash, line: text }
    }
}

/// Recomputes an event's hash from its content (ignores any `chain.hash`).
pub fn compute_hash(event: &Value) -> String {
    let mut copy = event.clone();
    if let Some(Value::Object(chain)) = copy.get_mut("chain") {
        chain.remove("hash");
    }
    sha256_hex(jcs::canonicalize(&copy).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_link_and_verify() {
        let mut chain = Chain::new("node-1/abcd/0");
        let mut first = Map::new();
        first.insert("kind".into(), json!("chain_start"));
        let a = chain.seal(&mut first);
        let mut second = Map::new();
        second.insert("kind".into(), json!("access"));
        let b = chain.seal(&mut second);
        assert_eq!((a.seq, b.seq), (0, 1));
        let va: Value = serde_json::from_str(&a.line).unwrap_or_default();
        let vb: Value = serde_json::from_str(&b.line).unwrap_or_default();
        assert_eq!(va["chain"]["prev"], ZERO_HASH);
        assert_eq!(vb["chain"]["prev"], a.hash.as_str());
        assert_eq!(compute_hash(&va), a.hash);
        assert_eq!(compute_hash(&vb), b.hash);
        assert_eq!(chain.head(), Some((1, b.hash.as_str())));
        // The line is canonical: re-canonicalizing changes nothing.
        assert_eq!(jcs::canonicalize(&vb), b.line);
    }

    #[test]
    fn any_change_changes_the_hash() {
        let mut chain = Chain::new("e");
        let mut ev = Map::new();
        ev.insert("outcome".into(), json!({"status_code": 200}));
        let sealed = chain.seal(&mut ev);
        let mut v: Value = serde_json::from_str(&sealed.line).unwrap_or_default();
        v["outcome"]["status_code"] = json!(201);
        assert_ne!(compute_hash(&v), sealed.hash);
    }
}
