//! The request context: gathers facts from the host, asks the core what to
//! do, writes the answer back, and emits exactly one event in `on_log`
//! (which Envoy calls for every stream, local replies included).

use crate::host;
use crate::shared::Shared;
use proxy_audit_core::config::Require;
use proxy_audit_core::event::{self, BodyRecord, Kind, Phase, RequestEvent};
use proxy_audit_core::identity::{self, Actor, Evidence, Resolution};
use proxy_audit_core::ids::StreamDigest;
use proxy_audit_core::{pbstruct, resources};
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
}

pub struct Request {
    shared: Option<Shared>,
    id: Option<String>,
    start_ms: u64,
    facts: Option<Facts>,
    /// Set when the filter itself answered (denied/blocked) and why.
    verdict: Option<(Kind, &'static str)>,
    status: Option<u16>,
    request_body: StreamDigest,
    response_body: StreamDigest,
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
            request_body: StreamDigest::default(),
            response_body: StreamDigest::default(),
        }
    }

    fn audit_id(&mut self, shared: &Shared) -> String {
        self.id.get_or_insert_with(|| shared.borrow_mut().emitter.next_id()).clone()
    }

    /// Answers with the contract's JSON error and records the verdict.
    fn refuse(&mut self, shared: &Shared, status: u16, kind: Kind, reason: &'static str, message: &str) {
        let audit_id = self.audit_id(shared);
        let request_id = self.facts.as_ref().and_then(|f| f.request_id.clone());
        let body =
            json!({"error": {"code": reason, "message": message, "request_id": request_id, "audit_id": audit_id}});
        self.verdict = Some((kind, reason));
        self.status = Some(status);
        host::send_json(u32::from(status), &body.to_string(), &audit_id);
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
    let no_flag = |_: &str| None;
    let pf = resources::apply(&rt.templates, raw_path, &no_flag);
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
        on_behalf_of_header: cfg.identity.on_behalf_of_header.as_deref().and_then(|h| get(h)),
        now_s: now_ms / 1000,
    };
    let identity = identity::resolve(&cfg.identity, &evidence);
    let address = host::property_string(&["source", "address"]).map(|a| strip_port(&a));
    Facts {
        verb: event::verb(&method, raw_path, get("accept"), false),
        method,
        path: pf.path,
        authority,
        resource_type: pf.resource_type,
        resource_id: pf.resource_id,
        address,
        user_agent: get("user-agent").map(str::to_string),
        request_id: get("x-request-id").map(str::to_string),
        purpose: get(&cfg.audit.purpose_header).map(str::to_string),
        identity,
        require: eff.require,
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

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        self.start_ms = host::now_ms();
        let facts = gather(&shared, self.start_ms);
        let denial = identity::check(facts.require, &facts.identity);
        self.facts = Some(facts);
        let id = self.audit_id(&shared);
        host::set_header(MapType::HttpRequestHeaders, "x-proxy-audit-id", &id);
        if let Some(d) = denial {
            self.refuse(&shared, d.status, Kind::Denied, d.reason, d.message);
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        let chunk = host::buffer(BufferType::HttpRequestBody, 0, body_size);
        self.request_body.update(&chunk);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.status =
            host::header(MapType::HttpResponseHeaders, ":status").and_then(|s| s.parse().ok()).or(self.status);
        if let Some(id) = &self.id {
            host::set_header(MapType::HttpResponseHeaders, "x-proxy-audit-id", id);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        let chunk = host::buffer(BufferType::HttpResponseBody, 0, body_size);
        self.response_body.update(&chunk);
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(shared) = self.shared.clone() else { return };
        let now = host::now_ms();
        let saw_headers = self.facts.is_some();
        if self.start_ms == 0 {
            self.start_ms = host::property_u64(&["request", "time"]).map_or(now, |ns| ns / 1_000_000);
        }
        let facts = match self.facts.take() {
            Some(f) => f,
            None => gather(&shared, self.start_ms),
        };
        let status = host::property_u64(&["response", "code"]).map(|c| c as u16).filter(|c| *c != 0).or(self.status);
        let (kind, reason) = match self.verdict {
            Some((k, r)) => (k, Some(r.to_string())),
            // Another filter answered before us (e.g. jwt_authn's 401).
            None if !saw_headers => {
                let details = host::property_string(&["response", "code_details"]).map(|d| details_reason(&d));
                let kind = if matches!(status, Some(401 | 403)) { Kind::Denied } else { Kind::Access };
                (kind, details)
            }
            None => (Kind::Access, None),
        };
        let id = self.audit_id(&shared);
        let body = |d: &StreamDigest| BodyRecord {
            scanned: false,
            skipped: Some("not_inspected".into()),
            bytes: Some(d.bytes()),
            sha256: (d.bytes() > 0).then(|| d.hex()),
            findings: Vec::new(),
        };
        let actor: Actor = facts.identity.actor;
        let ev = RequestEvent {
            id,
            time_ms: self.start_ms,
            kind,
            phase: Phase::Complete,
            actor,
            method: facts.method,
            path: facts.path,
            verb: facts.verb,
            authority: facts.authority,
            resource_type: facts.resource_type,
            resource_id: facts.resource_id,
            address: facts.address,
            user_agent: facts.user_agent,
            request_id: facts.request_id,
            status,
            duration_ms: Some(now.saturating_sub(self.start_ms)),
            reason,
            purpose: facts.purpose,
            request: body(&self.request_body),
            response: body(&self.response_body),
            ai: None,
        };
        crate::metrics::count("proxy_audit.requests", 1);
        match kind {
            Kind::Denied => crate::metrics::count("proxy_audit.denied", 1),
            Kind::Blocked => crate::metrics::count("proxy_audit.blocked", 1),
            Kind::Access => {}
        }
        shared.borrow_mut().emitter.emit(ev.to_map(), now);
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
