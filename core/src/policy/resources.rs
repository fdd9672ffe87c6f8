//! Resource templates (`audit.resources`): turn a raw request path into the
//! event's `action.path`, `target.resource_type` and `target.resource_id`.
//!
//! `{name}` stands for one segment. A template matches the whole path or a
//! prefix of it ending at a segment boundary, so `/patients/{id}` covers
//! `/patients/1274/records` → `/patients/{id}/records`, `patient:1274`.
//! Query values never reach the event: only the parameter names are kept.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The template as written (`/patients/{id}`).
    pub path: String,
    /// `target.resource_type` of the paths it matches.
    pub kind: String,
    segs: Vec<Seg>,
}

impl Template {
    pub fn parse(path: &str, kind: &str) -> Result<Template, String> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err("a resource path must start with `/`".into());
        };
        let mut segs = Vec::new();
        for s in rest.split('/').filter(|s| !s.is_empty()) {
            if let Some(name) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || name.contains(['{', '}']) {
                    return Err(format!("bad placeholder `{s}`"));
                }
                segs.push(Seg::Var(name.to_string()));
            } else if s.contains(['{', '}']) {
                return Err(format!("`{s}`: a placeholder must be a whole segment"));
            } else {
                segs.push(Seg::Lit(s.to_string()));
            }
        }
        Ok(Template { path: path.to_string(), kind: kind.to_string(), segs })
    }
}

/// What the event records about the path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathFacts {
    pub path: String,
    pub resource_type: Option<String>,
    /// `type:value` of the last placeholder, before any pseudonymization.
    pub resource_id: Option<String>,
    /// The raw identifier value (so the caller can pseudonymize it).
    pub resource_value: Option<String>,
}

/// Applies the first matching template. `flag(segment)` names the entity of a
/// segment the classifier recognizes (an email, an SSN...) so that unmatched
/// paths never carry personal data: such segments become `{entity}`.
pub fn apply(templates: &[Template], raw_path: &str, flag: &dyn Fn(&str) -> Option<String>) -> PathFacts {
    let (path, query) = raw_path.split_once('?').unwrap_or((raw_path, ""));
    let path = path.split_once('#').map_or(path, |(p, _)| p);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut facts = PathFacts::default();
    // The templated path is written straight into one string.
    let mut out = String::with_capacity(raw_path.len() + 8);
    let matched = templates.iter().find(|t| {
        t.segs.len() <= segments.len()
            && t.segs.iter().zip(&segments).all(|(seg, s)| match seg {
                Seg::Lit(l) => l == s,
                Seg::Var(_) => true,
            })
    });
    let mut start = 0;
    if let Some(t) = matched {
        facts.resource_type = Some(t.kind.clone());
        for (seg, s) in t.segs.iter().zip(&segments) {
            out.push('/');
            match seg {
                Seg::Lit(l) => out.push_str(l),
                Seg::Var(name) => {
                    push_placeholder(&mut out, name);
                    let value = percent_decode(s);
                    let mut id = String::with_capacity(t.kind.len() + 1 + value.len());
                    id.push_str(&t.kind);
                    id.push(':');
                    id.push_str(&value);
                    facts.resource_id = Some(id);
                    facts.resource_value = Some(value);
                }
            }
        }
        start = t.segs.len();
    }
    for s in segments.iter().skip(start) {
        out.push('/');
        let decoded = percent_decode(s);
        match flag(&decoded) {
            Some(entity) => push_placeholder(&mut out, &entity),
            None => out.push_str(s),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    let mut keys = query.split('&').filter(|kv| !kv.is_empty()).map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k));
    if let Some(first) = keys.next() {
        out.push('?');
        out.push_str(first);
        for k in keys {
            out.push('&');
            out.push_str(k);
        }
    }
    facts.path = out;
    facts
}

/// `{name}`.
fn push_placeholder(out: &mut String, name: &str) {
    out.push('{');
    out.push_str(name);
    out.push('}');
}

/// Decodes `%XX` escapes (lossy on invalid UTF-8); `+` is kept (paths, not forms).
pub fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let (Some(h), Some(l)) = (b.get(i + 1).and_then(|x| hexval(*x)), b.get(i + 2).and_then(|x| hexval(*x))) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Vec<Template> {
        vec![
            Template::parse("/patients/{id}", "patient").unwrap_or_else(|e| panic!("{e}")),
            Template::parse("/orgs/{org}/users/{user}", "user").unwrap_or_else(|e| panic!("{e}")),
        ]
    }

    fn no_flag(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn templating_table() {
        let t = templates();
        let cases = [
            ("/patients/1274", "/patients/{id}", Some("patient:1274")),
            ("/patients/1274/records?from=2020&to=2021", "/patients/{id}/records?from&to", Some("patient:1274")),
            ("/orgs/acme/users/42", "/orgs/{org}/users/{user}", Some("user:42")),
            ("/patientsX/1", "/patientsX/1", None),
            ("/patients", "/patients", None),
            ("/health?verbose", "/health?verbose", None),
            ("/", "/", None),
        ];
        for (raw, path, id) in cases {
            let f = apply(&t, raw, &no_flag);
            assert_eq!(f.path, path, "{raw}");
            assert_eq!(f.resource_id.as_deref(), id, "{raw}");
        }
    }

    #[test]
    fn flagged_segments_are_templated() {
        let flag = |s: &str| s.contains('@').then(|| "email".to_string());
        let f = apply(&[], "/users/jane%40example.com/profile", &flag);
        assert_eq!(f.path, "/users/{email}/profile");
    }

    #[test]
    fn bad_templates() {
        assert!(Template::parse("patients", "").is_err());
        assert!(Template::parse("/p/{}", "").is_err());
        assert!(Template::parse("/p/x{id}", "").is_err());
    }
}
