//! Provider and operation from method, path and host.

use crate::resources::percent_decode;

/// A model call, as recognized from its request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub provider: &'static str,
    pub operation: &'static str,
    /// Azure deployment, Bedrock model id, Gemini/Vertex model.
    pub model_from_path: Option<String>,
    /// Streaming is chosen by the URL (Bedrock `*-stream`, Gemini `:stream*`).
    pub stream_from_path: bool,
    /// The wire API the path names: `chat_completions`, `completions`,
    /// `responses`, `embeddings`, `messages`, `bedrock_invoke`,
    /// `bedrock_converse`, `generate_content`, `cohere_v1`, `cohere_v2`,
    /// `ollama_chat`, `ollama_generate`, `ollama_embed`; empty when a route
    /// override names a provider for a path of its own.
    pub api: &'static str,
    /// Azure OpenAI: the `api-version` query parameter, or `v1` for the
    /// versionless `/openai/v1/` API.
    pub api_version: Option<String>,
}

/// Per-route override for custom gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// One of [`PROVIDERS`] (the config parser checked it).
    pub provider: &'static str,
    /// One of [`OPERATIONS`].
    pub operation: Option<&'static str>,
}

/// Every provider name the filter knows (`ai.provider` must be one of them).
pub const PROVIDERS: &[&str] = &[
    "openai",
    "azure_openai",
    "anthropic",
    "aws_bedrock",
    "gcp_gemini",
    "gcp_vertex_ai",
    "cohere",
    "mistral",
    "ollama",
    "openai_compatible",
];

/// Every operation name `ai.operation` may force.
pub const OPERATIONS: &[&str] = &["chat", "text_completion", "embeddings", "generate_content", "responses"];

/// Recognizes a model call; `None` for ordinary traffic.
pub fn detect(method: &str, path: &str, host: &str, ov: Option<&Override>) -> Option<Detected> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let host = host.to_ascii_lowercase();
    let mut found = by_path(method, path, &host);
    if let Some(d) = found.as_mut().filter(|d| d.provider == "azure_openai") {
        d.api_version = if path.starts_with("/openai/v1/") {
            Some("v1".to_string())
        } else {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("api-version="))
                .map(|v| percent_decode(v).chars().take(32).collect())
        };
    }
    match ov {
        None => found,
        Some(o) => {
            let base = found.unwrap_or(Detected {
                provider: "",
                operation: "chat",
                model_from_path: None,
                stream_from_path: false,
                api: "",
                api_version: None,
            });
            Some(Detected { provider: o.provider, operation: o.operation.unwrap_or(base.operation), ..base })
        }
    }
}

fn by_path(method: &str, path: &str, host: &str) -> Option<Detected> {
    if !method.eq_ignore_ascii_case("POST") {
        return None;
    }
    let d = |provider, operation, api| {
        Some(Detected { provider, operation, model_from_path: None, stream_from_path: false, api, api_version: None })
    };
    let openai_like = || {
        if host.starts_with("api.openai.com") {
            "openai"
        } else if host.contains("mistral.ai") {
            "mistral"
        } else if host.contains("openai.azure.com") {
            "azure_openai"
        } else {
            "openai_compatible"
        }
    };
    // Azure OpenAI: /openai/deployments/{deployment}/chat/completions?api-version=...
    if let Some(rest) = path.strip_prefix("/openai/deployments/") {
        let (deployment, op) = rest.split_once('/')?;
        let (operation, api) = openai_operation(&format!("/{op}"))?;
        return Some(Detected {
            provider: "azure_openai",
            operation,
            model_from_path: Some(percent_decode(deployment)),
            stream_from_path: false,
            api,
            api_version: None,
        });
    }
    // AWS Bedrock runtime: /model/{modelId}/{invoke|invoke-with-response-stream|converse|converse-stream}
    if let Some(rest) = path.strip_prefix("/model/") {
        let (model, action) = rest.rsplit_once('/')?;
        let (api, stream) = match action {
            "invoke" => ("bedrock_invoke", false),
            "invoke-with-response-stream" => ("bedrock_invoke", true),
            "converse" => ("bedrock_converse", false),
            "converse-stream" => ("bedrock_converse", true),
            _ => return None,
        };
        return Some(Detected {
            provider: "aws_bedrock",
            operation: "chat",
            model_from_path: Some(percent_decode(model)),
            stream_from_path: stream,
            api,
            api_version: None,
        });
    }
    // Gemini: /v1beta/models/{model}:generateContent; Vertex: /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:...
    if let Some((prefix, verb)) = path.rsplit_once(':') {
        let stream = match verb {
            "generateContent" => false,
            "streamGenerateContent" => true,
            _ => return None,
        };
        let model = prefix.rsplit_once("/models/").map(|(_, m)| percent_decode(m));
        let provider = if prefix.contains("/publishers/") || host.contains("aiplatform.googleapis.com") {
            "gcp_vertex_ai"
        } else {
            "gcp_gemini"
        };
        return Some(Detected {
            provider,
            operation: "generate_content",
            model_from_path: model,
            stream_from_path: stream,
            api: "generate_content",
            api_version: None,
        });
    }
    match path {
        "/v1/messages" => d("anthropic", "chat", "messages"),
        "/v2/chat" => d("cohere", "chat", "cohere_v2"),
        "/v1/chat" => d("cohere", "chat", "cohere_v1"),
        "/api/chat" => d("ollama", "chat", "ollama_chat"),
        "/api/generate" => d("ollama", "text_completion", "ollama_generate"),
        "/api/embed" | "/api/embeddings" => d("ollama", "embeddings", "ollama_embed"),
        _ => {
            let tail = path.find("/v1/").and_then(|i| path.get(i + 3..))?;
            let (operation, api) = openai_operation(tail)?;
            d(openai_like(), operation, api)
        }
    }
}

/// (operation, api) of an OpenAI-style path tail.
fn openai_operation(tail: &str) -> Option<(&'static str, &'static str)> {
    match tail {
        "/chat/completions" => Some(("chat", "chat_completions")),
        "/completions" => Some(("text_completion", "completions")),
        "/responses" => Some(("chat", "responses")),
        "/embeddings" => Some(("embeddings", "embeddings")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: &str, path: &str, host: &str) -> Option<(&'static str, &'static str, Option<String>, bool)> {
        detect(method, path, host, None).map(|d| (d.provider, d.operation, d.model_from_path, d.stream_from_path))
    }

    #[test]
    fn detection_table() {
        assert_eq!(p("POST", "/v1/chat/completions", "api.openai.com"), Some(("openai", "chat", None, false)));
        assert_eq!(
            p("POST", "/v1/chat/completions", "vllm.internal:8000"),
            Some(("openai_compatible", "chat", None, false))
        );
        assert_eq!(p("POST", "/v1/responses", "api.openai.com"), Some(("openai", "chat", None, false)));
        assert_eq!(p("POST", "/v1/embeddings", "api.mistral.ai"), Some(("mistral", "embeddings", None, false)));
        assert_eq!(p("POST", "/v1/completions", "x"), Some(("openai_compatible", "text_completion", None, false)));
        assert_eq!(
            p("POST", "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21", "r.openai.azure.com"),
            Some(("azure_openai", "chat", Some("gpt4o-prod".into()), false))
        );
        assert_eq!(p("POST", "/v1/messages", "api.anthropic.com"), Some(("anthropic", "chat", None, false)));
        assert_eq!(
            p(
                "POST",
                "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke-with-response-stream",
                "bedrock-runtime.us-east-1.amazonaws.com"
            ),
            Some(("aws_bedrock", "chat", Some("anthropic.claude-3-5-sonnet-20240620-v1:0".into()), true))
        );
        assert_eq!(
            p("POST", "/model/amazon.nova-pro-v1:0/converse", "b"),
            Some(("aws_bedrock", "chat", Some("amazon.nova-pro-v1:0".into()), false))
        );
        assert_eq!(
            p(
                "POST",
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                "generativelanguage.googleapis.com"
            ),
            Some(("gcp_gemini", "generate_content", Some("gemini-2.0-flash".into()), true))
        );
        assert_eq!(
            p(
                "POST",
                "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent",
                "us-central1-aiplatform.googleapis.com"
            ),
            Some(("gcp_vertex_ai", "generate_content", Some("gemini-1.5-pro".into()), false))
        );
        assert_eq!(p("POST", "/v2/chat", "api.cohere.com"), Some(("cohere", "chat", None, false)));
        assert_eq!(p("POST", "/api/chat", "localhost:11434"), Some(("ollama", "chat", None, false)));
        assert_eq!(p("GET", "/v1/chat/completions", "api.openai.com"), None);
        assert_eq!(p("POST", "/patients/1", "api"), None);
        assert_eq!(p("POST", "/v1/models", "api.openai.com"), None);
    }

    #[test]
    fn apis_and_azure_api_versions() {
        let api = |path: &str, host: &str| detect("POST", path, host, None).map(|d| (d.api, d.api_version));
        assert_eq!(api("/v1/responses", "api.openai.com"), Some(("responses", None)));
        assert_eq!(api("/v1/chat", "api.cohere.com"), Some(("cohere_v1", None)));
        assert_eq!(
            api("/openai/deployments/d/chat/completions?x=1&api-version=2024-10-21", "r.openai.azure.com"),
            Some(("chat_completions", Some("2024-10-21".into())))
        );
        assert_eq!(
            api("/openai/deployments/d/chat/completions", "r.openai.azure.com"),
            Some(("chat_completions", None))
        );
        assert_eq!(
            api("/openai/v1/chat/completions?api-version=preview", "r.openai.azure.com"),
            Some(("chat_completions", Some("v1".into())))
        );
        assert_eq!(
            api("/v1/chat/completions?api-version=2024-10-21", "api.openai.com"),
            Some(("chat_completions", None))
        );
    }

    #[test]
    fn override_for_custom_gateways() {
        let ov = Override { provider: "anthropic", operation: None };
        let d = detect("POST", "/llm/proxy", "gw", Some(&ov));
        assert_eq!(d.map(|d| (d.provider, d.operation)), Some(("anthropic", "chat")));
    }

    /// Every provider the config accepts has a `stream_options` rule (a new
    /// provider never silently goes without one), and the rules name no
    /// provider the config refuses.
    #[test]
    fn every_provider_has_a_stream_usage_rule() {
        let ruled: Vec<&str> = crate::ai::stream_usage::RULES.iter().map(|(p, _)| *p).collect();
        let mut a = ruled.clone();
        let mut b = PROVIDERS.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }
}
