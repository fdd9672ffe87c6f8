//! Custom regex rules (with a literal prefilter) and JSON field-path rules.

use super::detect::Hit;

/// A custom rule's regex, compiled once at configure with the options the
/// filter runs it with, and what its text tells about its matches.
#[derive(Clone)]
pub struct Pattern {
    re: regex_lite::Regex,
    /// A literal every match starts with (after an optional `\b`/`^`), used to
    /// skip the regex entirely where it does not occur.
    literal: Option<String>,
    whitespace: bool,
    anchored: bool,
}

impl Pattern {
    /// The largest compiled program a rule may have.
    pub const SIZE_LIMIT: usize = 1 << 20;

    /// Err is `(what was expected, what came)`; regex-lite's messages quote
    /// the pattern, never data.
    pub fn compile(pattern: &str) -> Result<Pattern, (&'static str, String)> {
        if pattern.is_empty() {
            return Err(("a non-empty regular expression", "\"\"".to_string()));
        }
        let re = regex_lite::RegexBuilder::new(pattern)
            .size_limit(Self::SIZE_LIMIT)
            .build()
            .map_err(|e| ("a valid regular expression", e.to_string().lines().next().unwrap_or("").to_string()))?;
        if re.is_match("") {
            return Err(("a regular expression that cannot match the empty string", "a pattern matching \"\"".into()));
        }
        let anchored = ["^", "$", "\\A", "\\z"].iter().any(|a| pattern.contains(a));
        Ok(Pattern { literal: required_prefix(pattern), whitespace: may_match_whitespace(pattern), anchored, re })
    }

    pub fn as_str(&self) -> &str {
        self.re.as_str()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pattern({:?})", self.as_str())
    }
}

pub(crate) struct CustomMatcher {
    pattern: Pattern,
    entity: u16,
}

impl CustomMatcher {
    pub(crate) fn new(pattern: &Pattern, entity: u16) -> Self {
        CustomMatcher { pattern: pattern.clone(), entity }
    }

    /// Whether a match may hold whitespace (conservatively, from the pattern's
    /// text): a stream holds back a fixed window for such rules, as it cannot
    /// tell where their matches end.
    pub(crate) fn may_match_whitespace(&self) -> bool {
        self.pattern.whitespace
    }

    /// Depends on where the scanned value starts or ends.
    pub(crate) fn anchored(&self) -> bool {
        self.pattern.anchored
    }

    pub(crate) fn find(&self, text: &str, out: &mut Vec<Hit>) {
        let re = &self.pattern.re;
        match &self.pattern.literal {
            None => {
                for m in re.find_iter(text) {
                    if m.end() > m.start() {
                        out.push(Hit { start: m.start(), end: m.end(), entity: self.entity });
                    }
                }
            }
            Some(lit) => {
                let mut pos = 0;
                while let Some(rel) = text.get(pos..).and_then(|t| t.find(lit.as_str())) {
                    let p = pos + rel;
                    match re.find_at(text, p) {
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

/// A field rule's JSON path, compiled once at configure; matched against
/// the rendered paths of a body's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    source: String,
    toks: Vec<PTok>,
}

/// A field rule with the id its entity has in the classifier.
pub(crate) struct FieldMatcher {
    path: FieldPath,
    pub(crate) entity: u16,
}

impl FieldMatcher {
    pub(crate) fn new(path: &FieldPath, entity: u16) -> Self {
        FieldMatcher { path: path.clone(), entity }
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match_toks(&self.path.toks, path)
    }
}

impl FieldPath {
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Err says what is wrong with the path.
    pub fn parse(path: &str) -> Result<Self, String> {
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
        Ok(FieldPath { source: path.to_string(), toks })
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
