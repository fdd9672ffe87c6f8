//! What a retiring plugin still holds is never only logged.
//!
//! Envoy runs every plugin instance (root context) that shares a VM key on
//! the same VM of a worker, so a retiring instance (a config change, or a
//! root re-configured in place) passes its runtime to a live one of the same
//! VM: the live one adopts its buffer on every tick (events keep their chain;
//! what it must drop later it declares for the retired chain), and seals the
//! retired chain's `end` record once no request holds the old runtime.
//!
//! The last instance of a VM (Envoy stopping, or the plugin removed) cannot
//! hand over. Envoy stops a worker's event loop before it calls `on_done`, so
//! nothing can be POSTed then: the trail records still buffered (`end`,
//! `loss`, `checkpoint`, `chain_start`) go to Envoy's log as
//! `proxy-audit: record <event>` lines, with the exact seq ranges of the
//! request events not delivered, which the access log carries (the
//! `proxy_audit.event` filter state). `proxy-audit verify` reads both.

use crate::host;
use crate::shared::Shared;
use proxy_audit_core::emitter::Emitter;
use proxy_audit_core::export::{is_trail_record, Loss, RECORD_MARKER};
use proxy_audit_core::runtime::Runtime;
use proxy_wasm::types::LogLevel;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

thread_local! {
    /// Filter instances of this VM that are configured and not retiring.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    /// Retired runtimes whose buffers a live instance still has to adopt.
    static ORPHANS: RefCell<Vec<Shared>> = const { RefCell::new(Vec::new()) };
}

pub fn joined() {
    LIVE.with(|l| l.set(l.get() + 1));
}

pub fn left() {
    LIVE.with(|l| l.set(l.get().saturating_sub(1)));
}

/// Another instance of this VM can take over.
pub fn others_live() -> bool {
    LIVE.with(Cell::get) > 0
}

/// Leaves a retired runtime for a live instance to adopt.
pub fn bequeath(shared: Shared) {
    ORPHANS.with(|o| o.borrow_mut().push(shared));
}

/// Moves what retired runtimes hold into `rt`'s buffer; a retired runtime no
/// request holds any more gets its `end` record and is let go.
pub fn adopt_into(rt: &mut Runtime, now_ms: u64) {
    let orphans = ORPHANS.with(|o| std::mem::take(&mut *o.borrow_mut()));
    let mut keep = Vec::new();
    for orphan in orphans {
        let Ok(mut old) = orphan.try_borrow_mut() else {
            keep.push(orphan.clone());
            continue;
        };
        // Only this list holds it: no request can seal into it any more.
        let settled = Rc::strong_count(&orphan) == 1;
        if settled && !old.emitter.ended() {
            old.emitter.end(now_ms);
        }
        rt.emitter.adopt(&mut old.emitter);
        drop(old);
        if !settled {
            keep.push(orphan);
        }
    }
    if !keep.is_empty() {
        ORPHANS.with(|o| o.borrow_mut().extend(keep));
    }
}

/// The held-headers tick of the retired runtimes: their requests still run
/// against them, so their stalled headers are released from here.
pub fn tick_orphan_holds(now_ms: u64) -> Vec<proxy_audit_core::exchange::hold::HoldTick> {
    ORPHANS.with(|o| {
        o.borrow()
            .iter()
            .filter_map(|orphan| orphan.try_borrow_mut().ok().map(|mut old| old.tick_holds(now_ms)))
            .collect()
    })
}

/// The last instance retires: its trail records still buffered and the
/// ranges of the events not delivered go to Envoy's log (see the module doc).
pub fn log_undelivered(emitter: &Emitter) {
    let ex = &emitter.exporter;
    if ex.depth() == 0 && ex.undeclared().is_empty() {
        return;
    }
    let own = emitter.name();
    let describe = |ranges: Vec<(Option<std::sync::Arc<str>>, Loss)>| -> String {
        let parts: Vec<String> = ranges
            .iter()
            .map(|(o, l)| format!("{} seq {}..{} ({})", o.as_deref().unwrap_or(own), l.first_seq, l.last_seq, l.count))
            .collect();
        parts.join(", ")
    };
    host::log(
        LogLevel::Warn,
        &format!(
            "proxy-audit: retiring with {} events not delivered: {}; request events are in the access log \
             (filter state proxy_audit.event), trail records follow",
            ex.depth(),
            describe(ex.buffered_ranges(true))
        ),
    );
    let undeclared = ex.undeclared();
    if !undeclared.is_empty() {
        host::log(LogLevel::Error, &format!("proxy-audit: dropped and not declared: {}", describe(undeclared)));
    }
    for line in ex.buffered_lines().filter(|l| is_trail_record(l)) {
        host::log(LogLevel::Warn, &format!("{RECORD_MARKER}{line}"));
    }
}
