//! One request through the filter's own exchange, natively: what the filter
//! does per request outside the host (the same payloads as `bench/run`), and
//! how many events one worker seals and batches per second.
//! `cargo bench -p proxy-audit-core --bench exchange`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hmac::{Hmac, Mac};
use proxy_audit_core::config::Config;
use proxy_audit_core::exchange::{Event, Exchange, RecordedFacts};
use proxy_audit_core::runtime::Runtime;
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;

const SECRET: &str = "proxy-audit-bench-secret-0123456789abcdef";
const NOW_MS: u64 = 1_800_000_000_000;

/// The plugin config of `bench/bench.py`.
const CONFIG: &str = r#"{
  "identity": {"jwt": {"hs256_secret_env": "JWT"}, "service_subjects": ["^svc-"]},
  "classification": {"entities": "all", "actions": {"pii": "redact", "phi": "redact", "pci": "mask", "secret": "redact"}},
  "ai": {"enabled": true, "stream_usage": "inject"},
  "audit": {"exporter": {"max_batch_events": 200, "max_buffered_events": 10000},
            "resources": [{"path": "/patients/{id}", "type": "patient"}]}
}"#;

fn runtime() -> Runtime {
    let cfg = Config::parse(CONFIG.as_bytes()).unwrap();
    let env = |k: &str| (k == "JWT").then(|| SECRET.to_string());
    Runtime::new(cfg, &env, [5; 32], "bench/exchange".into(), NOW_MS, "start").unwrap()
}

fn token() -> String {
    let now = NOW_MS / 1000;
    let claims = json!({"sub": "dr-alice", "iss": "https://idp.example.com", "aud": "proxy-audit",
                        "roles": ["physician"], "tenant": "clinic-7", "iat": now, "exp": now + 86400});
    let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let input = format!("{}.{}", enc(&json!({"alg": "HS256", "typ": "JWT"})), enc(&claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("Bearer {input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The small GET of `bench/run`: headers, a 36-byte JSON answer, the log.
pub fn small_get_facts(auth: &str) -> RecordedFacts {
    RecordedFacts {
        request_headers: headers(&[
            (":method", "GET"),
            (":path", "/patients/p-1042"),
            (":authority", "api.example.com"),
            (":scheme", "http"),
            ("authorization", auth),
            ("x-request-id", "r-1"),
            ("user-agent", "bench"),
        ]),
        response_headers: headers(&[(":status", "200"), ("content-type", "application/json")]),
        response_body: br#"{"id": "p-1042", "name": "redacted"}"#.to_vec(),
        properties: vec![(vec!["source".into(), "address".into()], b"127.0.0.1:50000".to_vec())],
        now_ms: NOW_MS,
        ..RecordedFacts::default()
    }
}

pub fn run_one(rt: &mut Runtime, f: &RecordedFacts) {
    let mut ex = Exchange::new();
    ex.handle(rt, f, Event::RequestHeaders { end_of_stream: f.request_body.is_empty() });
    if !f.request_body.is_empty() {
        ex.handle(rt, f, Event::RequestBody { size: f.request_body.len(), end_of_stream: true });
    }
    ex.handle(rt, f, Event::ResponseHeaders { end_of_stream: false });
    ex.handle(rt, f, Event::ResponseBody { size: f.response_body.len(), end_of_stream: true });
    ex.handle(rt, f, Event::Log);
}

fn drain(rt: &mut Runtime) {
    while let Some(b) = rt.emitter.tick(NOW_MS) {
        std::hint::black_box(b.body.len());
        rt.emitter.batch_done(true, NOW_MS);
    }
}

const SENTENCES: [&str; 4] = [
    "Please summarize the discharge notes for the follow-up visit next Tuesday.",
    "The lab results from March show the hemoglobin level back within the normal range.",
    "Draft a short, friendly reminder about the appointment and the fasting instructions.",
    "List the medications with dose and frequency, and flag any interaction risks.",
];
const PII: [&str; 2] = [
    "Reach the patient at jane.roe@example.com, SSN 123-45-6789.",
    "Billing contact: billing.desk@example.com, SSN 234-56-7890.",
];

/// `bench.py`'s `text()`: sentences, every `pii_every`-th one with personal data.
fn text(size: usize, pii_every: usize) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut i = 0;
    while out.iter().map(|s| s.len() + 1).sum::<usize>() < size {
        out.push(if i % pii_every == pii_every - 1 { PII[i / pii_every % 2] } else { SENTENCES[i % 4] });
        i += 1;
    }
    out.join(" ")
}

/// The chat case of `bench/run`: an 8 KB chat-completions request, a 16 KB answer.
pub fn chat_facts(auth: &str) -> RecordedFacts {
    let mut messages = vec![json!({"role": "system", "content": "You are a careful clinical assistant."})];
    for k in 0..6 {
        messages.push(json!({"role": if k % 2 == 0 { "user" } else { "assistant" }, "content": text(1290, 6)}));
    }
    let req = serde_json::to_vec(&json!({"model": "gpt-4o-mini", "stream": false, "messages": messages})).unwrap();
    let resp = serde_json::to_vec(&json!({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1_800_000_000u64,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text(16_100, 8)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2100, "completion_tokens": 3900, "total_tokens": 6000}}))
    .unwrap();
    let mut f = small_get_facts(auth);
    f.request_headers = headers(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "api.example.com"),
        (":scheme", "http"),
        ("authorization", auth),
        ("content-type", "application/json"),
        ("content-length", &req.len().to_string()),
        ("x-request-id", "r-1"),
        ("user-agent", "bench"),
    ]);
    f.request_body = req;
    f.response_body = resp;
    f
}

fn chat(c: &mut Criterion) {
    let mut rt = runtime();
    let f = chat_facts(&token());
    let mut g = c.benchmark_group("exchange");
    g.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Bytes((f.request_body.len() + f.response_body.len()) as u64));
    g.bench_function("chat_8k_16k", |b| {
        b.iter(|| {
            run_one(&mut rt, &f);
            drain(&mut rt);
        })
    });
    g.finish();
}

fn small_get(c: &mut Criterion) {
    let mut rt = runtime();
    let f = small_get_facts(&token());
    let mut g = c.benchmark_group("exchange");
    g.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Elements(1));
    g.bench_function("small_get", |b| {
        b.iter(|| {
            run_one(&mut rt, &f);
            drain(&mut rt);
        })
    });
    g.finish();
}

/// The stream case of `bench/run`: a streamed chat-completions request and
/// `bench.py`'s 200-event answer, one network chunk per SSE frame.
pub fn stream_facts(auth: &str) -> (RecordedFacts, Vec<Vec<u8>>) {
    let req =
        serde_json::to_vec(&json!({"model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Write the visit summary."}]}))
        .unwrap();
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_800_000_000u64,
               "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let words = ["The ", "patient ", "record ", "shows ", "a ", "follow-up ", "visit ", "next ", "week. "];
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), serde_json::Value::Null)];
    for i in 0..196 {
        let piece = match i % 50 {
            17 => "Contact jane.roe@example.com ",
            41 => "SSN 123-45-6789 ",
            _ => words[i % words.len()],
        };
        events.push(chunk(json!({"content": piece}), serde_json::Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    let mut usage = chunk(json!({}), serde_json::Value::Null);
    usage["choices"] = json!([]);
    usage["usage"] = json!({"prompt_tokens": 12, "completion_tokens": 196, "total_tokens": 208});
    events.push(usage);
    let mut frames: Vec<Vec<u8>> = events.iter().map(|e| format!("data: {e}\n\n").into_bytes()).collect();
    frames.push(b"data: [DONE]\n\n".to_vec());
    let mut f = chat_facts(auth);
    f.request_headers.retain(|(k, _)| k != "content-length");
    f.request_headers.push(("content-length".into(), req.len().to_string()));
    f.request_body = req;
    f.response_headers = headers(&[(":status", "200"), ("content-type", "text/event-stream")]);
    f.response_body.clear();
    (f, frames)
}

/// One streamed request: the answer's frames arrive one per response-body callback.
pub fn run_stream(rt: &mut Runtime, f: &mut RecordedFacts, frames: &[Vec<u8>]) {
    let mut ex = Exchange::new();
    ex.handle(rt, f, Event::RequestHeaders { end_of_stream: false });
    ex.handle(rt, f, Event::RequestBody { size: f.request_body.len(), end_of_stream: true });
    ex.handle(rt, f, Event::ResponseHeaders { end_of_stream: false });
    for (k, frame) in frames.iter().enumerate() {
        f.response_body.clear();
        f.response_body.extend_from_slice(frame);
        ex.handle(rt, f, Event::ResponseBody { size: frame.len(), end_of_stream: k + 1 == frames.len() });
    }
    ex.handle(rt, f, Event::Log);
}

fn stream(c: &mut Criterion) {
    let mut rt = runtime();
    let (mut f, frames) = stream_facts(&token());
    let mut g = c.benchmark_group("exchange");
    g.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("stream_200_events", |b| {
        b.iter(|| {
            run_stream(&mut rt, &mut f, &frames);
            drain(&mut rt);
        })
    });
    g.finish();
}

/// Build + canonicalize + hash + batch of the audit event of a plain
/// request (the log callback alone): events one worker seals and ships per
/// second (target ≥ 50,000).
fn seal_and_batch(c: &mut Criterion) {
    let mut rt = runtime();
    let mut f = small_get_facts("");
    f.request_headers.retain(|(k, _)| k != "authorization");
    let mut g = c.benchmark_group("trail");
    g.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Elements(200));
    g.bench_function("seal_and_batch_200_request_events", |b| {
        b.iter(|| {
            for _ in 0..200 {
                Exchange::new().handle(&mut rt, &f, Event::Log);
            }
            drain(&mut rt);
        })
    });
    g.finish();
}

criterion_group!(benches, small_get, chat, stream, seal_and_batch);
criterion_main!(benches);
