//! Drivers shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`) and the
//! regression test (`core/tests/fuzz_regressions.rs`): each takes the raw
//! fuzz input and pushes it through an entry point that sees untrusted bytes,
//! the way the filter or the CLI does, asserting cheap invariants on the way.
//! A driver panics only when an invariant breaks (or the code under test
//! panics): that is what the fuzzer reports.
//!
//! Several drivers read a few *control bytes* at the front of the input (see
//! [`Control`]): which actions apply, which classifier, and where to cut the
//! payload into network chunks. Missing control bytes read as zero.
//!
//! Not an API: nothing outside fuzzing and its tests should call this.
// A driver states its invariants with panics: that is how a fuzzer sees a failure.
#![allow(clippy::panic)]

use crate::ai::{self, EventStreamParser, Message, ResponseTracker};
use crate::classify::{restore, Action, Actions, BodyKind, Classifier};
use crate::config::Config;
use crate::identity::{self, Evidence};
use crate::inspect::{Inspection, Plan};
use crate::runtime::Runtime;
use crate::sse::{SseFrame, SseParser};
use crate::{jwt, pbstruct};
use serde_json::Value;
use std::sync::OnceLock;

/// A fuzz driver: takes the raw fuzz input.
pub type Driver = fn(&[u8]);

/// Every driver by target name (the name of its `fuzz/fuzz_targets/*.rs`,
/// its seed folder `fuzz/seeds/<name>/` and its regression folder
/// `core/tests/data/fuzz/<name>/`).
pub const TARGETS: &[(&str, Driver)] = &[
    ("jwt", jwt_token),
    ("identity", identity_header),
    ("pbstruct", pbstruct_metadata),
    ("json_redact", json_redact),
    ("text_redact", text_redact),
    ("form_redact", form_redact),
    ("stream_redact", stream_redact),
    ("sse", sse),
    ("ai_response", ai_response),
    ("eventstream", eventstream),
    ("ai_request", ai_request),
    ("request_path", request_path),
    ("config", config),
    ("handoff", handoff),
    ("exchange", exchange),
];

/// The driver of a target, by name.
pub fn driver(name: &str) -> Option<Driver> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// HS256 key the seed tokens are signed with (so seeds reach the verified path).
pub const HS256_KEY: &[u8] = b"fuzz-hs256-key";

// ---------------------------------------------------------------------------
// Control bytes

/// Control bytes at the front of an input, and the payload after them.
pub struct Control<'a> {
    ctl: [u8; Control::LEN],
    pub payload: &'a [u8],
}

impl<'a> Control<'a> {
    /// Bytes taken from the front: 2 selector bytes, 4 chunk-length bytes.
    pub const LEN: usize = 6;

    pub fn split(data: &'a [u8]) -> Self {
        let mut ctl = [0u8; Control::LEN];
        let n = data.len().min(Control::LEN);
        for (slot, b) in ctl.iter_mut().zip(data.iter().take(n)) {
            *slot = *b;
        }
        Control { ctl, payload: data.get(n..).unwrap_or(&[]) }
    }

    fn byte(&self, i: usize) -> u8 {
        self.ctl.get(i).copied().unwrap_or(0)
    }

    /// The 16-bit selector (control bytes 0 and 1).
    pub fn selector(&self) -> u16 {
        u16::from_le_bytes([self.byte(0), self.byte(1)])
    }

    /// Per-category actions: every combination of the six actions over the
    /// five categories is reachable (6^5 = 7776 values of the selector).
    pub fn actions(&self) -> Actions {
        const ALL: &[Action] = Action::ALL;
        let mut n = usize::from(self.selector()) % 7776;
        let mut pick = || {
            let a = ALL.get(n % 6).copied().unwrap_or(Action::Redact);
            n /= 6;
            a
        };
        Actions { pii: pick(), phi: pick(), pci: pick(), secret: pick(), custom: pick() }
    }

    /// The rich classifier (field rules and anchored custom rules, which turn
    /// the JSON fast path off) or the plain one.
    pub fn classifier(&self) -> &'static Classifier {
        if (usize::from(self.selector()) / 7776) % 2 == 1 {
            rich_classifier()
        } else {
            plain_classifier()
        }
    }

    /// The payload cut into network chunks whose lengths cycle through
    /// control bytes 2..6 (each `b + 1`, so 1 to 256 bytes).
    pub fn chunks(&self) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = self.payload;
        let mut k = 0;
        while !rest.is_empty() {
            let len = (usize::from(self.byte(2 + k % 4)) + 1).min(rest.len());
            let (a, b) = rest.split_at(len);
            out.push(a);
            rest = b;
            k += 1;
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Classifiers: every built-in entity, custom rules, field rules.

/// Every entity, two custom rules with literal prefixes (fast path stays on).
pub const PLAIN_CONFIG: &str = r#"{"classification": {
  "entities": "all",
  "custom": [
    {"name": "mrn", "pattern": "\\bMRN-[0-9]{8}\\b", "category": "phi"},
    {"name": "ticket", "pattern": "TICKET-[0-9]{6}", "category": "custom"}
  ]
}}"#;

/// Every entity, alternations, an anchored rule and field rules.
pub const RICH_CONFIG: &str = r#"{"classification": {
  "entities": "all",
  "custom": [
    {"name": "mrn", "pattern": "\\bMRN-[0-9]{8}\\b", "category": "phi"},
    {"name": "account", "pattern": "(?i)acct(ount)?[ #:]*[0-9]{6,12}", "category": "pci"},
    {"name": "employee", "pattern": "^EMP[0-9]{5}$", "category": "custom"},
    {"name": "codeword", "pattern": "falcon|osprey", "category": "secret"}
  ],
  "fields": [
    {"path": "$.patient.name", "entity": "person_name", "category": "phi"},
    {"path": "$.patient.birthDate", "entity": "date_of_birth", "category": "phi"},
    {"path": "$.items[*].card", "entity": "credit_card", "category": "pci"},
    {"path": "$.meta.*", "entity": "internal", "category": "custom"},
    {"path": "$['odd key'][0]", "entity": "email", "category": "pii"}
  ]
}}"#;

fn classifier_of(config: &str) -> Classifier {
    let cfg = match Config::parse(config.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("fuzzing config does not parse: {e:?}"),
    };
    Classifier::new(&cfg.classification.rules(b"fuzz-pseudonym-key".to_vec()))
}

pub fn plain_classifier() -> &'static Classifier {
    static C: OnceLock<Classifier> = OnceLock::new();
    C.get_or_init(|| classifier_of(PLAIN_CONFIG))
}

pub fn rich_classifier() -> &'static Classifier {
    static C: OnceLock<Classifier> = OnceLock::new();
    C.get_or_init(|| classifier_of(RICH_CONFIG))
}

fn fuzz_config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        let src = r#"{"identity": {
            "jwt": {"hs256_secret_env": "K", "clock_skew_seconds": 60},
            "claims": {"id": ["sub", "user.id"], "roles": ["roles", "scope"], "tenant": "tid",
                       "client_id": "azp", "on_behalf_of": "act.sub"},
            "on_behalf_of_header": "x-on-behalf-of"
        }}"#;
        match Config::parse(src.as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("fuzzing identity config does not parse: {e:?}"),
        }
    })
}

// ---------------------------------------------------------------------------
// Identity

/// `jwt::bearer`, `jwt::decode`, `verify_hs256`, `check_time`, `fingerprint`.
pub fn jwt_token(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let token = jwt::bearer(&s).unwrap_or(&s);
    let _ = jwt::fingerprint(token);
    if let Ok(d) = jwt::decode(token) {
        let _ = d.verify_hs256(HS256_KEY);
        let _ = d.verify_hs256(b"");
        for (now, skew) in [(0, 0), (1_700_000_000, 60), (u64::MAX, u64::MAX)] {
            let _ = jwt::check_time(&d.claims, now, skew);
        }
    }
}

/// `identity::resolve` from a raw header value (control byte 0 picks the
/// evidence: key or none, mTLS SAN, on-behalf-of header), then `check`.
pub fn identity_header(data: &[u8]) {
    let ctl = Control::split(data);
    let header = String::from_utf8_lossy(ctl.payload);
    let sel = ctl.byte(0);
    let cfg = fuzz_config();
    let mut lenient = cfg.identity.clone();
    lenient.jwt.allow_unverified = true;
    let ev = Evidence {
        jwt_authn_claims: None,
        token_header: Some(header.as_ref()),
        hs256_key: (sel & 1 == 1).then_some(HS256_KEY),
        peer_uri_san: (sel & 2 == 2).then_some("spiffe://cluster.local/ns/a/sa/b"),
        on_behalf_of_header: (sel & 4 == 4).then_some(header.as_ref()),
        now_s: if sel & 8 == 8 { u64::MAX } else { 1_700_000_000 },
    };
    for idc in [&cfg.identity, &lenient] {
        let r = identity::resolve(idc, &ev);
        let _ = r.actor.to_json();
        for req in [crate::config::Require::Authenticated, crate::config::Require::Individual] {
            let _ = identity::check(req, &r);
        }
    }
}

/// `pbstruct::filter_metadata` / `decode_struct` on Envoy metadata bytes, and
/// the claims they yield through `identity::resolve` (as the filter does).
pub fn pbstruct_metadata(data: &[u8]) {
    let cfg = fuzz_config();
    let direct = pbstruct::decode_struct(data);
    let ns = pbstruct::filter_metadata(data, "envoy.filters.http.jwt_authn");
    for m in [direct, ns].into_iter().flatten() {
        let claims = match m.get(&cfg.identity.jwt.jwt_authn_payload_key) {
            Some(Value::Object(c)) => c.clone(),
            _ => m,
        };
        // What comes out must serialize (no NaN, valid strings).
        let text = Value::Object(claims.clone()).to_string();
        assert!(serde_json::from_str::<Value>(&text).is_ok(), "decoded metadata does not round-trip as JSON");
        let ev = Evidence { jwt_authn_claims: Some(claims), now_s: 1_700_000_000, ..Evidence::default() };
        let _ = identity::resolve(&cfg.identity, &ev).actor.to_json();
    }
}

// ---------------------------------------------------------------------------
// Bodies

fn scan_buffered(ctl: &Control<'_>, kind: BodyKind) -> (Option<Vec<u8>>, Inspection) {
    let actions = ctl.actions();
    let mut insp = Inspection::new(Plan::Buffer(kind), actions);
    let out = insp.scan_buffered(ctl.classifier(), ctl.payload, &actions);
    let rec = insp.record().to_json();
    assert!(rec.get("scanned") == Some(&Value::Bool(true)), "buffered body not recorded as scanned");
    if insp.blocked.is_some() {
        assert!(out.is_none(), "a blocked body was rewritten");
    }
    if let Some(new) = &out {
        check_restore(new, &insp.pseudonyms);
    }
    (out, insp)
}

/// `restore(body, pseudonyms)`, checked against a plain model of what it
/// promises: nothing when no token of `pseudonyms` stands whole in `body`
/// (not followed by another hex digit), otherwise `body` with each whole
/// token, left to right, replaced by its original, raw or JSON-escaped
/// (one choice for the whole body), and no other byte changed.
pub fn check_restore(body: &[u8], pseudonyms: &[(String, String)]) {
    let got = restore(body, pseudonyms);
    // The last pair wins for a token given twice, as in a map built from the list.
    let originals: std::collections::HashMap<&str, &str> =
        pseudonyms.iter().map(|(t, o)| (t.as_str(), o.as_str())).collect();
    let mut whole: Vec<(usize, usize, &str)> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let found = originals.iter().find(|(t, _)| {
            body.get(i..).is_some_and(|rest| rest.starts_with(t.as_bytes()))
                && !body.get(i + t.len()).is_some_and(u8::is_ascii_hexdigit)
        });
        match found {
            Some((t, o)) => {
                whole.push((i, i + t.len(), o));
                i += t.len();
            }
            None => i += 1,
        }
    }
    let Some(got) = got else {
        assert!(whole.is_empty(), "restore left {} whole token(s) of the request in place", whole.len());
        return;
    };
    assert!(!whole.is_empty(), "restore changed a body that holds no token of the request");
    let splice = |escape: bool| {
        let mut out = Vec::with_capacity(body.len());
        let mut last = 0;
        for (a, b, o) in &whole {
            out.extend_from_slice(body.get(last..*a).unwrap_or(&[]));
            if escape {
                let quoted = serde_json::to_string(o).unwrap_or_default();
                out.extend_from_slice(quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or("").as_bytes());
            } else {
                out.extend_from_slice(o.as_bytes());
            }
            last = *b;
        }
        out.extend_from_slice(body.get(last..).unwrap_or(&[]));
        out
    };
    assert!(
        got == splice(false) || got == splice(true),
        "restore did not put back exactly the originals of the whole tokens"
    );
}

/// A buffered JSON body (`Classifier::scan` with `BodyKind::Json`), as
/// `inspect` drives it. Valid JSON in, valid JSON out.
pub fn json_redact(data: &[u8]) {
    let ctl = Control::split(data);
    let (out, _) = scan_buffered(&ctl, BodyKind::Json);
    if let Some(new) = out {
        if serde_json::from_slice::<Value>(ctl.payload).is_ok() {
            assert!(serde_json::from_slice::<Value>(&new).is_ok(), "valid JSON was rewritten into invalid JSON");
        }
        if crate::classify::strict_json::parse(ctl.payload).is_some() {
            // Renamed members (names that are personal data) stay distinct.
            assert!(crate::classify::strict_json::parse(&new).is_some(), "the rewrite made duplicate member names");
        }
    }
}

/// A buffered text body.
pub fn text_redact(data: &[u8]) {
    let ctl = Control::split(data);
    let _ = scan_buffered(&ctl, BodyKind::Text);
}

/// A buffered `application/x-www-form-urlencoded` body.
pub fn form_redact(data: &[u8]) {
    let ctl = Control::split(data);
    if let (Some(new), _) = scan_buffered(&ctl, BodyKind::Form) {
        // Values are re-encoded (no `&` in them) and fields only ever dropped.
        let pairs = |b: &[u8]| b.split(|&c| c == b'&').count();
        assert!(pairs(&new) <= pairs(ctl.payload), "form rewriting added fields");
    }
}

/// The pseudonym token `stream_redact` restores (selector bit 15), and its original.
pub const RESTORE_TOKEN: &str = "pseu_0123456789abcdef";
pub const RESTORE_ORIGINAL: &str = "Jane \"JD\" Doe";

/// An SSE response redacted chunk by chunk (`Inspection::stream_chunk`, i.e.
/// `StreamRedactor`), cut where the control bytes say. With no finding the
/// stream must come out byte for byte.
pub fn stream_redact(data: &[u8]) {
    let ctl = Control::split(data);
    let actions = ctl.actions();
    let cl = ctl.classifier();
    let mut insp = Inspection::new(Plan::Stream, actions);
    // `restore` (selector bit 15) with a token the seeds carry (split across
    // events in some).
    let restoring = ctl.selector() & 0x8000 != 0;
    if restoring {
        insp.set_restore(&[(RESTORE_TOKEN.to_string(), RESTORE_ORIGINAL.to_string())]);
    }
    let mut out = Vec::new();
    for chunk in ctl.chunks() {
        out.extend(insp.stream_chunk(cl, chunk, false));
        let _ = insp.held();
    }
    out.extend(insp.stream_chunk(cl, &[], true));
    if insp.blocked.is_none() {
        assert_eq!(insp.held(), 0, "bytes still held after the end of the stream");
    }
    let rec = insp.record();
    if rec.findings.is_empty() && insp.blocked.is_none() && !restoring {
        assert!(out == ctl.payload, "a stream without findings was not passed through unchanged");
    }
    // A well-formed AWS eventstream stays one, message for message.
    if insp.blocked.is_none() && ctl.payload.first() == Some(&0) {
        let messages = |b: &[u8]| {
            let mut p = EventStreamParser::new(ai::MAX_JSON_BYTES);
            let mut m = Vec::new();
            p.push(b, &mut m);
            (p.error.is_none() && p.pending() == 0).then_some(m.len())
        };
        if let Some(n) = messages(ctl.payload) {
            assert_eq!(messages(&out), Some(n), "a well-formed eventstream came out malformed");
        }
    }
    if insp.blocked.is_none() {
        check_restore(&out, &insp.pseudonyms);
    }
}

fn sse_frames(chunks: &[&[u8]], max: usize) -> Vec<SseFrame> {
    let mut p = SseParser::new(max);
    let mut out = Vec::new();
    for c in chunks {
        p.push(c, &mut out);
    }
    p.finish(&mut out);
    assert_eq!(p.pending(), 0, "SSE parser holds bytes after finish");
    out
}

/// `SseParser` with chunked pushes: the frames' raw bytes put back together
/// are the input, and (no frame oversize) the frames do not depend on where
/// the input was cut.
pub fn sse(data: &[u8]) {
    let ctl = Control::split(data);
    let max = if ctl.byte(0) & 1 == 1 { 64 } else { 1 << 20 };
    let chunks = ctl.chunks();
    let split = sse_frames(&chunks, max);
    let whole = sse_frames(&[ctl.payload], max);
    for frames in [&split, &whole] {
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.raw.iter().copied()).collect();
        assert!(joined == ctl.payload, "SSE frames do not add up to the input");
    }
    if !split.iter().chain(whole.iter()).any(|f| f.oversize) {
        assert!(split == whole, "SSE frames depend on the chunking");
    }
    for f in &whole {
        if !f.oversize && f.has_data {
            let again = sse_frames(&[&crate::sse::encode_frame(f.event.as_deref(), &f.data)], 1 << 20);
            assert!(again.first().map(|g| &g.data) == Some(&f.data), "encode_frame does not round-trip");
        }
    }
    // Taking injected usage back out does not depend on the chunking either.
    let unusage = |chunks: &[&[u8]]| {
        let mut u = ai::UsageChunks::default();
        let mut out: Vec<u8> = chunks.iter().flat_map(|c| u.push(c)).collect();
        out.extend(u.finish());
        assert_eq!(u.pending(), 0, "usage filter holds bytes after finish");
        out
    };
    assert!(unusage(&chunks) == unusage(&[ctl.payload]), "the usage filter depends on the chunking");
}

/// `ResponseTracker` over a response body (control byte 0 picks the
/// content type: JSON, SSE, Bedrock event stream, NDJSON), chunked, then the
/// event's `ai` object.
pub fn ai_response(data: &[u8]) {
    let ctl = Control::split(data);
    let (ctype, path) = match ctl.byte(0) % 4 {
        0 => ("application/json", "/v1/chat/completions"),
        1 => ("text/event-stream; charset=utf-8", "/v1/messages"),
        2 => ("application/vnd.amazon.eventstream", "/model/anthropic.claude-v2/invoke-with-response-stream"),
        _ => ("application/x-ndjson", "/api/chat"),
    };
    let Some(d) = ai::detect("POST", path, "api.openai.com", None) else {
        panic!("fuzzing path {path} is not detected as an AI call");
    };
    let track = |chunks: &[&[u8]]| {
        let mut t = ResponseTracker::new(&d, ctype, true);
        if ctl.byte(1) & 1 == 1 {
            let v = String::from_utf8_lossy(ctl.payload.get(..20).unwrap_or(ctl.payload)).into_owned();
            t.header("x-amzn-bedrock-input-token-count", &v);
            t.header("x-amzn-bedrock-output-token-count", &v);
        }
        for chunk in chunks {
            t.push(chunk, 7);
        }
        t.finish(u64::MAX, ctl.byte(1) & 2 == 2);
        t
    };
    let t = track(&ctl.chunks());
    let whole = track(&[ctl.payload]);
    assert!(t.summary() == whole.summary(), "what the model answered depends on the chunking");
    let req = ai::parse_request(&d, b"{}");
    let _ = ai::event_json(&d, &req, Some(&t), 0).to_string();
}

fn es_messages(chunks: &[&[u8]], max: usize) -> (Vec<Message>, Option<&'static str>) {
    let mut p = EventStreamParser::new(max);
    let mut out = Vec::new();
    for c in chunks {
        p.push(c, &mut out);
    }
    (out, p.error)
}

/// Bedrock's event-stream framing, chunked: the messages and the error do not
/// depend on where the input was cut.
pub fn eventstream(data: &[u8]) {
    let ctl = Control::split(data);
    let max = if ctl.byte(0) & 1 == 1 { 64 } else { 1 << 20 };
    let split = es_messages(&ctl.chunks(), max);
    let whole = es_messages(&[ctl.payload], max);
    assert!(split == whole, "event-stream messages depend on the chunking");
}

/// A model request body: `parse_request` and `inject_stream_usage` for each
/// provider shape, and `injection_score` on the text.
pub fn ai_request(data: &[u8]) {
    for (path, host) in [
        ("/v1/chat/completions", "api.openai.com"),
        ("/v1/messages", "api.anthropic.com"),
        ("/v1beta/models/gemini-2.0-flash:streamGenerateContent", "generativelanguage.googleapis.com"),
        ("/model/amazon.nova-pro/converse", "bedrock-runtime.us-east-1.amazonaws.com"),
        ("/api/generate", "localhost"),
        ("/openai/deployments/d/chat/completions?api-version=2024-10-21", "r.openai.azure.com"),
        ("/v1/chat/completions", "api.mistral.ai"),
    ] {
        let Some(d) = ai::detect("POST", path, host, None) else { continue };
        let _ = ai::parse_request(&d, data);
        if let Some(new) = ai::inject_stream_usage(&d, data) {
            assert!(serde_json::from_slice::<Value>(&new).is_ok(), "inject_stream_usage wrote invalid JSON");
        }
    }
    let _ = ai::injection_score(&String::from_utf8_lossy(data));
}

fn request_runtime() -> &'static Runtime {
    static R: OnceLock<Runtime> = OnceLock::new();
    R.get_or_init(|| {
        let src = r#"{"audit": {"pseudonym_key_env": "K", "resources": [
            {"path": "/users/{id}", "type": "user"},
            {"path": "/fhir/Patient/{id}", "type": "patient"},
            {"path": "/orgs/{org}/members/{id}", "type": "member"}
        ]}, "routes": [{"match": {"path_prefix": "/health", "host": "api.example.com"}, "ai": {"enabled": false}}]}"#;
        let cfg = match Config::parse(src.as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("fuzzing runtime config does not parse: {e:?}"),
        };
        match Runtime::new(cfg, &|_| Some("fuzz-key".to_string()), [7; 32], "fuzz".into(), 0, "fuzz") {
            Ok(r) => r,
            Err(e) => panic!("fuzzing runtime does not start: {e:?}"),
        }
    })
}

/// The request line: a raw `:path` (and `:authority`, method) through
/// `path_facts` (resource templates, personal data in segments), route
/// matching, AI detection and the event verb.
pub fn request_path(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let raw_path = parts.next().unwrap_or("/");
    let authority = parts.next().unwrap_or("");
    let method = parts.next().unwrap_or("POST");
    let rt = request_runtime();
    let facts = rt.path_facts(raw_path);
    assert!(facts.resource_value.is_none(), "path_facts leaked the raw resource value");
    let route_path = raw_path.split('?').next().unwrap_or(raw_path);
    let _ = rt.cfg.effective(method, route_path, authority);
    // The config parser only lets listed names through: pick one by the input.
    let pick = |names: &[&'static str], s: &str| names.get(s.len() % names.len().max(1)).copied();
    let ov = ai::Override {
        provider: pick(ai::PROVIDERS, authority).unwrap_or("openai"),
        operation: pick(ai::OPERATIONS, method),
    };
    let found = ai::detect(method, raw_path, authority, None);
    let _ = ai::detect(method, raw_path, authority, Some(&ov));
    let _ = crate::event::verb(method, raw_path, Some(authority), found.is_some());
}

// ---------------------------------------------------------------------------
// Configuration and the CLI's verifier

/// `Config::parse`, and for a valid config what `on_configure` builds from
/// it (the classifier, templates, the emitter), then one request through it.
pub fn config(data: &[u8]) {
    let Ok(cfg) = Config::parse(data) else { return };
    let actions = cfg.classification.actions;
    let _ = cfg.effective("POST", "/v1/chat/completions", "api.openai.com:443");
    let Ok(rt) = Runtime::new(cfg, &|_| Some("fuzz-key".to_string()), [1; 32], "fuzz".into(), 0, "fuzz") else {
        return;
    };
    let _ = rt.path_facts("/users/jane.doe@example.com/orders/536-22-8841?x=1");
    let body = br#"{"messages":[{"role":"user","content":"mail jane.doe@example.com, SSN 536-22-8841"}]}"#;
    let _ = rt.classifier.scan(BodyKind::Json, body, &actions);
}

/// The shipping service on a shared-queue message: decode, carry the events
/// through a small buffer (so drops and their `loss` events happen), ship.
pub fn handoff(data: &[u8]) {
    use crate::emitter::Emitter;
    let Ok(h) = crate::handoff::decode(data) else { return };
    let again = crate::handoff::encode(&h.emitter, h.events.iter().copied());
    assert_eq!(crate::handoff::decode(&again).as_ref(), Ok(&h), "re-encoding changes the hand-off");
    let Ok(cfg) = Config::parse(
        br#"{"audit": {"exporter": {"max_batch_events": 2, "max_buffered_events": 3, "format": "otlp"}}}"#,
    ) else {
        return;
    };
    let mut shipper = Emitter::start("fuzz/shipper".into(), [3; 32], &cfg.audit.exporter, 1_000, 0, "start");
    let _ = shipper.forward(data);
    let _ = shipper.forward(data);
    for now in [10, 5_000, 10_000] {
        while let Some(batch) = shipper.tick(now) {
            let _ = batch.body.len();
            shipper.batch_done(true, now);
        }
    }
}

/// One request's whole lifecycle through the exchange, as the filter drives
/// it, from untrusted bytes: request line, headers, both bodies and the chunk
/// cuts come from the input; the control selector picks write-ahead, held
/// headers and the actions. Invariants: a local reply pauses the stream,
/// replaced body bytes never exceed the limit the config sets plus the
/// error body, and the log callback seals exactly one event that parses.
pub fn exchange(data: &[u8]) {
    use crate::exchange::{Effect, Event, Exchange, Flow, RecordedFacts};
    let c = Control::split(data);
    let sel = c.selector();
    let a = c.actions();
    let act = |x: crate::classify::Action| format!("{x:?}").to_ascii_lowercase();
    let cfg = format!(
        r#"{{"classification": {{"max_body_bytes": 4096, "on_oversize": "{}", "restore": {},
            "actions": {{"pii": "{}", "phi": "{}", "pci": "{}", "secret": "{}", "custom": "{}"}}}},
            "audit": {{"delivery": "{}", "pseudonym_key_env": "K"}},
            "envoy": {{"allow_on_headers_stop_iteration": {}}}}}"#,
        if sel & 1 == 0 { "pass" } else { "reject" },
        sel & 2 != 0,
        act(a.pii),
        act(a.phi),
        act(a.pci),
        act(a.secret),
        act(a.custom),
        if sel & 4 == 0 { "async" } else { "write_ahead" },
        sel & 8 != 0,
    );
    let Ok(cfg) = Config::parse(cfg.as_bytes()) else { return };
    let env = |_: &str| Some("fuzz-key".to_string());
    let Ok(mut rt) = crate::runtime::Runtime::new(cfg, &env, [1; 32], "fuzz/exchange".into(), 1_000, "start") else {
        return;
    };
    // Payload: request line \n headers (k: v lines) \n\n request body \0 response body.
    let p = c.payload;
    let (head, rest) = match p.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (p.get(..i).unwrap_or_default(), p.get(i + 2..).unwrap_or_default()),
        None => (p, &[][..]),
    };
    let (req_body, resp_body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i + 1..).unwrap_or_default()),
        None => (rest, &[][..]),
    };
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let line = lines.next().unwrap_or("GET /");
    let (method, path) = line.split_once(' ').unwrap_or(("GET", "/"));
    let mut request_headers = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".into(), "h".into()),
    ];
    let mut response_headers = vec![(":status".to_string(), "200".to_string())];
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if let Some(rk) = k.strip_prefix("resp-") {
                response_headers.push((rk.to_string(), v.trim().to_string()));
            } else {
                request_headers.push((k, v.trim().to_string()));
            }
        }
    }
    let facts = RecordedFacts {
        request_headers,
        response_headers,
        request_body: req_body.to_vec(),
        response_body: resp_body.to_vec(),
        now_ms: 2_000,
        ..RecordedFacts::default()
    };
    let cut = |len: usize| (usize::from(c.byte(2)) + 1).min(len.max(1));
    let mut ex = Exchange::new();
    let mut outs = vec![ex.handle(&mut rt, &facts, Event::RequestHeaders { end_of_stream: req_body.is_empty() })];
    if sel & 4 != 0 {
        outs.push(ex.handle(
            &mut rt,
            &facts,
            Event::BeginDelivered { status: Some(if sel & 16 == 0 { 200 } else { 503 }) },
        ));
    }
    let mut at = 0;
    while !req_body.is_empty() && at < req_body.len() {
        at = (at + cut(req_body.len())).min(req_body.len());
        outs.push(ex.handle(&mut rt, &facts, Event::RequestBody { size: at, end_of_stream: at == req_body.len() }));
    }
    outs.push(ex.handle(&mut rt, &facts, Event::ResponseHeaders { end_of_stream: resp_body.is_empty() }));
    if !resp_body.is_empty() {
        // One callback: the fixture's body stands for the host's whole buffer.
        outs.push(ex.handle(&mut rt, &facts, Event::ResponseBody { size: resp_body.len(), end_of_stream: true }));
    }
    for o in &outs {
        if o.effects.iter().any(|e| matches!(e, Effect::LocalReply { .. })) {
            assert_eq!(o.flow, Flow::Pause, "a local reply pauses the stream");
        }
    }
    let log = ex.handle(&mut rt, &facts, Event::Log);
    let sealed: Vec<&String> = log
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Sealed { line, .. } => Some(line),
            _ => None,
        })
        .collect();
    assert_eq!(sealed.len(), 1, "one event per request");
    let v: Value = serde_json::from_str(sealed.first().map_or("", |s| s.as_str())).unwrap_or(Value::Null);
    assert!(v.get("chain").is_some(), "the sealed event parses: {v}");
}
