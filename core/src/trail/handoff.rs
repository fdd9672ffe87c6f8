//! The message a worker hands to the singleton shipping service through an
//! Envoy shared queue: one emitter's sealed events, each with its seq, so the
//! shipper can account for losses per emitter without parsing the events.
//!
//! ```text
//! proxy-audit-handoff/1 "<emitter, as a JSON string>"
//! <seq> <event line>
//! <seq> <event line>
//! ```
//!
//! Event lines are canonical JSON, which never holds a raw newline. The queue
//! is reachable by any module on the node that knows its name, so the shipper
//! decodes with [`decode`], which rejects anything else.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

const MAGIC: &str = "proxy-audit-handoff/1 ";

/// A decoded hand-off: the emitter and its `(seq, line)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff<'a> {
    pub emitter: String,
    pub events: Vec<(u64, &'a str)>,
    /// Per event, the gap it declares when it is a `loss` event: (chain,
    /// first_seq, last_seq, lost_events); the chain is the header's emitter
    /// unless the event names another.
    pub declares: Vec<Option<(String, u64, u64, u64)>>,
}

/// Encodes one emitter's events.
pub fn encode<'a>(emitter: &str, events: impl IntoIterator<Item = (u64, &'a str)>) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str(MAGIC);
    out.push_str(&serde_json::Value::String(emitter.to_string()).to_string());
    out.push('\n');
    for (seq, line) in events {
        out.push_str(&seq.to_string());
        out.push(' ');
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

/// What the shipping service needs of each event line: that it is one JSON
/// object from the chain the header names, at the seq the header gives, and
/// for a `loss` event the gap it declares (so dropping it never loses that).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    pub emitter: String,
    pub seq: u64,
    /// `loss` events: (`trail.emitter`, first_seq, last_seq, lost_events).
    pub declares: Option<(Option<String>, u64, u64, u64)>,
}

/// Reads the [`Head`] of one event line (a full JSON parse that keeps only
/// these fields); `None` when the line is not a JSON object with them.
pub fn head(line: &str) -> Option<Head> {
    let top: Top = serde_json::from_str(line).ok()?;
    if line.contains("\\u") {
        // Skipped members are not checked for escapes a full parse refuses
        // (a lone surrogate `\ud800`), which `verify` could then not read:
        // lines with `\u` escapes (rare: canonical JSON writes only control
        // characters that way) are parsed whole.
        serde_json::from_str::<serde_json::Value>(line).ok()?;
    }
    let (emitter, seq) = top.chain?;
    let declares = match (top.is_loss, top.trail) {
        (true, Some(t)) => match (t.first, t.last) {
            (Some(a), Some(b)) if a <= b => {
                let span = (b - a).saturating_add(1);
                Some((t.emitter, a, b, t.lost.map_or(span, |n| n.min(span))))
            }
            _ => None,
        },
        _ => None,
    };
    Some(Head { emitter, seq, declares })
}

#[derive(Default)]
struct Top {
    chain: Option<(String, u64)>,
    is_loss: bool,
    trail: Option<Trail>,
}

#[derive(Default)]
struct Trail {
    emitter: Option<String>,
    first: Option<u64>,
    last: Option<u64>,
    lost: Option<u64>,
}

/// Member names, compared without keeping them.
struct Name(String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Name)
    }
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an audit event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Top, A::Error> {
                let mut top = Top::default();
                while let Some(Name(k)) = m.next_key()? {
                    match k.as_str() {
                        "chain" => {
                            let c: ChainFields = m.next_value()?;
                            top.chain = c.emitter.zip(c.seq);
                        }
                        "kind" => top.is_loss = m.next_value::<Option<String>>()?.as_deref() == Some("loss"),
                        "trail" => top.trail = m.next_value::<Option<TrailFields>>()?.map(|t| t.0),
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(top)
            }
        }
        d.deserialize_map(V)
    }
}

struct ChainFields {
    emitter: Option<String>,
    seq: Option<u64>,
}

impl<'de> Deserialize<'de> for ChainFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChainFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a chain object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<ChainFields, A::Error> {
                let mut c = ChainFields { emitter: None, seq: None };
                while let Some(Name(k)) = m.next_key()? {
                    match k.as_str() {
                        "emitter" => c.emitter = m.next_value()?,
                        "seq" => c.seq = m.next_value()?,
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

struct TrailFields(Trail);

impl<'de> Deserialize<'de> for TrailFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TrailFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a trail object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TrailFields, A::Error> {
                let mut t = Trail::default();
                while let Some(Name(k)) = m.next_key()? {
                    match k.as_str() {
                        "emitter" => t.emitter = m.next_value()?,
                        "first_seq" => t.first = m.next_value()?,
                        "last_seq" => t.last = m.next_value()?,
                        "lost_events" => t.lost = m.next_value()?,
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(TrailFields(t))
            }
        }
        d.deserialize_map(V)
    }
}

/// At most 64 characters of a name from the queue, for an error message
/// (the shipper logs it; a forged message must not fill the log).
fn clip(s: &str) -> &str {
    s.char_indices().nth(64).map_or(s, |(i, _)| s.get(..i).unwrap_or(s))
}

/// Decodes a hand-off; a clear error for anything that is not one.
pub fn decode(bytes: &[u8]) -> Result<Handoff<'_>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or_default();
    let name = header.strip_prefix(MAGIC).ok_or("not a proxy-audit hand-off (bad header)")?;
    let emitter: String =
        serde_json::from_str(name).map_err(|e| format!("header: emitter is not a JSON string: {e}"))?;
    if emitter.is_empty() {
        return Err("header: empty emitter".into());
    }
    let mut events = Vec::new();
    let mut declares = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let (seq, event) = line.split_once(' ').ok_or_else(|| format!("line {}: no `<seq> <event>`", i + 2))?;
        let seq: u64 = seq.parse().map_err(|_| format!("line {}: seq {:?} is not an integer", i + 2, clip(seq)))?;
        let h = head(event).ok_or_else(|| {
            format!("line {}: not an audit event (a JSON object with chain.emitter and chain.seq)", i + 2)
        })?;
        if h.emitter != emitter || h.seq != seq {
            return Err(format!(
                "line {}: the event is {}@{}, not {}@{seq}",
                i + 2,
                clip(&h.emitter),
                h.seq,
                clip(&emitter)
            ));
        }
        events.push((seq, event));
        // A worker declares gaps in its own chain only, before the loss
        // event itself; anything else is carried but never re-declared here
        // (the queue is open to every module on the node).
        let own =
            h.declares.filter(|(target, _, last, _)| target.as_deref().is_none_or(|t| t == emitter) && *last < seq);
        declares.push(own.map(|(_, a, b, n)| (emitter.clone(), a, b, n)));
    }
    Ok(Handoff { emitter, events, declares })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = "node 1/proxy_audit/\"ab\"";
        let a = r#"{"a":"x y","chain":{"emitter":"node 1/proxy_audit/\"ab\"","seq":4}}"#;
        let b = r#"{"b":"\n","chain":{"emitter":"node 1/proxy_audit/\"ab\"","seq":5},"kind":"loss","trail":{"first_seq":1,"last_seq":3,"lost_events":3}}"#;
        let lines = [(4u64, a), (5, b)];
        let bytes = encode(e, lines.iter().copied());
        let h = decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.emitter, e);
        assert_eq!(h.events, lines.to_vec());
        assert_eq!(h.declares, vec![None, Some((e.to_string(), 1, 3, 3))]);
        // Declarations for another chain, or for seqs not before the loss
        // event, are carried but not taken as the worker's.
        for trail in [
            r#"{"emitter":"other","first_seq":1,"last_seq":3}"#,
            r#"{"first_seq":1,"last_seq":9}"#,
            r#"{"first_seq":0,"last_seq":18446744073709551615}"#,
        ] {
            let line = format!(r#"{{"chain":{{"emitter":"w","seq":5}},"kind":"loss","trail":{trail}}}"#);
            let bytes = encode("w", [(5, line.as_str())]);
            let h = decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(h.declares, vec![None], "{trail}");
        }
        assert!(head(r#"{"x":"\ud800","chain":{"emitter":"w","seq":5}}"#).is_none(), "a lone surrogate");
        assert!(head(r#"{"x":"\u0001\ud83d\ude00","chain":{"emitter":"w","seq":5}}"#).is_some());
        assert_eq!(head(r#"{"chain":{"emitter":"w","seq":5},"kind":"loss","trail":{"first_seq":0,"last_seq":18446744073709551615}}"#)
            .and_then(|h| h.declares).map(|d| d.3), Some(u64::MAX));
        assert_eq!(decode(&encode("e", [])).map(|h| h.events.len()), Ok(0));
    }

    #[test]
    fn rejects_what_is_not_a_handoff() {
        for (bad, why) in [
            (&b"{\"a\":1}\n"[..], "bad header"),
            (b"proxy-audit-handoff/1 e\n", "not a JSON string"),
            (b"proxy-audit-handoff/1 \"\"\n", "empty emitter"),
            (b"proxy-audit-handoff/1 \"e\"\n1{}\n", "no `<seq> <event>`"),
            (b"proxy-audit-handoff/1 \"e\"\n-1 {}\n", "not an integer"),
            (b"proxy-audit-handoff/1 \"e\"\n1 []\n", "not an audit event"),
            (b"proxy-audit-handoff/1 \"e\"\n1 {\n", "not an audit event"),
            (b"proxy-audit-handoff/1 \"e\"\n1 {\"chain\":{\"emitter\":\"f\",\"seq\":1}}\n", "is f@1, not e@1"),
            (b"proxy-audit-handoff/1 \"e\"\n1 {\"chain\":{\"emitter\":\"e\",\"seq\":2}}\n", "is e@2, not e@1"),
            (b"proxy-audit-handoff/1 \"e\xff\"\n", "not UTF-8"),
        ] {
            let err = decode(bad).err().unwrap_or_default();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
