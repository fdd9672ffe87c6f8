//! Shipping events to the log service: a bounded buffer, batches by size and
//! interval, retries with exponential backoff and jitter, and loss accounting.
//!
//! Pure state machine: the host glue asks for a batch when its timer fires,
//! POSTs it, and reports the outcome. At-least-once: a failed batch is retried
//! whole (the event `id` is the log service's dedup key). When the buffer is
//! full the oldest queued events are dropped and the dropped seq ranges are
//! handed back through [`Exporter::take_loss`] so a `loss` event declares
//! the gap.
//!
//! The singleton shipping service runs one exporter for the events of every
//! worker ([`Exporter::push_from`]): a drop there is accounted to the emitter
//! the event came from ([`Exporter::take_forwarded_loss`]).
//!
//! Loss declarations have priority: they wait in a reserve of their own
//! ([`LOSS_RESERVE`] events, beside `max_buffered_events`), are never pushed
//! out by events, and leave ahead of them in the next batch. Under sustained
//! overload the gaps keep coalescing in [`Dropped`] until the reserve has
//! room, so a declaration never waits for the load to stop.
//!
//! A retiring emitter's buffer can be adopted by a live one of the same VM
//! ([`Exporter::adopt`]): its events keep their chain, and anything dropped
//! afterwards is declared by the adopting chain for the retired one.

use crate::config::{ExporterConfig, Format};
use crate::jcs;
use crate::timefmt::parse_rfc3339_millis;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Counters exposed as Envoy stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub emitted: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dropped: u64,
    pub batches_failed: u64,
    /// Handed to the singleton shipping service (a worker with a shared queue).
    pub handed_off: u64,
    /// Received from workers (the shipping service).
    pub received: u64,
}

/// Dropped events not yet declared: a seq range and how many of its seqs
/// were dropped (all of them, unless more than [`MAX_RANGES`] separate
/// ranges had to be merged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loss {
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: u64,
}

/// Separate dropped ranges kept per emitter before the closest are merged.
pub const MAX_RANGES: usize = 64;

/// `loss` events that may wait beyond `max_buffered_events`: room kept for
/// declarations, so they are made while the buffer overflows.
pub const LOSS_RESERVE: usize = 16;

/// The dropped seqs of one emitter, as sorted disjoint ranges.
#[derive(Debug, Clone, Default)]
struct Dropped {
    ranges: Vec<Loss>,
}

impl Dropped {
    fn add(&mut self, l: Loss) {
        let mut l = l;
        // Absorb every range that overlaps or touches `l`.
        self.ranges.retain(|r| {
            let touches = r.first_seq <= l.last_seq.saturating_add(1) && l.first_seq <= r.last_seq.saturating_add(1);
            if touches {
                l.first_seq = l.first_seq.min(r.first_seq);
                l.last_seq = l.last_seq.max(r.last_seq);
                l.count = l.count.saturating_add(r.count);
            }
            !touches
        });
        let at = self.ranges.partition_point(|r| r.first_seq < l.first_seq);
        self.ranges.insert(at, l);
        if self.ranges.len() > MAX_RANGES {
            // Merge the two neighbours with the smallest gap: the span then
            // includes seqs that were not dropped (count stays exact).
            let ix = (1..self.ranges.len())
                .min_by_key(|&i| match (self.ranges.get(i - 1), self.ranges.get(i)) {
                    (Some(a), Some(b)) => b.first_seq - a.last_seq,
                    _ => u64::MAX,
                })
                .unwrap_or(1);
            if let (Some(b), Some(a)) = (self.ranges.get(ix).copied(), self.ranges.get_mut(ix - 1)) {
                a.last_seq = b.last_seq;
                a.count = a.count.saturating_add(b.count);
                self.ranges.remove(ix);
            }
        }
    }

    fn take(&mut self) -> Option<Loss> {
        (!self.ranges.is_empty()).then(|| self.ranges.remove(0))
    }

    fn merge(&mut self, other: Dropped) {
        for l in other.ranges {
            self.add(l);
        }
    }

    fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Item {
    /// The emitter the event came from, when it is not this exporter's own.
    origin: Option<Arc<str>>,
    seq: u64,
    /// The sealed event line (rendered for the wire format per batch).
    line: String,
    /// A `loss` event of this exporter's own: the gap it declares (and in
    /// which emitter's chain), put back on record if the event itself is
    /// dropped, so a declaration is never lost with it.
    declares: Option<(Option<Arc<str>>, Loss)>,
    /// One of this exporter's own `loss` events: it waits in the reserve.
    priority: bool,
}

/// One POST body ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub events: usize,
}

#[derive(Debug)]
pub struct Exporter {
    format: Format,
    max_batch: usize,
    max_buffered: usize,
    queue: VecDeque<Item>,
    /// This exporter's own `loss` events (at most [`LOSS_RESERVE`]).
    reserve: VecDeque<Item>,
    inflight: Vec<Item>,
    attempt: u32,
    retry_at_ms: u64,
    loss: Dropped,
    /// Dropped events of other emitters (shipping service), not yet declared.
    forwarded_loss: BTreeMap<Arc<str>, Dropped>,
    pub stats: Stats,
    /// `stats` as last published (Envoy counters take deltas, per exporter:
    /// a retiring and a new plugin in one VM each publish their own).
    published: Stats,
}

/// First retry after this, doubling per attempt up to [`MAX_BACKOFF_MS`].
pub const BASE_BACKOFF_MS: u64 = 100;
pub const MAX_BACKOFF_MS: u64 = 10_000;

impl Exporter {
    pub fn new(cfg: &ExporterConfig) -> Self {
        Exporter {
            format: cfg.format,
            max_batch: cfg.max_batch_events.max(1),
            max_buffered: cfg.max_buffered_events.max(1),
            queue: VecDeque::new(),
            reserve: VecDeque::new(),
            inflight: Vec::new(),
            attempt: 0,
            retry_at_ms: 0,
            loss: Dropped::default(),
            forwarded_loss: BTreeMap::new(),
            stats: Stats::default(),
            published: Stats::default(),
        }
    }

    /// Events waiting or in flight, `loss` events in the reserve included.
    pub fn depth(&self) -> usize {
        self.queue.len() + self.reserve.len() + self.inflight.len()
    }

    /// Events that count against `max_buffered_events` (the reserve does not).
    fn event_depth(&self) -> usize {
        self.queue.len() + self.inflight.iter().filter(|i| !i.priority).count()
    }

    /// The counters' growth since the last call (what to add to Envoy's counters).
    pub fn unpublished(&mut self) -> Stats {
        let (now, before) = (self.stats, std::mem::replace(&mut self.published, self.stats));
        Stats {
            emitted: now.emitted.saturating_sub(before.emitted),
            delivered: now.delivered.saturating_sub(before.delivered),
            retried: now.retried.saturating_sub(before.retried),
            dropped: now.dropped.saturating_sub(before.dropped),
            batches_failed: now.batches_failed.saturating_sub(before.batches_failed),
            handed_off: now.handed_off.saturating_sub(before.handed_off),
            received: now.received.saturating_sub(before.received),
        }
    }

    /// Dropped seq ranges not yet declared (own chain, then each carried
    /// chain): what a process that stops now would lose without a record.
    pub fn undeclared(&self) -> Vec<(Option<Arc<str>>, Loss)> {
        let own = self.loss.ranges.iter().map(|l| (None, *l));
        let carried = self.forwarded_loss.iter().flat_map(|(o, d)| d.ranges.iter().map(move |l| (Some(o.clone()), *l)));
        own.chain(carried).collect()
    }

    /// Seq ranges of the events still buffered (waiting or in flight), per
    /// chain (`None`: this exporter's own), contiguous runs merged; with
    /// `records` false, request events only (not `chain_start`,
    /// `checkpoint` or `loss` records).
    pub fn buffered_ranges(&self, records: bool) -> Vec<(Option<Arc<str>>, Loss)> {
        let mut by: BTreeMap<Option<Arc<str>>, Dropped> = BTreeMap::new();
        let all = self.inflight.iter().chain(&self.reserve).chain(&self.queue);
        for i in all.filter(|i| records || !is_trail_record(&i.line)) {
            by.entry(i.origin.clone()).or_default().add(Loss { first_seq: i.seq, last_seq: i.seq, count: 1 });
        }
        by.into_iter().flat_map(|(o, d)| d.ranges.into_iter().map(move |l| (o.clone(), l))).collect()
    }

    /// The buffered event lines (waiting or in flight), oldest first.
    pub fn buffered_lines(&self) -> impl Iterator<Item = &str> {
        self.inflight.iter().chain(&self.reserve).chain(&self.queue).map(|i| i.line.as_str())
    }

    /// Takes over the whole buffer of a retiring exporter whose chain is
    /// `from_name`: its events (in flight included: unacknowledged) keep
    /// their chain, and its undeclared drops are declared by this one.
    pub fn adopt(&mut self, from_name: &Arc<str>, from: &mut Exporter) {
        let origin = |o: Option<Arc<str>>| Some(o.unwrap_or_else(|| from_name.clone()));
        let items: Vec<Item> =
            from.inflight.drain(..).chain(from.reserve.drain(..)).chain(from.queue.drain(..)).collect();
        for mut item in items {
            item.origin = origin(item.origin.take());
            item.declares = item.declares.take().map(|(o, l)| (origin(o), l));
            item.priority = false;
            self.stats.received += 1;
            self.queue_item(item);
        }
        let own = std::mem::take(&mut from.loss);
        self.dropped_for(Some(from_name.clone())).merge(own);
        for (o, d) in std::mem::take(&mut from.forwarded_loss) {
            self.dropped_for(Some(o)).merge(d);
        }
    }

    pub fn in_flight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// Holds events of other chains (adopted from a retired emitter): they
    /// cannot go in a hand-off message, which carries one chain.
    pub fn carries_others(&self) -> bool {
        self.inflight.iter().chain(&self.queue).any(|i| i.origin.is_some())
    }

    /// A full batch is waiting: worth sending before the next interval.
    pub fn full_batch_waiting(&self) -> bool {
        self.queue.len() >= self.max_batch
    }

    /// Queues one sealed event (its canonical JSON line).
    pub fn push(&mut self, seq: u64, line: &str) {
        self.stats.emitted += 1;
        self.queue_item(Item { origin: None, seq, line: line.to_string(), declares: None, priority: false });
    }

    /// Queues a sealed `loss` event that declares `loss` in the chain of
    /// `origin` (`None`: this exporter's own chain).
    /// It waits in the reserve (see [`Self::take_loss`]) and is never dropped.
    pub fn push_loss(&mut self, seq: u64, line: &str, origin: Option<Arc<str>>, loss: Loss) {
        self.stats.emitted += 1;
        let declares = Some((origin, loss));
        self.reserve.push_back(Item { origin: None, seq, line: line.to_string(), declares, priority: true });
    }

    /// Queues an event another emitter sealed (the shipping service);
    /// `declares` is the gap it declares when it is a `loss` event.
    pub fn push_from(&mut self, origin: &Arc<str>, seq: u64, line: &str, declares: Option<(Arc<str>, Loss)>) {
        self.stats.received += 1;
        let declares = declares.map(|(chain, l)| (Some(chain), l));
        self.queue_item(Item { origin: Some(origin.clone()), seq, line: line.to_string(), declares, priority: false });
    }

    fn queue_item(&mut self, item: Item) {
        while self.event_depth() >= self.max_buffered {
            let Some(old) = self.queue.pop_front() else {
                break;
            };
            self.record_loss(old);
        }
        if self.event_depth() >= self.max_buffered {
            // Everything buffered is in flight: drop the newcomer instead.
            self.record_loss(item);
            return;
        }
        self.queue.push_back(item);
    }

    fn record_loss(&mut self, item: Item) {
        self.stats.dropped += 1;
        let one = Loss { first_seq: item.seq, last_seq: item.seq, count: 1 };
        self.dropped_for(item.origin).add(one);
        if let Some((origin, declared)) = item.declares {
            // The dropped event was a declaration: declare its gap again.
            self.dropped_for(origin).add(declared);
        }
    }

    fn dropped_for(&mut self, origin: Option<Arc<str>>) -> &mut Dropped {
        match origin {
            None => &mut self.loss,
            Some(o) => self.forwarded_loss.entry(o).or_default(),
        }
    }

    /// Dropped events not yet declared, once the reserve has room for the
    /// `loss` event that declares them (declaring never drops an event, and
    /// never waits for the event buffer to drain).
    pub fn take_loss(&mut self) -> Option<Loss> {
        if self.reserve.len() >= LOSS_RESERVE {
            return None;
        }
        self.loss.take()
    }

    /// Like [`Self::take_loss`], for one other emitter whose events this
    /// exporter dropped.
    pub fn take_forwarded_loss(&mut self) -> Option<(Arc<str>, Loss)> {
        if self.reserve.len() >= LOSS_RESERVE {
            return None;
        }
        let (origin, dropped) = self.forwarded_loss.iter_mut().next()?;
        let (origin, loss) = (origin.clone(), dropped.take());
        if dropped.is_empty() {
            self.forwarded_loss.remove(&origin);
        }
        loss.map(|l| (origin, l))
    }

    /// The next batch to POST, when nothing is in flight, something is
    /// queued and any backoff has elapsed.
    pub fn next_batch(&mut self, now_ms: u64) -> Option<Batch> {
        self.take_inflight(now_ms).then(|| self.render())
    }

    /// Moves the next batch in flight (declarations first): false when one
    /// is already in flight, nothing waits, or the backoff runs.
    fn take_inflight(&mut self, now_ms: u64) -> bool {
        if self.in_flight() || (self.queue.is_empty() && self.reserve.is_empty()) || now_ms < self.retry_at_ms {
            return false;
        }
        let from_reserve = self.reserve.len().min(self.max_batch);
        self.inflight = self.reserve.drain(..from_reserve).collect();
        let n = self.queue.len().min(self.max_batch - from_reserve);
        self.inflight.extend(self.queue.drain(..n));
        true
    }

    /// Like [`Self::next_batch`], but the events go out as one hand-off
    /// message for the shipping service (see [`crate::handoff`]); a later
    /// [`Self::handed_off`] or [`Self::failed`] settles it.
    pub fn next_handoff(&mut self, emitter: &str, now_ms: u64) -> Option<Vec<u8>> {
        if !self.take_inflight(now_ms) {
            return None;
        }
        Some(crate::handoff::encode(emitter, self.inflight.iter().map(|i| (i.seq, i.line.as_str()))))
    }

    fn render(&self) -> Batch {
        let lines: Vec<&str> = self.inflight.iter().map(|i| i.line.as_str()).collect();
        render(self.format, &lines)
    }

    /// A batch of one event, for write-ahead delivery outside the queue.
    pub fn single(&self, line: &str) -> Batch {
        render(self.format, &[line])
    }

    /// The shipping service took the in-flight hand-off.
    pub fn handed_off(&mut self) {
        self.stats.handed_off += self.inflight.len() as u64;
        self.inflight.clear();
        self.attempt = 0;
        self.retry_at_ms = 0;
    }

    /// The log service acknowledged the in-flight batch.
    pub fn delivered(&mut self) {
        self.stats.delivered += self.inflight.len() as u64;
        self.inflight.clear();
        self.attempt = 0;
        self.retry_at_ms = 0;
    }

    /// The in-flight batch failed (non-2xx, reset, timeout): it goes back to
    /// the head of the queue and is retried after an exponential backoff
    /// plus `jitter_ms` (drawn by the caller, up to the backoff itself).
    pub fn failed(&mut self, now_ms: u64, jitter_ms: u64) {
        self.stats.batches_failed += 1;
        self.stats.retried += self.inflight.len() as u64;
        for item in self.inflight.drain(..).rev() {
            if item.priority {
                self.reserve.push_front(item);
            } else {
                self.queue.push_front(item);
            }
        }
        self.attempt = self.attempt.saturating_add(1);
        let backoff = self.backoff_ms();
        self.retry_at_ms = now_ms + backoff + jitter_ms.min(backoff);
        // The buffer bound holds across retries too.
        while self.queue.len() > self.max_buffered {
            if let Some(old) = self.queue.pop_front() {
                self.record_loss(old);
            }
        }
    }

    /// The current backoff (before jitter).
    pub fn backoff_ms(&self) -> u64 {
        if self.attempt == 0 {
            return 0;
        }
        BASE_BACKOFF_MS.saturating_mul(1u64 << self.attempt.saturating_sub(1).min(16)).min(MAX_BACKOFF_MS)
    }
}

/// What the filter writes before a trail record in Envoy's log when it
/// retires without a way to deliver it (the plugin's `handover` module);
/// `proxy-audit verify` reads these lines.
pub const RECORD_MARKER: &str = "proxy-audit: record ";

/// A `chain_start`, `checkpoint` or `loss` record, from its sealed line
/// (canonical JSON writes `"kind":"…"` without spaces; a string value that
/// holds the same text is escaped, so it cannot match).
pub fn is_trail_record(line: &str) -> bool {
    ["\"kind\":\"chain_start\"", "\"kind\":\"checkpoint\"", "\"kind\":\"loss\""].iter().any(|k| line.contains(k))
}

/// One POST body for sealed event lines in the wire format.
fn render(format: Format, lines: &[&str]) -> Batch {
    match format {
        Format::Ndjson => {
            let mut body = lines.join("\n").into_bytes();
            body.push(b'\n');
            Batch { body, content_type: "application/x-ndjson", events: lines.len() }
        }
        Format::Otlp => {
            let parts: Vec<String> = lines.iter().map(|l| otlp_record(l)).collect();
            let body = format!(
                concat!(
                    r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"proxy-audit"}}}}]}},"#,
                    r#""scopeLogs":[{{"scope":{{"name":"proxy-audit","version":"{}"}},"logRecords":[{}]}}]}}]}}"#
                ),
                env!("CARGO_PKG_VERSION"),
                parts.join(",")
            );
            Batch { body: body.into_bytes(), content_type: "application/json", events: parts.len() }
        }
    }
}

/// One OTLP/HTTP JSON `LogRecord` for an event line: body the event JSON,
/// attributes under OpenTelemetry names. Written straight into its string:
/// the line is read as borrowed members (no `Value` tree, no copies of its
/// strings) and each attribute copies its member's JSON text. The bytes are
/// those of building the record object and serializing it (a string that
/// cannot be decoded, a lone surrogate escape, gives no attribute).
pub fn otlp_record(line: &str) -> String {
    write_otlp_record(line, &Members::of(line).unwrap_or_default())
}

fn write_otlp_record(line: &str, top: &Members<'_>) -> String {
    let nanos = top.string("time").as_deref().and_then(parse_rfc3339_millis).unwrap_or(0) as u128 * 1_000_000;
    let kind = top.string("kind");
    let kind = kind.as_deref().unwrap_or("unknown");
    let mut event_name = String::with_capacity(12 + kind.len());
    event_name.push_str("proxy_audit.");
    event_name.push_str(kind);
    let mut out = String::with_capacity(line.len() + line.len() / 8 + 1536);
    let nanos = nanos.to_string();
    let severity = if matches!(kind, "denied" | "blocked" | "loss") { ("13", "WARN") } else { ("9", "INFO") };
    out.push_str("{\"timeUnixNano\":\"");
    out.push_str(&nanos);
    out.push_str("\",\"observedTimeUnixNano\":\"");
    out.push_str(&nanos);
    out.push_str("\",\"severityNumber\":");
    out.push_str(severity.0);
    out.push_str(",\"severityText\":\"");
    out.push_str(severity.1);
    out.push_str("\",\"eventName\":");
    jcs::write_string(&event_name, &mut out);
    out.push_str(",\"body\":{\"stringValue\":");
    jcs::write_string(line, &mut out);
    out.push_str("},\"attributes\":[");
    let mut attrs = Attributes { out: &mut out, first: true };
    let (chain, actor, action) = (top.object("chain"), top.object("actor"), top.object("action"));
    let (outcome, target, source) = (top.object("outcome"), top.object("target"), top.object("source"));
    attrs.str("event.name", &event_name);
    attrs.raw("proxy_audit.event.id", top.get("id"));
    attrs.raw("proxy_audit.chain.emitter", chain.get("emitter"));
    attrs.raw("proxy_audit.chain.seq", chain.get("seq"));
    attrs.raw("user.id", actor.get("id"));
    attrs.raw("enduser.id", actor.get("id"));
    attrs.raw("proxy_audit.actor.type", actor.get("type"));
    attrs.raw("http.request.method", action.get("method"));
    attrs.raw("http.route", action.get("path"));
    attrs.raw("http.response.status_code", outcome.get("status_code"));
    attrs.raw("server.address", target.get("authority"));
    attrs.raw("client.address", source.get("address"));
    attrs.raw("user_agent.original", source.get("user_agent"));
    attrs.raw("proxy_audit.outcome.reason", outcome.get("reason"));
    if let Some(ai) = top.get("ai").and_then(Members::of) {
        gen_ai_attributes(&ai, &mut attrs);
        if let Some(reasons) = ai.get("finish_reasons").and_then(|r| serde_json::from_str::<Vec<&RawValue>>(r).ok()) {
            let out = attrs.key("gen_ai.response.finish_reasons");
            out.push_str("{\"arrayValue\":{\"values\":[");
            let mut first = true;
            for r in reasons.iter().filter(|r| r.get().starts_with('"')).filter_map(|r| canonical_string(r.get())) {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str("{\"stringValue\":");
                out.push_str(&r);
                out.push('}');
            }
            out.push_str("]}}}");
        }
        if let Some(ms) = ai.u64("time_to_first_token_ms") {
            let seconds = serde_json::Number::from_f64(ms as f64 / 1000.0).map(|n| n.to_string());
            let out = attrs.key("gen_ai.response.time_to_first_chunk");
            out.push_str("{\"doubleValue\":");
            out.push_str(seconds.as_deref().unwrap_or("null"));
            out.push_str("}}");
        }
    }
    out.push_str("]}");
    out
}

/// An object's members as their JSON texts, borrowed from the line.
#[derive(Default)]
struct Members<'a>(std::collections::BTreeMap<Name<'a>, &'a RawValue>);

impl<'a> Members<'a> {
    /// `None` unless `text` is a JSON object.
    fn of(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok().map(Members)
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).map(|r| r.get())
    }

    /// A member object (empty when absent or not an object).
    fn object(&self, name: &str) -> Members<'a> {
        self.get(name).and_then(Members::of).unwrap_or_default()
    }

    fn string(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name).and_then(|t| serde_json::from_str(t).ok())
    }

    fn u64(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(|t| serde_json::from_str(t).ok())
    }
}

/// A member name: borrowed from the line, decoded only when it has escapes.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Name<'a>(Cow<'a, str>);

impl std::borrow::Borrow<str> for Name<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(Text)
    }
}

/// A JSON string's text as its canonical serialization: the text itself
/// when it has no escapes (then the two are the same bytes), else decoded
/// and written again; `None` when it does not decode.
fn canonical_string(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('\\') {
        return Some(Cow::Borrowed(text));
    }
    let s: String = serde_json::from_str(text).ok()?;
    let mut out = String::with_capacity(text.len());
    jcs::write_string(&s, &mut out);
    Some(Cow::Owned(out))
}

/// The `attributes` array of an OTLP record, written member by member.
struct Attributes<'a> {
    out: &'a mut String,
    first: bool,
}

impl Attributes<'_> {
    /// Opens `{"key":<key>,"value":` (the caller writes the value and `}`).
    fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push_str("{\"key\":");
        jcs::write_string(key, self.out);
        self.out.push_str(",\"value\":");
        self.out
    }

    fn str(&mut self, key: &str, v: &str) {
        let out = self.key(key);
        out.push_str("{\"stringValue\":");
        jcs::write_string(v, out);
        out.push_str("}}");
    }

    fn u64(&mut self, key: &str, v: Option<u64>) {
        if let Some(n) = v {
            let out = self.key(key);
            out.push_str("{\"intValue\":\"");
            crate::event::push_u64(out, n);
            out.push_str("\"}}");
        }
    }

    /// A member given as its JSON text: a string, number or boolean becomes
    /// its OTLP value; anything else (absent, null, arrays, objects) nothing.
    fn raw(&mut self, key: &str, text: Option<&str>) {
        let Some(t) = text else { return };
        match t.as_bytes().first() {
            Some(b'"') => {
                let Some(text) = canonical_string(t) else { return };
                let out = self.key(key);
                out.push_str("{\"stringValue\":");
                out.push_str(&text);
                out.push_str("}}");
            }
            Some(b't' | b'f') => {
                let out = self.key(key);
                out.push_str(if t == "true" { "{\"boolValue\":true}}" } else { "{\"boolValue\":false}}" });
            }
            Some(b'-' | b'0'..=b'9') => {
                let n = serde_json::from_str::<serde_json::Number>(t).map(|n| n.to_string()).unwrap_or_default();
                let out = self.key(key);
                out.push_str("{\"intValue\":\"");
                out.push_str(&n);
                out.push_str("\"}}");
            }
            _ => {}
        }
    }
}

/// `gen_ai.provider.name` as the OpenTelemetry GenAI conventions name the
/// providers of the event's `ai.provider` (the event keeps the schema's
/// names); providers the conventions do not list keep their own name.
pub fn semconv_provider(provider: &str) -> &str {
    match provider {
        "azure_openai" => "azure.ai.openai",
        "aws_bedrock" => "aws.bedrock",
        "gcp_gemini" => "gcp.gemini",
        "gcp_vertex_ai" => "gcp.vertex_ai",
        "mistral" => "mistral_ai",
        other => other,
    }
}

/// `gen_ai.operation.name`: the event's operations are the conventions'
/// values; an override's `responses` is a chat.
pub fn semconv_operation(operation: &str) -> &str {
    match operation {
        "responses" => "chat",
        other => other,
    }
}

/// The GenAI attributes of an event's `ai` object (OpenTelemetry GenAI
/// semantic conventions). Token counts follow the conventions' definitions:
/// `gen_ai.usage.input_tokens` includes cached input, which Anthropic and
/// Bedrock count apart (`cache_read_input_tokens`, `cacheReadInputTokens`);
/// `gen_ai.usage.output_tokens` includes reasoning, which Gemini counts apart
/// (`thoughtsTokenCount`).
fn gen_ai_attributes(ai: &Members<'_>, attrs: &mut Attributes<'_>) {
    let usage = ai.object("usage");
    let provider = ai.string("provider");
    let provider = provider.as_deref();
    if let Some(p) = provider {
        attrs.str("gen_ai.provider.name", semconv_provider(p));
    }
    if let Some(o) = ai.string("operation") {
        attrs.str("gen_ai.operation.name", semconv_operation(&o));
    }
    attrs.raw("gen_ai.request.model", ai.get("request_model"));
    attrs.raw("gen_ai.response.model", ai.get("response_model"));
    attrs.raw("gen_ai.response.id", ai.get("response_id"));
    attrs.raw("gen_ai.request.stream", ai.get("stream"));
    let n = |k: &str| usage.u64(k);
    let cached = n("cached_input_tokens");
    let reasoning = n("reasoning_tokens");
    let input = match provider.unwrap_or("") {
        "anthropic" | "aws_bedrock" => n("input_tokens").map(|i| i.saturating_add(cached.unwrap_or(0))),
        _ => n("input_tokens"),
    };
    let output = match provider.unwrap_or("") {
        "gcp_gemini" | "gcp_vertex_ai" => n("output_tokens").map(|o| o.saturating_add(reasoning.unwrap_or(0))),
        _ => n("output_tokens"),
    };
    attrs.u64("gen_ai.usage.input_tokens", input);
    attrs.u64("gen_ai.usage.output_tokens", output);
    attrs.u64("gen_ai.usage.cache_read.input_tokens", cached);
    attrs.u64("gen_ai.usage.reasoning.output_tokens", reasoning);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;
    use serde_json::Value;

    fn exporter(batch: u64, buffered: u64, format: &str) -> Exporter {
        let text = format!(
            r#"{{"audit": {{"exporter": {{"max_batch_events": {batch}, "max_buffered_events": {buffered}, "format": "{format}"}}}}}}"#
        );
        Exporter::new(&Config::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}")).audit.exporter)
    }

    #[test]
    fn batches_by_size_and_acknowledges() {
        let mut e = exporter(2, 10, "ndjson");
        for seq in 0..5 {
            e.push(seq, &format!("{{\"n\":{seq}}}"));
        }
        let b = e.next_batch(0).unwrap_or_else(|| panic!("batch"));
        assert_eq!(b.body, b"{\"n\":0}\n{\"n\":1}\n");
        assert_eq!(b.content_type, "application/x-ndjson");
        assert!(e.next_batch(0).is_none(), "one batch in flight at a time");
        e.delivered();
        assert_eq!(e.next_batch(0).map(|b| b.events), Some(2));
        e.delivered();
        assert_eq!(e.next_batch(0).map(|b| b.events), Some(1));
        e.delivered();
        assert_eq!(e.stats, Stats { emitted: 5, delivered: 5, ..Stats::default() });
        assert_eq!(e.depth(), 0);
    }

    #[test]
    fn failures_retry_the_same_batch_with_backoff() {
        let mut e = exporter(3, 10, "ndjson");
        for seq in 0..3 {
            e.push(seq, "{}");
        }
        let first = e.next_batch(1000).unwrap_or_else(|| panic!("batch"));
        e.failed(1000, 0);
        assert_eq!(e.backoff_ms(), 100);
        assert!(e.next_batch(1099).is_none());
        let again = e.next_batch(1100).unwrap_or_else(|| panic!("retry"));
        assert_eq!(again, first);
        e.failed(1100, 50);
        assert_eq!(e.backoff_ms(), 200);
        assert!(e.next_batch(1349).is_none());
        assert!(e.next_batch(1350).is_some());
        for _ in 0..20 {
            e.failed(0, 0);
        }
        assert_eq!(e.backoff_ms(), MAX_BACKOFF_MS);
        assert_eq!(e.stats.retried, 9, "only in-flight events count as retried");
    }

    #[test]
    fn overflow_drops_oldest_and_declares_ranges() {
        let mut e = exporter(2, 4, "ndjson");
        for seq in 0..4 {
            e.push(seq, "{}");
        }
        let _ = e.next_batch(0); // seq 0,1 in flight
        for seq in 4..8 {
            e.push(seq, "{}");
        }
        // Buffer holds 4: in flight 0,1 and the newest 6,7; 2..5 dropped.
        assert_eq!(e.depth(), 4);
        // Declared at once, while the buffer is still full: the reserve has room.
        assert_eq!(e.take_loss(), Some(Loss { first_seq: 2, last_seq: 5, count: 4 }));
        assert_eq!(e.stats.dropped, 4);
        assert_eq!(e.take_loss(), None);
    }

    /// Under sustained overflow, `loss` events are made at once, never pushed
    /// out by events, and leave ahead of them; past the reserve the gaps
    /// coalesce until it has room.
    #[test]
    fn loss_events_have_a_reserve_and_leave_first() {
        let mut e = exporter(3, 5, "ndjson");
        let mut seq = 0;
        for round in 0..(LOSS_RESERVE as u64 + 3) {
            for _ in 0..7 {
                e.push(seq, &format!("{{\"e\":{seq}}}"));
                seq += 1;
            }
            if let Some(l) = e.take_loss() {
                e.push_loss(seq, &format!("{{\"loss\":{seq}}}"), None, l);
                seq += 1;
            } else {
                assert!(round >= LOSS_RESERVE as u64, "declared while the reserve has room");
            }
        }
        assert_eq!(e.reserve.len(), LOSS_RESERVE, "loss events are never dropped");
        assert!(e.event_depth() <= 5, "events stay within max_buffered_events");
        assert!(e.take_loss().is_none() && !e.loss.is_empty(), "past the reserve, gaps wait (coalesced)");
        let b = e.next_batch(0).unwrap_or_else(|| panic!("batch"));
        assert!(String::from_utf8_lossy(&b.body).lines().all(|l| l.starts_with("{\"loss\"")), "declarations first");
        // A failed batch of declarations goes back to the reserve, not the event queue.
        e.failed(0, 0);
        assert_eq!(e.reserve.len(), LOSS_RESERVE);
    }

    /// A retiring exporter's buffer is adopted whole: its events keep their
    /// chain (origin), its undeclared drops become the adopter's to declare.
    #[test]
    fn adopt_keeps_origin_and_undeclared_drops() {
        let mut old = exporter(2, 3, "ndjson");
        for seq in 0..6 {
            old.push(seq, "{}");
        }
        let _ = old.next_batch(0); // 3, 4 in flight: unacknowledged, adopted too
        let mut new = exporter(10, 100, "ndjson");
        let name: Arc<str> = "old".into();
        new.adopt(&name, &mut old);
        assert_eq!(old.depth(), 0);
        assert_eq!(new.depth(), 3);
        assert!(new.carries_others());
        assert_eq!(new.buffered_ranges(true), vec![(Some(name.clone()), Loss { first_seq: 3, last_seq: 5, count: 3 })]);
        assert_eq!(new.take_forwarded_loss(), Some((name, Loss { first_seq: 0, last_seq: 2, count: 3 })));
    }

    #[test]
    fn trail_records_are_told_from_request_events() {
        assert!(is_trail_record(r#"{"chain":{},"kind":"checkpoint","trail":{}}"#));
        assert!(is_trail_record(r#"{"kind":"loss"}"#));
        assert!(!is_trail_record(r#"{"action":{"path":"/x\"kind\":\"loss\""},"kind":"access"}"#));
    }

    fn gen_ai_attributes_as_values(ai: &Value, attr: &mut dyn FnMut(&str, Option<&Value>)) {
        let s = |k: &str| ai.get(k).and_then(Value::as_str);
        let n = |k: &str| ai.get("usage").and_then(|u| u.get(k)).and_then(Value::as_u64);
        let provider = s("provider").unwrap_or("");
        attr("gen_ai.provider.name", s("provider").map(|p| Value::String(semconv_provider(p).into())).as_ref());
        attr("gen_ai.operation.name", s("operation").map(|o| Value::String(semconv_operation(o).into())).as_ref());
        attr("gen_ai.request.model", ai.get("request_model"));
        attr("gen_ai.response.model", ai.get("response_model"));
        attr("gen_ai.response.id", ai.get("response_id"));
        attr("gen_ai.request.stream", ai.get("stream"));
        let cached = n("cached_input_tokens");
        let reasoning = n("reasoning_tokens");
        let input = match provider {
            "anthropic" | "aws_bedrock" => n("input_tokens").map(|i| i.saturating_add(cached.unwrap_or(0))),
            _ => n("input_tokens"),
        };
        let output = match provider {
            "gcp_gemini" | "gcp_vertex_ai" => n("output_tokens").map(|o| o.saturating_add(reasoning.unwrap_or(0))),
            _ => n("output_tokens"),
        };
        let num = |x: Option<u64>| x.map(Value::from);
        attr("gen_ai.usage.input_tokens", num(input).as_ref());
        attr("gen_ai.usage.output_tokens", num(output).as_ref());
        attr("gen_ai.usage.cache_read.input_tokens", num(cached).as_ref());
        attr("gen_ai.usage.reasoning.output_tokens", num(reasoning).as_ref());
    }

    /// The record as this module built it before it was written directly:
    /// member objects built as `Value`s and serialized (the reference).
    fn otlp_record_as_values(line: &str) -> String {
        let ev: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        let nanos =
            ev.get("time").and_then(Value::as_str).and_then(parse_rfc3339_millis).unwrap_or(0) as u128 * 1_000_000;
        let kind = ev.get("kind").and_then(Value::as_str).unwrap_or("unknown");
        let mut attrs: Vec<Value> = Vec::new();
        let mut attr = |key: &str, v: Option<&Value>| match v {
            Some(Value::String(s)) => attrs.push(json!({"key": key, "value": {"stringValue": s}})),
            Some(Value::Number(n)) => attrs.push(json!({"key": key, "value": {"intValue": n.to_string()}})),
            Some(Value::Bool(b)) => attrs.push(json!({"key": key, "value": {"boolValue": b}})),
            _ => {}
        };
        let at = |path: &[&str]| -> Option<&Value> { path.iter().try_fold(&ev, |v, k| v.get(k)) };
        attr("event.name", Some(&Value::String(format!("proxy_audit.{kind}"))));
        attr("proxy_audit.event.id", at(&["id"]));
        attr("proxy_audit.chain.emitter", at(&["chain", "emitter"]));
        attr("proxy_audit.chain.seq", at(&["chain", "seq"]));
        attr("user.id", at(&["actor", "id"]));
        attr("enduser.id", at(&["actor", "id"]));
        attr("proxy_audit.actor.type", at(&["actor", "type"]));
        attr("http.request.method", at(&["action", "method"]));
        attr("http.route", at(&["action", "path"]));
        attr("http.response.status_code", at(&["outcome", "status_code"]));
        attr("server.address", at(&["target", "authority"]));
        attr("client.address", at(&["source", "address"]));
        attr("user_agent.original", at(&["source", "user_agent"]));
        attr("proxy_audit.outcome.reason", at(&["outcome", "reason"]));
        if let Some(ai) = ev.get("ai").filter(|a| a.is_object()) {
            gen_ai_attributes_as_values(ai, &mut attr);
            if let Some(Value::Array(reasons)) = ai.get("finish_reasons") {
                let values: Vec<Value> =
                    reasons.iter().filter_map(Value::as_str).map(|r| json!({"stringValue": r})).collect();
                attrs.push(
                    json!({"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": values}}}),
                );
            }
            if let Some(ms) = ai.get("time_to_first_token_ms").and_then(Value::as_u64) {
                attrs.push(
                    json!({"key": "gen_ai.response.time_to_first_chunk", "value": {"doubleValue": ms as f64 / 1000.0}}),
                );
            }
        }
        let severity = if matches!(kind, "denied" | "blocked" | "loss") { (13, "WARN") } else { (9, "INFO") };
        json!({
            "timeUnixNano": nanos.to_string(),
            "observedTimeUnixNano": nanos.to_string(),
            "severityNumber": severity.0,
            "severityText": severity.1,
            "eventName": format!("proxy_audit.{kind}"),
            "body": {"stringValue": line},
            "attributes": attrs,
        })
        .to_string()
    }

    #[test]
    fn otlp_records_are_the_bytes_of_serializing_the_record_object() {
        let mut lines = vec![
            r#"{"action":{"method":"GET","path":"/p/{id}"},"actor":{"id":"alice"},"ai":{"provider":"openai","usage":{"input_tokens":7,"output_tokens":3}},"chain":{"emitter":"e","seq":1},"id":"ab","kind":"access","outcome":{"status_code":200},"time":"2026-01-01T00:00:00.001Z"}"#.to_string(),
            r#"{"kind":"loss","time":"bad","trail":{"lost":3}}"#.to_string(),
            "not json".to_string(),
            "[1,2]".to_string(),
            r#"{"kind":"access","chain":{"s\u0065q":1,"emitter":"e"}}"#.to_string(),
            r#"{"kind":"access","ai":{"pr\u006fvider":"anthropic","usage":{"input_tokens":1,"cached_input_tokens":2}}}"#.to_string(),
            r#"{"ki\u006ed":"denied","kind":3,"id":"a\/b","chain":{"seq":1.5e3,"emitter":"x"},"actor":{"id":true}}"#.to_string(),
            r#"{"kind":"access","kind":"blocked","ai":{"provider":7,"operation":"chat","usage":{"input_tokens":2.0,"output_tokens":-1},"finish_reasons":"stop","time_to_first_token_ms":-5}}"#.to_string(),
            r#"{"actor":{"id":null,"type":"anonymous"},"kind":"denied","outcome":{"reason":"a\"b\u0001\n","status_code":401,"success":false},"source":{"address":"::1","user_agent":"ua/\u007f é"}}"#.to_string(),
        ];
        for (provider, stream, ttft) in [
            ("anthropic", true, Some(0)),
            ("gcp_gemini", false, Some(1250)),
            ("aws_bedrock", true, None),
            ("mistral", false, Some(3)),
        ] {
            let ai = json!({"provider": provider, "operation": "responses", "request_model": "m", "response_model": null,
                "response_id": "r-1", "stream": stream, "finish_reasons": ["stop", 3, "length"],
                "time_to_first_token_ms": ttft,
                "usage": {"input_tokens": 10, "output_tokens": 20, "cached_input_tokens": 4, "reasoning_tokens": 6}});
            lines.push(json!({"ai": ai, "chain": {"emitter": "x/\"1", "seq": 18_446_744_073_709_551_615u64}, "id": "e", "kind": "access", "time": "2026-12-02T04:24:16.083Z"}).to_string());
        }
        for line in &lines {
            assert_eq!(otlp_record(line), otlp_record_as_values(line), "{line}");
        }
    }

    #[test]
    fn a_string_that_does_not_decode_gives_no_attribute() {
        let rec: Value = serde_json::from_str(&otlp_record(r#"{"kind":"access","id":"\ud800","actor":{"id":"a"}}"#))
            .unwrap_or_default();
        let keys: Vec<&str> =
            rec["attributes"].as_array().into_iter().flatten().filter_map(|a| a["key"].as_str()).collect();
        assert_eq!(keys, ["event.name", "user.id", "enduser.id"]);
        assert_eq!(rec["eventName"], "proxy_audit.access");
    }

    #[test]
    fn otlp_batches_are_export_logs_requests() {
        let mut e = exporter(10, 10, "otlp");
        let line = r#"{"action":{"method":"GET","path":"/p/{id}"},"actor":{"id":"alice"},"ai":{"provider":"openai","usage":{"input_tokens":7,"output_tokens":3}},"chain":{"emitter":"e","seq":1},"id":"ab","kind":"access","outcome":{"status_code":200},"time":"2026-01-01T00:00:00.001Z"}"#;
        e.push(1, line);
        let b = e.next_batch(0).unwrap_or_else(|| panic!("batch"));
        let v: Value = serde_json::from_slice(&b.body).unwrap_or_default();
        let rec = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert_eq!(rec["body"]["stringValue"], line);
        assert_eq!(rec["eventName"], "proxy_audit.access");
        assert_eq!(rec["timeUnixNano"], "1767225600001000000");
        let attrs = rec["attributes"].as_array().cloned().unwrap_or_default();
        let get = |k: &str| attrs.iter().find(|a| a["key"] == k).map(|a| a["value"].clone());
        assert_eq!(get("user.id"), Some(json!({"stringValue": "alice"})));
        assert_eq!(get("http.response.status_code"), Some(json!({"intValue": "200"})));
        assert_eq!(get("gen_ai.usage.input_tokens"), Some(json!({"intValue": "7"})));
        assert_eq!(get("gen_ai.provider.name"), Some(json!({"stringValue": "openai"})));
    }

    /// The OpenTelemetry GenAI semantic conventions, as published in the
    /// attribute registry `model/gen-ai/registry.yaml` of
    /// github.com/open-telemetry/semantic-conventions-genai (commit
    /// e8fc5751506258db1459d1bde47994e01dee922e; the same provider and
    /// operation members as open-telemetry/semantic-conventions
    /// model/gen-ai/registry.yaml before the GenAI conventions moved):
    /// `gen_ai.provider.name` members, `gen_ai.operation.name` members, and
    /// the attribute keys this exporter writes.
    const SEMCONV_PROVIDERS: &[&str] = &[
        "openai",
        "gcp.gen_ai",
        "gcp.vertex_ai",
        "gcp.gemini",
        "anthropic",
        "cohere",
        "azure.ai.inference",
        "azure.ai.openai",
        "ibm.watsonx.ai",
        "aws.bedrock",
        "perplexity",
        "x_ai",
        "deepseek",
        "groq",
        "mistral_ai",
    ];
    const SEMCONV_OPERATIONS: &[&str] = &[
        "chat",
        "generate_content",
        "text_completion",
        "embeddings",
        "retrieval",
        "create_agent",
        "invoke_agent",
        "execute_tool",
        "invoke_workflow",
        "plan",
    ];
    /// (key, OTLP value type) of the registry's attributes used here.
    const SEMCONV_ATTRIBUTES: &[(&str, &str)] = &[
        ("gen_ai.provider.name", "stringValue"),
        ("gen_ai.operation.name", "stringValue"),
        ("gen_ai.request.model", "stringValue"),
        ("gen_ai.request.stream", "boolValue"),
        ("gen_ai.response.id", "stringValue"),
        ("gen_ai.response.model", "stringValue"),
        ("gen_ai.response.finish_reasons", "arrayValue"),
        ("gen_ai.response.time_to_first_chunk", "doubleValue"),
        ("gen_ai.usage.input_tokens", "intValue"),
        ("gen_ai.usage.output_tokens", "intValue"),
        ("gen_ai.usage.cache_read.input_tokens", "intValue"),
        ("gen_ai.usage.reasoning.output_tokens", "intValue"),
    ];

    fn gen_ai_attrs(ai: Value) -> Vec<(String, Value)> {
        let line = json!({"id": "x", "kind": "access", "time": "2026-01-01T00:00:00.000Z", "ai": ai}).to_string();
        let rec: Value = serde_json::from_str(&otlp_record(&line)).unwrap_or_default();
        rec["attributes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["key"].as_str().is_some_and(|k| k.starts_with("gen_ai.")))
            .map(|a| (a["key"].as_str().unwrap_or("").to_string(), a["value"].clone()))
            .collect()
    }

    #[test]
    fn gen_ai_attributes_are_the_conventions_published_names_and_values() {
        // Every provider the schema lists: the conventions' name where they have one.
        let names: Vec<(&str, &str)> = crate::ai::PROVIDERS.iter().map(|p| (*p, semconv_provider(p))).collect();
        assert_eq!(
            names,
            vec![
                ("openai", "openai"),
                ("azure_openai", "azure.ai.openai"),
                ("anthropic", "anthropic"),
                ("aws_bedrock", "aws.bedrock"),
                ("gcp_gemini", "gcp.gemini"),
                ("gcp_vertex_ai", "gcp.vertex_ai"),
                ("cohere", "cohere"),
                ("mistral", "mistral_ai"),
                ("ollama", "ollama"),
                ("openai_compatible", "openai_compatible"),
            ]
        );
        for (p, name) in &names {
            let listed = SEMCONV_PROVIDERS.contains(name);
            assert_eq!(listed, !matches!(*p, "ollama" | "openai_compatible"), "{p} -> {name}");
        }
        for op in ["chat", "text_completion", "embeddings", "generate_content", "responses"] {
            assert!(SEMCONV_OPERATIONS.contains(&semconv_operation(op)), "{op}");
        }
        let attrs = gen_ai_attrs(json!({
            "provider": "azure_openai", "operation": "chat", "request_model": "prod-4o",
            "response_model": "gpt-4o-2024-11-20", "response_id": "chatcmpl-1", "stream": true,
            "usage": {"input_tokens": 9, "output_tokens": 5, "cached_input_tokens": 4, "reasoning_tokens": 2, "total_tokens": 14},
            "finish_reasons": ["stop"], "time_to_first_token_ms": 250,
        }));
        assert_eq!(
            attrs,
            vec![
                ("gen_ai.provider.name".into(), json!({"stringValue": "azure.ai.openai"})),
                ("gen_ai.operation.name".into(), json!({"stringValue": "chat"})),
                ("gen_ai.request.model".into(), json!({"stringValue": "prod-4o"})),
                ("gen_ai.response.model".into(), json!({"stringValue": "gpt-4o-2024-11-20"})),
                ("gen_ai.response.id".into(), json!({"stringValue": "chatcmpl-1"})),
                ("gen_ai.request.stream".into(), json!({"boolValue": true})),
                ("gen_ai.usage.input_tokens".into(), json!({"intValue": "9"})),
                ("gen_ai.usage.output_tokens".into(), json!({"intValue": "5"})),
                ("gen_ai.usage.cache_read.input_tokens".into(), json!({"intValue": "4"})),
                ("gen_ai.usage.reasoning.output_tokens".into(), json!({"intValue": "2"})),
                ("gen_ai.response.finish_reasons".into(), json!({"arrayValue": {"values": [{"stringValue": "stop"}]}})),
                ("gen_ai.response.time_to_first_chunk".into(), json!({"doubleValue": 0.25})),
            ]
        );
        for (k, v) in &attrs {
            let ty = SEMCONV_ATTRIBUTES.iter().find(|(name, _)| name == k).map(|(_, t)| *t);
            assert!(ty.is_some_and(|t| v.get(t).is_some()), "{k} {v} is not the registry's attribute and type");
        }
    }

    #[test]
    fn token_counts_follow_the_conventions_definitions() {
        let counts = |provider: &str| {
            gen_ai_attrs(json!({"provider": provider, "operation": "chat",
                "usage": {"input_tokens": 10, "output_tokens": 5, "cached_input_tokens": 4, "reasoning_tokens": 3}}))
            .into_iter()
            .filter(|(k, _)| k.starts_with("gen_ai.usage."))
            .map(|(k, v)| (k, v["intValue"].as_str().unwrap_or("").to_string()))
            .collect::<Vec<_>>()
        };
        let row = |i: &str, o: &str| {
            vec![
                ("gen_ai.usage.input_tokens".to_string(), i.to_string()),
                ("gen_ai.usage.output_tokens".to_string(), o.to_string()),
                ("gen_ai.usage.cache_read.input_tokens".to_string(), "4".to_string()),
                ("gen_ai.usage.reasoning.output_tokens".to_string(), "3".to_string()),
            ]
        };
        // Input includes cached tokens; output includes reasoning tokens.
        assert_eq!(counts("openai"), row("10", "5"));
        assert_eq!(counts("anthropic"), row("14", "5"));
        assert_eq!(counts("aws_bedrock"), row("14", "5"));
        assert_eq!(counts("gcp_gemini"), row("10", "8"));
        assert_eq!(counts("gcp_vertex_ai"), row("10", "8"));
        // Counts the provider did not send stay absent.
        let none = gen_ai_attrs(json!({"provider": "openai", "usage": {"input_tokens": null}}));
        assert!(none.iter().all(|(k, _)| !k.starts_with("gen_ai.usage.")), "{none:?}");
    }
}
