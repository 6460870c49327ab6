//! hrm's fuzz targets; each binary in `fuzz_targets/` feeds libFuzzer's inputs to one
//! function of [`targets`].

pub mod targets;

/// Run once before fuzzing. hrm catches the panics some dependencies raise on malformed
/// files (the parquet and tokenizers crates, burn's record decoder) and returns errors, but
/// libfuzzer-sys's panic hook aborts on every panic, caught or not. This hook stays quiet
/// instead (set `HRM_FUZZ_PANIC_MESSAGES=1` to print each message); a panic that escapes a
/// target still aborts, through libfuzzer-sys's own `catch_unwind`, and counts as a crash.
pub fn init() {
    let verbose = std::env::var_os("HRM_FUZZ_PANIC_MESSAGES").is_some();
    std::panic::set_hook(Box::new(move |info| {
        if verbose {
            eprintln!("{info}");
        }
    }));
}
