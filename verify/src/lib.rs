//! `proxy-audit verify`: checks the per-emitter hash chains of audit events.
//!
//! Input is NDJSON (one event per line) or OTLP-JSON (`ExportLogsServiceRequest`
//! objects, one per line as the OpenTelemetry Collector `file` exporter writes
//! them, or one whole pretty-printed file), detected per line. Events may come
//! in any order and more than once (at-least-once delivery): identical copies
//! are counted and ignored, then events are grouped by `chain.emitter` and
//! sorted by `chain.seq`.
//!
//! Every break names the emitter and the seq it concerns:
//! - `modified`: the content no longer hashes to `chain.hash`, or a checkpoint
//!   (external `SEQ:HASH`, or a `checkpoint` event's `trail.head_*`) attests a
//!   different hash for that seq;
//! - `missing`: a seq gap that no `loss` event declares (declared losses are
//!   reported as `LOSS` lines, not breaks). A `loss` event normally declares
//!   a gap in its own chain; one with `trail.emitter` declares it in that
//!   emitter's chain (the singleton shipping service carries the events of
//!   every worker and declares what it had to drop in its own chain). Anyone
//!   can write a chain, so for a chain anchored by a checkpoint such a
//!   declaration counts only when the declaring chain is anchored too, at or
//!   past its `loss` event;
//! - `reordered`: `chain.prev` is the hash of another seq of the same emitter
//!   than N-1 (events moved around and renumbered);
//! - `bad prev`: `chain.prev` is not the hash of seq N-1, or seq 0 does not
//!   start with 64 zeros, or seq 0 is not a `chain_start` event;
//! - `duplicate`: the same `id` with different content, or two different
//!   events that both hash correctly at the same seq (a fork);
//! - `truncated`: a checkpoint names a seq beyond the emitter's last event;
//! - `malformed`: an event whose `chain` fields are missing or of the wrong
//!   type (seq rendered as `?` when it cannot be read).
//!
//! A chain is *closed* when its last event is its emitter's `end` checkpoint
//! (an orderly retirement) or an external checkpoint anchors its last event.
//! Any other chain is *open*: events after its last seq may be missing (a
//! stopped process, a deleted tail), so it fails unless the caller says the
//! chain is still being written ([`Live`]).
//!
//! Besides NDJSON and OTLP, a line may be an access-log record (Envoy's JSON
//! access log) whose field holds the sealed event as a string (the filter's
//! `proxy_audit.event` filter state): the second delivery path. Several
//! sources merge; copies of one event are ignored.
//!
//! Nothing here panics on input.

#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used))]

#[doc(hidden)]
pub mod fuzzing;

use proxy_audit_core::chain::{compute_hash, ZERO_HASH};
use proxy_audit_core::ids::sha256_hex;
use proxy_audit_core::jcs;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// `Break::seq` of a malformed event whose seq cannot be read (rendered `?`
/// in `malformed` breaks).
pub const UNKNOWN_SEQ: u64 = u64::MAX;

/// What is wrong at a seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    Modified,
    Missing,
    Reordered,
    BadPrev,
    /// Same id with different content, or a fork (two valid events, one seq).
    /// Identical copies of one event are not a problem (counted as dedup).
    Duplicate,
    /// A checkpoint names a seq past the end of the chain.
    Truncated,
    /// `chain` fields missing or of the wrong type.
    Malformed,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Modified => "modified",
            Problem::Missing => "missing",
            Problem::Reordered => "reordered",
            Problem::BadPrev => "bad prev",
            Problem::Duplicate => "duplicate",
            Problem::Truncated => "truncated",
            Problem::Malformed => "malformed",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// `?` when the event names no readable emitter.
    pub emitter: String,
    /// [`UNKNOWN_SEQ`] when the event names no readable seq.
    pub seq: u64,
    pub problem: Problem,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitterReport {
    pub emitter: String,
    /// Distinct events (duplicates deliveries not counted).
    pub events: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// `chain.hash` of the event at `last_seq`.
    pub head: String,
    /// `trail.first_seq..=trail.last_seq` of the (valid) `loss` events that
    /// declare gaps in this chain: its own, and other emitters' naming it.
    pub declared_lost: Vec<(u64, u64)>,
    /// The part of `declared_lost` that other emitters declared: range and
    /// the declaring emitter.
    pub declared_by: Vec<(u64, u64, String)>,
    /// Identical extra copies ignored (at-least-once delivery).
    pub duplicates: u64,
    /// The last event is this chain's `end` checkpoint (orderly retirement).
    pub ended: bool,
    /// `time` of the last event, in ms since the epoch.
    pub last_time_ms: Option<u64>,
    /// Events present although a `loss` event declared them lost (stored by
    /// the log service but never acknowledged): counted once, as present.
    pub present_though_declared: u64,
}

/// Which open chains are still being written (and so not failures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Live {
    /// Every chain must be closed.
    #[default]
    No,
    /// Every open chain is live (`--live`).
    All,
    /// Chains whose last event is at most this many ms older than the newest
    /// event of the input are live (`--live-within SECONDS`).
    Within(u64),
}

/// A chain with no end record and no anchor past its last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub emitter: String,
    /// Its last event (events after it may be missing); `None` when none of
    /// its events is in the input (only declared lost by another emitter).
    pub last_seq: Option<u64>,
    /// Whether [`Live`] counts it as still being written.
    pub live: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub emitters: Vec<EmitterReport>,
    pub breaks: Vec<Break>,
    /// Chains that are not closed (see [`Report::set_live`]).
    pub open: Vec<Open>,
    /// `name:line N: why` for input that could not be read.
    pub unreadable: Vec<String>,
}

/// An expected head: `[EMITTER@]SEQ:HASH`. Without an emitter, the emitter is
/// the one whose chain holds that hash at SEQ (or the only one in the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub emitter: Option<String>,
    pub seq: u64,
    pub hash: String,
}

impl Checkpoint {
    /// Parses `SEQ:HASH` or `EMITTER@SEQ:HASH` (the `--checkpoint` value).
    pub fn parse(s: &str) -> Result<Checkpoint, String> {
        let s = s.trim();
        let (emitter, rest) = match s.rsplit_once('@') {
            Some((e, r)) if !e.is_empty() => (Some(e.to_string()), r),
            Some(_) => return Err(format!("checkpoint {s:?}: empty emitter before '@'")),
            None => (None, s),
        };
        let (seq, hash) =
            rest.split_once(':').ok_or_else(|| format!("checkpoint {s:?}: expected [EMITTER@]SEQ:HASH"))?;
        let seq: u64 =
            seq.trim().parse().map_err(|_| format!("checkpoint {s:?}: seq {seq:?} is not a non-negative integer"))?;
        let hash = hash.trim().to_ascii_lowercase();
        if !is_hash(&hash) {
            return Err(format!("checkpoint {s:?}: hash must be 64 hex digits (SHA-256)"));
        }
        Ok(Checkpoint { emitter, seq, hash })
    }
}

// ---------------------------------------------------------------------------
// Input

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
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut values: Vec<(String, Value)> = Vec::new();
    let mut errors = Vec::new();
    // Envoy's own log: only the filter's `proxy-audit: record ` lines count.
    let envoy_log = find(bytes, RECORD_MARKER.as_bytes()).is_some();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let mut line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if envoy_log && !line.starts_with(b"{") {
            match find(line, RECORD_MARKER.as_bytes()) {
                Some(at) => line = line.get(at + RECORD_MARKER.len()..).unwrap_or_default().trim_ascii(),
                None => continue,
            }
        }
        let at = format!("{name}:line {}", i + 1);
        match serde_json::from_slice::<Value>(line) {
            Ok(v) => values.push((at, v)),
            Err(e) => errors.push(format!("{at}: not JSON ({e})")),
        }
    }
    if !errors.is_empty() {
        // Perhaps one pretty-printed document (or several, concatenated).
        let whole: Result<Vec<Value>, _> = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>().collect();
        if let Ok(docs) = whole {
            if !docs.is_empty() {
                values = docs.into_iter().map(|v| (name.to_string(), v)).collect();
                errors.clear();
            }
        }
    }
    let mut events = Vec::new();
    for (at, v) in values {
        extract(&at, v, true, &mut events, &mut errors);
    }
    (events, errors)
}

pub use proxy_audit_core::export::RECORD_MARKER;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One top-level JSON value: an event, an OTLP request, or an array of those.
fn extract(at: &str, v: Value, top: bool, events: &mut Vec<Value>, errors: &mut Vec<String>) {
    match v {
        Value::Object(ref map) if map.contains_key("resourceLogs") => extract_otlp(at, map, events, errors),
        Value::Object(ref map) if ["chain", "kind", "id", "schema"].iter().any(|k| map.contains_key(*k)) => {
            events.push(v)
        }
        Value::Array(items) if top => {
            for (i, item) in items.into_iter().enumerate() {
                extract(&format!("{at}[{i}]"), item, false, events, errors);
            }
        }
        Value::Object(ref map) if top => match access_log_event(map) {
            Some(AccessLog::Event(ev)) => events.push(ev),
            Some(AccessLog::NoEvent) => {}
            None => errors.push(format!("{at}: neither an audit event nor an OTLP ExportLogsServiceRequest")),
        },
        _ => errors.push(format!("{at}: neither an audit event nor an OTLP ExportLogsServiceRequest")),
    }
}

/// The field names an access-log format gives the sealed event.
const ACCESS_LOG_FIELDS: [&str; 3] = ["audit_event", "event", "proxy_audit_event"];

enum AccessLog {
    Event(Value),
    /// A record of a request that has no event (the filter did not see it,
    /// Envoy writes `-` or null for absent filter state).
    NoEvent,
}

/// An Envoy JSON access-log record carrying the sealed event in one of
/// [`ACCESS_LOG_FIELDS`] (a string holding the event JSON, or the object).
fn access_log_event(map: &serde_json::Map<String, Value>) -> Option<AccessLog> {
    let mut named = false;
    for key in ACCESS_LOG_FIELDS {
        let Some(v) = map.get(key) else { continue };
        named = true;
        let ev = match v {
            Value::String(s) if s.starts_with('{') => serde_json::from_str::<Value>(s).ok(),
            Value::Object(_) => Some(v.clone()),
            // `-`, null, empty: no event for this request.
            _ => continue,
        };
        // Something that should be an event and is not: unreadable input.
        return ev.filter(|e| e.get("chain").is_some()).map(AccessLog::Event);
    }
    named.then_some(AccessLog::NoEvent)
}

fn extract_otlp(at: &str, req: &serde_json::Map<String, Value>, events: &mut Vec<Value>, errors: &mut Vec<String>) {
    let Some(resource_logs) = req.get("resourceLogs").and_then(Value::as_array) else {
        errors.push(format!("{at}: resourceLogs is not an array"));
        return;
    };
    for (r, rl) in resource_logs.iter().enumerate() {
        let scopes = rl.get("scopeLogs").or_else(|| rl.get("instrumentationLibraryLogs")).and_then(Value::as_array);
        for (s, sl) in scopes.into_iter().flatten().enumerate() {
            let records = sl.get("logRecords").and_then(Value::as_array);
            for (k, rec) in records.into_iter().flatten().enumerate() {
                let here = format!("{at}: resourceLogs[{r}].scopeLogs[{s}].logRecords[{k}]");
                let ours = rec.get("eventName").and_then(Value::as_str).is_some_and(|n| n.starts_with("proxy_audit."));
                let body = rec.get("body").and_then(|b| b.get("stringValue")).and_then(Value::as_str);
                let parsed = body.map(serde_json::from_str::<Value>);
                match parsed {
                    Some(Ok(ev @ Value::Object(_))) if ours || ev.get("chain").is_some() => events.push(ev),
                    // Someone else's log record in a shared collector file.
                    _ if !ours => {}
                    Some(Ok(_)) => errors.push(format!("{here}: body is not a JSON object")),
                    Some(Err(e)) => errors.push(format!("{here}: body.stringValue is not JSON ({e})")),
                    None => errors.push(format!("{here}: no body.stringValue")),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Verification

/// One distinct event, as far as the chain is concerned.
#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    id: Option<String>,
    kind: Option<String>,
    prev: Option<String>,
    hash: Option<String>,
    computed: String,
    hash_ok: bool,
    /// `loss`: trail.first_seq..=trail.last_seq.
    loss: Option<(u64, u64)>,
    /// `loss` with `trail.emitter`: the chain the loss is declared for.
    loss_for: Option<String>,
    /// `checkpoint`: trail.head_seq, trail.head_hash.
    attests: Option<(u64, String)>,
    /// A `checkpoint` with `trail.reason` `end`: the emitter retired here.
    end: bool,
    time_ms: Option<u64>,
}

impl Entry {
    /// The hash the next event links to.
    fn link_hash(&self) -> &str {
        self.hash.as_deref().unwrap_or(&self.computed)
    }
}

/// A gap declared in another emitter's chain: `first..=last` of the target,
/// declared by the `loss` event at seq `at` of emitter `by`.
#[derive(Debug, Clone)]
struct Foreign {
    first: u64,
    last: u64,
    by: String,
    at: u64,
}

/// One emitter after the chain checks, kept for the checkpoint checks.
struct Checked {
    /// The event standing for each seq.
    by_seq: BTreeMap<u64, Entry>,
    last_seq: u64,
    /// Gaps other emitters declared (accepted ones): the only declarations
    /// that can cover seqs past the last event (a chain's own `loss` event
    /// always comes after the seqs it declares).
    declared_elsewhere: Vec<(u64, u64)>,
}

/// Verifies with `SEQ:HASH` checkpoints (see [`verify_with`]), for chains
/// that are still being written: open chains are reported, not failed.
pub fn verify(events: Vec<Value>, checkpoints: &[(u64, String)]) -> Report {
    let cps: Vec<Checkpoint> = checkpoints
        .iter()
        .map(|(seq, hash)| Checkpoint { emitter: None, seq: *seq, hash: hash.trim().to_ascii_lowercase() })
        .collect();
    let mut report = verify_with(events, &cps);
    report.set_live(Live::All);
    report
}

/// Parses every input and verifies the whole set (events of one emitter may be
/// spread over several files). Unreadable parts land in `Report::unreadable`.
pub fn verify_inputs(inputs: &[(&str, &[u8])], checkpoints: &[Checkpoint]) -> Report {
    let mut events = Vec::new();
    let mut unreadable = Vec::new();
    for (name, bytes) in inputs {
        let (evs, errs) = parse_events_lossy(name, bytes);
        events.extend(evs);
        unreadable.extend(errs);
    }
    let mut report = verify_with(events, checkpoints);
    report.unreadable.extend(unreadable);
    report
}

pub fn verify_with(events: Vec<Value>, checkpoints: &[Checkpoint]) -> Report {
    let mut breaks = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut dups: HashMap<String, u64> = HashMap::new();
    let mut ids: HashMap<String, (String, u64, String)> = HashMap::new();
    let mut groups: BTreeMap<String, Vec<Entry>> = BTreeMap::new();

    for ev in events {
        let computed = compute_hash(&ev);
        let declared = ev.get("chain").and_then(|c| c.get("hash"));
        let key = (computed.clone(), declared.map(jcs::canonicalize).unwrap_or_default());
        let emitter_field = ev
            .get("chain")
            .and_then(|c| c.get("emitter"))
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .map(str::to_string);
        if !seen.insert(key) {
            *dups.entry(emitter_field.unwrap_or_else(|| "?".into())).or_default() += 1;
            continue;
        }
        let Some(entry) = read_entry(&ev, computed, emitter_field.as_deref(), &mut breaks) else {
            continue;
        };
        let Some(emitter) = emitter_field else {
            continue;
        };
        // Same id, different content.
        if let Some(id) = &entry.id {
            let whole = sha256_hex(jcs::canonicalize(&ev).as_bytes());
            match ids.get(id) {
                Some((e, s, w)) if *w != whole => breaks.push(Break {
                    emitter: emitter.clone(),
                    seq: entry.seq,
                    problem: Problem::Duplicate,
                    detail: format!("id {id} also appears as emitter {e} seq {s} with different content"),
                }),
                Some(_) => {}
                None => {
                    ids.insert(id.clone(), (emitter.clone(), entry.seq, whole));
                }
            }
        }
        groups.entry(emitter).or_default().push(entry);
    }

    // Losses that one emitter declares for another (valid events only).
    let mut elsewhere: BTreeMap<String, Vec<Foreign>> = BTreeMap::new();
    for (emitter, entries) in &groups {
        for e in entries.iter().filter(|e| e.hash_ok) {
            if let (Some((first, last)), Some(target)) = (e.loss, e.loss_for.as_ref().filter(|t| *t != emitter)) {
                let f = Foreign { first, last, by: emitter.clone(), at: e.seq };
                elsewhere.entry(target.clone()).or_default().push(f);
            }
        }
    }
    for target in elsewhere.keys() {
        // Every event of that emitter lost: it still gets its line.
        groups.entry(target.clone()).or_default();
    }

    let mut reports: BTreeMap<String, (EmitterReport, Vec<Break>)> = BTreeMap::new();
    let mut checked: BTreeMap<String, Checked> = BTreeMap::new();
    for (emitter, entries) in &groups {
        let duplicates = dups.get(emitter).copied().unwrap_or(0);
        let by_others = elsewhere.get(emitter).cloned().unwrap_or_default();
        let mut own = Vec::new();
        let (rep, state) = check_emitter(emitter, entries.clone(), by_others, duplicates, &mut own);
        reports.insert(emitter.clone(), (rep, own));
        checked.insert(emitter.clone(), state);
    }

    // A chain anchored by an external checkpoint cannot lose events
    // unnoticed; a gap in it counts as declared by another emitter only when
    // that emitter's chain is anchored too, past its `loss` event (anyone can
    // write a chain that declares someone else's gap).
    // A chain is anchored when a checkpoint is about it, whether or not it
    // holds (a deleted tail makes it fail to hold); a declaring chain counts
    // as attested only up to a checkpoint that holds.
    let mut anchored: HashSet<&String> = HashSet::new();
    let mut attested: HashMap<&String, u64> = HashMap::new();
    for cp in checkpoints {
        if let Some((name, c)) = resolve_checkpoint(cp, &checked) {
            anchored.insert(name);
            if checkpoint_holds(cp, c) {
                let head = attested.entry(name).or_insert(cp.seq);
                *head = (*head).max(cp.seq);
            }
        }
    }
    let mut redo: Vec<(String, Vec<Foreign>, Vec<Foreign>)> = Vec::new();
    for (target, foreign) in &elsewhere {
        if !anchored.contains(target) {
            continue;
        }
        let (keep, drop): (Vec<Foreign>, Vec<Foreign>) =
            foreign.iter().cloned().partition(|f| attested.get(&f.by).is_some_and(|head| *head >= f.at));
        if !drop.is_empty() {
            redo.push((target.clone(), keep, drop));
        }
    }
    for (target, keep, drop) in redo {
        let (Some(entries), Some(slot)) = (groups.get(&target), reports.get_mut(&target)) else { continue };
        let mut own = Vec::new();
        let duplicates = dups.get(&target).copied().unwrap_or(0);
        let (rep, state) = check_emitter(&target, entries.clone(), keep, duplicates, &mut own);
        for b in own.iter_mut().filter(|b| b.problem == Problem::Missing) {
            if let Some(f) = drop.iter().find(|f| f.first <= b.seq && b.seq <= f.last) {
                b.detail.push_str(&format!(
                    " (declared only by {} at seq {}, which no checkpoint attests: not accepted for an anchored chain)",
                    f.by, f.at
                ));
            }
        }
        *slot = (rep, own);
        checked.insert(target, state);
    }
    let mut emitters = Vec::new();
    for (_, (rep, own)) in reports {
        emitters.push(rep);
        breaks.extend(own);
    }

    for cp in checkpoints {
        check_checkpoint(cp, &checked, &mut breaks);
    }

    // Open chains: no end record, and no external checkpoint that holds at
    // (or past) the last event.
    let open = emitters
        .iter()
        .filter(|e| !e.ended)
        .filter(|e| {
            let tail_anchored = checkpoints.iter().any(|cp| {
                resolve_checkpoint(cp, &checked)
                    .is_some_and(|(n, c)| *n == e.emitter && cp.seq >= c.last_seq && checkpoint_holds(cp, c))
            });
            e.events == 0 || !tail_anchored
        })
        .map(|e| Open { emitter: e.emitter.clone(), last_seq: (e.events > 0).then_some(e.last_seq), live: false })
        .collect();

    breaks.sort_by(|a, b| (&a.emitter, a.seq).cmp(&(&b.emitter, b.seq)));
    Report { emitters, breaks, open, unreadable: Vec::new() }
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn short(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

/// Reads the chain fields; reports a `malformed` break and returns None when
/// the event cannot be placed in a chain (no emitter or seq).
fn read_entry(ev: &Value, computed: String, emitter: Option<&str>, breaks: &mut Vec<Break>) -> Option<Entry> {
    let id = ev.get("id").and_then(Value::as_str).map(str::to_string);
    let who = || match &id {
        Some(id) => format!("event {id}"),
        None => "event without id".to_string(),
    };
    let chain = ev.get("chain");
    let seq = chain.and_then(|c| c.get("seq")).and_then(Value::as_u64);
    let mut malformed = |seq: Option<u64>, detail: String| {
        breaks.push(Break {
            emitter: emitter.unwrap_or("?").to_string(),
            seq: seq.unwrap_or(UNKNOWN_SEQ),
            problem: Problem::Malformed,
            detail,
        })
    };
    let Some(chain) = chain.filter(|c| c.is_object()) else {
        malformed(None, format!("{} has no chain object", who()));
        return None;
    };
    if emitter.is_none() {
        malformed(seq, format!("{} has no chain.emitter string", who()));
        return None;
    }
    let Some(seq) = seq else {
        malformed(None, format!("{} has no chain.seq (non-negative integer)", who()));
        return None;
    };
    let field = |k: &str| chain.get(k).and_then(Value::as_str).map(str::to_string);
    let (prev, hash) = (field("prev"), field("hash"));
    for (k, v) in [("prev", &prev), ("hash", &hash)] {
        if !v.as_deref().is_some_and(is_hash) {
            malformed(Some(seq), format!("{} has no chain.{k} of 64 lowercase hex digits", who()));
        }
    }
    let prev = prev.filter(|p| is_hash(p));
    let hash = hash.filter(|h| is_hash(h));
    let hash_ok = hash.as_deref() == Some(computed.as_str());
    let kind = ev.get("kind").and_then(Value::as_str).map(str::to_string);
    let trail = ev.get("trail");
    let trail_u64 = |k: &str| trail.and_then(|t| t.get(k)).and_then(Value::as_u64);
    let loss = match (kind.as_deref(), trail_u64("first_seq"), trail_u64("last_seq")) {
        (Some("loss"), Some(a), Some(b)) if a <= b => Some((a, b)),
        _ => None,
    };
    let loss_for = loss
        .and(trail.and_then(|t| t.get("emitter")).and_then(Value::as_str))
        .filter(|t| !t.is_empty() && Some(*t) != emitter)
        .map(str::to_string);
    let attests = match (kind.as_deref(), trail_u64("head_seq")) {
        (Some("checkpoint"), Some(s)) => trail
            .and_then(|t| t.get("head_hash"))
            .and_then(Value::as_str)
            .filter(|h| is_hash(h))
            .map(|h| (s, h.to_string())),
        _ => None,
    };
    let end = attests.is_some() && trail.and_then(|t| t.get("reason")).and_then(Value::as_str) == Some("end");
    let time_ms = ev.get("time").and_then(Value::as_str).and_then(proxy_audit_core::timefmt::parse_rfc3339_millis);
    Some(Entry { seq, id, kind, prev, hash, computed, hash_ok, loss, loss_for, attests, end, time_ms })
}

fn check_emitter(
    emitter: &str,
    entries: Vec<Entry>,
    foreign: Vec<Foreign>,
    duplicates: u64,
    breaks: &mut Vec<Break>,
) -> (EmitterReport, Checked) {
    let mut brk = |seq: u64, problem: Problem, detail: String| {
        breaks.push(Break { emitter: emitter.to_string(), seq, problem, detail })
    };
    let events = entries.len() as u64;

    // Hash of each entry (declared and recomputed) -> seq, to name where a
    // misplaced prev points.
    let mut hash_seq: HashMap<&str, u64> = HashMap::new();
    for e in &entries {
        hash_seq.entry(e.computed.as_str()).or_insert(e.seq);
        if let Some(h) = &e.hash {
            hash_seq.insert(h.as_str(), e.seq);
        }
    }

    let mut by_seq: BTreeMap<u64, Vec<&Entry>> = BTreeMap::new();
    for e in &entries {
        by_seq.entry(e.seq).or_default().push(e);
    }

    let mut declared: Vec<(u64, u64)> = entries
        .iter()
        .filter(|e| e.hash_ok && e.loss_for.is_none())
        .filter_map(|e| e.loss)
        .chain(foreign.iter().map(|f| (f.first, f.last)))
        .collect();
    declared.sort_unstable();
    declared.dedup();

    let mut chosen: BTreeMap<u64, Entry> = BTreeMap::new();
    let mut prev_rep: Option<(u64, String)> = None; // (seq, link hash)
    let mut expected: u64 = 0; // next seq without a gap
    for (&seq, cands) in &by_seq {
        for e in cands {
            if let (Some(h), false) = (&e.hash, e.hash_ok) {
                brk(
                    seq,
                    Problem::Modified,
                    format!(
                        "{}: chain.hash {}… but the content hashes to {}…",
                        describe(e),
                        short(h),
                        short(&e.computed)
                    ),
                );
            }
        }
        let valid: Vec<&&Entry> = cands.iter().filter(|e| e.hash_ok).collect();
        if valid.len() > 1 {
            let ids: Vec<String> = valid.iter().map(|e| describe(e)).collect();
            brk(
                seq,
                Problem::Duplicate,
                format!("{} different events with valid hashes claim this seq (fork): {}", valid.len(), ids.join(", ")),
            );
        }
        // The event that stands for this seq: valid hash first, then the one
        // linking to the previous seq.
        let links = |e: &Entry| match &prev_rep {
            Some((s, h)) if s.checked_add(1) == Some(seq) => e.prev.as_deref() == Some(h),
            _ => false,
        };
        let Some(rep) = cands
            .iter()
            .max_by_key(|e| (e.hash_ok, links(e), std::cmp::Reverse(e.hash.is_none())))
            .map(|e| (*e).clone())
        else {
            continue;
        };

        // Gap before this seq.
        if seq > expected {
            report_gap(expected, seq - 1, &declared, &mut brk);
        }
        expected = seq.saturating_add(1);

        // Links.
        if seq == 0 {
            if rep.kind.as_deref() != Some("chain_start") {
                brk(
                    0,
                    Problem::BadPrev,
                    format!(
                        "seq 0 is {} ({}), but a chain starts with a chain_start event",
                        rep.kind.as_deref().map_or("an event without kind".to_string(), |k| format!("a {k} event")),
                        rep.id.as_deref().unwrap_or("no id")
                    ),
                );
            }
            if let Some(p) = rep.prev.as_deref().filter(|p| *p != ZERO_HASH) {
                let at = hash_seq.get(p).map(|s| format!(" (the hash of seq {s})")).unwrap_or_default();
                brk(0, Problem::BadPrev, format!("seq 0 has prev {}…{at}, not 64 zeros", short(p)));
            }
        } else if let Some(p) = rep.prev.as_deref() {
            let before = prev_rep.as_ref().filter(|(s, _)| s.checked_add(1) == Some(seq));
            let elsewhere = hash_seq.get(p).copied().filter(|s| s.checked_add(1) != Some(seq));
            match (before, elsewhere) {
                (Some((_, h)), _) if h == p => {}
                // Links to seq N-1's content, whose chain.hash was altered
                // (already reported as modified there).
                (Some(_), None) if hash_seq.contains_key(p) => {}
                (_, Some(m)) => brk(
                    seq,
                    Problem::Reordered,
                    format!("prev {}… is the hash of seq {m}, not of seq {}", short(p), seq - 1),
                ),
                (Some((_, h)), None) => brk(
                    seq,
                    Problem::BadPrev,
                    format!("prev {}… is not the hash of seq {} ({}…)", short(p), seq - 1, short(h)),
                ),
                // Seq N-1 absent: the gap is reported; nothing to link to.
                (None, None) => {}
            }
        }
        prev_rep = Some((seq, rep.link_hash().to_string()));
        chosen.insert(seq, rep);
    }

    // Heads attested by the emitter's own checkpoint events.
    for cp in chosen.values().filter(|e| e.hash_ok) {
        if let Some((s, h)) = &cp.attests {
            if let Some(target) = chosen.get(s) {
                if target.link_hash() != h {
                    brk(
                        *s,
                        Problem::Modified,
                        format!(
                            "checkpoint event at seq {} attests hash {}…, the event has {}…",
                            cp.seq,
                            short(h),
                            short(target.link_hash())
                        ),
                    );
                }
            }
        }
    }

    let first_seq = chosen.keys().next().copied().unwrap_or(0);
    let (last_seq, head) =
        chosen.iter().next_back().map(|(s, e)| (*s, e.link_hash().to_string())).unwrap_or((0, String::new()));
    let last = chosen.values().next_back();
    // An end record counts when it is valid and attests the seq before it.
    let ended = last.is_some_and(|e| {
        e.end && e.hash_ok && e.attests.as_ref().is_some_and(|(s, _)| s.checked_add(1) == Some(e.seq))
    });
    let present_though_declared =
        chosen.keys().filter(|s| declared.iter().any(|(a, b)| a <= *s && *s <= b)).count() as u64;
    let report = EmitterReport {
        emitter: emitter.to_string(),
        events,
        first_seq,
        last_seq,
        head,
        declared_lost: declared,
        declared_by: foreign.iter().map(|f| (f.first, f.last, f.by.clone())).collect(),
        duplicates,
        ended,
        last_time_ms: last.and_then(|e| e.time_ms),
        present_though_declared,
    };
    let mut declared_elsewhere: Vec<(u64, u64)> = foreign.iter().map(|f| (f.first, f.last)).collect();
    declared_elsewhere.sort_unstable();
    (report, Checked { by_seq: chosen, last_seq, declared_elsewhere })
}

fn describe(e: &Entry) -> String {
    match (&e.id, &e.kind) {
        (Some(id), Some(k)) => format!("{k} event {id}"),
        (Some(id), None) => format!("event {id}"),
        (None, Some(k)) => format!("{k} event"),
        (None, None) => "event".to_string(),
    }
}

/// Reports the parts of `a..=b` that no declared loss covers, one `missing`
/// break per contiguous range, at its first seq.
fn report_gap(a: u64, b: u64, declared: &[(u64, u64)], brk: &mut impl FnMut(u64, Problem, String)) {
    let mut from = a; // first seq not yet accounted for
    let mut done = false;
    for &(da, db) in declared {
        if done || da > b {
            break;
        }
        if db < from {
            continue;
        }
        if da > from {
            missing_range(from, da - 1, brk);
        }
        match db.checked_add(1) {
            Some(next) if db < b => from = next,
            _ => done = true,
        }
    }
    if !done && from <= b {
        missing_range(from, b, brk);
    }
}

/// Whether the declared losses cover every seq of `a..=b`.
fn covered(a: u64, b: u64, declared: &[(u64, u64)]) -> bool {
    let mut missing = false;
    report_gap(a, b, declared, &mut |_, _, _| missing = true);
    !missing
}

fn missing_range(x: u64, y: u64, brk: &mut impl FnMut(u64, Problem, String)) {
    let detail = if x == y {
        format!("seq {x} absent, no loss event declares it")
    } else {
        let n = (y - x).saturating_add(1);
        format!("seq {x}..{y} absent ({n} events), no loss event declares them")
    };
    brk(x, Problem::Missing, detail);
}

fn checkpoint_holds(cp: &Checkpoint, c: &Checked) -> bool {
    c.by_seq.get(&cp.seq).is_some_and(|e| e.link_hash() == cp.hash)
        || cp
            .seq
            .checked_add(1)
            .and_then(|n| c.by_seq.get(&n))
            .is_some_and(|e| e.prev.as_deref() == Some(cp.hash.as_str()))
}

/// The emitter a checkpoint is about: the one it names; without a name, the
/// one whose chain holds that hash at that seq, else the only candidate.
fn resolve_checkpoint<'a>(
    cp: &Checkpoint,
    checked: &'a BTreeMap<String, Checked>,
) -> Option<(&'a String, &'a Checked)> {
    if let Some(e) = &cp.emitter {
        return checked.get_key_value(e);
    }
    let at_seq = || checked.iter().filter(|(_, c)| c.by_seq.contains_key(&cp.seq));
    checked
        .iter()
        .find(|(_, c)| checkpoint_holds(cp, c))
        .or_else(|| (checked.len() == 1).then(|| checked.iter().next()).flatten())
        .or_else(|| (at_seq().count() == 1).then(|| at_seq().next()).flatten())
        .or_else(|| {
            let mut short_ones = checked.iter().filter(|(_, c)| c.last_seq < cp.seq);
            match (short_ones.next(), short_ones.next(), at_seq().next()) {
                (Some(one), None, None) => Some(one),
                _ => None,
            }
        })
}

fn check_checkpoint(cp: &Checkpoint, checked: &BTreeMap<String, Checked>, breaks: &mut Vec<Break>) {
    let label = match &cp.emitter {
        Some(e) => format!("checkpoint {e}@{}:{}…", cp.seq, short(&cp.hash)),
        None => format!("checkpoint {}:{}…", cp.seq, short(&cp.hash)),
    };
    let next = cp.seq.checked_add(1);
    let emitter = resolve_checkpoint(cp, checked);
    if let (None, Some(e)) = (emitter, &cp.emitter) {
        breaks.push(Break {
            emitter: e.clone(),
            seq: 0,
            problem: Problem::Truncated,
            detail: format!("{label}: no events of this emitter in the input"),
        });
        return;
    }
    let Some((name, c)) = emitter else {
        let problem =
            if checked.values().all(|c| c.last_seq < cp.seq) { Problem::Truncated } else { Problem::Modified };
        breaks.push(Break {
            emitter: "?".into(),
            seq: cp.seq,
            problem,
            detail: format!(
                "{label}: no emitter among {} holds this hash at this seq (give EMITTER@SEQ:HASH to name one)",
                checked.len()
            ),
        });
        return;
    };
    let mut brk =
        |seq: u64, problem: Problem, detail: String| breaks.push(Break { emitter: name.clone(), seq, problem, detail });
    if checkpoint_holds(cp, c) {
        return;
    }
    if let Some(e) = c.by_seq.get(&cp.seq) {
        brk(cp.seq, Problem::Modified, format!("{label}, but the event there has hash {}…", short(e.link_hash())));
    } else if cp.seq > c.last_seq || c.by_seq.is_empty() {
        let first = if c.by_seq.is_empty() { 0 } else { c.last_seq.saturating_add(1) };
        if covered(first, cp.seq, &c.declared_elsewhere) {
            // The tail is gone, but declared lost: reported as a LOSS line.
            return;
        }
        brk(
            first,
            Problem::Truncated,
            format!(
                "{label}, but the chain ends at seq {}: seq {first}..{} absent (tail truncated)",
                c.last_seq, cp.seq
            ),
        );
    } else if let Some(e) = next.and_then(|n| c.by_seq.get(&n)) {
        // The checkpointed event itself is absent (reported as a gap or a
        // declared loss), but its successor links elsewhere.
        brk(
            cp.seq,
            Problem::Modified,
            format!(
                "{label}, but seq {} links to {}…",
                cp.seq.saturating_add(1),
                short(e.prev.as_deref().unwrap_or("?"))
            ),
        );
    }
}

// ---------------------------------------------------------------------------
// Output

impl Report {
    /// Marks the open chains that `live` counts as still being written.
    pub fn set_live(&mut self, live: Live) {
        let newest = self.emitters.iter().filter_map(|e| e.last_time_ms).max().unwrap_or(0);
        for o in &mut self.open {
            let last = self.emitters.iter().find(|e| e.emitter == o.emitter).and_then(|e| e.last_time_ms);
            o.live = match live {
                Live::No => false,
                Live::All => true,
                Live::Within(ms) => last.is_some_and(|t| t.saturating_add(ms) >= newest),
            };
        }
    }

    /// Open chains that fail the verdict (not live).
    pub fn cut(&self) -> impl Iterator<Item = &Open> {
        self.open.iter().filter(|o| !o.live)
    }

    /// Emitter lines, then breaks, declared losses, unreadable input and a
    /// summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.emitters {
            out.push_str(&format!(
                "emitter {}: {} events, seq {}..{}, head {}\n",
                e.emitter, e.events, e.first_seq, e.last_seq, e.head
            ));
        }
        for b in &self.breaks {
            let seq = if b.seq == UNKNOWN_SEQ && b.problem == Problem::Malformed {
                "?".to_string()
            } else {
                b.seq.to_string()
            };
            out.push_str(&format!("BREAK emitter {} seq {seq}: {}: {}\n", b.emitter, b.problem, b.detail));
        }
        for e in &self.emitters {
            for (a, b) in &e.declared_lost {
                let by = e
                    .declared_by
                    .iter()
                    .find(|(x, y, _)| (x, y) == (a, b))
                    .map(|(_, _, by)| format!(" by {by}"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "LOSS emitter {} seq {a}..{b} declared{by} ({} events)\n",
                    e.emitter,
                    (b - a).saturating_add(1)
                ));
            }
            if e.present_though_declared > 0 {
                out.push_str(&format!(
                    "PRESENT emitter {}: {} events declared lost are in the input after all (stored, not acknowledged)\n",
                    e.emitter, e.present_though_declared
                ));
            }
        }
        for o in &self.open {
            let after = match o.last_seq {
                Some(s) => format!("events after seq {s} may be missing"),
                None => "none of its events is in the input".to_string(),
            };
            let note = if o.live { " (live: still being written)" } else { "" };
            out.push_str(&format!("OPEN emitter {}: no end record; {after}{note}\n", o.emitter));
        }
        for u in &self.unreadable {
            out.push_str(&format!("UNREADABLE {u}\n"));
        }
        let events: u64 = self.emitters.iter().map(|e| e.events).sum();
        let dups: u64 = self.emitters.iter().map(|e| e.duplicates).sum();
        let dup_note = if dups > 0 { format!(", {dups} duplicate deliveries ignored") } else { String::new() };
        let cut = self.cut().count();
        let verdict = match self.exit_code() {
            0 => "OK: every chain holds".to_string(),
            1 if self.breaks.is_empty() => format!(
                "FAILED: {cut} open chain(s): events after their last seq may be missing (--live if they are still being written)"
            ),
            1 if cut > 0 => format!("FAILED: {} break(s), {cut} open chain(s)", self.breaks.len()),
            1 => format!("FAILED: {} break(s)", self.breaks.len()),
            _ => format!(
                "UNREADABLE: {} part(s) of the input could not be read, {} break(s)",
                self.unreadable.len(),
                self.breaks.len()
            ),
        };
        out.push_str(&format!("{verdict} ({} emitters, {events} events{dup_note})\n", self.emitters.len()));
        out
    }

    /// 0 when every chain holds, 1 when one breaks or is open (not live), 2
    /// when input was unreadable.
    pub fn exit_code(&self) -> i32 {
        if !self.unreadable.is_empty() {
            2
        } else if !self.breaks.is_empty() || self.cut().next().is_some() {
            1
        } else {
            0
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // fixtures; a wrong index is a test bug
mod tests {
    use super::*;
    use proxy_audit_core::chain::Chain;
    use serde_json::{json, Map};

    /// Builds chains with `Chain::seal`, keeping the shipped NDJSON lines.
    struct Emitter {
        chain: Chain,
        no: u64,
        lines: Vec<String>,
        hashes: Vec<String>,
    }

    impl Emitter {
        fn new(name: &str, no: u64) -> Self {
            let mut e = Emitter { chain: Chain::new(name), no, lines: Vec::new(), hashes: Vec::new() };
            e.push("chain_start", json!({"reason": "start"}));
            e
        }

        fn event(&self, kind: &str) -> Map<String, Value> {
            let seq = self.chain.next_seq();
            let mut m = Map::new();
            m.insert("schema".into(), json!("proxy-audit/1"));
            m.insert("id".into(), json!(format!("{:016x}{:016x}", self.no, seq)));
            m.insert("time".into(), json!(proxy_audit_core::timefmt::rfc3339_millis(1_795_000_000_000 + seq * 10)));
            m.insert("kind".into(), json!(kind));
            m
        }

        /// Seals one event; returns its line (also kept unless `drop`).
        fn seal(&mut self, mut m: Map<String, Value>, keep: bool) -> String {
            let sealed = self.chain.seal(&mut m);
            self.hashes.push(sealed.hash.clone());
            if keep {
                self.lines.push(sealed.line.clone());
            }
            sealed.line
        }

        fn push(&mut self, kind: &str, trail: Value) {
            let mut m = self.event(kind);
            if kind == "access" {
                m.insert("outcome".into(), json!({"status_code": 200}));
                m.insert("action".into(), json!({"method": "GET", "path": "/patients/{id}"}));
            } else {
                m.insert("trail".into(), trail);
            }
            self.seal(m, true);
        }

        fn access(&mut self, n: usize) {
            for _ in 0..n {
                self.push("access", Value::Null);
            }
        }
    }

    fn chain(n: usize) -> Emitter {
        let mut e = Emitter::new("node-1/abcd/0", 1);
        e.access(n.saturating_sub(1));
        e
    }

    fn values(lines: &[String]) -> Vec<Value> {
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or(Value::Null)).collect()
    }

    fn run(lines: &[String]) -> Report {
        let text = lines.join("\n");
        let events = parse_events("t.ndjson", text.as_bytes());
        assert!(events.is_ok(), "{events:?}");
        verify(events.unwrap_or_default(), &[])
    }

    fn problems(r: &Report) -> Vec<(u64, Problem)> {
        r.breaks.iter().map(|b| (b.seq, b.problem)).collect()
    }

    /// Re-serializes an edited event, optionally resealing its hash.
    fn edit(line: &str, reseal: bool, f: impl FnOnce(&mut Value)) -> String {
        let mut v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        f(&mut v);
        if reseal {
            let h = compute_hash(&v);
            v["chain"]["hash"] = json!(h);
        }
        v.to_string()
    }

    impl Emitter {
        /// The `end` checkpoint of an orderly retirement.
        fn end(&mut self) {
            let seq = self.chain.next_seq() - 1;
            let head = self.hashes[seq as usize].clone();
            self.push("checkpoint", json!({"head_seq": seq, "head_hash": head, "reason": "end"}));
        }
    }

    fn strict(lines: &[String], live: Live) -> Report {
        let text = lines.join("\n");
        let mut r = verify_inputs(&[("t.ndjson", text.as_bytes())], &[]);
        r.set_live(live);
        r
    }

    /// A chain without its end record is open: its tail may be gone, so it
    /// fails unless the caller says it is still being written.
    #[test]
    fn a_cut_chain_is_open_unless_live() {
        let mut a = chain(5);
        let r = strict(&a.lines, Live::No);
        assert_eq!((r.exit_code(), r.breaks.len()), (1, 0), "{}", r.render());
        assert_eq!(r.open, vec![Open { emitter: "node-1/abcd/0".into(), last_seq: Some(4), live: false }]);
        assert!(r.render().contains("OPEN emitter node-1/abcd/0: no end record; events after seq 4 may be missing"));
        assert_eq!(strict(&a.lines, Live::All).exit_code(), 0);
        a.end();
        let r = strict(&a.lines, Live::No);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert!(r.emitters[0].ended);
        // An event after the end record opens the chain again.
        a.access(1);
        assert_eq!(strict(&a.lines, Live::No).exit_code(), 1);
        // An end record that attests another seq does not close it.
        let mut b = chain(3);
        let head = b.hashes[1].clone();
        b.push("checkpoint", json!({"head_seq": 1, "head_hash": head, "reason": "end"}));
        assert_eq!(strict(&b.lines, Live::No).cut().count(), 1);
    }

    /// `--live-within`: only chains whose last event is recent, relative to
    /// the newest event of the input, are still being written.
    #[test]
    fn live_within_a_time_bound() {
        let old = chain(2); // last event at +10 ms
        let mut new = Emitter::new("node-2/x/1", 2);
        for _ in 0..300 {
            new.access(1); // 10 ms apart: last at +3,000 ms
        }
        let lines: Vec<String> = old.lines.iter().chain(&new.lines).cloned().collect();
        let r = strict(&lines, Live::Within(1_000));
        let cut: Vec<&str> = r.cut().map(|o| o.emitter.as_str()).collect();
        assert_eq!(cut, vec!["node-1/abcd/0"], "{}", r.render());
        assert_eq!(strict(&lines, Live::Within(5_000)).exit_code(), 0);
    }

    /// The second path: Envoy's JSON access log carries each sealed event,
    /// Envoy's log the trail records of a retiring emitter; merged with what
    /// the log service got, copies ignored, the chain is whole.
    #[test]
    fn access_log_and_envoy_log_merge_with_the_log_service_trail() {
        let mut e = chain(6);
        e.end();
        let delivered: String = e.lines[..3].join("\n");
        let access: String = e.lines[1..6]
            .iter()
            .map(|l| json!({"status": 200, "audit_event": l}).to_string() + "\n")
            .chain([json!({"status": 404, "audit_event": "-"}).to_string(), json!({"event": null}).to_string()])
            .collect::<Vec<_>>()
            .join("\n");
        let envoy_log = format!(
            "[2026-12-01 23:01:11.759][6808][info][main] starting\n[2026-12-01 23:01:11.760][6808][warning][wasm] wasm log proxy_audit: {RECORD_MARKER}{}\n",
            e.lines[6]
        );
        let inputs = [
            ("sink.ndjson", delivered.as_bytes()),
            ("access.log", access.as_bytes()),
            ("envoy.log", envoy_log.as_bytes()),
        ];
        let r = verify_inputs(&inputs, &[]);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!((r.emitters[0].events, r.emitters[0].duplicates), (7, 2));
        // Without Envoy's log the end record is missing: open.
        let r = verify_inputs(&inputs[..2], &[]);
        assert_eq!(r.cut().count(), 1, "{}", r.render());
        // An access-log field that should hold an event and does not: unreadable.
        let bad = verify_inputs(&[("a.log", br#"{"audit_event": "{not json"}"#.as_slice())], &[]);
        assert_eq!(bad.exit_code(), 2);
    }

    /// Stored but never acknowledged: present and declared lost, counted once.
    #[test]
    fn present_though_declared_lost() {
        let mut e = chain(4);
        e.push("loss", json!({"lost_events": 2, "first_seq": 2, "last_seq": 3, "reason": "buffer_full"}));
        e.end();
        let r = strict(&e.lines, Live::No);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!(r.emitters[0].present_though_declared, 2);
        assert!(r.render().contains("PRESENT emitter node-1/abcd/0: 2 events declared lost"));
    }

    #[test]
    fn intact_chain_holds() {
        let e = chain(5);
        let r = run(&e.lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!(r.emitters.len(), 1);
        let em = &r.emitters[0];
        assert_eq!((em.events, em.first_seq, em.last_seq), (5, 0, 4));
        assert_eq!(em.head, e.hashes[4]);
        let out = r.render();
        assert!(out.starts_with(&format!("emitter node-1/abcd/0: 5 events, seq 0..4, head {}\n", e.hashes[4])));
        assert!(!out.contains("BREAK"));
    }

    #[test]
    fn modified_field_is_reported_at_its_seq() {
        let mut e = chain(5);
        e.lines[2] = edit(&e.lines[2], false, |v| v["outcome"]["status_code"] = json!(500));
        let r = run(&e.lines);
        assert_eq!(problems(&r), vec![(2, Problem::Modified)], "{}", r.render());
        assert_eq!(r.exit_code(), 1);
        assert!(r.render().contains("BREAK emitter node-1/abcd/0 seq 2: modified: "));
    }

    #[test]
    fn modified_and_rehashed_breaks_the_next_link() {
        let mut e = chain(5);
        e.lines[2] = edit(&e.lines[2], true, |v| v["outcome"]["status_code"] = json!(500));
        let r = run(&e.lines);
        assert_eq!(problems(&r), vec![(3, Problem::BadPrev)], "{}", r.render());
    }

    #[test]
    fn deleted_event_is_missing() {
        let mut e = chain(6);
        e.lines.remove(3);
        let r = run(&e.lines);
        assert_eq!(problems(&r), vec![(3, Problem::Missing)], "{}", r.render());
        assert!(r.render().contains("BREAK emitter node-1/abcd/0 seq 3: missing: seq 3 absent"));
        // Several in a row: one break naming the range.
        let mut e = chain(8);
        e.lines.drain(2..5);
        let r = run(&e.lines);
        assert_eq!(problems(&r), vec![(2, Problem::Missing)]);
        assert!(r.breaks[0].detail.contains("seq 2..4 absent (3 events)"));
        // The chain_start itself.
        let mut e = chain(3);
        e.lines.remove(0);
        assert_eq!(problems(&run(&e.lines)), vec![(0, Problem::Missing)]);
    }

    #[test]
    fn any_order_is_fine() {
        let mut e = chain(6);
        e.lines.swap(1, 4);
        assert_eq!(run(&e.lines).exit_code(), 0);
        e.lines.reverse();
        assert_eq!(run(&e.lines).exit_code(), 0);
        // Two emitters interleaved.
        let mut a = chain(4);
        let mut b = Emitter::new("node-2/ef01/1", 2);
        b.access(3);
        let mut lines = Vec::new();
        while !a.lines.is_empty() || !b.lines.is_empty() {
            lines.extend(a.lines.pop());
            lines.extend(b.lines.pop());
        }
        let r = run(&lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!(r.emitters.len(), 2);
        assert_eq!(r.emitters[1].events, 4);
    }

    #[test]
    fn swapped_seq_numbers_are_detected() {
        let mut e = chain(6);
        let (two, three) = (e.lines[2].clone(), e.lines[3].clone());
        e.lines[2] = edit(&three, false, |v| v["chain"]["seq"] = json!(2));
        e.lines[3] = edit(&two, false, |v| v["chain"]["seq"] = json!(3));
        let r = run(&e.lines);
        let p = problems(&r);
        assert!(p.contains(&(2, Problem::Modified)), "{}", r.render());
        assert!(p.contains(&(3, Problem::Modified)));
        assert!(p.contains(&(2, Problem::Reordered)));
        assert!(p.contains(&(4, Problem::Reordered)));
        assert_eq!(r.exit_code(), 1);
        assert!(r.render().contains("reordered: prev "));

        // Swapped and resealed: the links give it away.
        let mut e = chain(6);
        let (two, three) = (e.lines[2].clone(), e.lines[3].clone());
        e.lines[2] = edit(&three, true, |v| v["chain"]["seq"] = json!(2));
        e.lines[3] = edit(&two, true, |v| v["chain"]["seq"] = json!(3));
        let r = run(&e.lines);
        assert!(r.exit_code() == 1 && !problems(&r).is_empty(), "{}", r.render());
        assert!(problems(&r).iter().all(|(s, _)| (2..=4).contains(s)));
    }

    #[test]
    fn bad_prev_links() {
        let mut e = chain(5);
        e.lines[3] = edit(&e.lines[3], true, |v| v["chain"]["prev"] = json!("ab".repeat(32)));
        let r = run(&e.lines);
        assert!(problems(&r).contains(&(3, Problem::BadPrev)), "{}", r.render());
        assert!(r.render().contains("seq 3: bad prev: prev abababab"));

        // seq 0 must link to 64 zeros…
        let mut e = chain(3);
        e.lines[0] = edit(&e.lines[0], true, |v| v["chain"]["prev"] = json!("1".repeat(64)));
        e.lines[1] = edit(&e.lines[1], true, |v| v["chain"]["prev"] = v["chain"]["hash"].clone());
        let p = problems(&run(&e.lines));
        assert!(p.contains(&(0, Problem::BadPrev)), "{p:?}");

        // …and be a chain_start.
        let mut c = Chain::new("e");
        let mut lines = Vec::new();
        for kind in ["access", "access"] {
            let mut m = Map::new();
            m.insert("kind".into(), json!(kind));
            lines.push(c.seal(&mut m).line);
        }
        let r = run(&lines);
        assert_eq!(problems(&r), vec![(0, Problem::BadPrev)]);
        assert!(r.breaks[0].detail.contains("chain_start"));
    }

    #[test]
    fn declared_loss_is_not_a_break() {
        let mut e = chain(5);
        for _ in 0..2 {
            let m = e.event("access");
            e.seal(m, false); // sealed, then lost
        }
        e.push("loss", json!({"lost_events": 2, "first_seq": 5, "last_seq": 6}));
        e.access(2);
        let r = run(&e.lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!(r.emitters[0].declared_lost, vec![(5, 6)]);
        assert_eq!(r.emitters[0].events, 8);
        assert!(r.render().contains("LOSS emitter node-1/abcd/0 seq 5..6 declared (2 events)\n"));

        // A gap wider than declared: only the undeclared part is missing.
        let mut lines = e.lines.clone();
        lines.remove(4);
        let r = run(&lines);
        assert_eq!(problems(&r), vec![(4, Problem::Missing)], "{}", r.render());
        // A tampered loss event declares nothing.
        let mut lines = e.lines.clone();
        lines[5] = edit(&lines[5], false, |v| v["trail"]["last_seq"] = json!(7));
        let p = problems(&run(&lines));
        assert!(p.contains(&(5, Problem::Missing)) && p.contains(&(7, Problem::Modified)));
    }

    /// The shipping service declares, in its own chain, a gap in a worker's
    /// chain (`trail.emitter`). Accepted; but once the worker's chain is
    /// anchored by a checkpoint, only from a declaring chain that is
    /// anchored too (a made-up chain could declare any gap).
    #[test]
    fn loss_declared_by_another_emitter() {
        let mut w = Emitter::new("node-1/proxy_audit/w", 1);
        w.access(2);
        for _ in 0..2 {
            let m = w.event("access");
            w.seal(m, false); // seq 3, 4 dropped by the shipper
        }
        w.access(3);
        let mut shipper = Emitter::new("node-1/proxy_audit_shipper/s", 2);
        shipper
            .push("loss", json!({"emitter": "node-1/proxy_audit/w", "lost_events": 2, "first_seq": 3, "last_seq": 4}));
        shipper.access(1);
        let mut forger = Emitter::new("elsewhere/x", 3);
        forger
            .push("loss", json!({"emitter": "node-1/proxy_audit/w", "lost_events": 2, "first_seq": 3, "last_seq": 4}));
        let both: Vec<String> = w.lines.iter().chain(&shipper.lines).cloned().collect();
        let r = run(&both);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert!(r
            .render()
            .contains("LOSS emitter node-1/proxy_audit/w seq 3..4 declared by node-1/proxy_audit_shipper/s"));
        // Without the declaration the gap is missing; the shipper's loss is no gap of its own.
        let r = run(&w.lines);
        assert_eq!(problems(&r), vec![(3, Problem::Missing)], "{}", r.render());

        let cp = |name: &str, e: &Emitter, seq: usize| Checkpoint {
            emitter: Some(name.into()),
            seq: seq as u64,
            hash: e.hashes[seq].clone(),
        };
        let w_head = cp("node-1/proxy_audit/w", &w, 7);
        let evs = || values(&w.lines.iter().chain(&shipper.lines).chain(&forger.lines).cloned().collect::<Vec<_>>());
        // The worker anchored, the declaring chains not: the gap is missing again, and says why.
        let r = verify_with(evs(), std::slice::from_ref(&w_head));
        assert_eq!(problems(&r), vec![(3, Problem::Missing)], "{}", r.render());
        assert!(r.breaks[0].detail.contains("which no checkpoint attests"), "{}", r.render());
        // The shipper anchored past its loss event: accepted (the forger still is not needed).
        let mut r = verify_with(evs(), &[w_head.clone(), cp("node-1/proxy_audit_shipper/s", &shipper, 2)]);
        // Both anchored at their last event: closed; the forger's chain is open.
        assert_eq!(r.open.iter().map(|o| o.emitter.as_str()).collect::<Vec<_>>(), vec!["elsewhere/x"]);
        r.set_live(Live::All);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        // Anchored only before its loss event: not accepted.
        let r = verify_with(evs(), &[w_head, cp("node-1/proxy_audit_shipper/s", &shipper, 0)]);
        assert_eq!(problems(&r), vec![(3, Problem::Missing)], "{}", r.render());
    }

    /// Deleting the tail (or every event) of an anchored chain is caught even
    /// when a made-up chain, or a made-up loss event of its own, declares it.
    #[test]
    fn a_deleted_tail_of_an_anchored_chain_is_not_excused_by_declarations() {
        let mut w = Emitter::new("w", 1);
        w.access(9);
        let head = Checkpoint { emitter: Some("w".into()), seq: 9, hash: w.hashes[9].clone() };
        let mut forger = Emitter::new("elsewhere/x", 3);
        forger.push("loss", json!({"emitter": "w", "lost_events": 5, "first_seq": 5, "last_seq": 9}));
        let cut: Vec<String> = w.lines[..5].iter().chain(&forger.lines).cloned().collect();
        let r = verify_with(values(&cut), std::slice::from_ref(&head));
        assert!(problems(&r).contains(&(5, Problem::Truncated)), "{}", r.render());
        let none: Vec<String> = forger.lines.clone();
        let r = verify_with(values(&none), std::slice::from_ref(&head));
        assert_eq!(r.exit_code(), 1, "{}", r.render());
        // A fake loss event appended to the cut chain itself (seq 5 declaring 6..9).
        let mut own = Emitter::new("w", 1);
        own.access(4);
        own.push("loss", json!({"lost_events": 4, "first_seq": 6, "last_seq": 9}));
        let r = verify_with(values(&own.lines), std::slice::from_ref(&head));
        assert_eq!(r.exit_code(), 1, "{}", r.render());
    }

    /// A whole worker chain lost in the shipper still gets its emitter line.
    #[test]
    fn a_chain_lost_entirely_is_reported_as_declared() {
        let mut shipper = Emitter::new("s", 2);
        shipper.push("loss", json!({"emitter": "w", "lost_events": 5, "first_seq": 0, "last_seq": 4}));
        let r = run(&shipper.lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert!(r.render().contains("emitter w: 0 events"), "{}", r.render());
        assert!(r.render().contains("LOSS emitter w seq 0..4 declared by s (5 events)"), "{}", r.render());
    }

    #[test]
    fn checkpoints() {
        let mut e = chain(10);
        let h = e.hashes.clone();
        e.lines.truncate(7); // tail 7..9 cut
        let events = values(&e.lines);
        let r = verify(events.clone(), &[(9, h[9].clone())]);
        assert_eq!(problems(&r), vec![(7, Problem::Truncated)], "{}", r.render());
        assert!(r.render().contains("BREAK emitter node-1/abcd/0 seq 7: truncated: "));
        assert!(r.breaks[0].detail.contains("chain ends at seq 6"));
        // A checkpoint the chain holds.
        assert_eq!(verify(events.clone(), &[(6, h[6].clone())]).exit_code(), 0);
        assert_eq!(verify(events.clone(), &[(2, h[2].to_uppercase())]).exit_code(), 0);
        // A checkpoint the chain contradicts.
        let r = verify(events.clone(), &[(4, h[5].clone())]);
        assert_eq!(problems(&r), vec![(4, Problem::Modified)]);

        // Several emitters: found by hash, or named.
        let mut b = Emitter::new("node-2/ef01/1", 2);
        b.access(2);
        let mut all = events.clone();
        all.extend(values(&b.lines));
        assert_eq!(verify(all.clone(), &[(2, b.hashes[2].clone())]).exit_code(), 0);
        let named = Checkpoint::parse(&format!("node-1/abcd/0@9:{}", h[9]));
        assert!(named.is_ok());
        let r = verify_with(all.clone(), &[named.unwrap_or_else(|_| unreachable!())]);
        assert_eq!(problems(&r), vec![(7, Problem::Truncated)]);
        assert_eq!(r.breaks[0].emitter, "node-1/abcd/0");
        // Unnamed and matching nothing: still a break.
        let r = verify(all, &[(1, "0".repeat(64))]);
        assert_eq!(r.exit_code(), 1);

        assert!(Checkpoint::parse("12:zz").is_err());
        assert!(Checkpoint::parse("x:00").is_err());
        assert_eq!(Checkpoint::parse(&format!("7:{}", h[7])).map(|c| (c.emitter, c.seq)), Ok((None, 7)));

        // The emitter's own checkpoint events attest earlier heads.
        let mut e = chain(3);
        let head = json!({"head_seq": 2, "head_hash": e.hashes[2]});
        e.push("checkpoint", head);
        assert_eq!(run(&e.lines).exit_code(), 0);
        e.lines[2] = edit(&e.lines[2], true, |v| v["outcome"]["status_code"] = json!(1));
        let p = problems(&run(&e.lines));
        assert!(p.contains(&(2, Problem::Modified)), "{p:?}");
    }

    fn otlp(lines: &[String]) -> Value {
        let records: Vec<Value> = lines
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
                json!({
                    "timeUnixNano": "1795000000000000000",
                    "eventName": format!("proxy_audit.{}", v["kind"].as_str().unwrap_or("")),
                    "body": {"stringValue": l},
                    "attributes": [{"key": "user.id", "value": {"stringValue": "u1"}}]
                })
            })
            .collect();
        json!({"resourceLogs": [{
            "resource": {"attributes": []},
            "scopeLogs": [{"scope": {"name": "proxy-audit"}, "logRecords": records}]
        }]})
    }

    #[test]
    fn otlp_json_input() {
        let e = chain(6);
        // Collector file exporter: one request per line, mixed with NDJSON.
        let text = format!("{}\n{}\n{}\n", otlp(&e.lines[..3]), otlp(&e.lines[3..5]), e.lines[5]);
        let events = parse_events("otel.json", text.as_bytes());
        assert_eq!(events.as_ref().map(Vec::len), Ok(6));
        assert_eq!(verify(events.unwrap_or_default(), &[]).exit_code(), 0);
        // One pretty-printed request.
        let pretty = serde_json::to_string_pretty(&otlp(&e.lines)).unwrap_or_default();
        let events = parse_events("otel.json", pretty.as_bytes());
        assert_eq!(events.as_ref().map(Vec::len), Ok(6));
        // Tampering inside a body is found.
        let mut lines = e.lines.clone();
        lines[4] = edit(&lines[4], false, |v| v["action"]["method"] = json!("DELETE"));
        let events = parse_events("otel.json", otlp(&lines).to_string().as_bytes());
        let r = verify(events.unwrap_or_default(), &[]);
        assert_eq!(problems(&r), vec![(4, Problem::Modified)]);
        // Foreign log records are skipped; ours with a broken body are not.
        let foreign = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"body": {"stringValue": "GET /healthz 200"}}]}]}]});
        assert_eq!(parse_events("x", foreign.to_string().as_bytes()), Ok(vec![]));
        let broken = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"eventName": "proxy_audit.access", "body": {"stringValue": "{nope"}}]}]}]});
        let err = parse_events("x", broken.to_string().as_bytes());
        assert!(err.is_err_and(|m| m.contains("logRecords[0]")));
    }

    #[test]
    fn duplicates() {
        let mut e = chain(4);
        let again = e.lines[1].clone();
        e.lines.push(again);
        let again = e.lines[3].clone();
        e.lines.insert(0, again);
        let r = run(&e.lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!((r.emitters[0].events, r.emitters[0].duplicates), (4, 2));
        assert!(r.render().contains("2 duplicate deliveries ignored"));
        // Same id, different content: not a harmless redelivery.
        let forged = edit(&e.lines[2], false, |v| v["outcome"]["status_code"] = json!(403));
        e.lines.push(forged);
        let p = problems(&run(&e.lines));
        assert!(p.contains(&(1, Problem::Duplicate)), "{p:?}");
        assert!(p.contains(&(1, Problem::Modified)));
    }

    #[test]
    fn unreadable_input() {
        let e = chain(3);
        let text = format!("{}\nthis is not json\n{}\n", e.lines[0], e.lines[1]);
        let parsed = parse_events("bad.ndjson", text.as_bytes());
        assert!(parsed.is_err_and(|m| m.contains("bad.ndjson:line 2")));
        let r = verify_inputs(&[("bad.ndjson", text.as_bytes())], &[]);
        assert_eq!(r.exit_code(), 2);
        assert_eq!(r.emitters[0].events, 2); // the readable part is still checked
        assert!(r.render().contains("UNREADABLE bad.ndjson:line 2: not JSON"));
        // JSON that is neither an event nor an OTLP request.
        let r = verify_inputs(&[("n", b"42\n{\"a\":1}\n".as_slice())], &[]);
        assert_eq!((r.exit_code(), r.unreadable.len()), (2, 2));
        // Invalid UTF-8, empty input.
        let r = verify_inputs(&[("u", b"\xff\xfe{\n".as_slice()), ("empty", b"")], &[]);
        assert_eq!(r.exit_code(), 2);
        assert_eq!(verify_inputs(&[("empty", b"\n\n")], &[]).exit_code(), 0);
    }

    #[test]
    fn malformed_chain_fields_never_panic() {
        let e = chain(3);
        let mut lines = e.lines.clone();
        lines.push(json!({"id": "x", "kind": "access"}).to_string());
        lines.push(json!({"id": "y", "chain": "nope"}).to_string());
        lines.push(json!({"id": "z", "chain": {"emitter": "node-1/abcd/0", "seq": -1}}).to_string());
        lines.push(json!({"chain": {"emitter": 5, "seq": 1}}).to_string());
        lines.push(
            json!({"kind": "access", "chain": {"emitter": "q", "seq": u64::MAX,
            "prev": "0".repeat(64), "hash": "0".repeat(64)}})
            .to_string(),
        );
        lines.push(
            json!({"kind": "loss", "trail": {"first_seq": 0, "last_seq": u64::MAX},
            "chain": {"emitter": "q", "seq": 0, "prev": "A", "hash": 3}})
            .to_string(),
        );
        lines.push(
            json!({"kind": "checkpoint", "trail": {"head_seq": u64::MAX, "head_hash": 1},
            "chain": {"emitter": "q", "seq": 1}})
            .to_string(),
        );
        let r = run(&lines);
        assert_eq!(r.exit_code(), 1);
        let out = r.render();
        assert!(out.contains("BREAK emitter ? seq ?: malformed: event x has no chain object"));
        assert!(out.contains("malformed: event z has no chain.seq"));
        assert!(out.contains("BREAK emitter q seq 0: malformed"));
        assert!(out.contains("emitter node-1/abcd/0: 3 events"));
        // Checkpoints against nothing at all.
        let r = verify(vec![], &[(u64::MAX, "0".repeat(64))]);
        assert_eq!(problems(&r), vec![(u64::MAX, Problem::Truncated)]);
        let r = verify(values(&e.lines), &[(u64::MAX, "0".repeat(64))]);
        assert_eq!(problems(&r), vec![(3, Problem::Truncated)]);
    }
    #[test]
    fn fixture_files() {
        macro_rules! fixture {
            ($name:literal) => {
                ($name, include_bytes!(concat!("../../core/tests/data/verify/", $name)).as_slice())
            };
        }
        let check = |input: (&str, &[u8]), cps: &[Checkpoint]| verify_inputs(&[input], cps);
        let r = check(fixture!("intact.ndjson"), &[]);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert!(r.open.is_empty() && r.emitters.iter().all(|e| e.ended), "{}", r.render());
        assert_eq!(r.emitters.len(), 2);
        assert_eq!(r.emitters[0].declared_lost, vec![(5, 6)]);
        assert_eq!(r.emitters[0].duplicates, 1);
        let r = check(fixture!("otlp.jsonl"), &[]);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!((r.emitters[0].events, r.emitters[1].events), (12, 6), "with their end records");
        let r = check(fixture!("modified.ndjson"), &[]);
        assert_eq!(problems(&r), vec![(3, Problem::Modified)]);
        let r = check(fixture!("missing.ndjson"), &[]);
        assert_eq!(problems(&r), vec![(4, Problem::Missing)]);
        let cp = Checkpoint::parse(TRUNCATED_CHECKPOINT);
        let r = check(fixture!("truncated.ndjson"), &[cp.unwrap_or_else(|e| panic!("{e}"))]);
        assert_eq!(problems(&r), vec![(11, Problem::Truncated)]);
        assert_eq!(r.breaks[0].emitter, "node-1/abcd/0");
        // Without the checkpoint the cut tail still shows: no end record.
        let r = check(fixture!("truncated.ndjson"), &[]);
        assert_eq!((r.exit_code(), r.breaks.len()), (1, 0), "{}", r.render());
        assert!(r.render().contains("OPEN emitter node-1/abcd/0: no end record; events after seq 10 may be missing"));
        // Unnamed, and both emitters end before seq 12: which one is unknown.
        let hash = TRUNCATED_CHECKPOINT.rsplit(':').next().unwrap_or_default();
        let events = parse_events("t", fixture!("truncated.ndjson").1).unwrap_or_default();
        let r = verify(events, &[(12, hash.to_string())]);
        assert_eq!(problems(&r), vec![(12, Problem::Truncated)]);
        assert_eq!(r.breaks[0].emitter, "?");
        let r = check(fixture!("garbage.ndjson"), &[]);
        assert_eq!(r.exit_code(), 2);
    }

    /// The head of node-1/abcd/0 before truncated.ndjson lost its tail.
    const TRUNCATED_CHECKPOINT: &str =
        "node-1/abcd/0@12:a32eb5da8b3e8c030945da5f7ae4b5e399ed94aba6a7e542dfa102539ddbc8c5";
}
