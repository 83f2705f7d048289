//! See `tributary_fuzz::check_parse` for what this target asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tributary_fuzz::check_parse(data));
