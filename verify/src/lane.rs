//! One emitter's chain, checked as its events stream in: memory per emitter,
//! not per event.
//!
//! Events are settled in seq order. One that continues the chain (the next
//! seq, a valid hash, linking to the head) settles at once; others wait in a
//! reorder window ([`WINDOW`] per emitter, [`PENDING_MAX`] in all) until the
//! seqs before them come or the window is full (then the lowest waiting seq
//! settles and the seqs before it are a gap). What is kept of a settled event:
//! the last [`RING`] of them (copies, forks, links, heads), and, when the
//! input is several sources that may carry the same events far apart
//! ([`crate::Options::history`]), 8 bytes per seq (the first 64 bits of its
//! hash) to tell a late copy from a fork. A copy or an event that arrives
//! later than both can place is reported as unreadable input (exit 2), not
//! silently accepted.

use super::*;
use crate::check::{describe, Entry, Foreign, FxMap, Hx};
use std::collections::VecDeque;

/// Events waiting for earlier seqs, per emitter.
pub const WINDOW: usize = 4096;
/// Events waiting, all emitters together.
pub const PENDING_MAX: usize = 1 << 17;
/// Settled events remembered per emitter.
pub const RING: usize = 256;

/// What tells copies apart: 128 bits of the content's hash and of
/// `chain.hash` as written.
pub(crate) type Key = (u128, u128);

/// What a verification knows before it reads: keys and checkpoints.
pub(crate) struct Ctx<'a> {
    pub keys: &'a [PublicKey],
    pub checkpoints: &'a [Checkpoint],
    pub history: bool,
}

/// A settled event, remembered for a while.
struct Recent {
    seq: u64,
    computed: Hx,
    declared: Option<Hx>,
    key: Key,
    id: Option<u128>,
    hash_ok: bool,
    rep: bool,
}

/// What an emitter's chain has at an external checkpoint's seq.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fact {
    /// The hash of the event at the checkpoint's seq.
    pub at: Option<Hx>,
    /// `chain.prev` of the event after it.
    pub next_prev: Option<Option<Hx>>,
}

#[derive(Default)]
struct Signing {
    last_signed: Option<(u64, String)>,
    /// The last seq a signature anchors and the chain still holds.
    held: Option<u64>,
    rewritten: bool,
}

/// A hash known at a seq: whole (recent) or its first 64 bits (history).
enum Link {
    Full(Hx),
    Prefix(u64),
}

impl Link {
    fn is(&self, h: &Hx) -> bool {
        match self {
            Link::Full(x) => x == h,
            Link::Prefix(p) => *p == h.prefix64(),
        }
    }

    fn short(&self) -> String {
        match self {
            Link::Full(x) => x.short(),
            Link::Prefix(p) => format!("{p:016x}"),
        }
    }
}

#[derive(Default)]
pub(crate) struct Lane {
    pending: BTreeMap<u64, Vec<(Entry, Key)>>,
    pub(crate) pending_len: usize,
    /// Every seq below is settled (or a gap).
    next: u64,
    prev_rep: Option<(u64, Hx)>,
    recent: VecDeque<Recent>,
    /// First 64 bits of the hash of each seq from `hist_base` (0: none).
    hist: Vec<u64>,
    hist_base: Option<u64>,
    pub(crate) events: u64,
    pub(crate) duplicates: u64,
    pub(crate) first_seq: Option<u64>,
    pub(crate) last: Option<(u64, Hx)>,
    pub(crate) settled: u64,
    pub(crate) last_time_ms: Option<u64>,
    pub(crate) ended: bool,
    /// Seq ranges absent between settled events (declared or not).
    pub(crate) gaps: Vec<(u64, u64)>,
    /// Settled seqs, as ranges.
    pub(crate) runs: Vec<(u64, u64)>,
    /// Gaps its own valid `loss` events declare.
    pub(crate) own_losses: Vec<(u64, u64)>,
    /// Signed records its witness queue dropped: first, last seq, count.
    pub(crate) witness_lost: Vec<(u64, u64, u64)>,
    /// Gaps it declares in other chains.
    pub(crate) declares: Vec<(String, Foreign)>,
    signing: Signing,
    pub(crate) unanchored: u64,
    /// By index into the checkpoints.
    pub(crate) facts: FxMap<usize, Fact>,
    /// Checkpoints about this chain (named for it, or naming none), by seq.
    watch: FxMap<u64, Vec<usize>>,
    pub(crate) breaks: Vec<Break>,
    /// Events that came too late to be placed.
    pub(crate) unplaced: u64,
}

impl Lane {
    pub(crate) fn new(name: &str, ctx: &Ctx<'_>) -> Lane {
        let mut watch: FxMap<u64, Vec<usize>> = FxMap::default();
        for (i, cp) in ctx.checkpoints.iter().enumerate() {
            if cp.emitter.as_deref().is_none_or(|e| e == name) {
                watch.entry(cp.seq).or_default().push(i);
            }
        }
        Lane { watch, ..Lane::default() }
    }

    fn brk(&mut self, name: &str, seq: u64, problem: Problem, detail: String) {
        self.breaks.push(Break { emitter: name.to_string(), seq, problem, detail });
    }

    /// Takes one event; returns false when it is a copy of one already taken.
    pub(crate) fn add(&mut self, name: &str, e: Entry, key: Key, ctx: &Ctx<'_>) -> bool {
        if e.seq < self.next {
            return self.late(name, e, key);
        }
        if self.pending.is_empty() && e.seq == self.next && self.continues(&e) {
            // The common case: the next event of the chain, nothing waiting.
            self.events += 1;
            self.note(name, &e);
            self.settle(name, e.seq, &[(e, key)], ctx);
            return true;
        }
        let cands = self.pending.entry(e.seq).or_default();
        if cands.iter().any(|(_, k)| *k == key) {
            self.duplicates += 1;
            return false;
        }
        let same_id = cands.iter().any(|(c, _)| c.id.is_some() && c.id == e.id);
        if same_id {
            self.same_id(name, &e);
        }
        self.note(name, &e);
        self.pending.entry(e.seq).or_default().push((e, key));
        self.pending_len += 1;
        self.events += 1;
        self.settle_ready(name, ctx);
        while self.pending_len > WINDOW {
            self.settle_first(name, ctx);
        }
        true
    }

    fn same_id(&mut self, name: &str, e: &Entry) {
        if let Some(id) = &e.id {
            let detail = format!("id {id} also appears as emitter {name} seq {} with different content", e.seq);
            self.brk(name, e.seq, Problem::Duplicate, detail);
        }
    }

    /// Losses it declares (valid events only).
    fn note(&mut self, name: &str, e: &Entry) {
        if !e.hash_ok {
            return;
        }
        if let Some(w) = e.witness_lost {
            self.witness_lost.push(w);
        }
        match (e.loss, &e.loss_for) {
            (Some((first, last)), Some(target)) => {
                let f = Foreign { first, last, by: name.to_string(), at: e.seq };
                self.declares.push((target.clone(), f));
            }
            (Some(l), None) => self.own_losses.push(l),
            _ => {}
        }
    }

    /// An event for a seq already settled (or passed as a gap).
    fn late(&mut self, name: &str, e: Entry, key: Key) -> bool {
        let here: Vec<&Recent> = self.recent.iter().filter(|r| r.seq == e.seq).collect();
        if here.iter().any(|r| r.key == key) {
            self.duplicates += 1;
            return false;
        }
        let same_id = e.id.as_ref().is_some_and(|id| here.iter().any(|r| r.id == Some(id.key())));
        let valid_there = here.iter().any(|r| r.hash_ok);
        let here = !here.is_empty();
        let known = if !here {
            match self.hist_at(e.seq) {
                Some(p) if e.hash_ok && e.hash.is_some_and(|h| h.prefix64() == p) => {
                    self.duplicates += 1;
                    return false;
                }
                Some(_) => true,
                None => false,
            }
        } else {
            true
        };
        if !known {
            self.unplaced += 1;
            return true;
        }
        self.events += 1;
        if same_id {
            self.same_id(name, &e);
        }
        self.note(name, &e);
        match (e.hash, e.hash_ok) {
            (Some(h), false) => {
                let detail = format!(
                    "{}: chain.hash {}… but the content hashes to {}…",
                    describe(&e),
                    h.short(),
                    e.computed.short()
                );
                self.brk(name, e.seq, Problem::Modified, detail);
            }
            (_, true) if valid_there || !here => {
                let detail = format!(
                    "different events with valid hashes claim this seq (fork): {} and the one settled there",
                    describe(&e)
                );
                self.brk(name, e.seq, Problem::Duplicate, detail);
            }
            _ => {}
        }
        if here {
            self.remember(&e, key, false);
        }
        true
    }

    fn hist_at(&self, seq: u64) -> Option<u64> {
        let base = self.hist_base?;
        let i = usize::try_from(seq.checked_sub(base)?).ok()?;
        self.hist.get(i).copied().filter(|p| *p != 0)
    }

    /// Whether `c`, valid, continues the chain at `self.next`.
    fn continues(&self, c: &Entry) -> bool {
        c.hash_ok
            && match self.prev_rep {
                _ if c.seq == 0 => c.prev == Some(Hx::ZERO) && c.kind.as_deref() == Some("chain_start"),
                Some((p, h)) => p.checked_add(1) == Some(c.seq) && c.prev == Some(h),
                None => false,
            }
    }

    /// Settles the events that continue the chain.
    fn settle_ready(&mut self, name: &str, ctx: &Ctx<'_>) {
        while let Some((s, cands)) = self.pending.first_key_value() {
            let ready = *s == self.next
                && match cands.as_slice() {
                    [(c, _)] => self.continues(c),
                    _ => false,
                };
            if !ready {
                return;
            }
            self.settle_first(name, ctx);
        }
    }

    /// Settles everything still waiting (the input has ended).
    pub(crate) fn flush(&mut self, name: &str, ctx: &Ctx<'_>) {
        while !self.pending.is_empty() {
            self.settle_first(name, ctx);
        }
    }

    /// Settles the lowest waiting seq: picks the event that stands for it
    /// and checks its hash and link.
    pub(crate) fn settle_first(&mut self, name: &str, ctx: &Ctx<'_>) {
        let Some((seq, cands)) = self.pending.pop_first() else { return };
        self.pending_len = self.pending_len.saturating_sub(cands.len());
        self.settle(name, seq, &cands, ctx);
    }

    /// Settles `seq` with its candidates (all the events that claim it).
    fn settle(&mut self, name: &str, seq: u64, cands: &[(Entry, Key)], ctx: &Ctx<'_>) {
        for (e, _) in cands {
            if let (Some(h), false) = (&e.hash, e.hash_ok) {
                let detail = format!(
                    "{}: chain.hash {}… but the content hashes to {}…",
                    describe(e),
                    h.short(),
                    e.computed.short()
                );
                self.brk(name, seq, Problem::Modified, detail);
            }
        }
        let valid: Vec<&Entry> = cands.iter().map(|(e, _)| e).filter(|e| e.hash_ok).collect();
        if valid.len() > 1 {
            let ids: Vec<String> = valid.iter().map(|e| describe(e)).collect();
            let detail =
                format!("{} different events with valid hashes claim this seq (fork): {}", valid.len(), ids.join(", "));
            self.brk(name, seq, Problem::Duplicate, detail);
        }
        let prev_rep = self.prev_rep;
        let links = |e: &Entry| match &prev_rep {
            Some((s, h)) if s.checked_add(1) == Some(seq) => e.prev == Some(*h),
            _ => false,
        };
        let rep_ix = match cands {
            [_] => 0,
            _ => cands
                .iter()
                .enumerate()
                .max_by_key(|(_, (e, _))| (e.hash_ok, links(e), std::cmp::Reverse(e.hash.is_none())))
                .map_or(0, |(i, _)| i),
        };
        let Some((rep, _)) = cands.get(rep_ix) else { return };
        if seq > self.next {
            self.gaps.push((self.next, seq - 1));
        }
        self.next = seq.saturating_add(1);
        self.check_link(name, seq, rep, cands);
        self.prev_rep = Some((seq, rep.link()));
        self.on_rep(name, rep, ctx);
        for (i, (e, key)) in cands.iter().enumerate() {
            self.remember(e, *key, i == rep_ix);
        }
        if ctx.history {
            // A gap wider than this starts the history anew (copies from
            // before it can no longer be placed: reported, not accepted).
            const MAX_GAP: usize = 1 << 16;
            let base = *self.hist_base.get_or_insert(seq);
            let i = usize::try_from(seq - base).unwrap_or(usize::MAX);
            let i = if i > self.hist.len().saturating_add(MAX_GAP) {
                self.hist.clear();
                self.hist_base = Some(seq);
                0
            } else {
                i
            };
            {
                if self.hist.len() <= i {
                    self.hist.resize(i.saturating_add(1), 0);
                }
                if let Some(slot) = self.hist.get_mut(i) {
                    *slot = rep.link().prefix64().max(1);
                }
            }
        }
    }

    fn remember(&mut self, e: &Entry, key: Key, rep: bool) {
        if self.recent.len() >= RING {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent {
            seq: e.seq,
            computed: e.computed,
            declared: e.hash,
            key,
            id: e.id.as_ref().map(|i| i.key()),
            hash_ok: e.hash_ok,
            rep,
        });
    }

    /// The seq whose event has this hash (declared first, then computed),
    /// among the recent and the waiting events.
    fn seq_of_hash(&self, p: &Hx, cands: &[(Entry, Key)]) -> Option<u64> {
        let declared = self
            .recent
            .iter()
            .filter(|r| r.declared == Some(*p))
            .map(|r| r.seq)
            .chain(
                cands
                    .iter()
                    .chain(self.pending.values().flatten())
                    .filter(|(e, _)| e.hash == Some(*p))
                    .map(|(e, _)| e.seq),
            )
            .last();
        declared.or_else(|| {
            self.recent
                .iter()
                .map(|r| (r.seq, r.computed))
                .chain(cands.iter().chain(self.pending.values().flatten()).map(|(e, _)| (e.seq, e.computed)))
                .find(|(_, c)| c == p)
                .map(|(s, _)| s)
        })
    }

    fn check_link(&mut self, name: &str, seq: u64, rep: &Entry, cands: &[(Entry, Key)]) {
        if seq == 0 {
            if rep.kind.as_deref() != Some("chain_start") {
                let detail = format!(
                    "seq 0 is {} ({}), but a chain starts with a chain_start event",
                    rep.kind.as_deref().map_or("an event without kind".to_string(), |k| format!("a {k} event")),
                    rep.id.as_ref().map_or("no id".to_string(), crate::check::EventId::to_string)
                );
                self.brk(name, 0, Problem::BadPrev, detail);
            }
            if let Some(p) = rep.prev.filter(|p| *p != Hx::ZERO) {
                let at = self.seq_of_hash(&p, cands).map(|s| format!(" (the hash of seq {s})")).unwrap_or_default();
                self.brk(name, 0, Problem::BadPrev, format!("seq 0 has prev {}…{at}, not 64 zeros", p.short()));
            }
            return;
        }
        let Some(p) = rep.prev else { return };
        let before = self.prev_rep.filter(|(s, _)| s.checked_add(1) == Some(seq));
        if before.is_some_and(|(_, h)| h == p) {
            return;
        }
        let found = self.seq_of_hash(&p, cands);
        let elsewhere = found.filter(|s| s.checked_add(1) != Some(seq));
        match (before, elsewhere) {
            // Links to seq N-1's content, whose chain.hash was altered
            // (already reported as modified there).
            (Some(_), None) if found.is_some() => {}
            (_, Some(m)) => self.brk(
                name,
                seq,
                Problem::Reordered,
                format!("prev {}… is the hash of seq {m}, not of seq {}", p.short(), seq - 1),
            ),
            (Some((_, h)), None) => self.brk(
                name,
                seq,
                Problem::BadPrev,
                format!("prev {}… is not the hash of seq {} ({}…)", p.short(), seq - 1, h.short()),
            ),
            // Seq N-1 absent: the gap is reported; nothing to link to.
            (None, None) => {}
        }
    }

    /// The hash of the settled event at `seq`, if still known.
    fn link_at(&self, seq: u64) -> Option<Link> {
        match self.recent.iter().rev().find(|r| r.seq == seq && r.rep) {
            Some(r) => Some(Link::Full(r.declared.unwrap_or(r.computed))),
            None => self.hist_at(seq).map(Link::Prefix),
        }
    }

    fn on_rep(&mut self, name: &str, rep: &Entry, ctx: &Ctx<'_>) {
        let seq = rep.seq;
        match self.runs.last_mut() {
            Some((_, b)) if b.checked_add(1) == Some(seq) => *b = seq,
            _ => self.runs.push((seq, seq)),
        }
        self.first_seq.get_or_insert(seq);
        self.last = Some((seq, rep.link()));
        self.settled += 1;
        self.unanchored += 1;
        self.last_time_ms = rep.time_ms;
        self.ended =
            rep.end && rep.hash_ok && rep.attests.as_deref().is_some_and(|(s, _)| s.checked_add(1) == Some(seq));
        // Heads attested by its own checkpoint events (signed ones, when
        // keys are given, below).
        if rep.hash_ok && (ctx.keys.is_empty() || rep.signed.is_none()) {
            if let Some((s, h)) = rep.attests.as_deref() {
                if let Some(target) = self.link_at(*s).filter(|t| !t.is(h)) {
                    let detail = format!(
                        "checkpoint event at seq {seq} attests hash {}…, the event has {}…",
                        h.short(),
                        target.short()
                    );
                    self.brk(name, *s, Problem::Modified, detail);
                }
            }
        }
        if !ctx.keys.is_empty() && rep.hash_ok {
            self.check_signature(name, rep, ctx.keys);
        }
        for (at, next) in [(Some(seq), false), (seq.checked_sub(1), true)] {
            let Some(at) = at else { continue };
            for i in self.watch.get(&at).cloned().unwrap_or_default() {
                let f = self.facts.entry(i).or_default();
                if next {
                    f.next_prev = Some(rep.prev);
                } else {
                    f.at = Some(rep.link());
                }
            }
        }
    }

    /// With keys: every chain start and checkpoint carries a signature by a
    /// known key that holds, and every signed head is the chain's.
    fn check_signature(&mut self, name: &str, e: &Entry, keys: &[PublicKey]) {
        let start = e.kind.as_deref() == Some("chain_start");
        if !start && e.kind.as_deref() != Some("checkpoint") {
            return;
        }
        let what = describe(e);
        let Some(sg) = &e.signed else {
            let detail = format!("{what} has no signature (with signing on, chain starts and checkpoints are signed)");
            return self.brk(name, e.seq, Problem::Signature, detail);
        };
        if sg.alg != proxy_audit_core::signing::ALG {
            let detail = format!("{what}: signature alg {:?}, expected \"ed25519\"", sg.alg);
            return self.brk(name, e.seq, Problem::Signature, detail);
        }
        let Some(key) = keys.iter().find(|k| k.key_id == sg.key_id) else {
            let detail = format!("{what} is signed by key {:?}, which no --key file holds", sg.key_id);
            return self.brk(name, e.seq, Problem::Signature, detail);
        };
        let head_hx = if start { None } else { e.attests.as_deref().copied() };
        let head_hex = head_hx.map(|(s, h)| (s, h.hex()));
        let head = head_hex.as_ref().map(|(s, h)| (*s, h.as_str()));
        if !start && head.is_none() {
            let detail = format!("{what} is signed but names no head (trail.head_seq, head_hash)");
            return self.brk(name, e.seq, Problem::Signature, detail);
        }
        let msg = proxy_audit_core::signing::message(&sg.key_id, name, e.seq, &sg.time, head);
        if !key.verifies(&msg, &sg.sig) {
            let detail = format!("{what}: bad signature by key {:?}", sg.key_id);
            return self.brk(name, e.seq, Problem::Signature, detail);
        }
        self.signing.last_signed = Some((e.seq, sg.key_id.clone()));
        self.unanchored = 0;
        match head_hx {
            None => self.signing.held = Some(e.seq),
            Some((s, h)) => match self.link_at(s) {
                // Later signed heads fail too once history is rewritten: one break says it.
                Some(target) if !target.is(&h) && self.signing.rewritten => {}
                Some(target) if !target.is(&h) => {
                    self.signing.rewritten = true;
                    let from = self.signing.held.map_or(0, |x| x.saturating_add(1)).min(s);
                    let detail = format!(
                        "the signed {what} at seq {} (key {:?}) anchors hash {}… at seq {s}, the chain has {}…: \
                         seq {from}..{s} was rewritten after it was signed",
                        e.seq,
                        sg.key_id,
                        h.short(),
                        target.short()
                    );
                    self.brk(name, from, Problem::Rewritten, detail);
                }
                // The signed record's own position is authentic too.
                _ => self.signing.held = Some(e.seq),
            },
        }
    }

    /// What it holds: events remembered, seqs of history, events waiting.
    #[cfg(test)]
    pub(crate) fn retained(&self) -> (usize, usize, usize) {
        (self.recent.len(), self.hist.len(), self.pending_len)
    }

    pub(crate) fn last_signed(&self) -> Option<(u64, String)> {
        self.signing.last_signed.clone()
    }
}
