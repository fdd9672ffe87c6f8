//! Envoy stats: counters and a gauge defined once per VM, published from the
//! root context after each flush (deltas of the exporter's own counters) and
//! from request contexts (per-request counters).
//!
//! Envoy shows them under `wasmcustom.proxy_audit.*` in `/stats`.

use crate::shared::Shared;
use proxy_audit_core::export::Stats;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
struct Registry {
    ids: HashMap<String, u32>,
    published: Stats,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

fn id(kind: MetricType, name: &str) -> Option<u32> {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        if let Some(id) = r.ids.get(name) {
            return Some(*id);
        }
        // Bounded: names come from a fixed set plus provider/model labels that
        // the caller caps (see `request_counter`).
        if r.ids.len() >= 512 {
            return None;
        }
        let id = hostcalls::define_metric(kind, name).ok()?;
        r.ids.insert(name.to_string(), id);
        Some(id)
    })
}

/// Adds to a counter, defining it on first use.
pub fn count(name: &str, by: u64) {
    if by == 0 {
        return;
    }
    if let Some(id) = id(MetricType::Counter, name) {
        let _ = hostcalls::increment_metric(id, by as i64);
    }
}

fn gauge(name: &str, value: u64) {
    if let Some(id) = id(MetricType::Gauge, name) {
        let _ = hostcalls::record_metric(id, value);
    }
}

pub fn define(shared: Option<&Shared>) {
    for name in [
        "proxy_audit.requests",
        "proxy_audit.denied",
        "proxy_audit.blocked",
        "proxy_audit.events_emitted",
        "proxy_audit.events_delivered",
        "proxy_audit.events_retried",
        "proxy_audit.events_dropped",
        "proxy_audit.batches_failed",
    ] {
        let _ = id(MetricType::Counter, name);
    }
    if let Some(s) = shared {
        publish(s);
    }
}

/// Publishes the exporter's counters (as deltas) and the buffer depth.
pub fn publish(shared: &Shared) {
    let (stats, depth) = {
        let rt = shared.borrow();
        (rt.emitter.exporter.stats, rt.emitter.exporter.depth() as u64)
    };
    let last = REGISTRY.with(|r| std::mem::replace(&mut r.borrow_mut().published, stats));
    count("proxy_audit.events_emitted", stats.emitted.saturating_sub(last.emitted));
    count("proxy_audit.events_delivered", stats.delivered.saturating_sub(last.delivered));
    count("proxy_audit.events_retried", stats.retried.saturating_sub(last.retried));
    count("proxy_audit.events_dropped", stats.dropped.saturating_sub(last.dropped));
    count("proxy_audit.batches_failed", stats.batches_failed.saturating_sub(last.batches_failed));
    gauge("proxy_audit.buffer_depth", depth);
}
