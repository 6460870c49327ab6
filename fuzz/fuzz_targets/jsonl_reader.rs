//! Fuzz target: [`hrm_fuzz::targets::jsonl_reader`].
#![no_main]

libfuzzer_sys::fuzz_target!(init: hrm_fuzz::init(), |data: &[u8]| hrm_fuzz::targets::jsonl_reader(data));
