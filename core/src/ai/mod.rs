//! AI traffic: which provider and operation a request is, which model it
//! asked for and which one answered, token usage in each provider's own
//! fields, finish reasons, safety filters, tool calls, time to first token,
//! and SHA-256 digests of the system prompt, the prompt and the completion
//! (digests only: no text is kept).
//!
//! Streams (OpenAI-style and Anthropic SSE, Gemini SSE and JSON-array
//! streams, Ollama NDJSON, Bedrock `application/vnd.amazon.eventstream`) are
//! parsed incrementally with bounded memory: each complete frame is absorbed
//! and dropped.

mod detect;
mod eventstream;
pub mod fields;
mod injection;
pub mod metrics;
mod prompt;
mod response;
pub mod stream_usage;
#[cfg(test)]
mod tests;

pub use detect::{detect, Detected, Override, OPERATIONS, PROVIDERS};
pub use eventstream::{
    crc32, encode as encode_eventstream, encode_raw as encode_eventstream_raw,
    header_bytes as eventstream_header_bytes, EventStreamParser, Message,
};
pub use injection::injection_score;
pub use prompt::{parse_request, read_request, RequestMeta};
pub use response::{ResponseTracker, MAX_JSON_BYTES};
pub use stream_usage::{inject_stream_usage, UsageChunks};

/// Model names come from clients and upstreams: at most 128 characters reach
/// the event, filter state and metric labels.
pub(crate) fn bounded_model(name: &str) -> String {
    name.chars().take(128).collect()
}

use serde_json::{json, Value};

/// The event's `ai` object.
pub fn event_json(d: &Detected, req: &RequestMeta, resp: Option<&ResponseTracker>, request_start_ms: u64) -> Value {
    let r = resp.map(ResponseTracker::summary).unwrap_or_default();
    let usage = &r.usage;
    // Providers' counts are untrusted u64s: a sum that does not fit is unknown.
    let total = usage.total.or(match (usage.input, usage.output) {
        (Some(i), Some(o)) => i.checked_add(o),
        _ => None,
    });
    json!({
        "provider": d.provider,
        "operation": d.operation,
        "request_model": req.request_model.clone().or_else(|| d.model_from_path.clone()),
        "response_model": r.response_model.or_else(|| if d.provider == "aws_bedrock" { d.model_from_path.clone() } else { None }),
        "response_id": r.response_id,
        "usage": {
            "input_tokens": usage.input,
            "output_tokens": usage.output,
            "cached_input_tokens": usage.cached_input,
            "reasoning_tokens": usage.reasoning,
            "total_tokens": total,
        },
        "stream": req.stream || d.stream_from_path || r.streamed,
        "finish_reasons": r.finish_reasons,
        "safety_filter_triggered": r.safety,
        "system_prompt_sha256": req.system_prompt_sha256,
        "prompt_sha256": req.prompt_sha256,
        "completion_sha256": r.completion_sha256,
        "prompt_injection_score": req.prompt_injection_score,
        "tool_calls": r.tool_calls,
        "time_to_first_token_ms": r.first_token_ms.map(|t| t.saturating_sub(request_start_ms)),
    })
}
