//! The audit event builder: request facts in, schema-shaped JSON out.
//!
//! Builds the object of `audit-event.schema.json` (before chaining; see
//! [`crate::chain`]). It takes only facts that are already safe to record:
//! templated paths, identity metadata, digests and finding summaries.

use crate::identity::Actor;
use crate::timefmt::rfc3339_millis;
use serde_json::{json, Map, Value};

pub const SCHEMA: &str = "proxy-audit/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Access,
    Denied,
    Blocked,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Denied => "denied",
            Kind::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Begin,
    Complete,
}

/// What the event says about one body (`data.request` / `data.response`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BodyRecord {
    pub scanned: bool,
    pub skipped: Option<String>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    /// Finding objects as the schema shapes them.
    pub findings: Vec<Value>,
}

impl BodyRecord {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("scanned".into(), self.scanned.into());
        m.insert("skipped".into(), self.skipped.clone().into());
        m.insert("bytes".into(), self.bytes.into());
        m.insert("sha256".into(), self.sha256.clone().into());
        m.insert("findings".into(), Value::Array(self.findings.clone()));
        Value::Object(m)
    }
}

/// Everything a request event records.
#[derive(Debug, Clone)]
pub struct RequestEvent {
    pub id: String,
    pub time_ms: u64,
    pub kind: Kind,
    pub phase: Phase,
    pub actor: Actor,
    /// Why the caller is not attributed (`expired_token`, `bad_signature`...),
    /// recorded as `actor.reason`.
    pub identity_reason: Option<&'static str>,
    pub method: String,
    pub path: String,
    pub verb: &'static str,
    pub authority: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub status: Option<u16>,
    pub duration_ms: Option<u64>,
    pub reason: Option<String>,
    pub purpose: Option<String>,
    pub request: BodyRecord,
    pub response: BodyRecord,
    pub ai: Option<Value>,
}

impl RequestEvent {
    pub fn to_map(&self) -> Map<String, Value> {
        let success = match (self.phase, self.kind, self.status) {
            (Phase::Begin, _, _) | (_, _, None) => Value::Null,
            (_, Kind::Access, Some(s)) => Value::Bool(s < 400),
            _ => Value::Bool(false),
        };
        // Members are inserted, not written through `json!`, which would
        // re-serialize every `Value` handed to it.
        let mut m = Map::new();
        m.insert("schema".into(), SCHEMA.into());
        m.insert("id".into(), self.id.clone().into());
        m.insert("time".into(), rfc3339_millis(self.time_ms).into());
        m.insert("kind".into(), self.kind.as_str().into());
        let phase = match self.phase {
            Phase::Begin => "begin",
            Phase::Complete => "complete",
        };
        m.insert("phase".into(), phase.into());
        m.insert("actor".into(), self.actor_json());
        m.insert("action".into(), json!({"verb": self.verb, "method": self.method, "path": self.path}));
        m.insert(
            "target".into(),
            json!({"authority": self.authority, "resource_type": self.resource_type, "resource_id": self.resource_id}),
        );
        m.insert(
            "source".into(),
            json!({"address": self.address, "user_agent": self.user_agent, "request_id": self.request_id}),
        );
        m.insert(
            "outcome".into(),
            json!({"status_code": self.status, "success": success, "duration_ms": self.duration_ms, "reason": self.reason}),
        );
        m.insert("purpose".into(), self.purpose.clone().into());
        let mut data = Map::new();
        data.insert("request".into(), self.request.to_json());
        data.insert("response".into(), self.response.to_json());
        m.insert("data".into(), Value::Object(data));
        m.insert("ai".into(), self.ai.clone().unwrap_or(Value::Null));
        m
    }
}

/// Writes canonical (RFC 8785) JSON members straight into a buffer. The
/// caller writes keys in canonical order (byte order: every key here is
/// ASCII), so nothing is sorted or re-serialized per request.
struct Members<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Members<'a> {
    fn open(out: &'a mut String) -> Self {
        out.push('{');
        Members { out, first: true }
    }

    /// Continues a member list already open (`first`: no member written yet).
    fn within(out: &'a mut String, first: bool) -> Self {
        Members { out, first }
    }

    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
        self.out
    }

    fn str(&mut self, k: &str, v: &str) {
        let out = self.key(k);
        crate::jcs::write_string(v, out);
    }

    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.key(k).push_str("null"),
        }
    }

    fn opt_u64(&mut self, k: &str, v: Option<u64>) {
        let out = self.key(k);
        match v {
            Some(n) => push_u64(out, n),
            None => out.push_str("null"),
        }
    }

    fn bool(&mut self, k: &str, v: Option<bool>) {
        self.key(k).push_str(match v {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        });
    }

    fn value(&mut self, k: &str, v: &Value) {
        let out = self.key(k);
        crate::jcs::write_value(v, out);
    }

    fn close(self) {
        self.out.push('}');
    }
}

pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(buf.get(i..).unwrap_or_default()).unwrap_or_default());
}

impl BodyRecord {
    fn write(&self, out: &mut String) {
        let mut m = Members::open(out);
        m.opt_u64("bytes", self.bytes);
        let out = m.key("findings");
        out.push('[');
        for (i, f) in self.findings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            crate::jcs::write_value(f, out);
        }
        out.push(']');
        m.bool("scanned", Some(self.scanned));
        m.opt_str("sha256", self.sha256.as_deref());
        m.opt_str("skipped", self.skipped.as_deref());
        m.close();
    }
}

impl RequestEvent {
    fn success(&self) -> Option<bool> {
        match (self.phase, self.kind, self.status) {
            (Phase::Begin, _, _) | (_, _, None) => None,
            (_, Kind::Access, Some(s)) => Some(s < 400),
            _ => Some(false),
        }
    }

    /// The event's canonical JSON members (RFC 8785 order), in the two runs
    /// that come before and after its `chain` member, written straight into
    /// buffers: the same bytes as canonicalizing [`Self::to_map`], without
    /// building, sorting and re-serializing a map (see `Chain::seal_parts`).
    pub fn canonical_parts(&self) -> (String, String) {
        let mut before = String::with_capacity(512);
        let mut m = Members::within(&mut before, true);
        {
            let out = m.key("action");
            let mut a = Members::open(out);
            a.str("method", &self.method);
            a.str("path", &self.path);
            a.str("verb", self.verb);
            a.close();
        }
        {
            let out = m.key("actor");
            self.write_actor(out);
        }
        match &self.ai {
            Some(ai) => m.value("ai", ai),
            None => m.key("ai").push_str("null"),
        }
        let mut after = String::with_capacity(768);
        let mut m = Members::within(&mut after, true);
        {
            let out = m.key("data");
            let mut d = Members::open(out);
            self.request.write(d.key("request"));
            self.response.write(d.key("response"));
            d.close();
        }
        m.str("id", &self.id);
        m.str("kind", self.kind.as_str());
        {
            let out = m.key("outcome");
            let mut o = Members::open(out);
            o.opt_u64("duration_ms", self.duration_ms);
            o.opt_str("reason", self.reason.as_deref());
            o.opt_u64("status_code", self.status.map(u64::from));
            o.bool("success", self.success());
            o.close();
        }
        m.str(
            "phase",
            match self.phase {
                Phase::Begin => "begin",
                Phase::Complete => "complete",
            },
        );
        m.opt_str("purpose", self.purpose.as_deref());
        m.str("schema", SCHEMA);
        {
            let out = m.key("source");
            let mut s = Members::open(out);
            s.opt_str("address", self.address.as_deref());
            s.opt_str("request_id", self.request_id.as_deref());
            s.opt_str("user_agent", self.user_agent.as_deref());
            s.close();
        }
        {
            let out = m.key("target");
            let mut t = Members::open(out);
            t.str("authority", &self.authority);
            t.opt_str("resource_id", self.resource_id.as_deref());
            t.opt_str("resource_type", self.resource_type.as_deref());
            t.close();
        }
        m.str("time", &rfc3339_millis(self.time_ms));
        (before, after)
    }

    fn write_actor(&self, out: &mut String) {
        let a = &self.actor;
        let mut m = Members::open(out);
        m.opt_str("client_id", a.client_id.as_deref());
        m.opt_str("id", a.id.as_deref());
        m.opt_str("issuer", a.issuer.as_deref());
        m.opt_str("on_behalf_of", a.on_behalf_of.as_deref());
        if let Some(reason) = self.identity_reason {
            m.str("reason", reason);
        }
        {
            let out = m.key("roles");
            out.push('[');
            for (i, r) in a.roles.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                crate::jcs::write_string(r, out);
            }
            out.push(']');
        }
        m.str("source", a.source.as_str());
        m.opt_str("tenant", a.tenant.as_deref());
        m.opt_str("token_id", a.token_id.as_deref());
        m.str("type", a.kind.as_str());
        m.bool("verified", Some(a.verified));
        m.close();
    }
}

impl RequestEvent {
    fn actor_json(&self) -> Value {
        let mut a = self.actor.to_json();
        if let (Some(reason), Value::Object(m)) = (self.identity_reason, &mut a) {
            m.insert("reason".into(), reason.into());
        }
        a
    }
}

/// A record about the trail itself: `chain_start`, `checkpoint` or `loss`.
pub fn trail_event(id: String, time_ms: u64, kind: &str, trail: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("schema".into(), SCHEMA.into());
    m.insert("id".into(), id.into());
    m.insert("time".into(), rfc3339_millis(time_ms).into());
    m.insert("kind".into(), kind.into());
    m.insert("trail".into(), trail);
    m
}

/// The verb of an HTTP method. Model calls are `INVOKE`; reads whose path or
/// `Accept` asks for a bulk download (`/export`, CSV) are `EXPORT`.
pub fn verb(method: &str, path: &str, accept: Option<&str>, is_ai: bool) -> &'static str {
    if is_ai {
        return "INVOKE";
    }
    let m = method.to_ascii_uppercase();
    match m.as_str() {
        "GET" | "HEAD" | "OPTIONS" => {
            let p = path.split('?').next().unwrap_or(path).to_ascii_lowercase();
            let bulk = p.split('/').any(|s| s == "export" || s.ends_with(".csv") || s == "$export")
                || accept.is_some_and(|a| a.contains("text/csv") || a.contains("ndjson"));
            if bulk {
                "EXPORT"
            } else {
                "READ"
            }
        }
        "POST" => "CREATE",
        "PUT" | "PATCH" => "UPDATE",
        "DELETE" => "DELETE",
        _ => "INVOKE",
    }
}

#[cfg(test)]
mod tests {
    /// The direct canonical writer gives exactly the bytes of building the
    /// map and canonicalizing it (RFC 8785), for events of every shape.
    #[test]
    fn canonical_parts_match_the_canonicalized_map() {
        use crate::chain::Chain;
        use crate::identity::{ActorType, Source};
        let mut variants = Vec::new();
        for n in 0..64u64 {
            let bit = |b: u64| n & (1 << b) != 0;
            let mut actor = Actor::anonymous();
            if bit(0) {
                actor.id = Some("dr-\u{e9}lise \"q\"".into());
                actor.kind = ActorType::User;
                actor.roles = vec!["physician".into(), "r\u{1F600}".into()];
                actor.tenant = Some("clinic-7".into());
                actor.issuer = Some("https://idp".into());
                actor.verified = true;
                actor.source = Source::JwtHs256;
                actor.token_id = Some("t-1".into());
            }
            let some = |b: u64, v: &str| bit(b).then(|| v.to_string());
            variants.push(RequestEvent {
                id: format!("{n:032x}"),
                time_ms: 1_800_000_000_123 + n,
                kind: [Kind::Access, Kind::Denied, Kind::Blocked][(n % 3) as usize],
                phase: if bit(5) { Phase::Begin } else { Phase::Complete },
                actor,
                identity_reason: bit(1).then_some("expired_token"),
                method: "POST".into(),
                path: "/patients/{id}/n\t\u{1}".into(),
                verb: "CREATE",
                authority: "api.example.com".into(),
                resource_type: some(2, "patient"),
                resource_id: some(2, "patient:1274"),
                address: some(3, "10.0.0.1"),
                user_agent: some(3, "ua/\u{7f}\\"),
                request_id: some(4, "r-1"),
                status: bit(4).then_some(403),
                duration_ms: bit(4).then_some(12),
                reason: some(1, "secret_in_request"),
                purpose: some(0, "treatment"),
                request: BodyRecord {
                    scanned: bit(2),
                    skipped: some(3, "too_large"),
                    bytes: Some(n * 1000),
                    sha256: some(2, "ab"),
                    findings: if bit(1) {
                        vec![json!({"entity": "email", "category": "pii", "count": 2, "action": "redacted", "locations": ["$.a", "$.b"]})]
                    } else {
                        vec![]
                    },
                },
                response: BodyRecord::default(),
                ai: bit(3).then(|| json!({"provider": "openai", "usage": {"input_tokens": 7, "output_tokens": null}, "finish_reasons": ["stop"], "zeta": 1.5, "alpha": -0.0})),
            });
        }
        for ev in &variants {
            let mut a = Chain::new("node/\u{e9}/1");
            let mut b = Chain::new("node/\u{e9}/1");
            let old = a.seal(&mut ev.to_map());
            let (before, after) = ev.canonical_parts();
            let new = b.seal_parts(&before, &after);
            assert_eq!(new.line, old.line);
            assert_eq!(new.hash, old.hash);
        }
    }

    use super::*;

    #[test]
    fn verbs() {
        assert_eq!(verb("GET", "/patients/1", None, false), "READ");
        assert_eq!(verb("GET", "/patients/export?x", None, false), "EXPORT");
        assert_eq!(verb("GET", "/r", Some("text/csv"), false), "EXPORT");
        assert_eq!(verb("post", "/x", None, false), "CREATE");
        assert_eq!(verb("PATCH", "/x", None, false), "UPDATE");
        assert_eq!(verb("DELETE", "/x", None, false), "DELETE");
        assert_eq!(verb("POST", "/v1/chat/completions", None, true), "INVOKE");
    }

    #[test]
    fn outcome_success_follows_kind_and_status() {
        let mut e = RequestEvent {
            id: "0".repeat(32),
            time_ms: 0,
            kind: Kind::Access,
            phase: Phase::Complete,
            actor: Actor::anonymous(),
            identity_reason: Some("missing_token"),
            method: "GET".into(),
            path: "/".into(),
            verb: "READ",
            authority: "a".into(),
            resource_type: None,
            resource_id: None,
            address: None,
            user_agent: None,
            request_id: None,
            status: Some(200),
            duration_ms: Some(1),
            reason: None,
            purpose: None,
            request: BodyRecord::default(),
            response: BodyRecord::default(),
            ai: None,
        };
        assert_eq!(e.to_map()["outcome"]["success"], true);
        assert_eq!(e.to_map()["actor"]["reason"], "missing_token");
        e.status = Some(403);
        assert_eq!(e.to_map()["outcome"]["success"], false);
        e.phase = Phase::Begin;
        e.status = None;
        assert_eq!(e.to_map()["outcome"]["success"], Value::Null);
        assert_eq!(e.to_map()["data"]["request"]["findings"], json!([]));
    }
}
