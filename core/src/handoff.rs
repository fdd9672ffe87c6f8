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

const MAGIC: &str = "proxy-audit-handoff/1 ";

/// A decoded hand-off: the emitter and its `(seq, line)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff<'a> {
    pub emitter: String,
    pub events: Vec<(u64, &'a str)>,
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

/// Decodes a hand-off; a clear error for anything that is not one.
pub fn decode(bytes: &[u8]) -> Result<Handoff<'_>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    let mut lines = text.split('\n');
    let head = lines.next().unwrap_or_default();
    let name = head.strip_prefix(MAGIC).ok_or("not a proxy-audit hand-off (bad header)")?;
    let emitter: String = serde_json::from_str(name).map_err(|e| format!("header: emitter is not a JSON string: {e}"))?;
    if emitter.is_empty() {
        return Err("header: empty emitter".into());
    }
    let mut events = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let (seq, event) = line.split_once(' ').ok_or_else(|| format!("line {}: no `<seq> <event>`", i + 2))?;
        let seq: u64 = seq.parse().map_err(|_| format!("line {}: seq {seq:?} is not an integer", i + 2))?;
        if !event.starts_with('{') {
            return Err(format!("line {}: the event is not a JSON object", i + 2));
        }
        events.push((seq, event));
    }
    Ok(Handoff { emitter, events })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let lines = [(4u64, r#"{"a":"x y"}"#), (5, r#"{"b":"\n"}"#)];
        let bytes = encode("node 1/proxy_audit/\"ab\"", lines.iter().copied());
        let h = decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.emitter, "node 1/proxy_audit/\"ab\"");
        assert_eq!(h.events, lines.to_vec());
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
            (b"proxy-audit-handoff/1 \"e\"\n1 []\n", "not a JSON object"),
            (b"proxy-audit-handoff/1 \"e\xff\"\n", "not UTF-8"),
        ] {
            let err = decode(bad).err().unwrap_or_default();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
