//! The optional singleton shipping service: the same `.wasm` loaded by
//! `envoy.bootstrap.wasm` (`singleton: true`) with root id
//! `proxy_audit_shipper`. It registers the shared queue that the filter's
//! workers hand their sealed events to (`audit.exporter.shared_queue`), and
//! ships them all in batches from Envoy's main thread.
//!
//! The workers' events keep their own chains: the shipper only carries them.
//! It is an emitter too (`chain_start`, `checkpoint`), and when its bounded
//! buffer overflows it declares, in its own chain, a `loss` event per worker
//! chain it dropped events of (`trail.emitter` names that chain), which
//! `proxy-audit verify` accepts as a declared gap.

use crate::host;
use crate::outbox::Outbox;
use proxy_audit_core::config::{Config, ExporterConfig};
use proxy_audit_core::emitter::Emitter;
use proxy_audit_core::runtime;
use proxy_wasm::types::LogLevel;

/// The queue name when the config names none.
pub const DEFAULT_QUEUE: &str = "proxy_audit_events";

pub struct Shipper {
    emitter: Emitter,
    exporter: ExporterConfig,
    witness: Option<ExporterConfig>,
    queue: u32,
    outbox: Outbox,
}

impl Shipper {
    /// Registers the queue and starts the shipper's own chain.
    pub fn start(cfg: &Config, emitter_name: String, seed: [u8; 32], reason: &str) -> Result<Shipper, String> {
        let exporter = cfg.audit.exporter.clone();
        let name = exporter.shared_queue.as_ref().map_or(DEFAULT_QUEUE, |q| q.name.as_str());
        let queue = host::register_queue(name)
            .ok_or_else(|| format!("the host refused to register shared queue {name:?} (no shared queues?)"))?;
        let signer = runtime::load_signer(cfg, &|k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
        let trail = runtime::trail_options(cfg, signer);
        let emitter = Emitter::start_with(emitter_name, seed, &exporter, trail, host::now_ms(), reason);
        host::log(LogLevel::Info, &format!("proxy-audit: shipping service {} reads queue {name:?}", emitter.name()));
        Ok(Shipper { emitter, exporter, witness: cfg.audit.witness.clone(), queue, outbox: Outbox::default() })
    }

    /// Workers handed off events: take every waiting message.
    pub fn on_queue_ready(&mut self, queue_id: u32) {
        if queue_id != self.queue {
            return;
        }
        self.take_queue();
        if self.emitter.exporter.full_batch_waiting() {
            self.flush();
        }
        self.publish();
    }

    fn take_queue(&mut self) {
        while let Some(msg) = host::dequeue(self.queue) {
            if let Err(why) = self.emitter.forward(&msg) {
                host::log(LogLevel::Warn, &format!("proxy-audit: shipping service ignored a queue message: {why}"));
                crate::metrics::count("proxy_audit.shipper.messages_rejected", 1);
            }
        }
    }

    pub fn flush(&mut self) {
        self.outbox.flush(&mut self.emitter, &self.exporter);
        self.outbox.flush_witness(&mut self.emitter, self.witness.as_ref());
        self.publish();
    }

    pub fn on_response(&mut self, token: u32, num_headers: usize) {
        if let Some(more) = self.outbox.on_response(token, num_headers, &mut self.emitter) {
            if more {
                self.flush();
            }
            self.publish();
        }
        self.outbox.finish_drain(&self.emitter);
    }

    pub fn on_tick(&mut self) {
        // Anything a missed notification left on the queue.
        self.take_queue();
        self.flush();
        self.outbox.finish_drain(&self.emitter);
    }

    pub fn on_done(&mut self) -> bool {
        // What workers handed off just before is still on the queue; workers
        // that retire after this POST their own events (see `Root::hand_off`).
        self.on_queue_ready(self.queue);
        self.emitter.retire(host::now_ms());
        crate::handover::log_undelivered(&self.emitter);
        self.outbox.flush_witness(&mut self.emitter, self.witness.as_ref());
        self.outbox.start_drain(&mut self.emitter, &self.exporter)
    }

    fn publish(&mut self) {
        crate::metrics::publish_exporter("proxy_audit.shipper", &mut self.emitter.exporter);
    }
}
