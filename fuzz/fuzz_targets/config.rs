//! See `tributary_fuzz::check_config` for what this target asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tributary_fuzz::check_config(data));
