//! Writes a synthetic trail to stdout for the verifier's benchmarks
//! (`bench/verify_rate.py`): see `proxy_audit_verify::synthetic`. With
//! `--key DIR`, the chains are signed and the key pair `bench.key`,
//! `bench.pub` is written there.
//!
//! `cargo run --release -p proxy-audit-verify --example gen_trail -- EVENTS EMITTERS [--key DIR] > trail.ndjson`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proxy_audit_core::signing::{key_files, Signer};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let emitters: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(4);
    let key_dir = args.iter().position(|a| a == "--key").and_then(|i| args.get(i + 1));
    let signer = key_dir.map(|dir| {
        let (key, public) = key_files("bench", [42; 32]);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(format!("{dir}/bench.key"), &key).unwrap();
        std::fs::write(format!("{dir}/bench.pub"), public).unwrap();
        Signer::from_key_text("bench", &key).unwrap()
    });
    let trail = proxy_audit_verify::synthetic::trail(events, emitters, signer.as_ref());
    std::io::stdout().lock().write_all(&trail).unwrap();
}
