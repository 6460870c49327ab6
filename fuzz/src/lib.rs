//! hrm's fuzz targets; each binary in `fuzz_targets/` feeds libFuzzer's inputs to one
//! function of [`targets`].

pub mod targets;
