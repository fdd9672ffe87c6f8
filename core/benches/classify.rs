//! Classifier throughput on chat-like JSON bodies (built-ins, default actions).
//! `cargo bench -p proxy-audit-core --bench classify`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use proxy_audit_core::classify::{Actions, BodyKind, Classifier, Rules};

const SENTENCES: &[&str] = &[
    "Can you summarize the quarterly report for the board meeting next Tuesday?",
    "The deployment on 2024-03-14 failed because the health check timed out after 30 seconds.",
    "Please rewrite this paragraph so that it sounds more formal and concise.",
    "Order 4417 shipped in 3 boxes; the tracking page shows version 2.1.0 of the widget.",
    "I think the function should return early when the input list is empty, right?",
    "Write a haiku about autumn leaves falling on a quiet river at dusk.",
    "Our API returns HTTP 429 when more than 100 requests arrive within 60 seconds.",
    "Translate the following into French: the meeting has been moved to Friday afternoon.",
];

/// A chat-completions request of about `size` bytes; with `pii`, every
/// seventh message carries an email and a phone number.
fn chat_json(size: usize, pii: bool) -> Vec<u8> {
    let mut messages = Vec::new();
    let mut total = 0;
    let mut k = 0;
    while total < size {
        let mut content = String::new();
        for j in 0..6 {
            content.push_str(SENTENCES[(k + j) % SENTENCES.len()]);
            content.push(' ');
        }
        if pii && k % 7 == 3 {
            content.push_str("Reach me at jane.roe@example.com or +1 415 555 2671. ");
        }
        total += content.len() + 40;
        messages.push(serde_json::json!({"role": if k % 2 == 0 { "user" } else { "assistant" }, "content": content}));
        k += 1;
    }
    serde_json::to_vec(&serde_json::json!({"model": "gpt-4o", "stream": false, "messages": messages})).unwrap()
}

fn bench(c: &mut Criterion) {
    let cl = Classifier::new(&Rules { pseudonym_key: b"bench".to_vec(), ..Rules::default() });
    let actions = Actions::default()
        .with(proxy_audit_core::classify::Category::Secret, proxy_audit_core::classify::Action::Redact);
    for (group, pii) in [("classify_json_clean", false), ("classify_json_pii", true)] {
        let mut g = c.benchmark_group(group);
        for size in [1 << 10, 8 << 10, 64 << 10, 1 << 20] {
            let body = chat_json(size, pii);
            g.throughput(Throughput::Bytes(body.len() as u64));
            g.bench_with_input(BenchmarkId::from_parameter(size), &body, |b, body| {
                b.iter(|| black_box(cl.scan(BodyKind::Json, black_box(body), &actions)))
            });
        }
        g.finish();
    }
    let mut g = c.benchmark_group("classify_text_pii");
    let body = chat_json(1 << 20, true);
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("1048576", |b| b.iter(|| black_box(cl.scan(BodyKind::Text, black_box(&body), &actions))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
