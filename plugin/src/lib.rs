//! proxy-audit: the proxy-wasm HTTP filter.
//!
//! A thin layer over `proxy-audit-core`: it reads headers, properties and
//! bodies from the host, hands them to the core, and writes back what the
//! core decided. Every host call goes through [`host`], which never panics.

mod handover;
mod host;
mod http;
mod metrics;
mod outbox;
mod raw;
mod root;
mod shared;
mod shipper;

proxy_wasm::main! {{
    #[cfg(feature = "stages")]
    proxy_audit_core::stages::set_hook(|name| {
        let _ = proxy_wasm::hostcalls::log(proxy_wasm::types::LogLevel::Trace, name);
    });
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(root::Root::new(id)) });
}}
