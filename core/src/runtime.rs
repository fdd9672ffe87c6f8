//! Everything built once per configuration: the parsed config, compiled
//! templates, keys read from the environment, and the emitter. The filter
//! builds it in `on_configure`; nothing here is rebuilt per request.

use crate::classify::{Action, Category, Classifier, CustomRule, FieldRule, Policy};
use crate::config::Config;
use crate::emitter::{Emitter, TrailOptions};
use crate::resources::Template;
use crate::signing::Signer;

pub struct Runtime {
    pub cfg: Config,
    pub templates: Vec<Template>,
    pub hs256_key: Option<Vec<u8>>,
    pub pseudonym_key: Option<Vec<u8>>,
    pub emitter: Emitter,
    pub classifier: Classifier,
    /// HS256 tokens verified under this configuration.
    pub tokens: crate::identity::TokenCache,
}

/// Problems that stop the filter from starting (config errors are separate).
pub type StartError = Vec<String>;

impl Runtime {
    /// `env` reads the VM's environment (Envoy `vm_config.environment_variables`,
    /// Istio `vmConfig.env`). Missing secrets are errors: a filter that cannot
    /// verify tokens must not silently attribute nobody.
    pub fn new(
        cfg: Config,
        env: &dyn Fn(&str) -> Option<String>,
        seed: [u8; 32],
        emitter_name: String,
        now_ms: u64,
        start_reason: &str,
    ) -> Result<Runtime, StartError> {
        let mut errors = Vec::new();
        let mut secret = |key: &str, name: &Option<String>| -> Option<Vec<u8>> {
            let var = name.as_ref()?;
            match env(var) {
                Some(v) if !v.is_empty() => Some(v.into_bytes()),
                _ => {
                    // Repeat the name only if it looks like one: a secret
                    // pasted here by mistake must not reach Envoy's log.
                    let looks_like_name = !var.is_empty()
                        && var.len() <= 64
                        && var.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
                    errors.push(if looks_like_name {
                        format!(
                            "{key}: environment variable {var} is not set in the VM (vm_config.environment_variables)"
                        )
                    } else {
                        format!("{key}: must name an environment variable (A-Z, 0-9, _), not hold a value")
                    });
                    None
                }
            }
        };
        let hs256_key = secret("$.identity.jwt.hs256_secret_env", &cfg.identity.jwt.hs256_secret_env);
        let pseudonym_key = secret("$.audit.pseudonym_key_env", &cfg.audit.pseudonym_key_env);
        let signer = load_signer(&cfg, env).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let templates = cfg
            .audit
            .resources
            .iter()
            .filter_map(|r| Template::parse(&r.path, &r.kind).map_err(|e| errors.push(format!("{}: {e}", r.path))).ok())
            .collect();
        if uses_pseudonyms(&cfg) && cfg.audit.pseudonym_key_env.is_none() {
            errors.push(PSEUDONYM_KEY_REQUIRED.into());
        }
        let classifier = build_classifier(&cfg, pseudonym_key.clone().unwrap_or_default());
        let classifier = match classifier {
            Ok(c) => Some(c),
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        };
        let (true, Some(classifier)) = (errors.is_empty(), classifier) else {
            return Err(errors);
        };
        let emitter = Emitter::start_with(
            emitter_name,
            seed,
            &cfg.audit.exporter,
            trail_options(&cfg, signer),
            now_ms,
            start_reason,
        );
        Ok(Runtime { cfg, templates, hs256_key, pseudonym_key, emitter, classifier, tokens: Default::default() })
    }
}

impl Runtime {
    /// `action.path` and `target.*` for a raw request path: segments the
    /// classifier recognizes become `{entity}`, and a resource id that is
    /// itself personal data becomes its keyed pseudonym (or `{entity}`
    /// without a key), so the event never carries it.
    pub fn path_facts(&self, raw_path: &str) -> crate::resources::PathFacts {
        let flag = |segment: &str| self.classifier.segment_entity(segment).map(str::to_string);
        let mut facts = crate::resources::apply(&self.templates, raw_path, &flag);
        if let (Some(value), Some(kind)) = (&facts.resource_value, &facts.resource_type) {
            if let Some(entity) = flag(value) {
                let opaque = match self.pseudonym_key {
                    Some(_) => self.classifier.pseudonym(value),
                    None => format!("{{{entity}}}"),
                };
                facts.resource_id = Some(format!("{kind}:{opaque}"));
            }
        }
        facts.resource_value = None;
        facts
    }
}

/// The signing key `audit.signing` names, read from the VM's environment
/// (the error never quotes the variable's value).
pub fn load_signer(cfg: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Signer>, String> {
    let Some(s) = &cfg.audit.signing else { return Ok(None) };
    match env(&s.key_env) {
        Some(text) if !text.is_empty() => Signer::from_key_text(&s.key_id, &text)
            .map(Some)
            .map_err(|why| format!("$.audit.signing.key_env: environment variable {}: {why}", s.key_env)),
        _ => Err(format!(
            "$.audit.signing.key_env: environment variable {} is not set in the VM (vm_config.environment_variables)",
            s.key_env
        )),
    }
}

/// The checkpoint cadence, signing key and witness of a config.
pub fn trail_options(cfg: &Config, signer: Option<Signer>) -> TrailOptions {
    TrailOptions {
        checkpoint_interval_ms: cfg.audit.checkpoint_interval_ms,
        checkpoint_every_events: cfg.audit.checkpoint_every_events,
        signer,
        witness: cfg.audit.witness.clone(),
    }
}

const PSEUDONYM_KEY_REQUIRED: &str =
    "$.audit.pseudonym_key_env: required when an action is `pseudonymize` (keyed HMAC, never an unkeyed hash)";

fn uses_pseudonyms(cfg: &Config) -> bool {
    std::iter::once(&cfg.classification.actions)
        .chain(cfg.routes.iter().filter_map(|r| r.actions.as_ref()))
        .any(|a| [a.pii, a.phi, a.pci, a.secret, a.custom].contains(&Action::Pseudonymize))
}

/// Every check `Runtime::new` makes that does not need the VM's environment
/// (resource templates, rules the classifier compiles, the pseudonym key
/// requirement): what `proxy-audit check-config` adds to `Config::parse`.
pub fn validate(cfg: &Config) -> Vec<String> {
    let mut errors: Vec<String> = cfg
        .audit
        .resources
        .iter()
        .filter_map(|r| Template::parse(&r.path, &r.kind).err().map(|e| format!("{}: {e}", r.path)))
        .collect();
    if uses_pseudonyms(cfg) && cfg.audit.pseudonym_key_env.is_none() {
        errors.push(PSEUDONYM_KEY_REQUIRED.into());
    }
    if let Err(mut e) = build_classifier(cfg, Vec::new()) {
        errors.append(&mut e);
    }
    errors
}

/// The classifier of a config (also what `proxy-audit scan` uses).
pub fn build_classifier(cfg: &Config, pseudonym_key: Vec<u8>) -> Result<Classifier, Vec<String>> {
    let c = &cfg.classification;
    let policy = Policy {
        entities: c.entities.clone(),
        custom: c
            .custom
            .iter()
            .map(|r| CustomRule {
                name: r.name.clone(),
                pattern: r.pattern.clone(),
                category: Category::parse(&r.category).unwrap_or(Category::Custom),
            })
            .collect(),
        fields: c
            .fields
            .iter()
            .map(|f| FieldRule {
                path: f.path.clone(),
                entity: f.entity.clone(),
                category: Category::parse(&f.category).unwrap_or(Category::Pii),
            })
            .collect(),
        pseudonym_key,
    };
    Classifier::new(&policy).map_err(|e| {
        e.into_iter()
            .map(|m| if m.starts_with("classification.") { format!("$.{m}") } else { format!("$.classification: {m}") })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secret_is_an_error_naming_the_variable() {
        let cfg = Config::parse(br#"{"identity": {"jwt": {"hs256_secret_env": "NOPE"}}}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let err = Runtime::new(cfg, &|_| None, [0; 32], "e".into(), 0, "start").err().unwrap_or_default();
        assert_eq!(err.len(), 1);
        assert!(err[0].contains("NOPE"), "{err:?}");
    }

    #[test]
    fn personal_data_in_paths_never_reaches_the_event() {
        let cfg = Config::parse(
            br#"{"audit": {"resources": [{"path": "/users/{id}", "type": "user"}], "pseudonym_key_env": "K"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let rt = Runtime::new(cfg, &|_| Some("key".to_string()), [0; 32], "e".into(), 0, "start")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let f = rt.path_facts("/users/jane.doe%40example.com/orders/536-22-8841?x=1");
        assert_eq!(f.path, "/users/{id}/orders/{us_ssn}?x");
        let id = f.resource_id.unwrap_or_default();
        assert!(id.starts_with("user:pseu_") && !id.contains("jane"), "{id}");
        assert_eq!(rt.path_facts("/users/1274").resource_id.as_deref(), Some("user:1274"));
        assert_eq!(rt.path_facts("/misc/jane@example.com").path, "/misc/{email}");
    }

    #[test]
    fn secret_read_from_env() {
        let cfg =
            Config::parse(br#"{"identity": {"jwt": {"hs256_secret_env": "K"}}}"#).unwrap_or_else(|e| panic!("{e:?}"));
        let rt = Runtime::new(cfg, &|k| (k == "K").then(|| "s3cret".to_string()), [0; 32], "e".into(), 0, "start");
        assert_eq!(rt.ok().and_then(|r| r.hs256_key), Some(b"s3cret".to_vec()));
    }
}
