//! The request context: gathers facts from the host, asks the core what to
//! do, writes the answer back, and emits exactly one event in `on_log`
//! (which Envoy calls for every stream, local replies included).

use crate::host;
use crate::shared::Shared;
use proxy_audit_core::ai::{self, Detected, Override, RequestMeta, ResponseTracker, UsageChunks};
use proxy_audit_core::chain::Sealed;
use proxy_audit_core::classify::{restore, Actions, BodyKind};
use proxy_audit_core::config::Oversize;
use proxy_audit_core::config::StreamUsage;
use proxy_audit_core::config::{Delivery, OnFailure, Require};
use proxy_audit_core::event::{self, BodyRecord, Kind, Phase, RequestEvent};
use proxy_audit_core::identity::{self, Evidence, Resolution};
use proxy_audit_core::inspect::{plan, Inspection, Plan};
use proxy_audit_core::pbstruct;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use serde_json::json;

/// What the request headers told us, kept for the event.
struct Facts {
    method: String,
    path: String,
    verb: &'static str,
    authority: String,
    resource_type: Option<String>,
    resource_id: Option<String>,
    address: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    purpose: Option<String>,
    identity: Resolution,
    require: Require,
    actions: Actions,
    scan_request: bool,
    scan_response: bool,
    /// A model call, when `ai.enabled` and the request line is one.
    ai: Option<Detected>,
    block_injection_score: Option<u8>,
}

/// What the filter learns about a model call.
struct AiCall {
    request: RequestMeta,
    response: Option<ResponseTracker>,
    response_done: bool,
    /// The filter added `stream_options.include_usage` to the request.
    injected: bool,
    /// Then: takes the usage it asked for back out of the stream.
    usage_chunks: Option<UsageChunks>,
}

pub struct Request {
    shared: Option<Shared>,
    id: Option<String>,
    start_ms: u64,
    facts: Option<Facts>,
    /// Set when the filter itself answered (denied/blocked) and why.
    verdict: Option<(Kind, &'static str)>,
    status: Option<u16>,
    request: Inspection,
    response: Inspection,
    /// The request headers wait for the begin record.
    wait_begin: bool,
    ai: Option<AiCall>,
    /// The request body is held whole for the AI parser (even when not scanned).
    hold_request: bool,
    /// Write-ahead: token of the `begin` delivery we are waiting for.
    begin_token: Option<u32>,
    begin: Option<Sealed>,
    /// The response's stream redactor has the restore map.
    restore_set: bool,
}

impl Request {
    pub fn new(shared: Option<Shared>) -> Self {
        Request {
            shared,
            id: None,
            start_ms: 0,
            facts: None,
            verdict: None,
            status: None,
            request: Inspection::new(Plan::Skip("no_body"), Actions::default()),
            response: Inspection::new(Plan::Skip("no_body"), Actions::default()),
            restore_set: false,
            wait_begin: false,
            ai: None,
            hold_request: false,
            begin_token: None,
            begin: None,
        }
    }

    fn audit_id(&mut self, shared: &Shared) -> String {
        self.id.get_or_insert_with(|| shared.borrow_mut().emitter.next_id()).clone()
    }

    /// The event for this request, from the facts gathered so far.
    fn build_event(
        &mut self,
        shared: &Shared,
        facts: &Facts,
        phase: Phase,
        (kind, status, reason): (Kind, Option<u16>, Option<String>),
        now: u64,
    ) -> RequestEvent {
        let complete = phase == Phase::Complete;
        RequestEvent {
            id: if complete { self.audit_id(shared) } else { shared.borrow_mut().emitter.next_id() },
            time_ms: self.start_ms,
            kind,
            phase,
            actor: facts.identity.actor.clone(),
            identity_reason: facts.identity.reason,
            method: facts.method.clone(),
            path: facts.path.clone(),
            verb: facts.verb,
            authority: facts.authority.clone(),
            resource_type: facts.resource_type.clone(),
            resource_id: facts.resource_id.clone(),
            address: facts.address.clone(),
            user_agent: facts.user_agent.clone(),
            request_id: facts.request_id.clone(),
            status,
            duration_ms: complete.then(|| now.saturating_sub(self.start_ms)),
            reason,
            purpose: facts.purpose.clone(),
            request: if complete { self.request.record() } else { BodyRecord::default() },
            response: if complete { self.response.record() } else { BodyRecord::default() },
            ai: match (&facts.ai, &self.ai) {
                (Some(d), Some(call)) => Some(ai::event_json(d, &call.request, call.response.as_ref(), self.start_ms)),
                _ => None,
            },
        }
    }

    /// Write-ahead: seals a `begin` record and sends it from this context;
    /// the request waits (paused) for the log service's acknowledgement.
    fn write_ahead(&mut self, shared: &Shared, facts: &Facts) -> bool {
        let now = host::now_ms();
        let ev = self.build_event(shared, facts, Phase::Begin, (Kind::Access, None, None), now);
        let mut rt = shared.borrow_mut();
        let sealed = rt.emitter.seal(ev.to_map(), now);
        let batch = rt.emitter.exporter.single(&sealed.line);
        let sent = host::post_batch(&rt.cfg.audit.exporter, &batch);
        match sent {
            Ok(token) => {
                self.begin_token = Some(token);
                self.begin = Some(sealed);
                true
            }
            Err(_) => {
                rt.emitter.enqueue(&sealed);
                false
            }
        }
    }

    /// The `begin` record could not be delivered: fail closed or open.
    fn begin_failed(&mut self, shared: &Shared) -> Action {
        crate::metrics::count("proxy_audit.write_ahead_failed", 1);
        let closed = shared.borrow().cfg.audit.on_failure == OnFailure::Closed;
        if closed {
            self.refuse(
                shared,
                503,
                Kind::Blocked,
                "audit_unavailable",
                "The audit trail is unavailable; the request was not forwarded.",
            );
            Action::Pause
        } else {
            Action::Continue
        }
    }

    /// Plans a body from its headers; `None` when it was refused (413).
    fn plan_body(&mut self, shared: &Shared, headers: MapType, direction: &str, scan: bool) -> Option<Plan> {
        let (max, oversize) = {
            let c = &shared.borrow().cfg.classification;
            (c.max_body_bytes, c.on_oversize)
        };
        let p = plan(
            scan,
            host::header(headers, "content-type").as_deref(),
            host::header(headers, "content-encoding").as_deref(),
            host::header(headers, "content-length").and_then(|l| l.parse().ok()),
            max,
        );
        // A compressed body cannot be inspected either: `on_oversize` decides for both.
        let refusal = match p {
            Plan::Skip("too_large") => Some(("body_too_large", "exceeds the inspection limit")),
            Plan::Skip("compressed") => Some(("body_compressed", "is compressed and cannot be inspected")),
            _ => None,
        };
        if let (Some((reason, why)), Oversize::Reject) = (refusal, oversize) {
            self.refuse(shared, 413, Kind::Blocked, reason, &format!("The {direction} body {why}."));
            return None;
        }
        Some(p)
    }

    /// Pseudonyms of the request, when `classification.restore` is on.
    fn restore_map(&self, shared: &Shared) -> Option<Vec<(String, String)>> {
        let on = shared.borrow().cfg.classification.restore;
        (on && !self.request.pseudonyms.is_empty()).then(|| self.request.pseudonyms.clone())
    }

    /// The SSE event that ends a stream the filter blocked mid-way.
    fn stream_block_frame(&self, category: &str) -> Vec<u8> {
        let body = self.error_body(
            block_reason(category, "response"),
            "The response carried data that policy does not allow to be returned; the stream was ended.",
        );
        if self.response.streams_aws() {
            // An eventstream client reads an exception message.
            let headers = [
                (":message-type", "exception"),
                (":exception-type", "modelStreamErrorException"),
                (":content-type", "application/json"),
            ];
            return proxy_audit_core::ai::encode_eventstream(&headers, body.as_bytes());
        }
        proxy_audit_core::sse::encode_frame(Some("error"), &body)
    }

    /// The contract's JSON error body.
    fn error_body(&self, reason: &str, message: &str) -> String {
        let request_id = self.facts.as_ref().and_then(|f| f.request_id.clone());
        json!({"error": {"code": reason, "message": message, "request_id": request_id, "audit_id": self.id}})
            .to_string()
    }

    /// Answers with the contract's JSON error and records the verdict.
    fn refuse(&mut self, shared: &Shared, status: u16, kind: Kind, reason: &'static str, message: &str) {
        let audit_id = self.audit_id(shared);
        let body = self.error_body(reason, message);
        self.verdict = Some((kind, reason));
        self.status = Some(status);
        host::send_json(u32::from(status), &body, &audit_id);
    }
}

/// Reads the request facts from the request headers (also in the log phase,
/// for streams that never reached `on_http_request_headers`).
fn gather(shared: &Shared, now_ms: u64) -> Facts {
    let headers = host::headers(MapType::HttpRequestHeaders);
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let rt = shared.borrow();
    let cfg = &rt.cfg;
    let method = get(":method").unwrap_or("").to_string();
    let raw_path = get(":path").unwrap_or("/");
    let authority = get(":authority").unwrap_or("").to_string();
    let route_path = raw_path.split('?').next().unwrap_or(raw_path);
    let eff = cfg.effective(&method, route_path, &authority);
    let pf = rt.path_facts(raw_path);
    // Envoy returns the `metadata` property as protobuf `Metadata` bytes.
    let jwt_authn_claims = host::property(&["metadata"])
        .and_then(|b| pbstruct::filter_metadata(&b, "envoy.filters.http.jwt_authn"))
        .and_then(|ns| match ns.get(&cfg.identity.jwt.jwt_authn_payload_key) {
            Some(serde_json::Value::Object(claims)) if !claims.is_empty() => Some(claims.clone()),
            _ => None,
        });
    let peer_san = host::property_string(&["connection", "uri_san_peer_certificate"]);
    let evidence = Evidence {
        jwt_authn_claims,
        token_header: get(&cfg.identity.jwt.header),
        hs256_key: rt.hs256_key.as_deref(),
        peer_uri_san: peer_san.as_deref(),
        on_behalf_of_header: cfg.identity.on_behalf_of_header.as_deref().and_then(&get),
        now_s: now_ms / 1000,
    };
    let identity = identity::resolve(&cfg.identity, &evidence);
    let ai_call = if eff.ai_enabled {
        let ov = eff
            .ai_provider
            .map(|p| Override { provider: p.to_string(), operation: eff.ai_operation.map(str::to_string) });
        ai::detect(&method, raw_path, &authority, ov.as_ref())
    } else {
        None
    };
    let address = host::property_string(&["source", "address"]).map(|a| strip_port(&a));
    Facts {
        verb: event::verb(&method, raw_path, get("accept"), ai_call.is_some()),
        method,
        path: pf.path,
        authority,
        resource_type: pf.resource_type,
        resource_id: pf.resource_id,
        address,
        user_agent: get("user-agent").map(bounded_header),
        request_id: get("x-request-id").map(str::to_string),
        purpose: get(&cfg.audit.purpose_header).map(bounded_header),
        identity,
        require: eff.require,
        actions: *eff.actions,
        scan_request: eff.request,
        scan_response: eff.response,
        ai: ai_call,
        block_injection_score: eff.block_injection_score,
    }
}

/// `secret_in_request`, `pci_in_response`, ...
fn block_reason(category: &str, direction: &str) -> &'static str {
    match (category, direction) {
        ("pii", "request") => "pii_in_request",
        ("phi", "request") => "phi_in_request",
        ("pci", "request") => "pci_in_request",
        ("secret", "request") => "secret_in_request",
        ("custom", "request") => "custom_in_request",
        ("pii", _) => "pii_in_response",
        ("phi", _) => "phi_in_response",
        ("pci", _) => "pci_in_response",
        ("secret", _) => "secret_in_response",
        _ => "custom_in_response",
    }
}

/// `10.0.0.1:5555` → `10.0.0.1`, `[::1]:5555` → `::1`.
fn strip_port(addr: &str) -> String {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host.to_string(),
        _ => addr.to_string(),
    }
}

/// A machine-readable reason from Envoy's `response.code_details`.
fn details_reason(details: &str) -> String {
    details.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '{' | '}' | '.')).take(80).collect()
}

impl Context for Request {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, _body_size: usize, _num_trailers: usize) {
        if self.begin_token != Some(token_id) {
            return;
        }
        self.begin_token = None;
        let Some(shared) = self.shared.clone() else { return };
        let status = host::call_status(num_headers);
        let begin = self.begin.take();
        self.wait_begin = false;
        if status.is_some_and(|s| (200..300).contains(&s)) {
            let _ = proxy_wasm::hostcalls::resume_http_request();
            return;
        }
        // Not acknowledged: the record goes to the batch queue (retried, or
        // declared lost), and the request fails closed or proceeds.
        if let Some(sealed) = &begin {
            shared.borrow_mut().emitter.enqueue(sealed);
        }
        if self.begin_failed(&shared) == Action::Continue {
            let _ = proxy_wasm::hostcalls::resume_http_request();
        }
    }
}

/// Client-chosen header values go into every event: at most 256 characters.
fn bounded_header(v: &str) -> String {
    v.chars().take(256).collect()
}

/// "Everything held": hosts return what there is when asked for more.
const WHOLE: usize = i32::MAX as usize;

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        self.start_ms = host::now_ms();
        let facts = gather(&shared, self.start_ms);
        let denial = identity::check(facts.require, &facts.identity);
        let id = self.audit_id(&shared);
        host::set_header(MapType::HttpRequestHeaders, "x-proxy-audit-id", &id);
        host::set_property(&["proxy_audit.audit_id"], id.as_bytes());
        let (actions, scan_request) = (facts.actions, facts.scan_request);
        if let Some(d) = &facts.ai {
            self.ai = Some(AiCall {
                request: RequestMeta { stream: d.stream_from_path, ..RequestMeta::default() },
                response: None,
                response_done: false,
                injected: false,
                usage_chunks: None,
            });
            // Ask for an uncompressed answer: a compressed one cannot be read.
            host::set_header(MapType::HttpRequestHeaders, "accept-encoding", "identity");
            if !end_of_stream {
                self.hold_request = true;
                host::remove_header(MapType::HttpRequestHeaders, "content-length");
            }
        }
        self.facts = Some(facts);
        if let Some(d) = denial {
            self.refuse(&shared, d.status, Kind::Denied, d.reason, d.message);
            return Action::Pause;
        }
        if !end_of_stream {
            let Some(mut p) = self.plan_body(&shared, MapType::HttpRequestHeaders, "request", scan_request) else {
                return Action::Pause;
            };
            if p == Plan::Stream {
                // Requests are buffered whole, event streams included.
                p = Plan::Buffer(BodyKind::EventStream);
            }
            if let Plan::Buffer(_) = p {
                // Envoy cannot hold headers while a filter reads the body (a
                // paused header phase pauses the body too), so a body that may
                // be rewritten travels without content-length (chunked on
                // HTTP/1.1): its length is never wrong.
                host::remove_header(MapType::HttpRequestHeaders, "content-length");
            }
            self.request = Inspection::new(p, actions);
        }
        if shared.borrow().cfg.audit.delivery == Delivery::WriteAhead {
            let facts = self.facts.take();
            let sent = facts.as_ref().is_some_and(|f| self.write_ahead(&shared, f));
            self.facts = facts;
            if !sent && self.begin_failed(&shared) == Action::Pause {
                return Action::Pause;
            }
            self.wait_begin = sent;
        }
        if self.wait_begin {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        if self.verdict.is_some() {
            return Action::Pause;
        }
        let buffered = matches!(self.request.plan, Plan::Buffer(_));
        if buffered || self.hold_request {
            let (max, oversize) = {
                let c = &shared.borrow().cfg.classification;
                (c.max_body_bytes, c.on_oversize)
            };
            if body_size as u64 > max {
                if buffered && oversize == Oversize::Reject {
                    self.refuse(
                        &shared,
                        413,
                        Kind::Blocked,
                        "body_too_large",
                        "The request body exceeds the inspection limit.",
                    );
                    return Action::Pause;
                }
                let so_far = host::buffer(BufferType::HttpRequestBody, 0, body_size);
                if buffered {
                    self.request.give_up("too_large", &so_far);
                } else {
                    self.request.observe(&so_far);
                }
                self.hold_request = false;
                return Action::Continue;
            }
            if !end_of_stream {
                return Action::Pause;
            }
            let body = host::buffer(BufferType::HttpRequestBody, 0, body_size);
            let actions = self.facts.as_ref().map(|f| f.actions).unwrap_or_default();
            let mut out = None;
            if buffered {
                out = self.request.scan_buffered(&shared.borrow().classifier, &body, &actions);
                if let Some(cat) = self.request.blocked {
                    let reason = block_reason(cat.as_str(), "request");
                    self.refuse(
                        &shared,
                        403,
                        Kind::Blocked,
                        reason,
                        "The request carries data that policy does not allow to be forwarded.",
                    );
                    return Action::Pause;
                }
            } else {
                self.request.observe(&body);
            }
            if let (Some(d), Some(call)) = (self.facts.as_ref().and_then(|f| f.ai.as_ref()), self.ai.as_mut()) {
                call.request = ai::parse_request(d, &body);
                let threshold = self.facts.as_ref().and_then(|f| f.block_injection_score);
                if let (Some(limit), Some(score)) = (threshold, call.request.prompt_injection_score) {
                    if score >= limit {
                        self.refuse(
                            &shared,
                            403,
                            Kind::Blocked,
                            "prompt_injection",
                            "The prompt looks like a prompt-injection attempt.",
                        );
                        return Action::Pause;
                    }
                }
                if shared.borrow().cfg.ai.stream_usage == StreamUsage::Inject {
                    if let Some(new) = ai::inject_stream_usage(d, out.as_deref().unwrap_or(&body)) {
                        out = Some(new);
                        call.injected = true;
                    }
                }
            }
            if let Some(new) = out {
                host::set_buffer(BufferType::HttpRequestBody, 0, body_size, &new);
            }
            return Action::Continue;
        }
        // Not inspected: digest what passes.
        let chunk = host::buffer(BufferType::HttpRequestBody, 0, body_size);
        self.request.observe(&chunk);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.status =
            host::header(MapType::HttpResponseHeaders, ":status").and_then(|s| s.parse().ok()).or(self.status);
        if let Some(id) = &self.id {
            host::set_header(MapType::HttpResponseHeaders, "x-proxy-audit-id", id);
        }
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        if self.verdict.is_some() {
            return Action::Continue;
        }
        if let (Some(d), Some(call)) = (self.facts.as_ref().and_then(|f| f.ai.as_ref()), self.ai.as_mut()) {
            let ctype = host::header(MapType::HttpResponseHeaders, "content-type").unwrap_or_default();
            let mut t = ResponseTracker::new(d, &ctype, call.request.stream);
            t.set_status(self.status, call.injected);
            for h in ["x-amzn-bedrock-input-token-count", "x-amzn-bedrock-output-token-count"] {
                if let Some(v) = host::header(MapType::HttpResponseHeaders, h) {
                    t.header(h, &v);
                }
            }
            if end_of_stream {
                t.finish(host::now_ms(), false);
                call.response_done = true;
            }
            call.response = Some(t);
        }
        if end_of_stream {
            return Action::Continue;
        }
        let (scan, actions) = self.facts.as_ref().map_or((false, Actions::default()), |f| (f.scan_response, f.actions));
        let Some(p) = self.plan_body(&shared, MapType::HttpResponseHeaders, "response", scan) else {
            return Action::Pause;
        };
        self.response = Inspection::new(p, actions);
        let ctype = host::header(MapType::HttpResponseHeaders, "content-type");
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
        if matches!(p, Plan::Buffer(_) | Plan::Stream) {
            // The body may change length; see on_http_request_headers.
            host::remove_header(MapType::HttpResponseHeaders, "content-length");
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers end the body (HTTP/2, gRPC): without this, a held body
        // would be released unscanned when the trailers continue the stream.
        let size = host::buffer(BufferType::HttpRequestBody, 0, WHOLE).len();
        self.on_http_request_body(size, true)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        let size = host::buffer(BufferType::HttpResponseBody, 0, WHOLE).len();
        self.on_http_response_body(size, true)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        if self.response.blocked.is_some() {
            // A blocked stream has ended with its error event: nothing more
            // of the upstream's answer reaches the client.
            host::set_buffer(BufferType::HttpResponseBody, 0, body_size, &[]);
            return Action::Continue;
        }
        if self.verdict.is_some() {
            return Action::Continue;
        }
        // Buffered bodies grow while paused: read them once, whole, at the end
        // (or when they outgrow the limit); other bodies chunk by chunk.
        let whole = matches!(self.response.plan, Plan::Buffer(_));
        let too_large = whole && body_size as u64 > shared.borrow().cfg.classification.max_body_bytes;
        if whole && !end_of_stream && !too_large {
            return Action::Pause;
        }
        let body = host::buffer(BufferType::HttpResponseBody, 0, body_size);
        // An event stream that the redactor reads: the model-call tracker gets
        // its frames, already parsed, from the redactor (one parse per event).
        let shares_frames = self.response.streams()
            && self.ai.as_ref().and_then(|c| c.response.as_ref()).is_some_and(|t| t.takes_sse_frames());
        if let (Some(call), false) = (self.ai.as_mut(), shares_frames) {
            let now = host::now_ms();
            if let Some(t) = call.response.as_mut() {
                t.push(&body, now);
                if end_of_stream {
                    t.finish(now, false);
                    call.response_done = true;
                }
            }
        }
        let restore_map = self.restore_map(&shared);
        match self.response.plan {
            Plan::Buffer(_) => {
                if too_large {
                    self.response.give_up("too_large", &body);
                    return Action::Continue;
                }
                let actions = self.facts.as_ref().map(|f| f.actions).unwrap_or_default();
                let rewritten = self.response.scan_buffered(&shared.borrow().classifier, &body, &actions);
                if let Some(cat) = self.response.blocked {
                    // Envoy has sent the status line already (a filter cannot hold
                    // response headers while reading the body): the body becomes
                    // the JSON error, nothing of the original is released.
                    let reason = block_reason(cat.as_str(), "response");
                    let error =
                        self.error_body(reason, "The response carried data that policy does not allow to be returned.");
                    host::set_buffer(BufferType::HttpResponseBody, 0, body_size, error.as_bytes());
                    self.verdict = Some((Kind::Blocked, reason));
                    return Action::Continue;
                }
                let mut out = rewritten;
                if let Some(map) = &restore_map {
                    out = restore(out.as_deref().unwrap_or(&body), map).or(out);
                }
                if let Some(new) = out {
                    host::set_buffer(BufferType::HttpResponseBody, 0, body_size, &new);
                }
                Action::Continue
            }
            Plan::Stream => {
                let now = host::now_ms();
                if let (Some(map), false) = (&restore_map, self.restore_set) {
                    // Tokens the model splits across events are put back too.
                    self.response.set_restore(map);
                    self.restore_set = true;
                }
                let mut tracker = self.ai.as_mut().and_then(|c| c.response.as_mut()).filter(|_| shares_frames);
                let mut out = self.response.stream_chunk_observed(
                    &shared.borrow().classifier,
                    &body,
                    end_of_stream,
                    &mut |frame, parsed| {
                        if let Some(t) = tracker.as_deref_mut() {
                            t.sse_event(frame, parsed, now);
                        }
                    },
                );
                if let (true, Some(call)) = (shares_frames && end_of_stream, self.ai.as_mut()) {
                    if let Some(t) = call.response.as_mut() {
                        t.finish(now, false);
                        call.response_done = true;
                    }
                }
                if let Some(cat) = self.response.blocked {
                    // Headers are gone: end the stream with an error event instead.
                    out = self.stream_block_frame(cat.as_str());
                    self.verdict = Some((Kind::Blocked, block_reason(cat.as_str(), "response")));
                } else {
                    if let (Some(map), false) = (&restore_map, self.response.streams_aws()) {
                        // (Not on AWS eventstream: its messages carry lengths and
                        // CRCs; the redactor restores inside them.)
                        out = restore(&out, map).unwrap_or(out);
                    }
                    if let Some(f) = self.ai.as_mut().and_then(|c| c.usage_chunks.as_mut()) {
                        out = f.push(&out);
                        if end_of_stream {
                            out.extend(f.finish());
                        }
                    }
                }
                host::set_buffer(BufferType::HttpResponseBody, 0, body_size, &out);
                Action::Continue
            }
            Plan::Skip(_) => {
                self.response.observe(&body);
                if let Some(f) = self.ai.as_mut().and_then(|c| c.usage_chunks.as_mut()) {
                    let mut out = f.push(&body);
                    if end_of_stream {
                        out.extend(f.finish());
                    }
                    host::set_buffer(BufferType::HttpResponseBody, 0, body_size, &out);
                }
                Action::Continue
            }
        }
    }

    fn on_log(&mut self) {
        let Some(shared) = self.shared.clone() else { return };
        if let Some(begin) = self.begin.take() {
            // The stream ended while its begin record was in flight (the call
            // dies with the stream): queue it so it is retried, never lost.
            shared.borrow_mut().emitter.enqueue(&begin);
        }
        let now = host::now_ms();
        let saw_headers = self.facts.is_some();
        if self.start_ms == 0 {
            self.start_ms = host::property_u64(&["request", "time"]).map_or(now, |ns| ns / 1_000_000);
        }
        let facts = match self.facts.take() {
            Some(f) => f,
            None => gather(&shared, self.start_ms),
        };
        let status = host::property_u64(&["response", "code"])
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c != 0)
            .or(self.status);
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
                let details = host::property_string(&["response", "code_details"]).map(|d| details_reason(&d));
                let kind = if matches!(status, Some(401 | 403)) { Kind::Denied } else { Kind::Access };
                (kind, details)
            }
            None => {
                // The upstream refused the `stream_options` the filter added.
                let refused = self
                    .ai
                    .as_ref()
                    .and_then(|c| c.response.as_ref())
                    .is_some_and(ResponseTracker::stream_options_rejected);
                (Kind::Access, refused.then(|| "stream_options_rejected".to_string()))
            }
        };
        let ev = self.build_event(&shared, &facts, Phase::Complete, (kind, status, reason), now);
        if let Some(a) = &ev.ai {
            crate::metrics::ai_call(a);
        }
        if let Some(actor) = &ev.actor.id {
            host::set_property(&["proxy_audit.actor_id"], actor.as_bytes());
        }
        crate::metrics::count("proxy_audit.requests", 1);
        match kind {
            Kind::Denied => crate::metrics::count("proxy_audit.denied", 1),
            Kind::Blocked => crate::metrics::count("proxy_audit.blocked", 1),
            Kind::Access => {}
        }
        let sealed = shared.borrow_mut().emitter.emit(ev.to_map(), now);
        // Secondary channel: the sealed event for Envoy access loggers.
        host::set_property(&["proxy_audit.event"], sealed.line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("10.0.0.1:5555"), "10.0.0.1");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(details_reason("jwt_authn_access_denied{Jwt is expired}"), "jwt_authn_access_denied{Jwtisexpired}");
    }
}
