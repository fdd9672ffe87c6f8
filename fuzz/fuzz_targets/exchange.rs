#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| proxy_audit_core::fuzzing::exchange(data));
