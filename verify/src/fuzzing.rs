//! The fuzz driver of the `verify` target (`fuzz/fuzz_targets/verify.rs`),
//! also run over the seeds and crash inputs by `verify/tests/fuzz_regressions.rs`.
//!
//! Not an API: nothing outside fuzzing and its tests should call this.

/// The CLI's chain verifier on an input file. The first line, when it looks
/// like one, is also read as a `--checkpoint` value.
pub fn verify_chain(data: &[u8]) {
    let first = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let cps: Vec<crate::Checkpoint> = crate::Checkpoint::parse(&String::from_utf8_lossy(first)).into_iter().collect();
    let report = crate::verify_inputs(&[("fuzz.ndjson", data)], &cps);
    let _ = report.render();
    let _ = report.exit_code();
    let _ = crate::parse_events("fuzz.ndjson", data);
}
