//! Reading every format, and the typed error of every bad input.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;
use hrm_data::DataError;
use hrm_data::source::{FileSource, HubOptions, SourcePosition, SourceSpec, Utf8Policy};

fn open(spec: &SourceSpec, base: &Path) -> hrm_data::Result<FileSource> {
    FileSource::open(spec, base, &HubOptions::from_env(), false)
}

fn read_all(source: &mut FileSource) -> hrm_data::Result<Vec<String>> {
    let mut docs = Vec::new();
    while let Some(doc) = source.next_document()? {
        docs.push(doc);
    }
    Ok(docs)
}

#[test]
fn txt_jsonl_gz_zst_and_parquet_read_the_same_documents() {
    let dir = tempfile::tempdir().unwrap();
    let docs = documents(50);
    std::fs::write(dir.path().join("a.txt"), docs.join("\n<|endoftext|>\n")).unwrap();
    let jsonl: String = docs.iter().map(|d| format!("{}\n", serde_json::json!({ "text": d, "url": "x" }))).collect();
    std::fs::write(dir.path().join("b.jsonl"), &jsonl).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(jsonl.as_bytes()).unwrap();
    std::fs::write(dir.path().join("c.jsonl.gz"), gz.finish().unwrap()).unwrap();
    write_parquet(&dir.path().join("d.parquet"), "text", &docs, 7);
    std::fs::write(dir.path().join("e.jsonl.zst"), zstd::encode_all(jsonl.as_bytes(), 3).unwrap()).unwrap();

    for file in ["a.txt", "b.jsonl", "c.jsonl.gz", "d.parquet", "e.jsonl.zst"] {
        let mut source = open(&SourceSpec::local(file, file), dir.path()).unwrap();
        assert_eq!(read_all(&mut source).unwrap(), docs, "{file}");
    }
    // A directory reads all five files in name order; a glob picks a subset.
    let mut all = open(&SourceSpec::local("dir", "."), dir.path()).unwrap();
    assert_eq!(all.files().len(), 5);
    assert_eq!(read_all(&mut all).unwrap().len(), 250);
    let mut globbed = open(&SourceSpec::local("glob", "*.jsonl*"), dir.path()).unwrap();
    assert_eq!(read_all(&mut globbed).unwrap().len(), 150);
}

#[test]
fn every_format_resumes_from_a_saved_position() {
    let dir = tempfile::tempdir().unwrap();
    let docs = documents(40);
    std::fs::write(dir.path().join("a.txt"), docs.join("\n\n")).unwrap();
    let jsonl: String = docs.iter().map(|d| format!("{}\n", serde_json::json!({ "text": d }))).collect();
    std::fs::write(dir.path().join("b.jsonl"), &jsonl).unwrap();
    write_parquet(&dir.path().join("c.parquet"), "text", &docs, 6);
    std::fs::write(dir.path().join("d.jsonl.zst"), zstd::encode_all(jsonl.as_bytes(), 3).unwrap()).unwrap();
    for file in ["a.txt", "b.jsonl", "c.parquet", "d.jsonl.zst"] {
        let spec = SourceSpec { separator: "\n\n".into(), ..SourceSpec::local(file, file) };
        let mut source = open(&spec, dir.path()).unwrap();
        for _ in 0..17 {
            source.next_document().unwrap();
        }
        let position: SourcePosition = source.position();
        let rest = read_all(&mut source).unwrap();
        let mut resumed = open(&spec, dir.path()).unwrap();
        resumed.seek(position).unwrap();
        assert_eq!(read_all(&mut resumed).unwrap(), rest, "{file}");
        assert_eq!(rest, docs[17..], "{file}");
    }
}

#[test]
fn shared_corpora_read_as_documents() {
    let Some(stories) = shared_data("tinystories/TinyStories-train-head-part.txt") else { return };
    let spec = SourceSpec::local("tinystories", stories.to_str().unwrap());
    let docs = read_all(&mut open(&spec, Path::new(".")).unwrap()).unwrap();
    assert_eq!(docs.len(), 1_193, "SOURCES.md: 1,193 whole stories");
    assert!(docs[0].starts_with("One day, a little girl named Lily found a needle"));

    let Some(c4) = shared_data("c4-sample/c4_sample.jsonl.gz") else { return };
    let docs = read_all(&mut open(&SourceSpec::local("c4", c4.to_str().unwrap()), Path::new(".")).unwrap()).unwrap();
    assert_eq!(docs.len(), 1_000);
    assert!(docs[0].starts_with("Beginners BBQ Class Taking Place in Missoula!"));

    let Some(prompts) = shared_data("parquet-sample/awesome-chatgpt-prompts-train-0000.parquet") else { return };
    let spec = SourceSpec { text_field: "prompt".into(), ..SourceSpec::local("prompts", prompts.to_str().unwrap()) };
    assert_eq!(read_all(&mut open(&spec, Path::new(".")).unwrap()).unwrap().len(), 203);
}

#[test]
fn bad_inputs_give_typed_errors_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Missing file.
    let err = open(&SourceSpec::local("x", "missing.txt"), d).err().unwrap();
    assert!(matches!(err, DataError::Io { .. }) && err.to_string().contains("missing.txt"), "{err}");
    // Empty folder and unknown extension.
    std::fs::create_dir(d.join("empty")).unwrap();
    assert!(matches!(open(&SourceSpec::local("x", "empty"), d), Err(DataError::EmptyDataset { .. })));
    std::fs::write(d.join("data.csv"), "a,b").unwrap();
    assert!(matches!(open(&SourceSpec::local("x", "data.csv"), d), Err(DataError::UnknownFormat { .. })));

    // Invalid UTF-8: an error at the document's byte offset, or skipped and counted.
    std::fs::write(d.join("bad.txt"), b"good one\n\n\xff\xfe bad\n\nlast one".as_slice()).unwrap();
    let spec = SourceSpec { separator: "\n\n".into(), ..SourceSpec::local("x", "bad.txt") };
    let err = read_all(&mut open(&spec, d).unwrap()).unwrap_err();
    assert!(matches!(err, DataError::InvalidUtf8 { offset: 10, .. }), "{err}");
    let skipping = SourceSpec { on_invalid_utf8: Utf8Policy::Skip, ..spec };
    let mut source = open(&skipping, d).unwrap();
    assert_eq!(read_all(&mut source).unwrap(), ["good one", "last one"]);
    assert_eq!(source.skipped_invalid(), 1);

    // JSON lines: missing field and invalid JSON, with 1-based line numbers.
    std::fs::write(d.join("nofield.jsonl"), "{\"text\": \"ok\"}\n{\"body\": \"no text\"}\n").unwrap();
    let err = read_all(&mut open(&SourceSpec::local("x", "nofield.jsonl"), d).unwrap()).unwrap_err();
    assert!(matches!(&err, DataError::MissingField { line: 2, field, .. } if field == "text"), "{err}");
    assert!(err.to_string().contains("nofield.jsonl:2"), "{err}");
    std::fs::write(d.join("broken.jsonl"), "{\"text\": \"ok\"}\n{\"text\": \n").unwrap();
    let err = read_all(&mut open(&SourceSpec::local("x", "broken.jsonl"), d).unwrap()).unwrap_err();
    assert!(matches!(err, DataError::InvalidJson { line: 2, .. }), "{err}");

    // Parquet without the column: the error lists the columns there are.
    write_parquet(&d.join("t.parquet"), "body", &documents(3), 3);
    let err = read_all(&mut open(&SourceSpec::local("x", "t.parquet"), d).unwrap()).unwrap_err();
    assert!(matches!(err, DataError::MissingColumn { .. }) && err.to_string().contains("body"), "{err}");

    // A truncated .gz.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for doc in documents(200) {
        writeln!(gz, "{}", serde_json::json!({ "text": doc })).unwrap();
    }
    let bytes = gz.finish().unwrap();
    std::fs::write(d.join("cut.jsonl.gz"), &bytes[..bytes.len() / 2]).unwrap();
    let err = read_all(&mut open(&SourceSpec::local("x", "cut.jsonl.gz"), d).unwrap()).unwrap_err();
    assert!(matches!(err, DataError::TruncatedCompressed { .. }), "{err}");

    // A repeating source with no document at all.
    std::fs::write(d.join("blank.txt"), "\n\n   \n").unwrap();
    let mut blank = FileSource::open(&SourceSpec::local("x", "blank.txt"), d, &HubOptions::from_env(), true).unwrap();
    assert!(matches!(blank.next_document(), Err(DataError::EmptyDataset { .. })));

    // A spec with both or neither location, or a bad weight.
    let both = SourceSpec {
        hub: Some(serde_json::from_str(r#"{"repo": "a/b"}"#).unwrap()),
        ..SourceSpec::local("x", "a.txt")
    };
    assert!(matches!(both.validate(), Err(DataError::InvalidConfig { field: "path/hub/url", .. })));
    let neither = SourceSpec { path: None, ..SourceSpec::local("x", "a.txt") };
    assert!(matches!(neither.validate(), Err(DataError::InvalidConfig { field: "path/hub/url", .. })));
    let local_path = SourceSpec { local: Some("b.txt".into()), ..SourceSpec::local("x", "a.txt") };
    assert!(matches!(local_path.validate(), Err(DataError::InvalidConfig { field: "local", .. })));
    let weight = SourceSpec { weight: -1.0, ..SourceSpec::local("x", "a.txt") };
    assert!(matches!(weight.validate(), Err(DataError::InvalidConfig { field: "weight", .. })));
}

#[test]
fn a_truncated_zstd_file_is_one_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl: String = documents(200).iter().map(|d| format!("{}\n", serde_json::json!({ "text": d }))).collect();
    let bytes = zstd::encode_all(jsonl.as_bytes(), 3).unwrap();
    std::fs::write(dir.path().join("cut.jsonl.zst"), &bytes[..bytes.len() / 2]).unwrap();
    let err = read_all(&mut open(&SourceSpec::local("x", "cut.jsonl.zst"), dir.path()).unwrap()).unwrap_err();
    assert!(matches!(err, DataError::TruncatedCompressed { .. }) && err.to_string().contains("cut.jsonl.zst"), "{err}");
}
