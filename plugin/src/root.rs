//! The root context of one VM (one per worker): configuration, and shipping
//! events to the log service from the timer. Calls made from a request
//! context die with the request, so every batch leaves from here.

use crate::host;
use crate::http::Request;
use crate::outbox::Outbox;
use crate::shared::Shared;
use crate::shipper::Shipper;
use proxy_audit_core::config::{Config, SHIPPER_ROOT_ID};
use proxy_audit_core::policy;
use proxy_audit_core::runtime::Runtime;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub struct Root {
    context_id: u32,
    shared: Option<Shared>,
    configured: u32,
    outbox: Outbox,
    /// The shipping service's queue, once resolved (`audit.exporter.shared_queue`).
    queue_id: Option<u32>,
    /// Whether "no shipping service" was logged (once per VM).
    queue_warned: bool,
    /// Set when this root context is the singleton shipping service.
    shipper: Option<Shipper>,
}

impl Root {
    pub fn new(context_id: u32) -> Self {
        Root {
            context_id,
            shared: None,
            configured: 0,
            outbox: Outbox::default(),
            queue_id: None,
            queue_warned: false,
            shipper: None,
        }
    }

    fn flush(&mut self) {
        let Some(shared) = self.shared.clone() else { return };
        {
            let mut rt = shared.borrow_mut();
            crate::handover::adopt_into(&mut rt, host::now_ms());
            if !self.hand_off(&mut rt) {
                let rt = &mut *rt;
                self.outbox.flush(&mut rt.emitter, &rt.cfg.audit.exporter);
            }
            let rt = &mut *rt;
            self.outbox.flush_witness(&mut rt.emitter, rt.cfg.audit.witness.as_ref());
        }
        crate::metrics::publish(&shared);
    }

    /// With `audit.exporter.shared_queue`: hands the queued events to the
    /// shipping service. False when there is none (not configured, not
    /// running, or an HTTP batch of this worker is in flight): then this
    /// worker POSTs them itself, so nothing waits on a service that is absent.
    fn hand_off(&mut self, rt: &mut Runtime) -> bool {
        let Some(q) = rt.cfg.audit.exporter.shared_queue.as_ref() else { return false };
        // A retiring worker ships what it holds itself and waits for the log
        // service: the shipping service may be retiring too, and a hand-off
        // is not an acknowledgement.
        // Events adopted from a retired instance belong to another chain: a
        // hand-off message carries one.
        if self.outbox.busy() || self.outbox.draining() || rt.emitter.exporter.carries_others() {
            return false;
        }
        let Some(id) = self.queue_id.or_else(|| host::resolve_queue(&q.vm_id, &q.name)) else {
            if !self.queue_warned {
                self.queue_warned = true;
                host::log(
                    LogLevel::Warn,
                    &format!(
                        "proxy-audit: no shipping service queue {:?} in vm {:?}; this worker ships its own events",
                        q.name, q.vm_id
                    ),
                );
            }
            return false;
        };
        if self.queue_id.is_none() && self.queue_warned {
            host::log(LogLevel::Info, "proxy-audit: shipping service found; handing events to it");
        }
        self.queue_id = Some(id);
        let now = host::now_ms();
        while let Some(msg) = rt.emitter.tick_handoff(now) {
            if host::enqueue(id, &msg) {
                rt.emitter.exporter.handed_off();
            } else {
                host::log(LogLevel::Warn, "proxy-audit: the shipping service queue refused events; retrying");
                rt.emitter.batch_done(false, now);
                self.queue_id = None;
                break;
            }
        }
        true
    }

    fn finish_drain(&mut self) {
        if let Some(shared) = &self.shared {
            self.outbox.finish_drain(&shared.borrow().emitter);
        }
    }

    /// `<node id>/<plugin name>/<random epoch>`: a restart or reload is a new emitter.
    fn emitter_name(seed: &[u8; 32]) -> String {
        let node = host::property_string(&["node", "id"]).unwrap_or_else(|| "envoy".into());
        let plugin = host::property_string(&["plugin_name"]).unwrap_or_else(|| "proxy-audit".into());
        let epoch = proxy_audit_core::ids::hex(seed.get(..8).unwrap_or_default());
        format!("{node}/{plugin}/{epoch}")
    }

    fn configure_shipper(&mut self, cfg: &Config) -> bool {
        let seed = host::random_seed();
        let reason = if self.configured == 0 { "start" } else { "reload" };
        match Shipper::start(cfg, Self::emitter_name(&seed), seed, reason) {
            Ok(s) => {
                self.shipper = Some(s);
                self.configured += 1;
                let _ = hostcalls::set_tick_period(Duration::from_millis(cfg.audit.exporter.flush_interval_ms));
                true
            }
            Err(why) => {
                host::log(LogLevel::Error, &format!("proxy-audit: shipping service: {why}"));
                false
            }
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, _body_size: usize, _num_trailers: usize) {
        if let Some(s) = &mut self.shipper {
            s.on_response(token_id, num_headers);
            return;
        }
        if let Some(shared) = self.shared.clone() {
            let answered = self.outbox.on_response(token_id, num_headers, &mut shared.borrow_mut().emitter);
            if answered == Some(true) {
                self.flush();
            }
            if answered.is_some() {
                crate::metrics::publish(&shared);
            }
        }
        self.finish_drain();
    }

    fn on_done(&mut self) -> bool {
        // The host retires this plugin instance.
        if let Some(s) = &mut self.shipper {
            return s.on_done();
        }
        let Some(shared) = self.shared.clone() else { return true };
        crate::handover::left();
        crate::metrics::retire(&shared);
        if crate::handover::others_live() {
            // A live instance of this VM adopts the buffer (and seals the
            // `end` record once no request holds this runtime).
            self.shared = None;
            crate::handover::bequeath(shared);
            return true;
        }
        // The last instance: take in what retired ones left, end the chain,
        // and try to ship it all. Envoy may already have stopped this
        // worker's event loop (shutdown), so what is not delivered yet is
        // put on record in Envoy's log first.
        let mut rt = shared.borrow_mut();
        let rt = &mut *rt;
        let now = host::now_ms();
        crate::handover::adopt_into(rt, now);
        rt.emitter.retire(now);
        crate::handover::log_undelivered(&rt.emitter);
        self.outbox.flush_witness(&mut rt.emitter, rt.cfg.audit.witness.as_ref());
        self.outbox.start_drain(&mut rt.emitter, &rt.cfg.audit.exporter)
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = host::buffer(BufferType::PluginConfiguration, 0, plugin_configuration_size);
        let cfg = match policy::compile(&bytes) {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors {
                    host::log(LogLevel::Error, &format!("proxy-audit: configuration: {e}"));
                }
                host::log(LogLevel::Error, &format!("proxy-audit: configuration refused ({} problems)", errors.len()));
                return false;
            }
        };
        if host::property_string(&["plugin_root_id"]).as_deref() == Some(SHIPPER_ROOT_ID) {
            return self.configure_shipper(&cfg);
        }
        let seed = host::random_seed();
        let emitter_name = Self::emitter_name(&seed);
        let reason = if self.configured == 0 { "start" } else { "reload" };
        let env = |k: &str| std::env::var(k).ok();
        match Runtime::new(cfg, &env, seed, emitter_name, host::now_ms(), reason) {
            Ok(rt) => {
                let period = Duration::from_millis(rt.cfg.audit.exporter.flush_interval_ms);
                match self.shared.take() {
                    // Re-configured in place: the new runtime adopts the old one's buffer.
                    Some(old) => {
                        crate::metrics::retire(&old);
                        crate::handover::bequeath(old);
                        self.outbox.forget_inflight();
                    }
                    None => crate::handover::joined(),
                }
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
        if let Some(s) = &mut self.shipper {
            s.on_tick();
            return;
        }
        self.flush();
        self.finish_drain();
        // Held headers that stalled: released with their stream effective.
        // Requests that started before a reload run against the retired runtime.
        let Some(shared) = &self.shared else { return };
        let now = host::now_ms();
        let mut ticks = crate::handover::tick_orphan_holds(now);
        ticks.push(shared.borrow_mut().tick_holds(now));
        for tick in ticks {
            for (context_id, effects) in tick.release {
                if crate::raw::set_effective_context(context_id) {
                    effects.into_iter().for_each(crate::http::carry_out);
                }
            }
            if let Some(line) = tick.log {
                crate::raw::set_effective_context(self.context_id);
                host::log(LogLevel::Error, &line);
            }
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        if let Some(s) = &mut self.shipper {
            s.on_queue_ready(queue_id);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        if self.shipper.is_some() {
            // The shipping service is not a filter (`envoy.bootstrap.wasm` only).
            return None;
        }
        Some(Box::new(Request::new(context_id, self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
