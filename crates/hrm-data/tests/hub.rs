//! Hub streaming against a loopback server that answers as the real Hub does, for the
//! layouts of real repositories: allenai/c4 (`en/c4-train.*.json.gz`), HuggingFaceFW/fineweb
//! (parquet under `data/` and `sample/10BT/`), cerebras/SlimPajama-627B (`train/chunkN/*.jsonl.zst`),
//! roneneldan/TinyStories (`.txt`) and a dataset the parquet converter cut (`partial-train`):
//! the tree listing in pages, redirects to a CDN, the cache layout, retries, a cut download,
//! resume mid-shard, offline mode, and the errors a user meets.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use hrm_data::DataError;
use hrm_data::source::{FileSource, HubDataset, HubOptions, SourceSpec};
use hrm_testhub::shard::{gzip, jsonl, parquet, text, zstd};
use hrm_testhub::{FakeHub, Files, SHA};

const REPO: &str = "roneneldan/TinyStories";
/// Real stories from ../shared/data when present, else generated documents.
fn stories() -> Vec<String> {
    match shared_data("tinystories/TinyStories-train-head-part.txt") {
        Some(path) => std::fs::read_to_string(path)
            .unwrap()
            .split("<|endoftext|>")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .take(300)
            .collect(),
        None => documents(300),
    }
}

fn source(options: &HubOptions, dataset: &HubDataset) -> hrm_data::Result<FileSource> {
    let spec = SourceSpec { hub: Some(dataset.clone()), path: None, ..SourceSpec::local("hub", "") };
    FileSource::open(&spec, Path::new("."), options, false)
}

fn read_rest(source: &mut FileSource) -> hrm_data::Result<Vec<String>> {
    let mut docs = Vec::new();
    while let Some(doc) = source.next_document()? {
        docs.push(doc);
    }
    Ok(docs)
}

fn read_all(options: &HubOptions, dataset: &HubDataset) -> hrm_data::Result<Vec<String>> {
    read_rest(&mut source(options, dataset)?)
}

fn options(endpoint: &str, cache: &Path) -> HubOptions {
    HubOptions {
        endpoint: endpoint.into(),
        cache_dir: cache.to_path_buf(),
        token: Some("test-token".into()),
        offline: false,
        max_retries: 3,
        retry_base: Duration::from_millis(10),
        local_data: None,
    }
}

fn dataset(json: serde_json::Value) -> HubDataset {
    serde_json::from_value(json).unwrap()
}

#[test]
fn a_converted_dataset_streams_its_shards_caches_them_and_reads_offline() {
    let docs = stories();
    let (first, second) = docs.split_at(docs.len() / 2);
    let conversion = vec![
        ("default/train/0000.parquet", parquet(first)),
        ("default/train/0001.parquet", parquet(second)),
        ("default/validation/0000.parquet", parquet(first)),
    ];
    let main = vec![("README.md", b"# TinyStories".to_vec()), ("loader.py", b"import datasets".to_vec())];
    let hub = FakeHub::new().repo(REPO, &[("main", main), ("refs/convert/parquet", conversion)]);
    hub.failures_left.lock().unwrap().insert("default/train/0001.parquet".into(), 2);
    let hub = Arc::new(hub);
    let served = Arc::clone(&hub).serve();
    let endpoint = served.endpoint.clone();
    let cache = tempfile::tempdir().unwrap();
    let options = options(&endpoint, cache.path());
    let dataset = dataset(serde_json::json!({ "repo": REPO }));
    assert_eq!(
        (dataset.config.as_str(), dataset.split.as_str(), dataset.revision.as_str()),
        ("default", "train", "main")
    );

    // The repository has no data files: the conversion's shards, the second after two 503s.
    let online = read_all(&options, &dataset).unwrap();
    assert_eq!(online, docs, "both shards, in order, every document");
    assert!(*hub.saw_token.lock().unwrap(), "the token is sent as a bearer header");
    assert_eq!(hub.failures_left.lock().unwrap()["default/train/0001.parquet"], 0, "both 503s were retried");
    let requests_after_first = hub.requests.load(Ordering::SeqCst);

    // The Hub's cache layout.
    let repo_dir = cache.path().join("datasets--roneneldan--TinyStories");
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/refs/convert/parquet")).unwrap().trim(), SHA);
    for shard in ["0000", "0001"] {
        assert!(repo_dir.join(format!("snapshots/{SHA}/default/train/{shard}.parquet")).exists());
    }

    // Offline: the cache alone, no request reaches the server.
    let offline = HubOptions { offline: true, ..options.clone() };
    assert_eq!(read_all(&offline, &dataset).unwrap(), docs);
    assert_eq!(hub.requests.load(Ordering::SeqCst), requests_after_first);

    // Offline, an uncached split is a clear error; online it downloads.
    let validation = HubDataset { split: "validation".into(), ..dataset.clone() };
    let err = read_all(&offline, &validation).unwrap_err();
    assert!(matches!(err, DataError::Hub { .. }) && err.to_string().contains("HF_HUB_OFFLINE=1"), "{err}");
    assert_eq!(read_all(&options, &validation).unwrap(), first);
    let missing = HubDataset { split: "test".into(), ..dataset.clone() };
    let err = read_all(&options, &missing).unwrap_err().to_string();
    assert!(err.contains("no parquet shards under `default/test/` or `default/partial-test/`"), "{err}");
    drop(served);
}

/// One repository layout of the acceptance: its repository, revisions, how a user names the
/// split, and the documents that split holds.
struct Layout {
    repo: &'static str,
    revisions: Vec<(&'static str, Files)>,
    dataset: serde_json::Value,
    expected: Vec<String>,
    /// A shard of the split whose first full download is cut off halfway.
    cut: &'static str,
}

/// The `i`-th 30 of 240 test documents.
fn part(i: usize) -> Vec<String> {
    documents(240)[i * 30..(i + 1) * 30].to_vec()
}

/// allenai/c4: one folder a config, the split in the shard names, gzip JSON lines.
fn c4() -> Layout {
    let main = vec![
        ("README.md", b"# C4".to_vec()),
        ("en/c4-train.00000-of-00002.json.gz", gzip(&jsonl(&part(0)))),
        ("en/c4-train.00001-of-00002.json.gz", gzip(&jsonl(&part(1)))),
        ("en/c4-validation.00000-of-00001.json.gz", gzip(&jsonl(&part(2)))),
        ("realnewslike/c4-train.00000-of-00001.json.gz", gzip(&jsonl(&part(3)))),
    ];
    Layout {
        repo: "allenai/c4",
        revisions: vec![("main", main)],
        dataset: serde_json::json!({ "repo": "allenai/c4", "config": "en", "split": "train" }),
        expected: [part(0), part(1)].concat(),
        cut: "en/c4-train.00001-of-00002.json.gz",
    }
}

/// HuggingFaceFW/fineweb: parquet under `data/<crawl>/` and `sample/<size>/`, no split names.
fn fineweb() -> Layout {
    let main = vec![
        ("data/CC-MAIN-2024-10/000_00000.parquet", parquet(&part(4))),
        ("sample/10BT/000_00000.parquet", parquet(&part(5))),
        ("sample/10BT/001_00000.parquet", parquet(&part(6))),
    ];
    Layout {
        repo: "HuggingFaceFW/fineweb",
        revisions: vec![("main", main)],
        dataset: serde_json::json!({ "repo": "HuggingFaceFW/fineweb", "data_files": "sample/10BT/*.parquet" }),
        expected: [part(5), part(6)].concat(),
        cut: "sample/10BT/000_00000.parquet",
    }
}

/// cerebras/SlimPajama-627B: one folder a split, chunk folders, Zstandard JSON lines.
fn slimpajama() -> Layout {
    let main = vec![
        ("train/chunk1/example_train_0.jsonl.zst", zstd(&jsonl(&part(0)))),
        ("train/chunk2/example_train_0.jsonl.zst", zstd(&jsonl(&part(7)))),
        ("validation/chunk1/example_holdout_0.jsonl.zst", zstd(&jsonl(&part(2)))),
    ];
    Layout {
        repo: "cerebras/SlimPajama-627B",
        revisions: vec![("main", main)],
        dataset: serde_json::json!({ "repo": "cerebras/SlimPajama-627B" }),
        expected: [part(0), part(7)].concat(),
        cut: "train/chunk1/example_train_0.jsonl.zst",
    }
}

/// roneneldan/TinyStories: text files at the root, `valid` for validation, an archive beside.
fn tinystories() -> Layout {
    let main = vec![
        ("TinyStories-train.txt", text(&part(1))),
        ("TinyStories-valid.txt", text(&part(3))),
        ("TinyStories_all_data.tar.gz", b"not read".to_vec()),
    ];
    Layout {
        repo: "roneneldan/TinyStories",
        revisions: vec![("main", main)],
        dataset: serde_json::json!({ "repo": "roneneldan/TinyStories", "split": "validation" }),
        expected: part(3),
        cut: "TinyStories-valid.txt",
    }
}

/// A repository with a loading script only, whose conversion stopped at 5 GB (`partial-`).
fn converted() -> Layout {
    let main = vec![("README.md", b"# big".to_vec()), ("big.py", b"# a loading script".to_vec())];
    let conversion = vec![
        ("default/partial-train/0000.parquet", parquet(&part(4))),
        ("default/partial-train/0001.parquet", parquet(&part(6))),
    ];
    Layout {
        repo: "someone/big-converted",
        revisions: vec![("main", main), ("refs/convert/parquet", conversion)],
        dataset: serde_json::json!({ "repo": "someone/big-converted" }),
        expected: [part(4), part(6)].concat(),
        cut: "default/partial-train/0001.parquet",
    }
}

#[test]
fn every_real_layout_streams_resumes_mid_shard_and_reads_offline() {
    for layout in [c4(), fineweb(), slimpajama(), tinystories(), converted()] {
        let name = layout.repo;
        let hub = FakeHub::new().repo(layout.repo, &layout.revisions);
        // One shard's first full download is cut off halfway: retried, not kept.
        hub.cut_once.lock().unwrap().push(layout.cut.into());
        let hub = Arc::new(hub);
        let served = Arc::clone(&hub).serve();
        let endpoint = served.endpoint.clone();
        let cache = tempfile::tempdir().unwrap();
        let options = options(&endpoint, cache.path());
        let dataset = dataset(layout.dataset.clone());
        assert_eq!(read_all(&options, &dataset).unwrap(), layout.expected, "{name}: the split's documents, in order");
        // Resume mid-shard: 7 documents in (shards hold 30), a fresh source seeks there; the
        // listing is the process's, the shards the cache's, so no request is made.
        let requests = hub.requests.load(Ordering::SeqCst);
        let mut reading = source(&options, &dataset).unwrap();
        for _ in 0..7 {
            reading.next_document().unwrap();
        }
        let position = reading.position();
        let rest = read_rest(&mut reading).unwrap();
        assert_eq!(rest, layout.expected[7..], "{name}");
        let mut resumed = source(&options, &dataset).unwrap();
        resumed.seek(position).unwrap();
        assert_eq!(read_rest(&mut resumed).unwrap(), rest, "{name}: resumed from the saved position");
        assert_eq!(hub.requests.load(Ordering::SeqCst), requests, "{name}: listed once, downloaded once");
        // Offline afterwards: the same documents from the cache, no request.
        let offline = HubOptions { offline: true, ..options.clone() };
        assert_eq!(read_all(&offline, &dataset).unwrap(), layout.expected, "{name}: offline");
        assert_eq!(hub.requests.load(Ordering::SeqCst), requests, "{name}: offline reads no network");
        assert!(hub.cut_once.lock().unwrap().is_empty(), "{name}: the cut download happened");
        drop(served);
    }
}

#[test]
fn bad_names_and_bad_shards_get_one_clear_line() {
    let good = gzip(&jsonl(&documents(50)));
    let cut = good[..good.len() / 2].to_vec();
    let files = vec![
        ("en/c4-train.00000-of-00001.json.gz", good),
        ("realnewslike/c4-train.00000-of-00001.json.gz", cut),
        ("broken/data/x-train.parquet", b"plain text, not parquet".to_vec()),
    ];
    let hub = Arc::new(FakeHub::new().repo("allenai/c4", &[("main", files)]));
    let served = Arc::clone(&hub).serve();
    let endpoint = served.endpoint.clone();
    let cache = tempfile::tempdir().unwrap();
    let options = options(&endpoint, cache.path());
    let error = |json: serde_json::Value| read_all(&options, &dataset(json)).unwrap_err().to_string();

    let unknown = error(serde_json::json!({ "repo": "nobody/nothing" }));
    assert!(unknown.contains("nobody/nothing") && unknown.contains("404"), "{unknown}");
    let subset = error(serde_json::json!({ "repo": "allenai/c4", "config": "fr" }));
    assert!(subset.contains("no config `fr`") && subset.contains("en/, realnewslike/"), "{subset}");
    let pattern = error(serde_json::json!({ "repo": "allenai/c4", "data_files": "en/c4-test.*.json.gz" }));
    assert!(pattern.contains("matches no file"), "{pattern}");
    let split = error(serde_json::json!({ "repo": "allenai/c4", "config": "en", "split": "test" }));
    assert!(split.contains("no files of split `test`") && split.contains("train"), "{split}");
    let truncated = error(serde_json::json!({ "repo": "allenai/c4", "config": "realnewslike" }));
    assert!(truncated.contains("realnewslike/c4-train") && truncated.contains("truncated"), "{truncated}");
    let not_parquet = error(serde_json::json!({ "repo": "allenai/c4", "config": "broken" }));
    assert!(not_parquet.contains("x-train.parquet") && not_parquet.contains("parquet"), "{not_parquet}");
    drop(served);
}

#[test]
fn a_tokenizer_named_by_its_model_repository_is_cached_and_read_offline() {
    let trained = hrm_data::HfTokenizer::train_bpe(documents(60).into_iter(), 300).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = hrm_data::AnyTokenizer::Hf(trained).save_to_dir(dir.path()).unwrap();
    let hub =
        Arc::new(FakeHub::new().repo("gpt2", &[("main", vec![("tokenizer.json", std::fs::read(&file).unwrap())])]));
    let served = Arc::clone(&hub).serve();
    let endpoint = served.endpoint.clone();
    let cache = tempfile::tempdir().unwrap();
    let options = options(&endpoint, cache.path());
    let path = hrm_data::source::model_file(&options, "gpt2", "tokenizer.json").unwrap();
    assert!(path.starts_with(cache.path().join("models--gpt2/snapshots")), "{}", path.display());
    let tokenizer = hrm_data::AnyTokenizer::load_file(&path).unwrap();
    let text = "doc 7: the quick brown fox";
    assert_eq!(hrm_data::Tokenizer::decode(&tokenizer, &hrm_data::Tokenizer::encode(&tokenizer, text).unwrap()), text);
    // Offline afterwards: the cached file, no request.
    let requests = hub.requests.load(Ordering::SeqCst);
    let offline = HubOptions { offline: true, ..options.clone() };
    assert_eq!(hrm_data::source::model_file(&offline, "gpt2", "tokenizer.json").unwrap(), path);
    assert_eq!(hub.requests.load(Ordering::SeqCst), requests);
    let missing = hrm_data::source::model_file(&offline, "t5-small", "tokenizer.json").unwrap_err().to_string();
    assert!(missing.contains("HF_HUB_OFFLINE=1") && missing.contains("t5-small"), "{missing}");
    let unknown = hrm_data::source::model_file(&options, "no-such-model", "tokenizer.json").unwrap_err().to_string();
    assert!(unknown.contains("no-such-model") && unknown.contains("tokenizer.json"), "{unknown}");
    drop(served);
}

#[test]
fn an_unreachable_hub_fails_after_its_retries() {
    // A port nothing listens on: connection refused is transient, so it is retried, then reported.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let cache = tempfile::tempdir().unwrap();
    let options =
        HubOptions { max_retries: 2, retry_base: Duration::from_millis(5), ..options(&endpoint, cache.path()) };
    let err = read_all(&options, &dataset(serde_json::json!({ "repo": REPO }))).unwrap_err();
    assert!(matches!(&err, DataError::Hub { repo, .. } if repo == REPO), "{err}");
}

#[test]
fn a_web_file_is_downloaded_once_cached_and_read_offline() {
    let docs = part(2);
    let hub = FakeHub::new().web_file("books/pg11.txt", docs.join("\n\n").into_bytes());
    hub.failures_left.lock().unwrap().insert("books/pg11.txt".into(), 1);
    hub.cut_once.lock().unwrap().push("books/pg11.txt".into());
    let hub = Arc::new(hub);
    let served = Arc::clone(&hub).serve();
    let cache = tempfile::tempdir().unwrap();
    let options = options(&served.endpoint, cache.path());
    let spec = |url: String| SourceSpec {
        url: Some(url),
        path: None,
        separator: "\n\n".into(),
        ..SourceSpec::local("book", "")
    };
    let read = |options: &HubOptions, spec: &SourceSpec| -> hrm_data::Result<Vec<String>> {
        read_rest(&mut FileSource::open(spec, Path::new("."), options, false)?)
    };
    let book = spec(format!("{}/web/books/pg11.txt", served.endpoint));

    // A 503, then a download cut off halfway: both retried, the whole file kept.
    assert_eq!(read(&options, &book).unwrap(), docs);
    assert!(hub.cut_once.lock().unwrap().is_empty() && hub.failures_left.lock().unwrap()["books/pg11.txt"] == 0);
    let file = hrm_data::UrlFile::new(book.url.as_deref().unwrap()).unwrap();
    assert!(file.cache_path(&options).starts_with(cache.path().join("hrm-urls")));
    assert_eq!(std::fs::read(file.cache_path(&options)).unwrap(), docs.join("\n\n").into_bytes());

    // Again and offline: the cached copy, no request.
    let requests = hub.request_count();
    assert_eq!(read(&options, &book).unwrap(), docs);
    assert_eq!(read(&HubOptions { offline: true, ..options.clone() }, &book).unwrap(), docs);
    assert_eq!(hub.request_count(), requests);

    // A local copy under the local data folder wins when that folder is given.
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("alice.txt"), "a local book").unwrap();
    let with_copy = SourceSpec { local: Some("alice.txt".into()), ..book.clone() };
    let local_options = HubOptions { local_data: Some(local.path().into()), ..options.clone() };
    assert_eq!(read(&local_options, &with_copy).unwrap(), ["a local book"]);
    assert_eq!(read(&options, &with_copy).unwrap(), docs, "without the folder, the web file");

    // One clear line: a missing file, an address that names no format, offline and uncached.
    let nothing = format!("{}/web/nothing.txt", served.endpoint);
    let missing = read(&options, &spec(nothing.clone())).unwrap_err().to_string();
    assert!(missing.contains("/web/nothing.txt") && missing.contains("404"), "{missing}");
    let folder = hrm_data::UrlFile::new(&nothing).unwrap().cache_path(&options).parent().unwrap().to_path_buf();
    assert_eq!(std::fs::read_dir(folder).unwrap().count(), 0, "a failed download leaves no part file");
    let unknown = read(&options, &spec(format!("{}/web/book.epub", served.endpoint))).unwrap_err().to_string();
    assert!(unknown.contains("book.epub") && unknown.contains("unknown format"), "{unknown}");
    let offline = HubOptions { offline: true, ..options.clone() };
    let uncached = read(&offline, &spec(format!("{}/web/other.txt", served.endpoint))).unwrap_err().to_string();
    assert!(uncached.contains("other.txt") && uncached.contains("HF_HUB_OFFLINE=1"), "{uncached}");
}
