//! One request's lifecycle, sans I/O: a state machine that takes the
//! request's [`Event`]s (headers, body chunks, trailers, the write-ahead
//! delivery, the log callback), reads the facts it needs through [`Facts`],
//! and returns [`Output`]: whether the stream goes on, and the [`Effect`]s
//! for the host (headers, bodies, local replies, filter state, the sealed
//! event). Every decision about a request is made here: buffer or stream,
//! oversize pass or reject, block in each direction, write-ahead, restore of
//! pseudonyms, holding headers while a body is read. The filter, the
//! `proxy-audit scan` command, the benches and the tests drive it alike.

mod effects;
pub mod header_map;
pub mod hold;
pub mod inspect;
mod preview;
mod request_facts;
pub mod retry;
#[cfg(test)]
mod tests;

pub use effects::{CallResponse, Effect, Event, Facts, Flow, Output, RecordedFacts, Side};
pub use preview::{preview, Preview, PreviewInput};
pub use request_facts::{details_reason, gather, strip_port, RequestFacts};

use crate::ai::{self, RequestMeta, ResponseTracker, UsageChunks};
use crate::chain::Sealed;
use crate::classify::{restore, Actions, BodyKind, Category};
use crate::config::{Delivery, OnFailure, Oversize, StreamUsage};
use crate::event::{BodyRecord, Kind, Phase, RequestEvent};
use crate::identity;
use crate::inspect::{plan, Inspection, Plan};
use crate::runtime::Runtime;
use serde_json::json;

/// What the filter learns about a model call.
#[derive(Debug)]
struct AiCall {
    request: RequestMeta,
    response: Option<ResponseTracker>,
    response_done: bool,
    /// The filter added `stream_options.include_usage` to the request.
    injected: bool,
    /// Then: takes the usage it asked for back out of the stream (when the
    /// stream redactor does not read it).
    usage_chunks: Option<UsageChunks>,
    /// Then: the request as it was before (for a retry without the option):
    /// its body, the upstream's key in the negative cache, and its headers as
    /// they went upstream (the host shows no request headers once the
    /// response has come).
    original: Option<Original>,
    retry: Retry,
    /// The request's headers as they went upstream, kept for a retry when
    /// the filter may inject (read at the headers: Envoy shows them no more
    /// once they have left).
    sent_headers: Vec<(String, String)>,
}

/// A request before the filter added `stream_options` to it.
#[derive(Debug)]
struct Original {
    body: Vec<u8>,
    /// The upstream's key in the negative cache.
    key: String,
    /// Its headers as they went upstream.
    headers: Vec<(String, String)>,
}

/// A model call sent again without the `stream_options` the filter added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    No,
    InFlight,
    /// The retry answered (the client got that answer) or failed (the
    /// refusal went on to the client).
    Done,
    /// The retry answered 2xx: the option was what the upstream refused.
    Succeeded,
}

/// `secret_in_request`, `pci_in_response`, ...: the reason a body is blocked.
pub fn block_reason(category: Category, side: Side) -> &'static str {
    match (category, side) {
        (Category::Pii, Side::Request) => "pii_in_request",
        (Category::Phi, Side::Request) => "phi_in_request",
        (Category::Pci, Side::Request) => "pci_in_request",
        (Category::Secret, Side::Request) => "secret_in_request",
        (Category::Custom, Side::Request) => "custom_in_request",
        (Category::Pii, Side::Response) => "pii_in_response",
        (Category::Phi, Side::Response) => "phi_in_response",
        (Category::Pci, Side::Response) => "pci_in_response",
        (Category::Secret, Side::Response) => "secret_in_response",
        (Category::Custom, Side::Response) => "custom_in_response",
    }
}

const BLOCKED_REQUEST: &str = "The request carries data that policy does not allow to be forwarded.";
const BLOCKED_RESPONSE: &str = "The response carried data that policy does not allow to be returned.";

/// One request's state.
#[derive(Debug)]
pub struct Exchange {
    /// The host's id of the stream (keys the VM's [`hold::Holds`]).
    context: u32,
    id: Option<String>,
    start_ms: u64,
    facts: Option<RequestFacts>,
    /// Set when the filter itself answered (denied/blocked) and why.
    verdict: Option<(Kind, &'static str)>,
    status: Option<u16>,
    request: Inspection,
    response: Inspection,
    ai: Option<AiCall>,
    /// The request body is held whole for the AI parser (even when not scanned).
    hold_request: bool,
    /// Write-ahead: the `begin` record in flight.
    begin: Option<Sealed>,
    /// Request headers held until the begin record is acknowledged.
    wait_begin: bool,
    /// Request / response headers held while the body is read
    /// (`envoy.allow_on_headers_stop_iteration`).
    held_request: bool,
    held_response: bool,
    /// The request body is complete (scanned and released, or not held).
    request_done: bool,
    /// The response's stream redactor has the restore map.
    restore_set: bool,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange::new()
    }
}

impl Exchange {
    pub fn new() -> Self {
        Exchange::for_context(0)
    }

    /// The exchange of the host's stream `context`.
    pub fn for_context(context: u32) -> Self {
        Exchange {
            context,
            id: None,
            start_ms: 0,
            facts: None,
            verdict: None,
            status: None,
            request: Inspection::new(Plan::Skip("no_body"), Actions::default()),
            response: Inspection::new(Plan::Skip("no_body"), Actions::default()),
            ai: None,
            hold_request: false,
            begin: None,
            wait_begin: false,
            held_request: false,
            held_response: false,
            request_done: false,
            restore_set: false,
        }
    }

    fn held(&self, side: Side) -> bool {
        match side {
            Side::Request => self.held_request,
            Side::Response => self.held_response,
        }
    }

    /// The request's event id (also `x-proxy-audit-id`), once known.
    pub fn audit_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether the filter answered the request itself, and why.
    pub fn verdict(&self) -> Option<(Kind, &'static str)> {
        self.verdict
    }

    /// The body records the event will carry (what `scan` prints).
    pub fn records(&self) -> (BodyRecord, BodyRecord) {
        (self.request.record(), self.response.record())
    }

    /// One event in, the host's answer out.
    pub fn handle(&mut self, rt: &mut Runtime, src: &dyn Facts, event: Event) -> Output {
        let mut out = Output::new();
        // Held headers a tick released have left, without content-length.
        if self.held_request && rt.holds.take_released(self.context, Side::Request) {
            self.held_request = false;
        }
        if self.held_response && rt.holds.take_released(self.context, Side::Response) {
            self.held_response = false;
        }
        match &event {
            Event::RequestBody { .. } | Event::RequestTrailers => rt.holds.body_seen(self.context, Side::Request),
            Event::ResponseBody { .. } | Event::ResponseTrailers => rt.holds.body_seen(self.context, Side::Response),
            Event::Log => rt.holds.forget(self.context),
            _ => {}
        }
        match event {
            Event::RequestHeaders { end_of_stream } => self.request_headers(rt, src, end_of_stream, &mut out),
            Event::RequestBody { size, end_of_stream } => self.request_body(rt, src, size, end_of_stream, &mut out),
            Event::RequestTrailers => {
                let size = src.body(Side::Request, usize::MAX >> 1).len();
                self.request_body(rt, src, size, true, &mut out)
            }
            Event::ResponseHeaders { end_of_stream } => self.response_headers(rt, src, end_of_stream, &mut out),
            Event::ResponseBody { size, end_of_stream } => self.response_body(rt, src, size, end_of_stream, &mut out),
            Event::ResponseTrailers => {
                let size = src.body(Side::Response, usize::MAX >> 1).len();
                self.response_body(rt, src, size, true, &mut out)
            }
            Event::BeginDelivered { status } => self.begin_delivered(rt, status, &mut out),
            Event::RetryAnswered { status } => self.retry_answered(rt, src, status, &mut out),
            Event::Log => self.log(rt, src, &mut out),
        }
        out
    }

    fn id(&mut self, rt: &mut Runtime) -> String {
        self.id.get_or_insert_with(|| rt.emitter.next_id()).clone()
    }

    /// The contract's JSON error body.
    fn error_body(&self, reason: &str, message: &str) -> String {
        let request_id = self.facts.as_ref().and_then(|f| f.request_id.clone());
        json!({"error": {"code": reason, "message": message, "request_id": request_id, "audit_id": self.id}})
            .to_string()
    }

    /// Answers with the contract's JSON error and records the verdict.
    fn refuse(
        &mut self,
        rt: &mut Runtime,
        status: u16,
        kind: Kind,
        reason: &'static str,
        message: &str,
        out: &mut Output,
    ) {
        let audit_id = self.id(rt);
        let body = self.error_body(reason, message);
        self.verdict = Some((kind, reason));
        self.status = Some(status);
        rt.holds.forget(self.context);
        out.effects.push(Effect::LocalReply { status, reason, body, audit_id });
        out.flow = Flow::Pause;
    }

    /// Plans a body from its headers; `None` when it was refused (413).
    fn plan_body(
        &mut self,
        rt: &mut Runtime,
        src: &dyn Facts,
        (side, ctype): (Side, Option<&str>),
        scan: bool,
        out: &mut Output,
    ) -> Option<Plan> {
        let (max, oversize) = (rt.cfg.classification.max_body_bytes, rt.cfg.classification.on_oversize);
        let p = plan(
            scan,
            ctype,
            src.header(side, "content-encoding").as_deref(),
            src.header(side, "content-length").and_then(|l| l.parse().ok()),
            max,
        );
        // A compressed body cannot be inspected either: `on_oversize` decides for both.
        let refusal = match p {
            Plan::Skip("too_large") => Some(("body_too_large", "exceeds the inspection limit")),
            Plan::Skip("compressed") => Some(("body_compressed", "is compressed and cannot be inspected")),
            _ => None,
        };
        if let (Some((reason, why)), Oversize::Reject) = (refusal, oversize) {
            let direction = if side == Side::Request { "request" } else { "response" };
            self.refuse(rt, 413, Kind::Blocked, reason, &format!("The {direction} body {why}."), out);
            return None;
        }
        Some(p)
    }

    /// A body that may be rewritten: its headers are held until it is read
    /// (the knob on), or travel without `content-length` (chunked on
    /// HTTP/1.1) so its length is never wrong.
    fn may_rewrite(&mut self, rt: &mut Runtime, side: Side, now_ms: u64, out: &mut Output) {
        if rt.cfg.envoy.allow_on_headers_stop_iteration {
            if !self.held(side) {
                match side {
                    Side::Request => self.held_request = true,
                    Side::Response => self.held_response = true,
                }
                rt.holds.hold(self.context, side, now_ms);
            }
        } else {
            out.effects.push(Effect::RemoveHeader(side, "content-length"));
        }
    }

    /// A body was rewritten while its headers are held: they leave with its
    /// length.
    fn replace_body(&self, side: Side, size: usize, bytes: Vec<u8>, out: &mut Output) {
        if self.held(side) {
            out.effects.push(Effect::SetHeader(side, "content-length", bytes.len().to_string()));
        }
        out.effects.push(Effect::ReplaceBody { side, size, bytes });
    }

    fn request_headers(&mut self, rt: &mut Runtime, src: &dyn Facts, end_of_stream: bool, out: &mut Output) {
        self.start_ms = src.now_ms();
        let facts = gather(rt, src, self.start_ms);
        let denial = identity::check(facts.require, &facts.identity);
        let id = self.id(rt);
        out.effects.push(Effect::SetHeader(Side::Request, "x-proxy-audit-id", id.clone()));
        out.effects.push(Effect::FilterState("proxy_audit.audit_id", id));
        let (actions, scan_request) = (facts.actions, facts.scan_request);
        let is_ai = facts.ai.as_ref().map(|d| d.stream_from_path);
        self.facts = Some(facts);
        if let Some(stream) = is_ai {
            self.ai = Some(AiCall {
                request: RequestMeta { stream, ..RequestMeta::default() },
                response: None,
                response_done: false,
                injected: false,
                usage_chunks: None,
                original: None,
                retry: Retry::No,
                sent_headers: Vec::new(),
            });
            // Ask for an uncompressed answer: a compressed one cannot be read.
            out.effects.push(Effect::SetHeader(Side::Request, "accept-encoding", "identity".into()));
            let may_inject = self.facts.as_ref().and_then(|f| f.ai.as_ref()).is_some_and(ai::stream_usage::accepts);
            if may_inject && rt.cfg.ai.stream_usage == StreamUsage::Inject {
                if let Some(call) = self.ai.as_mut() {
                    let mut sent = src.headers(Side::Request);
                    sent.retain(|(k, _)| !matches!(k.as_str(), "accept-encoding" | "x-proxy-audit-id"));
                    sent.extend(out.effects.iter().filter_map(|e| match e {
                        Effect::SetHeader(Side::Request, k, v) => Some((k.to_string(), v.clone())),
                        _ => None,
                    }));
                    call.sent_headers = sent;
                }
            }
            if !end_of_stream {
                self.hold_request = true;
            }
        }
        if let Some(d) = denial {
            self.refuse(rt, d.status, Kind::Denied, d.reason, d.message, out);
            return;
        }
        self.request_done = end_of_stream;
        if !end_of_stream {
            let Some(mut p) = self.plan_body(
                rt,
                src,
                (Side::Request, src.header(Side::Request, "content-type").as_deref()),
                scan_request,
                out,
            ) else {
                return;
            };
            if p == Plan::Stream {
                // Requests are buffered whole, event streams included.
                p = Plan::Buffer(BodyKind::EventStream);
            }
            if matches!(p, Plan::Buffer(_)) || self.hold_request {
                self.may_rewrite(rt, Side::Request, src.now_ms(), out);
            }
            self.request = Inspection::new(p, actions);
        }
        if rt.cfg.audit.delivery == Delivery::WriteAhead {
            let now = src.now_ms();
            let ev = self.build_event(rt, Phase::Begin, (Kind::Access, None, None), now);
            let sealed = rt.emitter.seal_request(&ev, now);
            out.effects.push(Effect::PostBegin(rt.emitter.exporter.single(&sealed.line)));
            self.begin = Some(sealed);
            self.wait_begin = true;
        }
        if self.wait_begin || self.held_request {
            out.flow = Flow::Pause;
        }
    }

    fn begin_delivered(&mut self, rt: &mut Runtime, status: Option<u16>, out: &mut Output) {
        out.flow = Flow::Pause;
        let Some(begin) = self.begin.take() else { return };
        self.wait_begin = false;
        if status.is_some_and(|s| (200..300).contains(&s)) {
            // Headers held for the body go on when the body is done.
            if !self.held_request || self.request_done {
                out.flow = Flow::Continue;
            }
            return;
        }
        // Not acknowledged: the record goes to the batch queue (retried, or
        // declared lost), and the request fails closed or proceeds.
        rt.emitter.enqueue(&begin);
        out.effects.push(Effect::Count("write_ahead_failed"));
        if rt.cfg.audit.on_failure == OnFailure::Closed {
            self.refuse(
                rt,
                503,
                Kind::Blocked,
                "audit_unavailable",
                "The audit trail is unavailable; the request was not forwarded.",
                out,
            );
        } else if !self.held_request || self.request_done {
            out.flow = Flow::Continue;
        }
    }

    fn request_body(&mut self, rt: &mut Runtime, src: &dyn Facts, size: usize, end_of_stream: bool, out: &mut Output) {
        if self.verdict.is_some() {
            out.flow = Flow::Pause;
            return;
        }
        let buffered = matches!(self.request.plan, Plan::Buffer(_));
        if !(buffered || self.hold_request) {
            // Not inspected: digest what passes.
            self.request.observe(&src.body(Side::Request, size));
            self.request_done = end_of_stream;
            return;
        }
        let (max, oversize) = (rt.cfg.classification.max_body_bytes, rt.cfg.classification.on_oversize);
        if size as u64 > max {
            if buffered && oversize == Oversize::Reject {
                self.refuse(
                    rt,
                    413,
                    Kind::Blocked,
                    "body_too_large",
                    "The request body exceeds the inspection limit.",
                    out,
                );
                return;
            }
            let so_far = src.body(Side::Request, size);
            if buffered {
                self.request.give_up("too_large", &so_far);
            } else {
                self.request.observe(&so_far);
            }
            self.hold_request = false;
            self.request_done = end_of_stream;
            self.release_request(out);
            return;
        }
        if !end_of_stream {
            out.flow = Flow::Pause;
            return;
        }
        self.request_done = true;
        let body = src.body(Side::Request, size);
        let actions = self.facts.as_ref().map(|f| f.actions).unwrap_or_default();
        let mut rewritten = None;
        // A model call reads the classifier's parse of the body (one parse).
        let mut meta = None;
        // Whether the parsed body's top-level `stream` is `true` (`None`:
        // not parsed). Rewriting never makes it so (values it rewrites are
        // strings and numbers; renamed members get marks, never `stream`):
        // with `false` the stream_options injection has nothing to do.
        let mut streams = None;
        if buffered {
            let d = self.ai.as_ref().and(self.facts.as_ref()).and_then(|f| f.ai.as_ref());
            rewritten = self.request.scan_buffered_parsed(&rt.classifier, &body, &actions, &mut |v| {
                meta = d.map(|d| ai::read_request(d, v));
                streams = Some(v.get("stream") == Some(&serde_json::Value::Bool(true)));
            });
            if let Some(cat) = self.request.blocked {
                let reason = block_reason(cat, Side::Request);
                self.refuse(rt, 403, Kind::Blocked, reason, BLOCKED_REQUEST, out);
                return;
            }
        } else {
            self.request.observe(&body);
        }
        if let (Some(d), Some(call)) = (self.facts.as_ref().and_then(|f| f.ai.as_ref()), self.ai.as_mut()) {
            call.request = meta.take().unwrap_or_else(|| ai::parse_request(d, &body));
            let threshold = self.facts.as_ref().and_then(|f| f.block_injection_score);
            if let (Some(limit), Some(score)) = (threshold, call.request.prompt_injection_score) {
                if score >= limit {
                    let message = "The prompt looks like a prompt-injection attempt.";
                    self.refuse(rt, 403, Kind::Blocked, "prompt_injection", message, out);
                    return;
                }
            }
            if rt.cfg.ai.stream_usage == StreamUsage::Inject {
                // Not where the upstream refused the option before (this VM).
                let authority = self.facts.as_ref().map_or("", |f| f.authority.as_str());
                let key = retry::key(d.provider, authority, d.api_version.as_deref());
                if !rt.refusals.refused(&key) && streams != Some(false) {
                    if let Some(new) = ai::inject_stream_usage(d, rewritten.as_deref().unwrap_or(&body)) {
                        let before = rewritten.replace(new).unwrap_or_else(|| body.clone());
                        let headers = std::mem::take(&mut call.sent_headers);
                        call.original = Some(Original { body: before, key, headers });
                        call.injected = true;
                    }
                }
            }
        }
        if let Some(new) = rewritten {
            self.replace_body(Side::Request, size, new, out);
        }
        self.release_request(out);
    }

    /// The request body is done: held headers go on, unless the begin
    /// record still waits.
    fn release_request(&mut self, out: &mut Output) {
        out.flow = if self.wait_begin { Flow::Pause } else { Flow::Continue };
    }

    fn response_headers(&mut self, rt: &mut Runtime, src: &dyn Facts, end_of_stream: bool, out: &mut Output) {
        self.status = src.header(Side::Response, ":status").and_then(|s| s.parse().ok()).or(self.status);
        if let Some(id) = &self.id {
            out.effects.push(Effect::SetHeader(Side::Response, "x-proxy-audit-id", id.clone()));
        }
        if self.verdict.is_some() {
            return;
        }
        if self.retry_without_injection(src, out) {
            return;
        }
        // Read once: the model-call tracker and the body plan both need it.
        let ctype = src.header(Side::Response, "content-type");
        if let (Some(d), Some(call)) = (self.facts.as_ref().and_then(|f| f.ai.as_ref()), self.ai.as_mut()) {
            let mut t = ResponseTracker::new(d, ctype.as_deref().unwrap_or_default(), call.request.stream);
            t.set_status(self.status, call.injected);
            for h in ["x-amzn-bedrock-input-token-count", "x-amzn-bedrock-output-token-count"] {
                if let Some(v) = src.header(Side::Response, h) {
                    t.header(h, &v);
                }
            }
            if end_of_stream {
                t.finish(src.now_ms(), false);
                call.response_done = true;
            }
            call.response = Some(t);
        }
        if end_of_stream {
            return;
        }
        let (scan, actions) = self.facts.as_ref().map_or((false, Actions::default()), |f| (f.scan_response, f.actions));
        let Some(p) = self.plan_body(rt, src, (Side::Response, ctype.as_deref()), scan, out) else { return };
        self.response = Inspection::new(p, actions);
        if let Some(ct) = &ctype {
            self.response.set_stream_content_type(ct);
        }
        let sse = ctype
            .as_deref()
            .and_then(|c| c.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"));
        if let Some(call) = self.ai.as_mut().filter(|c| c.injected && sse) {
            // The usage this filter asked for is the event's, not the client's:
            // the redactor takes it back from the frames it reads, or else a
            // reframer does.
            if self.response.streams() && !self.response.streams_aws() {
                self.response.take_back_injected_usage();
            } else {
                call.usage_chunks = Some(UsageChunks::default());
            }
        }
        match p {
            Plan::Buffer(_) => self.may_rewrite(rt, Side::Response, src.now_ms(), out),
            // A stream keeps streaming: its length may change, its headers go now.
            Plan::Stream => out.effects.push(Effect::RemoveHeader(Side::Response, "content-length")),
            Plan::Skip(_) => {}
        }
        if self.held_response {
            out.flow = Flow::Pause;
        }
    }

    /// The upstream answered 400 or 422 to a request the filter added
    /// `stream_options` to: the response is held and the request, as the
    /// client sent it, goes again to the same cluster ([`retry`]).
    fn retry_without_injection(&mut self, src: &dyn Facts, out: &mut Output) -> bool {
        let Some(call) = self.ai.as_mut() else { return false };
        if call.retry != Retry::No || !call.injected || !retry::may_be_refusal(self.status) {
            return false;
        }
        let cluster = src.property(&["xds", "cluster_name"]).and_then(|b| String::from_utf8(b).ok());
        let (Some(cluster), Some(original)) = (cluster.filter(|c| !c.is_empty()), call.original.as_mut()) else {
            return false;
        };
        let body = std::mem::take(&mut original.body);
        let headers = retry::request_headers(&original.headers, body.len());
        call.retry = Retry::InFlight;
        out.effects.push(Effect::Retry { cluster, headers, body, timeout_ms: retry::TIMEOUT_MS });
        out.flow = Flow::Pause;
        true
    }

    /// The retry answered: that answer, read and redacted as the response,
    /// goes to the client instead of the refusal; a 2xx teaches the VM not
    /// to inject for this upstream again. A failed retry lets the refusal go.
    fn retry_answered(&mut self, rt: &mut Runtime, src: &dyn Facts, status: Option<u16>, out: &mut Output) {
        let Some(call) = self.ai.as_mut().filter(|c| c.retry == Retry::InFlight) else { return };
        call.retry = Retry::Done;
        let Some((status, (headers, body))) = status.zip(src.call_response()) else {
            out.flow = Flow::Continue;
            return;
        };
        if (200..300).contains(&status) {
            call.retry = Retry::Succeeded;
            if let Some(original) = &call.original {
                rt.refusals.remember(&original.key);
            }
        }
        // The answer is to the request without the option: nothing to take back.
        call.injected = false;
        call.usage_chunks = None;
        call.response = None;
        call.response_done = false;
        self.status = Some(status);
        // The answer's headers are the filter's to write (a local reply):
        // a blocked answer gets its 403.
        self.held_response = true;
        let mut got = headers.clone();
        got.retain(|(k, _)| k != ":status");
        got.push((":status".into(), status.to_string()));
        let answer = CallAnswer { src, headers: got, body };
        let mut sub = Output::new();
        self.response_headers(rt, &answer, answer.body.is_empty(), &mut sub);
        if !answer.body.is_empty() {
            self.response_body(rt, &answer, answer.body.len(), true, &mut sub);
        }
        let (mut reply_status, mut reply_headers, mut reply_body) =
            (status, retry::reply_headers(&headers), answer.body.clone());
        for e in sub.effects {
            match e {
                Effect::SetHeader(Side::Response, ":status", v) => reply_status = v.parse().unwrap_or(reply_status),
                Effect::SetHeader(Side::Response, "content-length", _) | Effect::Resume(_) => {}
                Effect::SetHeader(Side::Response, name, v) => {
                    reply_headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
                    reply_headers.push((name.to_string(), v));
                }
                Effect::RemoveHeader(Side::Response, name) => {
                    reply_headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name))
                }
                Effect::ReplaceBody { side: Side::Response, bytes, .. } => reply_body = bytes,
                // The retried answer itself is refused (oversize or compressed
                // with `on_oversize: reject`): that refusal is the one reply.
                Effect::LocalReply { status, body, audit_id, .. } => {
                    reply_status = status;
                    reply_headers = vec![
                        ("content-type".to_string(), "application/json".to_string()),
                        ("x-proxy-audit-id".to_string(), audit_id),
                    ];
                    reply_body = body.into_bytes();
                }
                other => out.effects.push(other),
            }
        }
        // Answered whole: nothing of this stream is held any more.
        self.held_response = false;
        rt.holds.forget(self.context);
        out.effects.push(Effect::Reply { status: reply_status, headers: reply_headers, body: reply_body });
        out.flow = Flow::Pause;
    }

    /// Pseudonyms of the request, when `classification.restore` is on.
    fn restore_map(&self, rt: &Runtime) -> Option<Vec<(String, String)>> {
        let on = rt.cfg.classification.restore;
        (on && !self.request.pseudonyms.is_empty()).then(|| self.request.pseudonyms.clone())
    }

    /// The SSE event (or eventstream exception) that ends a stream the
    /// filter blocked mid-way.
    fn stream_block_frame(&self, category: Category) -> Vec<u8> {
        let body = self.error_body(
            block_reason(category, Side::Response),
            "The response carried data that policy does not allow to be returned; the stream was ended.",
        );
        if self.response.streams_aws() {
            // An eventstream client reads an exception message.
            let headers = [
                (":message-type", "exception"),
                (":exception-type", "modelStreamErrorException"),
                (":content-type", "application/json"),
            ];
            return ai::encode_eventstream(&headers, body.as_bytes());
        }
        crate::sse::encode_frame(Some("error"), &body)
    }

    fn response_body(&mut self, rt: &mut Runtime, src: &dyn Facts, size: usize, end_of_stream: bool, out: &mut Output) {
        if self.response.blocked.is_some() {
            // A blocked stream has ended with its error event: nothing more
            // of the upstream's answer reaches the client.
            out.effects.push(Effect::ReplaceBody { side: Side::Response, size, bytes: Vec::new() });
            return;
        }
        if self.verdict.is_some() {
            return;
        }
        if self.ai.as_ref().is_some_and(|c| c.retry == Retry::InFlight) {
            // The refusal waits for the retry's answer, which replaces it.
            out.flow = Flow::Pause;
            return;
        }
        // Buffered bodies grow while paused: read them once, whole, at the end
        // (or when they outgrow the limit); other bodies chunk by chunk.
        let whole = matches!(self.response.plan, Plan::Buffer(_));
        let too_large = whole && size as u64 > rt.cfg.classification.max_body_bytes;
        if whole && !end_of_stream && !too_large {
            out.flow = Flow::Pause;
            return;
        }
        let body = src.body(Side::Response, size);
        let now = src.now_ms();
        crate::stages::mark("body read (host)");
        // An event stream that the redactor reads: the model-call tracker gets
        // its frames, already parsed, from the redactor (one parse per event).
        let shares_frames = self.response.streams()
            && self.ai.as_ref().and_then(|c| c.response.as_ref()).is_some_and(ResponseTracker::takes_sse_frames);
        // A buffered body that is scanned: the tracker finishes on the
        // classifier's parse of it (one parse), below.
        let scanned_whole = whole && !too_large;
        if let (Some(call), false) = (self.ai.as_mut(), shares_frames) {
            if let Some(t) = call.response.as_mut() {
                t.push(&body, now);
                if end_of_stream && !scanned_whole {
                    t.finish(now, false);
                    call.response_done = true;
                }
            }
        }
        let restore_map = self.restore_map(rt);
        match self.response.plan {
            Plan::Buffer(_) => {
                if too_large {
                    self.response.give_up("too_large", &body);
                    return;
                }
                let actions = self.facts.as_ref().map(|f| f.actions).unwrap_or_default();
                let mut tracker = self.ai.as_mut().and_then(|c| c.response.as_mut());
                let rewritten = self.response.scan_buffered_parsed(&rt.classifier, &body, &actions, &mut |v| {
                    if let Some(t) = tracker.as_deref_mut() {
                        t.finish_parsed(now, false, Some(v));
                    }
                });
                if let Some(call) = self.ai.as_mut() {
                    // (A no-op when the tracker finished on the parse.)
                    if let Some(t) = call.response.as_mut() {
                        t.finish(now, false);
                        call.response_done = true;
                    }
                }
                if let Some(cat) = self.response.blocked {
                    let reason = block_reason(cat, Side::Response);
                    let error = self.error_body(reason, BLOCKED_RESPONSE);
                    self.verdict = Some((Kind::Blocked, reason));
                    if self.held_response {
                        // The headers are still ours: the client gets a real
                        // blocking status with the JSON error.
                        self.status = Some(403);
                        out.effects.push(Effect::SetHeader(Side::Response, ":status", "403".into()));
                        out.effects.push(Effect::SetHeader(Side::Response, "content-type", "application/json".into()));
                    }
                    // Without the knob the status line has left: the body
                    // becomes the JSON error, nothing of the original is released.
                    self.replace_body(Side::Response, size, error.into_bytes(), out);
                    return;
                }
                let mut new = rewritten;
                if let Some(map) = &restore_map {
                    new = restore(new.as_deref().unwrap_or(&body), map).or(new);
                }
                if let Some(new) = new {
                    self.replace_body(Side::Response, size, new, out);
                }
            }
            Plan::Stream => {
                if let (Some(map), false) = (&restore_map, self.restore_set) {
                    // Tokens the model splits across events are put back too.
                    self.response.set_restore(map);
                    self.restore_set = true;
                }
                let mut tracker = self.ai.as_mut().and_then(|c| c.response.as_mut()).filter(|_| shares_frames);
                let mut chunk =
                    self.response.stream_chunk_observed(&rt.classifier, &body, end_of_stream, &mut |f, p, repeat| {
                        if let Some(t) = tracker.as_deref_mut() {
                            t.sse_event_repeat(f, p, repeat, now);
                        }
                    });
                if let (true, Some(call)) = (shares_frames && end_of_stream, self.ai.as_mut()) {
                    if let Some(t) = call.response.as_mut() {
                        t.finish(now, false);
                        call.response_done = true;
                    }
                }
                if let Some(cat) = self.response.blocked {
                    // Headers are gone: end the stream with an error event instead.
                    chunk = self.stream_block_frame(cat);
                    self.verdict = Some((Kind::Blocked, block_reason(cat, Side::Response)));
                } else {
                    if let (Some(map), false) = (&restore_map, self.response.streams_aws()) {
                        // (Not on AWS eventstream: its messages carry lengths and
                        // CRCs; the redactor restores inside them.)
                        chunk = restore(&chunk, map).unwrap_or(chunk);
                    }
                    if let Some(f) = self.ai.as_mut().and_then(|c| c.usage_chunks.as_mut()) {
                        chunk = f.push(&chunk);
                        if end_of_stream {
                            chunk.extend(f.finish());
                        }
                    }
                }
                crate::stages::mark("after the redactor");
                // A chunk released as it came (most events of a stream) is
                // left in the host's buffer: no write back.
                if !crate::swar::same(&chunk, &body) {
                    out.effects.push(Effect::ReplaceBody { side: Side::Response, size, bytes: chunk });
                }
            }
            Plan::Skip(_) => {
                self.response.observe(&body);
                if let Some(f) = self.ai.as_mut().and_then(|c| c.usage_chunks.as_mut()) {
                    let mut chunk = f.push(&body);
                    if end_of_stream {
                        chunk.extend(f.finish());
                    }
                    out.effects.push(Effect::ReplaceBody { side: Side::Response, size, bytes: chunk });
                }
            }
        }
    }

    /// The event for this request, from the facts gathered so far.
    fn build_event(
        &mut self,
        rt: &mut Runtime,
        phase: Phase,
        (kind, status, reason): (Kind, Option<u16>, Option<String>),
        now: u64,
    ) -> RequestEvent {
        let complete = phase == Phase::Complete;
        let id = if complete { self.id(rt) } else { rt.emitter.next_id() };
        let ai = match (self.facts.as_ref().and_then(|f| f.ai.as_ref()), &self.ai) {
            (Some(d), Some(call)) => Some(ai::event_json(d, &call.request, call.response.as_ref(), self.start_ms)),
            _ => None,
        };
        let mut ev = RequestEvent {
            id,
            time_ms: self.start_ms,
            kind,
            phase,
            actor: identity::Actor::anonymous(),
            identity_reason: None,
            method: String::new(),
            path: String::new(),
            verb: "READ",
            authority: String::new(),
            resource_type: None,
            resource_id: None,
            address: None,
            user_agent: None,
            request_id: None,
            status,
            duration_ms: complete.then(|| now.saturating_sub(self.start_ms)),
            reason,
            purpose: None,
            request: if complete { self.request.record() } else { BodyRecord::default() },
            response: if complete { self.response.record() } else { BodyRecord::default() },
            ai,
        };
        if let Some(f) = self.facts.as_mut() {
            // The complete event is the exchange's last word: it takes the
            // strings it records (the facts stay, emptied); a begin record copies.
            f.fill_event(&mut ev, complete);
        }
        ev
    }

    fn log(&mut self, rt: &mut Runtime, src: &dyn Facts, out: &mut Output) {
        if let Some(begin) = self.begin.take() {
            // The stream ended while its begin record was in flight (the call
            // dies with the stream): queue it so it is retried, never lost.
            rt.emitter.enqueue(&begin);
        }
        let now = src.now_ms();
        let saw_headers = self.facts.is_some();
        if self.start_ms == 0 {
            let arrived =
                src.property(&["request", "time"]).and_then(|b| Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?)));
            self.start_ms = arrived.map_or(now, |ns| ns / 1_000_000);
        }
        if self.facts.is_none() {
            self.facts = Some(gather(rt, src, self.start_ms));
        }
        let code =
            src.property(&["response", "code"]).and_then(|b| Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?)));
        let status = code.and_then(|c| u16::try_from(c).ok()).filter(|c| *c != 0).or(self.status);
        if let Some(call) = self.ai.as_mut() {
            if let (Some(t), false) = (call.response.as_mut(), call.response_done) {
                // The stream ended before the upstream finished (client gone).
                t.finish(now, true);
                call.response_done = true;
            }
        }
        let (kind, reason) = match self.verdict {
            Some((k, r)) => (k, Some(r.to_string())),
            // Another filter answered before us (e.g. jwt_authn's 401).
            None if !saw_headers => {
                let details = src
                    .property(&["response", "code_details"])
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|s| !s.is_empty())
                    .map(|d| details_reason(&d));
                let kind = if matches!(status, Some(401 | 403)) { Kind::Denied } else { Kind::Access };
                (kind, details)
            }
            None => {
                // The upstream refused the `stream_options` the filter added:
                // its refusal says so, or the same call without it succeeded.
                // (A retry that also failed proves nothing about the option.)
                let refused = self.ai.as_ref().is_some_and(|c| {
                    c.retry == Retry::Succeeded
                        || c.response.as_ref().is_some_and(ResponseTracker::stream_options_rejected)
                });
                (Kind::Access, refused.then(|| "stream_options_rejected".to_string()))
            }
        };
        let ev = self.build_event(rt, Phase::Complete, (kind, status, reason), now);
        if let Some(actor) = &ev.actor.id {
            out.effects.push(Effect::FilterState("proxy_audit.actor_id", actor.clone()));
        }
        if let Some(a) = &ev.ai {
            ai_filter_state(a, out);
        }
        out.effects.push(Effect::Count("requests"));
        match kind {
            Kind::Denied => out.effects.push(Effect::Count("denied")),
            Kind::Blocked => out.effects.push(Effect::Count("blocked")),
            Kind::Access => {}
        }
        let ai = ev.ai.clone();
        let sealed = rt.emitter.emit_request(&ev, now);
        // Second delivery path: the sealed event for Envoy access loggers.
        out.effects.push(Effect::FilterState("proxy_audit.event", sealed.line.clone()));
        out.effects.push(Effect::Sealed { line: sealed.line, ai });
    }
}

/// A model call's filter state for access logs.
fn ai_filter_state(ai: &serde_json::Value, out: &mut Output) {
    let s = |k: &str| ai.get(k).and_then(serde_json::Value::as_str).unwrap_or("").to_string();
    let n = |k: &str| {
        ai.get("usage")
            .and_then(|u| u.get(k))
            .and_then(serde_json::Value::as_u64)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    for (key, value) in [
        ("proxy_audit.ai_provider", s("provider")),
        ("proxy_audit.ai_request_model", s("request_model")),
        ("proxy_audit.ai_response_model", s("response_model")),
        ("proxy_audit.ai_input_tokens", n("input_tokens")),
        ("proxy_audit.ai_output_tokens", n("output_tokens")),
        ("proxy_audit.ai_total_tokens", n("total_tokens")),
    ] {
        if !value.is_empty() {
            out.effects.push(Effect::FilterState(key, value));
        }
    }
}

/// The retried call's answer as the response's facts (the rest from the host).
struct CallAnswer<'a> {
    src: &'a dyn Facts,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Facts for CallAnswer<'_> {
    fn headers(&self, side: Side) -> Vec<(String, String)> {
        match side {
            Side::Response => self.headers.clone(),
            Side::Request => self.src.headers(side),
        }
    }

    fn header(&self, side: Side, name: &str) -> Option<String> {
        match side {
            Side::Response => self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()),
            Side::Request => self.src.header(side, name),
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.src.property(path)
    }

    fn body(&self, side: Side, size: usize) -> Vec<u8> {
        match side {
            Side::Response => self.body.get(..size.min(self.body.len())).unwrap_or_default().to_vec(),
            Side::Request => self.src.body(side, size),
        }
    }

    fn now_ms(&self) -> u64 {
        self.src.now_ms()
    }
}
