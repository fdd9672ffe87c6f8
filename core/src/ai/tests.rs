//! Recorded wire formats of each provider (as their API references document
//! them), fed whole, split at every byte boundary, and byte by byte.

use super::*;
use crate::ai::encode_eventstream as encode;
use serde_json::{json, Value};

fn det(method: &str, path: &str, host: &str) -> Detected {
    detect(method, path, host, None).unwrap_or_else(|| panic!("{path}"))
}

/// Runs a body through a tracker in the given chunks; returns the `ai` object.
fn run(d: &Detected, ctype: &str, chunks: &[&[u8]], aborted: bool) -> Value {
    let mut t = ResponseTracker::new(d, ctype, false);
    for (i, c) in chunks.iter().enumerate() {
        t.push(c, 1000 + i as u64);
    }
    t.finish(5000, aborted);
    event_json(d, &RequestMeta::default(), Some(&t), 900)
}

/// Every split point (two chunks) and byte-by-byte give the same result.
fn same_at_every_split(d: &Detected, ctype: &str, body: &[u8]) -> Value {
    let whole = run(d, ctype, &[body], false);
    let strip = |mut v: Value| {
        v["time_to_first_token_ms"] = Value::Null;
        v
    };
    for split in 0..=body.len() {
        let got = run(d, ctype, &[&body[..split], &body[split..]], false);
        assert_eq!(strip(got), strip(whole.clone()), "split at {split}");
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(strip(run(d, ctype, &bytes, false)), strip(whole.clone()));
    whole
}

fn sha(s: &str) -> String {
    crate::ids::sha256_hex(s.as_bytes())
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
