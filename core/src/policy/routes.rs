//! Route overrides (`routes[]`): which route a request matches, on the path
//! the upstream will resolve, and the settings in effect for it.

use super::config::{ActionsConfig, Config, Require};

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

/// Effective settings for one request after route overrides.
#[derive(Debug, Clone)]
pub struct Effective<'a> {
    pub require: Require,
    pub actions: &'a ActionsConfig,
    pub request: bool,
    pub response: bool,
    pub ai_enabled: bool,
    pub ai_provider: Option<&'static str>,
    pub ai_operation: Option<&'static str>,
    pub block_injection_score: Option<u8>,
}

impl Config {
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
            ai_provider: self.ai.provider,
            ai_operation: self.ai.operation,
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
            e.ai_provider = r.ai_provider.or(e.ai_provider);
            e.ai_operation = r.ai_operation.or(e.ai_operation);
            if let Some(b) = r.block_injection_score {
                e.block_injection_score = b;
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
