//! The chain checks: per emitter, then checkpoints and open chains.

use super::*;
use crate::input::{Body, Light};

/// One distinct event, as far as the chain is concerned.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) id: Option<EventId>,
    pub(crate) kind: Option<Kind>,
    pub(crate) prev: Option<Hx>,
    pub(crate) hash: Option<Hx>,
    pub(crate) computed: Hx,
    pub(crate) hash_ok: bool,
    /// `loss`: trail.first_seq..=trail.last_seq.
    pub(crate) loss: Option<(u64, u64)>,
    /// `loss` with `trail.emitter`: the chain the loss is declared for.
    pub(crate) loss_for: Option<String>,
    /// `checkpoint`: trail.head_seq, trail.head_hash.
    pub(crate) attests: Option<Box<(u64, Hx)>>,
    /// A `checkpoint` with `trail.reason` `end`: the emitter retired here.
    pub(crate) end: bool,
    pub(crate) time_ms: Option<u64>,
    /// A `loss` of reason `witness_buffer_full`: first, last seq, count
    /// (records the witness did not get; no gap in the chain).
    pub(crate) witness_lost: Option<(u64, u64, u64)>,
    /// `trail.signature`, with the record's `time` as written.
    pub(crate) signed: Option<Box<Signed>>,
}

/// An event id: 32 lowercase hex digits (as the filter writes them) held as
/// a number, anything else as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventId {
    Hex(u128),
    Other(Box<str>),
}

impl EventId {
    fn new(s: &str) -> EventId {
        let hex = s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match u128::from_str_radix(s, 16) {
            Ok(v) if hex => EventId::Hex(v),
            _ => EventId::Other(s.into()),
        }
    }

    /// 128 bits that tell ids apart.
    pub(crate) fn key(&self) -> u128 {
        match self {
            EventId::Hex(v) => *v,
            EventId::Other(s) => id_key(s),
        }
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventId::Hex(v) => write!(f, "{v:032x}"),
            EventId::Other(s) => f.write_str(s),
        }
    }
}

/// An event's `kind`: the usual ones without an allocation.
pub(crate) type Kind = std::borrow::Cow<'static, str>;

fn kind_of(k: &str) -> Kind {
    const KNOWN: [&str; 8] = ["access", "denied", "blocked", "begin", "complete", "chain_start", "checkpoint", "loss"];
    match KNOWN.iter().find(|x| **x == k) {
        Some(x) => Kind::Borrowed(x),
        None => Kind::Owned(k.to_string()),
    }
}

/// A record's `trail.signature` (fields absent or of the wrong type read as empty).
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) key_id: String,
    pub(crate) alg: String,
    pub(crate) sig: String,
    pub(crate) time: String,
}

impl Entry {
    /// The hash the next event links to.
    pub(crate) fn link(&self) -> Hx {
        self.hash.unwrap_or(self.computed)
    }

    /// An event without `trail` (not a trail record), read from a canonical
    /// line: `None` when a chain field is absent or not as the filter writes
    /// it (the slow path then reports exactly what is wrong).
    pub(crate) fn plain(
        line: &[u8],
        spans: &crate::canonical::Spans,
        computed: Hx,
        declared: Option<Hx>,
    ) -> Option<(String, Entry)> {
        use crate::canonical::{members, plain_string};
        if spans.trail.is_some() {
            return None;
        }
        let text = |r: &Option<std::ops::Range<usize>>| -> Option<Option<&str>> {
            match r {
                None => Some(None),
                Some(r) => plain_string(line.get(r.clone())?).map(Some),
            }
        };
        let (id, kind, time) = (text(&spans.id)?, text(&spans.kind)?, text(&spans.time)?);
        let (id, kind) = (id.map(EventId::new), kind.map(kind_of));
        if matches!(kind.as_deref(), Some("chain_start" | "checkpoint" | "loss")) {
            return None;
        }
        let (mut emitter, mut seq, mut prev, mut hash) = (None, None, None, None);
        for (name, value) in members(line.get(spans.chain.clone()?)?) {
            match name {
                b"emitter" => emitter = plain_string(value).filter(|e| !e.is_empty()),
                b"seq" => seq = std::str::from_utf8(value).ok()?.parse::<u64>().ok(),
                b"prev" => prev = plain_string(value).and_then(Hx::parse),
                b"hash" => hash = declared.or_else(|| plain_string(value).and_then(Hx::parse)),
                _ => {}
            }
        }
        let (emitter, seq, prev, hash) = (emitter?, seq?, prev?, hash?);
        let time_ms = time.and_then(proxy_audit_core::timefmt::parse_rfc3339_millis);
        let entry = Entry {
            seq,
            id,
            kind,
            prev: Some(prev),
            hash: Some(hash),
            computed,
            hash_ok: hash == computed,
            loss: None,
            loss_for: None,
            attests: None,
            end: false,
            time_ms,
            signed: None,
            witness_lost: None,
        };
        Some((emitter.to_string(), entry))
    }
}

impl Entry {
    pub(crate) fn hash_declared(&self) -> crate::input::Declared {
        self.hash.map_or(crate::input::Declared::Absent, crate::input::Declared::Hash)
    }
}

/// A SHA-256, held inline as its 32 bytes (no allocation per event).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hx([u8; 32]);

impl std::hash::Hash for Hx {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // 64 bits of a SHA-256 pick the bucket; equality compares all of it.
        state.write(self.0.get(..8).unwrap_or(&self.0));
    }
}

/// A fast hasher for the verifier's tables (FxHash): its keys are
/// mostly hashes already; SipHash's DoS resistance buys nothing in a
/// command-line tool that reads the files it is given.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            if let Some(dst) = w.get_mut(..chunk.len()) {
                dst.copy_from_slice(chunk);
            }
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fx>>;
pub(crate) type FxSet<K> = HashSet<K, std::hash::BuildHasherDefault<Fx>>;

/// A hash as 64 lowercase hex digits, on the stack.
pub(crate) struct Hex64([u8; 64]);

impl Hex64 {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Hx {
    pub(crate) const ZERO: Hx = Hx([0; 32]);

    /// From 64 lowercase hex digits.
    pub(crate) fn parse(s: &str) -> Option<Hx> {
        // One pass through a table (lowercase digits only; 0xff: not one).
        // Evaluated at compile time: an index out of range fails the build.
        #[allow(clippy::indexing_slicing)]
        const DIGIT: [u8; 256] = {
            let mut t = [0xffu8; 256];
            let mut i = 0;
            while i < 16 {
                t[b"0123456789abcdef"[i] as usize] = i as u8;
                i += 1;
            }
            t
        };
        let b: &[u8; 64] = s.as_bytes().try_into().ok()?;
        let d = |c: u8| DIGIT.get(usize::from(c)).copied().unwrap_or(0xff);
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            if let [hi, lo] = pair {
                let (hi, lo) = (d(*hi), d(*lo));
                bad |= hi | lo;
                *o = (hi << 4) | lo;
            }
        }
        (bad < 16).then_some(Hx(out))
    }

    pub(crate) fn of_digest(d: &[u8]) -> Hx {
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(d) {
            *o = *b;
        }
        Hx(out)
    }

    pub(crate) fn hex(&self) -> Hex64 {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; 64];
        for (pair, b) in out.chunks_mut(2).zip(self.0) {
            if let ([hi, lo], Some(h), Some(l)) = (pair, HEX.get(usize::from(b >> 4)), HEX.get(usize::from(b & 15))) {
                *hi = *h;
                *lo = *l;
            }
        }
        Hex64(out)
    }

    /// The first 16 hex digits, for reports.
    pub(crate) fn short(&self) -> String {
        self.hex().as_str().get(..16).unwrap_or_default().to_string()
    }

    /// The first 64 bits.
    pub(crate) fn prefix64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.0.get(..8).unwrap_or(&[0; 8]));
        u64::from_be_bytes(b)
    }

    /// The first 128 bits.
    pub(crate) fn prefix128(&self) -> u128 {
        let mut b = [0u8; 16];
        b.copy_from_slice(self.0.get(..16).unwrap_or(&[0; 16]));
        u128::from_be_bytes(b)
    }
}

/// An event id as a table key: the id itself when it is 32 hex digits (as
/// the filter writes them), else 128 bits of its SHA-256.
fn id_key(id: &str) -> u128 {
    if id.len() == 32 {
        if let Ok(v) = u128::from_str_radix(id, 16) {
            return v;
        }
    }
    Hx::parse(&proxy_audit_core::ids::sha256_hex(id.as_bytes())).map_or(0, |h| h.prefix128() ^ 1)
}

impl std::fmt::Debug for Hx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.hex().as_str())
    }
}

/// A gap declared in another emitter's chain: `first..=last` of the target,
/// declared by the `loss` event at seq `at` of emitter `by`.
#[derive(Debug, Clone)]
pub(crate) struct Foreign {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) by: String,
    pub(crate) at: u64,
}

/// One emitter after the chain checks, kept for the checkpoint checks.
pub(crate) struct Checked {
    /// What the chain has at each external checkpoint's seq (by index).
    facts: FxMap<usize, crate::lane::Fact>,
    last_seq: u64,
    /// No event of it is in the input.
    empty: bool,
    /// Gaps other emitters declared (accepted ones): the only declarations
    /// that can cover seqs past the last event (a chain's own `loss` event
    /// always comes after the seqs it declares).
    declared_elsewhere: Vec<(u64, u64)>,
}

/// Verifies with `SEQ:HASH` checkpoints (see [`verify_with`]), for chains
/// that are still being written: open chains are reported, not failed.
pub fn verify(events: Vec<Value>, checkpoints: &[(u64, String)]) -> Report {
    let cps: Vec<Checkpoint> = checkpoints
        .iter()
        .map(|(seq, hash)| Checkpoint { emitter: None, seq: *seq, hash: hash.trim().to_ascii_lowercase() })
        .collect();
    let mut report = verify_with(events, &cps);
    report.set_live(Live::All);
    report
}

/// Parses every input and verifies the whole set (events of one emitter may be
/// spread over several files). Unreadable parts land in `Report::unreadable`.
pub fn verify_inputs(inputs: &[(&str, &[u8])], checkpoints: &[Checkpoint]) -> Report {
    let opts = Options { checkpoints: checkpoints.to_vec(), ..Options::default() };
    verify_sources(inputs, &opts)
}

/// [`verify_inputs`] with keys, sharding and threads ([`Options`]).
pub fn verify_sources(inputs: &[(&str, &[u8])], opts: &Options) -> Report {
    // Several sources may carry the same events far apart.
    let opts = &Options { history: opts.history || inputs.len() > 1, ..opts.clone() };
    let mut session = Session::new(opts);
    for (name, bytes) in inputs {
        session.add(name, bytes);
    }
    session.finish()
}

/// Verification fed one source at a time, read in blocks: only the parsed
/// events are kept, not the input bytes.
pub struct Session<'o> {
    opts: &'o Options,
    ingest: Ingest<'o>,
    unreadable: Vec<String>,
    progress: Option<OnProgress<'o>>,
    seen: Progress,
}

type OnProgress<'o> = Box<dyn FnMut(&Progress) + 'o>;

/// How far a [`Session`] has read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub events: u64,
    pub bytes: u64,
    pub sources: u64,
}

/// Bytes read per block and reading thread (cut at the last line end): a
/// block stays in the CPU's cache between its read and its parse.
const BLOCK: usize = 1 << 20;

impl<'o> Session<'o> {
    pub fn new(opts: &'o Options) -> Self {
        Session {
            opts,
            ingest: Ingest::new(opts, opts.history),
            unreadable: Vec::new(),
            progress: None,
            seen: Progress::default(),
        }
    }

    /// Called after every block read.
    pub fn on_progress(&mut self, f: impl FnMut(&Progress) + 'o) {
        self.progress = Some(Box::new(f));
    }

    /// Reads one source held in memory; returns how many events it held.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> usize {
        let mut reader = bytes;
        let whole = || Ok(bytes.to_vec());
        self.add_reader(name, &mut reader, Some(&whole)).unwrap_or(0)
    }

    /// Reads one source block by block; `whole` reads it again at once (for
    /// a file that turns out to be pretty-printed JSON). Returns how many
    /// events it held.
    pub fn add_reader(
        &mut self,
        name: &str,
        reader: &mut (dyn std::io::Read + Send),
        whole: Option<&dyn Fn() -> std::io::Result<Vec<u8>>>,
    ) -> std::io::Result<usize> {
        let threads = self.opts.threads.clamp(1, 64);
        let mut blocks = Blocks::new(BLOCK * threads);
        let mut read = Reading { line: 1, ..Reading::default() };
        if threads == 1 {
            while let Some((buf, cut)) = blocks.next(reader)? {
                self.block(name, buf.get(..cut).unwrap_or_default(), blocks.done, whole.is_none(), &mut read);
                blocks.spare.push(buf);
            }
        } else {
            // One thread reads the next block while the others parse this one.
            std::thread::scope(|s| -> std::io::Result<()> {
                let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<(Vec<u8>, usize, bool)>>(1);
                let (back, spare) = std::sync::mpsc::channel::<Vec<u8>>();
                s.spawn(move || loop {
                    blocks.spare.extend(spare.try_iter());
                    let next = blocks.next(reader).transpose();
                    let stop = !matches!(next, Some(Ok(_)));
                    let sent = match next {
                        Some(n) => tx.send(n.map(|(buf, cut)| (buf, cut, blocks.done))).is_ok(),
                        None => false,
                    };
                    if stop || !sent {
                        break;
                    }
                });
                for msg in rx {
                    let (buf, cut, eof) = msg?;
                    self.block(name, buf.get(..cut).unwrap_or_default(), eof, whole.is_none(), &mut read);
                    let _ = back.send(buf);
                }
                Ok(())
            })?;
        }
        let Reading { mut errors, pending, last_block, mut events, .. } = read;
        if let Some(lines) = pending {
            // Perhaps pretty-printed JSON: read the source whole.
            let bytes = match whole {
                Some(read) => read()?,
                None => last_block,
            };
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
            match crate::input::parse_document(name, bytes) {
                Some((lights, errs)) => {
                    events = lights.len();
                    self.push(lights);
                    errors = errs;
                }
                None => self.push(lines),
            }
        }
        self.unreadable.extend(errors);
        self.seen.sources += 1;
        if let Some(p) = self.progress.as_mut() {
            p(&self.seen);
        }
        Ok(events)
    }

    /// Parses one block of whole lines of a source and takes its events.
    fn block(&mut self, name: &str, block: &[u8], eof: bool, keep_last: bool, read: &mut Reading) {
        let cut = block.len();
        let block = if read.blocks == 0 { block.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(block) } else { block };
        let (lights, errs, newlines) =
            crate::input::parse_block(name, block, read.line, self.opts.threads.max(1), self.opts.shard);
        read.line += newlines;
        read.events += lights.len();
        if read.blocks == 0 && !errs.is_empty() {
            read.pending = Some(Vec::new());
        }
        read.errors.extend(errs);
        read.blocks += 1;
        if read.blocks == 1 && eof && keep_last {
            read.last_block = block.to_vec();
        }
        match read.pending.as_mut() {
            Some(p) => p.extend(lights),
            None => self.push(lights),
        }
        self.seen.bytes += cut as u64;
        if let Some(p) = self.progress.as_mut() {
            p(&self.seen);
        }
    }

    fn push(&mut self, lights: Vec<Light>) {
        let shard = self.opts.shard;
        for l in lights.into_iter().filter(|l| in_shard(l, shard)) {
            self.seen.events += 1;
            self.ingest.add(l);
        }
    }

    /// Records input that could not be read at all (a missing file).
    pub fn unreadable(&mut self, why: String) {
        self.unreadable.push(why);
    }

    pub fn finish(self) -> Report {
        let mut report = verify_ingested(self.ingest, self.opts);
        report.unreadable.extend(self.unreadable);
        report.set_live(self.opts.live);
        report.shard = self.opts.shard;
        report
    }
}

/// Where the reading of one source stands.
#[derive(Default)]
struct Reading {
    errors: Vec<String>,
    /// When the first block is not all JSON lines, the source may be one
    /// pretty-printed document: its events wait here until that is known.
    pending: Option<Vec<Light>>,
    /// The first block, when it is the only one and the source cannot be read again.
    last_block: Vec<u8>,
    line: usize,
    blocks: usize,
    events: usize,
}

/// A source cut into blocks of whole lines.
struct Blocks {
    size: usize,
    want: usize,
    /// `buf[..len]`: read and not yet handed out.
    buf: Vec<u8>,
    len: usize,
    /// Buffers handed back, to be filled again (zeroed once).
    spare: Vec<Vec<u8>>,
    done: bool,
}

impl Blocks {
    fn new(size: usize) -> Blocks {
        Blocks { size, want: size, buf: vec![0; size], len: 0, spare: Vec::new(), done: false }
    }

    /// The next block: a buffer and how much of it is whole lines (all of
    /// it at the end of the input); `None` once the input is done.
    fn next(&mut self, reader: &mut dyn std::io::Read) -> std::io::Result<Option<(Vec<u8>, usize)>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let eof = fill(reader, &mut self.buf, &mut self.len, self.want)?;
            let filled = self.buf.get(..self.len).unwrap_or_default();
            let cut = match memchr::memrchr(b'\n', filled) {
                _ if eof => self.len,
                Some(i) => i + 1,
                None => {
                    // One line longer than a block: read on.
                    self.want = self.want.saturating_mul(2);
                    continue;
                }
            };
            self.want = self.size;
            let mut next = self.spare.pop().unwrap_or_default();
            let rest = self.len - cut;
            if next.len() < self.size.max(rest) {
                next.resize(self.size.max(rest), 0);
            }
            if let (Some(dst), Some(src)) = (next.get_mut(..rest), self.buf.get(cut..self.len)) {
                dst.copy_from_slice(src);
            }
            self.len = rest;
            self.done = eof;
            return Ok(Some((std::mem::replace(&mut self.buf, next), cut)));
        }
    }
}

/// Reads from `reader` into `buf[len..]` until `len` reaches `want` or the
/// input ends; returns whether it ended.
fn fill(reader: &mut dyn std::io::Read, buf: &mut Vec<u8>, len: &mut usize, want: usize) -> std::io::Result<bool> {
    if buf.len() < want {
        buf.resize(want, 0);
    }
    while *len < want {
        match reader.read(buf.get_mut(*len..want).unwrap_or_default()) {
            Ok(0) => return Ok(true),
            Ok(n) => *len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Whether an event is for this shard: its emitter's shard, or a `loss`
/// event that declares a gap in a chain of this shard (the shipping
/// service's declarations travel with the chains they are about).
fn in_shard(l: &Light, shard: Option<(u64, u64)>) -> bool {
    let Some((i, n)) = shard else { return true };
    let of = |e: &str| shard_of(e, n) == i;
    match &l.emitter {
        None => i == 0, // malformed events are reported once, by shard 0
        Some(e) if of(e) => true,
        Some(_) => match &l.body {
            Body::Value(v) => v.get("trail").and_then(|t| t.get("emitter")).and_then(Value::as_str).is_some_and(of),
            Body::Entry(_) => false,
        },
    }
}

/// The shard (0..n) an emitter belongs to: FNV-1a of its name, mixed
/// (the SplitMix64 finalizer: FNV's low bits alone spread names that differ
/// in one digit badly), mod n.
pub fn shard_of(emitter: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in emitter.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h % n.max(1)
}

pub fn verify_with(events: Vec<Value>, checkpoints: &[Checkpoint]) -> Report {
    let opts = Options { checkpoints: checkpoints.to_vec(), ..Options::default() };
    verify_lights(events.into_iter().map(Light::from_value).collect(), &opts)
}

/// The events read so far, per emitter ([`crate::lane::Lane`]): what is
/// kept of the input (the input itself is not), bounded by the number of
/// emitters, not of events (see [`crate::lane`]).
pub(crate) struct Ingest<'o> {
    opts: &'o Options,
    history: bool,
    breaks: Vec<Break>,
    lanes: FxMap<String, crate::lane::Lane>,
    pending: usize,
    /// Copies of events that name no emitter or seq (reported once).
    loose: FxSet<(u128, u128)>,
}

impl<'o> Ingest<'o> {
    pub(crate) fn new(opts: &'o Options, history: bool) -> Self {
        Ingest { opts, history, breaks: Vec::new(), lanes: FxMap::default(), pending: 0, loose: FxSet::default() }
    }

    fn ctx(&self) -> crate::lane::Ctx<'o> {
        crate::lane::Ctx { keys: &self.opts.keys, checkpoints: &self.opts.checkpoints, history: self.history }
    }

    pub(crate) fn add(&mut self, light: Light) {
        let Light { computed, declared, emitter: emitter_field, body } = light;
        let key = (computed.prefix128(), declared.prefix128());
        let mut own = Vec::new();
        let entry = match body {
            Body::Entry(e) => Some(*e),
            Body::Value(ev) => read_entry(&ev, computed, emitter_field.as_deref(), &mut own),
        };
        let (Some(entry), Some(emitter)) = (entry, emitter_field) else {
            if self.loose.insert(key) {
                self.breaks.extend(own);
            }
            return;
        };
        let ctx = self.ctx();
        let lane = match self.lanes.get_mut(emitter.as_str()) {
            Some(l) => l,
            None => self.lanes.entry(emitter.clone()).or_insert_with(|| crate::lane::Lane::new(&emitter, &ctx)),
        };
        let before = lane.pending_len;
        if lane.add(&emitter, entry, key, &ctx) {
            self.breaks.extend(own);
        }
        self.pending = (self.pending + lane.pending_len).saturating_sub(before);
        if self.pending > crate::lane::PENDING_MAX {
            self.shrink();
        }
    }

    /// Too many events wait in all: the emitters with the most waiting
    /// settle their lowest seqs.
    fn shrink(&mut self) {
        let ctx = self.ctx();
        while self.pending > crate::lane::PENDING_MAX / 4 * 3 {
            let Some((name, lane)) = self.lanes.iter_mut().max_by_key(|(_, l)| l.pending_len) else { break };
            let before = lane.pending_len;
            let name = name.clone();
            while lane.pending_len > before / 2 {
                lane.settle_first(&name, &ctx);
            }
            self.pending = self.pending.saturating_sub(before - lane.pending_len);
        }
    }
}

pub(crate) fn verify_lights(lights: Vec<Light>, opts: &Options) -> Report {
    let mut ingest = Ingest::new(opts, true);
    for l in lights {
        ingest.add(l);
    }
    verify_ingested(ingest, opts)
}

pub(crate) fn verify_ingested(ingest: Ingest<'_>, opts: &Options) -> Report {
    let checkpoints = &opts.checkpoints[..];
    let ctx = ingest.ctx();
    let Ingest { mut breaks, lanes, .. } = ingest;
    let mut lanes: BTreeMap<String, crate::lane::Lane> = lanes.into_iter().collect();
    let mut unreadable = Vec::new();
    for (name, lane) in lanes.iter_mut() {
        lane.flush(name, &ctx);
    }

    // Losses that one emitter declares for another (valid events only).
    let mut elsewhere: BTreeMap<String, Vec<Foreign>> = BTreeMap::new();
    for lane in lanes.values_mut() {
        for (target, f) in std::mem::take(&mut lane.declares) {
            elsewhere.entry(target).or_default().push(f);
        }
    }
    if let Some((i, n)) = opts.shard {
        // Chains of other shards came only for the gaps they declare here.
        lanes.retain(|e, _| shard_of(e, n) == i);
        elsewhere.retain(|e, _| shard_of(e, n) == i);
    }
    for target in elsewhere.keys() {
        // Every event of that emitter lost: it still gets its line.
        lanes.entry(target.clone()).or_insert_with(|| crate::lane::Lane::new(target, &ctx));
    }

    let mut checked: BTreeMap<String, Checked> = lanes
        .iter_mut()
        .map(|(name, l)| {
            let c = Checked {
                facts: std::mem::take(&mut l.facts),
                last_seq: l.last.map_or(0, |(s, _)| s),
                empty: l.last.is_none(),
                declared_elsewhere: Vec::new(),
            };
            (name.clone(), c)
        })
        .collect();

    // A chain anchored by an external checkpoint cannot lose events
    // unnoticed; a gap in it counts as declared by another emitter only when
    // that emitter's chain is anchored too, past its `loss` event (anyone can
    // write a chain that declares someone else's gap).
    // A chain is anchored when a checkpoint is about it, whether or not it
    // holds (a deleted tail makes it fail to hold); a declaring chain counts
    // as attested only up to a checkpoint that holds.
    let mut anchored: HashSet<String> = HashSet::new();
    let mut attested: HashMap<String, u64> = HashMap::new();
    for (i, cp) in checkpoints.iter().enumerate() {
        if let Some((name, c)) = resolve_checkpoint(i, cp, &checked) {
            anchored.insert(name.clone());
            if checkpoint_holds(i, cp, c) {
                let head = attested.entry(name.clone()).or_insert(cp.seq);
                *head = (*head).max(cp.seq);
            }
        }
    }

    let mut emitters = Vec::new();
    for (name, lane) in lanes {
        let foreign = elsewhere.remove(&name).unwrap_or_default();
        let (keep, drop): (Vec<Foreign>, Vec<Foreign>) = if anchored.contains(&name) {
            foreign.into_iter().partition(|f| attested.get(&f.by).is_some_and(|head| *head >= f.at))
        } else {
            (foreign, Vec::new())
        };
        let mut declared: Vec<(u64, u64)> =
            lane.own_losses.iter().copied().chain(keep.iter().map(|f| (f.first, f.last))).collect();
        declared.sort_unstable();
        declared.dedup();
        let last_signed = lane.last_signed();
        let mut own = lane.breaks;
        for &(a, b) in &lane.gaps {
            report_gap(a, b, &declared, &mut |seq, problem, mut detail: String| {
                if let Some(f) = drop.iter().find(|f| f.first <= seq && seq <= f.last) {
                    detail.push_str(&format!(
                        " (declared only by {} at seq {}, which no checkpoint attests: not accepted for an anchored chain)",
                        f.by, f.at
                    ));
                }
                own.push(Break { emitter: name.clone(), seq, problem, detail });
            });
        }
        if lane.unplaced > 0 {
            unreadable.push(format!(
                "emitter {name}: {} events came after their seq had been checked (more than {} events out of order, \
                 or a copy more than {} events late within one source): not placed; sort the input, or give the \
                 copies as a separate source",
                lane.unplaced,
                crate::lane::WINDOW,
                crate::lane::RING
            ));
        }
        breaks.extend(own);
        let present_though_declared = overlap(&lane.runs, &declared);
        let mut declared_elsewhere: Vec<(u64, u64)> = keep.iter().map(|f| (f.first, f.last)).collect();
        declared_elsewhere.sort_unstable();
        if let Some(c) = checked.get_mut(&name) {
            c.declared_elsewhere = declared_elsewhere;
        }
        emitters.push(EmitterReport {
            emitter: name,
            events: lane.events,
            first_seq: lane.first_seq.unwrap_or(0),
            last_seq: lane.last.map_or(0, |(s, _)| s),
            head: lane.last.map(|(_, h)| h.hex().as_str().to_string()).unwrap_or_default(),
            declared_lost: declared,
            declared_by: keep.iter().map(|f| (f.first, f.last, f.by.clone())).collect(),
            duplicates: lane.duplicates,
            ended: lane.ended,
            last_time_ms: lane.last_time_ms,
            present_though_declared,
            unanchored: if last_signed.is_some() { lane.unanchored } else { lane.settled },
            last_signed,
            witness_lost: lane.witness_lost,
        });
    }

    for (i, cp) in checkpoints.iter().enumerate() {
        check_checkpoint(i, cp, &checked, &mut breaks);
    }

    // Open chains: no end record, and no external checkpoint that holds at
    // (or past) the last event.
    let open = emitters
        .iter()
        .filter(|e| !e.ended)
        .filter(|e| {
            let tail_anchored = checkpoints.iter().enumerate().any(|(i, cp)| {
                resolve_checkpoint(i, cp, &checked)
                    .is_some_and(|(n, c)| *n == e.emitter && cp.seq >= c.last_seq && checkpoint_holds(i, cp, c))
            });
            e.events == 0 || !tail_anchored
        })
        .map(|e| Open { emitter: e.emitter.clone(), last_seq: (e.events > 0).then_some(e.last_seq), live: false })
        .collect();

    breaks.sort_by(|a, b| (&a.emitter, a.seq).cmp(&(&b.emitter, b.seq)));
    Report { emitters, breaks, open, unreadable, shard: None, signatures_checked: !opts.keys.is_empty() }
}

/// How many seqs of `runs` the (sorted) `declared` ranges cover.
fn overlap(runs: &[(u64, u64)], declared: &[(u64, u64)]) -> u64 {
    // Merge overlapping declarations first: a seq counts once.
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for &(a, b) in declared {
        match merged.last_mut() {
            Some((_, y)) if a <= y.saturating_add(1) => *y = (*y).max(b),
            _ => merged.push((a, b)),
        }
    }
    let mut n = 0u64;
    for &(a, b) in runs {
        for &(x, y) in &merged {
            let (lo, hi) = (a.max(x), b.min(y));
            if lo <= hi {
                n = n.saturating_add((hi - lo).saturating_add(1));
            }
        }
    }
    n
}

pub(crate) fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn short<S: AsRef<str> + ?Sized>(h: &S) -> &str {
    let h = h.as_ref();
    h.get(..16).unwrap_or(h)
}

/// Reads the chain fields; reports a `malformed` break and returns None when
/// the event cannot be placed in a chain (no emitter or seq).
pub(crate) fn read_entry(ev: &Value, computed: Hx, emitter: Option<&str>, breaks: &mut Vec<Break>) -> Option<Entry> {
    let id = ev.get("id").and_then(Value::as_str).map(EventId::new);
    let who = || match &id {
        Some(id) => format!("event {id}"),
        None => "event without id".to_string(),
    };
    let chain = ev.get("chain");
    let seq = chain.and_then(|c| c.get("seq")).and_then(Value::as_u64);
    let mut malformed = |seq: Option<u64>, detail: String| {
        breaks.push(Break {
            emitter: emitter.unwrap_or("?").to_string(),
            seq: seq.unwrap_or(UNKNOWN_SEQ),
            problem: Problem::Malformed,
            detail,
        })
    };
    let Some(chain) = chain.filter(|c| c.is_object()) else {
        malformed(None, format!("{} has no chain object", who()));
        return None;
    };
    if emitter.is_none() {
        malformed(seq, format!("{} has no chain.emitter string", who()));
        return None;
    }
    let Some(seq) = seq else {
        malformed(None, format!("{} has no chain.seq (non-negative integer)", who()));
        return None;
    };
    let field = |k: &str| chain.get(k).and_then(Value::as_str).map(str::to_string);
    let (prev, hash) = (field("prev"), field("hash"));
    for (k, v) in [("prev", &prev), ("hash", &hash)] {
        if !v.as_deref().is_some_and(is_hash) {
            malformed(Some(seq), format!("{} has no chain.{k} of 64 lowercase hex digits", who()));
        }
    }
    let prev = prev.as_deref().and_then(Hx::parse);
    let hash = hash.as_deref().and_then(Hx::parse);
    let hash_ok = hash == Some(computed);
    let kind = ev.get("kind").and_then(Value::as_str).map(kind_of);
    let trail = ev.get("trail");
    let trail_u64 = |k: &str| trail.and_then(|t| t.get(k)).and_then(Value::as_u64);
    let witness = trail.and_then(|t| t.get("reason")).and_then(Value::as_str)
        == Some(proxy_audit_core::emitter::WITNESS_BUFFER_FULL);
    let (loss, witness_lost) = match (kind.as_deref(), trail_u64("first_seq"), trail_u64("last_seq")) {
        // Records the witness did not get: still in this chain, no gap in it.
        (Some("loss"), Some(a), Some(b)) if a <= b && witness => {
            (None, Some((a, b, trail_u64("lost_events").unwrap_or(0))))
        }
        (Some("loss"), Some(a), Some(b)) if a <= b => (Some((a, b)), None),
        _ => (None, None),
    };
    let loss_for = loss
        .and(trail.and_then(|t| t.get("emitter")).and_then(Value::as_str))
        .filter(|t| !t.is_empty() && Some(*t) != emitter)
        .map(str::to_string);
    let attests = match (kind.as_deref(), trail_u64("head_seq")) {
        (Some("checkpoint"), Some(s)) => {
            trail.and_then(|t| t.get("head_hash")).and_then(Value::as_str).and_then(Hx::parse).map(|h| Box::new((s, h)))
        }
        _ => None,
    };
    let end = attests.is_some() && trail.and_then(|t| t.get("reason")).and_then(Value::as_str) == Some("end");
    let time_ms = ev.get("time").and_then(Value::as_str).and_then(proxy_audit_core::timefmt::parse_rfc3339_millis);
    let signed = trail.and_then(|t| t.get("signature")).map(|sg| {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        Box::new(Signed {
            key_id: text(sg.get("key_id")),
            alg: text(sg.get("alg")),
            sig: text(sg.get("sig")),
            time: text(ev.get("time")),
        })
    });
    Some(Entry {
        seq,
        id,
        kind,
        prev,
        hash,
        computed,
        hash_ok,
        loss,
        loss_for,
        attests,
        end,
        time_ms,
        signed,
        witness_lost,
    })
}

pub(crate) fn describe(e: &Entry) -> String {
    match (&e.id, &e.kind) {
        (Some(id), Some(k)) => format!("{k} event {id}"),
        (Some(id), None) => format!("event {id}"),
        (None, Some(k)) => format!("{k} event"),
        (None, None) => "event".to_string(),
    }
}

/// Reports the parts of `a..=b` that no declared loss covers, one `missing`
/// break per contiguous range, at its first seq.
pub(crate) fn report_gap(a: u64, b: u64, declared: &[(u64, u64)], brk: &mut impl FnMut(u64, Problem, String)) {
    let mut from = a; // first seq not yet accounted for
    let mut done = false;
    for &(da, db) in declared {
        if done || da > b {
            break;
        }
        if db < from {
            continue;
        }
        if da > from {
            missing_range(from, da - 1, brk);
        }
        match db.checked_add(1) {
            Some(next) if db < b => from = next,
            _ => done = true,
        }
    }
    if !done && from <= b {
        missing_range(from, b, brk);
    }
}

/// Whether the declared losses cover every seq of `a..=b`.
pub(crate) fn covered(a: u64, b: u64, declared: &[(u64, u64)]) -> bool {
    let mut missing = false;
    report_gap(a, b, declared, &mut |_, _, _| missing = true);
    !missing
}

pub(crate) fn missing_range(x: u64, y: u64, brk: &mut impl FnMut(u64, Problem, String)) {
    let detail = if x == y {
        format!("seq {x} absent, no loss event declares it")
    } else {
        let n = (y - x).saturating_add(1);
        format!("seq {x}..{y} absent ({n} events), no loss event declares them")
    };
    brk(x, Problem::Missing, detail);
}

pub(crate) fn checkpoint_holds(i: usize, cp: &Checkpoint, c: &Checked) -> bool {
    let Some(want) = Hx::parse(&cp.hash) else { return false };
    let f = c.facts.get(&i).copied().unwrap_or_default();
    f.at == Some(want) || f.next_prev == Some(Some(want))
}

fn has_seq(i: usize, c: &Checked) -> bool {
    c.facts.get(&i).is_some_and(|f| f.at.is_some())
}

/// The emitter a checkpoint is about: the one it names; without a name, the
/// one whose chain holds that hash at that seq, else the only candidate.
pub(crate) fn resolve_checkpoint<'a>(
    i: usize,
    cp: &Checkpoint,
    checked: &'a BTreeMap<String, Checked>,
) -> Option<(&'a String, &'a Checked)> {
    if let Some(e) = &cp.emitter {
        return checked.get_key_value(e);
    }
    let at_seq = || checked.iter().filter(|(_, c)| has_seq(i, c));
    checked
        .iter()
        .find(|(_, c)| checkpoint_holds(i, cp, c))
        .or_else(|| (checked.len() == 1).then(|| checked.iter().next()).flatten())
        .or_else(|| (at_seq().count() == 1).then(|| at_seq().next()).flatten())
        .or_else(|| {
            let mut short_ones = checked.iter().filter(|(_, c)| c.last_seq < cp.seq);
            match (short_ones.next(), short_ones.next(), at_seq().next()) {
                (Some(one), None, None) => Some(one),
                _ => None,
            }
        })
}

pub(crate) fn check_checkpoint(
    i: usize,
    cp: &Checkpoint,
    checked: &BTreeMap<String, Checked>,
    breaks: &mut Vec<Break>,
) {
    let label = match &cp.emitter {
        Some(e) => format!("checkpoint {e}@{}:{}…", cp.seq, short(&cp.hash)),
        None => format!("checkpoint {}:{}…", cp.seq, short(&cp.hash)),
    };
    let emitter = resolve_checkpoint(i, cp, checked);
    if let (None, Some(e)) = (emitter, &cp.emitter) {
        breaks.push(Break {
            emitter: e.clone(),
            seq: 0,
            problem: Problem::Truncated,
            detail: format!("{label}: no events of this emitter in the input"),
        });
        return;
    }
    let Some((name, c)) = emitter else {
        let problem =
            if checked.values().all(|c| c.last_seq < cp.seq) { Problem::Truncated } else { Problem::Modified };
        breaks.push(Break {
            emitter: "?".into(),
            seq: cp.seq,
            problem,
            detail: format!(
                "{label}: no emitter among {} holds this hash at this seq (give EMITTER@SEQ:HASH to name one)",
                checked.len()
            ),
        });
        return;
    };
    let mut brk =
        |seq: u64, problem: Problem, detail: String| breaks.push(Break { emitter: name.clone(), seq, problem, detail });
    if checkpoint_holds(i, cp, c) {
        return;
    }
    let f = c.facts.get(&i).copied().unwrap_or_default();
    if let Some(at) = f.at {
        brk(cp.seq, Problem::Modified, format!("{label}, but the event there has hash {}…", at.short()));
    } else if cp.seq > c.last_seq || c.empty {
        let first = if c.empty { 0 } else { c.last_seq.saturating_add(1) };
        if covered(first, cp.seq, &c.declared_elsewhere) {
            // The tail is gone, but declared lost: reported as a LOSS line.
            return;
        }
        brk(
            first,
            Problem::Truncated,
            format!(
                "{label}, but the chain ends at seq {}: seq {first}..{} absent (tail truncated)",
                c.last_seq, cp.seq
            ),
        );
    } else if let Some(prev) = f.next_prev {
        // The checkpointed event itself is absent (reported as a gap or a
        // declared loss), but its successor links elsewhere.
        brk(
            cp.seq,
            Problem::Modified,
            format!(
                "{label}, but seq {} links to {}…",
                cp.seq.saturating_add(1),
                prev.map_or("?".to_string(), |p| p.short())
            ),
        );
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    /// What is kept per emitter does not grow with its events: the last
    /// RING events, nothing waiting, no history for one source; with
    /// history, 8 bytes per seq.
    #[test]
    fn what_is_kept_is_bounded_by_the_emitters() {
        let trail = crate::synthetic::trail(6_000, 3, None);
        for history in [false, true] {
            let opts = Options { history, ..Options::default() };
            let mut s = Session::new(&opts);
            s.add("t", &trail);
            let kept: Vec<(usize, usize, usize)> = s.ingest.lanes.values().map(|l| l.retained()).collect();
            assert_eq!(kept.len(), 3);
            for (recent, hist, pending) in kept {
                assert_eq!((recent, pending), (crate::lane::RING, 0));
                // 2,000 events and 2 checkpoints a chain, its start and end: 2,004 seqs.
                assert_eq!(hist, if history { 2_004 } else { 0 });
            }
            let r = s.finish();
            assert_eq!(r.exit_code(), 0, "{}", r.render());
        }
    }
}

#[cfg(test)]
mod mutation_tests {
    /// Bytes of a valid trail flipped, cut, duplicated and moved at random:
    /// the verifier never panics (overflow checks on in tests), and the
    /// untouched trail verifies.
    #[test]
    fn mangled_trails_never_panic() {
        let trail = crate::synthetic::trail(300, 2, None);
        assert_eq!(crate::verify_inputs(&[("t", &trail)], &[]).exit_code(), 0);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n.max(1) as u64) as usize
        };
        for round in 0..150 {
            let mut t = trail.clone();
            for _ in 0..1 + next(8) {
                let at = next(t.len());
                match next(5) {
                    0 => t[at] = b"{}[]\",:0123456789x\n"[next(17)],
                    1 => t[at] ^= 1 << next(8),
                    2 => {
                        let end = (at + next(3000)).min(t.len());
                        t.drain(at..end);
                    }
                    3 => {
                        let end = (at + next(3000)).min(t.len());
                        let piece = t[at..end].to_vec();
                        let to = next(t.len());
                        t.splice(to..to, piece);
                    }
                    _ => {
                        let seq = format!("\"seq\":{}", [0, 1, u64::MAX, 1 << 40, 5_000][next(5)]);
                        let to = next(t.len());
                        t.splice(to..to, seq.into_bytes());
                    }
                }
            }
            let opts = crate::Options { history: round % 2 == 0, threads: 1 + round % 3, ..Default::default() };
            let r = crate::verify_sources(&[("t", &t)], &opts);
            let _ = (r.render(), r.exit_code(), r.to_json());
        }
    }
}

#[cfg(test)]
mod signature_tests {
    use super::*;
    use proxy_audit_core::config::Config;
    use proxy_audit_core::emitter::{Emitter, TrailOptions};
    use proxy_audit_core::signing::{key_files, Signer};
    use serde_json::json;

    fn key(id: &str, seed: u8) -> (Signer, PublicKey) {
        let (private, public) = key_files(id, [seed; 32]);
        (Signer::from_key_text(id, &private).unwrap(), PublicKey::parse(&public).unwrap())
    }

    /// A signed chain of `n` access events, a checkpoint every 4 records, ended.
    fn chain(name: &str, signer: &Signer, n: u64) -> Vec<String> {
        let cfg = Config::parse(br#"{"audit": {"exporter": {"max_buffered_events": 100000}}}"#).unwrap();
        let trail = TrailOptions {
            checkpoint_interval_ms: 60_000,
            checkpoint_every_events: 4,
            signer: Some(signer.clone()),
            witness: None,
        };
        let mut seed = [0u8; 32];
        for (i, b) in name.bytes().enumerate() {
            seed[i % 32] ^= b.wrapping_add(i as u8);
        }
        let mut e = Emitter::start_with(name.into(), seed, &cfg.audit.exporter, trail, 1_000, "start");
        for i in 0..n {
            let id = e.next_id();
            let mut ev = proxy_audit_core::event::trail_event(id, 1_001 + i, "access", json!({}));
            ev.remove("trail");
            ev.insert("outcome".into(), json!({"status_code": 200}));
            e.emit(ev, 1_001 + i);
        }
        e.end(2_000);
        let mut lines = Vec::new();
        while let Some(b) = e.exporter.next_batch(2_000) {
            lines.extend(String::from_utf8_lossy(&b.body).lines().map(str::to_string));
            e.exporter.delivered();
        }
        lines
    }

    fn run(lines: &[String], keys: &[PublicKey]) -> Report {
        let text = lines.join("\n");
        let opts = Options { keys: keys.to_vec(), ..Options::default() };
        verify_sources(&[("t.ndjson", text.as_bytes())], &opts)
    }

    fn problems(r: &Report) -> Vec<(u64, Problem)> {
        r.breaks.iter().map(|b| (b.seq, b.problem)).collect()
    }

    /// Re-seals every line from `from` on (an attacker with write access to
    /// the store rebuilding the chain after an edit); `heads`: the
    /// checkpoints' `trail.head_hash` too.
    fn rehash(lines: &mut [String], from: usize, heads: bool) {
        let mut prev: Option<String> = None;
        for (i, line) in lines.iter_mut().enumerate() {
            let mut v: Value = serde_json::from_str(line).unwrap();
            if i >= from {
                if let Some(p) = &prev {
                    v["chain"]["prev"] = json!(p);
                    if heads && v["kind"] == "checkpoint" {
                        v["trail"]["head_hash"] = json!(p);
                    }
                }
                let h = compute_hash(&v);
                v["chain"]["hash"] = json!(h);
                *line = proxy_audit_core::jcs::canonicalize(&v);
            }
            prev = v["chain"]["hash"].as_str().map(str::to_string);
        }
    }

    #[test]
    fn an_untouched_signed_chain_verifies_and_reports_its_anchor() {
        let (signer, public) = key("k1", 1);
        let lines = chain("node/a/1", &signer, 10);
        let r = run(&lines, std::slice::from_ref(&public));
        assert_eq!(r.exit_code(), 0, "{}", r.render());
        let e = &r.emitters[0];
        // 10 events, checkpoints after 4 and 8 records, end: seq 0..13.
        assert_eq!((e.events, e.last_signed.clone(), e.unanchored), (14, Some((13, "k1".to_string())), 0));
        assert!(r
            .render()
            .contains("SIGNED emitter node/a/1: last signed seq 13 (key k1), 0 events after it unanchored"));
        // Without keys, as before: nothing about signatures.
        let r = run(&lines, &[]);
        assert_eq!(r.exit_code(), 0);
        assert!(!r.render().contains("SIGNED"));
    }

    #[test]
    fn an_edit_rehashed_to_the_end_fails_as_rewritten() {
        let (signer, public) = key("k1", 1);
        let mut lines = chain("node/a/1", &signer, 10);
        // Seq 6 (an access event between the checkpoints at 5 and 10) edited, every later hash recomputed.
        let mut v: Value = serde_json::from_str(&lines[6]).unwrap();
        v["outcome"]["status_code"] = json!(403);
        lines[6] = proxy_audit_core::jcs::canonicalize(&v);
        let edited = lines.clone();
        // Signed heads left as they were: they no longer match the chain.
        rehash(&mut lines, 6, false);
        let r = run(&lines, std::slice::from_ref(&public));
        assert_eq!(problems(&r), vec![(6, Problem::Rewritten)], "{}", r.render());
        assert_eq!(r.breaks[0].emitter, "node/a/1");
        assert!(r.breaks[0].detail.contains("seq 6..9 was rewritten"), "{}", r.breaks[0].detail);
        // Heads rewritten too: the hashes alone hold, the signatures do not.
        let mut lines = edited;
        rehash(&mut lines, 6, true);
        assert_eq!(run(&lines, &[]).exit_code(), 0, "{}", run(&lines, &[]).render());
        let r = run(&lines, std::slice::from_ref(&public));
        assert_eq!(problems(&r), vec![(10, Problem::Signature), (13, Problem::Signature)], "{}", r.render());
    }

    #[test]
    fn stripped_altered_and_unknown_signatures_fail() {
        let (signer, public) = key("k1", 1);
        let lines = chain("node/a/1", &signer, 10);
        let at = 5; // the checkpoint after 4 events
        assert!(lines[at].contains("\"checkpoint\""));
        for (what, f) in [
            (
                "stripped",
                Box::new(|v: &mut Value| {
                    v["trail"].as_object_mut().unwrap().remove("signature");
                }) as Box<dyn Fn(&mut Value)>,
            ),
            (
                "altered",
                Box::new(|v: &mut Value| {
                    let sig = v["trail"]["signature"]["sig"].as_str().unwrap().to_string();
                    let rest = sig.get(1..).unwrap_or_default();
                    let flipped = if sig.starts_with('A') { format!("B{rest}") } else { format!("A{rest}") };
                    v["trail"]["signature"]["sig"] = json!(flipped);
                }),
            ),
            ("time", Box::new(|v: &mut Value| v["time"] = json!("2030-01-01T00:00:00.000Z"))),
        ] {
            let mut l = lines.clone();
            let mut v: Value = serde_json::from_str(&l[at]).unwrap();
            f(&mut v);
            l[at] = proxy_audit_core::jcs::canonicalize(&v);
            rehash(&mut l, at, true);
            let r = run(&l, std::slice::from_ref(&public));
            // The later signed heads were rewritten along: their signatures fail too.
            assert_eq!(
                problems(&r),
                vec![(at as u64, Problem::Signature), (10, Problem::Signature), (13, Problem::Signature)],
                "{what}: {}",
                r.render()
            );
        }
        // A key nobody gave.
        let (_, other) = key("k2", 2);
        let r = run(&lines, &[other]);
        assert!(
            r.breaks.iter().all(|b| b.problem == Problem::Signature && b.detail.contains("\"k1\"")),
            "{}",
            r.render()
        );
        assert_eq!(r.breaks.len(), 4, "chain start, two checkpoints, end: {}", r.render());
        // An unsigned chain (made up, or signing off) with keys given.
        let unsigned = {
            let cfg = Config::parse(b"{}").unwrap();
            let mut e = Emitter::start("node/x/9".into(), [3; 32], &cfg.audit.exporter, 60_000, 1_000, "start");
            e.end(1_500);
            let mut out = Vec::new();
            while let Some(b) = e.exporter.next_batch(2_000) {
                out.extend(String::from_utf8_lossy(&b.body).lines().map(str::to_string));
                e.exporter.delivered();
            }
            out
        };
        let r = run(&unsigned, std::slice::from_ref(&public));
        assert_eq!(problems(&r), vec![(0, Problem::Signature), (1, Problem::Signature)], "{}", r.render());
    }

    #[test]
    fn key_rotation_needs_every_key() {
        let (k1, p1) = key("k1", 1);
        let (k2, p2) = key("k2", 2);
        let mut lines = chain("node/a/1", &k1, 5);
        lines.extend(chain("node/a/2", &k2, 5));
        assert_eq!(run(&lines, &[p1.clone(), p2]).exit_code(), 0);
        let r = run(&lines, &[p1]);
        assert_eq!(r.exit_code(), 1);
        assert!(r.breaks.iter().all(|b| b.emitter == "node/a/2" && b.problem == Problem::Signature), "{}", r.render());
    }

    #[test]
    fn shards_partition_emitters_and_merge_into_one_verdict() {
        let (k1, p1) = key("k1", 1);
        let mut lines = Vec::new();
        for i in 0..6 {
            lines.extend(chain(&format!("node/{i}/e"), &k1, 3));
        }
        // One broken chain.
        lines.retain(|l| !(l.contains("\"node/4/e\"") && l.contains("\"seq\":2}")));
        let text = lines.join("\n");
        let whole =
            verify_sources(&[("t", text.as_bytes())], &Options { keys: vec![p1.clone()], ..Options::default() });
        let parts: Vec<Report> = (0..3)
            .map(|i| {
                let opts = Options { keys: vec![p1.clone()], shard: Some((i, 3)), ..Options::default() };
                let r = verify_sources(&[("t", text.as_bytes())], &opts);
                Report::from_json(&r.to_json()).unwrap()
            })
            .collect();
        assert_eq!(parts.iter().map(|r| r.emitters.len()).sum::<usize>(), 6);
        let merged = Report::merge(parts.clone());
        assert_eq!(merged.emitters, whole.emitters);
        assert_eq!(merged.breaks, whole.breaks);
        assert_eq!((merged.exit_code(), whole.exit_code()), (1, 1));
        // A missing shard makes the merge unreadable, not OK.
        let r = Report::merge(parts[..2].to_vec());
        assert_eq!(r.exit_code(), 2);
        assert!(r.unreadable.iter().any(|u| u.contains("no report for shard 2/3")), "{:?}", r.unreadable);
        assert_eq!(shard_of("node/1/e", 1), 0);
        // Names that differ in one character spread over the shards.
        let mut per = [0u32; 4];
        for k in 0..400 {
            per[shard_of(&format!("node-{k}/proxy_audit/{k:016x}"), 4) as usize] += 1;
        }
        assert!(per.iter().all(|c| (70..=130).contains(c)), "{per:?}");
    }
}
