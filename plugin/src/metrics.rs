//! Envoy stats: counters and a gauge defined once per VM, published from the
//! root context after each flush (deltas of the exporter's own counters) and
//! from request contexts (per-request counters).
//!
//! Envoy shows them under `wasmcustom.proxy_audit.*` in `/stats`.

use crate::shared::Shared;
use proxy_audit_core::export::Exporter;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
struct Registry {
    ids: HashMap<String, u32>,
    /// Buffer depth per exporter of this VM (keyed by its address): the
    /// gauge is their sum, so instances that overlap in a reload add up.
    depths: HashMap<usize, u64>,
    /// Provider/model label pairs given their own counters so far.
    models: usize,
}

/// Model labels come from upstream answers (or the client's request): past
/// this many pairs, further models are counted under `<provider>.other`, so
/// the fixed counters always have room.
const MAX_MODEL_LABELS: usize = 100;

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
        let _ = hostcalls::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX));
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
        "proxy_audit.write_ahead_failed",
    ] {
        let _ = id(MetricType::Counter, name);
    }
    if let Some(s) = shared {
        publish(s);
    }
}

/// A per-request counter the exchange names (`requests`, `denied`, ...).
pub fn count_event(name: &str) {
    let full = match name {
        "requests" => "proxy_audit.requests",
        "denied" => "proxy_audit.denied",
        "blocked" => "proxy_audit.blocked",
        "write_ahead_failed" => "proxy_audit.write_ahead_failed",
        _ => return,
    };
    count(full, 1);
}

/// Publishes the exporter's counters (as deltas) and the buffer depth.
pub fn publish(shared: &Shared) {
    publish_exporter("proxy_audit", &mut shared.borrow_mut().emitter.exporter);
}

/// A retiring instance publishes what it has not yet and leaves the depth gauge.
pub fn retire(shared: &Shared) {
    publish(shared);
    let key = std::ptr::addr_of!(shared.borrow().emitter.exporter) as usize;
    let total = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.depths.remove(&key);
        r.depths.values().sum()
    });
    gauge("proxy_audit.buffer_depth", total);
}

/// The same for any exporter, under `prefix` (the shipping service uses
/// `proxy_audit.shipper`). Each exporter publishes its own deltas, so
/// instances that share a VM during a reload are each counted once.
pub fn publish_exporter(prefix: &str, exporter: &mut Exporter) {
    let delta = exporter.unpublished();
    for (name, by) in [
        ("events_emitted", delta.emitted),
        ("events_received", delta.received),
        ("events_handed_off", delta.handed_off),
        ("events_delivered", delta.delivered),
        ("events_retried", delta.retried),
        ("events_dropped", delta.dropped),
        ("batches_failed", delta.batches_failed),
    ] {
        count(&format!("{prefix}.{name}"), by);
    }
    let key = std::ptr::addr_of!(*exporter) as usize;
    let depth = exporter.depth() as u64;
    let total = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.depths.insert(key, depth);
        r.depths.values().sum()
    });
    gauge(&format!("{prefix}.buffer_depth"), total);
}

/// Per model call: counters per provider and model
/// (`proxy_audit.ai.<provider>.<model>.requests|input_tokens|output_tokens`;
/// names are sanitized and the set is bounded). The filter state comes from
/// the exchange.
pub fn ai_call(ai: &serde_json::Value) {
    let c = proxy_audit_core::ai::metrics::call_counters(ai);
    let (provider, mut model) = (c.provider, c.model);
    let known = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        if r.ids.contains_key(&format!("proxy_audit.ai.{provider}.{model}.requests")) {
            return true;
        }
        let room = r.models < MAX_MODEL_LABELS;
        r.models += usize::from(room);
        room
    });
    if !known {
        model = "other".into();
    }
    let prefix = format!("proxy_audit.ai.{provider}.{model}");
    count(&format!("{prefix}.requests"), 1);
    count(&format!("{prefix}.input_tokens"), c.input_tokens);
    count(&format!("{prefix}.output_tokens"), c.output_tokens);
}
