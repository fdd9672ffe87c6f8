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
