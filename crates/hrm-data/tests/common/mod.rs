//! Helpers for hrm-data's tests: the shared corpora (skipped when absent) and test files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/data` beside the repository (or `$HRM_SHARED_DATA`), if present; prints why not.
pub fn shared_data(file: &str) -> Option<PathBuf> {
    let root = std::env::var_os("HRM_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let path = root.join(file);
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: {} is absent (set HRM_SHARED_DATA to the shared data folder)", path.display());
        None
    }
}

/// Writes `rows` as a one-column (`column`) parquet file with `rows_per_group` rows per row group.
pub fn write_parquet(path: &Path, column: &str, rows: &[String], rows_per_group: usize) {
    std::fs::write(path, hrm_testhub::shard::parquet_with(column, rows, rows_per_group)).unwrap();
}

/// `n` distinct short documents `"doc {i}: ..."`.
pub fn documents(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("doc {i}: the quick brown fox number {i} jumps over {} lazy dogs.", i * 7 % 13)).collect()
}
