//! What a model answered, read incrementally from the response body.
//!
//! Usage is taken from each provider's own fields and never guessed: a
//! count the provider did not send stays `None` (null in the event). A
//! stream cut short (client gone) keeps what it saw and records
//! `client_aborted` among the finish reasons.

use super::detect::Detected;
use super::eventstream::EventStreamParser;
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
}

#[derive(Debug)]
enum Mode {
    Json(Vec<u8>),
    Sse(SseParser),
    EventStream(EventStreamParser),
    Ndjson(Vec<u8>),
}

#[derive(Debug)]
pub struct ResponseTracker {
    mode: Mode,
    s: Summary,
    hasher: Sha256,
    saw_text: bool,
    overflow: bool,
    finished: bool,
}

impl ResponseTracker {
    pub fn new(_d: &Detected, content_type: &str, _stream_hint: bool) -> Self {
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let (mode, streamed) = match mime.as_str() {
            "text/event-stream" => (Mode::Sse(SseParser::new(MAX_JSON_BYTES)), true),
            "application/vnd.amazon.eventstream" => (Mode::EventStream(EventStreamParser::new(MAX_JSON_BYTES)), true),
            "application/x-ndjson" | "application/jsonl" => (Mode::Ndjson(Vec::new()), true),
            _ => (Mode::Json(Vec::new()), false),
        };
        ResponseTracker {
            mode,
            s: Summary { streamed, ..Summary::default() },
            hasher: Sha256::new(),
            saw_text: false,
            overflow: false,
            finished: false,
        }
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
                        self.absorb(&v, now_ms, true);
                    }
                }
            }
        }
    }

    /// End of the response; `aborted` when the client went away first.
    pub fn finish(&mut self, now_ms: u64, aborted: bool) {
        if self.finished {
            return;
        }
        match std::mem::replace(&mut self.mode, Mode::Json(Vec::new())) {
            Mode::Json(buf) if !self.overflow => match serde_json::from_slice::<Value>(&buf) {
                // Gemini's non-SSE stream: a JSON array of chunks.
                Ok(Value::Array(chunks)) => chunks.iter().for_each(|c| self.absorb(c, now_ms, true)),
                Ok(v) => self.absorb(&v, now_ms, false),
                Err(_) => {}
            },
            Mode::Sse(mut p) => {
                let mut frames = Vec::new();
                p.finish(&mut frames);
                for f in frames {
                    self.sse_frame(&f, now_ms);
                }
            }
            Mode::Ndjson(buf) => {
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    self.absorb(&v, now_ms, true);
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
        if self.finished || !f.has_data || f.data.trim() == "[DONE]" {
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
        if f.event.as_deref() == Some("error") || v.get("type").and_then(Value::as_str) == Some("error") {
            self.s.finish_reasons.push("error".into());
        }
        self.absorb(v, now_ms, true);
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
                self.absorb(&inner, now_ms, true);
            }
            return;
        }
        self.absorb(&v, now_ms, true);
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
        let lower = r.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "content_filter"
                | "refusal"
                | "safety"
                | "prohibited_content"
                | "blocklist"
                | "spii"
                | "guardrail_intervened"
                | "content_filtered"
        ) {
            self.s.safety = true;
        }
        if !self.s.finish_reasons.iter().any(|x| x == r) {
            self.s.finish_reasons.push(r.to_string());
        }
    }

    /// Takes whatever this provider-shaped object says. `streaming` objects
    /// contribute text from their deltas; final objects from their messages.
    fn absorb(&mut self, v: &Value, now_ms: u64, streaming: bool) {
        let str_at = |v: &Value, path: &[&str]| -> Option<String> {
            path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str).map(str::to_string)
        };
        // Model and id: OpenAI/Cohere top level, Anthropic message_start,
        // Responses `response`, Gemini `modelVersion`/`responseId`.
        for p in [&["model"][..], &["message", "model"], &["response", "model"], &["modelVersion"]] {
            if let Some(m) = str_at(v, p) {
                self.s.response_model = Some(super::bounded_model(&m));
            }
        }
        if self.s.response_id.is_none() {
            for p in [&["id"][..], &["message", "id"], &["response", "id"], &["responseId"]] {
                if let Some(id) = str_at(v, p) {
                    self.s.response_id = Some(id);
                    break;
                }
            }
        }
        for u in [
            v.get("usage"),
            ptr(v, "/message/usage"),
            ptr(v, "/response/usage"),
            v.get("usageMetadata"),
            v.get("amazon-bedrock-invocationMetrics"),
        ]
        .into_iter()
        .flatten()
        {
            self.usage(u);
        }
        if let Some(t) = ptr(v, "/usage/tokens").or_else(|| ptr(v, "/usage/billed_units")) {
            self.usage(t);
        }
        // Ollama: counts at top level.
        if v.get("eval_count").is_some() || v.get("prompt_eval_count").is_some() {
            let n = |k: &str| v.get(k).and_then(Value::as_u64);
            self.s.usage.input = n("prompt_eval_count").or(self.s.usage.input);
            self.s.usage.output = n("eval_count").or(self.s.usage.output);
        }
        // Finish reasons.
        for p in
            ["/stop_reason", "/delta/stop_reason", "/stopReason", "/done_reason", "/finish_reason", "/response/status"]
        {
            if let Some(r) = ptr(v, p).and_then(Value::as_str) {
                let r = r.to_string();
                self.reason(&r);
            }
        }
        if let Some(r) = ptr(v, "/response/incomplete_details/reason").and_then(Value::as_str) {
            let r = r.to_string();
            self.reason(&r);
        }
        if ptr(v, "/promptFeedback/blockReason").is_some()
            || v.get("amazon-bedrock-guardrailAction").and_then(Value::as_str) == Some("INTERVENED")
        {
            self.s.safety = true;
        }
        for pf in v.get("prompt_filter_results").and_then(Value::as_array).into_iter().flatten() {
            if filtered(pf.get("content_filter_results")) {
                self.s.safety = true;
            }
        }
        // OpenAI-style choices.
        for c in v.get("choices").and_then(Value::as_array).into_iter().flatten() {
            if let Some(r) = c.get("finish_reason").and_then(Value::as_str) {
                let r = r.to_string();
                self.reason(&r);
            }
            if filtered(c.get("content_filter_results")) {
                self.s.safety = true;
            }
            let (msg, key) = if streaming { (c.get("delta"), "delta") } else { (c.get("message"), "message") };
            let _ = key;
            if let Some(m) = msg {
                if let Some(t) = m.get("content").and_then(Value::as_str) {
                    self.text(t, now_ms);
                }
                let calls = m.get("tool_calls").and_then(Value::as_array);
                let n = calls.map_or(0, |a| a.iter().filter(|t| !streaming || t.get("id").is_some()).count());
                self.tools(n as u64);
            }
            if let Some(t) = c.get("text").and_then(Value::as_str) {
                self.text(t, now_ms);
            }
        }
        // Gemini candidates.
        for c in v.get("candidates").and_then(Value::as_array).into_iter().flatten() {
            if let Some(r) = c.get("finishReason").and_then(Value::as_str) {
                let r = r.to_string();
                self.reason(&r);
            }
            for p in ptr(c, "/content/parts").and_then(Value::as_array).into_iter().flatten() {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    self.text(t, now_ms);
                }
                if p.get("functionCall").is_some() {
                    self.tools(1);
                }
            }
        }
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        if streaming {
            // Anthropic content_block_delta / Bedrock contentBlockDelta / Cohere content-delta.
            for p in ["/delta/text", "/delta/message/content/text"] {
                if let Some(t) = ptr(v, p).and_then(Value::as_str) {
                    self.text(t, now_ms);
                }
            }
            if kind == "response.output_text.delta" {
                if let Some(t) = v.get("delta").and_then(Value::as_str) {
                    self.text(t, now_ms);
                }
            }
            let tool_start = ptr(v, "/content_block/type").and_then(Value::as_str) == Some("tool_use")
                || ptr(v, "/start/toolUse").is_some()
                || (kind == "response.output_item.added"
                    && ptr(v, "/item/type").and_then(Value::as_str) == Some("function_call"))
                || kind == "tool-call-start";
            if tool_start {
                self.tools(1);
            }
            // Ollama stream lines.
            if let Some(t) =
                ptr(v, "/message/content").and_then(Value::as_str).or_else(|| v.get("response").and_then(Value::as_str))
            {
                self.text(t, now_ms);
            }
        } else {
            // Anthropic / Cohere content blocks, Responses output, Bedrock Converse, Ollama.
            let blocks = [v.get("content"), ptr(v, "/message/content"), ptr(v, "/output/message/content")];
            for b in blocks.into_iter().flatten() {
                match b {
                    Value::String(t) => self.text(t, now_ms),
                    Value::Array(items) => {
                        for it in items {
                            if let Some(t) = it.get("text").and_then(Value::as_str) {
                                self.text(t, now_ms);
                            }
                            if it.get("type").and_then(Value::as_str) == Some("tool_use") || it.get("toolUse").is_some()
                            {
                                self.tools(1);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let Some(calls) = ptr(v, "/message/tool_calls").and_then(Value::as_array) {
                self.tools(calls.len() as u64);
            }
            for item in v.get("output").and_then(Value::as_array).into_iter().flatten() {
                if item.get("type").and_then(Value::as_str) == Some("function_call") {
                    self.tools(1);
                }
                for part in item.get("content").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(t) = part.get("text").and_then(Value::as_str) {
                        self.text(t, now_ms);
                    }
                }
            }
            if let Some(t) = v.get("response").and_then(Value::as_str) {
                self.text(t, now_ms);
            }
        }
    }

    fn usage(&mut self, u: &Value) {
        let n = |keys: &[&str]| keys.iter().find_map(|k| ptr(u, k).and_then(Value::as_u64));
        let s = &mut self.s.usage;
        if let Some(x) =
            n(&["/prompt_tokens", "/input_tokens", "/inputTokens", "/promptTokenCount", "/inputTokenCount"])
        {
            s.input = Some(x);
        }
        if let Some(x) =
            n(&["/completion_tokens", "/output_tokens", "/outputTokens", "/candidatesTokenCount", "/outputTokenCount"])
        {
            s.output = Some(x);
        }
        if let Some(x) = n(&[
            "/prompt_tokens_details/cached_tokens",
            "/input_tokens_details/cached_tokens",
            "/cache_read_input_tokens",
            "/cacheReadInputTokens",
            "/cachedContentTokenCount",
        ]) {
            s.cached_input = Some(x);
        }
        if let Some(x) = n(&[
            "/completion_tokens_details/reasoning_tokens",
            "/output_tokens_details/reasoning_tokens",
            "/thoughtsTokenCount",
        ]) {
            s.reasoning = Some(x);
        }
        if let Some(x) = n(&["/total_tokens", "/totalTokens", "/totalTokenCount"]) {
            s.total = Some(x);
        }
    }
}

/// Azure content filter results: any category with `filtered: true`.
fn filtered(results: Option<&Value>) -> bool {
    results
        .and_then(Value::as_object)
        .is_some_and(|m| m.values().any(|r| r.get("filtered").and_then(Value::as_bool) == Some(true)))
}

/// `Value::pointer` for the constant paths used here, without its
/// per-segment allocations (this runs for every streamed event).
fn ptr<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').skip(1).try_fold(v, |v, k| match v {
        Value::Object(m) => m.get(k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}
