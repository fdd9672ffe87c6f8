//! The audit trail: the event writer (canonical JSON straight into a
//! buffer), hash chains and ids, the emitter (checkpoints, loss records, end
//! records, signing), batching and the exporters (NDJSON, OTLP), and the
//! hand-off to the singleton shipping service.

pub mod chain;
pub mod emitter;
pub mod event;
pub mod export;
pub mod handoff;
pub mod ids;
pub mod jcs;
pub mod signing;
pub mod timefmt;
