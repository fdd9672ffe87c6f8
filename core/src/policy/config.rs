//! The plugin configuration (`configuration` in Envoy, `pluginConfig` in Istio).
//!
//! Parsed by hand over `serde_json::Value` so that *every* problem is reported
//! at once, each named by its key path (`$.audit.exporter.timeout_ms: ...`):
//! unknown keys, wrong types, out-of-range values and bad regexes. The filter
//! and `proxy-audit check-config` use this same parser.

use serde_json::{Map, Value};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRuleConfig {
    pub name: String,
    pub pattern: String,
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRuleConfig {
    pub path: String,
    pub entity: String,
    pub category: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversize {
    Pass,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationConfig {
    /// `None` = all built-in entities.
    pub entities: Option<Vec<String>>,
    pub custom: Vec<CustomRuleConfig>,
    pub fields: Vec<FieldRuleConfig>,
    pub actions: ActionsConfig,
    pub request: bool,
    pub response: bool,
    pub max_body_bytes: u64,
    pub on_oversize: Oversize,
    pub restore: bool,
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
    pub provider: Option<String>,
    pub operation: Option<String>,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceConfig {
    pub path: String,
    pub kind: String,
}

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

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteMatch {
    pub path_prefix: Option<String>,
    pub host: Option<String>,
    pub methods: Option<Vec<String>>,
}

impl RouteMatch {
    pub fn matches(&self, method: &str, path: &str, host: &str) -> bool {
        self.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
            && self.host.as_deref().is_none_or(|h| {
                let host =
                    host.rsplit_once(':').map_or(
                        host,
                        |(h, port)| {
                            if port.bytes().all(|b| b.is_ascii_digit()) {
                                h
                            } else {
                                host
                            }
                        },
                    );
                h.eq_ignore_ascii_case(host)
            })
            && self.methods.as_ref().is_none_or(|ms| ms.iter().any(|m| m.eq_ignore_ascii_case(method)))
    }
}

/// The path part (no query), with repeated slashes merged, `.` and `..`
/// segments resolved, and percent-encoded unreserved characters decoded.
pub fn normalize_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = decoded.ends_with('/') && !segments.is_empty();
    let mut out = format!("/{}", segments.join("/"));
    if trailing {
        out.push('/');
    }
    out
}

/// `%41` → `A` for unreserved characters (RFC 3986 2.3); other escapes stay.
fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex =
            b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) if c == b'%' && (v.is_ascii_alphanumeric() || b"-._~".contains(&v)) => {
                out.push(char::from(v));
                i += 3;
            }
            _ => {
                let ch_len = path.get(i..).and_then(|r| r.chars().next()).map_or(1, char::len_utf8);
                out.push_str(path.get(i..i + ch_len).unwrap_or(""));
                i += ch_len;
            }
        }
    }
    out
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
    pub ai_provider: Option<String>,
    pub ai_operation: Option<String>,
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

/// Effective settings for one request after route overrides.
#[derive(Debug, Clone)]
pub struct Effective<'a> {
    pub require: Require,
    pub actions: &'a ActionsConfig,
    pub request: bool,
    pub response: bool,
    pub ai_enabled: bool,
    pub ai_provider: Option<&'a str>,
    pub ai_operation: Option<&'a str>,
    pub block_injection_score: Option<u8>,
}

impl Config {
    /// Parses and validates; on failure returns every problem, one per line.
    pub fn parse(bytes: &[u8]) -> Result<Config, Vec<ConfigError>> {
        let root: Value = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(bytes).map_err(|e| vec![ConfigError::new("$", "valid JSON", e.to_string())])?
        };
        let mut c = Checker::default();
        let cfg = c.config(&root);
        if c.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(c.errors)
        }
    }

    /// The settings for a request, first matching route applied.
    pub fn effective(&self, method: &str, path: &str, host: &str) -> Effective<'_> {
        // Match on the path the upstream will resolve, so `//records/x` or
        // `/a/../records/x` cannot step around a `/records/` rule.
        let path = &normalize_path(path);
        let mut e = Effective {
            require: self.identity.require,
            actions: &self.classification.actions,
            request: self.classification.request,
            response: self.classification.response,
            ai_enabled: self.ai.enabled,
            ai_provider: self.ai.provider.as_deref(),
            ai_operation: self.ai.operation.as_deref(),
            block_injection_score: self.ai.block_injection_score,
        };
        if let Some(r) = self.routes.iter().find(|r| r.matcher.matches(method, path, host)) {
            e.require = r.require.unwrap_or(e.require);
            if let Some(a) = &r.actions {
                e.actions = a;
            }
            e.request = r.request.unwrap_or(e.request);
            e.response = r.response.unwrap_or(e.response);
            e.ai_enabled = r.ai_enabled.unwrap_or(e.ai_enabled);
            e.ai_provider = r.ai_provider.as_deref().or(e.ai_provider);
            e.ai_operation = r.ai_operation.as_deref().or(e.ai_operation);
            if let Some(b) = r.block_injection_score {
                e.block_injection_score = b;
            }
        }
        e
    }
}

pub const ACTIONS: &[&str] = &["redact", "mask", "pseudonymize", "remove", "block", "tag"];
pub const CATEGORIES: &[&str] = &["pii", "phi", "pci", "secret", "custom"];

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

/// Collects problems while reading the tree.
#[derive(Default)]
struct Checker {
    errors: Vec<ConfigError>,
}

type Obj<'a> = Option<&'a Map<String, Value>>;

impl Checker {
    fn err(&mut self, path: &str, expected: impl Into<String>, got: impl Into<String>) {
        self.errors.push(ConfigError::new(path, expected, got));
    }

    /// Reads an object, reporting unknown keys. `None` when absent or wrong.
    fn object<'a>(&mut self, v: Option<&'a Value>, path: &str, keys: &[&str]) -> Obj<'a> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                for k in m.keys() {
                    if !keys.contains(&k.as_str()) {
                        self.err(
                            &format!("{path}.{k}"),
                            format!("one of the keys {}", keys.join(", ")),
                            "an unknown key",
                        );
                    }
                }
                Some(m)
            }
            Some(other) => {
                self.err(path, "an object", type_name(other));
                None
            }
        }
    }

    fn string(&mut self, o: Obj, key: &str, path: &str, default: &str) -> String {
        self.opt_string(o, key, path).unwrap_or_else(|| default.to_string())
    }

    fn opt_string(&mut self, o: Obj, key: &str, path: &str) -> Option<String> {
        match o.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.err(&format!("{path}.{key}"), "a string", type_name(other));
                None
            }
        }
    }

    fn nonempty(&mut self, o: Obj, key: &str, path: &str, default: &str) -> String {
        let s = self.string(o, key, path, default);
        if s.is_empty() {
            self.err(&format!("{path}.{key}"), "a non-empty string", "an empty string");
        }
        s
    }

    fn boolean(&mut self, o: Obj, key: &str, path: &str, default: bool) -> bool {
        self.opt_bool(o, key, path).unwrap_or(default)
    }

    fn opt_bool(&mut self, o: Obj, key: &str, path: &str) -> Option<bool> {
        match o.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.err(&format!("{path}.{key}"), "a boolean", type_name(other));
                None
            }
        }
    }

    fn integer(&mut self, o: Obj, key: &str, path: &str, default: u64, min: u64, max: u64) -> u64 {
        match o.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => v,
                _ => {
                    self.err(&format!("{path}.{key}"), format!("an integer from {min} to {max}"), n.to_string());
                    default
                }
            },
            Some(other) => {
                self.err(&format!("{path}.{key}"), "an integer", type_name(other));
                default
            }
        }
    }

    fn one_of(&mut self, o: Obj, key: &str, path: &str, allowed: &[&str]) -> Option<String> {
        let s = self.opt_string(o, key, path)?;
        if allowed.contains(&s.as_str()) {
            Some(s)
        } else {
            self.err(&format!("{path}.{key}"), format!("one of: {}", allowed.join(", ")), format!("\"{s}\""));
            None
        }
    }

    /// A string or a list of strings.
    fn string_list(&mut self, o: Obj, key: &str, path: &str, default: &[&str]) -> Vec<String> {
        match o.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => default.iter().map(|s| s.to_string()).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => self.err(&format!("{path}.{key}[{i}]"), "a string", type_name(other)),
                    }
                }
                out
            }
            Some(other) => {
                self.err(&format!("{path}.{key}"), "a string or a list of strings", type_name(other));
                Vec::new()
            }
        }
    }

    fn array<'a>(&mut self, o: Obj<'a>, key: &str, path: &str) -> &'a [Value] {
        match o.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.err(&format!("{path}.{key}"), "a list", type_name(other));
                &[]
            }
        }
    }

    fn regex(&mut self, pattern: &str, path: &str) -> Option<regex_lite::Regex> {
        match regex_lite::RegexBuilder::new(pattern).size_limit(1 << 20).build() {
            Ok(r) => Some(r),
            Err(e) => {
                self.err(path, "a valid regular expression", first_line(&e.to_string()));
                None
            }
        }
    }

    fn config(&mut self, root: &Value) -> Config {
        let top = self.object(Some(root), "$", &["identity", "classification", "ai", "audit", "routes", "envoy"]);
        if !matches!(root, Value::Object(_)) {
            // object() already reported it.
        }
        let identity = self.identity(top.and_then(|m| m.get("identity")));
        let classification = self.classification(top.and_then(|m| m.get("classification")));
        let ai = self.ai(top.and_then(|m| m.get("ai")), "$.ai");
        let audit = self.audit(top.and_then(|m| m.get("audit")));
        let mut routes = Vec::new();
        for (i, r) in self.array(top, "routes", "$").iter().enumerate() {
            if let Some(route) = self.route(r, &format!("$.routes[{i}]"), &classification.actions) {
                routes.push(route);
            }
        }
        let ep = "$.envoy";
        let e = self.object(top.and_then(|m| m.get("envoy")), ep, &["allow_on_headers_stop_iteration"]);
        let envoy = EnvoyConfig {
            allow_on_headers_stop_iteration: self.boolean(e, "allow_on_headers_stop_iteration", ep, false),
        };
        Config { identity, classification, ai, audit, routes, envoy }
    }

    fn identity(&mut self, v: Option<&Value>) -> IdentityConfig {
        let p = "$.identity";
        let o = self.object(v, p, &["jwt", "claims", "service_subjects", "on_behalf_of_header", "require"]);
        let jp = "$.identity.jwt";
        let j = self.object(
            o.and_then(|m| m.get("jwt")),
            jp,
            &["header", "jwt_authn_payload_key", "hs256_secret_env", "allow_unverified", "clock_skew_seconds"],
        );
        let jwt = JwtConfig {
            header: self.nonempty(j, "header", jp, "authorization").to_ascii_lowercase(),
            jwt_authn_payload_key: self.nonempty(j, "jwt_authn_payload_key", jp, "payload"),
            hs256_secret_env: self.opt_string(j, "hs256_secret_env", jp),
            allow_unverified: self.boolean(j, "allow_unverified", jp, false),
            clock_skew_seconds: self.integer(j, "clock_skew_seconds", jp, 60, 0, 3600),
        };
        let cp = "$.identity.claims";
        let c =
            self.object(o.and_then(|m| m.get("claims")), cp, &["id", "roles", "tenant", "client_id", "on_behalf_of"]);
        let claims = ClaimsConfig {
            id: self.string_list(c, "id", cp, &["sub"]),
            roles: self.string_list(c, "roles", cp, &["roles", "groups", "scope", "scp"]),
            tenant: self.string_list(c, "tenant", cp, &["tenant", "tid"]),
            client_id: self.string_list(c, "client_id", cp, &["azp", "client_id"]),
            on_behalf_of: self.string_list(c, "on_behalf_of", cp, &["act.sub"]),
        };
        let mut service_subjects = Vec::new();
        for (i, s) in self
            .string_list(o, "service_subjects", p, &["^system:serviceaccount:", "^spiffe://", "^svc-"])
            .iter()
            .enumerate()
        {
            if let Some(r) = self.regex(s, &format!("{p}.service_subjects[{i}]")) {
                service_subjects.push(r);
            }
        }
        let on_behalf_of_header = self.opt_string(o, "on_behalf_of_header", p).map(|h| h.to_ascii_lowercase());
        let require = self.require(o, p).unwrap_or(Require::None);
        IdentityConfig { jwt, claims, service_subjects, on_behalf_of_header, require }
    }

    fn require(&mut self, o: Obj, p: &str) -> Option<Require> {
        Some(match self.one_of(o, "require", p, &["none", "authenticated", "individual"])?.as_str() {
            "authenticated" => Require::Authenticated,
            "individual" => Require::Individual,
            _ => Require::None,
        })
    }

    /// Per-category actions on top of `base` (the defaults, for routes).
    fn actions(&mut self, v: Option<&Value>, p: &str, base: &ActionsConfig) -> ActionsConfig {
        use crate::classify::{Action, Category};
        let o = self.object(v, p, CATEGORIES);
        let mut out = *base;
        for (key, cat) in [
            ("pii", Category::Pii),
            ("phi", Category::Phi),
            ("pci", Category::Pci),
            ("secret", Category::Secret),
            ("custom", Category::Custom),
        ] {
            if let Some(a) = self.one_of(o, key, p, ACTIONS).as_deref().and_then(Action::parse) {
                out = out.with(cat, a);
            }
        }
        out
    }

    fn classification(&mut self, v: Option<&Value>) -> ClassificationConfig {
        let p = "$.classification";
        let o = self.object(
            v,
            p,
            &[
                "entities",
                "custom",
                "fields",
                "actions",
                "request",
                "response",
                "max_body_bytes",
                "on_oversize",
                "restore",
            ],
        );
        let entities = match o.and_then(|m| m.get("entities")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "all" => None,
            Some(Value::String(s)) => {
                self.err(&format!("{p}.entities"), "\"all\" or a list of entity names", format!("\"{s}\""));
                None
            }
            Some(_) => {
                let names = self.string_list(o, "entities", p, &[]);
                for (i, n) in names.iter().enumerate() {
                    if !crate::classify::builtin_entity_names().contains(&n.as_str()) {
                        self.err(
                            &format!("{p}.entities[{i}]"),
                            "a built-in entity name",
                            format!("unknown entity \"{n}\""),
                        );
                    }
                }
                Some(names)
            }
        };
        let mut custom = Vec::new();
        for (i, r) in self.array(o, "custom", p).iter().enumerate() {
            let rp = format!("{p}.custom[{i}]");
            let ro = self.object(Some(r), &rp, &["name", "pattern", "category"]);
            if ro.is_none() {
                continue;
            }
            let name = self.nonempty(ro, "name", &rp, "");
            let pattern = self.nonempty(ro, "pattern", &rp, "");
            if !pattern.is_empty() {
                self.regex(&pattern, &format!("{rp}.pattern"));
            }
            let category = self.one_of(ro, "category", &rp, CATEGORIES).unwrap_or_else(|| "custom".into());
            custom.push(CustomRuleConfig { name, pattern, category });
        }
        let mut fields = Vec::new();
        for (i, r) in self.array(o, "fields", p).iter().enumerate() {
            let rp = format!("{p}.fields[{i}]");
            let ro = self.object(Some(r), &rp, &["path", "entity", "category"]);
            if ro.is_none() {
                continue;
            }
            let path = self.nonempty(ro, "path", &rp, "");
            if !path.is_empty() && !path.starts_with('$') {
                self.err(&format!("{rp}.path"), "a JSON path starting with `$`", format!("\"{path}\""));
            }
            let entity = self.nonempty(ro, "entity", &rp, "");
            let category = self.one_of(ro, "category", &rp, CATEGORIES).unwrap_or_else(|| "pii".into());
            fields.push(FieldRuleConfig { path, entity, category });
        }
        let defaults = ActionsConfig::default();
        let actions = self.actions(o.and_then(|m| m.get("actions")), &format!("{p}.actions"), &defaults);
        ClassificationConfig {
            entities,
            custom,
            fields,
            actions,
            request: self.boolean(o, "request", p, true),
            response: self.boolean(o, "response", p, true),
            max_body_bytes: self.integer(o, "max_body_bytes", p, 1 << 20, 0, 64 << 20),
            on_oversize: match self.one_of(o, "on_oversize", p, &["pass", "reject"]).as_deref() {
                Some("reject") => Oversize::Reject,
                _ => Oversize::Pass,
            },
            restore: self.boolean(o, "restore", p, false),
        }
    }

    fn ai(&mut self, v: Option<&Value>, p: &str) -> AiConfig {
        let o = self.object(v, p, &["enabled", "stream_usage", "block_injection_score", "provider", "operation"]);
        AiConfig {
            enabled: self.boolean(o, "enabled", p, true),
            stream_usage: match self.one_of(o, "stream_usage", p, &["inject", "observe"]).as_deref() {
                Some("observe") => StreamUsage::Observe,
                _ => StreamUsage::Inject,
            },
            block_injection_score: self.opt_score(o, p),
            provider: self.known(o, "provider", p, crate::ai::PROVIDERS),
            operation: self.known(o, "operation", p, crate::ai::OPERATIONS),
        }
    }

    /// An optional string that must be one of `allowed` (a provider or
    /// operation name): an unknown one is an error, never a silent fallback.
    fn known(&mut self, o: Obj, key: &str, p: &str, allowed: &[&str]) -> Option<String> {
        let v = self.opt_string(o, key, p)?;
        if allowed.contains(&v.as_str()) {
            Some(v)
        } else {
            self.err(&format!("{p}.{key}"), format!("one of: {}", allowed.join(", ")), format!("\"{v}\""));
            None
        }
    }

    fn opt_score(&mut self, o: Obj, p: &str) -> Option<u8> {
        o.and_then(|m| m.get("block_injection_score")).filter(|v| !v.is_null())?;
        Some(self.integer(o, "block_injection_score", p, 100, 1, 100) as u8)
    }

    fn shared_queue(&mut self, v: Option<&Value>, p: &str) -> Option<SharedQueue> {
        let o = self.object(v, p, &["vm_id", "name"])?;
        Some(SharedQueue {
            vm_id: self.string(Some(o), "vm_id", p, SHIPPER_ROOT_ID),
            name: self.nonempty(Some(o), "name", p, "proxy_audit_events"),
        })
    }

    fn audit(&mut self, v: Option<&Value>) -> AuditConfig {
        let p = "$.audit";
        let o = self.object(
            v,
            p,
            &[
                "exporter",
                "delivery",
                "on_failure",
                "purpose_header",
                "resources",
                "pseudonym_key_env",
                "checkpoint_interval_ms",
                "checkpoint_every_events",
                "signing",
                "witness",
            ],
        );
        let ep = "$.audit.exporter";
        let e = self.object(
            o.and_then(|m| m.get("exporter")),
            ep,
            &[
                "type",
                "cluster",
                "authority",
                "path",
                "format",
                "timeout_ms",
                "flush_interval_ms",
                "max_batch_events",
                "max_buffered_events",
                "shared_queue",
            ],
        );
        self.one_of(e, "type", ep, &["http"]);
        let format = match self.one_of(e, "format", ep, &["ndjson", "otlp"]).as_deref() {
            Some("otlp") => Format::Otlp,
            _ => Format::Ndjson,
        };
        let default_path = if format == Format::Otlp { "/v1/logs" } else { "/v1/events" };
        let path = self.nonempty(e, "path", ep, default_path);
        if !path.starts_with('/') {
            self.err(&format!("{ep}.path"), "a path starting with `/`", format!("\"{}\"", path));
        }
        let max_batch_events = self.integer(e, "max_batch_events", ep, 200, 1, 10_000) as usize;
        let max_buffered_events = self.integer(e, "max_buffered_events", ep, 10_000, 1, 1_000_000) as usize;
        if max_buffered_events < max_batch_events {
            self.err(
                &format!("{ep}.max_buffered_events"),
                format!("at least max_batch_events ({max_batch_events})"),
                max_buffered_events.to_string(),
            );
        }
        let exporter = ExporterConfig {
            cluster: self.nonempty(e, "cluster", ep, "audit_sink"),
            authority: self.nonempty(e, "authority", ep, "audit-sink"),
            path,
            format,
            timeout_ms: self.integer(e, "timeout_ms", ep, 1000, 1, 60_000),
            flush_interval_ms: self.integer(e, "flush_interval_ms", ep, 200, 10, 60_000),
            max_batch_events,
            max_buffered_events,
            shared_queue: self.shared_queue(e.and_then(|m| m.get("shared_queue")), &format!("{ep}.shared_queue")),
        };
        let delivery = match self.one_of(o, "delivery", p, &["async", "write_ahead"]).as_deref() {
            Some("write_ahead") => Delivery::WriteAhead,
            _ => Delivery::Async,
        };
        let on_failure = match self.one_of(o, "on_failure", p, &["open", "closed"]).as_deref() {
            Some("closed") => OnFailure::Closed,
            _ => OnFailure::Open,
        };
        let signing = self.signing(o.and_then(|m| m.get("signing")));
        let witness = self.witness(o.and_then(|m| m.get("witness")), &exporter);
        if witness.is_some() && signing.is_none() {
            self.err(
                &format!("{p}.witness"),
                "audit.signing as well (the witness keeps signed checkpoints)",
                "no audit.signing",
            );
        }
        let mut resources = Vec::new();
        for (i, r) in self.array(o, "resources", p).iter().enumerate() {
            let rp = format!("{p}.resources[{i}]");
            let ro = self.object(Some(r), &rp, &["path", "type"]);
            if ro.is_none() {
                continue;
            }
            let path = self.nonempty(ro, "path", &rp, "");
            if let Err(msg) = crate::resources::Template::parse(&path, "") {
                self.err(&format!("{rp}.path"), "a path template (`/patients/{id}`)", msg);
            }
            let kind = self.nonempty(ro, "type", &rp, "");
            resources.push(ResourceConfig { path, kind });
        }
        AuditConfig {
            exporter,
            delivery,
            on_failure,
            purpose_header: self.nonempty(o, "purpose_header", p, "x-purpose-of-use").to_ascii_lowercase(),
            resources,
            pseudonym_key_env: self.opt_string(o, "pseudonym_key_env", p),
            checkpoint_interval_ms: self.integer(o, "checkpoint_interval_ms", p, 60_000, 1000, 60_000),
            checkpoint_every_events: self.integer(o, "checkpoint_every_events", p, 1_000, 1, 1_000_000),
            signing,
            witness,
        }
    }

    fn signing(&mut self, v: Option<&Value>) -> Option<SigningConfig> {
        let p = "$.audit.signing";
        let o = self.object(v, p, &["key_env", "key_id"])?;
        let key_env = self.nonempty(Some(o), "key_env", p, "");
        if !key_env.is_empty() && !key_env.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            self.err(
                &format!("{p}.key_env"),
                "the name of an environment variable (letters, digits, _), not a key",
                "something else",
            );
        }
        let key_id = self.nonempty(Some(o), "key_id", p, "");
        if !key_id.is_empty()
            && (key_id.len() > 64 || !key_id.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)))
        {
            self.err(
                &format!("{p}.key_id"),
                "1-64 characters of letters, digits, -, _ and . (it names the key file)",
                format!("\"{key_id}\""),
            );
        }
        Some(SigningConfig { key_env, key_id })
    }

    fn witness(&mut self, v: Option<&Value>, exporter: &ExporterConfig) -> Option<ExporterConfig> {
        let p = "$.audit.witness";
        let o = self.object(v, p, &["cluster", "authority", "path", "timeout_ms"])?;
        let cluster = self.nonempty(Some(o), "cluster", p, "");
        let path = self.nonempty(Some(o), "path", p, "/v1/checkpoints");
        if !path.starts_with('/') {
            self.err(&format!("{p}.path"), "a path starting with `/`", format!("\"{path}\""));
        }
        Some(ExporterConfig {
            authority: self.nonempty(Some(o), "authority", p, &cluster),
            cluster,
            path,
            format: Format::Ndjson,
            timeout_ms: self.integer(Some(o), "timeout_ms", p, 1000, 1, 60_000),
            flush_interval_ms: exporter.flush_interval_ms,
            max_batch_events: 100,
            max_buffered_events: 1_000,
            shared_queue: None,
        })
    }

    fn route(&mut self, v: &Value, p: &str, defaults: &ActionsConfig) -> Option<RouteConfig> {
        let o = self.object(Some(v), p, &["match", "identity", "classification", "ai"]);
        o?;
        let mp = format!("{p}.match");
        let m = self.object(o.and_then(|m| m.get("match")), &mp, &["path_prefix", "host", "methods"]);
        if m.is_none() {
            self.err(&mp, "an object with path_prefix, host and/or methods", "none");
        }
        let methods = m.and_then(|mm| mm.get("methods")).map(|_| self.string_list(m, "methods", &mp, &[]));
        let matcher = RouteMatch {
            path_prefix: self.opt_string(m, "path_prefix", &mp),
            host: self.opt_string(m, "host", &mp),
            methods,
        };
        let ip = format!("{p}.identity");
        let i = self.object(o.and_then(|m| m.get("identity")), &ip, &["require"]);
        let require = self.require(i, &ip);
        let cp = format!("{p}.classification");
        let c = self.object(o.and_then(|m| m.get("classification")), &cp, &["actions", "request", "response"]);
        let actions =
            c.and_then(|m| m.get("actions")).map(|a| self.actions(Some(a), &format!("{cp}.actions"), defaults));
        let ap = format!("{p}.ai");
        let a = self.object(
            o.and_then(|m| m.get("ai")),
            &ap,
            &["enabled", "provider", "operation", "block_injection_score"],
        );
        let block =
            a.and_then(|m| m.get("block_injection_score")).map(
                |v| {
                    if v.is_null() {
                        None
                    } else {
                        self.opt_score(a, &ap)
                    }
                },
            );
        Some(RouteConfig {
            matcher,
            require,
            actions,
            request: self.opt_bool(c, "request", &cp),
            response: self.opt_bool(c, "response", &cp),
            ai_enabled: self.opt_bool(a, "enabled", &ap),
            ai_provider: self.known(a, "provider", &ap, crate::ai::PROVIDERS),
            ai_operation: self.known(a, "operation", &ap, crate::ai::OPERATIONS),
            block_injection_score: block,
        })
    }
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
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
    fn route_matching() {
        let m = RouteMatch {
            path_prefix: Some("/v1/".into()),
            host: Some("api.example.com".into()),
            methods: Some(vec!["POST".into()]),
        };
        assert!(m.matches("post", "/v1/x", "api.example.com:8443"));
        assert!(!m.matches("GET", "/v1/x", "api.example.com"));
        assert!(!m.matches("POST", "/v2/x", "api.example.com"));
        assert!(!m.matches("POST", "/v1/x", "other"));
    }
}

#[cfg(test)]
mod path_tests {
    use super::normalize_path;

    #[test]
    fn paths_are_matched_as_the_upstream_resolves_them() {
        for (raw, want) in [
            ("/records/1", "/records/1"),
            ("//records/1", "/records/1"),
            ("/a/../records/1?x=1", "/records/1"),
            ("/./records//1/", "/records/1/"),
            ("/%72ecords/1", "/records/1"),
            ("/records%2F1", "/records%2F1"),
            ("/../..", "/"),
            ("", "/"),
            ("/é/%zz", "/é/%zz"),
        ] {
            assert_eq!(normalize_path(raw), want, "{raw}");
        }
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
