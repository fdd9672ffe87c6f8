//! One body through the exchange, offline: what `proxy-audit scan` prints.
//! The same events the filter gets, in the same order, so what scan says is
//! what the filter does (route overrides, buffer or stream, block reasons).

use super::{Effect, Event, Exchange, RecordedFacts, Side};
use crate::event::BodyRecord;
use crate::runtime::Runtime;

/// A body and the request it belongs to.
#[derive(Debug, Clone)]
pub struct PreviewInput {
    pub side: Side,
    pub method: String,
    pub path: String,
    pub authority: String,
    /// Extra headers of `side` (content-type is one).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Run as this verified individual (a `jwt_authn` payload with this
    /// `sub`), so identity rules pass; `None`: an anonymous caller.
    pub caller: Option<String>,
}

/// What the filter would do with it.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The bytes forwarded (request) or returned (response).
    pub forwarded: Vec<u8>,
    /// `Some((status, reason))` when the filter answers itself or blocks:
    /// the status the client gets (a response blocked after its status line
    /// left keeps the upstream's, with the JSON error as its body).
    pub refused: Option<(u16, String)>,
    pub record: BodyRecord,
}

/// What a body's effects did to the bytes, and a local reply if any.
fn take(
    effects: &[Effect],
    side: Side,
    forwarded: &mut Vec<u8>,
    first: &mut bool,
    refused: &mut Option<(u16, String)>,
    status: &mut u16,
) {
    for e in effects {
        match e {
            Effect::SetHeader(Side::Response, ":status", s) => *status = s.parse().unwrap_or(*status),
            Effect::ReplaceBody { side: s, bytes, .. } if *s == side => {
                if *first {
                    forwarded.clear();
                    *first = false;
                }
                forwarded.extend_from_slice(bytes);
            }
            Effect::LocalReply { status, reason, .. } => *refused = Some((*status, (*reason).to_string())),
            _ => {}
        }
    }
}

/// Runs the input through a fresh exchange (`now_ms`: the request's time).
pub fn preview(rt: &mut Runtime, input: &PreviewInput, now_ms: u64) -> Preview {
    let mut headers = vec![
        (":method".to_string(), input.method.clone()),
        (":path".to_string(), input.path.clone()),
        (":authority".to_string(), input.authority.clone()),
    ];
    let mut body_headers: Vec<(String, String)> =
        input.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    if !body_headers.iter().any(|(k, _)| k == "content-length") {
        body_headers.push(("content-length".into(), input.body.len().to_string()));
    }
    let mut facts = RecordedFacts { now_ms, ..RecordedFacts::default() };
    if let Some(sub) = &input.caller {
        let key = rt.cfg.identity.jwt.jwt_authn_payload_key.clone();
        let payload = serde_json::json!({ key: {"sub": sub, "iss": "proxy-audit-scan"} });
        let md = crate::pbstruct::encode::encode_metadata(&[("envoy.filters.http.jwt_authn", payload)]);
        facts.properties.push((vec!["metadata".into()], md));
    }
    let mut ex = Exchange::new();
    let mut forwarded = input.body.clone();
    let mut refused = None;
    let mut first = true;
    // The upstream's status, as the preview's upstream answers.
    let mut status = 200;
    let eos = input.body.is_empty();
    match input.side {
        Side::Request => {
            headers.extend(body_headers);
            facts.request_headers = headers;
            facts.request_body = input.body.clone();
            let h = ex.handle(rt, &facts, Event::RequestHeaders { end_of_stream: eos });
            take(&h.effects, Side::Request, &mut forwarded, &mut first, &mut refused, &mut status);
            if !eos && refused.is_none() {
                let b = ex.handle(rt, &facts, Event::RequestBody { size: input.body.len(), end_of_stream: true });
                take(&b.effects, Side::Request, &mut forwarded, &mut first, &mut refused, &mut status);
            }
        }
        Side::Response => {
            facts.request_headers = headers;
            let mut response = vec![(":status".to_string(), "200".to_string())];
            response.extend(body_headers);
            facts.response_headers = response;
            facts.response_body = input.body.clone();
            let h = ex.handle(rt, &facts, Event::RequestHeaders { end_of_stream: true });
            take(&h.effects, Side::Request, &mut Vec::new(), &mut true, &mut refused, &mut status);
            if refused.is_none() {
                let rh = ex.handle(rt, &facts, Event::ResponseHeaders { end_of_stream: eos });
                take(&rh.effects, Side::Response, &mut forwarded, &mut first, &mut refused, &mut status);
                if !eos && refused.is_none() {
                    let b = ex.handle(rt, &facts, Event::ResponseBody { size: input.body.len(), end_of_stream: true });
                    take(&b.effects, Side::Response, &mut forwarded, &mut first, &mut refused, &mut status);
                }
            }
        }
    }
    if refused.is_none() {
        if let Some((_, reason)) = ex.verdict() {
            // A response blocked after its status line left: the body is the
            // error, the status the upstream's (403 only if headers were held).
            refused = Some((status, reason.to_string()));
        }
    }
    let (req, resp) = ex.records();
    let record = if input.side == Side::Request { req } else { resp };
    if refused.is_some() && input.side == Side::Request {
        forwarded.clear();
    }
    Preview { forwarded, refused, record }
}
