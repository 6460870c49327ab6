//! Hub streaming against a loopback server that serves a dataset in the Hub's layout:
//! listing, download with range requests, the cache layout, retries, and offline mode.

mod common;

use std::collections::HashMap;
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
const REVISION_IN_URL: &str = "refs%2Fconvert%2Fparquet";

/// A minimal Hub: `/api/datasets/{repo}/revision/{rev}` and `/datasets/{repo}/resolve/{rev}/{file}`.
struct FakeHub {
    files: HashMap<String, Vec<u8>>,
    requests: AtomicUsize,
    /// Requests answered 503 before the first success, per file (transient-failure injection).
    failures_left: Mutex<HashMap<String, usize>>,
    saw_token: Mutex<bool>,
}

impl FakeHub {
    fn serve(self: Arc<Self>) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                if !self.answer(stream) {
                    break;
                }
            }
        });
        (address, handle)
    }

    /// Answers one request; false on the `/shutdown` request.
    fn answer(&self, mut stream: TcpStream) -> bool {
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
        let info_path = format!("/api/datasets/{REPO}/revision/{REVISION_IN_URL}");
        let resolve_prefix = format!("/datasets/{REPO}/resolve/{REVISION_IN_URL}/");
        if path == info_path {
            let siblings: Vec<_> = self.files.keys().map(|f| serde_json::json!({ "rfilename": f })).collect();
            let body = serde_json::json!({ "sha": SHA, "siblings": siblings }).to_string();
            respond(&mut stream, "200 OK", &[("content-type", "application/json".into())], body.as_bytes());
        } else if let Some(file) = path.strip_prefix(&resolve_prefix) {
            let Some(bytes) = self.files.get(file) else {
                respond(&mut stream, "404 Not Found", &[], b"not found");
                return true;
            };
            if let Some(left) = self.failures_left.lock().unwrap().get_mut(file).filter(|n| **n > 0) {
                *left -= 1;
                respond(&mut stream, "503 Service Unavailable", &[], b"try later");
                return true;
            }
            let range = headers.get("range").and_then(|r| r.strip_prefix("bytes=")).unwrap_or("0-");
            let (start, end) = range.split_once('-').unwrap();
            let start: usize = start.parse().unwrap();
            let end: usize = if end.is_empty() { bytes.len() - 1 } else { end.parse().unwrap() };
            let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(bytes));
            let extra = [
                ("x-repo-commit", SHA.to_string()),
                ("etag", etag),
                ("content-range", format!("bytes {start}-{end}/{}", bytes.len())),
            ];
            respond(&mut stream, "206 Partial Content", &extra, &bytes[start..=end]);
        } else {
            respond(&mut stream, "404 Not Found", &[], b"unknown path");
        }
        true
    }
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

fn read_all(options: &HubOptions, dataset: &HubDataset) -> hrm_data::Result<Vec<String>> {
    let spec = SourceSpec { hub: Some(dataset.clone()), path: None, ..SourceSpec::local("tinystories", "") };
    let mut source = FileSource::open(&spec, Path::new("."), options, false)?;
    let mut docs = Vec::new();
    while let Some(doc) = source.next_document()? {
        docs.push(doc);
    }
    Ok(docs)
}

#[test]
fn streams_two_shards_caches_them_and_reads_offline() {
    let scratch = tempfile::tempdir().unwrap();
    let docs = stories();
    let (first, second) = docs.split_at(docs.len() / 2);
    let mut files = HashMap::new();
    for (name, part) in [("default/train/0000.parquet", first), ("default/train/0001.parquet", second)] {
        let path = scratch.path().join("shard.parquet");
        write_parquet(&path, "text", part, 40);
        files.insert(name.to_string(), std::fs::read(&path).unwrap());
    }
    files.insert("default/validation/0000.parquet".into(), files["default/train/0000.parquet"].clone());
    let failures = HashMap::from([("default/train/0001.parquet".to_string(), 2)]);
    let hub = Arc::new(FakeHub {
        files,
        requests: AtomicUsize::new(0),
        failures_left: Mutex::new(failures),
        saw_token: Mutex::new(false),
    });
    let (endpoint, server) = Arc::clone(&hub).serve();

    let cache = tempfile::tempdir().unwrap();
    let options = HubOptions {
        endpoint: endpoint.clone(),
        cache_dir: cache.path().to_path_buf(),
        token: Some("test-token".into()),
        offline: false,
        max_retries: 3,
        retry_base: Duration::from_millis(10),
    };
    let dataset: HubDataset = serde_json::from_value(serde_json::json!({ "repo": REPO })).unwrap();
    assert_eq!(
        (dataset.config.as_str(), dataset.split.as_str(), dataset.revision.as_str()),
        ("default", "train", "refs/convert/parquet")
    );

    // First run: lists the split, downloads both shards (the second after two 503s), in order.
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

    // Second run offline: the cache alone, no request reaches the server.
    let offline = HubOptions { offline: true, ..options.clone() };
    assert_eq!(read_all(&offline, &dataset).unwrap(), docs);
    assert_eq!(hub.requests.load(Ordering::SeqCst), requests_after_first);

    // Offline, an uncached split is a clear error; online it downloads.
    let validation = HubDataset { split: "validation".into(), ..dataset.clone() };
    let err = read_all(&offline, &validation).unwrap_err();
    assert!(matches!(err, DataError::Hub { .. }) && err.to_string().contains("HF_HUB_OFFLINE=1"), "{err}");
    assert_eq!(read_all(&options, &validation).unwrap(), first);
    // A split the repo does not have.
    let missing = HubDataset { split: "test".into(), ..dataset.clone() };
    let err = read_all(&options, &missing).unwrap_err().to_string();
    assert!(err.contains("no parquet shards under `default/test/`"), "{err}");

    let _ = TcpStream::connect(endpoint.trim_start_matches("http://"))
        .and_then(|mut s| s.write_all(b"GET /shutdown HTTP/1.1\r\n\r\n"));
    server.join().unwrap();
}

#[test]
fn an_unreachable_hub_fails_after_its_retries() {
    // A port nothing listens on: connection refused is transient, so it is retried, then reported.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let cache = tempfile::tempdir().unwrap();
    let options = HubOptions {
        endpoint,
        cache_dir: cache.path().to_path_buf(),
        token: None,
        offline: false,
        max_retries: 2,
        retry_base: Duration::from_millis(5),
    };
    let dataset: HubDataset = serde_json::from_value(serde_json::json!({ "repo": REPO })).unwrap();
    let err = read_all(&options, &dataset).unwrap_err();
    assert!(matches!(&err, DataError::Hub { repo, .. } if repo == REPO), "{err}");
}
