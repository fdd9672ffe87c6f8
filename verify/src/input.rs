//! Input formats: NDJSON, OTLP-JSON, Envoy JSON access logs and Envoy's log.
//!
//! An event line (or an event held as a string by an access-log record or an
//! OTLP body) takes the fast path ([`crate::canonical::quick`]): only the
//! places of its `chain`, `id`, `kind`, `time` and `trail` are found, and the
//! line is hashed as it stands (without `chain.hash`). When that is its
//! `chain.hash`, these are the very bytes that were sealed (as the filter
//! writes them, canonical JSON) and nothing more is checked. Otherwise the
//! line is checked for canonical form ([`crate::canonical::scan`]: then the
//! hash is the event's, and wrong), or parsed into a `serde_json::Value` and
//! canonicalized. So an event verifies when its canonical JSON or its bytes
//! as stored hash to `chain.hash`; either way any later edit breaks it. Large inputs are read in
//! parallel, one chunk of lines per thread.

use super::*;
use crate::canonical;
use crate::check::{Entry, Hx};
use memchr::memmem;

/// Parses one input file. Any unreadable line makes the whole file an error
/// (see [`parse_events_lossy`] to keep the readable part).
pub fn parse_events(name: &str, bytes: &[u8]) -> Result<Vec<Value>, String> {
    let (events, errors) = parse_events_lossy(name, bytes);
    if errors.is_empty() {
        return Ok(events);
    }
    const SHOWN: usize = 5;
    let mut msg = errors.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
    if errors.len() > SHOWN {
        msg.push_str(&format!("; and {} more", errors.len() - SHOWN));
    }
    Err(msg)
}

/// Parses one input file, returning the events it could read and one message
/// (`name:line N: why`) per part it could not.
pub fn parse_events_lossy(name: &str, bytes: &[u8]) -> (Vec<Value>, Vec<String>) {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    let mut sink = |raw: Raw<'_>, at: &dyn Fn() -> String, errors: &mut Vec<String>| match raw {
        Raw::Value(v) => events.push(v),
        Raw::Canonical(t, _) => match serde_json::from_slice::<Value>(t) {
            Ok(v) => events.push(v),
            Err(e) => errors.push(format!("{}: not JSON ({e})", at())),
        },
    };
    read_lines(name, bytes, 1, &mut sink, &mut errors);
    (events, errors)
}

/// One event as the checks need it: its recomputed hash and its
/// `chain.hash` as written (together: what tells copies apart), its
/// emitter, and either the chain entry read on the fast path or the parsed
/// event.
#[derive(Debug)]
pub(crate) struct Light {
    pub computed: Hx,
    pub declared: Declared,
    pub emitter: Option<String>,
    pub body: Body,
}

#[derive(Debug)]
pub(crate) enum Body {
    Entry(Box<Entry>),
    Value(Value),
}

/// `chain.hash` as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Declared {
    Absent,
    Hash(Hx),
    /// Anything else, as canonical JSON.
    Other(String),
}

impl Declared {
    /// 128 bits that tell declared hashes apart (0: absent).
    pub fn prefix128(&self) -> u128 {
        match self {
            Declared::Absent => 0,
            Declared::Hash(h) => h.prefix128(),
            Declared::Other(s) => {
                Hx::parse(&proxy_audit_core::ids::sha256_hex(s.as_bytes())).map_or(1, |h| h.prefix128())
            }
        }
    }
}

impl Light {
    /// The slow path: any parsed event.
    pub fn from_value(ev: Value) -> Light {
        let computed = Hx::parse(&compute_hash(&ev)).unwrap_or(Hx::of_digest(&[0; 32]));
        let declared = match ev.get("chain").and_then(|c| c.get("hash")) {
            None => Declared::Absent,
            Some(Value::String(h)) if Hx::parse(h).is_some() => Hx::parse(h).map_or(Declared::Absent, Declared::Hash),
            Some(v) => Declared::Other(jcs::canonicalize(v)),
        };
        let emitter = emitter_of(&ev);
        Light { computed, declared, emitter, body: Body::Value(ev) }
    }

    /// The fast path, for a line [`canonical::quick`] accepted: when its
    /// bytes hash to its `chain.hash` they are taken as written (they are
    /// the bytes that were sealed); otherwise the line must pass
    /// [`canonical::scan`] (canonical: hashed as it stands, a wrong hash is
    /// the event's) or is parsed and canonicalized. A plain event is read
    /// from its spans; a trail record (or anything unusual) is parsed.
    pub fn from_spans(line: &[u8], spans: canonical::Spans) -> Option<Light> {
        let computed = cut_hash(line, &spans)?;
        let declared =
            spans.hash.clone().and_then(|r| line.get(r)).and_then(canonical::plain_string).and_then(Hx::parse);
        let (spans, declared) = if declared == Some(computed) {
            (spans, declared)
        } else {
            match canonical::scan(line) {
                Some(full) => (full, None),
                None => return serde_json::from_slice(line).ok().map(Light::from_value),
            }
        };
        if let Some((emitter, entry)) = Entry::plain(line, &spans, computed, declared) {
            let declared = entry.hash_declared();
            return Some(Light { computed, declared, emitter: Some(emitter), body: Body::Entry(Box::new(entry)) });
        }
        let ev: Value = serde_json::from_slice(line).ok()?;
        let declared = match ev.get("chain").and_then(|c| c.get("hash")) {
            None => Declared::Absent,
            Some(Value::String(h)) if Hx::parse(h).is_some() => Hx::parse(h).map_or(Declared::Absent, Declared::Hash),
            Some(v) => Declared::Other(jcs::canonicalize(v)),
        };
        let emitter = emitter_of(&ev);
        Some(Light { computed, declared, emitter, body: Body::Value(ev) })
    }
}

/// SHA-256 of the line without its `chain.hash` member.
fn cut_hash(line: &[u8], spans: &canonical::Spans) -> Option<Hx> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    match &spans.hash_cut {
        Some(cut) => {
            h.update(line.get(..cut.start)?);
            h.update(line.get(cut.end..)?);
        }
        None => h.update(line),
    }
    Some(Hx::of_digest(&h.finalize()))
}

fn emitter_of(ev: &Value) -> Option<String> {
    ev.get("chain").and_then(|c| c.get("emitter")).and_then(Value::as_str).filter(|e| !e.is_empty()).map(str::to_string)
}

/// Parses one block of whole lines into [`Light`] events, in parallel on
/// `threads` threads when it is large. Returns the events, the unreadable
/// parts and the number of line ends in the block.
pub(crate) fn parse_block(
    name: &str,
    bytes: &[u8],
    first_line: usize,
    threads: usize,
    shard: Option<(u64, u64)>,
) -> (Vec<Light>, Vec<String>, usize) {
    let chunks = split_lines(bytes, threads);
    if chunks.len() <= 1 {
        return lights_of(name, bytes, first_line, shard);
    }
    // Each chunk numbers its lines from 1; a chunk with unreadable lines is
    // read again with its true first line (errors are rare).
    let results: Vec<(Vec<Light>, Vec<String>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks.iter().map(|chunk| s.spawn(move || lights_of(name, chunk, 1, shard))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Vec::new(), vec![format!("{name}: reader failed")], 0)))
            .collect()
    });
    let mut lights = Vec::with_capacity(results.iter().map(|(l, _, _)| l.len()).sum());
    let mut errors = Vec::new();
    let mut line = first_line;
    for ((l, e, n), chunk) in results.into_iter().zip(&chunks) {
        lights.extend(l);
        if !e.is_empty() {
            errors.extend(lights_of(name, chunk, line, shard).1);
        }
        line += n;
    }
    (lights, errors, line - first_line)
}

/// A whole input as pretty-printed JSON documents (one or several,
/// concatenated): `None` when it is not that.
pub(crate) fn parse_document(name: &str, bytes: &[u8]) -> Option<(Vec<Light>, Vec<String>)> {
    let docs: Vec<Value> =
        serde_json::Deserializer::from_slice(bytes).into_iter::<Value>().collect::<Result<_, _>>().ok()?;
    if docs.is_empty() {
        return None;
    }
    let mut lights = Vec::new();
    let mut errors = Vec::new();
    let mut sink = |raw: Raw<'_>, at: &dyn Fn() -> String, errors: &mut Vec<String>| match raw {
        Raw::Value(v) => lights.push(Light::from_value(v)),
        Raw::Canonical(t, spans) => match Light::from_spans(t, spans) {
            Some(l) => lights.push(l),
            None => errors.push(format!("{}: unreadable event", at())),
        },
    };
    for v in docs {
        extract(name, v, true, &mut sink, &mut errors);
    }
    Some((lights, errors))
}

/// Splits at line ends into about `n` chunks of at least 256 KB.
fn split_lines(bytes: &[u8], n: usize) -> Vec<&[u8]> {
    const MIN: usize = 1 << 18;
    let n = n.max(1).min(bytes.len() / MIN).max(1);
    if n == 1 {
        return vec![bytes];
    }
    let mut out = Vec::new();
    let mut start = 0usize;
    for k in 1..=n {
        let end = if k == n {
            bytes.len()
        } else {
            let target = (bytes.len() / n * k).max(start);
            match bytes.get(target..).and_then(|r| memchr::memchr(b'\n', r)) {
                Some(off) => target + off + 1,
                None => bytes.len(),
            }
        };
        if end <= start {
            continue;
        }
        out.push(bytes.get(start..end).unwrap_or_default());
        start = end;
        if end == bytes.len() {
            break;
        }
    }
    out
}

/// The events of a chunk of whole lines, the unreadable ones, and the
/// number of line ends.
fn lights_of(
    name: &str,
    bytes: &[u8],
    first_line: usize,
    shard: Option<(u64, u64)>,
) -> (Vec<Light>, Vec<String>, usize) {
    let mut lights = Vec::with_capacity(bytes.len() / 1024);
    let mut errors = Vec::new();
    let mut sink = |raw: Raw<'_>, at: &dyn Fn() -> String, errors: &mut Vec<String>| match raw {
        Raw::Value(v) => lights.push(Light::from_value(v)),
        // Another shard's plain event: not even hashed.
        Raw::Canonical(t, spans) if other_shard(t, &spans, shard) => {}
        Raw::Canonical(t, spans) => match Light::from_spans(t, spans) {
            Some(l) => lights.push(l),
            None => errors.push(format!("{}: unreadable event", at())),
        },
    };
    let n = read_lines_only(name, bytes, first_line, &mut sink, &mut errors);
    (lights, errors, n)
}

/// A canonical event of an emitter outside `shard` that is not a `loss`
/// record (which may declare a gap in a chain of this shard).
fn other_shard(line: &[u8], spans: &canonical::Spans, shard: Option<(u64, u64)>) -> bool {
    let Some((i, n)) = shard else { return false };
    let kind = spans.kind.clone().and_then(|k| line.get(k)).and_then(canonical::plain_string);
    if kind.is_none_or(|k| k == "loss") {
        return false;
    }
    let Some(chain) = spans.chain.clone().and_then(|c| line.get(c)) else { return false };
    let emitter =
        canonical::members(chain).find(|(k, _)| *k == b"emitter").and_then(|(_, v)| canonical::plain_string(v));
    emitter.is_some_and(|e| crate::shard_of(e, n) != i)
}

/// An event found in the input: parsed already, or a canonical line.
pub(crate) enum Raw<'a> {
    Value(Value),
    Canonical(&'a [u8], canonical::Spans),
}

type Sink<'s> = dyn FnMut(Raw<'_>, &dyn Fn() -> String, &mut Vec<String>) + 's;

/// Every line of a file, then (when some were not JSON) the file as one
/// pretty-printed document.
fn read_lines(name: &str, bytes: &[u8], first_line: usize, sink: &mut Sink<'_>, errors: &mut Vec<String>) {
    let mut line_errors = Vec::new();
    let mut pending: Vec<(String, Value)> = Vec::new();
    let mut texts: Vec<(usize, &[u8], canonical::Spans)> = Vec::new();
    lines(bytes, first_line, &mut |n, line| {
        // Canonical events are taken as text (the fast path); others parsed here.
        if let Some(spans) = canonical_event(line) {
            texts.push((n, line, spans));
            return;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v) => pending.push((format!("{name}:line {n}"), v)),
            Err(e) => line_errors.push(format!("{name}:line {n}: not JSON ({e})")),
        }
    });
    if !line_errors.is_empty() {
        // Perhaps one pretty-printed document (or several, concatenated).
        let whole: Result<Vec<Value>, _> = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>().collect();
        if let Ok(docs) = whole {
            if !docs.is_empty() {
                for v in docs {
                    extract(name, v, true, sink, errors);
                }
                return;
            }
        }
    }
    errors.extend(line_errors);
    for (n, t, spans) in texts {
        sink(Raw::Canonical(t, spans), &|| format!("{name}:line {n}"), errors);
    }
    for (at, v) in pending {
        extract(&at, v, true, sink, errors);
    }
}

/// Like [`read_lines`] without the whole-document retry (a chunk of a
/// file); returns the number of line ends.
fn read_lines_only(
    name: &str,
    bytes: &[u8],
    first_line: usize,
    sink: &mut Sink<'_>,
    errors: &mut Vec<String>,
) -> usize {
    lines(bytes, first_line, &mut |n, line| {
        if let Some(spans) = canonical_event(line) {
            sink(Raw::Canonical(line, spans), &|| format!("{name}:line {n}"), errors);
            return;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v) => extract(&format!("{name}:line {n}"), v, true, sink, errors),
            Err(e) => errors.push(format!("{name}:line {n}: not JSON ({e})")),
        }
    })
}

/// A line that starts like a canonical event (`{"action":`, `{"chain":` ...):
/// worth trying the fast path on. The fast path itself decides.
fn canonical_event(line: &[u8]) -> Option<canonical::Spans> {
    if !line.starts_with(b"{\"") {
        return None;
    }
    canonical::quick(line).filter(|s| s.chain.is_some())
}

/// The non-empty lines of `bytes` (Envoy's log: only its `proxy-audit:
/// record` lines, from the marker on), with their numbers. Returns the
/// number of line ends.
fn lines<'a>(bytes: &'a [u8], first_line: usize, each: &mut dyn FnMut(usize, &'a [u8])) -> usize {
    // Envoy's log or not: looked up once, at the first line that is not JSON.
    let finder = memmem::Finder::new(RECORD_MARKER.as_bytes());
    let mut envoy_log: Option<bool> = None;
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    let mut newlines = 0;
    for (i, end) in ends.enumerate() {
        newlines = i;
        let line = bytes.get(start..end).unwrap_or_default();
        start = end + 1;
        let mut line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with(b"{") && *envoy_log.get_or_insert_with(|| finder.find(bytes).is_some()) {
            match finder.find(line) {
                Some(at) => line = line.get(at + RECORD_MARKER.len()..).unwrap_or_default().trim_ascii(),
                None => continue,
            }
        }
        each(first_line + i, line);
    }
    newlines
}

pub use proxy_audit_core::export::RECORD_MARKER;

/// One top-level JSON value: an event, an OTLP request, or an array of those.
fn extract(at: &str, v: Value, top: bool, sink: &mut Sink<'_>, errors: &mut Vec<String>) {
    match v {
        Value::Object(ref map) if map.contains_key("resourceLogs") => extract_otlp(at, map, sink, errors),
        Value::Object(ref map) if ["chain", "kind", "id", "schema"].iter().any(|k| map.contains_key(*k)) => {
            sink(Raw::Value(v), &|| at.to_string(), errors)
        }
        Value::Array(items) if top => {
            for (i, item) in items.into_iter().enumerate() {
                extract(&format!("{at}[{i}]"), item, false, sink, errors);
            }
        }
        Value::Object(ref map) if top => match access_log_event(map) {
            Some(AccessLog::Event(ev)) => sink(Raw::Value(ev), &|| at.to_string(), errors),
            Some(AccessLog::Canonical(text, spans)) => {
                sink(Raw::Canonical(text.as_bytes(), spans), &|| at.to_string(), errors)
            }
            Some(AccessLog::NoEvent) => {}
            None => errors.push(format!("{at}: neither an audit event nor an OTLP ExportLogsServiceRequest")),
        },
        _ => errors.push(format!("{at}: neither an audit event nor an OTLP ExportLogsServiceRequest")),
    }
}

/// The field names an access-log format gives the sealed event.
const ACCESS_LOG_FIELDS: [&str; 3] = ["audit_event", "event", "proxy_audit_event"];

pub(crate) enum AccessLog<'a> {
    Event(Value),
    /// The sealed event as the (canonical) string the access log holds.
    Canonical(&'a str, canonical::Spans),
    /// A record of a request that has no event (the filter did not see it,
    /// Envoy writes `-` or null for absent filter state).
    NoEvent,
}

/// An Envoy JSON access-log record carrying the sealed event in one of
/// [`ACCESS_LOG_FIELDS`] (a string holding the event JSON, or the object).
pub(crate) fn access_log_event(map: &serde_json::Map<String, Value>) -> Option<AccessLog<'_>> {
    let mut named = false;
    for key in ACCESS_LOG_FIELDS {
        let Some(v) = map.get(key) else { continue };
        named = true;
        return match v {
            Value::String(s) if s.starts_with('{') => match canonical_event(s.as_bytes()) {
                Some(spans) => Some(AccessLog::Canonical(s, spans)),
                // Something that should be an event and is not: unreadable input.
                None => {
                    serde_json::from_str::<Value>(s).ok().filter(|e| e.get("chain").is_some()).map(AccessLog::Event)
                }
            },
            Value::Object(_) => v.get("chain").is_some().then(|| AccessLog::Event(v.clone())),
            // `-`, null, empty: no event for this request.
            _ => continue,
        };
    }
    named.then_some(AccessLog::NoEvent)
}

fn extract_otlp(at: &str, req: &serde_json::Map<String, Value>, sink: &mut Sink<'_>, errors: &mut Vec<String>) {
    let Some(resource_logs) = req.get("resourceLogs").and_then(Value::as_array) else {
        errors.push(format!("{at}: resourceLogs is not an array"));
        return;
    };
    for (r, rl) in resource_logs.iter().enumerate() {
        let scopes = rl.get("scopeLogs").or_else(|| rl.get("instrumentationLibraryLogs")).and_then(Value::as_array);
        for (s, sl) in scopes.into_iter().flatten().enumerate() {
            let records = sl.get("logRecords").and_then(Value::as_array);
            for (k, rec) in records.into_iter().flatten().enumerate() {
                let here = || format!("{at}: resourceLogs[{r}].scopeLogs[{s}].logRecords[{k}]");
                let ours = rec.get("eventName").and_then(Value::as_str).is_some_and(|n| n.starts_with("proxy_audit."));
                let body = rec.get("body").and_then(|b| b.get("stringValue")).and_then(Value::as_str);
                if let Some((text, spans)) = body.and_then(|t| canonical_event(t.as_bytes()).map(|sp| (t, sp))) {
                    sink(Raw::Canonical(text.as_bytes(), spans), &here, errors);
                    continue;
                }
                let parsed = body.map(serde_json::from_str::<Value>);
                match parsed {
                    Some(Ok(ev @ Value::Object(_))) if ours || ev.get("chain").is_some() => {
                        sink(Raw::Value(ev), &here, errors)
                    }
                    // Someone else's log record in a shared collector file.
                    _ if !ours => {}
                    Some(Ok(_)) => errors.push(format!("{}: body is not a JSON object", here())),
                    Some(Err(e)) => errors.push(format!("{}: body.stringValue is not JSON ({e})", here())),
                    None => errors.push(format!("{}: no body.stringValue", here())),
                }
            }
        }
    }
}
