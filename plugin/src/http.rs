//! The request context: translates proxy-wasm callbacks into the core
//! exchange's events and its effects into host calls. No decision about a
//! request is made here (see `proxy_audit_core::exchange`).

use crate::host;
use crate::shared::Shared;
use proxy_audit_core::exchange::{header_map, CallResponse, Effect, Event, Exchange, Facts, Flow, Output, Side};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use std::cell::OnceCell;

/// The host as the exchange's source of facts (and, in an HTTP call's
/// response callback, that call's answer). Lives for one callback: a side's
/// headers are read from the host once, as one map, and the clock once.
#[derive(Default)]
struct HostFacts {
    call: Option<CallResponse>,
    request_headers: OnceCell<Option<Vec<u8>>>,
    response_headers: OnceCell<Option<Vec<u8>>>,
    now_ms: OnceCell<u64>,
}

impl HostFacts {
    fn answer(call: Option<CallResponse>) -> Self {
        HostFacts { call, ..HostFacts::default() }
    }
}

fn map(side: Side) -> MapType {
    match side {
        Side::Request => MapType::HttpRequestHeaders,
        Side::Response => MapType::HttpResponseHeaders,
    }
}

fn buffer(side: Side) -> BufferType {
    match side {
        Side::Request => BufferType::HttpRequestBody,
        Side::Response => BufferType::HttpResponseBody,
    }
}

impl Facts for HostFacts {
    fn headers(&self, side: Side) -> Vec<(String, String)> {
        host::headers(map(side))
    }

    fn header(&self, side: Side, name: &str) -> Option<String> {
        let cell = match side {
            Side::Request => &self.request_headers,
            Side::Response => &self.response_headers,
        };
        let pairs = cell.get_or_init(|| crate::raw::header_pairs(map(side))).as_deref()?;
        header_map::lookup(pairs, name).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        host::property(path)
    }

    fn body(&self, side: Side, size: usize) -> Vec<u8> {
        host::buffer(buffer(side), 0, size)
    }

    fn now_ms(&self) -> u64 {
        *self.now_ms.get_or_init(host::now_ms)
    }

    fn call_response(&self) -> Option<CallResponse> {
        self.call.clone()
    }
}

/// Carries out an effect that needs only the host (the stream it is for
/// being the effective context).
pub fn carry_out(effect: Effect) {
    match effect {
        // A refused write is logged by `host`; the request goes on as it can.
        Effect::SetHeader(side, name, value) => {
            host::set_header(map(side), name, &value);
        }
        Effect::RemoveHeader(side, name) => {
            host::remove_header(map(side), name);
        }
        Effect::ReplaceBody { side, size, bytes } => {
            host::set_buffer(buffer(side), 0, size, &bytes);
        }
        Effect::FilterState(key, value) => host::set_property(&[key], value.as_bytes()),
        Effect::Resume(side) => {
            host::resume(side == Side::Response);
        }
        // The request's own effects (replies, deliveries, counters).
        Effect::LocalReply { .. }
        | Effect::PostBegin(_)
        | Effect::Retry { .. }
        | Effect::Reply { .. }
        | Effect::Count(_)
        | Effect::Sealed { .. } => {}
    }
}

pub struct Request {
    shared: Option<Shared>,
    exchange: Exchange,
    /// Token of the write-ahead `begin` delivery, while in flight.
    begin_token: Option<u32>,
    /// Token of a retried model call, while in flight.
    retry_token: Option<u32>,
}

impl Request {
    pub fn new(context_id: u32, shared: Option<Shared>) -> Self {
        Request { shared, exchange: Exchange::for_context(context_id), begin_token: None, retry_token: None }
    }

    /// Runs one event through the exchange and carries out its effects.
    fn run(&mut self, event: Event) -> Flow {
        self.run_with(event, HostFacts::default())
    }

    fn run_with(&mut self, event: Event, facts: HostFacts) -> Flow {
        let Some(shared) = self.shared.clone() else { return Flow::Continue };
        let out = {
            let mut rt = shared.borrow_mut();
            self.exchange.handle(&mut rt, &facts, event)
        };
        self.apply(out)
    }

    fn apply(&mut self, out: Output) -> Flow {
        let mut flow = out.flow;
        for effect in out.effects {
            match effect {
                Effect::LocalReply { status, body, audit_id, .. } => {
                    host::send_json(u32::from(status), &body, &audit_id);
                }
                Effect::PostBegin(batch) => {
                    let sent = self
                        .shared
                        .as_ref()
                        .and_then(|s| host::post_batch(&s.borrow().cfg.audit.exporter, &batch).ok());
                    match sent {
                        Some(token) => self.begin_token = Some(token),
                        // Not sent: the exchange decides now (fail closed or open).
                        None => flow = self.run(Event::BeginDelivered { status: None }),
                    }
                }
                Effect::Retry { cluster, headers, body, timeout_ms } => {
                    match host::call_upstream(&cluster, &headers, &body, timeout_ms) {
                        Some(token) => self.retry_token = Some(token),
                        // Not sent: the refusal goes on to the client.
                        None => flow = self.run(Event::RetryAnswered { status: None }),
                    }
                }
                Effect::Reply { status, headers, body } => {
                    host::send_reply(status, &headers, &body);
                }
                Effect::Count(name) => crate::metrics::count_event(name),
                Effect::Sealed { ai, .. } => {
                    if let Some(a) = &ai {
                        crate::metrics::ai_call(a);
                    }
                }
                other => carry_out(other),
            }
        }
        flow
    }

    fn action(&mut self, event: Event) -> Action {
        match self.run(event) {
            Flow::Continue => Action::Continue,
            Flow::Pause => Action::Pause,
        }
    }
}

impl Context for Request {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize, _num_trailers: usize) {
        if self.retry_token == Some(token_id) {
            self.retry_token = None;
            let call = host::call_response(num_headers, body_size);
            let status = call.as_ref().and_then(|_| host::call_status(num_headers));
            if self.run_with(Event::RetryAnswered { status }, HostFacts::answer(call)) == Flow::Continue {
                host::resume(true);
            }
            return;
        }
        if self.begin_token != Some(token_id) {
            return;
        }
        self.begin_token = None;
        let status = host::call_status(num_headers);
        if self.run(Event::BeginDelivered { status }) == Flow::Continue {
            host::resume(false);
        }
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.action(Event::RequestHeaders { end_of_stream })
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.action(Event::RequestBody { size: body_size, end_of_stream })
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.action(Event::RequestTrailers)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.action(Event::ResponseHeaders { end_of_stream })
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.action(Event::ResponseBody { size: body_size, end_of_stream })
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.action(Event::ResponseTrailers)
    }

    fn on_log(&mut self) {
        self.run(Event::Log);
    }
}
