//! One body's inspection, host-independent: what to do with it (buffer,
//! stream, skip), its digest as it arrived, and what the event says of it.
//!
//! The host glue feeds bytes in and writes back what comes out; every
//! decision (and every byte of rewritten output) is made here.

use crate::classify::{body_kind, Actions, BodyKind, Category, Classifier, Finding, ScanOutcome, StreamRedactor};
use crate::event::BodyRecord;
use crate::ids::StreamDigest;

/// How a body is handled, decided from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Not inspected; the reason goes to `skipped` (`disabled`, `compressed`,
    /// `not_scanned_type`, `too_large`).
    Skip(&'static str),
    /// Held until complete (at most `max_body_bytes`), scanned, rewritten.
    Buffer(BodyKind),
    /// `text/event-stream`: inspected event by event, never held whole.
    Stream,
}

/// Decides from the headers. `content_length` over `max_bytes` is
/// `Skip("too_large")`: the caller passes it or answers 413 (`on_oversize`).
pub fn plan(
    enabled: bool,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    content_length: Option<u64>,
    max_bytes: u64,
) -> Plan {
    if !enabled {
        return Plan::Skip("disabled");
    }
    let encoding = content_encoding.map(str::trim).unwrap_or("");
    if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
        return Plan::Skip("compressed");
    }
    match body_kind(content_type.unwrap_or("")) {
        BodyKind::EventStream => Plan::Stream,
        BodyKind::Other => Plan::Skip("not_scanned_type"),
        kind if content_length.is_some_and(|l| l > max_bytes) => {
            let _ = kind;
            Plan::Skip("too_large")
        }
        kind => Plan::Buffer(kind),
    }
}

/// The state of one body (request or response).
#[derive(Debug)]
pub struct Inspection {
    pub plan: Plan,
    digest: StreamDigest,
    findings: Vec<Finding>,
    pub blocked: Option<Category>,
    stream: Option<StreamRedactor>,
    pub pseudonyms: Vec<(String, String)>,
    saw_body: bool,
    /// The classifier has seen the body (a buffered body only once complete).
    scanned: bool,
}

impl Inspection {
    pub fn new(plan: Plan, actions: Actions) -> Self {
        let stream = (plan == Plan::Stream).then(|| StreamRedactor::new(actions));
        Inspection {
            plan,
            digest: StreamDigest::default(),
            findings: Vec::new(),
            blocked: None,
            stream,
            pseudonyms: Vec::new(),
            saw_body: false,
            scanned: false,
        }
    }

    /// Bytes passing through uninspected (skipped bodies): digest only.
    pub fn observe(&mut self, chunk: &[u8]) {
        self.saw_body |= !chunk.is_empty();
        self.digest.update(chunk);
        crate::stages::mark("raw body SHA-256");
    }

    /// The body grew past the limit while buffering: it passes uninspected.
    pub fn give_up(&mut self, reason: &'static str, body_so_far: &[u8]) {
        self.plan = Plan::Skip(reason);
        self.observe(body_so_far);
    }

    /// A complete buffered body: scanned once; `Some(new body)` when rewritten.
    pub fn scan_buffered(&mut self, classifier: &Classifier, body: &[u8], actions: &Actions) -> Option<Vec<u8>> {
        self.scan_buffered_parsed(classifier, body, actions, &mut |_| {})
    }

    /// [`Self::scan_buffered`], showing the body's parsed JSON value to
    /// `parsed` when the classifier parsed it (see [`Classifier::scan_parsed`]).
    pub fn scan_buffered_parsed(
        &mut self,
        classifier: &Classifier,
        body: &[u8],
        actions: &Actions,
        parsed: &mut dyn FnMut(&serde_json::Value),
    ) -> Option<Vec<u8>> {
        self.observe(body);
        let Plan::Buffer(kind) = self.plan else { return None };
        self.scanned = true;
        let ScanOutcome { findings, blocked, body: rewritten, pseudonyms } =
            classifier.scan_parsed(kind, body, actions, parsed);
        self.findings = findings;
        self.blocked = blocked;
        self.pseudonyms = pseudonyms;
        if blocked.is_some() {
            return None;
        }
        rewritten
    }

    /// A chunk of an event stream: returns the bytes safe to release now.
    pub fn stream_chunk(&mut self, classifier: &Classifier, chunk: &[u8], end_of_stream: bool) -> Vec<u8> {
        self.stream_chunk_observed(classifier, chunk, end_of_stream, &mut |_, _, _| {})
    }

    /// [`Self::stream_chunk`], showing every complete SSE frame, parsed, to
    /// `observe` (see [`StreamRedactor::push_observed`]). False from
    /// [`Self::streams`] means there is no redactor to observe.
    pub fn stream_chunk_observed(
        &mut self,
        classifier: &Classifier,
        chunk: &[u8],
        end_of_stream: bool,
        observe: &mut crate::classify::Observer<'_>,
    ) -> Vec<u8> {
        self.observe(chunk);
        let Some(r) = self.stream.as_mut() else { return chunk.to_vec() };
        self.scanned = true;
        let mut out = r.push_observed(classifier, chunk, observe);
        if end_of_stream {
            out.extend(r.finish_observed(classifier, observe));
        }
        self.blocked = self.blocked.or(r.blocked());
        out
    }

    /// Pseudonyms to put back in a streamed body (`classification.restore`),
    /// across events too; no effect on buffered bodies (see `restore`).
    pub fn set_restore(&mut self, pseudonyms: &[(String, String)]) {
        if let Some(r) = self.stream.as_mut() {
            r.set_restore(pseudonyms);
        }
    }

    /// The filter added `stream_options.include_usage`: the stream redactor
    /// takes back what that changed (see `StreamRedactor::take_back_injected_usage`).
    pub fn take_back_injected_usage(&mut self) {
        if let Some(r) = self.stream.as_mut() {
            r.take_back_injected_usage();
        }
    }

    /// A streamed body's wire format from its `content-type`: AWS
    /// eventstream (Bedrock) or SSE.
    pub fn set_stream_content_type(&mut self, content_type: &str) {
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if let Some(r) = self.stream.as_mut() {
            r.set_aws(mime == "application/vnd.amazon.eventstream");
        }
    }

    /// Whether the streamed body is AWS eventstream.
    pub fn streams_aws(&self) -> bool {
        self.stream.as_ref().is_some_and(StreamRedactor::is_aws)
    }

    /// Whether a stream redactor reads this body (frame by frame).
    pub fn streams(&self) -> bool {
        self.stream.is_some() && matches!(self.plan, Plan::Stream)
    }

    /// Bytes the stream redactor still holds (released by `finish`).
    pub fn held(&self) -> usize {
        self.stream.as_ref().map_or(0, StreamRedactor::held_bytes)
    }

    /// What the event records.
    pub fn record(&self) -> BodyRecord {
        let (scanned, skipped) = match self.plan {
            Plan::Skip(reason) => (false, Some(reason.to_string())),
            // A body that never completed (the client went away) was never scanned.
            _ if !self.scanned => (false, Some("incomplete".to_string())),
            _ => (true, None),
        };
        let findings = match &self.stream {
            Some(r) => r.findings(),
            None => self.findings.clone(),
        };
        BodyRecord {
            scanned,
            skipped,
            bytes: Some(self.digest.bytes()),
            sha256: self.saw_body.then(|| self.digest.hex()),
            findings: findings.iter().map(Finding::to_json).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Rules;

    #[test]
    fn plans() {
        assert_eq!(plan(false, Some("application/json"), None, None, 10), Plan::Skip("disabled"));
        assert_eq!(plan(true, Some("application/json"), Some("gzip"), None, 10), Plan::Skip("compressed"));
        assert_eq!(plan(true, Some("application/json"), Some("identity"), Some(5), 10), Plan::Buffer(BodyKind::Json));
        assert_eq!(plan(true, Some("application/json"), None, Some(11), 10), Plan::Skip("too_large"));
        assert_eq!(plan(true, Some("text/event-stream; charset=utf-8"), None, None, 10), Plan::Stream);
        assert_eq!(plan(true, Some("image/png"), None, None, 10), Plan::Skip("not_scanned_type"));
        assert_eq!(plan(true, None, None, None, 10), Plan::Skip("not_scanned_type"));
    }

    #[test]
    fn buffered_json_is_redacted_and_recorded_without_values() {
        let cl = Classifier::new(&Rules::default());
        let mut i = Inspection::new(Plan::Buffer(BodyKind::Json), Actions::default());
        let body = br#"{"messages":[{"role":"user","content":"mail jane.doe@example.com"}]}"#;
        let out = i.scan_buffered(&cl, body, &Actions::default()).unwrap_or_default();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("[REDACTED:EMAIL]") && !text.contains("jane.doe"), "{text}");
        let rec = i.record().to_json();
        assert_eq!(rec["scanned"], true);
        assert_eq!(rec["findings"][0]["entity"], "email");
        assert_eq!(rec["findings"][0]["locations"][0], "$.messages[0].content");
        assert_eq!(rec["bytes"], body.len());
        assert!(!rec.to_string().contains("jane.doe"));
    }
}
