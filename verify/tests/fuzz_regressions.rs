//! Fuzzing regressions of the `verify` target: every file under
//! `core/tests/data/fuzz/verify/` (inputs that once crashed it) and
//! `fuzz/seeds/verify/` (its seeds, written by core's `write_seeds`) goes
//! through the fuzz driver; so does JSON nested 100k deep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proxy_audit_verify::fuzzing::verify_chain;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.filter_map(Result::ok).filter(|e| e.path().is_file()).map(|e| std::fs::read(e.path()).unwrap()).collect()
}

#[test]
fn seeds_and_crash_inputs_run_clean() {
    let seeds = files(&root().join("fuzz/seeds/verify"));
    assert!(!seeds.is_empty(), "no seeds for verify");
    for bytes in seeds.iter().chain(&files(&root().join("core/tests/data/fuzz/verify"))) {
        verify_chain(bytes);
    }
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    const DEPTH: usize = 100_000;
    let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
    for body in [arrays, objects] {
        let r = std::thread::Builder::new().stack_size(1 << 20).spawn(move || verify_chain(body.as_bytes())).unwrap();
        assert!(r.join().is_ok());
    }
}
