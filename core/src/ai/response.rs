//! What a model answered, read incrementally from the response body.
//!
//! Usage is taken from each provider's own fields and never guessed: a
//! count the provider did not send stays `None` (null in the event). A
//! stream cut short (client gone) keeps what it saw and records
//! `client_aborted` among the finish reasons.

use super::detect::Detected;
use super::eventstream::EventStreamParser;
use super::fields::{self, Count, Safety, Shape};
use crate::ids::hex;
use crate::sse::{SseFrame, SseParser};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Largest non-streamed body (or stream frame) parsed; larger ones are
/// not parsed (usage stays null) rather than held.
pub const MAX_JSON_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cached_input: Option<u64>,
    pub reasoning: Option<u64>,
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub response_model: Option<String>,
    pub response_id: Option<String>,
    pub usage: Usage,
    pub finish_reasons: Vec<String>,
    pub safety: bool,
    pub tool_calls: Option<u64>,
    pub completion_sha256: Option<String>,
    pub first_token_ms: Option<u64>,
    pub streamed: bool,
    /// The filter added `stream_options` and the upstream refused the request
    /// naming it (a 4xx whose body mentions `stream_options`).
    pub stream_options_rejected: bool,
}

#[derive(Debug)]
enum Mode {
    Json(Vec<u8>),
    Sse(SseParser),
    EventStream(EventStreamParser),
    Ndjson(Vec<u8>),
}

/// What an event's rows took that an event repeating it but for the string
/// of its text piece takes again: the tool calls they counted, and where
/// the strings their completion text paths reached are, in order (the same
/// places in the repeat: its values differ in that one string only), by
/// position (see [`positions`]).
#[derive(Debug)]
struct Taken {
    tools: u64,
    text: Vec<Vec<usize>>,
}

/// Where [`fields::at_ptr`] finds `ptr` in `v`, by position: each member's
/// place in its object (a map's names are unique), each element's index.
/// [`at_positions`] finds the same value there, and in any value of the same
/// structure, without comparing member names.
fn positions(v: &Value, ptr: &[fields::Seg]) -> Option<Vec<usize>> {
    let mut cur = v;
    let mut out = Vec::with_capacity(ptr.len());
    for s in ptr {
        let (i, next) = match *s {
            fields::Seg::Key(k) => {
                cur.as_object()?.iter().enumerate().find(|(_, (n, _))| n.as_str() == k).map(|(i, (_, x))| (i, x))?
            }
            fields::Seg::Idx(i) => (i, cur.as_array()?.get(i)?),
        };
        out.push(i);
        cur = next;
    }
    Some(out)
}

/// The value at [`positions`].
fn at_positions<'a>(v: &'a Value, pos: &[usize]) -> Option<&'a Value> {
    let mut cur = v;
    for &i in pos {
        cur = match cur {
            Value::Object(m) => m.values().nth(i)?,
            Value::Array(a) => a.get(i)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[derive(Debug)]
pub struct ResponseTracker {
    mode: Mode,
    s: Summary,
    hasher: Sha256,
    saw_text: bool,
    overflow: bool,
    finished: bool,
    /// Rank (in its row's `id` list) of the path the response id came from.
    id_rank: Option<usize>,
    /// The response status and whether the filter injected `stream_options`.
    status: Option<u16>,
    injected: bool,
    /// What the last event shown parsed by the stream redactor gave: see
    /// [`Self::sse_event_repeat`].
    last: Option<Taken>,
}

impl ResponseTracker {
    pub fn new(_d: &Detected, content_type: &str, _stream_hint: bool) -> Self {
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let (mode, streamed) = match mime.as_str() {
            "text/event-stream" => (Mode::Sse(SseParser::new(MAX_JSON_BYTES)), true),
            "application/vnd.amazon.eventstream" => (Mode::EventStream(EventStreamParser::new(MAX_JSON_BYTES)), true),
            // Ollama streams NDJSON; Cohere's v1 streams `application/stream+json`.
            "application/x-ndjson" | "application/jsonl" | "application/stream+json" => {
                (Mode::Ndjson(Vec::new()), true)
            }
            _ => (Mode::Json(Vec::new()), false),
        };
        ResponseTracker {
            mode,
            s: Summary { streamed, ..Summary::default() },
            hasher: Sha256::new(),
            saw_text: false,
            overflow: false,
            finished: false,
            id_rank: None,
            status: None,
            injected: false,
            last: None,
        }
    }

    /// The response status, and whether the filter added
    /// `stream_options.include_usage` to the request: a 4xx answer that
    /// names `stream_options` is then recorded as its refusal.
    pub fn set_status(&mut self, status: Option<u16>, injected: bool) {
        self.status = status;
        self.injected = injected;
    }

    /// Response headers that carry usage (Bedrock `invoke`).
    pub fn header(&mut self, name: &str, value: &str) {
        let n = value.trim().parse::<u64>().ok();
        match name {
            "x-amzn-bedrock-input-token-count" => self.s.usage.input = n.or(self.s.usage.input),
            "x-amzn-bedrock-output-token-count" => self.s.usage.output = n.or(self.s.usage.output),
            _ => {}
        }
    }

    pub fn push(&mut self, chunk: &[u8], now_ms: u64) {
        if chunk.is_empty() || self.finished {
            return;
        }
        match &mut self.mode {
            Mode::Json(buf) => {
                if self.s.first_token_ms.is_none() {
                    self.s.first_token_ms = Some(now_ms);
                }
                if buf.len() + chunk.len() > MAX_JSON_BYTES {
                    self.overflow = true;
                    *buf = Vec::new();
                } else if !self.overflow {
                    buf.extend_from_slice(chunk);
                }
            }
            Mode::Sse(p) => {
                let mut frames: Vec<SseFrame> = Vec::new();
                p.push(chunk, &mut frames);
                for f in frames {
                    self.sse_frame(&f, now_ms);
                }
            }
            Mode::EventStream(p) => {
                let mut msgs = Vec::new();
                p.push(chunk, &mut msgs);
                for m in msgs {
                    self.bedrock_message(m.header(":event-type"), m.header(":message-type"), &m.payload, now_ms);
                }
            }
            Mode::Ndjson(buf) => {
                // What was held has no line end: search the new bytes only
                // (rescanning a long unfinished line on every chunk was
                // quadratic), and drain the finished lines at once.
                let mut from = buf.len();
                buf.extend_from_slice(chunk);
                let mut lines = Vec::new();
                let mut start = 0;
                while let Some(i) = buf.get(from..).and_then(|r| r.iter().position(|&b| b == b'\n')) {
                    let end = from + i + 1;
                    lines.push(buf.get(start..end).unwrap_or_default().to_vec());
                    start = end;
                    from = end;
                }
                buf.drain(..start);
                if buf.len() > MAX_JSON_BYTES {
                    buf.clear();
                }
                for l in lines {
                    if let Ok(v) = serde_json::from_slice::<Value>(&l) {
                        self.absorb(&v, now_ms);
                    }
                }
            }
        }
    }

    /// End of the response; `aborted` when the client went away first.
    pub fn finish(&mut self, now_ms: u64, aborted: bool) {
        self.finish_parsed(now_ms, aborted, None);
    }

    /// [`Self::finish`] of a whole JSON answer whose bytes (all of them
    /// pushed) were already parsed: `parsed` is what
    /// `serde_json::from_slice::<Value>` gives for them, read instead of
    /// parsing them again. Other modes ignore it.
    pub fn finish_parsed(&mut self, now_ms: u64, aborted: bool, parsed: Option<&Value>) {
        if self.finished {
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::Json(Vec::new())) {
            Mode::Json(buf) if !self.overflow => {
                let refused = self.injected && self.status.is_some_and(|s| (400..500).contains(&s));
                if refused && memchr::memmem::find(&buf, b"stream_options").is_some() {
                    self.s.stream_options_rejected = true;
                }
                let own;
                let v = match parsed {
                    Some(v) => Some(v),
                    None => {
                        own = serde_json::from_slice::<Value>(&buf).ok();
                        own.as_ref()
                    }
                };
                match v {
                    // Gemini's non-SSE stream: a JSON array of chunks.
                    Some(Value::Array(chunks)) => chunks.iter().for_each(|c| self.absorb(c, now_ms)),
                    Some(v) => self.absorb(v, now_ms),
                    None => {}
                }
            }
            Mode::Sse(mut p) => {
                let mut frames = Vec::new();
                p.finish(&mut frames);
                for f in frames {
                    self.sse_frame(&f, now_ms);
                }
            }
            Mode::Ndjson(buf) => {
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    self.absorb(&v, now_ms);
                }
            }
            _ => {}
        }
        if aborted {
            self.s.finish_reasons.push("client_aborted".into());
        }
        if self.saw_text {
            self.s.completion_sha256 = Some(hex(&self.hasher.clone().finalize()));
        }
        self.finished = true;
    }

    /// See [`Summary::stream_options_rejected`].
    pub fn stream_options_rejected(&self) -> bool {
        self.s.stream_options_rejected
    }

    pub fn first_token_ms(&self) -> Option<u64> {
        self.s.first_token_ms
    }

    pub fn summary(&self) -> Summary {
        self.s.clone()
    }

    /// Whether SSE frames may come from outside ([`Self::sse_event`]) instead
    /// of [`Self::push`]: an event-stream response not yet finished.
    pub fn takes_sse_frames(&self) -> bool {
        matches!(self.mode, Mode::Sse(_)) && !self.finished
    }

    /// One SSE frame parsed elsewhere (the stream redactor), with its JSON
    /// data when that parsed; `None` is parsed here (or is not JSON).
    pub fn sse_event(&mut self, f: &SseFrame, parsed: Option<&Value>, now_ms: u64) {
        self.sse_event_repeat(f, parsed, false, now_ms);
    }

    /// [`Self::sse_event`] of a frame the stream redactor parsed, `repeat`
    /// when its data is the last such event's but for the string of its
    /// text piece (see [`crate::classify::Observer`]). Then only the strings
    /// where the rows' completion text was are read again, and their tool
    /// calls counted again: every other
    /// field the rows read (model, id, usage, finish reasons, safety, the
    /// guards) reads no text field's string (`fields` tests that), so it
    /// reads what it read in the last event, and taking the same values
    /// again changes nothing (they replace, or are added once).
    pub fn sse_event_repeat(&mut self, f: &SseFrame, parsed: Option<&Value>, repeat: bool, now_ms: u64) {
        // (Data that parsed is not `[DONE]`: no trim then.)
        if self.finished || !f.has_data || (parsed.is_none() && f.data.trim() == "[DONE]") {
            return;
        }
        let own;
        let v = match parsed {
            Some(v) => v,
            None => match serde_json::from_str::<Value>(&f.data) {
                Ok(v) => {
                    own = v;
                    &own
                }
                Err(_) => return,
            },
        };
        if f.event.as_deref() == Some("error") || fields::member(v, "type").and_then(Value::as_str) == Some("error") {
            self.s.finish_reasons.push("error".into());
        }
        match (self.last.take(), repeat && parsed.is_some()) {
            (Some(taken), true) => {
                for pos in &taken.text {
                    if let Some(t) = at_positions(v, pos).and_then(Value::as_str) {
                        self.text(t, now_ms);
                    }
                }
                self.tools(taken.tools);
                self.last = Some(taken);
            }
            _ => {
                let mut taken = Taken { tools: 0, text: Vec::new() };
                self.absorb_into(v, now_ms, Some(&mut taken));
                // Only the redactor's parses are ones a repeat refers to.
                self.last = parsed.is_some().then_some(taken);
            }
        }
    }

    fn sse_frame(&mut self, f: &SseFrame, now_ms: u64) {
        self.sse_event(f, None, now_ms);
    }

    fn bedrock_message(&mut self, event: Option<&str>, kind: Option<&str>, payload: &[u8], now_ms: u64) {
        if kind == Some("exception") {
            self.s.finish_reasons.push(event.unwrap_or("exception").to_string());
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(payload) else { return };
        // invoke-with-response-stream: {"bytes": base64(model-native chunk)}
        if let Some(inner) = v.get("bytes").and_then(Value::as_str).and_then(|b| STANDARD.decode(b).ok()) {
            if let Ok(inner) = serde_json::from_slice::<Value>(&inner) {
                self.absorb(&inner, now_ms);
            }
            return;
        }
        self.absorb(&v, now_ms);
    }

    fn text(&mut self, t: &str, now_ms: u64) {
        if t.is_empty() {
            return;
        }
        if self.s.first_token_ms.is_none() || !self.saw_text && self.s.streamed {
            self.s.first_token_ms = Some(now_ms);
        }
        self.saw_text = true;
        self.hasher.update(t.as_bytes());
    }

    fn tools(&mut self, n: u64) {
        if n > 0 {
            self.s.tool_calls = Some(self.s.tool_calls.unwrap_or(0).saturating_add(n));
        }
    }

    fn reason(&mut self, r: &str) {
        if r.is_empty() {
            return;
        }
        if fields::SAFETY_REASONS.iter().any(|s| s.eq_ignore_ascii_case(r)) {
            self.s.safety = true;
        }
        if !self.s.finish_reasons.iter().any(|x| x == r) {
            self.s.finish_reasons.push(r.to_string());
        }
    }

    /// Takes what the object's shape (and the extra rows) say, as the field
    /// table in [`fields`] lists it.
    fn absorb(&mut self, v: &Value, now_ms: u64) {
        self.last = None;
        self.absorb_into(v, now_ms, None);
    }

    /// [`Self::absorb`], noting in `taken` what a repeat takes again.
    fn absorb_into(&mut self, v: &Value, now_ms: u64, mut taken: Option<&mut Taken>) {
        if let Some(shape) = fields::shape_of(v) {
            self.take(v, shape, now_ms, taken.as_deref_mut());
        }
        for extra in fields::EXTRAS {
            if fields::holds(v, &extra.when) {
                self.take(v, extra, now_ms, taken.as_deref_mut());
            }
        }
    }

    /// Takes what the row reads.
    fn take(&mut self, v: &Value, shape: &Shape, now_ms: u64, mut taken: Option<&mut Taken>) {
        for p in shape.model {
            if let Some(m) = fields::at(v, p).and_then(Value::as_str).filter(|m| !m.is_empty()) {
                set_bounded(&mut self.s.response_model, m);
            }
        }
        // Ids: the first non-empty one (Azure's first chunk has `"id": ""`),
        // unless a more preferred path of the row brings one later.
        for (rank, p) in shape.id.iter().enumerate() {
            if self.id_rank.is_some_and(|r| r <= rank) {
                break;
            }
            if let Some(id) = fields::at(v, p).and_then(Value::as_str).filter(|id| !id.is_empty()) {
                set_bounded(&mut self.s.response_id, id);
                self.id_rank = Some(rank);
                break;
            }
        }
        for (which, p) in shape.usage {
            let mut last = None;
            fields::each(v, p, &mut |x| last = fields::count(x).or(last));
            if let Some(n) = last {
                let u = &mut self.s.usage;
                let slot = match which {
                    Count::Input => &mut u.input,
                    Count::Output => &mut u.output,
                    Count::CachedInput => &mut u.cached_input,
                    Count::Reasoning => &mut u.reasoning,
                    Count::Total => &mut u.total,
                };
                *slot = Some(n);
            }
        }
        for p in shape.finish {
            fields::each(v, p, &mut |r| {
                if let Some(r) = r.as_str() {
                    self.reason(r);
                }
            });
        }
        for t in shape.text.iter().filter(|t| t.completion) {
            match taken.as_deref_mut() {
                Some(taken) => fields::each_at(v, t.path, &mut Vec::new(), &mut |x, ptr| {
                    if let Some(x) = x.as_str() {
                        self.text(x, now_ms);
                        // (Found there: it has positions.)
                        taken.text.extend(positions(v, ptr));
                    }
                }),
                None => fields::each(v, t.path, &mut |x| {
                    if let Some(x) = x.as_str() {
                        self.text(x, now_ms);
                    }
                }),
            }
        }
        for tool in shape.tools {
            let mut n = 0u64;
            fields::each(v, tool.path, &mut |x| {
                if !x.is_null() && tool.when.as_ref().is_none_or(|g| fields::holds(x, g)) {
                    n += 1;
                }
            });
            self.tools(n);
            if let Some(taken) = taken.as_deref_mut() {
                taken.tools = taken.tools.saturating_add(n);
            }
        }
        for s in shape.safety {
            let hit = match *s {
                Safety::Has(p) => fields::at(v, p).is_some_and(|x| !x.is_null()),
                Safety::Is(p, want) => fields::at(v, p).and_then(Value::as_str) == Some(want),
                Safety::Filtered(p) => {
                    let mut any = false;
                    fields::each(v, p, &mut |x| any |= filtered(Some(x)));
                    any
                }
            };
            if hit {
                self.s.safety = true;
            }
        }
    }
}

/// `slot = Some(bounded_model(value))`, without a new string when every
/// event of a stream repeats the same value.
fn set_bounded(slot: &mut Option<String>, value: &str) {
    if slot.as_deref() != Some(value) {
        *slot = Some(super::bounded_model(value));
    }
}

/// Azure content filter results: any category with `filtered: true`.
fn filtered(results: Option<&Value>) -> bool {
    results
        .and_then(Value::as_object)
        .is_some_and(|m| m.values().any(|r| r.get("filtered").and_then(Value::as_bool) == Some(true)))
}

#[cfg(test)]
mod position_tests {
    use super::*;
    use fields::Seg::{Idx, Key};

    /// A value found by position is the one its pointer names, in the
    /// value the positions came from and in one of the same structure.
    #[test]
    fn positions_find_what_the_pointer_names() {
        let v = serde_json::json!({"id": "c", "choices": [{"index": 0, "delta": {"role": "a", "content": "x"}}, {"text": "t"}]});
        let same = serde_json::json!({"id": "d", "choices": [{"index": 0, "delta": {"role": "a", "content": "z"}}, {"text": "u"}]});
        for ptr in [
            &[Key("choices"), Idx(0), Key("delta"), Key("content")][..],
            &[Key("choices"), Idx(1), Key("text")],
            &[Key("choices"), Idx(0), Key("index")],
            &[Key("id")],
        ] {
            let pos = positions(&v, ptr).unwrap();
            assert_eq!(at_positions(&v, &pos), fields::at_ptr(&v, ptr));
            assert_eq!(at_positions(&same, &pos), fields::at_ptr(&same, ptr));
        }
        assert_eq!(positions(&v, &[Key("choices"), Idx(2)]), None);
        assert_eq!(positions(&v, &[Key("nope")]), None);
        assert_eq!(positions(&v, &[Key("choices"), Key("delta")]), None);
        assert_eq!(at_positions(&v, &[0, 0]), None);
    }
}
