//! A model call the upstream refused for the `stream_options` the filter
//! added (`ai.stream_usage: inject`; an OpenAI-compatible server that does
//! not know the option answers 400 or 422): the request is sent again, as
//! the client sent it, to the same upstream cluster, and the client gets
//! that answer, as if the filter had not been there. A per-VM negative cache
//! remembers the upstreams that refused (by provider, host and API version)
//! so that later requests to them are not injected.

use std::collections::VecDeque;

/// Upstreams remembered per VM; the oldest is forgotten first.
const REMEMBERED: usize = 64;
/// How long the retried call may take (a whole completion, streamed or not).
pub const TIMEOUT_MS: u32 = 300_000;

/// The upstreams that refused the option, per VM (in the runtime); the
/// oldest is forgotten first.
#[derive(Debug, Default)]
pub struct Refusals {
    keys: VecDeque<String>,
}

impl Refusals {
    /// Whether this upstream refused the option before.
    pub fn refused(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    /// Remembers that this upstream refuses the option.
    pub fn remember(&mut self, key: &str) {
        if self.refused(key) {
            return;
        }
        if self.keys.len() >= REMEMBERED {
            self.keys.pop_front();
        }
        self.keys.push_back(key.to_string());
    }
}

/// The cache key of an upstream: provider, host (as the client named it)
/// and API version.
pub fn key(provider: &str, authority: &str, api_version: Option<&str>) -> String {
    format!("{provider} {} {}", authority.to_ascii_lowercase(), api_version.unwrap_or("-"))
}

/// Whether an upstream's status may be its refusal of the option: the
/// request is retried without it (what the client sent) and the client gets
/// that answer, so a refusal for another reason reaches the client as well.
pub fn may_be_refusal(status: Option<u16>) -> bool {
    matches!(status, Some(400 | 422))
}

/// Headers that belong to one hop (or to the body's framing).
fn hop(name: &str) -> bool {
    matches!(
        name,
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "host"
    ) || name.starts_with("x-envoy-")
}

/// The headers of the retried request: the request's as they went upstream
/// (pseudo-headers included), with the body's new length.
pub fn request_headers(sent: &[(String, String)], body_len: usize) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sent.iter().filter(|(k, _)| !hop(&k.to_ascii_lowercase())).cloned().collect();
    out.push(("content-length".into(), body_len.to_string()));
    out
}

/// The headers of the answer for the client: the retried call's, without
/// its status line and framing (the host frames the local reply).
pub fn reply_headers(got: &[(String, String)]) -> Vec<(String, String)> {
    got.iter().filter(|(k, _)| !k.starts_with(':') && !hop(&k.to_ascii_lowercase())).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_and_keyed_by_upstream() {
        let mut r = Refusals::default();
        let a = key("openai_compatible", "LLM.example", None);
        assert_eq!(a, "openai_compatible llm.example -");
        assert!(!r.refused(&a));
        r.remember(&a);
        r.remember(&a);
        assert_eq!(r.keys.len(), 1);
        assert!(r.refused(&a) && !r.refused(&key("openai_compatible", "llm.example", Some("v2"))));
        for k in 0..REMEMBERED {
            r.remember(&format!("k{k}"));
        }
        assert!(!r.refused(&a), "the oldest is forgotten first");
        assert!(r.refused("k0") && r.refused(&format!("k{}", REMEMBERED - 1)));
    }

    #[test]
    fn headers_lose_their_framing() {
        let sent = [
            (":method", "POST"),
            (":path", "/v1/chat"),
            ("content-length", "99"),
            ("x-envoy-expected-rq-timeout-ms", "1"),
            ("authorization", "Bearer k"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let want = [(":method", "POST"), (":path", "/v1/chat"), ("authorization", "Bearer k"), ("content-length", "7")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(request_headers(&sent, 7), want);
        let got = [(":status", "200"), ("content-type", "text/event-stream"), ("transfer-encoding", "chunked")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(reply_headers(&got), vec![("content-type".to_string(), "text/event-stream".to_string())]);
        assert!(
            may_be_refusal(Some(400))
                && may_be_refusal(Some(422))
                && !may_be_refusal(Some(401))
                && !may_be_refusal(None)
        );
    }
}
