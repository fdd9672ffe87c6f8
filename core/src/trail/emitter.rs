//! One emitter: the chain, the id source and the export buffer of one VM
//! instance on one worker. Seals events in order, declares losses with a
//! `loss` event once the buffer has room, and attests the head with a
//! `checkpoint` every `checkpoint_every_events` records and at least every
//! `checkpoint_interval_ms` (while the chain moves and while it is idle).
//! With a [`Signer`], the chain's first record and every checkpoint (the
//! `end` record included) carry `trail.signature` (see [`crate::signing`]),
//! and with a witness exporter each of them is also queued for the witness.

use crate::chain::{Chain, Sealed};
use crate::config::ExporterConfig;
use crate::event::trail_event;
use crate::export::{Batch, Exporter};
use crate::ids::IdGen;
use crate::signing::Signer;
use crate::timefmt::rfc3339_millis;
use serde_json::{json, Map, Value};

/// How an emitter attests its chain: checkpoint cadence, signing key, witness.
#[derive(Debug, Clone)]
pub struct TrailOptions {
    pub checkpoint_interval_ms: u64,
    pub checkpoint_every_events: u64,
    pub signer: Option<Signer>,
    /// Where signed records are also POSTed (`audit.witness`).
    pub witness: Option<ExporterConfig>,
}

impl TrailOptions {
    /// Checkpoints every `checkpoint_interval_ms` and every 1,000 records, unsigned.
    pub fn unsigned(checkpoint_interval_ms: u64) -> Self {
        TrailOptions { checkpoint_interval_ms, checkpoint_every_events: 1_000, signer: None, witness: None }
    }
}

/// `trail.reason` of the `loss` event that declares signed records the
/// witness queue (`audit.witness`) dropped: they are in the chain, not at the
/// witness; the range names their seqs, it is no gap in the chain.
pub const WITNESS_BUFFER_FULL: &str = "witness_buffer_full";

pub struct Emitter {
    chain: Chain,
    pub ids: IdGen,
    pub exporter: Exporter,
    /// Signed records for the witness (`audit.witness`), if any.
    pub witness: Option<Exporter>,
    checkpoint_interval_ms: u64,
    checkpoint_every_events: u64,
    signer: Option<Signer>,
    /// When the last checkpoint (or the `chain_start`) was sealed.
    last_checkpoint_ms: u64,
    /// Records sealed since then.
    since_checkpoint: u64,
    /// `next_seq` right after the `end` checkpoint, if one was sealed.
    ended_at: Option<u64>,
}

impl Emitter {
    /// A new chain; seq 0 is a `chain_start` with `reason` (start, reload, restart).
    pub fn start(
        emitter: String,
        seed: [u8; 32],
        exporter: &ExporterConfig,
        checkpoint_interval_ms: u64,
        now_ms: u64,
        reason: &str,
    ) -> Self {
        Self::start_with(emitter, seed, exporter, TrailOptions::unsigned(checkpoint_interval_ms), now_ms, reason)
    }

    /// [`Self::start`] with a checkpoint cadence, a signing key and a witness.
    pub fn start_with(
        emitter: String,
        seed: [u8; 32],
        exporter: &ExporterConfig,
        trail: TrailOptions,
        now_ms: u64,
        reason: &str,
    ) -> Self {
        let mut e = Emitter {
            chain: Chain::new(emitter),
            ids: IdGen::new(seed),
            exporter: Exporter::new(exporter),
            witness: trail.witness.as_ref().map(Exporter::new),
            checkpoint_interval_ms: trail.checkpoint_interval_ms,
            checkpoint_every_events: trail.checkpoint_every_events.max(1),
            signer: trail.signer,
            last_checkpoint_ms: now_ms,
            since_checkpoint: 0,
            ended_at: None,
        };
        let id = e.ids.next_id();
        let mut trail = json!({"reason": reason});
        if let (Some(signer), Some(t)) = (&e.signer, trail.as_object_mut()) {
            let sig = signer.sign(e.chain.emitter(), 0, &rfc3339_millis(now_ms), None);
            t.insert("signature".into(), sig);
        }
        let sealed = e.chain.seal(&mut trail_event(id, now_ms, "chain_start", trail));
        e.exporter.push(sealed.seq, &sealed.line);
        e.witness_push(&sealed);
        e
    }

    fn witness_push(&mut self, sealed: &Sealed) {
        if let (Some(w), Some(_)) = (&mut self.witness, &self.signer) {
            w.push(sealed.seq, &sealed.line);
        }
    }

    /// Seals a `checkpoint` of the head (signed when a key is set) and
    /// queues it; `reason` is `events`, `interval`, `idle` or `end`.
    fn checkpoint(&mut self, now_ms: u64, reason: &str) {
        let Some((seq, hash)) = self.chain.head() else { return };
        let hash = hash.to_string();
        let mut trail = json!({"head_seq": seq, "head_hash": hash, "reason": reason});
        if let (Some(signer), Some(t)) = (&self.signer, trail.as_object_mut()) {
            let sig =
                signer.sign(self.chain.emitter(), self.chain.next_seq(), &rfc3339_millis(now_ms), Some((seq, &hash)));
            t.insert("signature".into(), sig);
        }
        let id = self.ids.next_id();
        let sealed = self.chain.seal(&mut trail_event(id, now_ms, "checkpoint", trail));
        self.exporter.push(sealed.seq, &sealed.line);
        self.witness_push(&sealed);
        self.last_checkpoint_ms = now_ms;
        self.since_checkpoint = 0;
    }

    /// One more record sealed: a checkpoint once `checkpoint_every_events` are.
    fn count_record(&mut self, now_ms: u64) {
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.checkpoint_every_events {
            self.checkpoint(now_ms, "events");
        }
    }

    pub fn name(&self) -> &str {
        self.chain.emitter()
    }

    /// A fresh event id.
    pub fn next_id(&mut self) -> String {
        self.ids.next_id()
    }

    /// Seals and queues an event.
    pub fn emit(&mut self, mut event: Map<String, Value>, now_ms: u64) -> Sealed {
        let sealed = self.chain.seal(&mut event);
        self.exporter.push(sealed.seq, &sealed.line);
        self.count_record(now_ms);
        sealed
    }

    /// Seals and queues a request event, written canonically straight
    /// into its line (no map, no sort).
    pub fn emit_request(&mut self, event: &crate::event::RequestEvent, now_ms: u64) -> Sealed {
        let (before, after) = event.canonical_parts();
        let sealed = self.chain.seal_parts(&before, &after);
        self.exporter.push(sealed.seq, &sealed.line);
        self.count_record(now_ms);
        sealed
    }

    /// Seals a request event without queuing it (write-ahead `begin`).
    pub fn seal_request(&mut self, event: &crate::event::RequestEvent, now_ms: u64) -> Sealed {
        let (before, after) = event.canonical_parts();
        let sealed = self.chain.seal_parts(&before, &after);
        self.count_record(now_ms);
        sealed
    }

    /// Seals an event without queuing it (write-ahead: the caller delivers it
    /// itself and hands it to [`Self::enqueue`] if that fails).
    pub fn seal(&mut self, mut event: Map<String, Value>, now_ms: u64) -> Sealed {
        let sealed = self.chain.seal(&mut event);
        self.count_record(now_ms);
        sealed
    }

    /// Queues an already sealed event for the batch exporter.
    pub fn enqueue(&mut self, sealed: &Sealed) {
        self.exporter.push(sealed.seq, &sealed.line);
    }

    /// Queues the events of a worker's hand-off (the shipping service): they
    /// keep their own chain; this emitter only carries them, and declares in
    /// its own chain any of them it has to drop. Returns how many it took.
    pub fn forward(&mut self, handoff: &[u8]) -> Result<usize, String> {
        let h = crate::handoff::decode(handoff)?;
        if h.emitter == self.name() {
            return Err("hand-off claims the shipping service's own emitter".into());
        }
        let origin: std::sync::Arc<str> = h.emitter.into();
        for ((seq, line), declares) in h.events.iter().zip(h.declares) {
            // A worker's `loss` event: if it is dropped here, its gap is
            // declared again in this chain, not lost with it.
            let declares = declares.map(|(target, first_seq, last_seq, count)| {
                let target: std::sync::Arc<str> = if *target == *origin { origin.clone() } else { target.into() };
                (target, crate::export::Loss { first_seq, last_seq, count })
            });
            self.exporter.push_from(&origin, *seq, line, declares);
        }
        Ok(h.events.len())
    }

    /// Declares dropped events with `loss` events, when there is room: one
    /// for this emitter's own, one per other emitter whose events it carried
    /// (`trail.emitter` names that chain).
    fn declare_loss(&mut self, now_ms: u64) {
        while let Some(l) = self.exporter.take_loss() {
            let trail = json!({"lost_events": l.count, "first_seq": l.first_seq, "last_seq": l.last_seq, "reason": "buffer_full"});
            self.emit_loss(trail, None, l, now_ms);
        }
        while let Some((origin, l)) = self.exporter.take_forwarded_loss() {
            let trail = json!({"emitter": &*origin, "lost_events": l.count, "first_seq": l.first_seq,
                               "last_seq": l.last_seq, "reason": "shipper_buffer_full"});
            self.emit_loss(trail, Some(origin), l, now_ms);
        }
        // Signed records the witness queue had to drop: they are still in this
        // chain (and its log store), but the witness never got them; the
        // chain says so (`verify` reports it and counts no gap for it). A drop
        // caused by the `end` record itself cannot be declared any more.
        // One event for all of them (they are checkpoints, far apart: the
        // range spans the records between, `lost_events` counts the dropped).
        // Once the chain has ended nothing follows its end record.
        let mut dropped: Option<crate::export::Loss> = None;
        while let Some(l) = self.witness.as_mut().filter(|_| self.ended_at.is_none()).and_then(Exporter::take_loss) {
            let d = dropped.get_or_insert(crate::export::Loss { count: 0, ..l });
            d.first_seq = d.first_seq.min(l.first_seq);
            d.last_seq = d.last_seq.max(l.last_seq);
            d.count = d.count.saturating_add(l.count);
        }
        if let Some(l) = dropped {
            let trail = json!({"lost_events": l.count, "first_seq": l.first_seq, "last_seq": l.last_seq,
                               "reason": WITNESS_BUFFER_FULL});
            let id = self.ids.next_id();
            let sealed = self.chain.seal(&mut trail_event(id, now_ms, "loss", trail));
            // An ordinary record: dropped in turn, it is declared like any other.
            self.exporter.push(sealed.seq, &sealed.line);
            self.count_record(now_ms);
        }
    }

    fn emit_loss(&mut self, trail: Value, origin: Option<std::sync::Arc<str>>, loss: crate::export::Loss, now_ms: u64) {
        let id = self.ids.next_id();
        let mut event = trail_event(id, now_ms, "loss", trail);
        let sealed = self.chain.seal(&mut event);
        self.exporter.push_loss(sealed.seq, &sealed.line, origin, loss);
        self.count_record(now_ms);
    }

    /// The chain's last record: a `checkpoint` of the head with reason
    /// `end`, sealed when the emitter retires in order. `verify` reads a
    /// chain without one (and no anchor past its last event) as open: its
    /// tail may be missing.
    pub fn end(&mut self, now_ms: u64) {
        self.declare_loss(now_ms);
        if self.chain.head().is_some() {
            self.checkpoint(now_ms, "end");
            self.ended_at = Some(self.chain.next_seq());
        }
    }

    /// The last instance of a VM retires (Envoy stopping, the plugin
    /// removed): what is still buffered may never be delivered, so a `loss`
    /// event (reason `undelivered_at_stop`) declares each buffered range of
    /// request events, then the chain ends. (Trail records are not declared:
    /// the plugin writes them to Envoy's log.) Whatever the drain still delivers is reported by
    /// `verify` as present though declared lost.
    pub fn retire(&mut self, now_ms: u64) {
        self.declare_loss(now_ms);
        for (origin, l) in self.exporter.buffered_ranges(false) {
            let mut trail = json!({"lost_events": l.count, "first_seq": l.first_seq, "last_seq": l.last_seq,
                                   "reason": "undelivered_at_stop"});
            if let (Some(o), Some(t)) = (&origin, trail.as_object_mut()) {
                t.insert("emitter".into(), Value::String(o.to_string()));
            }
            self.emit_loss(trail, origin, l, now_ms);
        }
        self.end(now_ms);
    }

    /// Whether the last sealed record is this chain's `end` checkpoint.
    pub fn ended(&self) -> bool {
        self.ended_at == Some(self.chain.next_seq())
    }

    /// Takes over what a retiring emitter of the same VM still holds (see
    /// [`crate::export::Exporter::adopt`]).
    pub fn adopt(&mut self, from: &mut Emitter) {
        let name: std::sync::Arc<str> = from.name().into();
        self.exporter.adopt(&name, &mut from.exporter);
    }

    /// Timer work without the batch: declare losses, and a `checkpoint`
    /// once the interval has passed since the last one (reason `interval`
    /// when records came since, `idle` when none did).
    pub fn tick_records(&mut self, now_ms: u64) {
        self.declare_loss(now_ms);
        if now_ms.saturating_sub(self.last_checkpoint_ms) >= self.checkpoint_interval_ms {
            let reason = if self.since_checkpoint > 0 { "interval" } else { "idle" };
            self.checkpoint(now_ms, reason);
        }
    }

    /// The next batch of signed records for the witness, if one is due.
    pub fn witness_batch(&mut self, now_ms: u64) -> Option<Batch> {
        self.witness.as_mut()?.next_batch(now_ms)
    }

    /// Reports the outcome of the witness batch in flight.
    pub fn witness_done(&mut self, ok: bool, now_ms: u64) {
        let Some(w) = self.witness.as_mut() else { return };
        if ok {
            w.delivered();
        } else {
            let backoff = w.backoff_ms().max(crate::export::BASE_BACKOFF_MS);
            let jitter = self.ids.below(backoff);
            if let Some(w) = self.witness.as_mut() {
                w.failed(now_ms, jitter);
            }
        }
    }

    /// Timer work ([`Self::tick_records`]), then the next batch to POST.
    pub fn tick(&mut self, now_ms: u64) -> Option<Batch> {
        self.tick_records(now_ms);
        self.exporter.next_batch(now_ms)
    }

    /// Timer work, then the next hand-off for the shipping service.
    pub fn tick_handoff(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        self.tick_records(now_ms);
        let name = self.chain.emitter().to_string();
        self.exporter.next_handoff(&name, now_ms)
    }

    /// Reports the outcome of the in-flight batch.
    pub fn batch_done(&mut self, ok: bool, now_ms: u64) {
        if ok {
            self.exporter.delivered();
        } else {
            let backoff = self.exporter.backoff_ms().max(crate::export::BASE_BACKOFF_MS);
            let jitter = self.ids.below(backoff);
            self.exporter.failed(now_ms, jitter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Hash and link check of delivered lines (the full verifier lives in `verify`).
    fn check_lines(lines: &[String]) -> Result<usize, String> {
        let mut prev = crate::chain::ZERO_HASH.to_string();
        for l in lines {
            let v: Value = serde_json::from_str(l).map_err(|e| e.to_string())?;
            if v["chain"]["prev"] != prev.as_str() || crate::chain::compute_hash(&v) != v["chain"]["hash"] {
                return Err(l.clone());
            }
            prev = v["chain"]["hash"].as_str().unwrap_or_default().to_string();
        }
        Ok(lines.len())
    }

    fn emitter(buffered: u64) -> Emitter {
        let text =
            format!(r#"{{"audit": {{"exporter": {{"max_batch_events": 2, "max_buffered_events": {buffered}}}}}}}"#);
        let cfg = Config::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        Emitter::start("node/1".into(), [7; 32], &cfg.audit.exporter, 60_000, 1_000, "start")
    }

    fn drain(e: &mut Emitter, now: u64) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(b) = e.tick(now) {
            lines.extend(String::from_utf8_lossy(&b.body).lines().map(str::to_string));
            e.batch_done(true, now);
        }
        lines
    }

    #[test]
    fn chain_start_then_events_then_checkpoint() {
        let mut e = emitter(100);
        let id = e.next_id();
        e.emit(trail_event(id, 1_001, "checkpoint", json!({})), 1_001);
        let mut lines = drain(&mut e, 1_002);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("\"kind\":\"chain_start\""));
        lines.extend(drain(&mut e, 61_001));
        assert_eq!(lines.len(), 3, "idle for the interval → one checkpoint");
        assert!(lines[2].contains("\"head_seq\":1"));
        assert_eq!(check_lines(&lines), Ok(3));
    }

    /// A worker hands its events to a shipper whose buffer overflows: the
    /// shipper's chain declares the gap in the worker's chain, and `verify`
    /// accepts the trail (every seq delivered or declared lost).
    #[test]
    fn shipper_declares_what_it_drops_for_the_worker() {
        let mut worker = emitter(1_000);
        for i in 0..30 {
            let id = worker.next_id();
            worker.emit(trail_event(id, 1_000 + i, "checkpoint", json!({})), 1_000 + i);
        }
        let cfg = Config::parse(br#"{"audit": {"exporter": {"max_batch_events": 2, "max_buffered_events": 5}}}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut shipper = Emitter::start("node/1/shipper".into(), [8; 32], &cfg.audit.exporter, 60_000, 1_000, "start");
        let mut delivered = Vec::new();
        let mut handoffs = 0;
        let mut forwarded = 0;
        while let Some(h) = worker.tick_handoff(2_000) {
            handoffs += 1;
            forwarded += shipper.forward(&h).unwrap_or_else(|e| panic!("{e}"));
            worker.exporter.handed_off();
            // The log service is down meanwhile.
            if shipper.tick(2_000).is_some() {
                shipper.batch_done(false, 2_000);
            }
        }
        assert_eq!((handoffs, forwarded), (16, 31), "31 events, 2 per hand-off");
        assert_eq!(worker.exporter.stats.handed_off, 31);
        delivered.extend(drain(&mut shipper, 3_000));
        assert!(shipper.exporter.stats.dropped > 0, "the small shipper buffer overflowed");
        let lost: Vec<Value> = delivered
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == "loss" && v["trail"]["emitter"] == "node/1")
            .collect();
        assert!(!lost.is_empty());
        let values: Vec<Value> = delivered.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let report = proxy_audit_verify::verify(values.clone(), &[]);
        assert_eq!(report.exit_code(), 0, "{}", report.render());
        assert!(report.render().contains("declared by node/1/shipper"), "{}", report.render());
        // Without the shipper's loss events, the worker's chain has holes.
        let without: Vec<Value> = values.into_iter().filter(|v| v["trail"]["emitter"] != "node/1").collect();
        assert_eq!(proxy_audit_verify::verify(without, &[]).exit_code(), 1);
        assert!(shipper.forward(b"garbage").is_err());
    }

    /// A `loss` event that is itself pushed out of the buffer puts its gap
    /// back on record: the next one declares it again (own chain and, for the
    /// shipper, the worker chains it declares for).
    #[test]
    fn a_dropped_loss_event_is_declared_again() {
        let cfg = Config::parse(br#"{"audit": {"exporter": {"max_batch_events": 2, "max_buffered_events": 4}}}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut worker = Emitter::start("w".into(), [7; 32], &cfg.audit.exporter, 60_000, 1_000, "start");
        let mut shipper = Emitter::start("s".into(), [8; 32], &cfg.audit.exporter, 60_000, 1_000, "start");
        let mut delivered = Vec::new();
        let mut t = 1_000;
        for round in 0..6 {
            for _ in 0..7 {
                t += 1;
                let id = worker.next_id();
                worker.emit(trail_event(id, t, "checkpoint", json!({})), t);
            }
            while let Some(h) = worker.tick_handoff(t) {
                let _ = shipper.forward(&h);
                worker.exporter.handed_off();
            }
            // Outage on odd rounds: the shipper's batches fail and its buffer
            // (loss events included) overflows; even rounds deliver one batch.
            if let Some(b) = shipper.tick(t) {
                if round % 2 == 0 {
                    delivered.extend(String::from_utf8_lossy(&b.body).lines().map(str::to_string));
                }
                shipper.batch_done(round % 2 == 0, t);
            }
            t += 20_000;
        }
        delivered.extend(drain(&mut shipper, t + 100_000));
        let values: Vec<Value> = delivered.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let report = proxy_audit_verify::verify(values, &[]);
        assert_eq!(report.exit_code(), 0, "{}", report.render());
        assert!(shipper.exporter.stats.dropped > 10);
    }

    /// Drops that are not contiguous are declared as separate ranges, so a
    /// `loss` event never covers seqs that were delivered.
    #[test]
    fn separate_drops_are_separate_ranges() {
        let mut e = emitter(4);
        for i in 0..4 {
            let id = e.next_id();
            e.emit(trail_event(id, 1_000 + i, "checkpoint", json!({})), 1_000 + i);
        }
        let b = e.exporter.next_batch(1_010).map(|b| b.events); // seq 0, 1 in flight
        assert_eq!(b, Some(2));
        for i in 4..8 {
            let id = e.next_id();
            e.emit(trail_event(id, 1_000 + i, "checkpoint", json!({})), 1_000 + i);
        }
        e.batch_done(false, 1_020); // 0, 1 back at the head: 0..=7 minus the newest 4 → drops
        let lines = drain(&mut e, 100_000);
        let losses: Vec<(u64, u64, u64)> = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == "loss")
            .map(|v| {
                let t = &v["trail"];
                (
                    t["first_seq"].as_u64().unwrap_or(0),
                    t["last_seq"].as_u64().unwrap_or(0),
                    t["lost_events"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert!(!losses.is_empty());
        for (a, b, n) in &losses {
            assert_eq!(b - a + 1, *n, "a loss event declares exactly the seqs it lost: {losses:?}");
        }
    }

    /// A retiring emitter's buffer adopted by a live one of the same VM,
    /// whose small buffer then overflows: the retired chain still verifies
    /// closed (its end record delivered), its dropped events declared by
    /// the adopting chain.
    #[test]
    fn a_retired_chain_handed_over_verifies_closed() {
        let mut old = emitter(1_000);
        for i in 0..20 {
            let id = old.next_id();
            old.emit(trail_event(id, 1_000 + i, "checkpoint", json!({})), 1_000 + i);
        }
        old.end(1_100);
        assert!(old.ended());
        let cfg = Config::parse(br#"{"audit": {"exporter": {"max_batch_events": 2, "max_buffered_events": 8}}}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut new = Emitter::start("node/2".into(), [9; 32], &cfg.audit.exporter, 60_000, 1_200, "reload");
        new.adopt(&mut old);
        assert_eq!(old.exporter.depth(), 0);
        let lines = drain(&mut new, 2_000);
        let values: Vec<Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert!(values.iter().any(|v| v["kind"] == "loss" && v["trail"]["emitter"] == "node/1"));
        let mut report = proxy_audit_verify::verify_with(values.clone(), &[]);
        report.set_live(proxy_audit_verify::Live::No);
        // The adopting chain is live (no end yet); the retired one is closed.
        let open: Vec<&str> = report.open.iter().map(|o| o.emitter.as_str()).collect();
        assert_eq!(open, vec!["node/2"], "{}", report.render());
        assert!(report.render().contains("declared by node/2"), "{}", report.render());
        assert!(report.breaks.is_empty(), "{}", report.render());
    }

    /// Envoy stops with events buffered: the records `retire` seals (the
    /// `loss` of every buffered range, then `end`) are all a stop can put on
    /// record (Envoy's log); with what was delivered before, the chain
    /// verifies closed, every missing seq declared.
    #[test]
    fn retire_declares_what_it_could_not_deliver() {
        let mut e = emitter(1_000);
        let mut delivered = drain(&mut e, 1_000); // chain_start
        for i in 0..12 {
            let id = e.next_id();
            e.emit(trail_event(id, 1_001 + i, "access", json!({})), 1_001 + i);
        }
        let _in_flight = e.tick(1_100); // never answered
        e.retire(1_200);
        let records: Vec<String> =
            e.exporter.buffered_lines().filter(|l| !l.contains("\"kind\":\"access\"")).map(str::to_string).collect();
        assert_eq!(records.len(), 2, "one loss (1..12), then end: {records:?}");
        delivered.extend(records);
        let values: Vec<Value> = delivered.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let mut report = proxy_audit_verify::verify_with(values, &[]);
        report.set_live(proxy_audit_verify::Live::No);
        assert_eq!(report.exit_code(), 0, "{}", report.render());
        assert!(report.render().contains("LOSS emitter node/1 seq 1..12 declared (12 events)"), "{}", report.render());
    }

    fn signed(every: u64, witness: bool) -> Emitter {
        let mut text = format!(
            r#"{{"audit": {{"checkpoint_every_events": {every}, "signing": {{"key_env": "K", "key_id": "k1"}}"#
        );
        if witness {
            text.push_str(r#", "witness": {"cluster": "w"}"#);
        }
        text.push_str("}}");
        let cfg = Config::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        let key = crate::signing::key_files("k1", [5; 32]).0;
        let signer = crate::runtime::load_signer(&cfg, &|_| Some(key.clone())).unwrap_or_else(|e| panic!("{e}"));
        let trail = crate::runtime::trail_options(&cfg, signer);
        Emitter::start_with("node/1".into(), [7; 32], &cfg.audit.exporter, trail, 1_000, "start")
    }

    /// Each signed record's signature, checked with the public key.
    fn signature_ok(v: &Value) -> bool {
        let public = crate::signing::PublicKey::parse(&crate::signing::key_files("k1", [5; 32]).1)
            .unwrap_or_else(|e| panic!("{e}"));
        let t = &v["trail"];
        let head = t["head_seq"].as_u64().map(|s| (s, t["head_hash"].as_str().unwrap_or_default()));
        let msg = crate::signing::message(
            t["signature"]["key_id"].as_str().unwrap_or_default(),
            v["chain"]["emitter"].as_str().unwrap_or_default(),
            v["chain"]["seq"].as_u64().unwrap_or(u64::MAX),
            v["time"].as_str().unwrap_or_default(),
            head,
        );
        public.verifies(&msg, t["signature"]["sig"].as_str().unwrap_or_default())
    }

    /// Under load a checkpoint follows every `checkpoint_every_events`
    /// records; while the chain moves slowly, one per interval; the first
    /// record, every checkpoint and the `end` record are signed.
    #[test]
    fn signed_checkpoints_under_load_and_over_time() {
        let mut e = signed(10, false);
        for i in 0..25 {
            let id = e.next_id();
            e.emit(trail_event(id, 1_001 + i, "access", json!({})), 1_001 + i);
        }
        // A slow trickle: one event every 20 s, never idle for the 60 s interval.
        for k in 1..=4u64 {
            let id = e.next_id();
            e.emit(trail_event(id, 1_000 + k * 20_000, "access", json!({})), 1_000 + k * 20_000);
            e.tick_records(1_000 + k * 20_000);
        }
        e.end(90_000);
        let lines = drain(&mut e, 90_000);
        let values: Vec<Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let kinds: Vec<(u64, &str, &str)> = values
            .iter()
            .filter(|v| v["kind"] != "access")
            .map(|v| {
                (
                    v["chain"]["seq"].as_u64().unwrap_or(0),
                    v["kind"].as_str().unwrap_or(""),
                    v["trail"]["reason"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (0, "chain_start", "start"),
                (11, "checkpoint", "events"),
                (22, "checkpoint", "events"),
                (32, "checkpoint", "interval"),
                (33, "checkpoint", "end")
            ],
            "{lines:#?}"
        );
        for v in values.iter().filter(|v| v["kind"] != "access") {
            assert_eq!(v["trail"]["signature"]["alg"], "ed25519");
            assert!(signature_ok(v), "{v}");
        }
        assert!(values.iter().filter(|v| v["kind"] == "access").all(|v| v["trail"]["signature"].is_null()));
        assert_eq!(check_lines(&lines), Ok(34));
        // A record altered after signing no longer verifies.
        let mut forged = values[11].clone();
        assert!(signature_ok(&forged));
        forged["time"] = json!("2026-01-01T00:00:00.000Z");
        assert!(!signature_ok(&forged));
    }

    /// With a witness, each signed record is queued for it too.
    #[test]
    fn the_witness_gets_every_signed_record() {
        let mut e = signed(3, true);
        for i in 0..7 {
            let id = e.next_id();
            e.emit(trail_event(id, 1_001 + i, "access", json!({})), 1_001 + i);
        }
        let mut witnessed = Vec::new();
        while let Some(b) = e.witness_batch(2_000) {
            witnessed.extend(String::from_utf8_lossy(&b.body).lines().map(str::to_string));
            e.witness_done(true, 2_000);
        }
        let lines = drain(&mut e, 2_000);
        let signed: Vec<&String> = lines.iter().filter(|l| l.contains("\"signature\"")).collect();
        assert_eq!(witnessed.iter().collect::<Vec<_>>(), signed);
        assert_eq!(signed.len(), 3, "chain_start, checkpoints after 3 and 6 more records");
        // Without a witness nothing is queued for one.
        assert!(self::signed(3, false).witness_batch(2_000).is_none());
    }

    /// The witness queue overflows (the witness is down): the checkpoints it
    /// drops stay in the chain, and a `loss` event (reason
    /// `witness_buffer_full`) in the chain says which the witness lacks.
    #[test]
    fn witness_overflow_is_declared_by_a_loss_event() {
        let mut e = signed(2, true);
        if let Some(w) = e.witness.as_mut() {
            let cfg = Config::parse(
                br#"{"audit": {"signing": {"key_env": "K", "key_id": "k1"}, "witness": {"cluster": "w"}}}"#,
            );
            let mut cfg = cfg.unwrap_or_else(|e| panic!("{e:?}")).audit.witness.unwrap_or_else(|| panic!("witness"));
            (cfg.max_batch_events, cfg.max_buffered_events) = (1, 2);
            *w = Exporter::new(&cfg);
        }
        // The witness is unreachable: nothing leaves its queue of two. Signed
        // records at 3, 6, 9 and 12 (a checkpoint every 2 events): 3 and 6 dropped.
        for i in 0..8 {
            let id = e.next_id();
            e.emit(trail_event(id, 1_001 + i, "access", json!({})), 1_001 + i);
        }
        e.tick_records(2_000);
        e.end(2_000);
        let lines = drain(&mut e, 2_000);
        let values: Vec<Value> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let losses: Vec<&Value> = values.iter().filter(|v| v["kind"] == "loss").collect();
        assert_eq!(losses.len(), 1, "{lines:#?}");
        let t = &losses[0]["trail"];
        assert_eq!(
            (&t["reason"], &t["lost_events"], &t["first_seq"], &t["last_seq"]),
            (&json!(WITNESS_BUFFER_FULL), &json!(2), &json!(3), &json!(6)),
            "{lines:#?}"
        );
        assert_eq!(t.as_object().map(|o| o.len()), Some(4), "only the schema's loss fields: {t}");
        // The dropped records are in the chain itself.
        for seq in [3, 6] {
            assert_eq!(values[seq]["kind"], "checkpoint", "{lines:#?}");
        }
        assert_eq!(check_lines(&lines), Ok(lines.len()));
        let report = proxy_audit_verify::verify_with(values, &[]);
        assert_eq!(report.exit_code(), 0, "{}", report.render());
        assert!(
            report.render().contains("WITNESS emitter node/1: 2 signed records in seq 3..6 not sent to the witness"),
            "{}",
            report.render()
        );
        assert!(report.emitters[0].declared_lost.is_empty(), "no gap in the chain: {:?}", report.emitters[0]);
    }

    #[test]
    fn overflow_is_declared_by_a_loss_event() {
        let mut e = emitter(4);
        for i in 0..10 {
            let id = e.next_id();
            e.emit(trail_event(id, 1_000 + i, "checkpoint", json!({})), 1_000 + i);
        }
        let lines = drain(&mut e, 2_000);
        let losses: Vec<&String> = lines.iter().filter(|l| l.contains("\"kind\":\"loss\"")).collect();
        assert!(!losses.is_empty());
        let declared: u64 = losses
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).ok().and_then(|v| v["trail"]["lost_events"].as_u64()).unwrap_or(0)
            })
            .sum();
        // Every seq is either delivered or declared lost.
        assert_eq!(lines.len() as u64 + declared, e.chain.next_seq());
    }
}
