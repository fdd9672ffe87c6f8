//! The plugin configuration, compiled once per configuration and never per
//! request: its schema (`config`), the parser that checks every key and
//! compiles rules with typed errors (`parse`), route overrides (`routes`),
//! and the path templates of `audit.resources` (`resources`).

pub mod config;
mod parse;
pub mod resources;
pub mod routes;

pub use routes::{normalize_path, Effective, RouteMatch};

pub use config::ConfigError;

/// The compiled policy: a parsed [`config::Config`] holds everything
/// compiled once (regexes with the options the filter runs them with, path
/// templates, field paths, entity ids, categories, actions and provider
/// names as enums).
pub type Policy = config::Config;

/// The whole configuration check in one call, as the filter makes it when it
/// starts, without the VM's environment: every key, type and range, every
/// name, every rule compiled, with typed errors (key path, what was
/// expected, what came). The filter's `on_configure`, `proxy-audit
/// check-config` and `proxy-audit scan` all run exactly this.
pub fn compile(bytes: &[u8]) -> Result<Policy, Vec<ConfigError>> {
    config::Config::parse(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of invalid config the README's reference documents, with
    /// the key path and what was expected.
    #[test]
    fn invalid_configs_name_the_key_what_was_expected_and_what_came() {
        let cases: &[(&str, &str, &str)] = &[
            (r#"[]"#, "$", "an object"),
            (r#"{"nope": 1}"#, "$.nope", "one of the keys"),
            (r#"{"identity": {"jwt": {"header": 7}}}"#, "$.identity.jwt.header", "a string"),
            (r#"{"identity": {"require": "maybe"}}"#, "$.identity.require", "one of: none, authenticated, individual"),
            (r#"{"classification": {"actions": {"pii": "shred"}}}"#, "$.classification.actions.pii", "one of:"),
            (
                r#"{"classification": {"entities": ["emial"]}}"#,
                "$.classification.entities[0]",
                "a built-in entity name",
            ),
            (
                r#"{"classification": {"custom": [{"name": "x", "pattern": "(", "category": "custom"}]}}"#,
                "$.classification.custom[0].pattern",
                "a valid regular expression",
            ),
            (
                r#"{"classification": {"fields": [{"path": "patient.name", "entity": "person_name", "category": "phi"}]}}"#,
                "$.classification.fields[0].path",
                "a JSON path starting with `$`",
            ),
            (r#"{"classification": {"max_body_bytes": "big"}}"#, "$.classification.max_body_bytes", "an integer"),
            (r#"{"ai": {"provider": "opneai"}}"#, "$.ai.provider", "one of: openai"),
            (r#"{"ai": {"block_injection_score": 0}}"#, "$.ai.block_injection_score", "an integer from 1 to 100"),
            (
                r#"{"audit": {"exporter": {"timeout_ms": 0}}}"#,
                "$.audit.exporter.timeout_ms",
                "an integer from 1 to 60000",
            ),
            (r#"{"audit": {"exporter": {"path": "v1"}}}"#, "$.audit.exporter.path", "a path starting with `/`"),
            (
                r#"{"audit": {"exporter": {"max_batch_events": 50, "max_buffered_events": 10}}}"#,
                "$.audit.exporter.max_buffered_events",
                "at least max_batch_events (50)",
            ),
            (
                r#"{"audit": {"checkpoint_interval_ms": 60001}}"#,
                "$.audit.checkpoint_interval_ms",
                "an integer from 1000 to 60000",
            ),
            (r#"{"audit": {"witness": {"cluster": "w"}}}"#, "$.audit.witness", "audit.signing as well"),
            (
                r#"{"routes": [{"classification": {"request": true}}]}"#,
                "$.routes[0].match",
                "an object with path_prefix",
            ),
            (
                r#"{"envoy": {"allow_on_headers_stop_iteration": "yes"}}"#,
                "$.envoy.allow_on_headers_stop_iteration",
                "a boolean",
            ),
            (
                r#"{"classification": {"actions": {"pii": "pseudonymize"}}}"#,
                "$.audit.pseudonym_key_env",
                "an environment variable name when an action is `pseudonymize`",
            ),
            (
                r#"{"routes": [{"match": {"path_prefix": "/x"}, "classification": {"actions": {"phi": "pseudonymize"}}}]}"#,
                "$.audit.pseudonym_key_env",
                "an environment variable name when an action is `pseudonymize`",
            ),
            (
                r#"{"classification": {"custom": [{"name": "x", "pattern": "a*", "category": "custom"}]}}"#,
                "$.classification.custom[0].pattern",
                "a regular expression that cannot match the empty string",
            ),
            (
                r#"{"classification": {"custom": [{"name": "x", "pattern": "a", "category": "card"}]}}"#,
                "$.classification.custom[0].category",
                "one of: pii, phi, pci, secret, custom",
            ),
            (
                r#"{"classification": {"fields": [{"path": "$.a[x]", "entity": "mrn"}]}}"#,
                "$.classification.fields[0].path",
                "a JSON path (",
            ),
            (
                r#"{"audit": {"resources": [{"path": "/p/{id", "type": "p"}]}}"#,
                "$.audit.resources[0].path",
                "a path template",
            ),
        ];
        for (cfg, path, expected) in cases {
            let errors = compile(cfg.as_bytes()).err().unwrap_or_default();
            assert!(errors.iter().any(|e| e.path == *path && e.expected.starts_with(expected)), "{cfg}: {errors:?}");
        }
        assert!(compile(
            br#"{"audit": {"pseudonym_key_env": "K"}, "classification": {"actions": {"pii": "pseudonymize"}}}"#
        )
        .is_ok());
    }
}
