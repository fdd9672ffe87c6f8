//! Host-independent logic of proxy-audit.
//!
//! Everything here is pure Rust over bytes and structs: it compiles natively
//! (unit tests, the `proxy-audit` CLI, benchmarks, fuzzers) and to
//! `wasm32-wasip1` (the filter). Host calls live in the `plugin` crate only.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod ai;
pub mod chain;
pub mod classify;
pub mod config;
pub mod emitter;
pub mod event;
pub mod exchange;
pub mod export;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod handoff;
pub mod identity;
pub mod ids;
pub mod inspect;
pub mod jcs;
pub mod jwt;
pub mod pbstruct;
pub mod resources;
pub mod runtime;
pub mod signing;
pub mod sse;
pub mod timefmt;
