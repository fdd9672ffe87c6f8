//! `ai.stream_usage: inject`, invisibly.
//!
//! OpenAI-style streams carry token usage only when the request asks for it
//! (`stream_options.include_usage`). The filter adds that option where the
//! provider and API version accept it ([`RULES`]), and then takes back from
//! the stream what the option changed, so the client receives what it would
//! have received without the filter:
//!
//! - the usage-only chunk (`"choices": []` with a `usage` object) is not
//!   passed on (its usage has been read for the event);
//! - every other chunk carries `"usage": null` at its top level once the
//!   option is on; that member is removed again, byte for byte.
//!
//! Nothing else changes: a chunk without a null `usage` member goes out as it
//! came. Where the stream redactor reads the stream it does this itself on the
//! frames it has parsed ([`crate::classify::StreamRedactor::take_back_injected_usage`]);
//! otherwise [`UsageChunks`] reframes the stream. A request the upstream refuses naming `stream_options` (a 4xx) is
//! recorded in the event (`outcome.reason: stream_options_rejected`).

use super::detect::Detected;
use crate::sse::{SseFrame, SseParser};
use serde_json::Value;

/// Whether a provider takes `stream_options.include_usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Accepted: inject.
    Inject,
    /// Accepted from this Azure `api-version` on (`YYYY-MM-DD`, previews
    /// compared by their date), and by the versionless v1 API.
    AzureFrom(&'static str),
    /// Usage comes in the stream unasked: nothing to inject.
    Unasked,
    /// The provider refuses the option (and sends usage unasked).
    Refused,
}

/// Per provider, for its streaming Chat Completions and Completions APIs.
pub const RULES: &[(&str, Rule)] = &[
    ("openai", Rule::Inject),
    ("azure_openai", Rule::AzureFrom("2024-10-21")),
    ("openai_compatible", Rule::Inject),
    ("mistral", Rule::Refused),
    ("anthropic", Rule::Unasked),
    ("aws_bedrock", Rule::Unasked),
    ("gcp_gemini", Rule::Unasked),
    ("gcp_vertex_ai", Rule::Unasked),
    ("cohere", Rule::Unasked),
    ("ollama", Rule::Unasked),
];

/// Whether `stream_options.include_usage` may be added to this call: an
/// OpenAI-style Chat Completions or Completions request (the Responses API
/// sends usage in `response.completed`) to a provider and API version that
/// accept it.
pub fn accepts(d: &Detected) -> bool {
    if !matches!(d.api, "chat_completions" | "completions" | "") {
        return false;
    }
    match RULES.iter().find(|(p, _)| *p == d.provider).map(|(_, r)| *r) {
        Some(Rule::Inject) => true,
        Some(Rule::AzureFrom(min)) => d.api_version.as_deref().is_some_and(|v| azure_at_least(v, min)),
        Some(Rule::Unasked | Rule::Refused) | None => false,
    }
}

/// `2024-10-21`, `2025-01-01-preview` ≥ `min`; `v1` always.
fn azure_at_least(version: &str, min: &str) -> bool {
    if version == "v1" {
        return true;
    }
    let date = version.get(..10).unwrap_or("");
    let well_formed =
        date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    date.len() == 10 && well_formed && date >= min
}

/// `ai.stream_usage: inject`: a streaming OpenAI-style request without
/// `stream_options.include_usage` gets it, where [`accepts`] says the
/// upstream takes it. `None` when nothing changes.
pub fn inject_stream_usage(d: &Detected, body: &[u8]) -> Option<Vec<u8>> {
    if !accepts(d) || serde_json::from_slice::<StreamProbe>(body).is_ok_and(|p| !p.0) {
        return None;
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object_mut()?;
    if obj.get("stream") != Some(&Value::Bool(true)) || !(obj.contains_key("messages") || obj.contains_key("prompt")) {
        return None;
    }
    let opts = obj.entry("stream_options").or_insert_with(|| Value::Object(serde_json::Map::new())).as_object_mut()?;
    if opts.contains_key("include_usage") {
        return None;
    }
    opts.insert("include_usage".into(), Value::Bool(true));
    serde_json::to_vec(&v).ok()
}

/// Whether a JSON object's (last) top-level `stream` member is `true`, read
/// without building the body's `Value`. Only its `false` is used: with it
/// [`inject_stream_usage`] has nothing to do whatever the full parse says
/// (it fails, or finds `stream` not `true`); anything but an object is an
/// error, and an error leaves the decision to the full parse.
struct StreamProbe(bool);

impl<'de> serde::Deserialize<'de> for StreamProbe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ProbeVisitor)
    }
}

struct ProbeVisitor;

impl<'de> serde::de::Visitor<'de> for ProbeVisitor {
    type Value = StreamProbe;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StreamProbe, A::Error> {
        let mut stream = false;
        while let Some(is_stream) = map.next_key_seed(KeyIsStream)? {
            if is_stream {
                stream = map.next_value::<Value>()? == Value::Bool(true);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(StreamProbe(stream))
    }
}

/// A member name, compared with `stream` without keeping it.
struct KeyIsStream;

impl<'de> serde::de::DeserializeSeed<'de> for KeyIsStream {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyIsStream {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == "stream")
    }
}

/// Takes the injected usage back out of an SSE stream (see the module doc).
#[derive(Debug)]
pub struct UsageChunks {
    parser: SseParser,
    /// Usage-only chunks withheld from the client.
    pub dropped: u32,
}

impl Default for UsageChunks {
    fn default() -> Self {
        UsageChunks { parser: SseParser::new(super::MAX_JSON_BYTES), dropped: 0 }
    }
}

impl UsageChunks {
    /// One piece of the stream as the client would get it; returns what goes
    /// on (whole frames; an unfinished frame waits for its end).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut frames = Vec::new();
        self.parser.push(bytes, &mut frames);
        self.emit(frames)
    }

    /// End of the stream: what is left, as it came.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut frames = Vec::new();
        self.parser.finish(&mut frames);
        self.emit(frames)
    }

    /// Bytes of an unfinished frame held back.
    pub fn pending(&self) -> usize {
        self.parser.pending()
    }

    fn emit(&mut self, frames: Vec<SseFrame>) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            if usage_only(&f) {
                self.dropped = self.dropped.saturating_add(1);
                continue;
            }
            match strip_null_usage(&f.raw) {
                Some(b) => out.extend_from_slice(&b),
                None => out.extend_from_slice(&f.raw),
            }
        }
        out
    }
}

/// A chunk of `"choices": []` with a `usage` object: the one the option added.
fn usage_only(f: &SseFrame) -> bool {
    if f.oversize || !f.has_data || !empty_choices(f.data.as_bytes()) {
        return false;
    }
    serde_json::from_str::<Value>(&f.data).is_ok_and(|v| is_usage_only(&v))
}

/// The parsed chunk is the usage-only one (the stream redactor, which has
/// parsed it already, asks this).
pub(crate) fn is_usage_only(v: &Value) -> bool {
    super::fields::member(v, "choices").and_then(Value::as_array).is_some_and(Vec::is_empty)
        && super::fields::member(v, "usage").is_some_and(Value::is_object)
}

/// Removes a top-level `"usage": null` from a chunk the redactor re-encodes.
pub(crate) fn remove_null_usage(v: &mut Value) {
    if let Some(o) = v.as_object_mut().filter(|o| o.get("usage").is_some_and(Value::is_null)) {
        o.shift_remove("usage");
    }
}

/// A cheap look for `"choices"` followed by an empty array (before parsing).
fn empty_choices(data: &[u8]) -> bool {
    let key = b"\"choices\"";
    let mut from = 0;
    while let Some(i) = data.get(from..).and_then(|d| memchr::memmem::find(d, key)) {
        let rest = data.get(from + i + key.len()..).unwrap_or_default();
        let mut it = rest.iter().copied().filter(|b| !b.is_ascii_whitespace());
        if it.next() == Some(b':') && it.next() == Some(b'[') && it.next() == Some(b']') {
            return true;
        }
        from += i + 1;
    }
    false
}

/// The frame without the top-level `"usage": null` member of its JSON data,
/// when it has exactly one `data:` line holding a JSON object with one.
pub(crate) fn strip_null_usage(raw: &[u8]) -> Option<Vec<u8>> {
    memchr::memmem::find(raw, b"\"usage\"")?;
    let mut data_lines = raw.split(|&b| b == b'\n').filter(|l| l.starts_with(b"data:"));
    let line = data_lines.next()?;
    if data_lines.next().is_some() {
        return None;
    }
    let line_at = offset_of(raw, line)?;
    let mut json_at = line_at + 5;
    if raw.get(json_at) == Some(&b' ') {
        json_at += 1;
    }
    let json_end = line_at + line.len() - usize::from(line.ends_with(b"\r"));
    let (a, b) = null_member(raw.get(json_at..json_end)?, b"usage")?;
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(raw.get(..json_at + a)?);
    out.extend_from_slice(raw.get(json_at + b..)?);
    Some(out)
}

/// Where a sub-slice of `whole` starts.
fn offset_of(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

/// The byte range to cut so the top-level member `name: null` of a JSON
/// object disappears with one of its commas, or `None`.
fn null_member(json: &[u8], name: &[u8]) -> Option<(usize, usize)> {
    let ws = |i: usize| {
        let mut i = i;
        while json.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    // End of the previous member's value, once there is one.
    let mut prev_value_end: Option<usize> = None;
    loop {
        let key_start = ws(i);
        if json.get(key_start) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(json, key_start)?;
        let colon = ws(key_end);
        if json.get(colon) != Some(&b':') {
            return None;
        }
        let value_start = ws(colon + 1);
        let value_end = value_end(json, value_start)?;
        let after = ws(value_end);
        let is_it =
            json.get(key_start + 1..key_end - 1) == Some(name) && json.get(value_start..value_end) == Some(b"null");
        if is_it {
            return match (prev_value_end, json.get(after)) {
                // `..., "usage": null` → cut from the end of the previous value.
                (Some(p), _) => Some((p, value_end)),
                // `{"usage": null, ...` → cut through the comma that follows.
                (None, Some(b',')) => Some((key_start, ws(after + 1))),
                _ => None,
            };
        }
        match json.get(after) {
            Some(b',') => {
                prev_value_end = Some(value_end);
                i = after + 1;
            }
            _ => return None,
        }
    }
}

/// End (exclusive) of the string starting with the quote at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut k = i + 1;
    while let Some(&c) = b.get(k) {
        match c {
            b'\\' => k += 2,
            b'"' => return Some(k + 1),
            _ => k += 1,
        }
    }
    None
}

/// End (exclusive) of the JSON value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut k = i;
            while let Some(&c) = b.get(k) {
                match c {
                    b'"' => {
                        k = string_end(b, k)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(k + 1);
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            None
        }
        _ => {
            let mut k = i;
            while b.get(k).is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace()) {
                k += 1;
            }
            (k > i).then_some(k)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::detect;
    use serde_json::json;

    fn det(path: &str, host: &str) -> Detected {
        detect("POST", path, host, None).unwrap_or_else(|| panic!("{path}"))
    }

    #[test]
    fn the_table_decides_per_provider_and_azure_version() {
        let yes = |p: &str, h: &str| accepts(&det(p, h));
        assert!(yes("/v1/chat/completions", "api.openai.com"));
        assert!(yes("/v1/completions", "api.openai.com"));
        assert!(yes("/v1/chat/completions", "vllm.internal:8000"));
        assert!(!yes("/v1/responses", "api.openai.com"), "usage comes in response.completed");
        assert!(!yes("/v1/embeddings", "api.openai.com"));
        assert!(!yes("/v1/chat/completions", "api.mistral.ai"), "Mistral answers 422");
        assert!(!yes("/v1/messages", "api.anthropic.com"));
        assert!(!yes("/v2/chat", "api.cohere.com"));
        assert!(!yes("/api/chat", "localhost:11434"));
        let azure =
            |v: &str| yes(&format!("/openai/deployments/d/chat/completions?api-version={v}"), "r.openai.azure.com");
        assert!(azure("2024-10-21"));
        assert!(azure("2025-01-01-preview"));
        assert!(azure("2024-12-01-preview"));
        assert!(!azure("2024-06-01"), "Azure answers 400 before 2024-10-21");
        assert!(!azure("2024-09-01-preview"));
        assert!(!azure("2024-02-15-preview"));
        assert!(!azure("garbage"));
        assert!(!azure(""));
        assert!(!yes("/openai/deployments/d/chat/completions", "r.openai.azure.com"), "no api-version: not known");
        assert!(yes("/openai/v1/chat/completions?api-version=preview", "r.openai.azure.com"));
    }

    #[test]
    fn injection_adds_the_option_only_where_it_is_missing() {
        let d = det("/v1/chat/completions", "api.openai.com");
        let out = inject_stream_usage(&d, br#"{"model":"m","stream":true,"messages":[]}"#).unwrap_or_default();
        let v: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
        let out = inject_stream_usage(&d, br#"{"stream":true,"stream_options":{},"messages":[]}"#).unwrap_or_default();
        let v: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
        assert_eq!(inject_stream_usage(&d, br#"{"stream":false,"messages":[]}"#), None);
        // The last of two `stream` members counts, as in the full parse; an
        // escaped name is the same name.
        let twice = inject_stream_usage(&d, br#"{"stream":false,"messages":[],"stream":true}"#).unwrap_or_default();
        let v: Value = serde_json::from_slice(&twice).unwrap_or_default();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(inject_stream_usage(&d, br#"{"stream":true,"messages":[],"stream":false}"#), None);
        let escaped = inject_stream_usage(&d, br#"{"\u0073tream":true,"messages":[]}"#).unwrap_or_default();
        let v: Value = serde_json::from_slice(&escaped).unwrap_or_default();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(
            inject_stream_usage(&d, br#"{"stream":true,"messages":[],"stream_options":{"include_usage":false}}"#),
            None
        );
        assert_eq!(inject_stream_usage(&d, br#"{"stream":true,"input":"x"}"#), None);
        assert_eq!(
            inject_stream_usage(&det("/v1/messages", "api.anthropic.com"), br#"{"stream":true,"messages":[]}"#),
            None
        );
        assert_eq!(
            inject_stream_usage(&det("/v1/chat/completions", "api.mistral.ai"), br#"{"stream":true,"messages":[]}"#),
            None
        );
    }

    const WITH: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
        "data: [DONE]\n\n",
    );
    const WITHOUT: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn the_stream_is_what_it_would_have_been_without_the_option_at_every_split() {
        for split in 0..=WITH.len() {
            let mut f = UsageChunks::default();
            let mut out = f.push(&WITH.as_bytes()[..split]);
            out.extend(f.push(&WITH.as_bytes()[split..]));
            out.extend(f.finish());
            assert_eq!(String::from_utf8_lossy(&out), WITHOUT, "split {split}");
            assert_eq!(f.dropped, 1);
        }
    }

    #[test]
    fn only_the_usage_only_chunk_is_dropped() {
        // Azure's first chunk: no choices, prompt filter results, no usage.
        let azure = "data: {\"choices\":[],\"id\":\"\",\"prompt_filter_results\":[]}\n\n";
        let nulls = "data: {\"choices\":[],\"id\":\"\",\"usage\":null,\"prompt_filter_results\":[]}\n\n";
        let keep = [
            azure,
            ": comment\n\n",
            "event: x\ndata: {\"choices\": [ ], \"usage\": \"not an object\"}\n\n",
            "data: {\"choices\":[{\"index\":0}],\"usage\":{\"prompt_tokens\":1}}\n\n",
            "data: not json \"choices\":[] \"usage\"\n\n",
            "data: {\"a\":{\"usage\":null},\"b\":\"\\\"usage\\\":null\"}\n\n",
            "data: {\"usage\":nullx}\n\n",
        ];
        for k in keep {
            let mut f = UsageChunks::default();
            let mut out = f.push(k.as_bytes());
            out.extend(f.finish());
            assert_eq!(String::from_utf8_lossy(&out), k);
            assert_eq!(f.dropped, 0);
        }
        let mut f = UsageChunks::default();
        assert_eq!(String::from_utf8_lossy(&f.push(nulls.as_bytes())), azure);
        let spaced = "data: {\"choices\" : [ ] , \"usage\" : {\"total_tokens\": 4}}\r\n\r\n";
        assert_eq!(f.push(spaced.as_bytes()), b"");
        assert_eq!(f.dropped, 1);
    }

    #[test]
    fn null_usage_is_cut_wherever_it_stands() {
        let cut = |s: &str| null_member(s.as_bytes(), b"usage").map(|(a, b)| format!("{}{}", &s[..a], &s[b..]));
        assert_eq!(cut(r#"{"a":1,"usage":null}"#).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(cut(r#"{"usage":null,"a":1}"#).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(cut(r#"{"a":[1,{"b":"}"}],"usage":null,"c":2}"#).as_deref(), Some(r#"{"a":[1,{"b":"}"}],"c":2}"#));
        assert_eq!(cut(r#"{ "a": 1, "usage": null }"#).as_deref(), Some(r#"{ "a": 1 }"#));
        assert_eq!(cut(r#"{"usage":null}"#), None, "an object of usage alone is left alone");
        assert_eq!(cut(r#"{"usage":{}}"#), None);
        assert_eq!(cut(r#"{"x":"\"usage\":null"}"#), None);
        assert_eq!(cut("[1]"), None);
        assert_eq!(cut(r#"{"a":"#), None);
    }
}
