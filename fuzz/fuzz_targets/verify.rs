#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| proxy_audit_verify::fuzzing::verify_chain(data));
