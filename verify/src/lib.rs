//! `proxy-audit verify`: checks the per-emitter hash chains of audit events.
//!
//! Input is NDJSON (one event per line) or OTLP-JSON (`ExportLogsServiceRequest`
//! objects, one per line as the OpenTelemetry Collector `file` exporter writes
//! them, or one whole pretty-printed file), detected per line. Events may come
//! out of order (within a window of [`WINDOW`] per emitter) and more than once
//! (at-least-once delivery): identical copies are counted and ignored. Each
//! emitter's chain is checked as it streams in, so memory grows with the
//! number of emitters, not of events (see [`Options::history`] for several
//! sources carrying the same events).
//!
//! Every break names the emitter and the seq it concerns:
//! - `modified`: the content no longer hashes to `chain.hash`, or a checkpoint
//!   (external `SEQ:HASH`, or a `checkpoint` event's `trail.head_*`) attests a
//!   different hash for that seq;
//! - `missing`: a seq gap that no `loss` event declares (declared losses are
//!   reported as `LOSS` lines, not breaks). A `loss` event normally declares
//!   a gap in its own chain; one with `trail.emitter` declares it in that
//!   emitter's chain (the singleton shipping service carries the events of
//!   every worker and declares what it had to drop in its own chain). Anyone
//!   can write a chain, so for a chain anchored by a checkpoint such a
//!   declaration counts only when the declaring chain is anchored too, at or
//!   past its `loss` event;
//! - `reordered`: `chain.prev` is the hash of another seq of the same emitter
//!   than N-1 (events moved around and renumbered);
//! - `bad prev`: `chain.prev` is not the hash of seq N-1, or seq 0 does not
//!   start with 64 zeros, or seq 0 is not a `chain_start` event;
//! - `duplicate`: the same `id` with different content, or two different
//!   events that both hash correctly at the same seq (a fork);
//! - `truncated`: a checkpoint names a seq beyond the emitter's last event;
//! - `malformed`: an event whose `chain` fields are missing or of the wrong
//!   type (seq rendered as `?` when it cannot be read).
//!
//! A chain is *closed* when its last event is its emitter's `end` checkpoint
//! (an orderly retirement) or an external checkpoint anchors its last event.
//! Any other chain is *open*: events after its last seq may be missing (a
//! stopped process, a deleted tail), so it fails unless the caller says the
//! chain is still being written ([`Live`]).
//!
//! Besides NDJSON and OTLP, a line may be an access-log record (Envoy's JSON
//! access log) whose field holds the sealed event as a string (the filter's
//! `proxy_audit.event` filter state): the second delivery path. Several
//! sources merge; copies of one event are ignored.
//!
//! Nothing here panics on input.

#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used))]

#[doc(hidden)]
pub mod fuzzing;

use proxy_audit_core::chain::compute_hash;
use proxy_audit_core::jcs;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// `Break::seq` of a malformed event whose seq cannot be read (rendered `?`
/// in `malformed` breaks).
pub const UNKNOWN_SEQ: u64 = u64::MAX;

/// What is wrong at a seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Problem {
    Modified,
    Missing,
    Reordered,
    BadPrev,
    /// A signature that does not hold, a record signed by a key not given,
    /// or (keys given) a chain start or checkpoint without a signature.
    Signature,
    /// A signed checkpoint anchors a head the chain no longer has: the
    /// history before it was rewritten (and re-hashed).
    Rewritten,
    /// Same id with different content, or a fork (two valid events, one seq).
    /// Identical copies of one event are not a problem (counted as dedup).
    Duplicate,
    /// A checkpoint names a seq past the end of the chain.
    Truncated,
    /// `chain` fields missing or of the wrong type.
    Malformed,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Modified => "modified",
            Problem::Missing => "missing",
            Problem::Reordered => "reordered",
            Problem::BadPrev => "bad prev",
            Problem::Signature => "signature",
            Problem::Rewritten => "rewritten",
            Problem::Duplicate => "duplicate",
            Problem::Truncated => "truncated",
            Problem::Malformed => "malformed",
        }
    }
}

impl Problem {
    /// The problem named by [`Problem::as_str`].
    pub fn parse(s: &str) -> Option<Problem> {
        [
            Problem::Modified,
            Problem::Missing,
            Problem::Reordered,
            Problem::BadPrev,
            Problem::Signature,
            Problem::Rewritten,
            Problem::Duplicate,
            Problem::Truncated,
            Problem::Malformed,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// `?` when the event names no readable emitter.
    pub emitter: String,
    /// [`UNKNOWN_SEQ`] when the event names no readable seq.
    pub seq: u64,
    pub problem: Problem,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitterReport {
    pub emitter: String,
    /// Distinct events (duplicates deliveries not counted).
    pub events: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// `chain.hash` of the event at `last_seq`.
    pub head: String,
    /// `trail.first_seq..=trail.last_seq` of the (valid) `loss` events that
    /// declare gaps in this chain: its own, and other emitters' naming it.
    pub declared_lost: Vec<(u64, u64)>,
    /// The part of `declared_lost` that other emitters declared: range and
    /// the declaring emitter.
    pub declared_by: Vec<(u64, u64, String)>,
    /// Identical extra copies ignored (at-least-once delivery).
    pub duplicates: u64,
    /// The last event is this chain's `end` checkpoint (orderly retirement).
    pub ended: bool,
    /// `time` of the last event, in ms since the epoch.
    pub last_time_ms: Option<u64>,
    /// Events present although a `loss` event declared them lost (stored by
    /// the log service but never acknowledged): counted once, as present.
    pub present_though_declared: u64,
    /// The last record whose signature holds (keys given), and its key id.
    pub last_signed: Option<(u64, String)>,
    /// Events after `last_signed` (all of them when none is signed): not
    /// anchored by a signature yet.
    pub unanchored: u64,
    /// Signed records the emitter's witness queue dropped (`loss` events of
    /// reason `witness_buffer_full`): first seq, last seq, how many. They are
    /// in the chain; the witness's copy lacks them.
    pub witness_lost: Vec<(u64, u64, u64)>,
}

/// Which open chains are still being written (and so not failures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Live {
    /// Every chain must be closed.
    #[default]
    No,
    /// Every open chain is live (`--live`).
    All,
    /// Chains whose last event is at most this many ms older than the newest
    /// event of the input are live (`--live-within SECONDS`).
    Within(u64),
}

/// A chain with no end record and no anchor past its last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub emitter: String,
    /// Its last event (events after it may be missing); `None` when none of
    /// its events is in the input (only declared lost by another emitter).
    pub last_seq: Option<u64>,
    /// Whether [`Live`] counts it as still being written.
    pub live: bool,
}

/// How to verify: external anchors, keys, shard, threads, live chains.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Expected heads kept elsewhere (`--checkpoint`, the witness's copy).
    pub checkpoints: Vec<Checkpoint>,
    /// Public keys (`--key`): when any is given, every chain must start with
    /// a signed record, every checkpoint must be signed by a known key, and
    /// every signature must hold.
    pub keys: Vec<PublicKey>,
    /// `(i, n)`: only the emitters of shard i of n ([`shard_of`]).
    pub shard: Option<(u64, u64)>,
    /// Threads (0 or 1: one; more: one reads the next block while the
    /// others parse this one).
    pub threads: usize,
    pub live: Live,
    /// Keep 8 bytes per event (the first 64 bits of its hash) to tell a copy
    /// that comes far behind its original from a fork: needed when several
    /// sources carry the same events (the log service's and Envoy's access
    /// log); without it memory is bounded by the number of emitters and a
    /// copy more than [`RING`] events late in its chain is unreadable input.
    pub history: bool,
}

pub use lane::{PENDING_MAX, RING, WINDOW};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// `(i, n)` when only shard i of n was verified.
    pub shard: Option<(u64, u64)>,
    /// Whether signatures were checked (keys given).
    pub signatures_checked: bool,
    pub emitters: Vec<EmitterReport>,
    pub breaks: Vec<Break>,
    /// Chains that are not closed (see [`Report::set_live`]).
    pub open: Vec<Open>,
    /// `name:line N: why` for input that could not be read.
    pub unreadable: Vec<String>,
}

/// An expected head: `[EMITTER@]SEQ:HASH`. Without an emitter, the emitter is
/// the one whose chain holds that hash at SEQ (or the only one in the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub emitter: Option<String>,
    pub seq: u64,
    pub hash: String,
}

impl Checkpoint {
    /// Parses `SEQ:HASH` or `EMITTER@SEQ:HASH` (the `--checkpoint` value).
    pub fn parse(s: &str) -> Result<Checkpoint, String> {
        let s = s.trim();
        let (emitter, rest) = match s.rsplit_once('@') {
            Some((e, r)) if !e.is_empty() => (Some(e.to_string()), r),
            Some(_) => return Err(format!("checkpoint {s:?}: empty emitter before '@'")),
            None => (None, s),
        };
        let (seq, hash) =
            rest.split_once(':').ok_or_else(|| format!("checkpoint {s:?}: expected [EMITTER@]SEQ:HASH"))?;
        let seq: u64 =
            seq.trim().parse().map_err(|_| format!("checkpoint {s:?}: seq {seq:?} is not a non-negative integer"))?;
        let hash = hash.trim().to_ascii_lowercase();
        if !is_hash(&hash) {
            return Err(format!("checkpoint {s:?}: hash must be 64 hex digits (SHA-256)"));
        }
        Ok(Checkpoint { emitter, seq, hash })
    }
}

mod canonical;
mod check;
mod input;
mod lane;
mod render;
pub mod sources;
#[doc(hidden)]
pub mod synthetic;
use check::is_hash;
pub use check::{shard_of, verify, verify_inputs, verify_sources, verify_with, Progress, Session};
pub use input::{parse_events, parse_events_lossy, RECORD_MARKER};
pub use proxy_audit_core::signing::PublicKey;

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // fixtures; a wrong index is a test bug
mod tests {
    use super::*;
    use proxy_audit_core::chain::Chain;
    use serde_json::{json, Map};

    /// Builds chains with `Chain::seal`, keeping the shipped NDJSON lines.
    struct Emitter {
        chain: Chain,
        no: u64,
        lines: Vec<String>,
        hashes: Vec<String>,
    }

    impl Emitter {
        fn new(name: &str, no: u64) -> Self {
            let mut e = Emitter { chain: Chain::new(name), no, lines: Vec::new(), hashes: Vec::new() };
            e.push("chain_start", json!({"reason": "start"}));
            e
        }

        fn event(&self, kind: &str) -> Map<String, Value> {
            let seq = self.chain.next_seq();
            let mut m = Map::new();
            m.insert("schema".into(), json!("proxy-audit/1"));
            m.insert("id".into(), json!(format!("{:016x}{:016x}", self.no, seq)));
            m.insert("time".into(), json!(proxy_audit_core::timefmt::rfc3339_millis(1_795_000_000_000 + seq * 10)));
            m.insert("kind".into(), json!(kind));
            m
        }

        /// Seals one event; returns its line (also kept unless `drop`).
        fn seal(&mut self, mut m: Map<String, Value>, keep: bool) -> String {
            let sealed = self.chain.seal(&mut m);
            self.hashes.push(sealed.hash.clone());
            if keep {
                self.lines.push(sealed.line.clone());
            }
            sealed.line
        }

        fn push(&mut self, kind: &str, trail: Value) {
            let mut m = self.event(kind);
            if kind == "access" {
                m.insert("outcome".into(), json!({"status_code": 200}));
                m.insert("action".into(), json!({"method": "GET", "path": "/patients/{id}"}));
            } else {
                m.insert("trail".into(), trail);
            }
            self.seal(m, true);
        }

        fn access(&mut self, n: usize) {
            for _ in 0..n {
                self.push("access", Value::Null);
            }
        }
    }

    fn chain(n: usize) -> Emitter {
        let mut e = Emitter::new("node-1/abcd/0", 1);
        e.access(n.saturating_sub(1));
        e
    }

    fn values(lines: &[String]) -> Vec<Value> {
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or(Value::Null)).collect()
    }

    fn run(lines: &[String]) -> Report {
        let text = lines.join("\n");
        let events = parse_events("t.ndjson", text.as_bytes());
        assert!(events.is_ok(), "{events:?}");
        verify(events.unwrap_or_default(), &[])
    }

    fn problems(r: &Report) -> Vec<(u64, Problem)> {
        r.breaks.iter().map(|b| (b.seq, b.problem)).collect()
    }

    /// Re-serializes an edited event, optionally resealing its hash.
    fn edit(line: &str, reseal: bool, f: impl FnOnce(&mut Value)) -> String {
        let mut v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        f(&mut v);
        if reseal {
            let h = compute_hash(&v);
            v["chain"]["hash"] = json!(h);
        }
        v.to_string()
    }

    impl Emitter {
        /// The `end` checkpoint of an orderly retirement.
        fn end(&mut self) {
            let seq = self.chain.next_seq() - 1;
            let head = self.hashes[seq as usize].clone();
            self.push("checkpoint", json!({"head_seq": seq, "head_hash": head, "reason": "end"}));
        }
    }

    fn strict(lines: &[String], live: Live) -> Report {
        let text = lines.join("\n");
        let mut r = verify_inputs(&[("t.ndjson", text.as_bytes())], &[]);
        r.set_live(live);
        r
    }

    /// A chain without its end record is open: its tail may be gone, so it
    /// fails unless the caller says it is still being written.
    #[test]
    fn a_cut_chain_is_open_unless_live() {
        let mut a = chain(5);
        let r = strict(&a.lines, Live::No);
        assert_eq!((r.exit_code(), r.breaks.len()), (1, 0), "{}", r.render());
        assert_eq!(r.open, vec![Open { emitter: "node-1/abcd/0".into(), last_seq: Some(4), live: false }]);
        assert!(r.render().contains("OPEN emitter node-1/abcd/0: no end record; events after seq 4 may be missing"));
        assert_eq!(strict(&a.lines, Live::All).exit_code(), 0);
        a.end();
        let r = strict(&a.lines, Live::No);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert!(r.emitters[0].ended);
        // An event after the end record opens the chain again.
        a.access(1);
        assert_eq!(strict(&a.lines, Live::No).exit_code(), 1);
        // An end record that attests another seq does not close it.
        let mut b = chain(3);
        let head = b.hashes[1].clone();
        b.push("checkpoint", json!({"head_seq": 1, "head_hash": head, "reason": "end"}));
        assert_eq!(strict(&b.lines, Live::No).cut().count(), 1);
    }

    /// `--live-within`: only chains whose last event is recent, relative to
    /// the newest event of the input, are still being written.
    #[test]
    fn live_within_a_time_bound() {
        let old = chain(2); // last event at +10 ms
        let mut new = Emitter::new("node-2/x/1", 2);
        for _ in 0..300 {
            new.access(1); // 10 ms apart: last at +3,000 ms
        }
        let lines: Vec<String> = old.lines.iter().chain(&new.lines).cloned().collect();
        let r = strict(&lines, Live::Within(1_000));
        let cut: Vec<&str> = r.cut().map(|o| o.emitter.as_str()).collect();
        assert_eq!(cut, vec!["node-1/abcd/0"], "{}", r.render());
        assert_eq!(strict(&lines, Live::Within(5_000)).exit_code(), 0);
    }

    /// The second path: Envoy's JSON access log carries each sealed event,
    /// Envoy's log the trail records of a retiring emitter; merged with what
    /// the log service got, copies ignored, the chain is whole.
    #[test]
    fn access_log_and_envoy_log_merge_with_the_log_service_trail() {
        let mut e = chain(6);
        e.end();
        let delivered: String = e.lines[..3].join("\n");
        let access: String = e.lines[1..6]
            .iter()
            .map(|l| json!({"status": 200, "audit_event": l}).to_string() + "\n")
            .chain([json!({"status": 404, "audit_event": "-"}).to_string(), json!({"event": null}).to_string()])
            .collect::<Vec<_>>()
            .join("\n");
        let envoy_log = format!(
            "[2026-12-01 23:01:11.759][6808][info][main] starting\n[2026-12-01 23:01:11.760][6808][warning][wasm] wasm log proxy_audit: {RECORD_MARKER}{}\n",
            e.lines[6]
        );
        let inputs = [
            ("sink.ndjson", delivered.as_bytes()),
            ("access.log", access.as_bytes()),
            ("envoy.log", envoy_log.as_bytes()),
        ];
        let r = verify_inputs(&inputs, &[]);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!((r.emitters[0].events, r.emitters[0].duplicates), (7, 2));
        // Without Envoy's log the end record is missing: open.
        let r = verify_inputs(&inputs[..2], &[]);
        assert_eq!(r.cut().count(), 1, "{}", r.render());
        // An access-log field that should hold an event and does not: unreadable.
        let bad = verify_inputs(&[("a.log", br#"{"audit_event": "{not json"}"#.as_slice())], &[]);
        assert_eq!(bad.exit_code(), 2);
    }

    /// Memory is per emitter: a copy far behind its original is placed by
    /// the history kept for several sources; in one source without it, it
    /// is reported as unreadable, not accepted unseen.
    #[test]
    fn late_copies_need_the_history() {
        let mut e = chain(RING + 50);
        e.end();
        let mut lines = e.lines.clone();
        lines.push(e.lines[3].clone()); // a copy RING+ events after its original
        let text = lines.join("\n");
        let one = |history: bool| {
            let opts = Options { history, ..Options::default() };
            let mut s = Session::new(&opts);
            s.add("t.ndjson", text.as_bytes());
            s.finish()
        };
        let r = one(false);
        assert_eq!(r.exit_code(), 2, "{}", r.render());
        assert!(r.unreadable[0].starts_with("emitter node-1/abcd/0: 1 events came after their seq had been checked"));
        let r = one(true);
        assert_eq!((r.exit_code(), r.emitters[0].duplicates), (0, 1), "{}", r.render());
        // A forged copy that late: a fork, found through the history.
        let forged = edit(&e.lines[3], true, |v| v["outcome"]["status_code"] = json!(403));
        let lines: Vec<String> = e.lines.iter().cloned().chain([forged]).collect();
        let r = verify_sources(&[("a", lines.join("\n").as_bytes()), ("b", b"")], &Options::default());
        assert_eq!(problems(&r), vec![(3, Problem::Duplicate)], "{}", r.render());
        // Within the ring, no history needed: a copy and an edited copy.
        let mut lines = e.lines.clone();
        lines.insert(RING / 2, e.lines[2].clone());
        lines.insert(RING / 2, edit(&e.lines[2], false, |v| v["outcome"]["status_code"] = json!(500)));
        let r = strict(&lines, Live::No);
        assert_eq!(problems(&r), vec![(2, Problem::Duplicate), (2, Problem::Modified)], "{}", r.render());
        assert_eq!(r.emitters[0].duplicates, 1);
    }

    /// Several threads (a reading thread, chunks parsed in parallel) give the
    /// report of one, line numbers of unreadable lines included.
    #[test]
    fn threads_read_like_one() {
        let mut e = chain(9_000);
        e.end();
        let mut lines = e.lines.clone();
        lines.insert(8_000, "garbage".into());
        let text = lines.join("\n");
        assert!(text.len() > 2 * (1 << 20), "two chunks per block, several blocks: {}", text.len());
        let run = |threads: usize| {
            let opts = Options { threads, ..Options::default() };
            let mut s = Session::new(&opts);
            let mut reader = text.as_bytes();
            let n = s.add_reader("t", &mut reader, None);
            (n.ok(), s.finish())
        };
        let (n1, one) = run(1);
        let (n3, three) = run(3);
        assert_eq!((n1, n3), (Some(9_001), Some(9_001)));
        assert_eq!(one, three);
        assert_eq!(one.unreadable, vec!["t:line 8001: not JSON (expected value at line 1 column 1)".to_string()]);
        assert_eq!(one.emitters[0].events, 9_001);
    }

    /// Events further out of order than the window are not placed: the
    /// input is unreadable (exit 2), with the emitter named.
    #[test]
    fn disorder_beyond_the_window_is_unreadable() {
        let mut e = chain(WINDOW + 10);
        e.end();
        let mut lines = e.lines.clone();
        let first = lines.remove(1);
        lines.push(first);
        let r = strict(&lines, Live::No);
        assert_eq!(r.exit_code(), 2, "{}", r.render());
        assert!(r.unreadable[0].contains("more than 4096 events out of order"), "{:?}", r.unreadable);
        // Within the window, any order is fine.
        let mut lines = e.lines.clone();
        let first = lines.remove(1);
        lines.insert(WINDOW - 10, first);
        assert_eq!(strict(&lines, Live::No).exit_code(), 0);
    }

    /// Stored but never acknowledged: present and declared lost, counted once.
    #[test]
    fn present_though_declared_lost() {
        let mut e = chain(4);
        e.push("loss", json!({"lost_events": 2, "first_seq": 2, "last_seq": 3, "reason": "buffer_full"}));
        e.end();
        let r = strict(&e.lines, Live::No);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!(r.emitters[0].present_though_declared, 2);
        assert!(r.render().contains("PRESENT emitter node-1/abcd/0: 2 events declared lost"));
    }

    #[test]
    fn intact_chain_holds() {
        let e = chain(5);
        let r = run(&e.lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!(r.emitters.len(), 1);
        let em = &r.emitters[0];
        assert_eq!((em.events, em.first_seq, em.last_seq), (5, 0, 4));
        assert_eq!(em.head, e.hashes[4]);
        let out = r.render();
        assert!(out.starts_with(&format!("emitter node-1/abcd/0: 5 events, seq 0..4, head {}\n", e.hashes[4])));
        assert!(!out.contains("BREAK"));
    }

    #[test]
    fn modified_field_is_reported_at_its_seq() {
        let mut e = chain(5);
        e.lines[2] = edit(&e.lines[2], false, |v| v["outcome"]["status_code"] = json!(500));
        let r = run(&e.lines);
        assert_eq!(problems(&r), vec![(2, Problem::Modified)], "{}", r.render());
        assert_eq!(r.exit_code(), 1);
        assert!(r.render().contains("BREAK emitter node-1/abcd/0 seq 2: modified: "));
    }

    #[test]
    fn modified_and_rehashed_breaks_the_next_link() {
        let mut e = chain(5);
        e.lines[2] = edit(&e.lines[2], true, |v| v["outcome"]["status_code"] = json!(500));
        let r = run(&e.lines);
        assert_eq!(problems(&r), vec![(3, Problem::BadPrev)], "{}", r.render());
    }

    #[test]
    fn deleted_event_is_missing() {
        let mut e = chain(6);
        e.lines.remove(3);
        let r = run(&e.lines);
        assert_eq!(problems(&r), vec![(3, Problem::Missing)], "{}", r.render());
        assert!(r.render().contains("BREAK emitter node-1/abcd/0 seq 3: missing: seq 3 absent"));
        // Several in a row: one break naming the range.
        let mut e = chain(8);
        e.lines.drain(2..5);
        let r = run(&e.lines);
        assert_eq!(problems(&r), vec![(2, Problem::Missing)]);
        assert!(r.breaks[0].detail.contains("seq 2..4 absent (3 events)"));
        // The chain_start itself.
        let mut e = chain(3);
        e.lines.remove(0);
        assert_eq!(problems(&run(&e.lines)), vec![(0, Problem::Missing)]);
    }

    #[test]
    fn any_order_is_fine() {
        let mut e = chain(6);
        e.lines.swap(1, 4);
        assert_eq!(run(&e.lines).exit_code(), 0);
        e.lines.reverse();
        assert_eq!(run(&e.lines).exit_code(), 0);
        // Two emitters interleaved.
        let mut a = chain(4);
        let mut b = Emitter::new("node-2/ef01/1", 2);
        b.access(3);
        let mut lines = Vec::new();
        while !a.lines.is_empty() || !b.lines.is_empty() {
            lines.extend(a.lines.pop());
            lines.extend(b.lines.pop());
        }
        let r = run(&lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!(r.emitters.len(), 2);
        assert_eq!(r.emitters[1].events, 4);
    }

    #[test]
    fn swapped_seq_numbers_are_detected() {
        let mut e = chain(6);
        let (two, three) = (e.lines[2].clone(), e.lines[3].clone());
        e.lines[2] = edit(&three, false, |v| v["chain"]["seq"] = json!(2));
        e.lines[3] = edit(&two, false, |v| v["chain"]["seq"] = json!(3));
        let r = run(&e.lines);
        let p = problems(&r);
        assert!(p.contains(&(2, Problem::Modified)), "{}", r.render());
        assert!(p.contains(&(3, Problem::Modified)));
        assert!(p.contains(&(2, Problem::Reordered)));
        assert!(p.contains(&(4, Problem::Reordered)));
        assert_eq!(r.exit_code(), 1);
        assert!(r.render().contains("reordered: prev "));

        // Swapped and resealed: the links give it away.
        let mut e = chain(6);
        let (two, three) = (e.lines[2].clone(), e.lines[3].clone());
        e.lines[2] = edit(&three, true, |v| v["chain"]["seq"] = json!(2));
        e.lines[3] = edit(&two, true, |v| v["chain"]["seq"] = json!(3));
        let r = run(&e.lines);
        assert!(r.exit_code() == 1 && !problems(&r).is_empty(), "{}", r.render());
        assert!(problems(&r).iter().all(|(s, _)| (2..=4).contains(s)));
    }

    #[test]
    fn bad_prev_links() {
        let mut e = chain(5);
        e.lines[3] = edit(&e.lines[3], true, |v| v["chain"]["prev"] = json!("ab".repeat(32)));
        let r = run(&e.lines);
        assert!(problems(&r).contains(&(3, Problem::BadPrev)), "{}", r.render());
        assert!(r.render().contains("seq 3: bad prev: prev abababab"));

        // seq 0 must link to 64 zeros…
        let mut e = chain(3);
        e.lines[0] = edit(&e.lines[0], true, |v| v["chain"]["prev"] = json!("1".repeat(64)));
        e.lines[1] = edit(&e.lines[1], true, |v| v["chain"]["prev"] = v["chain"]["hash"].clone());
        let p = problems(&run(&e.lines));
        assert!(p.contains(&(0, Problem::BadPrev)), "{p:?}");

        // …and be a chain_start.
        let mut c = Chain::new("e");
        let mut lines = Vec::new();
        for kind in ["access", "access"] {
            let mut m = Map::new();
            m.insert("kind".into(), json!(kind));
            lines.push(c.seal(&mut m).line);
        }
        let r = run(&lines);
        assert_eq!(problems(&r), vec![(0, Problem::BadPrev)]);
        assert!(r.breaks[0].detail.contains("chain_start"));
    }

    #[test]
    fn declared_loss_is_not_a_break() {
        let mut e = chain(5);
        for _ in 0..2 {
            let m = e.event("access");
            e.seal(m, false); // sealed, then lost
        }
        e.push("loss", json!({"lost_events": 2, "first_seq": 5, "last_seq": 6}));
        e.access(2);
        let r = run(&e.lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!(r.emitters[0].declared_lost, vec![(5, 6)]);
        assert_eq!(r.emitters[0].events, 8);
        assert!(r.render().contains("LOSS emitter node-1/abcd/0 seq 5..6 declared (2 events)\n"));

        // A gap wider than declared: only the undeclared part is missing.
        let mut lines = e.lines.clone();
        lines.remove(4);
        let r = run(&lines);
        assert_eq!(problems(&r), vec![(4, Problem::Missing)], "{}", r.render());
        // A tampered loss event declares nothing.
        let mut lines = e.lines.clone();
        lines[5] = edit(&lines[5], false, |v| v["trail"]["last_seq"] = json!(7));
        let p = problems(&run(&lines));
        assert!(p.contains(&(5, Problem::Missing)) && p.contains(&(7, Problem::Modified)));
    }

    /// The shipping service declares, in its own chain, a gap in a worker's
    /// chain (`trail.emitter`). Accepted; but once the worker's chain is
    /// anchored by a checkpoint, only from a declaring chain that is
    /// anchored too (a made-up chain could declare any gap).
    #[test]
    fn loss_declared_by_another_emitter() {
        let mut w = Emitter::new("node-1/proxy_audit/w", 1);
        w.access(2);
        for _ in 0..2 {
            let m = w.event("access");
            w.seal(m, false); // seq 3, 4 dropped by the shipper
        }
        w.access(3);
        let mut shipper = Emitter::new("node-1/proxy_audit_shipper/s", 2);
        shipper
            .push("loss", json!({"emitter": "node-1/proxy_audit/w", "lost_events": 2, "first_seq": 3, "last_seq": 4}));
        shipper.access(1);
        let mut forger = Emitter::new("elsewhere/x", 3);
        forger
            .push("loss", json!({"emitter": "node-1/proxy_audit/w", "lost_events": 2, "first_seq": 3, "last_seq": 4}));
        let both: Vec<String> = w.lines.iter().chain(&shipper.lines).cloned().collect();
        let r = run(&both);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert!(r
            .render()
            .contains("LOSS emitter node-1/proxy_audit/w seq 3..4 declared by node-1/proxy_audit_shipper/s"));
        // Without the declaration the gap is missing; the shipper's loss is no gap of its own.
        let r = run(&w.lines);
        assert_eq!(problems(&r), vec![(3, Problem::Missing)], "{}", r.render());

        let cp = |name: &str, e: &Emitter, seq: usize| Checkpoint {
            emitter: Some(name.into()),
            seq: seq as u64,
            hash: e.hashes[seq].clone(),
        };
        let w_head = cp("node-1/proxy_audit/w", &w, 7);
        let evs = || values(&w.lines.iter().chain(&shipper.lines).chain(&forger.lines).cloned().collect::<Vec<_>>());
        // The worker anchored, the declaring chains not: the gap is missing again, and says why.
        let r = verify_with(evs(), std::slice::from_ref(&w_head));
        assert_eq!(problems(&r), vec![(3, Problem::Missing)], "{}", r.render());
        assert!(r.breaks[0].detail.contains("which no checkpoint attests"), "{}", r.render());
        // The shipper anchored past its loss event: accepted (the forger still is not needed).
        let mut r = verify_with(evs(), &[w_head.clone(), cp("node-1/proxy_audit_shipper/s", &shipper, 2)]);
        // Both anchored at their last event: closed; the forger's chain is open.
        assert_eq!(r.open.iter().map(|o| o.emitter.as_str()).collect::<Vec<_>>(), vec!["elsewhere/x"]);
        r.set_live(Live::All);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        // Anchored only before its loss event: not accepted.
        let r = verify_with(evs(), &[w_head, cp("node-1/proxy_audit_shipper/s", &shipper, 0)]);
        assert_eq!(problems(&r), vec![(3, Problem::Missing)], "{}", r.render());
    }

    /// Deleting the tail (or every event) of an anchored chain is caught even
    /// when a made-up chain, or a made-up loss event of its own, declares it.
    #[test]
    fn a_deleted_tail_of_an_anchored_chain_is_not_excused_by_declarations() {
        let mut w = Emitter::new("w", 1);
        w.access(9);
        let head = Checkpoint { emitter: Some("w".into()), seq: 9, hash: w.hashes[9].clone() };
        let mut forger = Emitter::new("elsewhere/x", 3);
        forger.push("loss", json!({"emitter": "w", "lost_events": 5, "first_seq": 5, "last_seq": 9}));
        let cut: Vec<String> = w.lines[..5].iter().chain(&forger.lines).cloned().collect();
        let r = verify_with(values(&cut), std::slice::from_ref(&head));
        assert!(problems(&r).contains(&(5, Problem::Truncated)), "{}", r.render());
        let none: Vec<String> = forger.lines.clone();
        let r = verify_with(values(&none), std::slice::from_ref(&head));
        assert_eq!(r.exit_code(), 1, "{}", r.render());
        // A fake loss event appended to the cut chain itself (seq 5 declaring 6..9).
        let mut own = Emitter::new("w", 1);
        own.access(4);
        own.push("loss", json!({"lost_events": 4, "first_seq": 6, "last_seq": 9}));
        let r = verify_with(values(&own.lines), std::slice::from_ref(&head));
        assert_eq!(r.exit_code(), 1, "{}", r.render());
    }

    /// A whole worker chain lost in the shipper still gets its emitter line.
    #[test]
    fn a_chain_lost_entirely_is_reported_as_declared() {
        let mut shipper = Emitter::new("s", 2);
        shipper.push("loss", json!({"emitter": "w", "lost_events": 5, "first_seq": 0, "last_seq": 4}));
        let r = run(&shipper.lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert!(r.render().contains("emitter w: 0 events"), "{}", r.render());
        assert!(r.render().contains("LOSS emitter w seq 0..4 declared by s (5 events)"), "{}", r.render());
    }

    #[test]
    fn checkpoints() {
        let mut e = chain(10);
        let h = e.hashes.clone();
        e.lines.truncate(7); // tail 7..9 cut
        let events = values(&e.lines);
        let r = verify(events.clone(), &[(9, h[9].clone())]);
        assert_eq!(problems(&r), vec![(7, Problem::Truncated)], "{}", r.render());
        assert!(r.render().contains("BREAK emitter node-1/abcd/0 seq 7: truncated: "));
        assert!(r.breaks[0].detail.contains("chain ends at seq 6"));
        // A checkpoint the chain holds.
        assert_eq!(verify(events.clone(), &[(6, h[6].clone())]).exit_code(), 0);
        assert_eq!(verify(events.clone(), &[(2, h[2].to_uppercase())]).exit_code(), 0);
        // A checkpoint the chain contradicts.
        let r = verify(events.clone(), &[(4, h[5].clone())]);
        assert_eq!(problems(&r), vec![(4, Problem::Modified)]);

        // Several emitters: found by hash, or named.
        let mut b = Emitter::new("node-2/ef01/1", 2);
        b.access(2);
        let mut all = events.clone();
        all.extend(values(&b.lines));
        assert_eq!(verify(all.clone(), &[(2, b.hashes[2].clone())]).exit_code(), 0);
        let named = Checkpoint::parse(&format!("node-1/abcd/0@9:{}", h[9]));
        assert!(named.is_ok());
        let r = verify_with(all.clone(), &[named.unwrap_or_else(|_| unreachable!())]);
        assert_eq!(problems(&r), vec![(7, Problem::Truncated)]);
        assert_eq!(r.breaks[0].emitter, "node-1/abcd/0");
        // Unnamed and matching nothing: still a break.
        let r = verify(all, &[(1, "0".repeat(64))]);
        assert_eq!(r.exit_code(), 1);

        assert!(Checkpoint::parse("12:zz").is_err());
        assert!(Checkpoint::parse("x:00").is_err());
        assert_eq!(Checkpoint::parse(&format!("7:{}", h[7])).map(|c| (c.emitter, c.seq)), Ok((None, 7)));

        // The emitter's own checkpoint events attest earlier heads.
        let mut e = chain(3);
        let head = json!({"head_seq": 2, "head_hash": e.hashes[2]});
        e.push("checkpoint", head);
        assert_eq!(run(&e.lines).exit_code(), 0);
        e.lines[2] = edit(&e.lines[2], true, |v| v["outcome"]["status_code"] = json!(1));
        let p = problems(&run(&e.lines));
        assert!(p.contains(&(2, Problem::Modified)), "{p:?}");
    }

    fn otlp(lines: &[String]) -> Value {
        let records: Vec<Value> = lines
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
                json!({
                    "timeUnixNano": "1795000000000000000",
                    "eventName": format!("proxy_audit.{}", v["kind"].as_str().unwrap_or("")),
                    "body": {"stringValue": l},
                    "attributes": [{"key": "user.id", "value": {"stringValue": "u1"}}]
                })
            })
            .collect();
        json!({"resourceLogs": [{
            "resource": {"attributes": []},
            "scopeLogs": [{"scope": {"name": "proxy-audit"}, "logRecords": records}]
        }]})
    }

    #[test]
    fn otlp_json_input() {
        let e = chain(6);
        // Collector file exporter: one request per line, mixed with NDJSON.
        let text = format!("{}\n{}\n{}\n", otlp(&e.lines[..3]), otlp(&e.lines[3..5]), e.lines[5]);
        let events = parse_events("otel.json", text.as_bytes());
        assert_eq!(events.as_ref().map(Vec::len), Ok(6));
        assert_eq!(verify(events.unwrap_or_default(), &[]).exit_code(), 0);
        // One pretty-printed request.
        let pretty = serde_json::to_string_pretty(&otlp(&e.lines)).unwrap_or_default();
        let events = parse_events("otel.json", pretty.as_bytes());
        assert_eq!(events.as_ref().map(Vec::len), Ok(6));
        // Tampering inside a body is found.
        let mut lines = e.lines.clone();
        lines[4] = edit(&lines[4], false, |v| v["action"]["method"] = json!("DELETE"));
        let events = parse_events("otel.json", otlp(&lines).to_string().as_bytes());
        let r = verify(events.unwrap_or_default(), &[]);
        assert_eq!(problems(&r), vec![(4, Problem::Modified)]);
        // Foreign log records are skipped; ours with a broken body are not.
        let foreign = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"body": {"stringValue": "GET /healthz 200"}}]}]}]});
        assert_eq!(parse_events("x", foreign.to_string().as_bytes()), Ok(vec![]));
        let broken = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"eventName": "proxy_audit.access", "body": {"stringValue": "{nope"}}]}]}]});
        let err = parse_events("x", broken.to_string().as_bytes());
        assert!(err.is_err_and(|m| m.contains("logRecords[0]")));
    }

    #[test]
    fn duplicates() {
        let mut e = chain(4);
        let again = e.lines[1].clone();
        e.lines.push(again);
        let again = e.lines[3].clone();
        e.lines.insert(0, again);
        let r = run(&e.lines);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!((r.emitters[0].events, r.emitters[0].duplicates), (4, 2));
        assert!(r.render().contains("2 duplicate deliveries ignored"));
        // Same id, different content: not a harmless redelivery.
        let forged = edit(&e.lines[2], false, |v| v["outcome"]["status_code"] = json!(403));
        e.lines.push(forged);
        let p = problems(&run(&e.lines));
        assert!(p.contains(&(1, Problem::Duplicate)), "{p:?}");
        assert!(p.contains(&(1, Problem::Modified)));
    }

    #[test]
    fn unreadable_input() {
        let e = chain(3);
        let text = format!("{}\nthis is not json\n{}\n", e.lines[0], e.lines[1]);
        let parsed = parse_events("bad.ndjson", text.as_bytes());
        assert!(parsed.is_err_and(|m| m.contains("bad.ndjson:line 2")));
        let r = verify_inputs(&[("bad.ndjson", text.as_bytes())], &[]);
        assert_eq!(r.exit_code(), 2);
        assert_eq!(r.emitters[0].events, 2); // the readable part is still checked
        assert!(r.render().contains("UNREADABLE bad.ndjson:line 2: not JSON"));
        // JSON that is neither an event nor an OTLP request.
        let r = verify_inputs(&[("n", b"42\n{\"a\":1}\n".as_slice())], &[]);
        assert_eq!((r.exit_code(), r.unreadable.len()), (2, 2));
        // Invalid UTF-8, empty input.
        let r = verify_inputs(&[("u", b"\xff\xfe{\n".as_slice()), ("empty", b"")], &[]);
        assert_eq!(r.exit_code(), 2);
        assert_eq!(verify_inputs(&[("empty", b"\n\n")], &[]).exit_code(), 0);
    }

    #[test]
    fn malformed_chain_fields_never_panic() {
        let e = chain(3);
        let mut lines = e.lines.clone();
        lines.push(json!({"id": "x", "kind": "access"}).to_string());
        lines.push(json!({"id": "y", "chain": "nope"}).to_string());
        lines.push(json!({"id": "z", "chain": {"emitter": "node-1/abcd/0", "seq": -1}}).to_string());
        lines.push(json!({"chain": {"emitter": 5, "seq": 1}}).to_string());
        lines.push(
            json!({"kind": "access", "chain": {"emitter": "q", "seq": u64::MAX,
            "prev": "0".repeat(64), "hash": "0".repeat(64)}})
            .to_string(),
        );
        lines.push(
            json!({"kind": "loss", "trail": {"first_seq": 0, "last_seq": u64::MAX},
            "chain": {"emitter": "q", "seq": 0, "prev": "A", "hash": 3}})
            .to_string(),
        );
        lines.push(
            json!({"kind": "checkpoint", "trail": {"head_seq": u64::MAX, "head_hash": 1},
            "chain": {"emitter": "q", "seq": 1}})
            .to_string(),
        );
        let r = run(&lines);
        assert_eq!(r.exit_code(), 1);
        let out = r.render();
        assert!(out.contains("BREAK emitter ? seq ?: malformed: event x has no chain object"));
        assert!(out.contains("malformed: event z has no chain.seq"));
        assert!(out.contains("BREAK emitter q seq 0: malformed"));
        assert!(out.contains("emitter node-1/abcd/0: 3 events"));
        // Checkpoints against nothing at all.
        let r = verify(vec![], &[(u64::MAX, "0".repeat(64))]);
        assert_eq!(problems(&r), vec![(u64::MAX, Problem::Truncated)]);
        let r = verify(values(&e.lines), &[(u64::MAX, "0".repeat(64))]);
        assert_eq!(problems(&r), vec![(3, Problem::Truncated)]);
    }
    #[test]
    fn fixture_files() {
        macro_rules! fixture {
            ($name:literal) => {
                ($name, include_bytes!(concat!("../../core/tests/data/verify/", $name)).as_slice())
            };
        }
        let check = |input: (&str, &[u8]), cps: &[Checkpoint]| verify_inputs(&[input], cps);
        let r = check(fixture!("intact.ndjson"), &[]);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert!(r.open.is_empty() && r.emitters.iter().all(|e| e.ended), "{}", r.render());
        assert_eq!(r.emitters.len(), 2);
        assert_eq!(r.emitters[0].declared_lost, vec![(5, 6)]);
        assert_eq!(r.emitters[0].duplicates, 1);
        let r = check(fixture!("otlp.jsonl"), &[]);
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        assert_eq!((r.emitters[0].events, r.emitters[1].events), (12, 6), "with their end records");
        let r = check(fixture!("modified.ndjson"), &[]);
        assert_eq!(problems(&r), vec![(3, Problem::Modified)]);
        let r = check(fixture!("missing.ndjson"), &[]);
        assert_eq!(problems(&r), vec![(4, Problem::Missing)]);
        let cp = Checkpoint::parse(TRUNCATED_CHECKPOINT);
        let r = check(fixture!("truncated.ndjson"), &[cp.unwrap_or_else(|e| panic!("{e}"))]);
        assert_eq!(problems(&r), vec![(11, Problem::Truncated)]);
        assert_eq!(r.breaks[0].emitter, "node-1/abcd/0");
        // Without the checkpoint the cut tail still shows: no end record.
        let r = check(fixture!("truncated.ndjson"), &[]);
        assert_eq!((r.exit_code(), r.breaks.len()), (1, 0), "{}", r.render());
        assert!(r.render().contains("OPEN emitter node-1/abcd/0: no end record; events after seq 10 may be missing"));
        // Unnamed, and both emitters end before seq 12: which one is unknown.
        let hash = TRUNCATED_CHECKPOINT.rsplit(':').next().unwrap_or_default();
        let events = parse_events("t", fixture!("truncated.ndjson").1).unwrap_or_default();
        let r = verify(events, &[(12, hash.to_string())]);
        assert_eq!(problems(&r), vec![(12, Problem::Truncated)]);
        assert_eq!(r.breaks[0].emitter, "?");
        let r = check(fixture!("garbage.ndjson"), &[]);
        assert_eq!(r.exit_code(), 2);
    }

    /// The head of node-1/abcd/0 before truncated.ndjson lost its tail.
    const TRUNCATED_CHECKPOINT: &str =
        "node-1/abcd/0@12:a32eb5da8b3e8c030945da5f7ae4b5e399ed94aba6a7e542dfa102539ddbc8c5";
}
