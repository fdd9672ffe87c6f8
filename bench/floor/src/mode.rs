//! The plugin configuration: which floor to run.
//!
//! Either a single word (`noop`, `digest`, optionally JSON-quoted) or a JSON
//! object with a `mode` member (`{"mode": "digest"}`). Not a JSON parser: the
//! one member is all this benchmark filter reads, so it needs no serde.

/// What the filter does per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Returns Continue from every callback: the cost of being a wasm filter at all.
    Noop,
    /// The contract's mandatory SHA-256 work and nothing else (see [`crate::digest`]).
    Digest,
}

/// The mode a configuration names; `None` for anything else (the plugin then
/// refuses the configuration, so a typo cannot pass for a no-op).
pub fn parse(config: &[u8]) -> Option<Mode> {
    let text = std::str::from_utf8(config).ok()?.trim();
    let word = if text.starts_with('{') {
        let (_, after_key) = text.split_once("\"mode\"")?;
        let value = after_key.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
        value.split_once('"')?.0
    } else {
        text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text)
    };
    match word.trim() {
        "noop" => Some(Mode::Noop),
        "digest" => Some(Mode::Digest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_word_names_the_mode() {
        assert_eq!(parse(b"noop"), Some(Mode::Noop));
        assert_eq!(parse(b" digest\n"), Some(Mode::Digest));
        assert_eq!(parse(b"\"digest\""), Some(Mode::Digest));
    }

    #[test]
    fn a_json_object_names_it_in_mode() {
        assert_eq!(parse(br#"{"mode": "noop"}"#), Some(Mode::Noop));
        assert_eq!(parse(br#"{ "other": 1, "mode" :"digest" }"#), Some(Mode::Digest));
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"{}"), None);
        assert_eq!(parse(br#"{"mode": 1}"#), None);
        assert_eq!(parse(br#"{"mode": "fast"}"#), None);
        assert_eq!(parse(b"Noop"), None);
        assert_eq!(parse(b"\xff"), None);
    }
}
