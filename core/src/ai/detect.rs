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
}

/// Per-route override for custom gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub provider: String,
    pub operation: Option<String>,
}

const PROVIDERS: &[&str] = &[
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

const OPERATIONS: &[&str] = &["chat", "text_completion", "embeddings", "generate_content", "responses"];

fn intern<'a>(s: &str, table: &[&'a str], fallback: &'a str) -> &'a str {
    table.iter().copied().find(|p| *p == s).unwrap_or(fallback)
}

/// Recognizes a model call; `None` for ordinary traffic.
pub fn detect(method: &str, path: &str, host: &str, ov: Option<&Override>) -> Option<Detected> {
    let path = path.split('?').next().unwrap_or(path);
    let host = host.to_ascii_lowercase();
    let found = by_path(method, path, &host);
    match ov {
        None => found,
        Some(o) => {
            let base = found.unwrap_or(Detected {
                provider: "",
                operation: "chat",
                model_from_path: None,
                stream_from_path: false,
            });
            Some(Detected {
                provider: intern(&o.provider, PROVIDERS, "openai_compatible"),
                operation: o.operation.as_deref().map_or(base.operation, |op| intern(op, OPERATIONS, "chat")),
                ..base
            })
        }
    }
}

fn by_path(method: &str, path: &str, host: &str) -> Option<Detected> {
    if !method.eq_ignore_ascii_case("POST") {
        return None;
    }
    let d =
        |provider, operation| Some(Detected { provider, operation, model_from_path: None, stream_from_path: false });
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
        let operation = openai_operation(&format!("/{op}"))?;
        return Some(Detected {
            provider: "azure_openai",
            operation,
            model_from_path: Some(percent_decode(deployment)),
            stream_from_path: false,
        });
    }
    // AWS Bedrock runtime: /model/{modelId}/{invoke|invoke-with-response-stream|converse|converse-stream}
    if let Some(rest) = path.strip_prefix("/model/") {
        let (model, action) = rest.rsplit_once('/')?;
        let (operation, stream) = match action {
            "invoke" => ("chat", false),
            "invoke-with-response-stream" => ("chat", true),
            "converse" => ("chat", false),
            "converse-stream" => ("chat", true),
            _ => return None,
        };
        return Some(Detected {
            provider: "aws_bedrock",
            operation,
            model_from_path: Some(percent_decode(model)),
            stream_from_path: stream,
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
        });
    }
    match path {
        "/v1/messages" => d("anthropic", "chat"),
        "/v2/chat" | "/v1/chat" => d("cohere", "chat"),
        "/api/chat" => d("ollama", "chat"),
        "/api/generate" => d("ollama", "text_completion"),
        "/api/embed" | "/api/embeddings" => d("ollama", "embeddings"),
        _ => {
            let tail = path.find("/v1/").and_then(|i| path.get(i + 3..))?;
            let operation = openai_operation(tail)?;
            d(openai_like(), operation)
        }
    }
}

fn openai_operation(tail: &str) -> Option<&'static str> {
    match tail {
        "/chat/completions" => Some("chat"),
        "/completions" => Some("text_completion"),
        "/responses" => Some("chat"),
        "/embeddings" => Some("embeddings"),
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
    fn override_for_custom_gateways() {
        let ov = Override { provider: "anthropic".into(), operation: None };
        let d = detect("POST", "/llm/proxy", "gw", Some(&ov));
        assert_eq!(d.map(|d| (d.provider, d.operation)), Some(("anthropic", "chat")));
    }
}
