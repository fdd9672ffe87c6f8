//! The plugin configuration: its schema and parser with key-path errors
//! (`config`), and the path templates and resource matching it compiles
//! (`resources`). Built once per configuration, never per request.

pub mod config;
pub mod resources;

pub use config::ConfigError;

/// The whole configuration check in one call, as the filter makes it when it
/// starts, without the VM's environment: the parser's checks (every key,
/// type and range, provider and operation names, categories and actions as
/// enums, regexes compiled with the options used at runtime) and those of
/// what is built from it once (path templates, the classifier's rules, the
/// pseudonym key requirement). `proxy-audit check-config` runs exactly this.
pub fn compile(bytes: &[u8]) -> Result<config::Config, Vec<ConfigError>> {
    let cfg = config::Config::parse(bytes)?;
    let later: Vec<ConfigError> = crate::runtime::validate(&cfg)
        .into_iter()
        .map(|m| match m.split_once(": ") {
            Some((path, what)) if path.starts_with('$') => {
                ConfigError::new(path, "a rule the filter can compile", what.to_string())
            }
            _ => ConfigError::new("$", "a configuration the filter can start with", m),
        })
        .collect();
    if later.is_empty() {
        Ok(cfg)
    } else {
        Err(later)
    }
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
                "a rule the filter can compile",
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
