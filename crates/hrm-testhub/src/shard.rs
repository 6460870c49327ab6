//! Shard bytes in each format the Hub's corpora use, for a test's repositories.

use std::io::Write;
use std::sync::Arc;

use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// `rows` as a one-column (`column`) parquet file, `rows_per_group` rows a row group.
pub fn parquet_with(column: &str, rows: &[String], rows_per_group: usize) -> Vec<u8> {
    let schema =
        Arc::new(parse_message_type(&format!("message schema {{ REQUIRED BYTE_ARRAY {column} (UTF8); }}")).unwrap());
    let properties = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, properties).unwrap();
    for group in rows.chunks(rows_per_group) {
        let mut row_group = writer.next_row_group().unwrap();
        let mut col = row_group.next_column().unwrap().unwrap();
        let values: Vec<ByteArray> = group.iter().map(|s| ByteArray::from(s.as_str())).collect();
        col.typed::<ByteArrayType>().write_batch(&values, None, None).unwrap();
        col.close().unwrap();
        row_group.close().unwrap();
    }
    writer.into_inner().unwrap()
}

/// `docs` as a parquet shard with a `text` column, 40 rows a row group.
pub fn parquet(docs: &[String]) -> Vec<u8> {
    parquet_with("text", docs, 40)
}

/// `docs` as JSON lines with a `text` field (and a `timestamp`, as C4's).
pub fn jsonl(docs: &[String]) -> Vec<u8> {
    docs.iter()
        .map(|d| format!("{}\n", serde_json::json!({ "text": d, "timestamp": "2019-04-25" })))
        .collect::<String>()
        .into_bytes()
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `bytes` Zstandard-compressed.
pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// `docs` as a TinyStories-style text file, `<|endoftext|>` between documents.
pub fn text(docs: &[String]) -> Vec<u8> {
    docs.join("\n<|endoftext|>\n").into_bytes()
}
