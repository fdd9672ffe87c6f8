//! POSTing an emitter's batches to the log service from a root context: one
//! call in flight, its outcome fed back to the exporter (retry with backoff on
//! anything but 2xx), and the drain when the host retires the plugin. Both
//! the filter's root context and the shipping service use it.

use crate::host;
use proxy_audit_core::config::ExporterConfig;
use proxy_audit_core::emitter::Emitter;
use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

/// How long a retired plugin keeps shipping what it still holds.
const DRAIN_MS: u64 = 10_000;

/// At most one "buffer full" log line per this many ms (the counts add up).
const DROP_LOG_MS: u64 = 10_000;

#[derive(Default)]
pub struct Outbox {
    /// Token of the batch in flight, if any.
    inflight: Option<u32>,
    /// Set when the host retires this plugin (config change, drain): the
    /// time after which the rest is given up.
    draining_until_ms: Option<u64>,
    /// `stats.dropped` at the last "buffer full" log line, and when.
    drops_logged: u64,
    drop_log_at_ms: u64,
    /// Token of the witness batch in flight (`audit.witness`), if any.
    witness_inflight: Option<u32>,
}

impl Outbox {
    /// The emitter these calls were for was handed over whole (in-flight
    /// batches included) to a new one: their answers must not settle against
    /// the new emitter (a failure would put its fresh chain into backoff).
    /// The adopted copies are sent again; the log service may see them twice,
    /// and `verify` counts a duplicate once.
    pub fn forget_inflight(&mut self) {
        self.inflight = None;
        self.witness_inflight = None;
    }

    pub fn busy(&self) -> bool {
        self.inflight.is_some()
    }

    pub fn draining(&self) -> bool {
        self.draining_until_ms.is_some()
    }

    /// Timer work, then POSTs the next batch if one is due.
    pub fn flush(&mut self, emitter: &mut Emitter, ex: &ExporterConfig) {
        let now = host::now_ms();
        self.log_drops(emitter, now);
        if self.inflight.is_some() {
            return;
        }
        let Some(batch) = emitter.tick(now) else { return };
        match host::post_batch(ex, &batch) {
            Ok(token) => self.inflight = Some(token),
            Err(status) => {
                host::log(LogLevel::Warn, &format!("proxy-audit: cannot reach cluster {}: {status:?}", ex.cluster));
                emitter.batch_done(false, now);
            }
        }
    }

    /// POSTs the next batch of signed checkpoints to the witness
    /// (`audit.witness`), like an event batch: one in flight, retried with
    /// backoff until acknowledged.
    pub fn flush_witness(&mut self, emitter: &mut Emitter, witness: Option<&ExporterConfig>) {
        let Some(w) = witness else { return };
        if self.witness_inflight.is_some() {
            return;
        }
        let now = host::now_ms();
        let Some(batch) = emitter.witness_batch(now) else { return };
        match host::post_batch(w, &batch) {
            Ok(token) => self.witness_inflight = Some(token),
            Err(status) => {
                host::log(
                    LogLevel::Warn,
                    &format!("proxy-audit: cannot reach witness cluster {}: {status:?}", w.cluster),
                );
                emitter.witness_done(false, now);
            }
        }
    }

    /// Every drop is counted (`events_dropped`) and declared by a `loss`
    /// event; the log says so too, at most once per [`DROP_LOG_MS`].
    fn log_drops(&mut self, emitter: &Emitter, now: u64) {
        let dropped = emitter.exporter.stats.dropped;
        if dropped > self.drops_logged && now >= self.drop_log_at_ms.saturating_add(DROP_LOG_MS) {
            host::log(
                LogLevel::Warn,
                &format!(
                    "proxy-audit: buffer full: {} events of {} dropped since the last report ({dropped} in all), declared by loss events",
                    dropped - self.drops_logged,
                    emitter.name()
                ),
            );
            self.drops_logged = dropped;
            self.drop_log_at_ms = now;
        }
    }

    /// An HTTP call answered: `None` when the token is not ours, else
    /// whether the caller should send the next batch now (the batch was
    /// acknowledged and a full batch waits, or the plugin is retiring).
    /// Smaller batches go on the next tick, so a steady trickle does not
    /// become one POST per event. The caller sends it, so a worker with a
    /// shipping service hands it over rather than POSTing it.
    pub fn on_response(&mut self, token: u32, num_headers: usize, emitter: &mut Emitter) -> Option<bool> {
        if self.witness_inflight == Some(token) {
            self.witness_inflight = None;
            let status = host::call_status(num_headers);
            let ok = status.is_some_and(|s| (200..300).contains(&s));
            emitter.witness_done(ok, host::now_ms());
            if !ok {
                host::log(
                    LogLevel::Warn,
                    &format!("proxy-audit: witness answered {status:?}; checkpoints will be retried"),
                );
            }
            return Some(false);
        }
        if self.inflight != Some(token) {
            return None;
        }
        self.inflight = None;
        // No :status means reset or timeout (see host::call_status).
        let status = host::call_status(num_headers);
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        emitter.batch_done(ok, host::now_ms());
        if !ok {
            host::log(LogLevel::Warn, &format!("proxy-audit: log service answered {status:?}; batch will be retried"));
        }
        Some(ok && (emitter.exporter.full_batch_waiting() || self.draining()))
    }

    /// The host retires the plugin: true when it may go at once, otherwise
    /// the drain starts (the host keeps the context until `done`).
    pub fn start_drain(&mut self, emitter: &mut Emitter, ex: &ExporterConfig) -> bool {
        // Declare what was dropped since the last tick first: an empty buffer
        // may still owe a `loss` event.
        emitter.tick_records(host::now_ms());
        if emitter.exporter.depth() == 0 {
            return true;
        }
        self.draining_until_ms = Some(host::now_ms() + DRAIN_MS);
        self.flush(emitter, ex);
        false
    }

    /// While draining: tells the host this context may go once everything
    /// is delivered, or the drain time is over.
    pub fn finish_drain(&mut self, emitter: &Emitter) {
        let Some(until) = self.draining_until_ms else { return };
        let left = emitter.exporter.depth();
        if left > 0 && host::now_ms() < until {
            return;
        }
        if left > 0 {
            let ranges: Vec<String> = emitter
                .exporter
                .buffered_ranges(true)
                .iter()
                .map(|(o, l)| format!("{} seq {}..{}", o.as_deref().unwrap_or(emitter.name()), l.first_seq, l.last_seq))
                .collect();
            host::log(
                LogLevel::Error,
                &format!(
                    "proxy-audit: retired with {left} events undelivered ({}); recover them from the access log \
                     (proxy_audit.event) and this log's proxy-audit: record lines",
                    ranges.join(", ")
                ),
            );
        }
        self.draining_until_ms = None;
        let _ = hostcalls::done();
    }
}
