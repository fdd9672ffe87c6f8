//! What one request's exchange takes in (events, and the facts it may ask
//! the host for) and what it gives back (effects). The filter translates
//! proxy-wasm callbacks into [`Event`]s and [`Effect`]s into host calls; the
//! CLI, the benches and the tests drive the same exchange with a
//! [`RecordedFacts`] and read the effects.

use crate::export::Batch;

/// Which message of the exchange a header or body effect concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

/// The facts the exchange reads from the host, when it needs them (so a
/// request that needs no property pays for none).
pub trait Facts {
    /// Every header of `side` (names lowercase, as Envoy gives them).
    fn headers(&self, side: Side) -> Vec<(String, String)>;
    /// One header.
    fn header(&self, side: Side, name: &str) -> Option<String>;
    /// A host property (`source.address`, `metadata`, `response.code`...).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// The body of `side` held so far (`size` bytes).
    fn body(&self, side: Side, size: usize) -> Vec<u8>;
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> u64;
    /// The headers (pseudo-headers included) and body of the answer to the
    /// call of [`Effect::Retry`], while [`Event::RetryAnswered`] is handled.
    fn call_response(&self) -> Option<CallResponse> {
        None
    }
}

/// An HTTP call's answer: its headers (`:status` included) and body.
pub type CallResponse = (Vec<(String, String)>, Vec<u8>);

/// An event of one request's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    RequestHeaders {
        end_of_stream: bool,
    },
    /// `size`: what the host holds of the body now (buffered bodies grow).
    RequestBody {
        size: usize,
        end_of_stream: bool,
    },
    /// Trailers end the body like its last chunk.
    RequestTrailers,
    ResponseHeaders {
        end_of_stream: bool,
    },
    ResponseBody {
        size: usize,
        end_of_stream: bool,
    },
    ResponseTrailers,
    /// The write-ahead `begin` record's delivery: `Some(2xx)` acknowledged,
    /// anything else (or `None`: not sent, reset, timeout) failed.
    BeginDelivered {
        status: Option<u16>,
    },
    /// The retried model call ([`Effect::Retry`]) answered: `Some(status)`,
    /// its headers and body through [`Facts::call_response`]; `None`: it failed.
    RetryAnswered {
        status: Option<u16>,
    },
    /// The host logs the stream (every stream, local replies included).
    Log,
}

/// What the host does for the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    SetHeader(Side, &'static str, String),
    RemoveHeader(Side, &'static str),
    /// Replaces what the host holds of the body (`size` bytes) with this.
    ReplaceBody {
        side: Side,
        size: usize,
        bytes: Vec<u8>,
    },
    /// Answer locally: the contract's JSON error body (`reason` is its code).
    LocalReply {
        status: u16,
        reason: &'static str,
        body: String,
        audit_id: String,
    },
    /// Filter state for access loggers (`wasm.<key>`).
    FilterState(&'static str, String),
    /// Deliver the write-ahead `begin` record now and report with
    /// [`Event::BeginDelivered`].
    PostBegin(Batch),
    /// Let the stream of `side` go on (headers held by an exchange that a
    /// tick released, see [`super::hold`]).
    Resume(Side),
    /// Send this request to the upstream `cluster` (the model call again,
    /// without what the filter added) and report with [`Event::RetryAnswered`];
    /// the response in hand stays held until then.
    Retry {
        cluster: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        timeout_ms: u32,
    },
    /// Answer the client with this response instead of the one held (the
    /// retried call's answer, redacted like any response).
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A counter (`proxy_audit.<name>`).
    Count(&'static str),
    /// The event sealed for this request: the host's per-model counters read
    /// `ai` from it.
    Sealed {
        line: String,
        ai: Option<serde_json::Value>,
    },
}

/// Whether the host lets the stream go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

/// The answer to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub flow: Flow,
    pub effects: Vec<Effect>,
}

impl Output {
    pub fn new() -> Self {
        Output { flow: Flow::Continue, effects: Vec::new() }
    }
}

impl Default for Output {
    fn default() -> Self {
        Output::new()
    }
}

/// Facts given up front: the CLI and the tests.
#[derive(Debug, Clone, Default)]
pub struct RecordedFacts {
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    pub now_ms: u64,
}

impl RecordedFacts {
    fn list(&self, side: Side) -> &[(String, String)] {
        match side {
            Side::Request => &self.request_headers,
            Side::Response => &self.response_headers,
        }
    }
}

impl Facts for RecordedFacts {
    fn headers(&self, side: Side) -> Vec<(String, String)> {
        self.list(side).to_vec()
    }

    fn header(&self, side: Side, name: &str) -> Option<String> {
        self.list(side).iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.properties
            .iter()
            .find(|(p, _)| p.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|(_, v)| v.clone())
    }

    fn body(&self, side: Side, size: usize) -> Vec<u8> {
        let b = match side {
            Side::Request => &self.request_body,
            Side::Response => &self.response_body,
        };
        b.get(..size.min(b.len())).unwrap_or_default().to_vec()
    }

    fn now_ms(&self) -> u64 {
        self.now_ms
    }
}
