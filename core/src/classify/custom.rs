//! Custom regex rules (with a literal prefilter) and JSON field-path rules.

use super::detect::Hit;

pub(crate) struct CustomMatcher {
    re: regex_lite::Regex,
    /// A literal every match starts with (after an optional `\b`/`^`), used to
    /// skip the regex entirely where it does not occur.
    literal: Option<String>,
    entity: u16,
}

impl CustomMatcher {
    pub(crate) fn new(pattern: &str, entity: u16) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("must not be empty".to_string());
        }
        // Error messages from regex-lite quote the pattern, never data.
        let re = regex_lite::Regex::new(pattern).map_err(|e| format!("invalid regex: {e}"))?;
        if re.is_match("") {
            return Err("pattern matches the empty string".to_string());
        }
        Ok(CustomMatcher { re, literal: required_prefix(pattern), entity })
    }

    /// Whether a match may hold whitespace (conservatively, from the pattern's
    /// text): a stream holds back a fixed window for such rules, as it cannot
    /// tell where their matches end.
    pub(crate) fn may_match_whitespace(&self) -> bool {
        may_match_whitespace(self.re.as_str())
    }

    /// Depends on where the scanned value starts or ends.
    pub(crate) fn anchored(&self) -> bool {
        let p = self.re.as_str();
        p.contains('^') || p.contains('$') || p.contains("\\A") || p.contains("\\z")
    }

    pub(crate) fn find(&self, text: &str, out: &mut Vec<Hit>) {
        match &self.literal {
            None => {
                for m in self.re.find_iter(text) {
                    if m.end() > m.start() {
                        out.push(Hit { start: m.start(), end: m.end(), entity: self.entity });
                    }
                }
            }
            Some(lit) => {
                let mut pos = 0;
                while let Some(rel) = text.get(pos..).and_then(|t| t.find(lit.as_str())) {
                    let p = pos + rel;
                    match self.re.find_at(text, p) {
                        Some(m) if m.end() > m.start() => {
                            out.push(Hit { start: m.start(), end: m.end(), entity: self.entity });
                            pos = m.end();
                        }
                        Some(m) => pos = m.end().max(p + 1),
                        None => break,
                    }
                    while pos < text.len() && !text.is_char_boundary(pos) {
                        pos += 1;
                    }
                }
            }
        }
    }
}

/// Constructs of a pattern that can match whitespace: a space, `.`, classes
/// that name or negate it, escapes by code, Unicode classes, and the `x` flag
/// (where spaces in classes and escaped spaces match).
pub(crate) fn may_match_whitespace(pattern: &str) -> bool {
    const ANY: &[&str] =
        &[".", "[^", "\\s", "\\W", "\\D", "\\p", "\\P", "\\x", "\\u", "\\t", "\\n", "\\r", "\\f", "\\v"];
    if pattern.chars().any(char::is_whitespace) || ANY.iter().any(|c| pattern.contains(c)) {
        return true;
    }
    // Flag groups `(?x)`, `(?ix:...)`.
    pattern.match_indices("(?").any(|(i, _)| {
        pattern
            .get(i + 2..)
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
            .any(|c| c == 'x')
    })
}

/// A literal that every match of `pattern` must start with, when one is
/// obvious: the pattern, after an optional `^` or `\b`, starts with plain
/// characters. Alternations and flags disable the prefilter.
pub(crate) fn required_prefix(pattern: &str) -> Option<String> {
    if pattern.contains('|') || pattern.starts_with("(?") {
        return None;
    }
    let mut rest = pattern;
    for p in ["^", "\\b"] {
        if let Some(r) = rest.strip_prefix(p) {
            rest = r;
        }
    }
    let mut lit = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek().copied() {
                Some(n) if "-.#@/:_ {}[]()*+?|^$\\&~".contains(n) => {
                    lit.push(n);
                    chars.next();
                }
                _ => break,
            }
        } else if c.is_alphanumeric() || "-_:#@/=%&~,;<>!'\" ".contains(c) {
            lit.push(c);
        } else {
            // A quantifier makes the previous character optional/repeated.
            if matches!(c, '?' | '*' | '{') {
                lit.pop();
            }
            break;
        }
        if matches!(chars.peek(), Some('?' | '*' | '{')) {
            lit.pop();
            break;
        }
    }
    if lit.chars().count() >= 2 {
        Some(lit)
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PTok {
    Lit(String),
    AnyIndex,
    AnyKey,
}

/// A compiled field path, matched against rendered JSON paths.
pub(crate) struct FieldMatcher {
    toks: Vec<PTok>,
    pub(crate) entity: u16,
}

impl FieldMatcher {
    pub(crate) fn new(path: &str, entity: u16) -> Result<Self, String> {
        let Some(body) = path.strip_prefix('$') else {
            return Err("must start with `$`".to_string());
        };
        let mut toks = Vec::new();
        let mut lit = String::from("$");
        let mut rest = body;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("[*]") {
                flush(&mut lit, &mut toks);
                toks.push(PTok::AnyIndex);
                rest = r;
            } else if let Some(r) = rest.strip_prefix(".*") {
                flush(&mut lit, &mut toks);
                toks.push(PTok::AnyKey);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("[\"") {
                // normalize ["key"] to the ['key'] form paths are rendered in
                let Some(end) = r.find("\"]") else {
                    return Err("unterminated [\"...\"]".to_string());
                };
                let key = r.get(..end).unwrap_or("");
                super::json::push_key(&mut lit, key);
                rest = r.get(end + 2..).unwrap_or("");
            } else if let Some(r) = rest.strip_prefix("['") {
                let Some(end) = r.find("']") else {
                    return Err("unterminated ['...']".to_string());
                };
                let key = r.get(..end).unwrap_or("");
                super::json::push_key(&mut lit, key);
                rest = r.get(end + 2..).unwrap_or("");
            } else if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = r.get(..end).unwrap_or("");
                if key.is_empty() {
                    return Err("empty member name".to_string());
                }
                super::json::push_key(&mut lit, key);
                rest = r.get(end..).unwrap_or("");
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| "unterminated [".to_string())?;
                let ix = r.get(..end).unwrap_or("");
                if ix.is_empty() || !ix.bytes().all(|c| c.is_ascii_digit()) {
                    return Err("index must be a number or *".to_string());
                }
                lit.push('[');
                lit.push_str(ix);
                lit.push(']');
                rest = r.get(end + 1..).unwrap_or("");
            } else {
                return Err("expected `.name`, `[n]` or `[*]`".to_string());
            }
        }
        flush(&mut lit, &mut toks);
        Ok(FieldMatcher { toks, entity })
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match_toks(&self.toks, path)
    }
}

fn flush(lit: &mut String, toks: &mut Vec<PTok>) {
    if !lit.is_empty() {
        toks.push(PTok::Lit(std::mem::take(lit)));
    }
}

fn match_toks(toks: &[PTok], s: &str) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match first {
        PTok::Lit(l) => s.strip_prefix(l.as_str()).is_some_and(|r| match_toks(rest, r)),
        PTok::AnyIndex => {
            let Some(r) = s.strip_prefix('[') else {
                return false;
            };
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            n > 0 && r.get(n..).and_then(|r| r.strip_prefix(']')).is_some_and(|r| match_toks(rest, r))
        }
        PTok::AnyKey => {
            if let Some(r) = s.strip_prefix('.') {
                let n = r.find(['.', '[']).unwrap_or(r.len());
                n > 0 && r.get(n..).is_some_and(|r| match_toks(rest, r))
            } else if let Some(r) = s.strip_prefix("['") {
                // rendered keys escape ' as \' so the first unescaped '] ends it
                let mut k = 0;
                let bytes = r.as_bytes();
                while k + 1 < bytes.len() {
                    if bytes.get(k) == Some(&b'\\') {
                        k += 2;
                        continue;
                    }
                    if bytes.get(k) == Some(&b'\'') && bytes.get(k + 1) == Some(&b']') {
                        return r.get(k + 2..).is_some_and(|r| match_toks(rest, r));
                    }
                    k += 1;
                }
                false
            } else {
                false
            }
        }
    }
}
