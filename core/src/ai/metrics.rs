//! What a model call adds to Envoy's stats: counter labels and amounts,
//! from the event's `ai` object (the host keeps the bounded label set).

use serde_json::Value;

/// One model call's counters (`proxy_audit.ai.<provider>.<model>.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCounters {
    /// Lower-case `[a-z0-9-_]`, at most 64 characters, `unknown` if empty.
    pub provider: String,
    /// The model that answered, else the one asked for, as a label.
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A label as Envoy's stats take it.
pub fn label(v: &str) -> String {
    let cleaned: String = v
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '_' })
        .collect();
    if cleaned.is_empty() {
        "unknown".into()
    } else {
        cleaned
    }
}

/// The counters of the event's `ai` object.
pub fn call_counters(ai: &Value) -> CallCounters {
    let s = |k: &str| ai.get(k).and_then(Value::as_str).unwrap_or("");
    let n = |k: &str| ai.get("usage").and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
    let model = if s("response_model").is_empty() { s("request_model") } else { s("response_model") };
    CallCounters {
        provider: label(s("provider")),
        model: label(model),
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answering_model_is_the_label_and_labels_are_sanitized() {
        let ai = serde_json::json!({"provider": "openai", "request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06",
                                    "usage": {"input_tokens": 12, "output_tokens": 3}});
        assert_eq!(
            call_counters(&ai),
            CallCounters {
                provider: "openai".into(),
                model: "gpt-4o-2024-08-06".into(),
                input_tokens: 12,
                output_tokens: 3
            }
        );
        let ai = serde_json::json!({"provider": "aws_bedrock", "request_model": "Anthropic.Claude v3:0", "response_model": ""});
        let c = call_counters(&ai);
        assert_eq!((c.model.as_str(), c.input_tokens), ("anthropic_claude_v3_0", 0));
        assert_eq!(label(""), "unknown");
        assert_eq!(label(&"x".repeat(100)).len(), 64);
    }
}
