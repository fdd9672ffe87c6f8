//! Everything a configuration starts: the compiled policy (a parsed
//! [`Config`]: templates, regexes, entities and actions are compiled by the
//! parser, once), keys read from the environment, the classifier and the
//! emitter. The filter builds it in `on_configure`; nothing here is rebuilt
//! per request.

use crate::classify::Classifier;
use crate::config::{Config, ConfigError};
use crate::emitter::{Emitter, TrailOptions};
use crate::signing::Signer;

pub struct Runtime {
    pub cfg: Config,
    pub hs256_key: Option<Vec<u8>>,
    pub pseudonym_key: Option<Vec<u8>>,
    pub emitter: Emitter,
    pub classifier: Classifier,
    /// HS256 tokens verified under this configuration.
    pub tokens: crate::identity::TokenCache,
    /// Headers the VM's exchanges hold while they read a body.
    pub holds: crate::exchange::hold::Holds,
    /// Upstreams that refused the `stream_options` the filter adds.
    pub refusals: crate::exchange::retry::Refusals,
}

/// Problems of the VM's environment that stop the filter from starting
/// (the config itself was checked when it was parsed), by key path.
pub type StartError = Vec<ConfigError>;

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
                        ConfigError::new(
                            key,
                            "an environment variable set in the VM (vm_config.environment_variables)",
                            format!("{var} is not set"),
                        )
                    } else {
                        ConfigError::new(key, "the name of an environment variable (A-Z, 0-9, _)", "a value")
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
        if !errors.is_empty() {
            return Err(errors);
        }
        let classifier = Classifier::new(&cfg.classification.rules(pseudonym_key.clone().unwrap_or_default()));
        let emitter = Emitter::start_with(
            emitter_name,
            seed,
            &cfg.audit.exporter,
            trail_options(&cfg, signer),
            now_ms,
            start_reason,
        );
        Ok(Runtime {
            cfg,
            hs256_key,
            pseudonym_key,
            emitter,
            classifier,
            tokens: Default::default(),
            holds: Default::default(),
            refusals: Default::default(),
        })
    }
}

impl Runtime {
    /// The root's tick for held headers: what stalled is released (see
    /// [`crate::exchange::hold`]), and after repeated unproven stalls
    /// `envoy.allow_on_headers_stop_iteration` is off for this VM (the log
    /// line then says so).
    pub fn tick_holds(&mut self, now_ms: u64) -> crate::exchange::hold::HoldTick {
        let mut t = self.holds.tick(now_ms);
        if t.disable && self.cfg.envoy.allow_on_headers_stop_iteration {
            self.cfg.envoy.allow_on_headers_stop_iteration = false;
            if let Some(log) = &mut t.log {
                log.push_str("; envoy.allow_on_headers_stop_iteration turned off for this VM");
            }
        }
        t
    }

    /// `action.path` and `target.*` for a raw request path: segments the
    /// classifier recognizes become `{entity}`, and a resource id that is
    /// itself personal data becomes its keyed pseudonym (or `{entity}`
    /// without a key), so the event never carries it.
    pub fn path_facts(&self, raw_path: &str) -> crate::resources::PathFacts {
        let flag = |segment: &str| self.classifier.segment_entity(segment).map(str::to_string);
        let mut facts = crate::resources::apply(&self.cfg.audit.resources, raw_path, &flag);
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
pub fn load_signer(cfg: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Signer>, ConfigError> {
    let Some(s) = &cfg.audit.signing else { return Ok(None) };
    let key = "$.audit.signing.key_env";
    match env(&s.key_env) {
        Some(text) if !text.is_empty() => Signer::from_key_text(&s.key_id, &text).map(Some).map_err(|why| {
            ConfigError::new(key, "an Ed25519 private key (proxy-audit keygen)", format!("{}: {why}", s.key_env))
        }),
        _ => Err(ConfigError::new(
            key,
            "an environment variable set in the VM (vm_config.environment_variables)",
            format!("{} is not set", s.key_env),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secret_is_an_error_naming_the_variable() {
        let cfg = Config::parse(br#"{"identity": {"jwt": {"hs256_secret_env": "NOPE"}}}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let err = Runtime::new(cfg, &|_| None, [0; 32], "e".into(), 0, "start").err().unwrap_or_default();
        assert_eq!(
            err,
            vec![ConfigError::new(
                "$.identity.jwt.hs256_secret_env",
                "an environment variable set in the VM (vm_config.environment_variables)",
                "NOPE is not set"
            )]
        );
    }

    /// Every key that names an environment variable refuses the config when
    /// the VM lacks it, and a value pasted where a name belongs is never
    /// repeated in the error.
    #[test]
    fn every_named_secret_must_be_set_and_values_are_never_echoed() {
        let cfg = Config::parse(
            br#"{"audit": {"pseudonym_key_env": "PSEUDO", "signing": {"key_env": "SIGNING", "key_id": "k1"}},
                 "identity": {"jwt": {"hs256_secret_env": "c2VjcmV0IHZhbHVl"}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let err = Runtime::new(cfg, &|_| None, [0; 32], "e".into(), 0, "start").err().unwrap_or_default();
        let got: Vec<(&str, &str)> = err.iter().map(|e| (e.path.as_str(), e.got.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("$.identity.jwt.hs256_secret_env", "a value"),
                ("$.audit.pseudonym_key_env", "PSEUDO is not set"),
                ("$.audit.signing.key_env", "SIGNING is not set"),
            ]
        );
        assert!(!format!("{err:?}").contains("c2VjcmV0"), "{err:?}");
        // A signing key that is not one.
        let cfg = Config::parse(br#"{"audit": {"signing": {"key_env": "SIGNING", "key_id": "k1"}}}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let env = |k: &str| (k == "SIGNING").then(|| "not a key".to_string());
        let err = Runtime::new(cfg, &env, [0; 32], "e".into(), 0, "start").err().unwrap_or_default();
        assert_eq!(
            err.iter().map(|e| (e.path.as_str(), e.expected.as_str())).collect::<Vec<_>>(),
            vec![("$.audit.signing.key_env", "an Ed25519 private key (proxy-audit keygen)")]
        );
        assert!(!format!("{err:?}").contains("not a key"), "{err:?}");
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
