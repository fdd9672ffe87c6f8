//! What the request headers (and a few host properties) tell the event:
//! method, templated path, resource, caller, purpose, the effective policy
//! of the route, and whether this is a model call.

use super::effects::{Facts, Side};
use crate::ai::{self, Detected, Override};
use crate::classify::Actions;
use crate::config::Require;
use crate::event;
use crate::identity::{self, Evidence, Resolution};
use crate::runtime::Runtime;

/// What the request headers told us, kept for the event.
#[derive(Debug)]
pub struct RequestFacts {
    pub method: String,
    pub path: String,
    pub verb: &'static str,
    pub authority: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub purpose: Option<String>,
    pub identity: Resolution,
    pub require: Require,
    pub actions: Actions,
    pub scan_request: bool,
    pub scan_response: bool,
    /// A model call, when `ai.enabled` and the request line is one.
    pub ai: Option<Detected>,
    pub block_injection_score: Option<u8>,
}

/// Reads the request facts (also in the log phase, for streams that never
/// reached the request headers callback).
pub fn gather(rt: &mut Runtime, src: &dyn Facts, now_ms: u64) -> RequestFacts {
    // Only the headers the event and the policy read (the plugin reads a
    // side's header map once per callback and looks names up in it).
    let get = |name: &str| src.header(Side::Request, name);
    let cfg = &rt.cfg;
    let method = get(":method").unwrap_or_default();
    let path_header = get(":path");
    let raw_path = path_header.as_deref().unwrap_or("/");
    let authority = get(":authority").unwrap_or_default();
    let route_path = raw_path.split('?').next().unwrap_or(raw_path);
    let eff = cfg.effective(&method, route_path, &authority);
    let pf = rt.path_facts(raw_path);
    // Envoy returns the `metadata` property as protobuf `Metadata` bytes
    // (decoded once per distinct metadata: see `resolve_metadata_cached`).
    let metadata = src.property(&["metadata"]);
    let peer_san = src
        .property(&["connection", "uri_san_peer_certificate"])
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty());
    let token_header = get(&cfg.identity.jwt.header);
    let on_behalf_of = cfg.identity.on_behalf_of_header.as_deref().and_then(get);
    let evidence = Evidence {
        jwt_authn_claims: None,
        token_header: token_header.as_deref(),
        hs256_key: rt.hs256_key.as_deref(),
        peer_uri_san: peer_san.as_deref(),
        on_behalf_of_header: on_behalf_of.as_deref(),
        now_s: now_ms / 1000,
    };
    let identity = identity::resolve_metadata_cached(&cfg.identity, metadata.as_deref(), &evidence, &mut rt.tokens);
    let ai_call = if eff.ai_enabled {
        let ov = eff.ai_provider.map(|provider| Override { provider, operation: eff.ai_operation });
        ai::detect(&method, raw_path, &authority, ov.as_ref())
    } else {
        None
    };
    let address = src
        .property(&["source", "address"])
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
        .map(|a| strip_port(&a));
    RequestFacts {
        verb: event::verb(&method, raw_path, get("accept").as_deref(), ai_call.is_some()),
        method,
        path: pf.path,
        authority,
        resource_type: pf.resource_type,
        resource_id: pf.resource_id,
        address,
        user_agent: get("user-agent").as_deref().map(bounded_header),
        request_id: get("x-request-id"),
        purpose: get(&cfg.audit.purpose_header).as_deref().map(bounded_header),
        identity,
        require: eff.require,
        actions: *eff.actions,
        scan_request: eff.request,
        scan_response: eff.response,
        ai: ai_call,
        block_injection_score: eff.block_injection_score,
    }
}

impl RequestFacts {
    /// Writes what the event records of the request into `ev`: taken out of
    /// these facts (`take`, for the complete event, the exchange's last
    /// word) or copied (a write-ahead begin record).
    pub fn fill_event(&mut self, ev: &mut event::RequestEvent, take: bool) {
        let s = |x: &mut String| if take { std::mem::take(x) } else { x.clone() };
        let o = |x: &mut Option<String>| if take { x.take() } else { x.clone() };
        ev.actor = if take {
            std::mem::replace(&mut self.identity.actor, identity::Actor::anonymous())
        } else {
            self.identity.actor.clone()
        };
        ev.identity_reason = self.identity.reason;
        ev.method = s(&mut self.method);
        ev.path = s(&mut self.path);
        ev.verb = self.verb;
        ev.authority = s(&mut self.authority);
        ev.resource_type = o(&mut self.resource_type);
        ev.resource_id = o(&mut self.resource_id);
        ev.address = o(&mut self.address);
        ev.user_agent = o(&mut self.user_agent);
        ev.request_id = o(&mut self.request_id);
        ev.purpose = o(&mut self.purpose);
    }
}

/// Client-chosen header values go into every event: at most 256 characters.
fn bounded_header(v: &str) -> String {
    v.chars().take(256).collect()
}

/// `10.0.0.1:5555` → `10.0.0.1`, `[::1]:5555` → `::1`.
pub fn strip_port(addr: &str) -> String {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host.to_string(),
        _ => addr.to_string(),
    }
}

/// A machine-readable reason from Envoy's `response.code_details`.
pub fn details_reason(details: &str) -> String {
    details.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '{' | '}' | '.')).take(80).collect()
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
