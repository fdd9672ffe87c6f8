//! Host-independent logic of proxy-audit.
//!
//! Everything here is pure Rust over bytes and structs: it compiles natively
//! (unit tests, the `proxy-audit` CLI, benchmarks, fuzzers) and to
//! `wasm32-wasip1` (the filter). Host calls live in the `plugin` crate only.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

// One folder per concern (see the README's Layout):
pub mod ai;
pub mod classify;
pub mod exchange;
pub mod identity;
pub mod policy;
pub mod runtime;
pub mod stages;
pub mod swar;
pub mod trail;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

// The paths the other crates (plugin, CLI, verifier, benches, fuzzers) use.
pub use classify::sse;
pub use exchange::inspect;
pub use identity::{jwt, pbstruct};
pub use policy::{config, resources};
pub use trail::{chain, emitter, event, export, handoff, ids, jcs, signing, timefmt};
