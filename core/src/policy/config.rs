//! The plugin configuration (`configuration` in Envoy, `pluginConfig` in Istio).
//!
//! Parsed by hand over `serde_json::Value` so that *every* problem is reported
//! at once, each named by its key path (`$.audit.exporter.timeout_ms: ...`):
//! unknown keys, wrong types, out-of-range values, bad regexes and templates.
//! What can be compiled is compiled here, once (regexes with the options the
//! filter runs them with, path templates, field paths, entity names to ids,
//! categories and actions to enums), so a parsed [`Config`] is the whole
//! compiled policy. The filter and `proxy-audit check-config` use this same
//! parser (through `policy::compile`).

use serde_json::{Map, Value};

pub use super::routes::{normalize_path, Effective, RouteMatch};

/// Identity requirement of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    None,
    Authenticated,
    Individual,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub header: String,
    pub jwt_authn_payload_key: String,
    pub hs256_secret_env: Option<String>,
    pub allow_unverified: bool,
    pub clock_skew_seconds: u64,
}

/// Claim paths (dotted, e.g. `act.sub`); each is a list, first present wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsConfig {
    pub id: Vec<String>,
    pub roles: Vec<String>,
    pub tenant: Vec<String>,
    pub client_id: Vec<String>,
    pub on_behalf_of: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub jwt: JwtConfig,
    pub claims: ClaimsConfig,
    pub service_subjects: Vec<regex_lite::Regex>,
    /// Header naming the user a service acts for; trusted only when the
    /// caller's identity itself is verified.
    pub on_behalf_of_header: Option<String>,
    pub require: Require,
}

/// Per-category actions (`redact`, `mask`, ...), resolved at configure time.
pub type ActionsConfig = crate::classify::Actions;

/// `classification.custom[]`, compiled.
pub type CustomRuleConfig = crate::classify::CustomRule;
/// `classification.fields[]`, compiled.
pub type FieldRuleConfig = crate::classify::FieldRule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversize {
    Pass,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationConfig {
    /// `None` = all built-in entities.
    pub entities: Option<Vec<crate::classify::EntityId>>,
    pub custom: Vec<CustomRuleConfig>,
    pub fields: Vec<FieldRuleConfig>,
    pub actions: ActionsConfig,
    pub request: bool,
    pub response: bool,
    pub max_body_bytes: u64,
    pub on_oversize: Oversize,
    pub restore: bool,
}

impl ClassificationConfig {
    /// What the classifier is built from, with the pseudonym key.
    pub fn rules(&self, pseudonym_key: Vec<u8>) -> crate::classify::Rules {
        crate::classify::Rules {
            entities: self.entities.clone(),
            custom: self.custom.clone(),
            fields: self.fields.clone(),
            pseudonym_key,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamUsage {
    Inject,
    Observe,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiConfig {
    pub enabled: bool,
    pub stream_usage: StreamUsage,
    /// Block (403 `prompt_injection`) at or above this score; `None` = never.
    pub block_injection_score: Option<u8>,
    /// Force a provider (custom gateways); `None` = detect.
    pub provider: Option<&'static str>,
    pub operation: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Otlp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterConfig {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub format: Format,
    pub timeout_ms: u64,
    pub flush_interval_ms: u64,
    pub max_batch_events: usize,
    pub max_buffered_events: usize,
    /// Hand batches to a singleton shipping service through this Envoy
    /// shared queue instead of POSTing them from each worker (`None`: ship
    /// from the worker). The shipper registers the queue under the same name.
    pub shared_queue: Option<SharedQueue>,
}

/// `audit.exporter.shared_queue`: where the singleton shipping service
/// (root id [`SHIPPER_ROOT_ID`], `envoy.bootstrap.wasm`) listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedQueue {
    /// The shipper's `vm_config.vm_id` (Envoy resolves queues per VM id).
    pub vm_id: String,
    pub name: String,
}

/// The root id that makes the module a singleton shipping service instead of
/// an HTTP filter.
pub const SHIPPER_ROOT_ID: &str = "proxy_audit_shipper";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Async,
    WriteAhead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Open,
    Closed,
}

/// `audit.resources[]`, compiled: a path template and its resource type.
pub type ResourceConfig = crate::resources::Template;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub exporter: ExporterConfig,
    pub delivery: Delivery,
    pub on_failure: OnFailure,
    pub purpose_header: String,
    pub resources: Vec<ResourceConfig>,
    pub pseudonym_key_env: Option<String>,
    pub checkpoint_interval_ms: u64,
    /// A `checkpoint` after this many records since the last one (under
    /// load, as well as every `checkpoint_interval_ms` while idle or moving).
    pub checkpoint_every_events: u64,
    /// `audit.signing`: sign the chain's first record and every checkpoint.
    pub signing: Option<SigningConfig>,
    /// `audit.witness`: where signed checkpoints are also POSTed (NDJSON),
    /// a second log service kept by another party.
    pub witness: Option<ExporterConfig>,
}

/// `audit.signing`: the Ed25519 key (`proxy-audit keygen`) checkpoints are
/// signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningConfig {
    /// The VM environment variable holding the `.key` file's content.
    pub key_env: String,
    /// Named in each signature; `verify --key KEY_ID.pub` finds the key by it.
    pub key_id: String,
}

/// One `routes[]` entry: overrides applied on top of the defaults.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub matcher: RouteMatch,
    pub require: Option<Require>,
    pub actions: Option<ActionsConfig>,
    pub request: Option<bool>,
    pub response: Option<bool>,
    pub ai_enabled: Option<bool>,
    pub ai_provider: Option<&'static str>,
    pub ai_operation: Option<&'static str>,
    pub block_injection_score: Option<Option<u8>>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub identity: IdentityConfig,
    pub classification: ClassificationConfig,
    pub ai: AiConfig,
    pub audit: AuditConfig,
    pub routes: Vec<RouteConfig>,
    pub envoy: EnvoyConfig,
}

/// What the filter may assume of the Envoy that runs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnvoyConfig {
    /// Envoy's Wasm `PluginConfig.allow_on_headers_stop_iteration` is set too:
    /// the filter may hold headers while it reads a body it may rewrite.
    pub allow_on_headers_stop_iteration: bool,
}

impl Config {
    /// Parses and validates; on failure returns every problem, one per line.
    pub fn parse(bytes: &[u8]) -> Result<Config, Vec<ConfigError>> {
        let root: Value = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(bytes).map_err(|e| vec![ConfigError::new("$", "valid JSON", e.to_string())])?
        };
        let mut c = super::parse::Checker::default();
        let cfg = c.config(&root);
        if c.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(c.errors)
        }
    }
}

/// The config's action and category names (the enums' own lists).
pub const ACTIONS: &[&str] = crate::classify::Action::NAMES;
pub const CATEGORIES: &[&str] = crate::classify::Category::NAMES;

/// One problem of a configuration: where (a JSON path), what was expected
/// there, and what came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub expected: String,
    pub got: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: expected {}, got {}", self.path, self.expected, self.got)
    }
}

impl ConfigError {
    pub fn new(path: impl Into<String>, expected: impl Into<String>, got: impl Into<String>) -> Self {
        ConfigError { path: path.into(), expected: expected.into(), got: got.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT_EXAMPLE: &str = r#"{
      "identity": {
        "jwt": {"header": "authorization", "jwt_authn_payload_key": "payload", "hs256_secret_env": "PROXY_AUDIT_JWT_SECRET", "allow_unverified": false, "clock_skew_seconds": 60},
        "claims": {"id": "sub", "roles": ["roles", "groups"], "tenant": "tenant", "client_id": "azp", "on_behalf_of": "act.sub"},
        "service_subjects": ["^svc-", "^system:serviceaccount:"],
        "require": "none"
      },
      "classification": {
        "entities": "all",
        "custom": [{"name": "mrn", "pattern": "\\bMRN-[0-9]{8}\\b", "category": "phi"}],
        "fields": [{"path": "$.patient.name", "entity": "person_name", "category": "phi"}],
        "actions": {"pii": "redact", "phi": "redact", "pci": "mask", "secret": "block", "custom": "redact"},
        "request": true, "response": true, "max_body_bytes": 1048576, "on_oversize": "pass", "restore": false
      },
      "ai": {"enabled": true, "stream_usage": "inject"},
      "audit": {
        "exporter": {"type": "http", "cluster": "audit_sink", "authority": "audit-sink", "path": "/v1/events",
                     "format": "ndjson", "timeout_ms": 1000, "flush_interval_ms": 200,
                     "max_batch_events": 200, "max_buffered_events": 10000},
        "delivery": "async", "on_failure": "open", "purpose_header": "x-purpose-of-use",
        "resources": [{"path": "/patients/{id}", "type": "patient"}],
        "pseudonym_key_env": "PROXY_AUDIT_PSEUDONYM_KEY"
      },
      "routes": [{"match": {"path_prefix": "/v1/"}, "classification": {"actions": {"pii": "pseudonymize"}}}]
    }"#;

    #[test]
    fn contract_example_parses() {
        let cfg = Config::parse(CONTRACT_EXAMPLE.as_bytes()).unwrap_or_else(|e| panic!("{e:#?}"));
        use crate::classify::Action;
        assert_eq!(cfg.identity.claims.roles, vec!["roles", "groups"]);
        assert_eq!(cfg.audit.exporter.max_batch_events, 200);
        let e = cfg.effective("POST", "/v1/chat/completions", "api");
        assert_eq!(e.actions.pii, Action::Pseudonymize);
        assert_eq!(e.actions.pci, Action::Mask);
        assert_eq!(cfg.effective("GET", "/patients/1", "api").actions.pii, Action::Redact);
    }

    #[test]
    fn empty_config_gives_defaults() {
        let cfg = Config::parse(b"").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cfg.identity.jwt.header, "authorization");
        assert_eq!(cfg.audit.exporter.cluster, "audit_sink");
        assert_eq!(cfg.identity.require, Require::None);
    }

    #[test]
    fn every_problem_is_named_by_key_path() {
        let bad = r#"{
          "identity": {"jwt": {"header": 7, "colour": "red"}, "require": "always", "service_subjects": ["(unclosed"]},
          "classification": {"custom": [{"name": "x", "pattern": "[z-a]"}], "actions": {"pii": "shred"}, "max_body_bytes": -1},
          "audit": {"exporter": {"timeout_ms": 0, "format": "xml"}, "resources": [{"path": "patients/{id}", "type": "p"}]},
          "routes": [{"classification": {"request": "yes"}}],
          "extra": 1
        }"#;
        let errs = Config::parse(bad.as_bytes()).err().unwrap_or_default();
        let joined = errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        // (key path, what was expected): the typed error names both.
        for (path, expected) in [
            ("$.identity.jwt.header", "a string"),
            ("$.identity.jwt.colour", "one of the keys header,"),
            ("$.identity.require", "one of: none, authenticated, individual"),
            ("$.identity.service_subjects[0]", "a valid regular expression"),
            ("$.classification.custom[0].pattern", "a valid regular expression"),
            ("$.classification.actions.pii", "one of: redact,"),
            ("$.classification.max_body_bytes", "an integer"),
            ("$.audit.exporter.timeout_ms", "an integer from 1"),
            ("$.audit.exporter.format", "one of: ndjson, otlp"),
            ("$.audit.resources[0].path", "a path template"),
            ("$.routes[0].match", "an object with path_prefix"),
            ("$.routes[0].classification.request", "a boolean"),
            ("$.extra", "one of the keys identity,"),
        ] {
            assert!(
                errs.iter().any(|e| e.path == path && e.expected.starts_with(expected)),
                "missing {path} {expected:?} in:\n{joined}"
            );
        }
        assert_eq!(errs.len(), 13, "{joined}");
    }

    #[test]
    fn signing_witness_and_checkpoint_cadence() {
        let cfg = Config::parse(
            br#"{"audit": {"signing": {"key_env": "PROXY_AUDIT_SIGNING_KEY", "key_id": "k-2026.12"},
                 "checkpoint_every_events": 500, "witness": {"cluster": "witness", "path": "/cp"}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let signing = cfg.audit.signing.unwrap_or_else(|| panic!("signing"));
        assert_eq!((signing.key_env.as_str(), signing.key_id.as_str()), ("PROXY_AUDIT_SIGNING_KEY", "k-2026.12"));
        assert_eq!(cfg.audit.checkpoint_every_events, 500);
        let w = cfg.audit.witness.unwrap_or_else(|| panic!("witness"));
        assert_eq!((w.cluster.as_str(), w.authority.as_str(), w.path.as_str()), ("witness", "witness", "/cp"));
        let defaults = Config::parse(b"{}").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (defaults.audit.checkpoint_every_events, defaults.audit.signing, defaults.audit.witness),
            (1_000, None, None)
        );
        let bad = br#"{"audit": {"signing": {"key_env": "c2VjcmV0IGtleQ==", "key_id": "a b", "alg": "rsa"},
                       "checkpoint_every_events": 0, "witness": {"path": "cp"}}}"#;
        let errs = Config::parse(bad).err().unwrap_or_default();
        let joined = errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        for (path, expected) in [
            ("$.audit.signing.key_env", "the name of an environment variable"),
            ("$.audit.signing.key_id", "1-64 characters"),
            ("$.audit.signing.alg", "one of the keys key_env, key_id"),
            ("$.audit.checkpoint_every_events", "an integer from 1 to 1000000"),
            ("$.audit.witness.cluster", "a non-empty string"),
            ("$.audit.witness.path", "a path starting with `/`"),
        ] {
            assert!(
                errs.iter().any(|e| e.path == path && e.expected.starts_with(expected)),
                "missing {path} {expected:?} in:\n{joined}"
            );
        }
        let errs = Config::parse(br#"{"audit": {"witness": {"cluster": "w"}}}"#).err().unwrap_or_default();
        assert_eq!(
            errs,
            vec![ConfigError::new(
                "$.audit.witness",
                "audit.signing as well (the witness keeps signed checkpoints)",
                "no audit.signing"
            )]
        );
    }

    #[test]
    fn not_json_and_not_object() {
        assert!(Config::parse(b"{").err().unwrap_or_default()[0]
            .to_string()
            .starts_with("$: expected valid JSON, got"));
        assert_eq!(
            Config::parse(b"[]").err().unwrap_or_default().iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["$: expected an object, got a list"]
        );
    }

    #[test]
    fn unknown_provider_and_operation_names_are_errors() {
        let e = crate::config::Config::parse(br#"{"ai": {"provider": "opneai"}, "routes": [{"match": {"path_prefix": "/x"}, "ai": {"operation": "chatt"}}]}"#)
            .err()
            .unwrap_or_default();
        assert!(
            e.iter().any(|m| m.path == "$.ai.provider"
                && m.got == "\"opneai\""
                && m.expected.starts_with("one of: openai,")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.path == "$.routes[0].ai.operation" && m.expected.starts_with("one of: chat,")),
            "{e:?}"
        );
        assert!(
            crate::config::Config::parse(br#"{"ai": {"provider": "aws_bedrock", "operation": "embeddings"}}"#).is_ok()
        );
    }
}
