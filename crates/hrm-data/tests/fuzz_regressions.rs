//! Inputs on which fuzzing found a panic in a dependency (kept in `fuzz/corpus/*/seed-regression-*`,
//! named after the panic site): each must now give an error naming the file.

use std::path::{Path, PathBuf};

use hrm_data::{AnyTokenizer, FileSource, HubOptions, SourceSpec};

fn regressions(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-regression-")))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no regression inputs in {}", dir.display());
    found
}

#[test]
fn corrupt_parquet_files_that_panicked_the_decoder_give_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for input in regressions("parquet_reader") {
        std::fs::copy(&input, dir.path().join("data.parquet")).unwrap();
        let spec = SourceSpec::local("x", "data.parquet");
        let outcome = FileSource::open(&spec, dir.path(), &HubOptions::from_env(), false).and_then(|mut source| {
            while source.next_document()?.is_some() {}
            Ok(())
        });
        let err = outcome.expect_err(&format!("{} reads as valid", input.display())).to_string();
        assert!(err.contains("data.parquet"), "{}: {err}", input.display());
    }
}

#[test]
fn a_tokenizer_json_that_panicked_the_tokenizers_crate_gives_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    for input in regressions("bpe_tokenizer") {
        std::fs::copy(&input, &path).unwrap();
        let err = AnyTokenizer::load_file(&path).expect_err("malformed").to_string();
        assert!(err.contains("tokenizer.json"), "{}: {err}", input.display());
    }
    // Valid JSON whose decoder section the crate cannot read: caught, not a panic.
    std::fs::write(&path, r#"{"version":"1.0","model":{"type":"BPE","vocab":{},"merges":[]},"decoder":7}"#).unwrap();
    let err = AnyTokenizer::load_file(&path).expect_err("malformed").to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
}
