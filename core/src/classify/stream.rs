//! Streaming (SSE) redaction without buffering the whole stream.
//!
//! Frames come from [`crate::sse::SseParser`], or, for a stream that starts
//! with a zero byte, from AWS `vnd.amazon.eventstream` messages (Bedrock
//! `InvokeModelWithResponseStream`, whose JSON payload wraps the model's chunk
//! as base64 in `bytes`, and `ConverseStream`): their JSON is read as a
//! frame's data, and a changed message is re-encoded with its string headers
//! and fresh CRCs. For each `data:` JSON frame the redactor finds the
//! streamed text piece where the provider field table
//! ([`crate::ai::fields`], shared with the response tracker) says it is:
//! OpenAI Chat Completions `choices[i].delta.content` (and tool-call
//! arguments), Responses `response.*.delta`, Anthropic `content_block_delta`,
//! Cohere v2 `content-delta`, Gemini parts, Bedrock ConverseStream deltas,
//! Titan, Llama, Cohere and Mistral chunks inside Bedrock's `bytes`.
//!
//! Pieces of one logical text (a *channel*: per choice / content block /
//! candidate) are concatenated; the redactor holds back only the frames whose
//! text may still be part of a value: text is released up to the last point
//! where no detectable value can still be growing (`detect::open_tail`: the
//! trailing partial token, digit run or word; the tokens joined by single
//! spaces that a value in one of its layouts may still continue: a spaced
//! number, IBAN or NINO, a name, an address, a date, a run of spaced single
//! characters; an open PEM header), and any match that crosses that point,
//! reaches the end (an unterminated PEM block) or may still be continued
//! (`415 555 2671 x…`, `Maria Lopez G…`). The decided text before (kept as
//! context) counts: after a label any layout of digit groups may be a value.
//! A channel's text ends with a frame that says so (a choice's finish reason,
//! `[DONE]`, `message_stop`...): its held word goes out with that frame.
//! Custom rules whose matches may hold whitespace add the last 256 bytes. A
//! frame whose text ends at such a point goes out in the same call it came
//! in. A match spread
//! over several frames is rewritten in the frame where it starts and removed
//! from the others. Every other string of a JSON frame, and non-JSON `data:`,
//! is scanned within its own event. Unchanged frames are released byte for
//! byte; changed ones are re-encoded with [`crate::sse::encode_frame`] (the
//! `event:` name is kept; `id:`/`retry:` lines and comments of a rewritten
//! frame are dropped). Pending bytes are bounded by `MAX_PENDING`: past it
//! the window is flushed with what is known.
//!
//! When a `block` action fires, nothing more is released (not even held
//! frames): [`StreamRedactor::blocked`] tells the caller to end the stream.

use super::detect::Hit;
use super::{json, Actions, Category, Classifier, Finding, Sink, Tally};
use crate::ai::fields;
use crate::ai::EventStreamParser;
use crate::sse::{encode_frame, Shape, SseFrame, SseParser};
use serde_json::Value;
use std::collections::VecDeque;

mod template;

/// Frames up to this size are parsed; larger ones are scanned as text. The
/// response tracker reads the same frames (see [`StreamRedactor::push_observed`]),
/// so this is its bound too: a final event carrying a whole long answer and
/// its usage (OpenAI Responses `response.completed`) must still parse.
const MAX_FRAME: usize = crate::ai::MAX_JSON_BYTES;
const MAX_PENDING: usize = 256 * 1024;
const MAX_TOKEN_HOLD: usize = 16 * 1024;
/// Decided text kept as context for the next decision: context words are
/// looked for up to 48 bytes before a value, an AWS secret key up to 120
/// bytes after its `aws`/`secret` word.
const CTX_KEEP: usize = 128;
#[derive(Debug, Clone)]
enum Seg {
    Key(std::borrow::Cow<'static, str>),
    Idx(usize),
}

/// Where a string is in an event's value: shared (not copied) by the
/// walks' findings, the pieces and the template.
type Ptr = std::rc::Rc<[Seg]>;

struct Piece {
    chan: usize,
    ptr: Ptr,
    start: usize,
    end: usize,
    /// Final text once decided.
    done: Option<Option<String>>,
}

/// How a frame goes back on the wire when it changed.
enum Wire {
    Sse,
    /// An AWS eventstream message: its header bytes as they came (every
    /// header type kept), and the outer JSON object when the frame's data was
    /// base64 in its `bytes` member.
    Aws {
        header_bytes: Vec<u8>,
        outer: Option<serde_json::Map<String, Value>>,
    },
}

/// Where the stream's frames come from: decided by its first byte.
enum Input {
    Unknown,
    Sse(SseParser),
    Aws(EventStreamParser),
}

struct Pending {
    frame: SseFrame,
    wire: Wire,
    json: Option<Value>,
    /// New `data` for a non-JSON frame (or new raw bytes for an oversize one).
    replaced: Option<Vec<u8>>,
    changed: bool,
    /// The frame's streamed strings: its text piece and every other string
    /// under its delta, each joined with the same field of earlier frames.
    pieces: Vec<Piece>,
    /// The stream's end marker (`[DONE]`, `message_stop`...): held until the
    /// upstream's stream ends, so that a client that stops reading at it
    /// (the SDKs do) cannot end the exchange before the upstream does.
    end_marker: bool,
    /// The parsed data went back to the stream's [`template::Template`]
    /// (unchanged, it is the parse of `frame.data`): whether it was the
    /// usage-only chunk and whether it had `"usage": null`, for `emit`.
    lent: Option<(bool, bool)>,
    /// For lent data that is serde_json's own writing of its parse but for
    /// the known text piece's literal: that literal's span and the piece's
    /// pointer. A frame whose only changed piece is that one is written
    /// with the new literal in that span, which is what parsing it again
    /// and writing the parse would give.
    splice: Option<(usize, usize, Ptr)>,
}

impl Pending {
    fn new(frame: SseFrame, wire: Wire) -> Self {
        Pending {
            frame,
            wire,
            json: None,
            replaced: None,
            changed: false,
            pieces: Vec::new(),
            end_marker: false,
            lent: None,
            splice: None,
        }
    }
}

struct Chan {
    key: String,
    loc: String,
    /// Original text of the undecided pieces.
    buf: String,
    /// Tail of the decided text, for word boundaries and context words.
    ctx: String,
    /// A PEM block is open in `ctx` (its BEGIN line is there, its END line
    /// not yet; only a final or forced decision releases one): then no new
    /// text is plain words.
    pem_open: bool,
    /// A piece arrived since the channel was last decided. Deciding again
    /// with nothing new decides nothing more, and rescanning a long held
    /// token on every network chunk (a slow drip) was quadratic.
    fresh: bool,
    /// A string field outside the text channels and deltas: scanned with
    /// its member name as context, joined only over consecutive events that
    /// carry it, and not at all once it repeats itself.
    other: Option<Other>,
}

struct Other {
    member: String,
    icd: bool,
    last: String,
    constant: bool,
}

/// Text channels tracked per stream (choices, content blocks, tool calls).
const MAX_CHANNELS: usize = 64;

/// Incremental SSE redactor. Owns no classifier: pass the same one to every call.
pub struct StreamRedactor {
    actions: Actions,
    input: Input,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    chans: Vec<Chan>,
    tally: Tally,
    /// `classification.restore`: pseudonym tokens of the request to put back
    /// in the streamed text, by token, even when the model's output splits a
    /// token across events (it usually does: tokenizers cut `pseu_…` up).
    restore: std::collections::HashMap<String, String>,
    /// Bytes of a broken eventstream, held for [`Self::broken`].
    broken_tail: Vec<u8>,
    /// The filter added `stream_options.include_usage`: take back what it
    /// changed (see [`crate::ai::stream_usage`]).
    injected_usage: bool,
    /// Channels whose text ended with a frame just read (a choice's
    /// `finish_reason`, `[DONE]`, `message_stop`...), by location prefix
    /// (`""`: every channel): their last word cannot grow any more.
    ending: Vec<String>,
    /// Field channels whose run of consecutive events ended (see [`Other`]).
    ending_chans: Vec<usize>,
    /// The last events (their streamed strings taken out) whose walk found
    /// nothing: see `ingest_json`.
    clean: VecDeque<Value>,
    /// The last SSE event's parse, to read the next one from (see
    /// [`template`]).
    template: Option<template::Template>,
    /// `decide`'s buffer (context and text joined), kept between calls.
    scan: String,
    /// What `ingest_json` found in the last event.
    walked: Option<Walked>,
    /// The SSE parser's list of frames, empty between calls.
    frames: Vec<(Vec<u8>, Shape)>,
    /// Tests: the decision step reads its whole context for values, as it
    /// did before it resumed ([`super::detect::resume_point`]).
    #[cfg(test)]
    pub(super) whole_context: bool,
}

/// What `ingest_json`'s walks found in an event: its streamed strings (the
/// known text piece first, when there is one, then the strings under its
/// delta) as (pointer, channel key, location); where its known text piece
/// is; its other string fields (before the per-stream bound); whether it
/// was found clean. None of it reads the known text piece's string, so an
/// event that repeats this one but for that string has the same.
struct Walked {
    streamed: Vec<Streamed>,
    known: Option<Ptr>,
    others: Vec<Field>,
    clean: bool,
    /// [`ending_channels`] of the event: whether it ends the stream, and
    /// the channels' locations it ends.
    ends: (bool, Vec<String>),
}

/// A streamed string of [`Walked`]: its pointer, channel key and location,
/// and its channel once looked up (channels are only ever added, so a key's
/// channel does not change).
struct Streamed {
    ptr: Ptr,
    key: String,
    loc: String,
    chan: Option<usize>,
    /// Where the string is by [`positions`], once read in place from an
    /// event the walks did not change (the events that reuse them have the
    /// same structure).
    pos: Option<Vec<usize>>,
}

/// Clean events remembered, and the largest remembered.
const CLEAN_FRAMES: usize = 4;
const CLEAN_FRAME_BYTES: usize = 2048;

impl std::fmt::Debug for StreamRedactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRedactor")
            .field("pending_frames", &self.pending.len())
            .field("pending_bytes", &self.pending_bytes)
            .field("blocked", &self.tally.blocked)
            .finish()
    }
}

/// Sees each complete SSE frame and its parsed JSON data (`None` when the
/// data is absent, `[DONE]`, not JSON, or the frame too large to parse), and
/// whether that data repeats the last event shown parsed everywhere but in
/// the string of its text piece (the piece [`fields::stream_piece`] found in
/// that event; read from the stream's [`template::Template`]).
pub type Observer<'a> = dyn FnMut(&SseFrame, Option<&Value>, bool) + 'a;

impl StreamRedactor {
    pub fn new(actions: Actions) -> Self {
        StreamRedactor {
            actions,
            input: Input::Unknown,
            pending: VecDeque::new(),
            pending_bytes: 0,
            chans: Vec::new(),
            tally: Tally::default(),
            restore: std::collections::HashMap::new(),
            broken_tail: Vec::new(),
            injected_usage: false,
            ending: Vec::new(),
            ending_chans: Vec::new(),
            clean: VecDeque::new(),
            template: None,
            scan: String::new(),
            walked: None,
            frames: Vec::new(),
            #[cfg(test)]
            whole_context: false,
        }
    }

    /// Where the decision step looks for values again in `scan`, whose new
    /// text starts at `off`.
    fn resume(&self, scan: &str, off: usize) -> usize {
        #[cfg(test)]
        if self.whole_context {
            return 0;
        }
        super::detect::resume_point(scan.as_bytes(), off)
    }

    /// The filter added `stream_options.include_usage` to the request: the
    /// usage-only chunk is withheld (after `observe` saw it) and the
    /// `"usage": null` of other chunks cut out, so the client gets the stream
    /// it asked for.
    pub fn take_back_injected_usage(&mut self) {
        self.injected_usage = true;
    }

    /// Puts these `(token, original)` pseudonyms back in the streamed text
    /// (the request's, with `classification.restore`).
    pub fn set_restore(&mut self, pseudonyms: &[(String, String)]) {
        self.restore = pseudonyms.iter().cloned().collect();
    }

    /// Feeds one network chunk; returns the bytes that are safe to release now.
    pub fn push(&mut self, cl: &Classifier, chunk: &[u8]) -> Vec<u8> {
        self.push_observed(cl, chunk, &mut |_, _, _| {})
    }

    /// [`Self::push`], showing each complete frame to `observe` as it
    /// arrives, with its JSON data parsed (before any rewriting) when it is
    /// JSON: the response tracker reads the same parse instead of its own.
    pub fn push_observed(&mut self, cl: &Classifier, chunk: &[u8], observe: &mut Observer<'_>) -> Vec<u8> {
        if self.tally.blocked.is_some() {
            return Vec::new();
        }
        if matches!(self.input, Input::Unknown) {
            // Not told by a content-type: an eventstream message starts with
            // its length (< 16 MiB), a zero byte, which no SSE stream does.
            let Some(&first) = chunk.first() else { return Vec::new() };
            self.set_aws(first == 0);
        }
        match &mut self.input {
            Input::Sse(p) => {
                // The frames' list is kept for the next chunk.
                let mut frames = std::mem::take(&mut self.frames);
                p.push_raw(chunk, &mut frames);
                crate::stages::mark("SSE framing");
                for (raw, shape) in frames.drain(..) {
                    // A one-line event that the template reads is not
                    // checked to be UTF-8 outside its text piece (see
                    // `Template::read_bytes`); any other is read as a frame.
                    let read = match shape {
                        Shape::OneLine => self
                            .template
                            .as_mut()
                            .and_then(|t| crate::sse::one_line_data(&raw).and_then(|d| t.read_bytes(d))),
                        _ => None,
                    };
                    match read {
                        Some((data, v)) => {
                            let frame = SseFrame { raw, event: None, data, has_data: true, oversize: false };
                            self.ingest_read(cl, frame, Some(v), observe);
                        }
                        None => self.ingest_read(cl, crate::sse::frame(raw, shape), None, observe),
                    }
                }
                crate::stages::mark("ingest: strings joined");
                self.frames = frames;
            }
            Input::Aws(p) => {
                if p.error.is_some() {
                    // Past an error (what was held went out then), the rest
                    // is held and scanned as text: the client fails on the
                    // stream as it would without the filter, but no value in
                    // it goes out unredacted.
                    return self.broken(cl, chunk, false);
                }
                let mut msgs = Vec::new();
                p.push(chunk, &mut msgs);
                let rest = p.error.is_some().then(|| p.take_rest());
                for m in msgs {
                    self.ingest_aws(cl, m);
                }
                if let Some(rest) = rest {
                    let mut out = self.release(cl, true);
                    out.extend(self.broken(cl, &rest, false));
                    return out;
                }
            }
            Input::Unknown => {}
        }
        let force = self.pending_bytes > MAX_PENDING;
        self.release(cl, force)
    }

    /// End of stream: releases everything still held.
    pub fn finish(&mut self, cl: &Classifier) -> Vec<u8> {
        self.finish_observed(cl, &mut |_, _, _| {})
    }

    /// [`Self::finish`] with an observer (see [`Self::push_observed`]).
    pub fn finish_observed(&mut self, cl: &Classifier, observe: &mut Observer<'_>) -> Vec<u8> {
        if self.tally.blocked.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        match &mut self.input {
            Input::Sse(p) => {
                let mut frames = Vec::new();
                p.finish(&mut frames);
                for f in frames {
                    self.ingest(cl, f, observe);
                }
            }
            // An unfinished message at the end: scanned as text.
            Input::Aws(p) => out = p.take_unfinished(),
            Input::Unknown => {}
        }
        let mut released = self.release(cl, true);
        released.extend(self.broken(cl, &out, true));
        released
    }

    pub fn findings(&self) -> Vec<Finding> {
        self.tally.findings.clone()
    }

    pub fn blocked(&self) -> Option<Category> {
        self.tally.blocked
    }

    /// `(token, original)` pairs of pseudonymized values (never log these).
    pub fn pseudonyms(&self) -> &[(String, String)] {
        &self.tally.pseudonyms
    }

    /// Bytes currently held back (parser tail + undecided frames).
    pub fn held_bytes(&self) -> usize {
        self.pending_bytes
            + self.broken_tail.len()
            + match &self.input {
                Input::Sse(p) => p.pending(),
                Input::Aws(p) => p.pending(),
                Input::Unknown => 0,
            }
    }

    fn sink<'c>(&mut self, cl: &'c Classifier) -> Sink<'c> {
        Sink::with_tally(cl, &self.actions, std::mem::take(&mut self.tally))
    }

    fn ingest(&mut self, cl: &Classifier, frame: SseFrame, observe: &mut Observer<'_>) {
        self.ingest_read(cl, frame, None, observe);
    }

    /// [`Self::ingest`]; `pre`: the frame's data already read from the
    /// template (its bytes, by `Template::read_bytes`).
    fn ingest_read(&mut self, cl: &Classifier, frame: SseFrame, pre: Option<Value>, observe: &mut Observer<'_>) {
        self.pending_bytes += frame.raw.len();
        let mut p = Pending::new(frame, Wire::Sse);
        // `read`: the event was read from the template, which is now this
        // event's (its value lent out).
        let mut read = pre.is_some();
        // (Trimmed once: the data is read as JSON untrimmed.)
        let trimmed = p.frame.data.trim();
        let (empty, done) = (trimmed.is_empty(), trimmed == "[DONE]");
        let parsed = if pre.is_some() {
            pre
        } else if p.frame.oversize || !p.frame.has_data || empty || done {
            None
        } else {
            match self.template.as_mut().and_then(|t| t.read(&p.frame.data)) {
                Some(v) => {
                    read = true;
                    Some(v)
                }
                None => serde_json::from_str::<Value>(&p.frame.data).ok(),
            }
        };
        crate::stages::mark("ingest: event read (template or parse)");
        observe(&p.frame, parsed.as_ref(), read);
        crate::stages::mark("model-call tracker");
        if p.frame.oversize || !p.frame.has_data {
            // Too large to parse, or no `data:` (comments, `id:`, unknown
            // fields): scan the raw bytes as text.
            let mut sink = self.sink(cl);
            let out = cl.text_into(&mut sink, &p.frame.raw, "$");
            self.tally = sink.t;
            if let Some(b) = out {
                p.replaced = Some(b);
                p.changed = true;
            }
            self.pending.push_back(p);
            return;
        }
        if done {
            self.ending.push(String::new());
            p.end_marker = true;
        }
        if !p.frame.has_data || empty || done {
            self.pending.push_back(p);
            return;
        }
        match parsed {
            Some(v) => {
                let known = self.ingest_json(cl, &mut p, v, read);
                self.lend(&mut p, known, read);
            }
            None => self.ingest_text(cl, &mut p),
        }
        self.pending.push_back(p);
    }

    /// An event's parse that `ingest_json` did not change is its data's
    /// parse: it becomes the template the next event is read from, and
    /// `emit` parses the data again only if a piece of it changes.
    fn lend(&mut self, p: &mut Pending, known: Option<Ptr>, read: bool) {
        let Some(ptr) = known.filter(|_| !p.changed) else {
            self.template = None;
            return;
        };
        let Some(v) = p.json.take() else {
            self.template = None;
            return;
        };
        let t = match self.template.take() {
            // A read event has its template's flags: they read no string.
            Some(mut t) if read => {
                if t.canonical.is_none() {
                    t.canonical = Some(serde_json::to_string(&v).is_ok_and(|w| w == p.frame.data));
                }
                t.restore(v);
                Ok(t)
            }
            reuse => {
                let flags = (
                    crate::ai::stream_usage::is_usage_only(&v),
                    fields::member(&v, "usage").is_some_and(Value::is_null),
                );
                template::Template::new(&p.frame.data, ptr.clone(), v, flags, reuse)
            }
        };
        match t {
            Ok(t) => {
                p.lent = Some(t.flags);
                p.splice = (t.canonical == Some(true)).then(|| (t.lit().0, t.lit().1, ptr));
                self.template = Some(t);
            }
            Err(v) => {
                p.json = Some(v);
                self.template = None;
            }
        }
    }

    /// One AWS eventstream message: its JSON payload (or the model chunk
    /// base64-wrapped in its `bytes`) is the frame's data and goes through the
    /// JSON path; any other payload (not JSON, not UTF-8, bad base64) is
    /// scanned as text, as SSE does with non-JSON `data:`.
    fn ingest_aws(&mut self, cl: &Classifier, m: crate::ai::Message) {
        use base64::Engine;
        self.pending_bytes += m.raw.len();
        let event = m.header(":event-type").map(str::to_string);
        let outer: Option<Value> = serde_json::from_slice(&m.payload).ok();
        let (data, outer) = match outer {
            Some(Value::Object(o)) => match o.get("bytes").and_then(Value::as_str) {
                Some(b64) => match base64::engine::general_purpose::STANDARD.decode(b64) {
                    Ok(inner) => (String::from_utf8_lossy(&inner).into_owned(), Some(o)),
                    Err(_) => (String::from_utf8_lossy(&m.payload).into_owned(), None),
                },
                None => (String::from_utf8_lossy(&m.payload).into_owned(), None),
            },
            _ => (String::from_utf8_lossy(&m.payload).into_owned(), None),
        };
        let parsed = serde_json::from_str::<Value>(&data).ok();
        let header_bytes = crate::ai::eventstream_header_bytes(&m.raw).to_vec();
        let frame = SseFrame { raw: m.raw, event, data, has_data: true, oversize: false };
        let wire = Wire::Aws { header_bytes, outer };
        let mut p = Pending::new(frame, wire);
        match parsed {
            Some(v) => {
                self.ingest_json(cl, &mut p, v, false);
            }
            None => self.ingest_text(cl, &mut p),
        }
        self.pending.push_back(p);
    }

    /// Bytes outside any message (an eventstream that broke, or an
    /// unfinished message at the end): held, and scanned as text at the end
    /// or once past [`MAX_PENDING`] (keeping a tail a value may continue
    /// into); nothing once the stream is blocked.
    fn broken(&mut self, cl: &Classifier, bytes: &[u8], final_: bool) -> Vec<u8> {
        self.broken_tail.extend_from_slice(bytes);
        if self.tally.blocked.is_some() {
            self.broken_tail.clear();
            return Vec::new();
        }
        if !final_ && self.broken_tail.len() <= MAX_PENDING {
            return Vec::new();
        }
        let keep = if final_ { 0 } else { MAX_TOKEN_HOLD.min(self.broken_tail.len()) };
        let cut = self.broken_tail.len() - keep;
        let head: Vec<u8> = self.broken_tail.drain(..cut).collect();
        let mut sink = self.sink(cl);
        let out = cl.text_into(&mut sink, &head, "$");
        self.tally = sink.t;
        if self.tally.blocked.is_some() {
            self.broken_tail.clear();
            return Vec::new();
        }
        out.unwrap_or(head)
    }

    /// Reads the stream as AWS eventstream (`true`) or SSE, as its
    /// `content-type` says, instead of guessing from its first byte.
    pub fn set_aws(&mut self, aws: bool) {
        if matches!(self.input, Input::Unknown) {
            self.input =
                if aws { Input::Aws(EventStreamParser::new(MAX_FRAME)) } else { Input::Sse(SseParser::new(MAX_FRAME)) };
        }
    }

    /// Whether the stream is read as AWS eventstream.
    pub fn is_aws(&self) -> bool {
        matches!(self.input, Input::Aws(_))
    }

    /// A frame whose data is not JSON: scanned within itself.
    fn ingest_text(&mut self, cl: &Classifier, p: &mut Pending) {
        let hits = cl.find(&p.frame.data, "", false);
        if !hits.is_empty() {
            let mut sink = self.sink(cl);
            let (new, _) = sink.apply(&p.frame.data, &hits, "$", false);
            self.tally = sink.t;
            if let Some(n) = new {
                p.replaced = Some(n.into_bytes());
                p.changed = true;
            }
        }
    }

    /// Returns where the event's known text piece is, if it has one.
    /// `repeat`: the event is the last one given here but for the string of
    /// that one's known text piece (read from the [`template::Template`]).
    fn ingest_json(&mut self, cl: &Classifier, p: &mut Pending, mut v: Value, repeat: bool) -> Option<Ptr> {
        let mut walked = match self.walked.take().filter(|_| repeat) {
            // What the last event's walks found, found again: they read no
            // text field's string (the `repeats` tests prove it).
            Some(w) => w,
            None => {
                // The text piece of a known shape (the provider field
                // tables), then every other string under the event's delta:
                // each is joined with the same field of earlier events.
                let mut found: Vec<(Vec<Seg>, String, String)> = fields::stream_piece(&v)
                    .map(|p| (p.ptr.into_iter().map(Seg::from).collect(), p.channel, p.location))
                    .into_iter()
                    .collect();
                // The known text piece is also under a delta: it keeps its own channel.
                let known: Option<Ptr> = found.first().map(|(ptr, _, _)| ptr.as_slice().into());
                delta_strings(&v, known.as_deref(), &mut found);
                let streamed = found
                    .into_iter()
                    .enumerate()
                    .map(|(i, (ptr, key, loc))| Streamed {
                        ptr: match (i, &known) {
                            (0, Some(k)) => k.clone(),
                            _ => ptr.into(),
                        },
                        key,
                        loc,
                        chan: None,
                        pos: None,
                    })
                    .collect();
                // Every other string field (not metadata, not under a field
                // rule): joined over the consecutive events that carry it.
                let mut others = Vec::new();
                other_strings(cl, &v, known.as_deref(), MAX_OTHER, &mut others);
                let mut ends = Vec::new();
                let last = ending_channels(&v, &mut ends);
                Walked { streamed, known, others, clean: false, ends: (last, ends) }
            }
        };
        // The channels this event ends (read from no text field: the
        // `repeats` tests), found again for a repeat.
        p.end_marker = walked.ends.0;
        self.ending.extend(walked.ends.1.iter().cloned());
        let known = walked.known.clone();
        let was_clean = repeat && walked.clean;
        // Bounded per stream: past MAX_OTHER fields, new ones are scanned
        // within their own event only. (Bit k: `walked.others[k]` is kept;
        // there are at most MAX_OTHER of them.)
        let mut fields_now = self.chans.iter().filter(|c| c.other.is_some()).count();
        let mut kept = 0u64;
        for (k, o) in walked.others.iter().enumerate() {
            let known_field = self.chans.iter().any(|c| c.key == o.key);
            let keep = known_field || (fields_now < MAX_OTHER && self.chans.len() < MAX_CHANNELS);
            fields_now += usize::from(keep && !known_field);
            if keep {
                kept |= 1 << k;
            }
        }
        let others = || walked.others.iter().enumerate().filter(move |(k, _)| kept & (1 << k) != 0).map(|(_, o)| o);
        // The streamed strings taken out of the event, in order: the
        // streamed ones, then the kept fields. An event found clean again
        // (below) leaves them where they are.
        let mut texts: Option<Vec<Option<String>>> = None;
        // Most events repeat the previous one's other members (`id`,
        // `model`, ...) exactly: an event equal to one that was walked and
        // found clean is clean again (the walk is a function of the value,
        // and the streamed strings are taken out of it). A repeat of a clean
        // event (the known text piece is among the streamed strings) is one.
        let mut clean = was_clean;
        if !clean {
            texts = Some(
                walked
                    .streamed
                    .iter()
                    .map(|s| &s.ptr)
                    .chain(others().map(|o| &o.ptr))
                    .map(|ptr| get_str(&mut v, ptr).map(std::mem::take))
                    .collect(),
            );
            clean = self.clean.iter().rev().any(|c| same(c, &v));
            if !clean {
                let before = self.tally.hits();
                let mut sink = self.sink(cl);
                let mut path = String::from("$");
                let w = json::walk(cl, &mut sink, &mut v, &mut path, "", None, false);
                self.tally = sink.t;
                p.changed = w.changed;
                clean = !w.changed && !w.remove && self.tally.blocked.is_none() && self.tally.hits() == before;
                if clean && p.frame.raw.len() <= CLEAN_FRAME_BYTES {
                    if self.clean.len() >= CLEAN_FRAMES {
                        self.clean.pop_front();
                    }
                    self.clean.push_back(v.clone());
                }
            }
        }
        let mut carried = Vec::new();
        let entries =
            walked.streamed.iter_mut().map(|s| (&s.ptr, None, Some(&mut s.chan), Some(&mut s.pos), &s.key, &s.loc));
        let entries = entries.chain(others().map(|o| (&o.ptr, Some(o), None, None, &o.key, &o.loc)));
        for (k, (ptr, field, cached, pos, key, loc)) in entries.enumerate() {
            // Taken out for the walk (then put back after joining), or read in place.
            let owned: Option<String> = match texts.as_mut() {
                Some(t) => match t.get_mut(k).and_then(Option::take) {
                    Some(t) => Some(t),
                    None => continue,
                },
                None => None,
            };
            let text: &str = match (&owned, pos) {
                (Some(t), _) => t,
                (None, Some(pos)) => {
                    if pos.is_none() {
                        *pos = positions(&v, ptr);
                    }
                    match pos.as_deref().and_then(|p| get_str_at(&mut v, p)) {
                        Some(t) => t,
                        None => continue,
                    }
                }
                (None, None) => match get_str(&mut v, ptr) {
                    Some(t) => t,
                    None => continue,
                },
            };
            let chan = match cached {
                Some(c) => *c.get_or_insert_with(|| self.chan(key, loc)),
                None => self.chan(key, loc),
            };
            self.join(p, text, ptr, chan, field, &mut carried);
            if let Some(t) = owned {
                if let Some(s) = get_str(&mut v, ptr) {
                    *s = t;
                }
            }
        }
        // A field missing from this event ends its run: what it held is decided.
        for (ci, c) in self.chans.iter().enumerate() {
            if c.other.is_some() && !carried.contains(&ci) && !c.buf.is_empty() {
                self.ending_chans.push(ci);
            }
        }
        walked.clean = clean;
        self.walked = Some(walked);
        p.json = Some(v);
        known
    }

    /// One streamed string of an event joins its channel (`field`: the
    /// string field it is, when it is one).
    fn join(
        &mut self,
        p: &mut Pending,
        text: &str,
        ptr: &Ptr,
        chan: usize,
        field: Option<&Field>,
        carried: &mut Vec<usize>,
    ) {
        let Some(c) = self.chans.get_mut(chan) else { return };
        if let Some(f) = field {
            let o = c.other.get_or_insert_with(|| Other {
                member: f.member.clone(),
                icd: f.icd,
                last: String::new(),
                constant: false,
            });
            // The same value again is metadata repeated by every event
            // (a fingerprint, a status), not a value streamed in pieces:
            // decided per event, so one repeat (`"5"`, `"5"`) does not
            // end the field's joining for good.
            o.constant = !o.last.is_empty() && o.last == text;
            o.last.clear();
            o.last.push_str(text);
        }
        let start = c.buf.len();
        c.buf.push_str(text);
        c.fresh = true;
        let (end, constant) = (c.buf.len(), c.other.as_ref().is_some_and(|o| o.constant));
        if field.is_some() {
            if constant {
                self.ending_chans.push(chan);
            }
            carried.push(chan);
        }
        p.pieces.push(Piece { chan, ptr: ptr.clone(), start, end, done: None });
    }

    fn chan(&mut self, key: &str, loc: &str) -> usize {
        if let Some(ix) = self.chans.iter().position(|c| c.key == key) {
            return ix;
        }
        if self.chans.len() >= MAX_CHANNELS {
            // Channel ids come from the upstream (`index`, `item_id`): past
            // the bound, further channels share the last one.
            return MAX_CHANNELS - 1;
        }
        self.chans.push(Chan {
            key: key.to_string(),
            loc: loc.to_string(),
            buf: String::new(),
            ctx: String::new(),
            pem_open: false,
            fresh: false,
            other: None,
        });
        self.chans.len() - 1
    }

    /// Decides what can be decided, then releases frames from the front.
    fn release(&mut self, cl: &Classifier, final_: bool) -> Vec<u8> {
        let ending = std::mem::take(&mut self.ending);
        let ending_chans = std::mem::take(&mut self.ending_chans);
        for ci in 0..self.chans.len() {
            let fresh = self.chans.get_mut(ci).is_some_and(|c| std::mem::take(&mut c.fresh));
            let ends = ending_chans.contains(&ci)
                || self.chans.get(ci).is_some_and(|c| ending.iter().any(|e| under(&c.loc, e)));
            if fresh || final_ || ends {
                self.decide(cl, ci, final_ || ends);
            }
        }
        let mut out = Vec::new();
        if self.tally.blocked.is_some() {
            self.pending.clear();
            self.pending_bytes = 0;
            return out;
        }
        while let Some(front) = self.pending.front() {
            if front.pieces.iter().any(|p| p.done.is_none()) || (front.end_marker && !final_) {
                break;
            }
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            self.pending_bytes = self.pending_bytes.saturating_sub(p.frame.raw.len());
            emit(p, &mut out, self.injected_usage);
        }
        crate::stages::mark("release: frames out");
        out
    }

    fn decide(&mut self, cl: &Classifier, ci: usize, final_: bool) {
        // The context and text are joined in a buffer kept for the next call.
        let mut scan = std::mem::take(&mut self.scan);
        self.decide_in(cl, ci, final_, &mut scan);
        self.scan = scan;
    }

    fn decide_in(&mut self, cl: &Classifier, ci: usize, final_: bool, scan: &mut String) {
        let Some(chan) = self.chans.get(ci) else {
            return;
        };
        if chan.buf.is_empty()
            && !self.pending.iter().any(|p| p.pieces.iter().any(|x| x.chan == ci && x.done.is_none()))
        {
            return;
        }
        crate::stages::mark("before the decision");
        scan.clear();
        scan.push_str(&chan.ctx);
        scan.push_str(&chan.buf);
        let off = chan.ctx.len();
        let (member, icd) = chan.other.as_ref().map_or(("", false), |o| (o.member.as_str(), o.icd));
        // New text of plain words: nothing to look for (in tests, checked
        // against looking).
        let plain = !chan.pem_open && self.restore.is_empty() && cl.plain_words(scan, off, member, icd);
        #[cfg(test)]
        if plain {
            let found = cl.find_from(scan, self.resume(scan, off), member, icd);
            assert!(found.iter().all(|h| h.end <= off), "plain words {:?} hold {found:?}", scan.get(off..));
        }
        let hits: Vec<Hit> = if plain { Vec::new() } else { cl.find_from(scan, self.resume(scan, off), member, icd) }
            .into_iter()
            // A match that starts in the decided context and reaches into the
            // new text (the hold-back missed a way a value can grow) has its
            // new part redacted rather than none of it.
            .filter(|h| h.end > off)
            .map(|h| Hit { start: h.start.max(off) - off, end: h.end - off, entity: h.entity })
            .collect();
        crate::stages::mark("decide: detectors");
        let restores = restore_spans(&self.restore, &chan.buf, &hits);
        let buf = chan.buf.as_bytes();
        let len = buf.len();
        // The cut is found with the decided context before the text: a label
        // there (`phone:`) lets a run of digit groups be a value.
        let cut = || cl.stream_cut(scan.as_bytes(), off, MAX_TOKEN_HOLD).saturating_sub(off);
        let mut limit = match (final_, plain) {
            (true, _) => len,
            // Plain words: cut before the last one unless it is complete (in
            // tests, checked against the hold-back rule).
            (false, true) => match super::detect::plain_cut(buf) {
                Some(c) => {
                    #[cfg(test)]
                    assert_eq!(c, cut(), "plain cut of {:?}", chan.buf);
                    c
                }
                None => cut(),
            },
            (false, false) => cut(),
        };
        crate::stages::mark("decide: hold-back cut");
        // Piece ends of this channel's undecided frames, in order.
        let ends: Vec<usize> = self
            .pending
            .iter()
            .flat_map(|p| p.pieces.iter())
            .filter(|x| x.chan == ci && x.done.is_none())
            .map(|x| x.end)
            .collect();
        // `r`: the end of the last piece that can be decided now. A piece of
        // empty text at the start of the buffer (`end == 0`, say a first
        // `"content": ""`) is decidable too: treating `r == 0` as "nothing to
        // decide" kept it, and every frame after it, held forever when no
        // more text came on its channel.
        let r = loop {
            let Some(r) = ends.iter().copied().filter(|&e| e <= limit).max() else {
                return;
            };
            // A match crossing `r`, or reaching the end of the text (it may
            // still grow: an unterminated PEM block), is decided with its rest.
            // So is a spaced match followed by one space and what may
            // continue it (`415 555 2671 x`, `Maria Lopez G`).
            let open = |b: usize, ent: Option<u16>| {
                !final_ && (b == len || ent.is_some_and(|ent| super::detect::may_continue(buf, b, ent)))
            };
            let across =
                hits.iter().map(|h| (h.start, h.end, Some(h.entity))).chain(restores.iter().map(|x| (x.0, x.1, None)));
            match across.filter(|&(a, b, ent)| a < r && (b > r || open(b, ent))).map(|(a, _, _)| a).min() {
                Some(start) => limit = start,
                None => break r,
            }
        };
        crate::stages::mark("decide: decidable end");
        // The channel's text, as joined after its context.
        let text = scan.get(off..).unwrap_or("");
        if hits.iter().all(|h| h.end > r) && restores.iter().all(|x| x.1 > r) {
            // Nothing to rewrite (most decisions): the pieces go out as they are.
            for pc in self.pending.iter_mut().flat_map(|p| p.pieces.iter_mut()) {
                if pc.chan == ci && pc.done.is_none() && pc.end <= r {
                    pc.done = Some(None);
                }
            }
            crate::stages::mark("decide: pieces rewritten");
            self.keep_context(ci, text, r, final_);
            return;
        }
        let loc = chan.loc.clone();
        // Rewrite every undecided piece that ends at or before r.
        let mut sink = Sink::with_tally(cl, &self.actions, std::mem::take(&mut self.tally));
        // (start, end, replacement) of every decided span: findings, then
        // restored pseudonyms, in text order.
        let mut applicable: Vec<(usize, usize, Option<String>)> = Vec::with_capacity(hits.len() + restores.len());
        for h in hits.into_iter().filter(|h| h.end <= r) {
            let action = sink.record(h.entity, &loc);
            let value = text.get(h.start..h.end).unwrap_or("");
            applicable.push((h.start, h.end, sink.replacement(h.entity, value, action)));
        }
        applicable.extend(restores.into_iter().filter(|x| x.1 <= r).map(|(a, b, o)| (a, b, Some(o))));
        applicable.sort_by_key(|x| x.0);
        self.tally = sink.t;
        for pc in self.pending.iter_mut().flat_map(|p| p.pieces.iter_mut()) {
            if pc.chan != ci || pc.done.is_some() || pc.end > r {
                continue;
            }
            let (ps, pe) = (pc.start, pc.end);
            let mut new = String::new();
            let mut cur = ps;
            let mut changed = false;
            for (start, end, rep) in &applicable {
                if *end <= ps || *start >= pe {
                    continue;
                }
                let Some(rep) = rep else { continue };
                let s = (*start).max(ps);
                new.push_str(text.get(cur..s).unwrap_or(""));
                if *start >= ps {
                    new.push_str(rep);
                }
                cur = (*end).min(pe);
                changed = true;
            }
            if changed {
                new.push_str(text.get(cur..pe).unwrap_or(""));
                pc.done = Some(Some(new));
            } else {
                pc.done = Some(None);
            }
        }
        crate::stages::mark("decide: pieces rewritten");
        self.keep_context(ci, text, r, final_);
    }

    /// After a decision up to `r` of the channel's `text`: the decided text
    /// joins the context (its last `CTX_KEEP` bytes kept), the rest stays.
    fn keep_context(&mut self, ci: usize, text: &str, r: usize, final_: bool) {
        // Shift the undecided rest; keep a little decided text as context.
        if let Some(chan) = self.chans.get_mut(ci) {
            let before = chan.ctx.len();
            chan.ctx.push_str(text.get(..r).unwrap_or(""));
            // Only a final (or forced) decision releases an open block: any
            // other holds a match that is open or reaches the end.
            if final_ || chan.pem_open {
                chan.pem_open = super::detect::pem_open_after(chan.ctx.as_bytes(), before, chan.pem_open);
            }
            let mut from = chan.ctx.len().saturating_sub(CTX_KEEP);
            while from < chan.ctx.len() && !chan.ctx.is_char_boundary(from) {
                from += 1;
            }
            chan.ctx.drain(..from);
            if chan.buf.is_char_boundary(r) {
                chan.buf.drain(..r);
            } else {
                chan.buf.clear();
            }
        }
        for pc in self.pending.iter_mut().flat_map(|p| p.pieces.iter_mut()) {
            if pc.chan == ci && pc.done.is_none() {
                pc.start -= r;
                pc.end -= r;
            }
        }
        crate::stages::mark("decide: context kept");
    }
}

/// Events that end streamed text: a choice's or candidate's finish reason
/// ends its channels (by location prefix), `message_stop` (Anthropic),
/// `message-end` (Cohere) and the Responses API's final events end them all.
/// Returns whether the event ends the whole stream.
fn ending_channels(v: &Value, out: &mut Vec<String>) -> bool {
    let mut last = false;
    if let Some(Value::String(t)) = fields::member(v, "type") {
        if matches!(
            t.as_str(),
            "message_stop" | "message-end" | "response.completed" | "response.incomplete" | "response.failed"
        ) {
            out.push(String::new());
            last = true;
        }
    }
    for (list, reason) in [("choices", "finish_reason"), ("candidates", "finishReason")] {
        let Some(Value::Array(items)) = fields::member(v, list) else { continue };
        for (k, item) in items.iter().enumerate() {
            if fields::member(item, reason).is_some_and(|r| !r.is_null()) {
                let i = fields::member(item, "index").and_then(Value::as_u64).map_or(k, |i| i as usize);
                out.push(format!("$.{list}[{i}]"));
            }
        }
    }
    last
}

/// Pseudonym tokens (`pseu_` + 16 hex) of the restore map in `buf`, as
/// (start, end, original), leaving out any a finding overlaps.
fn restore_spans(
    map: &std::collections::HashMap<String, String>,
    buf: &str,
    hits: &[Hit],
) -> Vec<(usize, usize, String)> {
    const TOKEN_LEN: usize = 21;
    let mut out = Vec::new();
    if map.is_empty() {
        return out;
    }
    let mut from = 0;
    while let Some(i) = buf.get(from..).and_then(|rest| rest.find("pseu_")).map(|i| from + i) {
        from = i + 1;
        let Some(token) = buf.get(i..i + TOKEN_LEN) else { continue };
        let Some(original) = map.get(token) else { continue };
        let end = i + TOKEN_LEN;
        if buf.as_bytes().get(end).is_some_and(u8::is_ascii_hexdigit) {
            // A longer hex run is not this token.
            continue;
        }
        if hits.iter().all(|h| h.end <= i || h.start >= end) {
            out.push((i, end, original.clone()));
            from = end;
        }
    }
    out
}

fn emit(mut p: Pending, out: &mut Vec<u8>, injected_usage: bool) {
    let injected_usage = injected_usage && matches!(p.wire, Wire::Sse);
    let usage_only = match (&p.json, p.lent) {
        (_, Some((only, _))) => only,
        (Some(v), None) => crate::ai::stream_usage::is_usage_only(v),
        (None, None) => false,
    };
    if injected_usage && usage_only {
        return;
    }
    if p.lent.is_some() && p.pieces.iter().any(|pc| matches!(pc.done, Some(Some(_)))) {
        if let Some(data) = spliced(&p, injected_usage) {
            out.extend_from_slice(&encode_frame(p.frame.event.as_deref(), &data));
            return;
        }
        // A piece changed: the data lent to the template is parsed again.
        p.json = serde_json::from_str::<Value>(&p.frame.data).ok();
    }
    let mut changed = p.changed;
    if let Some(v) = p.json.as_mut() {
        for pc in std::mem::take(&mut p.pieces) {
            if let Some(Some(new)) = pc.done {
                if let Some(s) = get_str(v, &pc.ptr) {
                    *s = new;
                    changed = true;
                }
            }
        }
    }
    let null_usage = injected_usage
        && match (&p.json, p.lent) {
            (_, Some((_, null))) => null,
            (Some(v), None) => fields::member(v, "usage").is_some_and(Value::is_null),
            (None, None) => false,
        };
    if !changed {
        match null_usage.then(|| crate::ai::stream_usage::strip_null_usage(&p.frame.raw)).flatten() {
            Some(b) => out.extend_from_slice(&b),
            // The first frame out is the output itself, not a copy.
            None if out.is_empty() => *out = p.frame.raw,
            None => out.extend_from_slice(&p.frame.raw),
        }
        return;
    }
    if null_usage {
        if let Some(v) = p.json.as_mut() {
            crate::ai::stream_usage::remove_null_usage(v);
        }
    }
    if p.frame.oversize || !p.frame.has_data {
        match p.replaced {
            Some(b) => out.extend_from_slice(&b),
            None => out.extend_from_slice(&p.frame.raw),
        }
        return;
    }
    let data = match (&p.json, p.replaced) {
        (Some(v), _) => serde_json::to_string(v).unwrap_or_default(),
        (None, Some(b)) => String::from_utf8(b).unwrap_or_default(),
        (None, None) => p.frame.data.clone(),
    };
    match p.wire {
        Wire::Sse => out.extend_from_slice(&encode_frame(p.frame.event.as_deref(), &data)),
        Wire::Aws { header_bytes, outer } => {
            use base64::Engine;
            let payload = match outer {
                Some(mut o) => {
                    o.insert("bytes".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(&data)));
                    serde_json::to_vec(&Value::Object(o)).unwrap_or_default()
                }
                None => data.into_bytes(),
            };
            out.extend_from_slice(&crate::ai::encode_eventstream_raw(&header_bytes, &payload));
        }
    }
}

/// The data of a lent frame whose only changed piece is the one
/// [`Pending::splice`] names, with that piece's new string written where its
/// literal was; `None` when anything else changes (another piece, a
/// `"usage": null` to take out).
fn spliced(p: &Pending, injected_usage: bool) -> Option<String> {
    let (s, e, known) = p.splice.as_ref()?;
    if injected_usage && p.lent.is_some_and(|(_, null)| null) {
        return None;
    }
    let mut new = None;
    for pc in p.pieces.iter() {
        if let Some(Some(text)) = &pc.done {
            if !std::rc::Rc::ptr_eq(&pc.ptr, known) || new.is_some() {
                return None;
            }
            new = Some(text);
        }
    }
    let lit = serde_json::to_string(new?).ok()?;
    let data = &p.frame.data;
    Some([data.get(..*s)?, &lit, data.get(*e..)?].concat())
}

/// `loc` is `prefix` or below it (`$.choices[1]` covers `$.choices[1].delta`,
/// not `$.choices[10]`); the empty prefix covers every location.
fn under(loc: &str, prefix: &str) -> bool {
    loc.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']) || prefix.is_empty())
}

/// Equal values, members in the same order (cheaper than `==`, which
/// hashes every member name).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(va, vb)| same(va, vb)),
        _ => a == b,
    }
}

fn get_str<'v>(v: &'v mut Value, ptr: &[Seg]) -> Option<&'v mut String> {
    let mut cur = v;
    for s in ptr {
        cur = match s {
            Seg::Key(k) => fields::member_mut(cur, k.as_ref())?,
            Seg::Idx(i) => cur.get_mut(*i)?,
        };
    }
    match cur {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Where the string `ptr` names is in `v` by position: each member's place
/// in its object (in order: a map's names are unique), each element's
/// index. [`get_str_at`] reads the same string there, and in any value of
/// the same structure, without comparing member names.
fn positions(v: &Value, ptr: &[Seg]) -> Option<Vec<usize>> {
    let mut cur = v;
    let mut out = Vec::with_capacity(ptr.len());
    for s in ptr {
        let (i, next) = match s {
            Seg::Key(k) => cur.as_object()?.iter().enumerate().find(|(_, (n, _))| *n == k).map(|(i, (_, x))| (i, x))?,
            Seg::Idx(i) => (*i, cur.as_array()?.get(*i)?),
        };
        out.push(i);
        cur = next;
    }
    cur.is_string().then_some(out)
}

/// The string at [`positions`].
fn get_str_at<'v>(v: &'v mut Value, pos: &[usize]) -> Option<&'v mut String> {
    let mut cur = v;
    for &i in pos {
        cur = match cur {
            Value::Object(m) => m.values_mut().nth(i)?,
            Value::Array(a) => a.get_mut(i)?,
            _ => return None,
        };
    }
    match cur {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Field channels per stream (strings outside the text channels and deltas).
const MAX_OTHER: usize = 32;

/// Members anywhere in an event that identify or describe it rather than
/// carry text (ids, names, enums, fingerprints, random padding).
fn meta(k: &str) -> bool {
    matches!(
        k,
        "type"
            | "role"
            | "id"
            | "index"
            | "object"
            | "model"
            | "modelVersion"
            | "finish_reason"
            | "finishReason"
            | "stop_reason"
            | "stop_sequence"
            | "name"
            | "status"
            | "event"
            | "event_type"
            | "system_fingerprint"
            | "obfuscation"
            | "service_tier"
            | "created_at"
            | "category"
            | "probability"
            | "severity"
            | "signature"
            | "tool_choice"
            | "truncation"
    ) || k.ends_with("_id")
        || k.ends_with("Id")
}

/// A string field outside the text channels and deltas.
#[derive(Clone)]
struct Field {
    ptr: Ptr,
    key: String,
    loc: String,
    member: String,
    icd: bool,
}

/// Every string of an event that no text channel or delta takes, up to
/// `room` of them, as [`Field`]s: not under a member named `delta` (nor
/// Gemini's parts), not a [`META`] member or an id (`…_id`, `…Id`), not
/// under a field rule (the JSON walk applies those). Array elements are
/// named by their `index` member when they have one, so that parallel
/// choices stay apart.
fn other_strings(cl: &Classifier, v: &Value, known: Option<&[Seg]>, room: usize, out: &mut Vec<Field>) {
    let w = FieldWalk { cl, known, room };
    w.go(v, &mut Vec::new(), ("", false), out);
}

struct FieldWalk<'a> {
    cl: &'a Classifier,
    known: Option<&'a [Seg]>,
    room: usize,
}

/// A step of the walk: a member, or an array element (its position, and
/// its `index` member or position as its name).
#[derive(Clone, Copy)]
enum FieldStep<'v> {
    Key(&'v str),
    Idx(usize, u64),
}

impl FieldWalk<'_> {
    fn path(stack: &[FieldStep<'_>]) -> String {
        let mut path = String::from("$");
        for st in stack {
            match *st {
                FieldStep::Key(k) => json::push_key(&mut path, k),
                FieldStep::Idx(_, name) => {
                    let _ = std::fmt::Write::write_fmt(&mut path, format_args!("[{name}]"));
                }
            }
        }
        path
    }

    /// `ctx`: the nearest member name and whether a clinical one is above.
    fn go<'v>(&self, v: &'v Value, stack: &mut Vec<FieldStep<'v>>, ctx: (&'v str, bool), out: &mut Vec<Field>) {
        let cl = self.cl;
        if out.len() >= self.room || stack.len() > 8 {
            return;
        }
        if !cl.fields.is_empty() && matches!(v, Value::String(_) | Value::Object(_) | Value::Array(_)) {
            let path = Self::path(stack);
            if cl.fields.iter().any(|f| f.matches(&path)) {
                return;
            }
        }
        match v {
            Value::String(_) => {
                let same = self.known.is_some_and(|k| {
                    k.len() == stack.len()
                        && k.iter().zip(stack.iter()).all(|(a, b)| match (a, b) {
                            (Seg::Key(x), FieldStep::Key(y)) => x == y,
                            (Seg::Idx(x), FieldStep::Idx(y, _)) => x == y,
                            _ => false,
                        })
                });
                if !same {
                    let path = Self::path(stack);
                    let ptr: Vec<Seg> = stack
                        .iter()
                        .map(|st| match *st {
                            FieldStep::Key(k) => Seg::Key(std::borrow::Cow::Owned(k.to_string())),
                            FieldStep::Idx(i, _) => Seg::Idx(i),
                        })
                        .collect();
                    out.push(Field {
                        ptr: ptr.into(),
                        key: format!("field:{path}"),
                        loc: path,
                        member: ctx.0.to_string(),
                        icd: ctx.1,
                    });
                }
            }
            Value::Array(items) => {
                for (k, item) in items.iter().enumerate() {
                    let name = fields::member(item, "index").and_then(Value::as_u64).unwrap_or(k as u64);
                    stack.push(FieldStep::Idx(k, name));
                    self.go(item, stack, ctx, out);
                    stack.pop();
                }
            }
            Value::Object(map) => {
                let parts = matches!(
                    stack.as_slice(),
                    [FieldStep::Key("candidates"), FieldStep::Idx(..), FieldStep::Key("content")]
                );
                for (k, item) in map {
                    if k == "delta" || (parts && k == "parts") || meta(k) {
                        continue;
                    }
                    if !(item.is_string() || item.is_object() || item.is_array()) {
                        continue;
                    }
                    stack.push(FieldStep::Key(k));
                    self.go(item, stack, (k, ctx.1 || json::is_clinical(k)), out);
                    stack.pop();
                }
            }
            _ => {}
        }
    }
}

/// Members under a delta that name or classify the piece rather than carry
/// streamed text (they repeat in every event).
const DELTA_META: &[&str] =
    &["type", "role", "id", "index", "object", "model", "finish_reason", "stop_reason", "name", "call_id", "status"];

/// Top-level members that tell apart the channels of strings under a delta.
const DELTA_CHANNEL: [&str; 4] = ["index", "contentBlockIndex", "item_id", "content_index"];

/// Every string under a member named `delta` (or in Gemini's
/// `candidates[].content.parts[]`), as (pointer, channel key, location).
/// The channel key carries the event's block, item and content index so
/// that parallel blocks stay apart. A delta is looked for in the first three
/// levels; nothing is allocated until a string is found.
fn delta_strings(v: &Value, known: Option<&[Seg]>, out: &mut Vec<(Vec<Seg>, String, String)>) {
    let mut stack: Vec<Step<'_>> = Vec::new();
    collect(v, &mut stack, false, v, known, out);
}

/// Whether the walk's position is the pointer `ptr`.
fn at_ptr(stack: &[Step<'_>], ptr: &[Seg]) -> bool {
    stack.len() == ptr.len()
        && stack.iter().zip(ptr).all(|(a, b)| match (a, b) {
            (Step::Key(x), Seg::Key(y)) => *x == y.as_ref(),
            (Step::Idx(x), Seg::Idx(y)) => x == y,
            _ => false,
        })
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Idx(usize),
}

fn collect<'a>(
    v: &'a Value,
    stack: &mut Vec<Step<'a>>,
    under: bool,
    root: &Value,
    known: Option<&[Seg]>,
    out: &mut Vec<(Vec<Seg>, String, String)>,
) {
    if out.len() >= MAX_CHANNELS || (!under && stack.len() > 3) {
        return;
    }
    match v {
        Value::String(_) if under && !known.is_some_and(|k| at_ptr(stack, k)) => {
            let mut path = String::from("$");
            let mut ptr = Vec::with_capacity(stack.len());
            for st in stack.iter() {
                match *st {
                    Step::Key(k) => {
                        json::push_key(&mut path, k);
                        ptr.push(Seg::Key(std::borrow::Cow::Owned(k.to_string())));
                    }
                    Step::Idx(i) => {
                        path.push_str(&format!("[{i}]"));
                        ptr.push(Seg::Idx(i));
                    }
                }
            }
            let disc: Vec<String> = DELTA_CHANNEL
                .iter()
                .map(|k| fields::member(root, k).map(Value::to_string).unwrap_or_default())
                .collect();
            out.push((ptr, format!("delta:{}:{path}", disc.join(":")), path));
        }
        Value::Array(items) => {
            for (k, item) in items.iter().enumerate() {
                stack.push(Step::Idx(k));
                collect(item, stack, under, root, known, out);
                stack.pop();
            }
        }
        Value::Object(map) => {
            let parts = matches!(stack.as_slice(), [Step::Key("candidates"), Step::Idx(_), Step::Key("content")]);
            for (k, item) in map {
                if under && DELTA_META.contains(&k.as_str()) {
                    continue;
                }
                if !(under || item.is_object() || item.is_array()) {
                    continue;
                }
                stack.push(Step::Key(k));
                let below = under || k == "delta" || (parts && k == "parts");
                collect(item, stack, below, root, known, out);
                stack.pop();
            }
        }
        _ => {}
    }
}

impl From<fields::Seg> for Seg {
    fn from(s: fields::Seg) -> Self {
        match s {
            fields::Seg::Key(k) => Seg::Key(std::borrow::Cow::Borrowed(k)),
            fields::Seg::Idx(i) => Seg::Idx(i),
        }
    }
}

#[cfg(test)]
mod under_tests {
    use super::under;

    #[test]
    fn a_choice_covers_its_own_locations_only() {
        assert!(under("$.choices[1]", "$.choices[1]"));
        assert!(under("$.choices[1].delta.content", "$.choices[1]"));
        assert!(under("$.choices[1][0]", "$.choices[1]"));
        assert!(!under("$.choices[10].delta.content", "$.choices[1]"));
        assert!(under("$.anything", ""));
    }
}

#[cfg(test)]
mod repeat_tests {
    use super::*;
    use crate::classify::{Action, Rules};

    /// A string read by position is the one its pointer names, in the
    /// value the positions came from and in one of the same structure.
    #[test]
    fn positions_read_what_the_pointer_names() {
        let key = |k: &'static str| Seg::Key(std::borrow::Cow::Borrowed(k));
        let mut v = serde_json::json!({"id": "c", "choices": [{"index": 0, "delta": {"role": "a", "content": "x"}}, {"delta": {"content": "y"}}]});
        let mut same = serde_json::json!({"id": "d", "choices": [{"index": 0, "delta": {"role": "a", "content": "z"}}, {"delta": {"content": "w"}}]});
        for ptr in [
            vec![key("choices"), Seg::Idx(0), key("delta"), key("content")],
            vec![key("choices"), Seg::Idx(1), key("delta"), key("content")],
            vec![key("id")],
        ] {
            let pos = positions(&v, &ptr).unwrap();
            assert_eq!(get_str_at(&mut v, &pos).cloned(), get_str(&mut v, &ptr).cloned());
            assert_eq!(get_str_at(&mut same, &pos).cloned(), get_str(&mut same, &ptr).cloned());
        }
        assert_eq!(positions(&v, &[key("choices"), Seg::Idx(0), key("index")]), None);
        assert_eq!(positions(&v, &[key("choices"), Seg::Idx(2)]), None);
        assert_eq!(positions(&v, &[key("nope")]), None);
        assert_eq!(positions(&v, &[key("choices"), key("delta")]), None);
        assert_eq!(get_str_at(&mut v, &[1, 0, 0]), None);
    }

    /// `Walked` is reused for an event that repeats the last one but for
    /// its known text piece: the walks read member names, whether a value
    /// is a string, `index` numbers, and as strings only the guards' and
    /// channels' fields (`fields` tests those) and the top-level members
    /// naming delta channels, none of which is a text field.
    #[test]
    fn no_delta_channel_member_is_a_text_field() {
        for s in fields::SHAPES.iter().chain(fields::EXTRAS) {
            for t in s.text {
                assert!(!DELTA_CHANNEL.contains(&t.path), "{}", t.path);
            }
        }
    }

    /// Nor is any member `ending_channels` reads: `type`, a finish reason,
    /// `index`.
    #[test]
    fn no_ending_member_is_a_text_field() {
        for s in fields::SHAPES.iter().chain(fields::EXTRAS) {
            for t in s.text {
                let last = t.path.rsplit('/').next().unwrap_or("");
                assert!(!["type", "finish_reason", "finishReason", "index"].contains(&last), "{}", t.path);
            }
        }
    }

    fn event(model: &str, note: &str, piece: &str) -> String {
        let v = serde_json::json!({"id": "c", "model": model, "note": note,
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
        format!("data: {v}\n\n")
    }

    /// A changed piece of a lent frame is written into the frame's data
    /// where its literal was when the data is serde_json's own writing (the
    /// compact stream below), else the data is parsed again and written:
    /// the two give the same frames.
    #[test]
    fn a_spliced_piece_writes_what_parsing_again_writes() {
        let c = Classifier::new(&Rules { pseudonym_key: b"k".to_vec(), ..Rules::default() });
        let actions = Actions {
            pii: Action::Redact,
            phi: Action::Redact,
            pci: Action::Redact,
            secret: Action::Redact,
            custom: Action::Redact,
        };
        let pieces = ["Hello ", "mail jane.roe@example.com ", "or \"q\" ", "é ", "call jane.roe@example.com.", " done"];
        let run = |spaced: bool| {
            let mut r = StreamRedactor::new(actions);
            let mut out = Vec::new();
            for p in pieces {
                let v = serde_json::json!({"id": "c", "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]});
                let data =
                    if spaced { serde_json::to_string_pretty(&v).unwrap().replace('\n', "") } else { v.to_string() };
                out.extend(r.push(&c, format!("data: {data}\n\n").as_bytes()));
            }
            out.extend(r.push(&c, b"data: [DONE]\n\n"));
            out.extend(r.finish(&c));
            String::from_utf8(out).unwrap()
        };
        let (compact, spaced) = (run(false), run(true));
        let changed =
            |s: &str| s.split("\n\n").filter(|f| f.contains("REDACTED")).map(str::to_string).collect::<Vec<_>>();
        assert!(!compact.contains("jane.roe"), "{compact}");
        let (compact_changed, spaced_changed) = (changed(&compact), changed(&spaced));
        assert_eq!(compact_changed.len(), 2, "{compact}");
        assert_eq!(compact_changed, spaced_changed, "{compact}\n---\n{spaced}");
    }

    /// Repeated events that are not clean are walked again (each finding
    /// recorded in each event); clean ones are not, and every event goes
    /// out as it came.
    #[test]
    fn repeats_find_what_whole_events_find() {
        let c = Classifier::new(&Rules { pseudonym_key: b"k".to_vec(), ..Rules::default() });
        let actions =
            Actions { pii: Action::Tag, phi: Action::Tag, pci: Action::Tag, secret: Action::Tag, custom: Action::Tag };
        let stream = [
            event("m", "a", "Hello"),
            event("m", "a", " there"),
            event("jane.roe@example.com", "a", " and"),
            event("jane.roe@example.com", "a", " here"),
            event("jane.roe@example.com", "a", " again"),
            event("m", "a", ", done"),
            event("m", "a", "."),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        for split in 0..=stream.len() {
            let mut r = StreamRedactor::new(actions);
            let mut repeats = 0;
            let mut out = Vec::new();
            for part in [&stream.as_bytes()[..split], &stream.as_bytes()[split..]] {
                out.extend(r.push_observed(&c, part, &mut |_, _, repeat| repeats += usize::from(repeat)));
            }
            out.extend(r.finish(&c));
            assert_eq!(String::from_utf8_lossy(&out), stream, "split {split}");
            let emails = r.findings().iter().filter(|f| f.entity == "email").map(|f| f.count).sum::<u32>();
            assert_eq!(emails, 3, "split {split}: {:?}", r.findings());
            assert_eq!(repeats, 4, "split {split}");
        }
    }
}
