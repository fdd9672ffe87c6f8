//! The root context of one VM (one per worker): configuration, and shipping
//! events to the log service from the timer. Calls made from a request
//! context die with the request, so every batch leaves from here.

use crate::host;
use crate::http::Request;
use crate::shared::Shared;
use proxy_audit_core::config::Config;
use proxy_audit_core::runtime::Runtime;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub struct Root {
    shared: Option<Shared>,
    configured: u32,
    /// Token of the batch in flight, if any.
    inflight: Option<u32>,
    /// Set when the host retires this plugin (config change, drain): the
    /// time after which the rest is given up.
    draining_until_ms: Option<u64>,
}

/// How long a retired plugin keeps shipping what it still holds.
const DRAIN_MS: u64 = 10_000;

impl Root {
    pub fn new() -> Self {
        Root { shared: None, configured: 0, inflight: None, draining_until_ms: None }
    }

    fn buffered(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.borrow().emitter.exporter.depth())
    }

    /// While draining: tells the host this context may go once everything
    /// is delivered, or the drain time is over.
    fn finish_drain(&mut self) {
        let Some(until) = self.draining_until_ms else { return };
        let left = self.buffered();
        if left > 0 && host::now_ms() < until {
            return;
        }
        if left > 0 {
            host::log(LogLevel::Warn, &format!("proxy-audit: retired with {left} events undelivered"));
        }
        self.draining_until_ms = None;
        let _ = hostcalls::done();
    }

    fn flush(&mut self) {
        let Some(shared) = &self.shared else { return };
        if self.inflight.is_some() {
            return;
        }
        let now = host::now_ms();
        let mut rt = shared.borrow_mut();
        let Some(batch) = rt.emitter.tick(now) else { return };
        let ex = &rt.cfg.audit.exporter;
        match host::post_batch(ex, &batch) {
            Ok(token) => self.inflight = Some(token),
            Err(status) => {
                host::log(LogLevel::Warn, &format!("proxy-audit: cannot reach cluster {}: {status:?}", ex.cluster));
                rt.emitter.batch_done(false, now);
            }
        }
        drop(rt);
        crate::metrics::publish(shared);
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, _body_size: usize, _num_trailers: usize) {
        if self.inflight != Some(token_id) {
            return;
        }
        self.inflight = None;
        // No :status means reset or timeout (see host::call_status).
        let status = host::call_status(num_headers);
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        if let Some(shared) = &self.shared {
            let now = host::now_ms();
            shared.borrow_mut().emitter.batch_done(ok, now);
            crate::metrics::publish(shared);
            if !ok {
                host::log(
                    LogLevel::Warn,
                    &format!("proxy-audit: log service answered {status:?}; batch will be retried"),
                );
            }
        }
        // Keep draining while full batches wait (and when retiring); smaller
        // ones go on the next tick, so a steady trickle of requests does
        // not become one POST per event.
        let more = self.shared.as_ref().is_some_and(|s| s.borrow().emitter.exporter.full_batch_waiting());
        if ok && (more || self.draining_until_ms.is_some()) {
            self.flush();
        }
        self.finish_drain();
    }

    fn on_done(&mut self) -> bool {
        // The host retires this plugin: ship what is still buffered first
        // (the host keeps the context until `done`).
        if self.buffered() == 0 {
            return true;
        }
        self.draining_until_ms = Some(host::now_ms() + DRAIN_MS);
        self.flush();
        false
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = host::buffer(BufferType::PluginConfiguration, 0, plugin_configuration_size);
        let cfg = match Config::parse(&bytes) {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors {
                    host::log(LogLevel::Error, &format!("proxy-audit: configuration: {e}"));
                }
                host::log(LogLevel::Error, &format!("proxy-audit: configuration refused ({} problems)", errors.len()));
                return false;
            }
        };
        let seed = host::random_seed();
        let node = host::property_string(&["node", "id"]).unwrap_or_else(|| "envoy".into());
        let plugin = host::property_string(&["plugin_name"]).unwrap_or_else(|| "proxy-audit".into());
        let epoch = proxy_audit_core::ids::hex(seed.get(..8).unwrap_or_default());
        let emitter_name = format!("{node}/{plugin}/{epoch}");
        let reason = if self.configured == 0 { "start" } else { "reload" };
        let env = |k: &str| std::env::var(k).ok();
        match Runtime::new(cfg, &env, seed, emitter_name, host::now_ms(), reason) {
            Ok(rt) => {
                let period = Duration::from_millis(rt.cfg.audit.exporter.flush_interval_ms);
                self.shared = Some(Rc::new(RefCell::new(rt)));
                crate::metrics::define(self.shared.as_ref());
                self.configured += 1;
                let _ = hostcalls::set_tick_period(period);
                true
            }
            Err(errors) => {
                for e in &errors {
                    host::log(LogLevel::Error, &format!("proxy-audit: configuration: {e}"));
                }
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.flush();
        self.finish_drain();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request::new(self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
