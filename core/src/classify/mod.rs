//! Classification of regulated data in bodies, and body rewriting.
//!
//! # Overview
//!
//! A [`Classifier`] is built once per configuration from compiled [`Rules`]
//! (the config parser compiles custom regexes and field paths and checks
//! entity names; [`entities::TABLE`] lists the built-ins). Per request, [`Classifier::scan`] inspects a body
//! according to its [`BodyKind`] and applies the per-category [`Actions`];
//! SSE responses go through a [`StreamRedactor`] event by event.
//!
//! Built-in detectors are hand-written single-pass scanners with real
//! validation (Luhn, mod 97, mod 11, DEA and GitHub CRC32 checksums, range
//! rules, context words); see [`entities::TABLE`]. Custom rules use
//! `regex-lite` and only run where their literal prefix occurs (when one can
//! be extracted from the pattern).
//!
//! # Actions
//!
//! - `redact`: `[REDACTED:ENTITY]` (entity upper case, e.g. `[REDACTED:SECRET.JWT]`).
//! - `mask`: every character but the last four becomes `*`.
//! - `pseudonymize`: `pseu_` + first 16 hex digits of HMAC-SHA256(key, value);
//!   each `(token, original)` is returned in [`ScanOutcome::pseudonyms`] so
//!   [`restore`] can put originals back into a response.
//! - `remove`: in JSON the member holding the value is dropped from its object;
//!   an array element is replaced by `null` (indexes of the other elements,
//!   and therefore locations, stay stable). In text and form values it acts as
//!   `redact` (a form field is dropped).
//! - `block`: [`ScanOutcome::blocked`] is set to the category (the first one
//!   found in document order); the body is not rewritten.
//! - `tag`: only recorded.
//!
//! # Bodies
//!
//! - JSON: parsed with `serde_json` (its recursion limit bounds depth; a body
//!   too deep or invalid is scanned as text instead, which keeps valid JSON
//!   valid since replacements never contain quotes or backslashes). Every
//!   string value and every number is scanned, with the member name as
//!   context (e.g. `{"ssn": "123456789"}`); ICD-10 codes only below members
//!   whose name mentions diagnosis/icd/condition. Output is compact JSON.
//!   Locations are JSON paths (`$.messages[1].content`, `$['odd key']`).
//! - Text: the whole body; location `$`.
//! - Form (`application/x-www-form-urlencoded`): each value decoded, scanned
//!   with its field name as context, re-encoded when rewritten; location
//!   `$.form.<field>`.
//! - Event streams: see [`StreamRedactor`].
//!
//! Matched values never appear in errors, `Debug` output or findings.

mod actions;
mod body_kind;
mod context;
mod custom;
mod detect;
pub mod entities;
mod form;
mod json;
pub(crate) mod json_write;
mod names;
mod normalize;
mod phone;
mod pseudonym;
pub mod sse;
mod stream;
pub(crate) mod strict_json;
mod tabular;
#[cfg(test)]
mod tests;

pub use actions::{Action, Actions, Category};
pub use body_kind::{body_kind, BodyKind};
pub(crate) use pseudonym::pseudonym;
pub use pseudonym::restore;
pub use stream::{Observer, StreamRedactor};

use detect::Hit;

/// Built-in entity ids, as the detectors name them.
pub(crate) use entities::id as entity;
pub use entities::{EntityId, Validator};

/// Names accepted in `classification.entities` (and usable in field rules).
pub fn builtin_entity_names() -> impl Iterator<Item = &'static str> {
    entities::TABLE.iter().map(|e| e.name)
}

/// Category of a built-in entity name.
pub fn builtin_category(name: &str) -> Option<Category> {
    entities::by_name(name).map(|e| e.category)
}

pub use custom::{FieldPath, Pattern};

/// A regex rule (`classification.custom[]`), compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRule {
    pub name: String,
    pub pattern: Pattern,
    pub category: Category,
}

impl CustomRule {
    /// Compiles `pattern` (Err: what was expected, what came).
    pub fn new(name: &str, pattern: &str, category: Category) -> Result<Self, (&'static str, String)> {
        Ok(CustomRule { name: name.to_string(), pattern: Pattern::compile(pattern)?, category })
    }
}

/// A JSON-path rule (`classification.fields[]`): the value at `path` is
/// `entity` whatever it looks like. Paths: `$.a.b`, `$.a[2]`, `$.a[*].b`,
/// `$.a.*` (any member), `$['odd key']`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRule {
    pub path: FieldPath,
    pub entity: String,
    pub category: Category,
}

impl FieldRule {
    /// Parses `path` (Err says what is wrong with it).
    pub fn new(path: &str, entity: &str, category: Category) -> Result<Self, String> {
        Ok(FieldRule { path: FieldPath::parse(path)?, entity: entity.to_string(), category })
    }
}

/// What a classifier is built from: the config's `classification` rules,
/// already compiled and checked, and the pseudonym key.
#[derive(Clone, Default)]
pub struct Rules {
    /// Built-in entities on; `None` = all.
    pub entities: Option<Vec<EntityId>>,
    pub custom: Vec<CustomRule>,
    pub fields: Vec<FieldRule>,
    pub pseudonym_key: Vec<u8>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("entities", &self.entities)
            .field("custom", &self.custom)
            .field("fields", &self.fields)
            .field("pseudonym_key", &"<hidden>")
            .finish()
    }
}

/// Findings aggregated per (entity, action). Holds no values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub entity: String,
    pub category: Category,
    pub count: u32,
    pub action: Action,
    pub locations: Vec<String>,
}

impl Finding {
    /// One item of `data.*.findings` in the audit event.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "entity": self.entity,
            "category": self.category.as_str(),
            "count": self.count,
            "action": self.action.past_tense(),
            "locations": self.locations,
        })
    }
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct ScanOutcome {
    pub findings: Vec<Finding>,
    pub blocked: Option<Category>,
    /// Some only if the body changed.
    pub body: Option<Vec<u8>>,
    /// `(token, original)` for every pseudonymized value (never log these).
    pub pseudonyms: Vec<(String, String)>,
}

impl std::fmt::Debug for ScanOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanOutcome")
            .field("findings", &self.findings)
            .field("blocked", &self.blocked)
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .field("pseudonyms", &self.pseudonyms.len())
            .finish()
    }
}

#[derive(Clone)]
pub(crate) struct EntityInfo {
    name: String,
    category: Category,
    label: String,
}

/// Compiled classification policy. Build once, use for every request.
pub struct Classifier {
    entities: Vec<EntityInfo>,
    enabled: Vec<bool>,
    customs: Vec<custom::CustomMatcher>,
    fields: Vec<custom::FieldMatcher>,
    key: Vec<u8>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("builtins", &self.enabled.iter().filter(|e| **e).count())
            .field("custom", &self.customs.len())
            .field("fields", &self.fields.len())
            .finish()
    }
}

/// The look-back window a stream keeps for custom rules whose matches may
/// hold whitespace (their end cannot be told from the text's shape).
pub(crate) const HOLD_BYTES: usize = 256;

impl Classifier {
    /// Builds the classifier from compiled rules: nothing here can fail or
    /// compile anything (the config parser did, once, with typed errors).
    pub fn new(rules: &Rules) -> Self {
        let mut entities: Vec<EntityInfo> = entities::TABLE
            .iter()
            .map(|e| EntityInfo { name: e.name.to_string(), category: e.category, label: e.name.to_ascii_uppercase() })
            .collect();
        let mut enabled = vec![rules.entities.is_none(); entities::TABLE.len()];
        for id in rules.entities.iter().flatten() {
            if let Some(slot) = enabled.get_mut(usize::from(*id)) {
                *slot = true;
            }
        }
        let customs = rules
            .custom
            .iter()
            .map(|r| custom::CustomMatcher::new(&r.pattern, intern(&mut entities, &r.name, r.category)))
            .collect();
        let fields = rules
            .fields
            .iter()
            .map(|r| custom::FieldMatcher::new(&r.path, intern(&mut entities, &r.entity, r.category)))
            .collect();
        Classifier { entities, enabled, customs, fields, key: rules.pseudonym_key.clone() }
    }

    /// The same classifier with `key` for pseudonyms.
    pub fn with_key(mut self, key: Vec<u8>) -> Self {
        self.key = key;
        self
    }

    pub(crate) fn entity(&self, id: u16) -> Option<&EntityInfo> {
        self.entities.get(id as usize)
    }

    /// All matches in `text`, overlaps resolved (see [`resolve`]).
    /// `key` is the member/field name holding the text (context words).
    pub(crate) fn find(&self, text: &str, key: &str, icd: bool) -> Vec<Hit> {
        self.find_from(text, 0, key, icd)
    }

    /// [`Self::find`] with the built-ins' candidate values started only at
    /// or after `from` ([`detect::scan_from`]): what a stream's decision step
    /// asks of its context and new text. Custom rules and encoded runs are
    /// looked for in the whole text.
    pub(crate) fn find_from(&self, text: &str, from: usize, key: &str, icd: bool) -> Vec<Hit> {
        let mut hits = Vec::new();
        self.detect(text, from, key, icd, false, true, &mut hits);
        for c in &self.customs {
            c.find(text, &mut hits);
        }
        resolve(&mut hits);
        hits
    }

    /// Whether a stream's decision over `text`, new from `off`, for a member
    /// named `key`, need not look for values ([`detect::plain_words`]; no
    /// custom rule, which may match anything, and not a field of names or
    /// clinical codes).
    pub(crate) fn plain_words(&self, text: &str, off: usize, key: &str, icd: bool) -> bool {
        self.customs.is_empty() && key.is_empty() && !icd && detect::plain_words(text.as_bytes(), off)
    }

    /// Where a stream must hold its text from: what a value still growing at
    /// the end may have started at ([`detect::open_tail`]); with custom rules
    /// that may match whitespace, the last [`HOLD_BYTES`] as well.
    pub(crate) fn stream_cut(&self, text: &[u8], from: usize, max_token: usize) -> usize {
        let cut = detect::open_tail_from(text, from, max_token);
        if self.customs.iter().any(custom::CustomMatcher::may_match_whitespace) {
            cut.min(text.len().saturating_sub(HOLD_BYTES))
        } else {
            cut
        }
    }

    /// The built-in detectors over `text`, normalised (Unicode dashes and
    /// spaces, full-width and spaced digits, percent-encoding) with hits
    /// mapped back to `text`; then, with `decode`, long base64 runs that
    /// decode to text holding a finding become a finding as a whole.
    #[allow(clippy::too_many_arguments)]
    fn detect(
        &self,
        text: &str,
        from: usize,
        key: &str,
        icd: bool,
        first_only: bool,
        decode: bool,
        out: &mut Vec<Hit>,
    ) {
        let cx = detect::ScanCtx {
            enabled: &self.enabled,
            key: key.as_bytes(),
            icd,
            first_only,
            spaced: std::cell::Cell::new(false),
            name_key: !key.is_empty() && context::has_word(key.as_bytes(), names::NAME_LABELS),
        };
        let start = out.len();
        // Asked only whether there is anything: a hit in the text as it is
        // answers that without looking for what to normalise.
        if first_only {
            detect::scan_from(text.as_bytes(), from, &cx, out);
            if out.len() > start {
                return;
            }
        }
        crate::stages::mark("detectors: set up");
        let norm = match normalize::first_change(text.as_bytes()) {
            // From the start: a run of spaced digits may come before `f`.
            Some(_) => normalize::normalize_from(text, 0),
            None => {
                if !first_only {
                    detect::scan_from(text.as_bytes(), from, &cx, out);
                }
                // Digits spaced one by one: scan the whole text normalised.
                if cx.spaced.get() {
                    out.truncate(start);
                    normalize::normalize_from(text, 0)
                } else {
                    None
                }
            }
        };
        if let Some(n) = norm {
            out.truncate(start);
            detect::scan_from(n.text.as_bytes(), n.unmap(from), &cx, out);
            for h in out.iter_mut().skip(start) {
                h.start = n.map(h.start);
                h.end = n.map(h.end);
            }
        }
        crate::stages::mark("detectors: scan");
        if !decode || (first_only && !out.is_empty()) || !normalize::has_base64_run(text.as_bytes()) {
            return;
        }
        for (s, e) in normalize::base64_runs(text.as_bytes()) {
            if out.iter().any(|h| h.start < e && s < h.end) {
                continue;
            }
            let Some(inner) = text.get(s..e).and_then(|r| normalize::decode_text(r.as_bytes())) else {
                continue;
            };
            let mut sub = Vec::new();
            match serde_json::from_str::<serde_json::Value>(&inner) {
                // Encoded JSON: its strings with their member names as context.
                Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                    self.detect_json(&v, "", &mut sub)
                }
                _ => {
                    self.detect(&inner, 0, "", false, false, false, &mut sub);
                    for c in &self.customs {
                        c.find(&inner, &mut sub);
                    }
                    resolve(&mut sub);
                }
            }
            if let Some(h) = sub.first() {
                out.push(Hit { start: s, end: e, entity: h.entity });
                if first_only {
                    return;
                }
            }
        }
    }

    /// Hits in the strings of decoded JSON (positions are not kept: the
    /// caller covers the whole encoded run). Bounded by the run's size.
    fn detect_json(&self, v: &serde_json::Value, key: &str, out: &mut Vec<Hit>) {
        match v {
            serde_json::Value::String(s) => {
                let from = out.len();
                self.detect(s, 0, key, false, false, false, out);
                for c in &self.customs {
                    c.find(s, out);
                }
                out.truncate(from + usize::from(out.len() > from));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|x| self.detect_json(x, key, out)),
            serde_json::Value::Object(map) => map.iter().for_each(|(k, x)| self.detect_json(x, k, out)),
            _ => {}
        }
    }

    /// Whether `text` holds anything at all (stops at the first match).
    pub(crate) fn finds_any(&self, text: &str) -> bool {
        let mut hits = Vec::new();
        self.detect(text, 0, "", false, true, true, &mut hits);
        if !hits.is_empty() {
            return true;
        }
        self.customs.iter().any(|c| {
            c.find(text, &mut hits);
            !hits.is_empty()
        })
    }

    /// The entities found in `text` (one entry per match, in order).
    pub fn text_findings(&self, text: &str) -> Vec<(&str, Category)> {
        self.find(text, "", false)
            .iter()
            .filter_map(|h| self.entity(h.entity))
            .map(|e| (e.name.as_str(), e.category))
            .collect()
    }

    /// Every match in `text` as (entity, byte start, byte end). Spans are for
    /// evaluation tooling; do not log the text they point into.
    pub fn text_spans(&self, text: &str) -> Vec<(&str, usize, usize)> {
        self.find(text, "", false)
            .iter()
            .filter_map(|h| self.entity(h.entity).map(|e| (e.name.as_str(), h.start, h.end)))
            .collect()
    }

    /// For path templating: the entity of the first match in a URL path
    /// segment, if any (`/users/jane@example.com` → `email`).
    pub fn segment_entity(&self, segment: &str) -> Option<&str> {
        let h = self.find(segment, "", false);
        h.first().and_then(|h| self.entity(h.entity)).map(|e| e.name.as_str())
    }

    /// A client-chosen name (JSON member, form field) as it may appear in a
    /// finding's location: `{entity}` when the name itself is personal data.
    pub(crate) fn location_name<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        match self.segment_entity(name) {
            Some(entity) => format!("{{{entity}}}").into(),
            None => name.into(),
        }
    }

    /// Keyed pseudonym of a value: `pseu_` + 16 hex digits.
    pub fn pseudonym(&self, value: &str) -> String {
        pseudonym(&self.key, value)
    }

    /// Scans (and rewrites) one whole body.
    pub fn scan(&self, kind: BodyKind, body: &[u8], actions: &Actions) -> ScanOutcome {
        self.scan_parsed(kind, body, actions, &mut |_| {})
    }

    /// [`Self::scan`], showing a JSON body's value to `parsed` when the scan
    /// parsed it (before rewriting it): a strict parse, so the value is the
    /// one `serde_json::from_slice::<Value>` gives for the same bytes.
    /// Not called when the body was found clean without a parse, is not
    /// JSON, or has a duplicate member name.
    pub fn scan_parsed(
        &self,
        kind: BodyKind,
        body: &[u8],
        actions: &Actions,
        parsed: &mut dyn FnMut(&serde_json::Value),
    ) -> ScanOutcome {
        match kind {
            BodyKind::Other => ScanOutcome::default(),
            BodyKind::Json => json::scan_json(self, body, actions, parsed),
            BodyKind::Text => self.scan_text_body(body, actions, "$"),
            BodyKind::Form => self.scan_form(body, actions),
            BodyKind::EventStream => {
                let mut s = StreamRedactor::new(*actions);
                let mut out = s.push(self, body);
                out.extend(s.finish(self));
                let blocked = s.blocked();
                let changed = out != body;
                ScanOutcome {
                    findings: s.findings(),
                    blocked,
                    body: if changed && blocked.is_none() { Some(out) } else { None },
                    pseudonyms: s.pseudonyms().to_vec(),
                }
            }
        }
    }

    pub(crate) fn scan_text_body(&self, body: &[u8], actions: &Actions, loc: &str) -> ScanOutcome {
        let mut sink = Sink::new(self, actions);
        let out = self.text_into(&mut sink, body, loc);
        sink.finish(out)
    }

    /// Text scan into an existing sink; the new body when it changed.
    pub(crate) fn text_into(&self, sink: &mut Sink<'_>, body: &[u8], loc: &str) -> Option<Vec<u8>> {
        let mut out: Vec<u8> = Vec::with_capacity(body.len());
        let mut changed = false;
        for (piece, valid) in utf8_pieces(body) {
            match valid {
                Some(s) => {
                    let hits = self.find(s, "", false);
                    match sink.apply(s, &hits, loc, false).0 {
                        Some(new) => {
                            changed = true;
                            out.extend_from_slice(new.as_bytes());
                        }
                        None => out.extend_from_slice(piece),
                    }
                }
                None => out.extend_from_slice(piece),
            }
        }
        if changed {
            Some(out)
        } else {
            None
        }
    }
}

fn intern(entities: &mut Vec<EntityInfo>, name: &str, category: Category) -> u16 {
    if let Some(ix) = entities.iter().position(|e| e.name == name && e.category == category) {
        return ix as u16;
    }
    entities.push(EntityInfo { name: name.to_string(), category, label: name.to_ascii_uppercase() });
    (entities.len() - 1) as u16
}

/// How sure a kind of hit is when two overlap: a prefixed secret over
/// anything (`https://ghp_…@github.com` is a token, not an e-mail), then
/// checksummed and labelled ids, then the rest.
fn priority(ent: u16) -> u8 {
    entities::rank(ent)
}

/// Sorts hits and drops overlaps: the higher [`priority`] wins, then the
/// earliest start, then the longest.
pub(crate) fn resolve(hits: &mut Vec<Hit>) {
    if hits.len() < 2 {
        return;
    }
    hits.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let overlaps = hits.windows(2).any(|w| matches!(w, [a, b] if b.start < a.end));
    if !overlaps {
        hits.retain(|h| h.end > h.start);
        return;
    }
    let mut order: Vec<Hit> = hits.clone();
    order.sort_by(|a, b| {
        priority(b.entity).cmp(&priority(a.entity)).then(a.start.cmp(&b.start)).then(b.end.cmp(&a.end))
    });
    let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in order {
        if h.end <= h.start {
            continue;
        }
        let ix = kept.partition_point(|k| k.start < h.start);
        let left_ok = ix == 0 || kept.get(ix - 1).is_some_and(|k| k.end <= h.start);
        let right_ok = kept.get(ix).is_none_or(|k| k.start >= h.end);
        if left_ok && right_ok {
            kept.insert(ix, h);
        }
    }
    *hits = kept;
}

/// Splits bytes into valid UTF-8 runs (`Some(str)`) and invalid bytes (`None`).
fn utf8_pieces(mut b: &[u8]) -> Vec<(&[u8], Option<&str>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        match std::str::from_utf8(b) {
            Ok(s) => {
                out.push((b, Some(s)));
                break;
            }
            Err(e) => {
                let (good, rest) = b.split_at(e.valid_up_to());
                if !good.is_empty() {
                    out.push((good, std::str::from_utf8(good).ok()));
                }
                let bad = e.error_len().unwrap_or(rest.len()).min(rest.len());
                let (bad_b, rest) = rest.split_at(bad);
                out.push((bad_b, None));
                b = rest;
            }
        }
    }
    out
}

/// Findings, block state and pseudonyms gathered so far.
#[derive(Clone, Default)]
pub(crate) struct Tally {
    findings: Vec<Finding>,
    ids: Vec<(u16, Action)>,
    pub(crate) blocked: Option<Category>,
    pub(crate) pseudonyms: Vec<(String, String)>,
    /// The tokens in `pseudonyms`, for constant-time dedup.
    tokens: std::collections::HashSet<String>,
}

impl Tally {
    /// Matches recorded so far (every finding's count).
    pub(crate) fn hits(&self) -> u64 {
        self.findings.iter().map(|f| u64::from(f.count)).sum()
    }
}

/// Applies actions and aggregates findings.
pub(crate) struct Sink<'c> {
    cl: &'c Classifier,
    actions: Actions,
    pub(crate) t: Tally,
}

const MAX_LOCATIONS: usize = 64;

impl<'c> Sink<'c> {
    pub(crate) fn new(cl: &'c Classifier, actions: &Actions) -> Self {
        Sink { cl, actions: *actions, t: Tally::default() }
    }

    pub(crate) fn with_tally(cl: &'c Classifier, actions: &Actions, t: Tally) -> Self {
        Sink { cl, actions: *actions, t }
    }

    /// Records one match; returns the action that applies.
    pub(crate) fn record(&mut self, ent: u16, loc: &str) -> Action {
        let Some(info) = self.cl.entity(ent) else {
            return Action::Tag;
        };
        let action = self.actions.for_category(info.category);
        if action == Action::Block && self.t.blocked.is_none() {
            self.t.blocked = Some(info.category);
        }
        match self.t.ids.iter().position(|&(e, a)| e == ent && a == action) {
            Some(ix) => {
                if let Some(f) = self.t.findings.get_mut(ix) {
                    f.count = f.count.saturating_add(1);
                    if f.locations.len() < MAX_LOCATIONS && !f.locations.iter().any(|l| l == loc) {
                        f.locations.push(loc.to_string());
                    }
                }
            }
            None => {
                self.t.ids.push((ent, action));
                self.t.findings.push(Finding {
                    entity: info.name.clone(),
                    category: info.category,
                    count: 1,
                    action,
                    locations: vec![loc.to_string()],
                });
            }
        }
        action
    }

    /// Replacement text for a matched value, `None` when it stays.
    pub(crate) fn replacement(&mut self, ent: u16, value: &str, action: Action) -> Option<String> {
        let info = self.cl.entity(ent)?;
        match action {
            Action::Redact | Action::Remove => {
                // (Without `format!`: this runs for every value redacted.)
                let mut s = String::with_capacity(11 + info.label.len());
                s.push_str("[REDACTED:");
                s.push_str(&info.label);
                s.push(']');
                Some(s)
            }
            Action::Mask => {
                let n = value.chars().count();
                let keep = n.saturating_sub(4);
                Some(value.chars().enumerate().map(|(k, c)| if k < keep { '*' } else { c }).collect())
            }
            Action::Pseudonymize => {
                let tok = pseudonym(&self.cl.key, value);
                if self.t.tokens.insert(tok.clone()) {
                    self.t.pseudonyms.push((tok.clone(), value.to_string()));
                }
                Some(tok)
            }
            Action::Block | Action::Tag => None,
        }
    }

    /// Records and rewrites `text` for resolved `hits`. Returns the new text
    /// (if changed) and whether a `remove` action asks to drop the field
    /// (only when `can_remove`; otherwise remove acts as redact).
    pub(crate) fn apply(&mut self, text: &str, hits: &[Hit], loc: &str, can_remove: bool) -> (Option<String>, bool) {
        if hits.is_empty() {
            return (None, false);
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut last = 0;
        let mut changed = false;
        let mut remove = false;
        for h in hits {
            let action = self.record(h.entity, loc);
            if action == Action::Remove && can_remove {
                remove = true;
            }
            let Some(value) = text.get(h.start..h.end) else {
                continue;
            };
            if let Some(rep) = self.replacement(h.entity, value, action) {
                out.push_str(text.get(last..h.start).unwrap_or(""));
                out.push_str(&rep);
                last = h.end;
                changed = true;
            }
        }
        if !changed {
            return (None, remove);
        }
        out.push_str(text.get(last..).unwrap_or(""));
        (Some(out), remove)
    }

    pub(crate) fn finish(self, body: Option<Vec<u8>>) -> ScanOutcome {
        let blocked = self.t.blocked;
        ScanOutcome {
            findings: self.t.findings,
            blocked,
            body: if blocked.is_some() { None } else { body },
            pseudonyms: self.t.pseudonyms,
        }
    }
}
