//! proxy-audit-bench-floor: a benchmark-only proxy-wasm filter that measures
//! the floor under proxy-audit's cost in Envoy (bench/README.md, "Floor rows").
//!
//! Its plugin configuration picks a [`mode::Mode`]: `noop` (every callback
//! returns Continue: the price of being a wasm filter at all) or `digest` (the
//! contract's mandatory SHA-256 work and nothing else, [`digest`]). It never
//! dispatches events or touches headers and bodies. Host calls go through
//! `proxy_wasm::hostcalls`, whose errors are ignored (the SDK's own `get_map_value` panics on a
//! status Envoy does not return; this is a benchmark instrument, not the filter).

#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod digest;
pub mod mode;

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

use crate::digest::Exchange;
use crate::mode::Mode;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { mode: Mode::Noop }) });
}}

thread_local! {
    /// The last event hash (the chain head): each event carries it, so no
    /// digest of any request is dead code the compiler could drop.
    static HEAD: Cell<[u8; 32]> = const { Cell::new([0; 32]) };
}

struct Root {
    mode: Mode,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).ok().flatten();
        match mode::parse(config.as_deref().unwrap_or_default()) {
            Some(mode) => {
                self.mode = mode;
                let _ = hostcalls::log(LogLevel::Info, &format!("bench floor: {mode:?}"));
                true
            }
            None => {
                let _ = hostcalls::log(LogLevel::Error, "bench floor: configuration must be `noop` or `digest`");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(match self.mode {
            Mode::Noop => Box::new(Noop),
            Mode::Digest => Box::new(DigestOnly { exchange: Exchange::default() }),
        })
    }
}

/// Every callback keeps the SDK's default: Continue, nothing read.
struct Noop;

impl Context for Noop {}

impl HttpContext for Noop {}

struct DigestOnly {
    exchange: Exchange,
}

impl Context for DigestOnly {}

impl HttpContext for DigestOnly {
    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        if body_size > 0 {
            if let Ok(Some(chunk)) = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
                self.exchange.request_chunk(&chunk);
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let content_type = hostcalls::get_map_value(MapType::HttpResponseHeaders, "content-type").ok().flatten();
        self.exchange.set_response_stream(content_type.is_some_and(|t| t.starts_with("text/event-stream")));
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        if body_size > 0 {
            if let Ok(Some(chunk)) = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size) {
                self.exchange.response_chunk(&chunk);
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let exchange = std::mem::take(&mut self.exchange);
        HEAD.with(|head| head.set(std::hint::black_box(exchange.seal(&head.get()))));
    }
}
