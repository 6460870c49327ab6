//! Hub streaming against a loopback server that answers as the real Hub does, for the
//! layouts of real repositories: allenai/c4 (`en/c4-train.*.json.gz`), HuggingFaceFW/fineweb
//! (parquet under `data/` and `sample/10BT/`), cerebras/SlimPajama-627B (`train/chunkN/*.jsonl.zst`),
//! roneneldan/TinyStories (`.txt`) and a dataset the parquet converter cut (`partial-train`):
//! the tree listing in pages, redirects to a CDN, the cache layout, retries, a cut download,
//! resume mid-shard, offline mode, and the errors a user meets.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hrm_data::DataError;
use hrm_data::source::{FileSource, HubDataset, HubOptions, SourceSpec};

const REPO: &str = "roneneldan/TinyStories";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A revision's files: path and bytes.
type Files = Vec<(&'static str, Vec<u8>)>;

/// A loopback Hub serving one dataset repository as the real Hub does: the tree API in pages
/// of `page_size` entries with a `Link: <…>; rel="next"` header (directories listed too),
/// `resolve/` answering 302 with `x-repo-commit` and `x-linked-etag` to a CDN path that serves
/// byte ranges, 404s with the Hub's JSON error, injected 503s and a download cut short.
struct FakeHub {
    repo: String,
    /// Files at each revision (`main`, `refs/convert/parquet`).
    revisions: HashMap<String, BTreeMap<String, Vec<u8>>>,
    page_size: usize,
    requests: AtomicUsize,
    /// Requests answered 503 before the first success, per file (transient-failure injection).
    failures_left: Mutex<HashMap<String, usize>>,
    /// Files whose next full download sends half its bytes and closes.
    cut_once: Mutex<Vec<String>>,
    saw_token: Mutex<bool>,
}

impl FakeHub {
    fn new(repo: &str, revisions: &[(&str, Files)]) -> Self {
        let revisions = revisions
            .iter()
            .map(|(rev, files)| (rev.to_string(), files.iter().map(|(f, b)| (f.to_string(), b.clone())).collect()))
            .collect();
        Self {
            repo: repo.into(),
            revisions,
            page_size: 3,
            requests: AtomicUsize::new(0),
            failures_left: Mutex::new(HashMap::new()),
            cut_once: Mutex::new(Vec::new()),
            saw_token: Mutex::new(false),
        }
    }

    fn serve(self: Arc<Self>) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let base = address.clone();
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                if !self.answer(stream, &base) {
                    break;
                }
            }
        });
        (address, handle)
    }

    /// Answers one request; false on the `/shutdown` request.
    fn answer(&self, mut stream: TcpStream, base: &str) -> bool {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
        if path == "/shutdown" {
            return false;
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        if headers.get("authorization").is_some_and(|v| v == "Bearer test-token") {
            *self.saw_token.lock().unwrap() = true;
        }
        let tree = format!("/api/datasets/{}/tree/", self.repo);
        let resolve = format!("/datasets/{}/resolve/", self.repo);
        let model_resolve = format!("/{}/resolve/", self.repo);
        if let Some(rest) = path.strip_prefix(&tree) {
            self.tree_page(&mut stream, rest, base);
        } else if let Some(rest) = path.strip_prefix(&resolve).or_else(|| path.strip_prefix(&model_resolve)) {
            self.resolve(&mut stream, rest, base);
        } else if let Some(file) = path.strip_prefix(&format!("/cdn/{SHA}/")) {
            self.cdn(&mut stream, file, &headers);
        } else {
            not_found(&mut stream, "Repository not found");
        }
        true
    }

    /// A page of `GET /api/datasets/{repo}/tree/{rev}?recursive=true[&cursor=N]`.
    fn tree_page(&self, stream: &mut TcpStream, rest: &str, base: &str) {
        let (revision, query) = rest.split_once('?').unwrap_or((rest, ""));
        let Some(files) = self.revisions.get(&revision.replace("%2F", "/")) else {
            return not_found(stream, &format!("Invalid rev id: {revision}"));
        };
        let mut entries: Vec<serde_json::Value> = Vec::new();
        let mut folders = std::collections::BTreeSet::new();
        for (name, bytes) in files {
            let mut parts: Vec<&str> = name.split('/').collect();
            parts.pop();
            for depth in 1..=parts.len() {
                if folders.insert(parts[..depth].join("/")) {
                    let folder = parts[..depth].join("/");
                    entries.push(serde_json::json!({ "type": "directory", "oid": SHA, "size": 0, "path": folder }));
                }
            }
            entries.push(serde_json::json!({ "type": "file", "oid": SHA, "size": bytes.len(), "path": name }));
        }
        let cursor: usize = query.split('&').find_map(|q| q.strip_prefix("cursor=")).map_or(0, |c| c.parse().unwrap());
        let end = (cursor + self.page_size).min(entries.len());
        let mut extra = vec![("content-type", "application/json".to_string())];
        if end < entries.len() {
            let next =
                format!("{base}/api/datasets/{}/tree/{revision}?recursive=true&expand=false&cursor={end}", self.repo);
            extra.push(("link", format!("<{next}>; rel=\"next\"")));
        }
        let body = serde_json::to_string(&entries[cursor..end]).unwrap();
        respond(stream, "200 OK", &extra, body.as_bytes());
    }

    /// `GET /datasets/{repo}/resolve/{rev}/{file}`: a redirect to the CDN, as for LFS files.
    fn resolve(&self, stream: &mut TcpStream, rest: &str, base: &str) {
        let (revision, file) = rest.split_once('/').unwrap();
        let Some(bytes) = self.revisions.get(&revision.replace("%2F", "/")).and_then(|files| files.get(file)) else {
            return not_found(stream, "Entry not found");
        };
        if let Some(left) = self.failures_left.lock().unwrap().get_mut(file).filter(|n| **n > 0) {
            *left -= 1;
            return respond(stream, "503 Service Unavailable", &[], b"try later");
        }
        let extra = [
            ("location", format!("{base}/cdn/{SHA}/{file}")),
            ("x-repo-commit", SHA.to_string()),
            ("x-linked-etag", format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(bytes))),
            ("x-linked-size", bytes.len().to_string()),
        ];
        respond(stream, "302 Found", &extra, b"");
    }

    /// The CDN: byte ranges of any revision's file (the same bytes at every revision here).
    fn cdn(&self, stream: &mut TcpStream, file: &str, headers: &HashMap<String, String>) {
        let Some(bytes) = self.revisions.values().find_map(|files| files.get(file)) else {
            return not_found(stream, "no such object");
        };
        let range = headers.get("range").and_then(|r| r.strip_prefix("bytes=")).unwrap_or("0-");
        let (start, end) = range.split_once('-').unwrap();
        let start: usize = start.parse().unwrap();
        let end: usize =
            if end.is_empty() { bytes.len() - 1 } else { end.parse::<usize>().unwrap().min(bytes.len() - 1) };
        let body = &bytes[start..=end];
        let content_range = ("content-range", format!("bytes {start}-{end}/{}", bytes.len()));
        let mut cut = self.cut_once.lock().unwrap();
        if body.len() > 1 && cut.iter().any(|f| f == file) {
            cut.retain(|f| f != file);
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\n{}: {}\r\nconnection: close\r\n\r\n",
                body.len(),
                content_range.0,
                content_range.1
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body[..body.len() / 2]).unwrap();
            return;
        }
        respond(stream, "206 Partial Content", &[content_range], body);
    }
}

fn not_found(stream: &mut TcpStream, error: &str) {
    let body = serde_json::json!({ "error": error }).to_string();
    respond(stream, "404 Not Found", &[("content-type", "application/json".into())], body.as_bytes());
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
}

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
    }
}

fn shut_down(endpoint: &str, server: std::thread::JoinHandle<()>) {
    let _ = TcpStream::connect(endpoint.trim_start_matches("http://"))
        .and_then(|mut s| s.write_all(b"GET /shutdown HTTP/1.1\r\n\r\n"));
    server.join().unwrap();
}

fn dataset(json: serde_json::Value) -> HubDataset {
    serde_json::from_value(json).unwrap()
}

/// File bytes in each format.
fn parquet_bytes(docs: &[String]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shard.parquet");
    write_parquet(&path, "text", docs, 40);
    std::fs::read(&path).unwrap()
}
fn jsonl(docs: &[String]) -> Vec<u8> {
    docs.iter()
        .map(|d| format!("{}\n", serde_json::json!({ "text": d, "timestamp": "2019-04-25" })))
        .collect::<String>()
        .into_bytes()
}
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}
fn text(docs: &[String]) -> Vec<u8> {
    docs.join("\n<|endoftext|>\n").into_bytes()
}

#[test]
fn a_converted_dataset_streams_its_shards_caches_them_and_reads_offline() {
    let docs = stories();
    let (first, second) = docs.split_at(docs.len() / 2);
    let conversion = vec![
        ("default/train/0000.parquet", parquet_bytes(first)),
        ("default/train/0001.parquet", parquet_bytes(second)),
        ("default/validation/0000.parquet", parquet_bytes(first)),
    ];
    let main = vec![("README.md", b"# TinyStories".to_vec()), ("loader.py", b"import datasets".to_vec())];
    let hub = FakeHub::new(REPO, &[("main", main), ("refs/convert/parquet", conversion)]);
    hub.failures_left.lock().unwrap().insert("default/train/0001.parquet".into(), 2);
    let hub = Arc::new(hub);
    let (endpoint, server) = Arc::clone(&hub).serve();
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
    shut_down(&endpoint, server);
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

fn zst(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
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
        ("data/CC-MAIN-2024-10/000_00000.parquet", parquet_bytes(&part(4))),
        ("sample/10BT/000_00000.parquet", parquet_bytes(&part(5))),
        ("sample/10BT/001_00000.parquet", parquet_bytes(&part(6))),
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
        ("train/chunk1/example_train_0.jsonl.zst", zst(&jsonl(&part(0)))),
        ("train/chunk2/example_train_0.jsonl.zst", zst(&jsonl(&part(7)))),
        ("validation/chunk1/example_holdout_0.jsonl.zst", zst(&jsonl(&part(2)))),
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
        ("default/partial-train/0000.parquet", parquet_bytes(&part(4))),
        ("default/partial-train/0001.parquet", parquet_bytes(&part(6))),
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
        let hub = FakeHub::new(layout.repo, &layout.revisions);
        // One shard's first full download is cut off halfway: retried, not kept.
        hub.cut_once.lock().unwrap().push(layout.cut.into());
        let hub = Arc::new(hub);
        let (endpoint, server) = Arc::clone(&hub).serve();
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
        shut_down(&endpoint, server);
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
    let hub = Arc::new(FakeHub::new("allenai/c4", &[("main", files)]));
    let (endpoint, server) = Arc::clone(&hub).serve();
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
    shut_down(&endpoint, server);
}

#[test]
fn a_tokenizer_named_by_its_model_repository_is_cached_and_read_offline() {
    let trained = hrm_data::HfTokenizer::train_bpe(documents(60).into_iter(), 300).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = hrm_data::AnyTokenizer::Hf(trained).save_to_dir(dir.path()).unwrap();
    let hub = Arc::new(FakeHub::new("gpt2", &[("main", vec![("tokenizer.json", std::fs::read(&file).unwrap())])]));
    let (endpoint, server) = Arc::clone(&hub).serve();
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
    shut_down(&endpoint, server);
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
