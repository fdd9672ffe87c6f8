//! Recorded wire formats of each provider (as their API references document
//! them), fed whole, split at every byte boundary, and byte by byte. Every
//! fixture is checked against the whole `ai` object of the event: every field.

use super::*;
use crate::ai::encode_eventstream as encode;
use serde_json::{json, Value};

fn det(method: &str, path: &str, host: &str) -> Detected {
    detect(method, path, host, None).unwrap_or_else(|| panic!("{path}"))
}

/// Runs a body through a tracker in the given chunks; returns the `ai` object.
fn run(d: &Detected, ctype: &str, chunks: &[&[u8]], aborted: bool) -> Value {
    run_req(d, &RequestMeta::default(), ctype, chunks, aborted)
}

/// Chunk `i` arrives at 1000 + i ms; the request started at 900 ms. An
/// event stream is also read from the stream redactor's parses (as the
/// filter does), which must give the same.
fn run_req(d: &Detected, req: &RequestMeta, ctype: &str, chunks: &[&[u8]], aborted: bool) -> Value {
    let mut t = ResponseTracker::new(d, ctype, false);
    for (i, c) in chunks.iter().enumerate() {
        t.push(c, 1000 + i as u64);
    }
    t.finish(5000, aborted);
    let got = event_json(d, req, Some(&t), 900);
    if ctype == "text/event-stream" {
        assert_eq!(from_redactor(d, req, chunks, aborted).0, got);
    }
    got
}

/// [`run_req`] of an event stream, the tracker fed by the stream redactor;
/// also returns how many events it said repeat the last one.
fn from_redactor(d: &Detected, req: &RequestMeta, chunks: &[&[u8]], aborted: bool) -> (Value, usize) {
    use crate::classify::{Actions, Classifier, Rules, StreamRedactor};
    let c = Classifier::new(&Rules { pseudonym_key: b"k".to_vec(), ..Rules::default() });
    let mut r = StreamRedactor::new(Actions::default());
    let mut t = ResponseTracker::new(d, "text/event-stream", false);
    let mut repeats = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let now = 1000 + i as u64;
        r.push_observed(&c, chunk, &mut |f, v, repeat| {
            repeats += usize::from(repeat);
            t.sse_event_repeat(f, v, repeat, now);
        });
    }
    r.finish_observed(&c, &mut |f, v, repeat| {
        repeats += usize::from(repeat);
        t.sse_event_repeat(f, v, repeat, 5000);
    });
    t.finish(5000, aborted);
    (event_json(d, req, Some(&t), 900), repeats)
}

/// Every split point (two chunks) and byte-by-byte give the same result.
fn same_at_every_split(d: &Detected, ctype: &str, body: &[u8]) -> Value {
    same_at_every_split_req(d, &RequestMeta::default(), ctype, body)
}

fn same_at_every_split_req(d: &Detected, req: &RequestMeta, ctype: &str, body: &[u8]) -> Value {
    let whole = run_req(d, req, ctype, &[body], false);
    let strip = |mut v: Value| {
        v["time_to_first_token_ms"] = Value::Null;
        v
    };
    for split in 0..=body.len() {
        let got = run_req(d, req, ctype, &[&body[..split], &body[split..]], false);
        assert_eq!(strip(got), strip(whole.clone()), "split at {split}");
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(strip(run_req(d, req, ctype, &bytes, false)), strip(whole.clone()));
    whole
}

fn sha(s: &str) -> String {
    crate::ids::sha256_hex(s.as_bytes())
}

/// The whole `ai` object expected: `fields` over these defaults (no model,
/// no id, no usage, no finish reason, no text, no tools, no request digests).
fn expect(fields: Value) -> Value {
    let mut v = json!({
        "provider": null, "operation": null, "request_model": null, "response_model": null,
        "response_id": null,
        "usage": {"input_tokens": null, "output_tokens": null, "cached_input_tokens": null,
                  "reasoning_tokens": null, "total_tokens": null},
        "stream": false, "finish_reasons": [], "safety_filter_triggered": false,
        "system_prompt_sha256": null, "prompt_sha256": null, "completion_sha256": null,
        "prompt_injection_score": null, "tool_calls": null, "time_to_first_token_ms": null,
    });
    for (k, x) in fields.as_object().cloned().unwrap_or_default() {
        assert!(v.get(&k).is_some(), "unknown field {k}");
        v[k] = x;
    }
    v
}

fn usage(
    input: Option<u64>,
    output: Option<u64>,
    cached: Option<u64>,
    reasoning: Option<u64>,
    total: Option<u64>,
) -> Value {
    json!({"input_tokens": input, "output_tokens": output, "cached_input_tokens": cached,
           "reasoning_tokens": reasoning, "total_tokens": total})
}

/// The request digests of `{"system": "Be brief.", user: "Hi"}` in any provider's shape.
fn brief_hi() -> Value {
    json!({
        "system_prompt_sha256": sha("Be brief."),
        "prompt_sha256": sha("system\nBe brief.\nuser\nHi\n"),
        "prompt_injection_score": 0,
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    for (k, x) in b.as_object().cloned().unwrap_or_default() {
        a[k] = x;
    }
    a
}

/// Checks a recorded answer (whole, at every split, byte by byte) against
/// the whole expected `ai` object.
fn exact(d: &Detected, request: &str, ctype: &str, body: &[u8], want: Value) {
    let req = parse_request(d, request.as_bytes());
    let got = same_at_every_split_req(d, &req, ctype, body);
    assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap_or_default());
}

const OPENAI_CHAT: &str = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},"service_tier":"default"}"#;

#[test]
fn openai_chat_json() {
    let d = det("POST", "/v1/chat/completions", "api.openai.com");
    let ai = same_at_every_split(&d, "application/json", OPENAI_CHAT.as_bytes());
    assert_eq!(ai["response_model"], "gpt-4.1-2025-04-14");
    assert_eq!(ai["response_id"], "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
    assert_eq!(
        ai["usage"],
        json!({"input_tokens": 19, "output_tokens": 10, "cached_input_tokens": 0, "reasoning_tokens": 0, "total_tokens": 29})
    );
    assert_eq!(ai["finish_reasons"], json!(["stop"]));
    assert_eq!(ai["completion_sha256"], sha("Hello! How can I help?"));
    assert_eq!((ai["stream"].clone(), ai["safety_filter_triggered"].clone()), (json!(false), json!(false)));
}

const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn openai_chat_stream_with_usage() {
    let d = det("POST", "/v1/chat/completions", "api.openai.com");
    let ai = same_at_every_split(&d, "text/event-stream", OPENAI_STREAM.as_bytes());
    assert_eq!(
        ai["usage"],
        json!({"input_tokens": 9, "output_tokens": 2, "cached_input_tokens": 4, "reasoning_tokens": 0, "total_tokens": 11})
    );
    assert_eq!(ai["completion_sha256"], sha("Hello there"));
    assert_eq!(ai["stream"], true);
    assert_eq!(ai["finish_reasons"], json!(["stop"]));
}

#[test]
fn aborted_stream_keeps_what_it_saw_and_never_guesses_usage() {
    let d = det("POST", "/v1/chat/completions", "api.openai.com");
    let cut = OPENAI_STREAM.find("\"finish_reason\":\"stop\"").unwrap_or(0);
    let ai = run(&d, "text/event-stream", &[&OPENAI_STREAM.as_bytes()[..cut]], true);
    assert_eq!(ai["usage"]["input_tokens"], Value::Null);
    assert_eq!(ai["usage"]["output_tokens"], Value::Null);
    assert_eq!(ai["usage"]["total_tokens"], Value::Null);
    assert_eq!(ai["finish_reasons"], json!(["client_aborted"]));
    assert_eq!(ai["completion_sha256"], sha("Hello there"));
}

const ANTHROPIC_MESSAGE: &str = r#"{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"Hi! My name is Claude."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"output_tokens":503,"cache_read_input_tokens":1000,"cache_creation_input_tokens":0}}"#;

#[test]
fn anthropic_json() {
    let d = det("POST", "/v1/messages", "api.anthropic.com");
    let ai = same_at_every_split(&d, "application/json", ANTHROPIC_MESSAGE.as_bytes());
    assert_eq!(ai["response_model"], "claude-sonnet-4-20250514");
    assert_eq!(
        ai["usage"],
        json!({"input_tokens": 2095, "output_tokens": 503, "cached_input_tokens": 1000, "reasoning_tokens": null, "total_tokens": 2598})
    );
    assert_eq!(ai["finish_reasons"], json!(["end_turn"]));
    assert_eq!(ai["completion_sha256"], sha("Hi! My name is Claude."));
}

const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-opus-4-1-20250805\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

#[test]
fn anthropic_stream() {
    let d = det("POST", "/v1/messages", "api.anthropic.com");
    let ai = same_at_every_split(&d, "text/event-stream", ANTHROPIC_STREAM.as_bytes());
    assert_eq!(ai["response_model"], "claude-opus-4-1-20250805");
    assert_eq!(ai["response_id"], "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
    assert_eq!((ai["usage"]["input_tokens"].clone(), ai["usage"]["output_tokens"].clone()), (json!(25), json!(15)));
    assert_eq!(ai["finish_reasons"], json!(["tool_use"]));
    assert_eq!(ai["tool_calls"], 1);
    assert_eq!(ai["completion_sha256"], sha("Hello!"));
}

const GEMINI_SSE: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.0-flash-001\",\"responseId\": \"r-1\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" sky is blue.\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 5,\"totalTokenCount\": 13,\"thoughtsTokenCount\": 2},\"modelVersion\": \"gemini-2.0-flash-001\",\"responseId\": \"r-1\"}\r\n\r\n",
);

#[test]
fn gemini_sse_and_json_array_stream() {
    let d = det(
        "POST",
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        "generativelanguage.googleapis.com",
    );
    let ai = same_at_every_split(&d, "text/event-stream", GEMINI_SSE.as_bytes());
    assert_eq!((ai["provider"].clone(), ai["operation"].clone()), (json!("gcp_gemini"), json!("generate_content")));
    assert_eq!(ai["request_model"], "gemini-2.0-flash");
    assert_eq!(ai["response_model"], "gemini-2.0-flash-001");
    assert_eq!(
        ai["usage"],
        json!({"input_tokens": 8, "output_tokens": 5, "cached_input_tokens": null, "reasoning_tokens": 2, "total_tokens": 13})
    );
    assert_eq!(ai["finish_reasons"], json!(["STOP"]));
    assert_eq!(ai["completion_sha256"], sha("The sky is blue."));
    // Without alt=sse Gemini streams one JSON array.
    let array: Vec<Value> = GEMINI_SSE
        .split("data: ")
        .filter(|s| !s.trim().is_empty())
        .map(|s| serde_json::from_str(s.trim()).unwrap_or_default())
        .collect();
    let body = serde_json::to_string(&array).unwrap_or_default();
    let ai2 = same_at_every_split(&d, "application/json", body.as_bytes());
    assert_eq!(ai2["usage"], ai["usage"]);
    assert_eq!(ai2["completion_sha256"], ai["completion_sha256"]);
}

#[test]
fn gemini_safety_block() {
    let d = det("POST", "/v1beta/models/gemini-2.0-flash:generateContent", "generativelanguage.googleapis.com");
    let body =
        r#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":7,"totalTokenCount":7}}"#;
    let ai = run(&d, "application/json", &[body.as_bytes()], false);
    assert_eq!(ai["safety_filter_triggered"], true);
    assert_eq!(ai["usage"]["output_tokens"], Value::Null);
}

#[test]
fn azure_content_filter() {
    let d = det("POST", "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", "x.openai.azure.com");
    let body = r#"{"id":"c1","model":"gpt-4o-2024-11-20","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}],"choices":[{"index":0,"finish_reason":"content_filter","message":{"role":"assistant","content":null},"content_filter_results":{"violence":{"filtered":true,"severity":"high"}}}],"usage":{"prompt_tokens":12,"completion_tokens":0,"total_tokens":12}}"#;
    let ai = run(&d, "application/json", &[body.as_bytes()], false);
    assert_eq!((ai["provider"].clone(), ai["request_model"].clone()), (json!("azure_openai"), json!("prod-4o")));
    assert_eq!(ai["safety_filter_triggered"], true);
    assert_eq!(ai["finish_reasons"], json!(["content_filter"]));
}

fn bedrock_converse_stream() -> Vec<u8> {
    let ev = |t: &str, p: Value| {
        encode(
            &[(":event-type", t), (":content-type", "application/json"), (":message-type", "event")],
            p.to_string().as_bytes(),
        )
    };
    [
        ev("messageStart", json!({"role": "assistant"})),
        ev("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hola"}})),
        ev("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": " mundo"}})),
        ev("contentBlockStop", json!({"contentBlockIndex": 0})),
        ev("messageStop", json!({"stopReason": "end_turn"})),
        ev(
            "metadata",
            json!({"usage": {"inputTokens": 11, "outputTokens": 4, "totalTokens": 15}, "metrics": {"latencyMs": 300}}),
        ),
    ]
    .concat()
}

#[test]
fn bedrock_converse_stream_eventstream() {
    let d = det("POST", "/model/amazon.nova-lite-v1:0/converse-stream", "bedrock-runtime.us-east-1.amazonaws.com");
    let ai = same_at_every_split(&d, "application/vnd.amazon.eventstream", &bedrock_converse_stream());
    assert_eq!(ai["provider"], "aws_bedrock");
    assert_eq!(
        (ai["request_model"].clone(), ai["response_model"].clone()),
        (json!("amazon.nova-lite-v1:0"), json!("amazon.nova-lite-v1:0"))
    );
    assert_eq!(
        ai["usage"],
        json!({"input_tokens": 11, "output_tokens": 4, "cached_input_tokens": null, "reasoning_tokens": null, "total_tokens": 15})
    );
    assert_eq!(ai["finish_reasons"], json!(["end_turn"]));
    assert_eq!(ai["completion_sha256"], sha("Hola mundo"));
    assert_eq!(ai["stream"], true);
}

#[test]
fn bedrock_invoke_stream_with_anthropic_chunks() {
    use base64::Engine;
    let chunk = |v: Value| {
        let b = base64::engine::general_purpose::STANDARD.encode(v.to_string());
        encode(&[(":event-type", "chunk"), (":message-type", "event")], json!({"bytes": b}).to_string().as_bytes())
    };
    let body = [
        chunk(json!({"type": "message_start", "message": {"id": "msg_bdrk_1", "model": "claude-3-5-sonnet-20240620", "usage": {"input_tokens": 14, "output_tokens": 1}}})),
        chunk(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}})),
        chunk(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}})),
        chunk(json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 14, "outputTokenCount": 3, "invocationLatency": 500, "firstByteLatency": 200}})),
    ]
    .concat();
    let d = det(
        "POST",
        "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/invoke-with-response-stream",
        "bedrock-runtime.us-east-1.amazonaws.com",
    );
    let ai = same_at_every_split(&d, "application/vnd.amazon.eventstream", &body);
    assert_eq!((ai["usage"]["input_tokens"].clone(), ai["usage"]["output_tokens"].clone()), (json!(14), json!(3)));
    assert_eq!(ai["response_model"], "claude-3-5-sonnet-20240620");
    assert_eq!(ai["completion_sha256"], sha("Hi"));
}

#[test]
fn bedrock_invoke_usage_from_headers() {
    let d = det("POST", "/model/meta.llama3-8b-instruct-v1:0/invoke", "bedrock-runtime.us-east-1.amazonaws.com");
    let mut t = ResponseTracker::new(&d, "application/json", false);
    t.header("x-amzn-bedrock-input-token-count", "21");
    t.header("x-amzn-bedrock-output-token-count", "7");
    t.push(br#"{"generation":"ok","stop_reason":"stop"}"#, 1);
    t.finish(2, false);
    let ai = event_json(&d, &RequestMeta::default(), Some(&t), 0);
    assert_eq!((ai["usage"]["input_tokens"].clone(), ai["usage"]["output_tokens"].clone()), (json!(21), json!(7)));
}

#[test]
fn ollama_ndjson_stream() {
    let body = concat!(
        "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"message\":{\"role\":\"assistant\",\"content\":\"The\"},\"done\":false}\n",
        "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"message\":{\"role\":\"assistant\",\"content\":\" end\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":4883583458,\"prompt_eval_count\":26,\"eval_count\":290}\n",
    );
    let d = det("POST", "/api/chat", "localhost:11434");
    let ai = same_at_every_split(&d, "application/x-ndjson", body.as_bytes());
    assert_eq!((ai["usage"]["input_tokens"].clone(), ai["usage"]["output_tokens"].clone()), (json!(26), json!(290)));
    assert_eq!(ai["completion_sha256"], sha("The end"));
    assert_eq!(ai["finish_reasons"], json!(["stop"]));
}

#[test]
fn openai_responses_stream() {
    let body = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_67c9\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"usage\":null}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_67c9\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\"}]}],\"usage\":{\"input_tokens\":37,\"output_tokens\":11,\"output_tokens_details\":{\"reasoning_tokens\":0},\"input_tokens_details\":{\"cached_tokens\":0},\"total_tokens\":48}}}\n\n",
    );
    let d = det("POST", "/v1/responses", "api.openai.com");
    let ai = same_at_every_split(&d, "text/event-stream", body.as_bytes());
    assert_eq!(ai["usage"]["total_tokens"], 48);
    assert_eq!(ai["response_id"], "resp_67c9");
    assert_eq!(ai["completion_sha256"], sha("Hi"), "the completed event's copy of the text is not hashed twice");
}

#[test]
fn garbage_never_panics_and_yields_nulls() {
    let d = det("POST", "/v1/chat/completions", "api.openai.com");
    for ct in ["application/json", "text/event-stream", "application/vnd.amazon.eventstream", "application/x-ndjson"] {
        let ai = run(&d, ct, &[b"\xff\x00garbage", b"data: {not json}\n\n"], false);
        assert_eq!(ai["usage"]["input_tokens"], Value::Null, "{ct}");
    }
}

#[test]
fn openai_stream_tool_calls_are_counted_once_each() {
    let body = concat!(
        "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let d = det("POST", "/v1/chat/completions", "api.openai.com");
    let ai = same_at_every_split(&d, "text/event-stream", body.as_bytes());
    assert_eq!(ai["tool_calls"], 2);
    assert_eq!(ai["finish_reasons"], json!(["tool_calls"]));
    assert_eq!(ai["completion_sha256"], Value::Null, "no text, no completion digest");
    assert_eq!(ai["usage"]["input_tokens"], Value::Null);
}

/// Events that repeat the last one but for their text piece are read from
/// what the tracker took of it: tool calls in them still count once each,
/// and a repeat after other events reads them again.
#[test]
fn repeated_events_are_read_as_the_whole_ones() {
    let call = |id: &str, args: &str| {
        format!("data: {{\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0,\"id\":\"{id}\",\"function\":{{\"arguments\":\"{args}\"}}}}]}}}}]}}\n\n")
    };
    let text = |model: &str, t: &str| {
        format!("data: {{\"id\":\"c\",\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n")
    };
    let body = [
        text("m-1", "Hello"),
        text("m-1", " there"),
        text("m-2", ", again"),
        text("m-1", " and"),
        text("m-1", " done"),
        ": a comment\n\n".to_string(),
        text("m-1", "!"),
        call("call_1", "{"),
        call("call_1", "}"),
        call("call_1", ""),
        "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":9,\"total_tokens\":12}}\n\n".to_string(),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let d = det("POST", "/v1/chat/completions", "api.openai.com");
    let ai = same_at_every_split(&d, "text/event-stream", body.as_bytes());
    let (whole, repeats) = from_redactor(&d, &RequestMeta::default(), &[body.as_bytes()], false);
    assert_eq!(whole, ai);
    assert_eq!(repeats, 5, "{ai}");
    assert_eq!(ai["tool_calls"], 3);
    assert_eq!(ai["response_model"], "gpt-4o");
    assert_eq!(ai["completion_sha256"], sha("Hello there, again and done!"));
    assert_eq!(ai["usage"]["output_tokens"], 9);
}

/// A repeat of an event with several completion strings (Gemini's parts)
/// hashes every one of them again, the changed one (the first) as it is now.
#[test]
fn repeated_events_hash_every_part_again() {
    let parts = |a: &str| {
        format!("data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"{a}\"}},{{\"text\":\"|\"}}],\"role\":\"model\"}},\"index\":0}}],\"modelVersion\":\"g-1\"}}\n\n")
    };
    let body = [parts("a"), parts("b"), parts(""), parts("c")].concat();
    let d = det(
        "POST",
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        "generativelanguage.googleapis.com",
    );
    let ai = same_at_every_split(&d, "text/event-stream", body.as_bytes());
    let (whole, repeats) = from_redactor(&d, &RequestMeta::default(), &[body.as_bytes()], false);
    assert_eq!((whole, repeats), (ai.clone(), 3));
    assert_eq!(ai["completion_sha256"], sha("a|b||c|"));
}

#[test]
fn cohere_v2_chat_json() {
    let body = r#"{"id":"c14c80c3-18eb-4519-9460-6c92edd8cfb4","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"text","text":"LLMs are neural networks."}]},"usage":{"billed_units":{"input_tokens":5,"output_tokens":418},"tokens":{"input_tokens":71,"output_tokens":418}}}"#;
    let d = det("POST", "/v2/chat", "api.cohere.com");
    let ai = same_at_every_split(&d, "application/json", body.as_bytes());
    assert_eq!(ai["provider"], "cohere");
    assert_eq!((ai["usage"]["input_tokens"].clone(), ai["usage"]["output_tokens"].clone()), (json!(71), json!(418)));
    assert_eq!(ai["finish_reasons"], json!(["COMPLETE"]));
    assert_eq!(ai["completion_sha256"], sha("LLMs are neural networks."));
}

#[test]
fn anthropic_refusal_is_a_safety_stop() {
    let body = r#"{"id":"msg_r","type":"message","model":"claude-sonnet-4-20250514","content":[],"stop_reason":"refusal","usage":{"input_tokens":10,"output_tokens":0}}"#;
    let d = det("POST", "/v1/messages", "api.anthropic.com");
    let ai = run(&d, "application/json", &[body.as_bytes()], false);
    assert_eq!(ai["safety_filter_triggered"], true);
    assert_eq!(ai["usage"]["output_tokens"], 0, "a reported zero stays zero");
}

// ------------------------------------------------------------------ every provider, every mode

const CHAT_REQ: &str =
    r#"{"model":"gpt-4.1","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#;
const CHAT_REQ_STREAM: &str = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#;

#[test]
fn every_field_openai_chat_json_and_stream() {
    let d = det("POST", "/v1/chat/completions", "api.openai.com");
    let base = merge(json!({"provider": "openai", "operation": "chat"}), brief_hi());
    exact(
        &d,
        CHAT_REQ,
        "application/json",
        OPENAI_CHAT.as_bytes(),
        expect(merge(
            base.clone(),
            json!({
                "request_model": "gpt-4.1", "response_model": "gpt-4.1-2025-04-14",
                "response_id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
                "usage": usage(Some(19), Some(10), Some(0), Some(0), Some(29)),
                "finish_reasons": ["stop"], "completion_sha256": sha("Hello! How can I help?"),
                "time_to_first_token_ms": 100,
            }),
        )),
    );
    exact(
        &d,
        CHAT_REQ_STREAM,
        "text/event-stream",
        OPENAI_STREAM.as_bytes(),
        expect(merge(
            base,
            json!({
                "request_model": "gpt-4o-mini", "response_model": "gpt-4o-mini-2024-07-18",
                "response_id": "chatcmpl-123", "stream": true,
                "usage": usage(Some(9), Some(2), Some(4), Some(0), Some(11)),
                "finish_reasons": ["stop"], "completion_sha256": sha("Hello there"),
                "time_to_first_token_ms": 100,
            }),
        )),
    );
}

/// Azure OpenAI streams open with a chunk of `"id": ""`, `"model": ""` and
/// the prompt filter results; the id and model come from the next chunks.
const AZURE_STREAM: &str = concat!(
    "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}}]}\n\n",
    "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"\",\"refusal\":null,\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}],\"created\":1741569952,\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_b705f0c291\"}\n\n",
    "data: {\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"violence\":{\"filtered\":false,\"severity\":\"safe\"}},\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}],\"created\":1741569952,\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_b705f0c291\"}\n\n",
    "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{},\"finish_reason\":\"stop\",\"index\":0,\"logprobs\":null}],\"created\":1741569952,\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_b705f0c291\"}\n\n",
    "data: {\"choices\":[],\"created\":1741569952,\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"model\":\"gpt-4o-2024-11-20\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_b705f0c291\",\"usage\":{\"completion_tokens\":1,\"prompt_tokens\":9,\"total_tokens\":10,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn every_field_azure_json_and_stream() {
    let d = det("POST", "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", "x.openai.azure.com");
    let req = r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#;
    let json_body = r#"{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hello!","refusal":null,"role":"assistant"}}],"created":1741569952,"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","model":"gpt-4o-2024-11-20","object":"chat.completion","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}],"system_fingerprint":"fp_b705f0c291","usage":{"completion_tokens":2,"completion_tokens_details":{"accepted_prediction_tokens":0,"audio_tokens":0,"reasoning_tokens":0,"rejected_prediction_tokens":0},"prompt_tokens":9,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":0},"total_tokens":11}}"#;
    let base = merge(
        json!({"provider": "azure_openai", "operation": "chat", "request_model": "prod-4o",
               "response_model": "gpt-4o-2024-11-20", "finish_reasons": ["stop"],
               "completion_sha256": sha("Hello!"), "time_to_first_token_ms": 100}),
        brief_hi(),
    );
    exact(
        &d,
        req,
        "application/json",
        json_body.as_bytes(),
        expect(merge(
            base.clone(),
            json!({"response_id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
                   "usage": usage(Some(9), Some(2), Some(0), Some(0), Some(11))}),
        )),
    );
    let d = det("POST", "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", "x.openai.azure.com");
    let stream_req =
        r#"{"stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#;
    let mut want = merge(
        base,
        json!({"response_id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "stream": true,
               "usage": usage(Some(9), Some(1), Some(0), Some(0), Some(10)),
               "completion_sha256": sha("Hello")}),
    );
    want["completion_sha256"] = json!(sha("Hello"));
    exact(&d, stream_req, "text/event-stream", AZURE_STREAM.as_bytes(), expect(want));
}

const RESPONSES_REQ: &str = r#"{"model":"gpt-4.1","instructions":"Be brief.","input":"Hi"}"#;

#[test]
fn every_field_openai_responses_json_and_stream() {
    let d = det("POST", "/v1/responses", "api.openai.com");
    let body = r#"{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,"instructions":"Be brief.","max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there.","annotations":[]}]}],"parallel_tool_calls":true,"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":123}}"#;
    let base = merge(
        json!({"provider": "openai", "operation": "chat", "request_model": "gpt-4.1",
               "response_model": "gpt-4.1-2025-04-14", "finish_reasons": ["completed"],
               "completion_sha256": sha("Hi there."), "time_to_first_token_ms": 100}),
        brief_hi(),
    );
    exact(
        &d,
        RESPONSES_REQ,
        "application/json",
        body.as_bytes(),
        expect(merge(
            base.clone(),
            json!({"response_id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
                   "usage": usage(Some(36), Some(87), Some(0), Some(64), Some(123))}),
        )),
    );
    let stream = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654\",\"object\":\"response\",\"created_at\":1741290958,\"status\":\"in_progress\",\"error\":null,\"incomplete_details\":null,\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"msg_67c9\",\"status\":\"in_progress\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[]}}\n\n",
        "event: response.content_part.added\ndata: {\"type\":\"response.content_part.added\",\"sequence_number\":3,\"item_id\":\"msg_67c9\",\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_67c9\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":\"msg_67c9\",\"output_index\":0,\"content_index\":0,\"delta\":\" there.\"}\n\n",
        "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"sequence_number\":6,\"item_id\":\"msg_67c9\",\"output_index\":0,\"content_index\":0,\"text\":\"Hi there.\"}\n\n",
        "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":7,\"output_index\":0,\"item\":{\"id\":\"msg_67c9\",\"status\":\"completed\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi there.\",\"annotations\":[]}]}}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":8,\"response\":{\"id\":\"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[{\"id\":\"msg_67c9\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi there.\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":37,\"input_tokens_details\":{\"cached_tokens\":5},\"output_tokens\":11,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":48}}}\n\n",
    );
    let stream_req = r#"{"model":"gpt-4.1","instructions":"Be brief.","input":"Hi","stream":true}"#;
    exact(
        &d,
        stream_req,
        "text/event-stream",
        stream.as_bytes(),
        expect(merge(
            base,
            json!({"response_id": "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654", "stream": true,
                   "usage": usage(Some(37), Some(11), Some(5), Some(0), Some(48))}),
        )),
    );
    // An answer cut short: its status and the reason.
    let cut = r#"{"id":"resp_1","object":"response","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"o3-2025-04-16","output":[],"usage":{"input_tokens":10,"output_tokens":16,"total_tokens":26}}"#;
    let ai = run(&d, "application/json", &[cut.as_bytes()], false);
    assert_eq!(ai["finish_reasons"], json!(["incomplete", "max_output_tokens"]));
}

const COHERE_REQ: &str = r#"{"model":"command-a-03-2025","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#;

#[test]
fn every_field_cohere_v2_json_and_stream() {
    let d = det("POST", "/v2/chat", "api.cohere.com");
    let body = r#"{"id":"c14c80c3-18eb-4519-9460-6c92edd8cfb4","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"text","text":"LLMs are neural networks."}]},"usage":{"billed_units":{"input_tokens":5,"output_tokens":418},"tokens":{"input_tokens":71,"output_tokens":418},"cached_tokens":64}}"#;
    let base = merge(
        json!({"provider": "cohere", "operation": "chat", "request_model": "command-a-03-2025",
               "finish_reasons": ["COMPLETE"], "completion_sha256": sha("LLMs are neural networks."),
               "time_to_first_token_ms": 100}),
        brief_hi(),
    );
    exact(
        &d,
        COHERE_REQ,
        "application/json",
        body.as_bytes(),
        expect(merge(
            base.clone(),
            json!({"response_id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
                   "usage": usage(Some(71), Some(418), Some(64), None, Some(489))}),
        )),
    );
    let stream = concat!(
        "event: message-start\ndata: {\"id\":\"29f14a5a-11de-4cae-9800-25e4747408ea\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}}\n\n",
        "event: content-start\ndata: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n\n",
        "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"LLMs\"}}}}\n\n",
        "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\" are neural networks.\"}}}}\n\n",
        "event: content-end\ndata: {\"type\":\"content-end\",\"index\":0}\n\n",
        "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":5,\"output_tokens\":26},\"tokens\":{\"input_tokens\":71,\"output_tokens\":26},\"cached_tokens\":64}}}\n\n",
    );
    let stream_req = r#"{"model":"command-a-03-2025","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#;
    exact(
        &d,
        stream_req,
        "text/event-stream",
        stream.as_bytes(),
        expect(merge(
            base,
            json!({"response_id": "29f14a5a-11de-4cae-9800-25e4747408ea", "stream": true,
                   "usage": usage(Some(71), Some(26), Some(64), None, Some(97))}),
        )),
    );
}

#[test]
fn every_field_cohere_v1_json_and_stream() {
    let d = det("POST", "/v1/chat", "api.cohere.com");
    let req = r#"{"model":"command-r-plus","preamble":"Be brief.","message":"Hi"}"#;
    let body = r#"{"response_id":"2d8d6b5a-83c6-4d4b-9f49-2fa62e0df7b2","text":"Hello! How can I help you today?","generation_id":"29f14a5a-11de-4cae-9800-25e4747408ea","chat_history":[{"role":"USER","message":"Hi"},{"role":"CHATBOT","message":"Hello! How can I help you today?"}],"finish_reason":"COMPLETE","meta":{"api_version":{"version":"1"},"billed_units":{"input_tokens":3,"output_tokens":9},"tokens":{"input_tokens":69,"output_tokens":9},"cached_tokens":32}}"#;
    let base = merge(
        brief_hi(),
        json!({"provider": "cohere", "operation": "chat", "request_model": "command-r-plus",
                      "response_id": "2d8d6b5a-83c6-4d4b-9f49-2fa62e0df7b2",
                      "usage": usage(Some(69), Some(9), Some(32), None, Some(78)),
                      "finish_reasons": ["COMPLETE"], "completion_sha256": sha("Hello! How can I help you today?"),
                      "time_to_first_token_ms": 100}),
    );
    exact(&d, req, "application/json", body.as_bytes(), expect(base.clone()));
    let stream = concat!(
        "{\"is_finished\":false,\"event_type\":\"stream-start\",\"generation_id\":\"29f14a5a-11de-4cae-9800-25e4747408ea\"}\n",
        "{\"is_finished\":false,\"event_type\":\"text-generation\",\"text\":\"Hello! How\"}\n",
        "{\"is_finished\":false,\"event_type\":\"text-generation\",\"text\":\" can I help you today?\"}\n",
        "{\"is_finished\":true,\"event_type\":\"stream-end\",\"response\":{\"response_id\":\"2d8d6b5a-83c6-4d4b-9f49-2fa62e0df7b2\",\"text\":\"Hello! How can I help you today?\",\"generation_id\":\"29f14a5a-11de-4cae-9800-25e4747408ea\",\"finish_reason\":\"COMPLETE\",\"meta\":{\"api_version\":{\"version\":\"1\"},\"billed_units\":{\"input_tokens\":3,\"output_tokens\":9},\"tokens\":{\"input_tokens\":69,\"output_tokens\":9},\"cached_tokens\":32}},\"finish_reason\":\"COMPLETE\"}\n",
    );
    let stream_req = r#"{"model":"command-r-plus","preamble":"Be brief.","message":"Hi","stream":true}"#;
    exact(&d, stream_req, "application/stream+json", stream.as_bytes(), expect(merge(base, json!({"stream": true}))));
}

#[test]
fn every_field_mistral_json_and_stream() {
    let d = det("POST", "/v1/chat/completions", "api.mistral.ai");
    let req = r#"{"model":"mistral-small-latest","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#;
    let body = r#"{"id":"cmpl-e5cc70bb28c444948073e77776eb30ef","object":"chat.completion","model":"mistral-small-latest","usage":{"prompt_tokens":16,"completion_tokens":34,"total_tokens":50},"created":1702256327,"choices":[{"index":0,"message":{"content":"Hello, how can I help?","tool_calls":null,"role":"assistant"},"finish_reason":"stop"}]}"#;
    let base = merge(
        json!({"provider": "mistral", "operation": "chat", "request_model": "mistral-small-latest",
               "response_model": "mistral-small-latest", "response_id": "cmpl-e5cc70bb28c444948073e77776eb30ef",
               "finish_reasons": ["stop"], "completion_sha256": sha("Hello, how can I help?"),
               "time_to_first_token_ms": 100}),
        brief_hi(),
    );
    exact(
        &d,
        req,
        "application/json",
        body.as_bytes(),
        expect(merge(base.clone(), json!({"usage": usage(Some(16), Some(34), None, None, Some(50))}))),
    );
    // Mistral sends usage in its last chunk unasked (it refuses stream_options).
    let stream = concat!(
        "data: {\"id\":\"cmpl-e5cc70bb28c444948073e77776eb30ef\",\"object\":\"chat.completion.chunk\",\"created\":1702256327,\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"cmpl-e5cc70bb28c444948073e77776eb30ef\",\"object\":\"chat.completion.chunk\",\"created\":1702256327,\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello, how\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"cmpl-e5cc70bb28c444948073e77776eb30ef\",\"object\":\"chat.completion.chunk\",\"created\":1702256327,\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" can I help?\"},\"finish_reason\":\"stop\",\"logprobs\":null}],\"usage\":{\"prompt_tokens\":16,\"total_tokens\":28,\"completion_tokens\":12}}\n\n",
        "data: [DONE]\n\n",
    );
    let stream_req = r#"{"model":"mistral-small-latest","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#;
    exact(
        &d,
        stream_req,
        "text/event-stream",
        stream.as_bytes(),
        expect(merge(base, json!({"stream": true, "usage": usage(Some(16), Some(12), None, None, Some(28))}))),
    );
}

fn bedrock_chunks(chunks: &[Value]) -> Vec<u8> {
    use base64::Engine;
    chunks
        .iter()
        .map(|v| {
            let b = base64::engine::general_purpose::STANDARD.encode(v.to_string());
            encode(
                &[(":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")],
                json!({"bytes": b}).to_string().as_bytes(),
            )
        })
        .collect::<Vec<_>>()
        .concat()
}

#[test]
fn every_field_bedrock_titan_json_and_stream() {
    let model = "amazon.titan-text-express-v1";
    let req = r#"{"inputText":"Hi","textGenerationConfig":{"maxTokenCount":64}}"#;
    let base = json!({"provider": "aws_bedrock", "operation": "chat", "request_model": model, "response_model": model,
                      "usage": usage(Some(5), Some(7), None, None, Some(12)),
                      "finish_reasons": ["FINISH"], "completion_sha256": sha("The sky is blue."),
                      "prompt_sha256": sha("user\nHi\n"), "prompt_injection_score": 0,
                      "time_to_first_token_ms": 100});
    let d = det("POST", &format!("/model/{model}/invoke"), "bedrock-runtime.us-east-1.amazonaws.com");
    let body = r#"{"inputTextTokenCount":5,"results":[{"tokenCount":7,"outputText":"The sky is blue.","completionReason":"FINISH"}]}"#;
    exact(&d, req, "application/json", body.as_bytes(), expect(base.clone()));
    let d =
        det("POST", &format!("/model/{model}/invoke-with-response-stream"), "bedrock-runtime.us-east-1.amazonaws.com");
    let stream = bedrock_chunks(&[
        json!({"outputText": "The sky", "index": 0, "totalOutputTextTokenCount": 3, "completionReason": null, "inputTextTokenCount": 5}),
        json!({"outputText": " is blue.", "index": 0, "totalOutputTextTokenCount": 7, "completionReason": "FINISH", "inputTextTokenCount": null,
               "amazon-bedrock-invocationMetrics": {"inputTokenCount": 5, "outputTokenCount": 7, "invocationLatency": 300, "firstByteLatency": 100}}),
    ]);
    exact(&d, req, "application/vnd.amazon.eventstream", &stream, expect(merge(base, json!({"stream": true}))));
}

#[test]
fn every_field_bedrock_llama_json_and_stream() {
    let model = "meta.llama3-8b-instruct-v1:0";
    let req = r#"{"prompt":"Hi","max_gen_len":64}"#;
    let base = json!({"provider": "aws_bedrock", "operation": "chat", "request_model": model, "response_model": model,
                      "usage": usage(Some(12), Some(6), None, None, Some(18)),
                      "finish_reasons": ["stop"], "completion_sha256": sha("The sky is blue."),
                      "prompt_sha256": sha("user\nHi\n"), "prompt_injection_score": 0,
                      "time_to_first_token_ms": 100});
    let d = det("POST", &format!("/model/{model}/invoke"), "bedrock-runtime.us-east-1.amazonaws.com");
    let body =
        r#"{"generation":"The sky is blue.","prompt_token_count":12,"generation_token_count":6,"stop_reason":"stop"}"#;
    exact(&d, req, "application/json", body.as_bytes(), expect(base.clone()));
    let d =
        det("POST", &format!("/model/{model}/invoke-with-response-stream"), "bedrock-runtime.us-east-1.amazonaws.com");
    let stream = bedrock_chunks(&[
        json!({"generation": "The sky", "prompt_token_count": 12, "generation_token_count": 2, "stop_reason": null}),
        json!({"generation": " is blue.", "prompt_token_count": null, "generation_token_count": 6, "stop_reason": "stop",
               "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 6, "invocationLatency": 300, "firstByteLatency": 100}}),
    ]);
    exact(&d, req, "application/vnd.amazon.eventstream", &stream, expect(merge(base, json!({"stream": true}))));
}

#[test]
fn every_field_bedrock_converse_json_and_stream() {
    let model = "amazon.nova-lite-v1:0";
    let req = r#"{"system":[{"text":"Be brief."}],"messages":[{"role":"user","content":[{"text":"Hi"}]}]}"#;
    let base = merge(
        json!({"provider": "aws_bedrock", "operation": "chat", "request_model": model, "response_model": model,
               "usage": usage(Some(11), Some(4), None, None, Some(15)),
               "finish_reasons": ["end_turn"], "completion_sha256": sha("Hola mundo"),
               "time_to_first_token_ms": 100}),
        brief_hi(),
    );
    let d = det("POST", &format!("/model/{model}/converse"), "bedrock-runtime.us-east-1.amazonaws.com");
    let body = r#"{"output":{"message":{"role":"assistant","content":[{"text":"Hola mundo"}]}},"stopReason":"end_turn","usage":{"inputTokens":11,"outputTokens":4,"totalTokens":15},"metrics":{"latencyMs":300}}"#;
    exact(&d, req, "application/json", body.as_bytes(), expect(base.clone()));
    let d = det("POST", &format!("/model/{model}/converse-stream"), "bedrock-runtime.us-east-1.amazonaws.com");
    exact(
        &d,
        req,
        "application/vnd.amazon.eventstream",
        &bedrock_converse_stream(),
        expect(merge(base, json!({"stream": true}))),
    );
}

#[test]
fn every_field_anthropic_json_and_stream() {
    let d = det("POST", "/v1/messages", "api.anthropic.com");
    let req = r#"{"model":"claude-sonnet-4","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}]}"#;
    exact(
        &d,
        req,
        "application/json",
        ANTHROPIC_MESSAGE.as_bytes(),
        expect(merge(
            brief_hi(),
            json!({"provider": "anthropic", "operation": "chat", "request_model": "claude-sonnet-4",
                   "response_model": "claude-sonnet-4-20250514", "response_id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
                   "usage": usage(Some(2095), Some(503), Some(1000), None, Some(2598)),
                   "finish_reasons": ["end_turn"], "completion_sha256": sha("Hi! My name is Claude."),
                   "time_to_first_token_ms": 100}),
        )),
    );
    let stream_req = r#"{"model":"claude-opus-4-1","max_tokens":64,"stream":true,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}]}"#;
    exact(
        &d,
        stream_req,
        "text/event-stream",
        ANTHROPIC_STREAM.as_bytes(),
        expect(merge(
            brief_hi(),
            json!({"provider": "anthropic", "operation": "chat", "request_model": "claude-opus-4-1",
                   "response_model": "claude-opus-4-1-20250805", "response_id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
                   "usage": usage(Some(25), Some(15), None, None, Some(40)), "stream": true,
                   "finish_reasons": ["tool_use"], "completion_sha256": sha("Hello!"), "tool_calls": 1,
                   "time_to_first_token_ms": 100}),
        )),
    );
}

#[test]
fn every_field_gemini_json_sse_and_json_array_and_vertex() {
    let req = r#"{"systemInstruction":{"parts":[{"text":"Be brief."}]},"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}"#;
    let base = merge(
        brief_hi(),
        json!({"provider": "gcp_gemini", "operation": "generate_content", "request_model": "gemini-2.0-flash",
               "response_model": "gemini-2.0-flash-001", "response_id": "r-1",
               "usage": usage(Some(8), Some(5), None, Some(2), Some(13)),
               "finish_reasons": ["STOP"], "completion_sha256": sha("The sky is blue."),
               "time_to_first_token_ms": 100}),
    );
    let whole = r#"{"candidates":[{"content":{"parts":[{"text":"The sky is blue."}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":5,"totalTokenCount":13,"thoughtsTokenCount":2},"modelVersion":"gemini-2.0-flash-001","responseId":"r-1"}"#;
    let d = det("POST", "/v1beta/models/gemini-2.0-flash:generateContent", "generativelanguage.googleapis.com");
    exact(&d, req, "application/json", whole.as_bytes(), expect(base.clone()));
    let d = det(
        "POST",
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        "generativelanguage.googleapis.com",
    );
    let streamed = merge(base.clone(), json!({"stream": true}));
    exact(&d, req, "text/event-stream", GEMINI_SSE.as_bytes(), expect(streamed.clone()));
    // Without alt=sse Gemini streams one JSON array of the same chunks.
    let array: Vec<Value> = GEMINI_SSE
        .split("data: ")
        .filter(|s| !s.trim().is_empty())
        .map(|s| serde_json::from_str(s.trim()).unwrap_or_default())
        .collect();
    let body = serde_json::to_string(&array).unwrap_or_default();
    let d = det("POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent", "generativelanguage.googleapis.com");
    exact(&d, req, "application/json", body.as_bytes(), expect(streamed));
    let d = det(
        "POST",
        "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent",
        "us-central1-aiplatform.googleapis.com",
    );
    exact(&d, req, "application/json", whole.as_bytes(), expect(merge(base, json!({"provider": "gcp_vertex_ai"}))));
}

#[test]
fn every_field_ollama_chat_and_generate_json_and_stream() {
    let chat_req = r#"{"model":"llama3.2","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"stream":false}"#;
    let d = det("POST", "/api/chat", "localhost:11434");
    let body = r#"{"model":"llama3.2","created_at":"2023-12-12T14:13:43.416799Z","message":{"role":"assistant","content":"Hello! How are you today?"},"done_reason":"stop","done":true,"total_duration":5191566416,"load_duration":2154458,"prompt_eval_count":26,"prompt_eval_duration":383809000,"eval_count":298,"eval_duration":4799921000}"#;
    exact(
        &d,
        chat_req,
        "application/json",
        body.as_bytes(),
        expect(merge(
            brief_hi(),
            json!({"provider": "ollama", "operation": "chat", "request_model": "llama3.2", "response_model": "llama3.2",
                   "usage": usage(Some(26), Some(298), None, None, Some(324)), "finish_reasons": ["stop"],
                   "completion_sha256": sha("Hello! How are you today?"), "time_to_first_token_ms": 100}),
        )),
    );
    let gen_req = r#"{"model":"llama3.2","system":"Be brief.","prompt":"Hi"}"#;
    let d = det("POST", "/api/generate", "localhost:11434");
    let base = merge(
        brief_hi(),
        json!({"provider": "ollama", "operation": "text_completion", "request_model": "llama3.2",
               "response_model": "llama3.2", "usage": usage(Some(26), Some(290), None, None, Some(316)),
               "finish_reasons": ["stop"], "completion_sha256": sha("The sky is blue."), "time_to_first_token_ms": 100}),
    );
    let body = r#"{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","response":"The sky is blue.","done":true,"done_reason":"stop","context":[1,2,3],"total_duration":5043500667,"load_duration":5025959,"prompt_eval_count":26,"prompt_eval_duration":325953000,"eval_count":290,"eval_duration":4709213000}"#;
    exact(
        &d,
        r#"{"model":"llama3.2","system":"Be brief.","prompt":"Hi","stream":false}"#,
        "application/json",
        body.as_bytes(),
        expect(base.clone()),
    );
    let stream = concat!(
        "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"response\":\"The sky\",\"done\":false}\n",
        "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"response\":\" is blue.\",\"done\":false}\n",
        "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"context\":[1,2,3],\"total_duration\":10706818083,\"load_duration\":6338219291,\"prompt_eval_count\":26,\"prompt_eval_duration\":130079000,\"eval_count\":290,\"eval_duration\":4232710000}\n",
    );
    exact(&d, gen_req, "application/x-ndjson", stream.as_bytes(), expect(merge(base, json!({"stream": true}))));
}

#[test]
fn every_field_embeddings_openai_and_ollama() {
    let d = det("POST", "/v1/embeddings", "api.openai.com");
    let req = r#"{"model":"text-embedding-3-small","input":"The food was delicious"}"#;
    let body = r#"{"object":"list","data":[{"object":"embedding","embedding":[0.0023064255,-0.009327292,-0.0028842222],"index":0}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    let base = json!({"operation": "embeddings", "prompt_sha256": sha("user\nThe food was delicious\n"),
                      "prompt_injection_score": 0, "time_to_first_token_ms": 100});
    exact(
        &d,
        req,
        "application/json",
        body.as_bytes(),
        expect(merge(
            base.clone(),
            json!({"provider": "openai", "request_model": "text-embedding-3-small",
                   "response_model": "text-embedding-3-small", "usage": usage(Some(8), None, None, None, Some(8))}),
        )),
    );
    let d = det("POST", "/api/embed", "localhost:11434");
    let req = r#"{"model":"all-minilm","input":"The food was delicious"}"#;
    let body = r#"{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862,0.05007221]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#;
    exact(
        &d,
        req,
        "application/json",
        body.as_bytes(),
        expect(merge(
            base,
            json!({"provider": "ollama", "request_model": "all-minilm", "response_model": "all-minilm",
                   "usage": usage(Some(8), None, None, None, None)}),
        )),
    );
}
