//! Every provider's response fields, as data: one table, read by the response
//! tracker ([`super::ResponseTracker`]: model, id, usage, finish reasons, tool
//! calls, the completion digest) and by the stream redactor
//! (`classify::stream`: which string of a streamed event is a piece of the
//! model's text, and which earlier pieces it continues).
//!
//! Each row ([`Shape`]) is one object shape of one provider's API: a whole JSON
//! answer, or one event of a stream (SSE `data:`, an NDJSON line, a Bedrock
//! eventstream payload, an element of Gemini's JSON-array stream). The first
//! row whose guard holds is the object's shape (rows go from the most specific
//! guard to the least); [`EXTRAS`] rows apply on top of it whenever their guard
//! holds (Bedrock's invocation metrics, its guardrail flag).
//!
//! Paths are `/`-separated member names. `*` walks every element of an array:
//! the element is named by its `index` member when it has one (else by its
//! position), and that name is part of a text channel. `#` walks every element
//! by position and is not part of the channel (Gemini's parts of one candidate
//! are one text). The empty path is the object itself.
//!
//! Counts are taken as the provider sends them, never derived: a later value
//! of the same count replaces an earlier one (Anthropic's `message_delta`
//! replaces the `output_tokens: 1` of `message_start`; within a row, later
//! paths win, so Cohere's `tokens` beat its `billed_units`).

use serde_json::Value;

/// When a row applies.
#[derive(Debug, Clone, Copy)]
pub enum Guard {
    /// The path holds a value other than null.
    Has(&'static str),
    /// The path holds one of these strings.
    Is(&'static str, &'static [&'static str]),
    /// The path holds a string starting with this prefix.
    Prefix(&'static str, &'static str),
    Any(&'static [Guard]),
    All(&'static [Guard]),
}

/// Which count of the event's `ai.usage` a field gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Input,
    Output,
    CachedInput,
    Reasoning,
    Total,
}

/// A string that is the model's text: `completion` text goes into the
/// completion digest; every text field is redacted as one stream across events.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub path: &'static str,
    pub completion: bool,
}

/// Tool calls: each element at `path` (that passes `when`, relative to the
/// element) is one call.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub path: &'static str,
    pub when: Option<Guard>,
}

/// Signs that a safety filter acted (besides the finish reasons in
/// [`SAFETY_REASONS`]).
#[derive(Debug, Clone, Copy)]
pub enum Safety {
    /// Present and not null.
    Has(&'static str),
    /// Equal to this string.
    Is(&'static str, &'static str),
    /// Azure's content filter results: an object of categories, any with
    /// `filtered: true`.
    Filtered(&'static str),
}

#[derive(Debug)]
pub struct Shape {
    /// `provider.api[.event]`: names the row in channels and documentation.
    pub name: &'static str,
    pub when: Guard,
    pub model: &'static [&'static str],
    /// In order of preference: a later-found id of a preferred path replaces
    /// one of a less preferred path; empty strings are not ids.
    pub id: &'static [&'static str],
    pub usage: &'static [(Count, &'static str)],
    pub finish: &'static [&'static str],
    pub text: &'static [Text],
    pub tools: &'static [Tool],
    pub safety: &'static [Safety],
    /// Top-level members naming the text channel (besides the `*` indices).
    pub channel: &'static [&'static str],
}

const NONE: &[&str] = &[];

const fn shape(name: &'static str, when: Guard) -> Shape {
    Shape {
        name,
        when,
        model: NONE,
        id: NONE,
        usage: &[],
        finish: NONE,
        text: &[],
        tools: &[],
        safety: &[],
        channel: NONE,
    }
}

const fn text(path: &'static str) -> Text {
    Text { path, completion: true }
}

/// Redacted across events, not part of the completion digest (tool-call
/// arguments, reasoning).
const fn aside(path: &'static str) -> Text {
    Text { path, completion: false }
}

use Count::{CachedInput, Input, Output, Reasoning, Total};

const OPENAI_USAGE: &[(Count, &str)] = &[
    (Input, "usage/prompt_tokens"),
    (Output, "usage/completion_tokens"),
    (Total, "usage/total_tokens"),
    (CachedInput, "usage/prompt_tokens_details/cached_tokens"),
    (Reasoning, "usage/completion_tokens_details/reasoning_tokens"),
];

const RESPONSES_USAGE: &[(Count, &str)] = &[
    (Input, "usage/input_tokens"),
    (Output, "usage/output_tokens"),
    (Total, "usage/total_tokens"),
    (CachedInput, "usage/input_tokens_details/cached_tokens"),
    (Reasoning, "usage/output_tokens_details/reasoning_tokens"),
];

const RESPONSES_STREAM_USAGE: &[(Count, &str)] = &[
    (Input, "response/usage/input_tokens"),
    (Output, "response/usage/output_tokens"),
    (Total, "response/usage/total_tokens"),
    (CachedInput, "response/usage/input_tokens_details/cached_tokens"),
    (Reasoning, "response/usage/output_tokens_details/reasoning_tokens"),
];

const ANTHROPIC_USAGE: &[(Count, &str)] =
    &[(Input, "usage/input_tokens"), (Output, "usage/output_tokens"), (CachedInput, "usage/cache_read_input_tokens")];

const COHERE_V2_USAGE: &[(Count, &str)] = &[
    (Input, "usage/billed_units/input_tokens"),
    (Output, "usage/billed_units/output_tokens"),
    (Input, "usage/tokens/input_tokens"),
    (Output, "usage/tokens/output_tokens"),
    (CachedInput, "usage/cached_tokens"),
];

const COHERE_V1_USAGE: &[(Count, &str)] = &[
    (Input, "meta/billed_units/input_tokens"),
    (Output, "meta/billed_units/output_tokens"),
    (Input, "meta/tokens/input_tokens"),
    (Output, "meta/tokens/output_tokens"),
    (CachedInput, "meta/cached_tokens"),
];

const CONVERSE_USAGE: &[(Count, &str)] = &[
    (Input, "usage/inputTokens"),
    (Output, "usage/outputTokens"),
    (Total, "usage/totalTokens"),
    (CachedInput, "usage/cacheReadInputTokens"),
];

const RESPONSES_TERMINAL: &[&str] =
    &["response.completed", "response.incomplete", "response.failed", "response.cancelled"];

const ANTHROPIC_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
];

const COHERE_V2_EVENTS: &[&str] = &[
    "message-start",
    "content-start",
    "content-delta",
    "content-end",
    "tool-plan-delta",
    "tool-call-start",
    "tool-call-delta",
    "tool-call-end",
    "citation-start",
    "citation-end",
    "message-end",
    "debug",
];

/// The rows, most specific guard first.
pub static SHAPES: &[Shape] = &[
    // OpenAI Chat Completions and legacy Completions, JSON and stream chunks;
    // Azure OpenAI (with its content filter results), Mistral, Ollama's and
    // other OpenAI-compatible servers.
    Shape {
        model: &["model"],
        id: &["id"],
        usage: OPENAI_USAGE,
        finish: &["choices/*/finish_reason"],
        text: &[
            text("choices/*/delta/content"),
            text("choices/*/text"),
            text("choices/*/message/content"),
            aside("choices/*/delta/tool_calls/*/function/arguments"),
            aside("choices/*/delta/reasoning_content"),
        ],
        tools: &[
            Tool { path: "choices/#/delta/tool_calls/#", when: Some(Guard::Has("id")) },
            Tool { path: "choices/#/message/tool_calls/#", when: None },
        ],
        safety: &[
            Safety::Filtered("choices/#/content_filter_results"),
            Safety::Filtered("prompt_filter_results/#/content_filter_results"),
        ],
        ..shape("openai.chat", Guard::Has("choices"))
    },
    // OpenAI Responses API, stream: the terminal event carries the final
    // status (and usage); `response.created` says `in_progress`, which is no
    // finish reason.
    Shape {
        model: &["response/model"],
        id: &["response/id"],
        usage: RESPONSES_STREAM_USAGE,
        finish: &["response/status", "response/incomplete_details/reason"],
        ..shape("openai.responses.done", Guard::Is("type", RESPONSES_TERMINAL))
    },
    Shape {
        text: &[text("delta")],
        channel: &["item_id", "content_index", "type"],
        ..shape("openai.responses.text", Guard::Is("type", &["response.output_text.delta"]))
    },
    Shape {
        tools: &[Tool { path: "item", when: Some(Guard::Is("type", &["function_call"])) }],
        ..shape("openai.responses.item", Guard::Is("type", &["response.output_item.added"]))
    },
    // Other `response.*` events: their `delta` strings (function-call
    // arguments, refusals, reasoning summaries) are redacted, not digested.
    Shape {
        model: &["response/model"],
        id: &["response/id"],
        text: &[aside("delta")],
        channel: &["item_id", "content_index", "type"],
        ..shape("openai.responses.event", Guard::Prefix("type", "response."))
    },
    // OpenAI Responses API, JSON.
    Shape {
        model: &["model"],
        id: &["id"],
        usage: RESPONSES_USAGE,
        finish: &["status", "incomplete_details/reason"],
        text: &[text("output/#/content/#/text")],
        tools: &[Tool { path: "output/#", when: Some(Guard::Is("type", &["function_call"])) }],
        ..shape("openai.responses", Guard::Is("object", &["response"]))
    },
    // Embeddings (OpenAI, Azure, Mistral, OpenAI-compatible): usage and model.
    Shape {
        model: &["model"],
        usage: &[(Input, "usage/prompt_tokens"), (Total, "usage/total_tokens")],
        ..shape("openai.embeddings", Guard::Is("object", &["list"]))
    },
    // Anthropic Messages (and Bedrock InvokeModel with Claude), JSON.
    Shape {
        model: &["model"],
        id: &["id"],
        usage: ANTHROPIC_USAGE,
        finish: &["stop_reason"],
        text: &[text("content/#/text")],
        tools: &[Tool { path: "content/#", when: Some(Guard::Is("type", &["tool_use"])) }],
        ..shape("anthropic.messages", Guard::Is("type", &["message"]))
    },
    // Anthropic Messages, stream events.
    Shape {
        model: &["message/model"],
        id: &["message/id"],
        usage: &[
            (Input, "message/usage/input_tokens"),
            (Output, "message/usage/output_tokens"),
            (CachedInput, "message/usage/cache_read_input_tokens"),
            (Input, "usage/input_tokens"),
            (Output, "usage/output_tokens"),
            (CachedInput, "usage/cache_read_input_tokens"),
        ],
        finish: &["delta/stop_reason"],
        text: &[text("delta/text"), aside("delta/partial_json"), aside("delta/thinking")],
        tools: &[Tool { path: "content_block", when: Some(Guard::Is("type", &["tool_use"])) }],
        channel: &["index"],
        ..shape("anthropic.messages.event", Guard::Is("type", ANTHROPIC_EVENTS))
    },
    // Cohere Chat v2, stream events: `message-end` carries the finish reason
    // and usage under `delta`.
    Shape {
        id: &["id"],
        usage: &[
            (Input, "delta/usage/billed_units/input_tokens"),
            (Output, "delta/usage/billed_units/output_tokens"),
            (Input, "delta/usage/tokens/input_tokens"),
            (Output, "delta/usage/tokens/output_tokens"),
            (CachedInput, "delta/usage/cached_tokens"),
        ],
        finish: &["delta/finish_reason"],
        text: &[
            text("delta/message/content/text"),
            aside("delta/message/tool_plan"),
            aside("delta/message/tool_calls/function/arguments"),
        ],
        tools: &[Tool { path: "", when: Some(Guard::Is("type", &["tool-call-start"])) }],
        channel: &["index", "type"],
        ..shape("cohere.v2.event", Guard::Is("type", COHERE_V2_EVENTS))
    },
    // Ollama /api/chat and /api/generate, JSON and NDJSON lines.
    Shape {
        model: &["model"],
        usage: &[(Input, "prompt_eval_count"), (Output, "eval_count")],
        finish: &["done_reason"],
        text: &[text("message/content"), text("response"), aside("message/thinking"), aside("thinking")],
        tools: &[Tool { path: "message/tool_calls/#", when: None }],
        ..shape("ollama", Guard::Has("done"))
    },
    // Ollama /api/embed.
    Shape {
        model: &["model"],
        usage: &[(Input, "prompt_eval_count")],
        ..shape("ollama.embed", Guard::All(&[Guard::Has("embeddings"), Guard::Has("model")]))
    },
    // Cohere Chat v2, JSON.
    Shape {
        id: &["id"],
        usage: COHERE_V2_USAGE,
        finish: &["finish_reason"],
        text: &[text("message/content/#/text")],
        tools: &[Tool { path: "message/tool_calls/#", when: None }],
        ..shape("cohere.v2", Guard::All(&[Guard::Has("message"), Guard::Has("finish_reason")]))
    },
    // Cohere Chat v1 stream events (also Cohere Command on Bedrock): text in
    // `text-generation`, the final answer's meta in `stream-end`.
    Shape {
        id: &["response/response_id", "response_id", "generation_id"],
        usage: &[
            (Input, "response/meta/billed_units/input_tokens"),
            (Output, "response/meta/billed_units/output_tokens"),
            (Input, "response/meta/tokens/input_tokens"),
            (Output, "response/meta/tokens/output_tokens"),
            (CachedInput, "response/meta/cached_tokens"),
        ],
        finish: &["finish_reason"],
        text: &[text("text")],
        tools: &[Tool { path: "tool_calls/#", when: None }],
        ..shape("cohere.v1.event", Guard::Has("is_finished"))
    },
    // Cohere Chat v1, JSON (also Cohere Command R on Bedrock).
    Shape {
        id: &["response_id", "generation_id"],
        usage: COHERE_V1_USAGE,
        finish: &["finish_reason"],
        text: &[text("text")],
        tools: &[Tool { path: "tool_calls/#", when: None }],
        ..shape("cohere.v1", Guard::Any(&[Guard::Has("response_id"), Guard::Has("generation_id")]))
    },
    // Cohere Command (generate) on Bedrock, JSON.
    Shape {
        id: &["id"],
        finish: &["generations/#/finish_reason"],
        text: &[text("generations/*/text")],
        ..shape("cohere.generate", Guard::Has("generations"))
    },
    // Gemini and Vertex AI generateContent / streamGenerateContent (SSE, or
    // the elements of a JSON-array stream).
    Shape {
        model: &["modelVersion"],
        id: &["responseId"],
        usage: &[
            (Input, "usageMetadata/promptTokenCount"),
            (Output, "usageMetadata/candidatesTokenCount"),
            (CachedInput, "usageMetadata/cachedContentTokenCount"),
            (Reasoning, "usageMetadata/thoughtsTokenCount"),
            (Total, "usageMetadata/totalTokenCount"),
        ],
        finish: &["candidates/#/finishReason"],
        text: &[text("candidates/*/content/parts/#/text")],
        tools: &[Tool { path: "candidates/#/content/parts/#/functionCall", when: None }],
        safety: &[Safety::Has("promptFeedback/blockReason")],
        ..shape(
            "gemini",
            Guard::Any(&[Guard::Has("candidates"), Guard::Has("usageMetadata"), Guard::Has("promptFeedback")]),
        )
    },
    // Bedrock Converse (and Nova InvokeModel), JSON.
    Shape {
        usage: CONVERSE_USAGE,
        finish: &["stopReason"],
        text: &[text("output/message/content/#/text")],
        tools: &[Tool { path: "output/message/content/#/toolUse", when: None }],
        ..shape("bedrock.converse", Guard::Has("output/message"))
    },
    // Bedrock ConverseStream events (the event type is in the eventstream
    // header; the payload tells them apart by its members).
    Shape {
        usage: CONVERSE_USAGE,
        finish: &["stopReason"],
        text: &[text("delta/text"), aside("delta/toolUse/input"), aside("delta/reasoningContent/text")],
        tools: &[Tool { path: "start/toolUse", when: None }],
        channel: &["contentBlockIndex"],
        ..shape(
            "bedrock.converse.event",
            Guard::Any(&[Guard::Has("contentBlockIndex"), Guard::Has("stopReason"), Guard::Has("usage/inputTokens")]),
        )
    },
    // Amazon Titan Text on Bedrock, JSON.
    Shape {
        usage: &[(Input, "inputTextTokenCount"), (Output, "results/#/tokenCount")],
        finish: &["results/#/completionReason"],
        text: &[text("results/*/outputText")],
        ..shape("bedrock.titan", Guard::Has("results"))
    },
    // Amazon Titan Text on Bedrock, stream chunks.
    Shape {
        usage: &[(Input, "inputTextTokenCount"), (Output, "totalOutputTextTokenCount")],
        finish: &["completionReason"],
        text: &[text("outputText")],
        ..shape("bedrock.titan.chunk", Guard::Has("outputText"))
    },
    // Meta Llama on Bedrock, JSON and stream chunks.
    Shape {
        usage: &[(Input, "prompt_token_count"), (Output, "generation_token_count")],
        finish: &["stop_reason"],
        text: &[text("generation")],
        ..shape("bedrock.llama", Guard::Has("generation"))
    },
    // Mistral on Bedrock (InvokeModel), JSON and stream chunks.
    Shape {
        finish: &["outputs/#/stop_reason"],
        text: &[text("outputs/*/text")],
        ..shape("bedrock.mistral", Guard::Has("outputs"))
    },
];

/// Rows applied on top of an object's shape.
pub static EXTRAS: &[Shape] = &[Shape {
    usage: &[
        (Input, "amazon-bedrock-invocationMetrics/inputTokenCount"),
        (Output, "amazon-bedrock-invocationMetrics/outputTokenCount"),
    ],
    safety: &[Safety::Is("amazon-bedrock-guardrailAction", "INTERVENED")],
    ..shape(
        "bedrock.metrics",
        Guard::Any(&[Guard::Has("amazon-bedrock-invocationMetrics"), Guard::Has("amazon-bedrock-guardrailAction")]),
    )
}];

/// Finish reasons (compared case-insensitively) that mean a safety filter or
/// a refusal stopped the model.
pub const SAFETY_REASONS: &[&str] = &[
    "content_filter",
    "refusal",
    "safety",
    "prohibited_content",
    "blocklist",
    "spii",
    "guardrail_intervened",
    "content_filtered",
];

/// The shape of an object, if any row applies.
pub fn shape_of(v: &Value) -> Option<&'static Shape> {
    SHAPES.iter().find(|s| holds(v, &s.when))
}

/// Whether a guard holds for `v`.
pub fn holds(v: &Value, g: &Guard) -> bool {
    match *g {
        Guard::Has(p) => at(v, p).is_some_and(|x| !x.is_null()),
        Guard::Is(p, values) => at(v, p).and_then(Value::as_str).is_some_and(|s| values.contains(&s)),
        Guard::Prefix(p, pre) => at(v, p).and_then(Value::as_str).is_some_and(|s| s.starts_with(pre)),
        Guard::Any(gs) => gs.iter().any(|g| holds(v, g)),
        Guard::All(gs) => gs.iter().all(|g| holds(v, g)),
    }
}

/// `v.get(key)` for an object: small objects (every streamed event, most
/// answers) are searched in order, which costs less than hashing the name.
pub fn member<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) if m.len() <= SMALL_OBJECT => m.iter().find(|(k, _)| k.as_str() == key).map(|(_, x)| x),
        Value::Object(m) => m.get(key),
        _ => None,
    }
}

/// [`member`], for writing.
pub fn member_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let Value::Object(m) = v else { return None };
    if m.len() > SMALL_OBJECT {
        return m.get_mut(key);
    }
    m.iter_mut().find(|(k, _)| k.as_str() == key).map(|(_, x)| x)
}

/// Objects up to this many members are searched in order.
const SMALL_OBJECT: usize = 16;

/// The value at a path without wildcards.
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(v);
    }
    let mut cur = v;
    let mut rest = path;
    while !rest.is_empty() {
        let (head, tail) = first_step(rest);
        cur = member(cur, head)?;
        rest = tail;
    }
    Some(cur)
}

/// `path.split_once('/')`, or the whole path and nothing: a byte search
/// (the table's paths are short and ASCII).
fn first_step(path: &str) -> (&str, &str) {
    match path.bytes().position(|b| b == b'/') {
        Some(i) => (path.get(..i).unwrap_or(""), path.get(i + 1..).unwrap_or("")),
        None => (path, ""),
    }
}

/// Calls `f` with every value a path reaches (wildcards walk arrays).
pub fn each<'a>(v: &'a Value, path: &str, f: &mut dyn FnMut(&'a Value)) {
    if path.is_empty() {
        f(v);
        return;
    }
    let (head, rest) = first_step(path);
    let next = |x: &'a Value, f: &mut dyn FnMut(&'a Value)| {
        if rest.is_empty() {
            f(x)
        } else {
            each(x, rest, f)
        }
    };
    match head {
        "*" | "#" => {
            for x in v.as_array().into_iter().flatten() {
                next(x, f);
            }
        }
        key => {
            if let Some(x) = member(v, key) {
                next(x, f);
            }
        }
    }
}

/// [`each`], with the concrete steps to each value (array elements by
/// position) in `ptr`.
pub fn each_at<'a>(v: &'a Value, path: &'static str, ptr: &mut Vec<Seg>, f: &mut dyn FnMut(&'a Value, &[Seg])) {
    if path.is_empty() {
        f(v, ptr);
        return;
    }
    let (head, rest) = first_step(path);
    match head {
        "*" | "#" => {
            for (k, x) in v.as_array().into_iter().flatten().enumerate() {
                ptr.push(Seg::Idx(k));
                each_at(x, rest, ptr, f);
                ptr.pop();
            }
        }
        key => {
            if let Some(x) = member(v, key) {
                ptr.push(Seg::Key(key));
                each_at(x, rest, ptr, f);
                ptr.pop();
            }
        }
    }
}

/// The value at concrete steps.
pub fn at_ptr<'a>(v: &'a Value, ptr: &[Seg]) -> Option<&'a Value> {
    let mut cur = v;
    for s in ptr {
        cur = match *s {
            Seg::Key(k) => member(cur, k)?,
            Seg::Idx(i) => cur.as_array()?.get(i)?,
        };
    }
    Some(cur)
}

/// A provider's count: an unsigned integer, or an integral number written as
/// a float (Cohere's schema types its counts as `number`).
pub fn count(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64().filter(|f| f.fract() == 0.0 && (0.0..9.007_199_254_740_992e15).contains(f)).map(|f| f as u64)
    })
}

/// One step of a concrete path into a parsed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(&'static str),
    Idx(usize),
}

/// The streamed text piece of an event: where it is, the channel it
/// continues, and its location for findings (`$.choices[0].delta.content`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub ptr: Vec<Seg>,
    pub channel: String,
    pub location: String,
}

/// The first text field of the event's shape that holds a string.
pub fn stream_piece(v: &Value) -> Option<Piece> {
    let shape = shape_of(v)?;
    for t in shape.text {
        let mut ptr = Vec::new();
        let mut names = Vec::new();
        if first_string(v, t.path, &mut ptr, &mut names) {
            return Some(piece(v, shape, t, ptr, &names));
        }
    }
    None
}

/// Walks `path` to the first string: on success `ptr` holds the concrete
/// steps and `names` the names of the `*` elements (their `index` member or
/// position), by step.
fn first_string(v: &Value, path: &'static str, ptr: &mut Vec<Seg>, names: &mut Vec<(usize, u64)>) -> bool {
    if path.is_empty() {
        return v.is_string();
    }
    let (head, rest) = first_step(path);
    match head {
        "*" | "#" => {
            for (k, x) in v.as_array().into_iter().flatten().enumerate() {
                ptr.push(Seg::Idx(k));
                let named = head == "*";
                if named {
                    names.push((ptr.len() - 1, member(x, "index").and_then(Value::as_u64).unwrap_or(k as u64)));
                }
                if first_string(x, rest, ptr, names) {
                    return true;
                }
                if named {
                    names.pop();
                }
                ptr.pop();
            }
            false
        }
        key => {
            let Some(x) = member(v, key) else { return false };
            ptr.push(Seg::Key(key));
            let found = first_string(x, rest, ptr, names);
            if !found {
                ptr.pop();
            }
            found
        }
    }
}

fn piece(v: &Value, shape: &Shape, t: &Text, ptr: Vec<Seg>, names: &[(usize, u64)]) -> Piece {
    use std::fmt::Write;
    let mut location = String::with_capacity(32);
    location.push('$');
    let mut channel = String::with_capacity(shape.name.len() + t.path.len() + 8);
    channel.push_str(shape.name);
    channel.push(':');
    channel.push_str(t.path);
    for (i, s) in ptr.iter().enumerate() {
        match s {
            Seg::Key(k) => {
                location.push('.');
                location.push_str(k);
            }
            Seg::Idx(k) => {
                let name = names.iter().find(|(at, _)| *at == i).map(|&(_, n)| n);
                location.push('[');
                push_decimal(&mut location, name.unwrap_or(*k as u64));
                location.push(']');
                if let Some(n) = name {
                    channel.push(':');
                    push_decimal(&mut channel, n);
                }
            }
        }
    }
    for m in shape.channel {
        match member(v, m) {
            Some(Value::String(s)) => {
                channel.push(':');
                channel.push_str(s);
            }
            Some(x @ Value::Number(_)) => {
                let _ = write!(channel, ":{x}");
            }
            _ => channel.push_str(":-"),
        }
    }
    Piece { ptr, channel, location }
}

/// `n` in decimal (what `{n}` formats), without the formatting machinery.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    for &d in digits.get(at..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_row_has_a_unique_name_and_is_reachable() {
        let mut names: Vec<&str> = SHAPES.iter().chain(EXTRAS).map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
    }

    #[test]
    fn pieces_name_their_channel_and_location() {
        let v = json!({"choices": [{"index": 2, "delta": {"content": "hi"}}]});
        let p = stream_piece(&v).unwrap();
        assert_eq!(p.ptr, vec![Seg::Key("choices"), Seg::Idx(0), Seg::Key("delta"), Seg::Key("content")]);
        assert_eq!(p.location, "$.choices[2].delta.content");
        assert_eq!(p.channel, "openai.chat:choices/*/delta/content:2");
        let v =
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "function": {"arguments": "{"}}]}}]});
        let p = stream_piece(&v).unwrap();
        assert_eq!(p.location, "$.choices[0].delta.tool_calls[1].function.arguments");
        assert_eq!(p.channel, "openai.chat:choices/*/delta/tool_calls/*/function/arguments:0:1");
        let v = json!({"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": "x"}});
        let p = stream_piece(&v).unwrap();
        assert_eq!(
            (p.location.as_str(), p.channel.as_str()),
            ("$.delta.text", "anthropic.messages.event:delta/text:3")
        );
        let v = json!({"candidates": [{"content": {"parts": [{"functionCall": {}}, {"text": "t"}]}, "index": 0}]});
        let p = stream_piece(&v).unwrap();
        assert_eq!(p.location, "$.candidates[0].content.parts[1].text");
        assert_eq!(p.channel, "gemini:candidates/*/content/parts/#/text:0");
        let v = json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "x"}}}});
        let p = stream_piece(&v).unwrap();
        assert_eq!(p.location, "$.delta.message.content.text");
        assert_eq!(p.channel, "cohere.v2.event:delta/message/content/text:0:content-delta");
        assert_eq!(stream_piece(&json!({"choices": [{"index": 0, "delta": {}}]})), None);
        assert_eq!(stream_piece(&json!({"unknown": "x"})), None);
    }

    /// Paths of `g` whose string a guard compares (`Is`, `Prefix`), below `base`.
    fn compared(base: &str, g: &Guard, out: &mut Vec<String>) {
        let join = |p: &str| match (base, p) {
            ("", p) => p.to_string(),
            (b, "") => b.to_string(),
            (b, p) => format!("{b}/{p}"),
        };
        match *g {
            Guard::Has(_) => {}
            Guard::Is(p, _) | Guard::Prefix(p, _) => out.push(join(p)),
            Guard::Any(gs) | Guard::All(gs) => gs.iter().for_each(|g| compared(base, g, out)),
        }
    }

    /// Whether two table paths can reach the same value: as long, the same
    /// members, array steps (`*`, `#`) where the other has one.
    fn may_meet(a: &str, b: &str) -> bool {
        let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
        let wild = |s: &str| s == "*" || s == "#";
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || (wild(x) && wild(y)))
    }

    /// What a repeated streamed event (the last one but for its text piece's
    /// string) lets the response tracker and the stream redactor skip rests
    /// on this: no field the table reads as a string, other than the text,
    /// can be a text field of any row. Everything else a row reads of a string is whether it is
    /// there and not null, or a count (`None` for any string), so a row's
    /// guard, model, id, usage, finish reasons, safety and tool calls are the
    /// same for any string in the text piece.
    #[test]
    fn no_field_read_as_a_string_is_a_text_field() {
        let texts: Vec<&str> = SHAPES.iter().chain(EXTRAS).flat_map(|s| s.text.iter().map(|t| t.path)).collect();
        assert!(texts.len() > 20);
        let mut read = Vec::new();
        for s in SHAPES.iter().chain(EXTRAS) {
            compared("", &s.when, &mut read);
            read.extend(s.model.iter().chain(s.id).chain(s.finish).map(|p| p.to_string()));
            for safety in s.safety {
                if let Safety::Is(p, _) = safety {
                    read.push(p.to_string());
                }
            }
            for tool in s.tools {
                if let Some(g) = &tool.when {
                    compared(tool.path, g, &mut read);
                }
            }
        }
        // The stream redactor reads the channel members of a piece's row.
        read.extend(SHAPES.iter().flat_map(|s| s.channel.iter().map(|m| m.to_string())));
        assert!(
            read.contains(&"choices/*/finish_reason".to_string()) && read.contains(&"item/type".to_string()),
            "{read:?}"
        );
        for r in &read {
            for t in &texts {
                assert!(!may_meet(r, t), "{r} may be the text field {t}");
            }
        }
        assert!(may_meet("choices/#/delta/content", "choices/*/delta/content") && !may_meet("delta", "delta/text"));
    }

    #[test]
    fn decimals_are_written_as_format_does() {
        for n in [0, 7, 10, 99, 12_345, u64::MAX] {
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn counts_accept_integral_floats_only() {
        assert_eq!(count(&json!(7)), Some(7));
        assert_eq!(count(&json!(7.0)), Some(7));
        assert_eq!(count(&json!(7.5)), None);
        assert_eq!(count(&json!(-1)), None);
        assert_eq!(count(&json!("7")), None);
    }

    #[test]
    fn wildcards_walk_arrays() {
        let v = json!({"a": [{"b": 1}, {"b": 2}, {"c": 3}]});
        let mut got = Vec::new();
        each(&v, "a/*/b", &mut |x| got.push(x.clone()));
        assert_eq!(got, vec![json!(1), json!(2)]);
        let mut reached = Vec::new();
        each_at(&v, "a/*/b", &mut Vec::new(), &mut |x, p| reached.push((x.clone(), p.to_vec())));
        let steps = |i| vec![Seg::Key("a"), Seg::Idx(i), Seg::Key("b")];
        assert_eq!(reached, vec![(json!(1), steps(0)), (json!(2), steps(1))]);
        assert_eq!(at_ptr(&v, &steps(1)), Some(&json!(2)));
        assert_eq!(at_ptr(&v, &steps(2)), None);
        assert_eq!(at_ptr(&v, &[]), Some(&v));
        let mut all = 0;
        each(&v, "a/#", &mut |_| all += 1);
        assert_eq!(all, 3);
        assert_eq!(at(&v, ""), Some(&v));
    }
}
