//! The verifier's rate on a trail of 1.1 KB events (the event of a plain
//! request): 20,000 events over 4 chains, a checkpoint every 1,000, in
//! memory, and read from a file (as `proxy-audit verify FILE` reads it).
//! Throughput is in elements: criterion's `Kelem/s` is thousands of events
//! per second.
//! `cargo bench -p proxy-audit-verify --bench verify`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proxy_audit_core::signing::{key_files, PublicKey, Signer};
use proxy_audit_verify::{synthetic, verify_sources, Options, Session};
use std::time::Duration;

const EVENTS: u64 = 20_000;

fn bench(c: &mut Criterion) {
    let (private, public) = key_files("bench", [42; 32]);
    let signer = Signer::from_key_text("bench", &private).unwrap();
    let key = PublicKey::parse(&public).unwrap();
    let unsigned = synthetic::trail(EVENTS, 4, None);
    let signed = synthetic::trail(EVENTS, 4, Some(&signer));
    let events = String::from_utf8_lossy(&signed).lines().count() as u64;
    let mut g = c.benchmark_group("verify_1k_events");
    g.throughput(Throughput::Elements(events));
    let cases = [
        ("one_thread", &unsigned, Options { threads: 1, ..Options::default() }),
        ("one_thread_with_key", &signed, Options { threads: 1, keys: vec![key.clone()], ..Options::default() }),
        ("two_threads_with_key", &signed, Options { threads: 2, keys: vec![key.clone()], ..Options::default() }),
    ];
    for (name, trail, opts) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                let r = verify_sources(&[("bench.ndjson", trail.as_slice())], &opts);
                assert_eq!(r.exit_code(), 0);
                r.emitters.len()
            })
        });
    }
    let path = std::env::temp_dir().join(format!("proxy-audit-verify-bench-{}.ndjson", std::process::id()));
    std::fs::write(&path, &signed).unwrap();
    for (name, threads) in [("file_one_thread_with_key", 1), ("file_two_threads_with_key", 2)] {
        let opts = Options { threads, keys: vec![key.clone()], ..Options::default() };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut s = Session::new(&opts);
                let mut f = std::fs::File::open(&path).unwrap();
                s.add_reader("bench.ndjson", &mut f, None).unwrap();
                let r = s.finish();
                assert_eq!(r.exit_code(), 0);
                r.emitters.len()
            })
        });
    }
    let _ = std::fs::remove_file(&path);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
