//! Fuzz target: [`hrm_fuzz::targets::parquet_reader`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hrm_fuzz::targets::parquet_reader(data));
