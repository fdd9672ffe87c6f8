//! The per-request work of the filter besides the body classifier, natively:
//! identity (JWT decode + HS256), SSE framing, the AI response tracker and the
//! stream redactor over a 200-event OpenAI stream, Bedrock eventstream framing,
//! and building + sealing (JCS + SHA-256) one audit event.
//! Stream groups report elements/s where one element is one streamed event.
//! `cargo bench -p proxy-audit-core --bench pipeline`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hmac::{Hmac, Mac};
use proxy_audit_core::ai::{self, EventStreamParser, ResponseTracker};
use proxy_audit_core::chain::Chain;
use proxy_audit_core::classify::{Actions, Classifier, Rules, StreamRedactor};
use proxy_audit_core::config::Config;
use proxy_audit_core::event::{verb, BodyRecord, Kind, Phase, RequestEvent};
use proxy_audit_core::identity::{self, Evidence};
use proxy_audit_core::sse::SseParser;
use proxy_audit_core::{jcs, jwt};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

const KEY: &[u8] = b"proxy-audit-bench-secret-0123456789abcdef";
const NOW: u64 = 1_800_000_000;
const EVENTS: usize = 200;

fn hs256_token(claims: &Value) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let input = format!("{}.{}", enc(&json!({"alg": "HS256", "typ": "JWT"})), enc(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fn claims() -> Value {
    json!({"sub": "dr-alice", "iss": "https://idp.example.com", "aud": "proxy-audit", "exp": NOW + 3600,
           "iat": NOW - 60, "roles": ["physician", "reader"], "tenant": "clinic-7", "azp": "portal", "jti": "t-8d1e"})
}

/// The chunks of an OpenAI chat-completions stream: a role chunk, `EVENTS - 3`
/// content chunks (a few carry an email or an SSN), a finish chunk, a usage
/// chunk and `[DONE]` — `EVENTS` frames, one network chunk each.
fn openai_stream() -> Vec<Vec<u8>> {
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let mut v = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": NOW,
                           "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_0ba0d124f1",
                           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if !usage.is_null() {
            v["choices"] = json!([]);
            v["usage"] = usage;
        }
        format!("data: {v}\n\n").into_bytes()
    };
    let words = ["The ", "patient ", "record ", "shows ", "a ", "follow-up ", "visit ", "next ", "week. "];
    let mut out = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null, Value::Null)];
    for i in 0..EVENTS - 4 {
        let piece = match i % 50 {
            17 => "Contact jane.roe@example.com ".to_string(),
            41 => "SSN 123-45-6789 ".to_string(),
            _ => words[i % words.len()].to_string(),
        };
        out.push(chunk(json!({"content": piece}), Value::Null, Value::Null));
    }
    out.push(chunk(json!({}), json!("stop"), Value::Null));
    out.push(chunk(
        Value::Null,
        Value::Null,
        json!({"prompt_tokens": 2100, "completion_tokens": 196, "total_tokens": 2296}),
    ));
    out.push(b"data: [DONE]\n\n".to_vec());
    assert_eq!(out.len(), EVENTS);
    out
}

/// A Bedrock `converse-stream` answer of `EVENTS` eventstream messages.
fn bedrock_stream() -> Vec<Vec<u8>> {
    let msg = |t: &str, p: Value| {
        ai::encode_eventstream(
            &[(":event-type", t), (":content-type", "application/json"), (":message-type", "event")],
            p.to_string().as_bytes(),
        )
    };
    let mut out = vec![msg("messageStart", json!({"role": "assistant"}))];
    for i in 0..EVENTS - 4 {
        out.push(msg("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": format!("word{i} ")}})));
    }
    out.push(msg("contentBlockStop", json!({"contentBlockIndex": 0})));
    out.push(msg("messageStop", json!({"stopReason": "end_turn"})));
    out.push(msg("metadata", json!({"usage": {"inputTokens": 2100, "outputTokens": 196, "totalTokens": 2296}})));
    out
}

fn identity(c: &mut Criterion) {
    let token = hs256_token(&claims());
    let header = format!("Bearer {token}");
    let cfg = Config::parse(br#"{"identity": {"jwt": {"hs256_secret_env": "K"}, "service_subjects": ["^svc-"]}}"#)
        .unwrap()
        .identity;
    let mut g = c.benchmark_group("identity");
    g.throughput(Throughput::Elements(1));
    g.bench_function("jwt_decode_verify_hs256", |b| {
        b.iter(|| {
            let d = jwt::decode(black_box(&token)).unwrap();
            d.verify_hs256(KEY).unwrap();
            jwt::check_time(&d.claims, NOW, 60).unwrap();
        })
    });
    g.bench_function("resolve_hs256", |b| {
        b.iter(|| {
            let ev = Evidence {
                token_header: Some(black_box(&header)),
                hs256_key: Some(KEY),
                now_s: NOW,
                ..Default::default()
            };
            let r = identity::resolve(&cfg, &ev);
            assert!(r.actor.verified);
            r
        })
    });
    g.finish();
}

fn streams(c: &mut Criterion) {
    let sse = openai_stream();
    let bytes: usize = sse.iter().map(Vec::len).sum();
    let det = ai::detect("POST", "/v1/chat/completions", "api.openai.com", None).unwrap();
    let cl = Classifier::new(&Rules { pseudonym_key: b"bench".to_vec(), ..Rules::default() });
    let mut g = c.benchmark_group(format!("stream_openai_{EVENTS}_events_{bytes}_bytes"));
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("sse_parse", |b| {
        b.iter(|| {
            let mut p = SseParser::new(1 << 20);
            let mut frames = Vec::with_capacity(4);
            let mut n = 0;
            for chunk in &sse {
                p.push(black_box(chunk), &mut frames);
                n += frames.len();
                frames.clear();
            }
            assert_eq!(n, EVENTS);
        })
    });
    g.bench_function("ai_response_tracker", |b| {
        b.iter(|| {
            let mut t = ResponseTracker::new(&det, "text/event-stream", true);
            for chunk in &sse {
                t.push(black_box(chunk), NOW);
            }
            t.finish(NOW, false);
            let s = t.summary();
            assert_eq!(s.usage.output, Some(196));
            s
        })
    });
    g.bench_function("stream_redactor", |b| {
        b.iter(|| {
            let mut r = StreamRedactor::new(Actions::default());
            let mut out = 0;
            for chunk in &sse {
                out += r.push(&cl, black_box(chunk)).len();
            }
            out += r.finish(&cl).len();
            assert_eq!(r.findings().len(), 2);
            out
        })
    });
    g.finish();

    let bedrock = bedrock_stream();
    let det = ai::detect(
        "POST",
        "/model/amazon.nova-lite-v1:0/converse-stream",
        "bedrock-runtime.us-east-1.amazonaws.com",
        None,
    )
    .unwrap();
    let mut g = c.benchmark_group(format!("stream_bedrock_{EVENTS}_events"));
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("eventstream_parse", |b| {
        b.iter(|| {
            let mut p = EventStreamParser::new(1 << 20);
            let mut msgs = Vec::with_capacity(4);
            let mut n = 0;
            for chunk in &bedrock {
                p.push(black_box(chunk), &mut msgs);
                n += msgs.len();
                msgs.clear();
            }
            assert_eq!(n, EVENTS);
        })
    });
    g.bench_function("ai_response_tracker", |b| {
        b.iter(|| {
            let mut t = ResponseTracker::new(&det, "application/vnd.amazon.eventstream", true);
            for chunk in &bedrock {
                t.push(black_box(chunk), NOW);
            }
            t.finish(NOW, false);
            t.summary()
        })
    });
    g.finish();
}

/// A complete event for an AI chat call with findings in both bodies.
fn request_event() -> RequestEvent {
    let cfg = Config::parse(b"{}").unwrap().identity;
    let header = format!("Bearer {}", hs256_token(&claims()));
    let ev = Evidence { token_header: Some(&header), hs256_key: Some(KEY), now_s: NOW, ..Default::default() };
    let who = identity::resolve(&cfg, &ev);
    let det = ai::detect("POST", "/v1/chat/completions", "api.openai.com", None).unwrap();
    let req = ai::parse_request(&det, br#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Summarize the visit."}]}"#);
    let mut tracker = ResponseTracker::new(&det, "text/event-stream", true);
    for chunk in openai_stream() {
        tracker.push(&chunk, NOW * 1000 + 40);
    }
    tracker.finish(NOW * 1000 + 900, false);
    let finding = |entity: &str, category: &str, n: u32| json!({"entity": entity, "category": category, "count": n, "action": "redacted", "locations": ["$.messages[1].content"]});
    let body = |n: u64, findings: Vec<Value>| BodyRecord {
        scanned: true,
        skipped: None,
        bytes: Some(n),
        sha256: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        findings,
    };
    RequestEvent {
        id: "0192f3a4-7b1c-7d2e-8f3a-4b5c6d7e8f90".into(),
        time_ms: NOW * 1000,
        kind: Kind::Access,
        phase: Phase::Complete,
        actor: who.actor,
        identity_reason: who.reason,
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        verb: verb("POST", "/v1/chat/completions", None, true),
        authority: "api.openai.com".into(),
        resource_type: None,
        resource_id: None,
        address: Some("10.0.3.17".into()),
        user_agent: Some("OpenAI/Python 1.54.0".into()),
        request_id: Some("5c1f0e9a-2b7d-4c3e-9a8f-1d2e3f4a5b6c".into()),
        status: Some(200),
        duration_ms: Some(900),
        reason: None,
        purpose: Some("treatment".into()),
        request: body(8192, vec![finding("email", "pii", 3), finding("us_ssn", "pii", 2)]),
        response: body(41_000, vec![finding("email", "pii", 1)]),
        ai: Some(ai::event_json(&det, &req, Some(&tracker), NOW * 1000)),
    }
}

fn events(c: &mut Criterion) {
    let event = request_event();
    let mut chain = Chain::new("bench-emitter");
    let sealed = chain.seal(&mut event.to_map()).line;
    let mut g = c.benchmark_group(format!("event_{}_bytes", sealed.len()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("build", |b| b.iter(|| black_box(&event).to_map()));
    g.bench_function("jcs_canonicalize", |b| {
        let v = Value::Object(event.to_map());
        b.iter(|| jcs::canonicalize(black_box(&v)))
    });
    g.bench_function("seal", |b| b.iter_batched(|| event.to_map(), |mut m| chain.seal(&mut m), BatchSize::SmallInput));
    g.bench_function("build_and_seal", |b| b.iter(|| chain.seal(&mut black_box(&event).to_map())));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = identity, streams, events
}
criterion_main!(benches);
