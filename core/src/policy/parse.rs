//! The configuration parser: reads the JSON tree key by key, reports every
//! problem at once by key path (unknown keys, wrong types, ranges, names),
//! and compiles what can be compiled (regexes, templates, field paths,
//! entity names, categories and actions) once, here.

use super::config::*;
use crate::classify::Category;
use serde_json::{Map, Value};

/// Collects problems while reading the tree.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) errors: Vec<ConfigError>,
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

    /// A category name (`category` of a custom or field rule), as the enum.
    /// Absent: `default`; not a category: an error (reported by `one_of`).
    fn category(&mut self, o: Obj, path: &str, default: Category) -> Category {
        self.one_of(o, "category", path, CATEGORIES).as_deref().and_then(Category::parse).unwrap_or(default)
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

    pub(super) fn config(&mut self, root: &Value) -> Config {
        let top = self.object(Some(root), "$", &["identity", "classification", "ai", "audit", "routes", "envoy"]);
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
        let pseudonymize = std::iter::once(&classification.actions)
            .chain(routes.iter().filter_map(|r| r.actions.as_ref()))
            .any(|a| a.uses(crate::classify::Action::Pseudonymize));
        if pseudonymize && audit.pseudonym_key_env.is_none() {
            self.err(
                "$.audit.pseudonym_key_env",
                "an environment variable name when an action is `pseudonymize` (keyed HMAC, never an unkeyed hash)",
                "none",
            );
        }
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
        use crate::classify::Action;
        let o = self.object(v, p, CATEGORIES);
        let mut out = *base;
        for &cat in Category::ALL {
            if let Some(a) = self.one_of(o, cat.as_str(), p, ACTIONS).as_deref().and_then(Action::parse) {
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
                let mut ids = Vec::new();
                for (i, n) in names.iter().enumerate() {
                    match crate::classify::entities::by_name(n) {
                        Some(e) => ids.push(e.id),
                        None => self.err(
                            &format!("{p}.entities[{i}]"),
                            "a built-in entity name",
                            format!("unknown entity \"{n}\""),
                        ),
                    }
                }
                Some(ids)
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
            let category = self.category(ro, &rp, Category::Custom);
            if pattern.is_empty() {
                continue;
            }
            // Compiled here, once, with the options the filter runs it with.
            match crate::classify::Pattern::compile(&pattern) {
                Ok(pattern) => custom.push(CustomRuleConfig { name, pattern, category }),
                Err((expected, got)) => self.err(&format!("{rp}.pattern"), expected, got),
            }
        }
        let mut fields = Vec::new();
        for (i, r) in self.array(o, "fields", p).iter().enumerate() {
            let rp = format!("{p}.fields[{i}]");
            let ro = self.object(Some(r), &rp, &["path", "entity", "category"]);
            if ro.is_none() {
                continue;
            }
            let path = self.nonempty(ro, "path", &rp, "");
            let entity = self.nonempty(ro, "entity", &rp, "");
            let category = self.category(ro, &rp, Category::Pii);
            if path.is_empty() {
                continue;
            }
            if !path.starts_with('$') {
                self.err(&format!("{rp}.path"), "a JSON path starting with `$`", format!("\"{path}\""));
                continue;
            }
            match crate::classify::FieldPath::parse(&path) {
                Ok(path) => fields.push(FieldRuleConfig { path, entity, category }),
                Err(why) => {
                    self.err(&format!("{rp}.path"), "a JSON path (`$.a.b`, `$.a[2]`, `$.a[*].b`, `$.a.*`)", why)
                }
            }
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
    /// A name from a fixed list, as the list's own `&'static str`.
    fn known(&mut self, o: Obj, key: &str, p: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let v = self.opt_string(o, key, p)?;
        if let Some(known) = allowed.iter().copied().find(|a| *a == v) {
            Some(known)
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
            let kind = self.nonempty(ro, "type", &rp, "");
            // Compiled here, once: the filter matches paths with it.
            match crate::resources::Template::parse(&path, &kind) {
                Ok(template) => resources.push(template),
                Err(msg) => self.err(&format!("{rp}.path"), "a path template (`/patients/{id}`)", msg),
            }
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
