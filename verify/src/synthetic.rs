//! A synthetic trail for the verifier's benchmarks (`benches/verify.rs`,
//! `examples/gen_trail.rs`): chains of 1.1 KB access events (the event of a
//! plain GET, as in the README), interleaved, a checkpoint every 1,000
//! records (signed when a key is given) and an `end` record each.
//!
//! Not an API: benchmarks only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proxy_audit_core::config::Config;
use proxy_audit_core::emitter::{Emitter, TrailOptions};
use proxy_audit_core::signing::Signer;
use serde_json::{json, Map, Value};

pub fn access(id: String, time_ms: u64, n: u64) -> Map<String, Value> {
    let ev = json!({
        "action": {"method": "GET", "path": "/patients/{id}/records?from", "verb": "READ"},
        "actor": {"client_id": null, "id": format!("user-{}", n % 97), "issuer": "demo-idp", "on_behalf_of": null,
                  "roles": ["physician"], "source": "jwt_hs256", "tenant": "clinic-7", "token_id": "demo-1",
                  "type": "user", "verified": true},
        "ai": null,
        "data": {"request": {"bytes": 0, "findings": [], "scanned": false, "sha256": null, "skipped": "no_body"},
                 "response": {"bytes": 403, "findings": [], "scanned": true,
                              "sha256": "82b04325a0c9d018d61e8b2acc794c2238355dd18957c04473f941d76a8c0d7b", "skipped": null}},
        "id": id, "kind": "access",
        "outcome": {"duration_ms": n % 17, "reason": null, "status_code": 200, "success": true},
        "phase": "complete", "purpose": "treatment", "schema": "proxy-audit/v1",
        "source": {"address": "10.0.3.17", "request_id": format!("111ea514-cb54-45db-b319-{:012x}", n),
                   "user_agent": "Python-urllib/3.11"},
        "target": {"authority": "records.internal:8080", "resource_id": format!("patient:{}", 1000 + n % 5000),
                   "resource_type": "patient"},
        "time": proxy_audit_core::timefmt::rfc3339_millis(time_ms)
    });
    match ev {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// `events` access events over `emitters` chains, as NDJSON.
pub fn trail(events: u64, emitters: u64, signer: Option<&Signer>) -> Vec<u8> {
    let emitters = emitters.max(1);
    let cfg = Config::parse(br#"{"audit": {"exporter": {"max_batch_events": 1000, "max_buffered_events": 1000000}}}"#)
        .unwrap();
    let start = 1_795_000_000_000;
    let mut chains: Vec<Emitter> = (0..emitters)
        .map(|e| {
            let trail = TrailOptions {
                checkpoint_interval_ms: 60_000,
                checkpoint_every_events: 1_000,
                signer: signer.cloned(),
                witness: None,
            };
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&e.to_le_bytes());
            Emitter::start_with(
                format!("node-{e}/proxy_audit/{e:016x}"),
                seed,
                &cfg.audit.exporter,
                trail,
                start,
                "start",
            )
        })
        .collect();
    let mut out = Vec::with_capacity(events as usize * 1200);
    let flush = |e: &mut Emitter, now: u64, out: &mut Vec<u8>| {
        while let Some(b) = e.exporter.next_batch(now) {
            out.extend_from_slice(&b.body);
            e.exporter.delivered();
        }
    };
    for n in 0..events {
        let k = (n % emitters) as usize;
        let now = start + n / emitters;
        let id = chains[k].next_id();
        chains[k].emit(access(id, now, n), now);
        if n % 1000 == 999 {
            flush(&mut chains[k], now, &mut out);
        }
    }
    for e in &mut chains {
        let now = start + events / emitters + 1;
        e.end(now);
        flush(e, now, &mut out);
    }
    out
}
