//! Helpers for hrm-data's tests: the shared corpora (skipped when absent) and test files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

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
    let schema =
        Arc::new(parse_message_type(&format!("message schema {{ REQUIRED BYTE_ARRAY {column} (UTF8); }}")).unwrap());
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build())).unwrap();
    for group in rows.chunks(rows_per_group) {
        let mut row_group = writer.next_row_group().unwrap();
        let mut col = row_group.next_column().unwrap().unwrap();
        let values: Vec<ByteArray> = group.iter().map(|s| ByteArray::from(s.as_str())).collect();
        col.typed::<ByteArrayType>().write_batch(&values, None, None).unwrap();
        col.close().unwrap();
        row_group.close().unwrap();
    }
    writer.close().unwrap();
}

/// `n` distinct short documents `"doc {i}: ..."`.
pub fn documents(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("doc {i}: the quick brown fox number {i} jumps over {} lazy dogs.", i * 7 % 13)).collect()
}
