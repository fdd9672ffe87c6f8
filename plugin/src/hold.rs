//! The safety net for `envoy.allow_on_headers_stop_iteration`: with the key
//! on, the exchange holds headers while it reads a body it may rewrite. That
//! only works when Envoy's Wasm `PluginConfig.allow_on_headers_stop_iteration`
//! is set too; otherwise Envoy never hands the body to a filter that holds
//! the headers, and the request would hang. Requests holding headers are
//! registered here; the root's tick releases any that saw no body within
//! [`GRACE_MS`] (their `content-length` removed first, as without the key),
//! and after [`STALLS_TO_DISABLE`] such stalls with no held request ever
//! given its body, the key is turned off for the VM, with an error in the log.

use proxy_audit_core::exchange::Side;
use proxy_wasm::types::{LogLevel, MapType};
use std::cell::{Cell, RefCell};

/// How long held headers may wait for their body's first callback.
pub const GRACE_MS: u64 = 1_000;
/// Stalls (with no proof that Envoy hands bodies over) before the key is off.
pub const STALLS_TO_DISABLE: u32 = 3;

thread_local! {
    static HELD: RefCell<Vec<(u32, Side, u64)>> = const { RefCell::new(Vec::new()) };
    /// A held request got its body: Envoy honours the knob.
    static PROVEN: Cell<bool> = const { Cell::new(false) };
    static STALLS: Cell<u32> = const { Cell::new(0) };
}

pub fn held(context_id: u32, side: Side, now_ms: u64) {
    HELD.with(|h| h.borrow_mut().push((context_id, side, now_ms)));
}

pub fn body_seen(context_id: u32, side: Side) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let before = h.len();
        h.retain(|(c, s, _)| !(*c == context_id && *s == side));
        if h.len() < before {
            PROVEN.with(|p| p.set(true));
        }
    });
}

pub fn release(context_id: u32) {
    HELD.with(|h| h.borrow_mut().retain(|(c, _, _)| *c != context_id));
}

/// From the root's tick: releases stalled requests. `None` when none
/// stalled; else whether the key should be turned off for this VM (the
/// caller then restores the root as the effective context).
pub fn check(now_ms: u64) -> Option<bool> {
    let stalled: Vec<(u32, Side, u64)> = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let (old, keep): (Vec<_>, Vec<_>) =
            h.drain(..).partition(|(_, _, since)| now_ms.saturating_sub(*since) >= GRACE_MS);
        *h = keep;
        old
    });
    if stalled.is_empty() {
        return None;
    }
    for (context_id, side, _) in &stalled {
        if !crate::raw::set_effective_context(*context_id) {
            continue;
        }
        let map = match side {
            Side::Request => MapType::HttpRequestHeaders,
            Side::Response => MapType::HttpResponseHeaders,
        };
        // As without the key: a body that may change length travels without one.
        crate::host::remove_header(map, "content-length");
        crate::host::resume(*side == Side::Response);
    }
    crate::host::log(
        LogLevel::Error,
        &format!(
            "proxy-audit: envoy.allow_on_headers_stop_iteration is on, but {} request(s) held their headers {GRACE_MS} ms \
             without a body: set allow_on_headers_stop_iteration in the Wasm PluginConfig too, or turn the key off; \
             released without content-length",
            stalled.len()
        ),
    );
    if PROVEN.with(Cell::get) {
        return Some(false);
    }
    let n = STALLS.with(|s| {
        s.set(s.get().saturating_add(1));
        s.get()
    });
    Some(n >= STALLS_TO_DISABLE)
}
