//! A loopback Hugging Face Hub for tests: it answers as the real Hub does for the requests hrm
//! makes. Dataset and model repositories at several revisions (`main`,
//! `refs/convert/parquet`): the tree API in pages with a `Link: <…>; rel="next"` header
//! (directories listed too), `resolve/` answering 302 with `x-repo-commit` and `x-linked-etag`
//! to a CDN path that serves byte ranges, 404s with the Hub's JSON error; plain web files under
//! `/web/`; injected 503s and downloads cut short.

pub mod shard;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The commit every revision resolves to.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A revision's files: path in the repository and bytes.
pub type Files = Vec<(&'static str, Vec<u8>)>;

/// The loopback Hub: its repositories and web files, and what the tests inject and observe.
#[derive(Default)]
pub struct FakeHub {
    /// Files of each repository (`org/name` or `name`) at each revision.
    repos: HashMap<String, HashMap<String, BTreeMap<String, Vec<u8>>>>,
    /// Files served under `/web/`.
    web: BTreeMap<String, Vec<u8>>,
    /// Entries per page of a tree listing.
    page_size: usize,
    /// Requests answered so far (the shutdown request left out).
    pub requests: AtomicUsize,
    /// Requests for a file answered 503 before the first success (transient-failure injection).
    pub failures_left: Mutex<HashMap<String, usize>>,
    /// Files whose next full download sends half its bytes and closes.
    pub cut_once: Mutex<Vec<String>>,
    /// Whether a request carried `Authorization: Bearer test-token`.
    pub saw_token: Mutex<bool>,
}

/// A running server: its address, stopped when dropped.
pub struct Served {
    /// `http://127.0.0.1:PORT`, what `HF_ENDPOINT` is set to.
    pub endpoint: String,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"))
            .and_then(|mut s| s.write_all(b"GET /shutdown HTTP/1.1\r\n\r\n"));
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl FakeHub {
    /// A Hub with no repository, listing trees three entries a page.
    pub fn new() -> Self {
        Self { page_size: 3, ..Self::default() }
    }

    /// Adds a repository with its files at each revision.
    pub fn repo(mut self, name: &str, revisions: &[(&str, Files)]) -> Self {
        let revisions = revisions
            .iter()
            .map(|(rev, files)| (rev.to_string(), files.iter().map(|(f, b)| (f.to_string(), b.clone())).collect()))
            .collect();
        self.repos.insert(name.to_string(), revisions);
        self
    }

    /// Adds a repository whose files are all at `main`.
    pub fn main(self, name: &str, files: Files) -> Self {
        self.repo(name, &[("main", files)])
    }

    /// Adds a web file, served at `{endpoint}/web/{path}`.
    pub fn web_file(mut self, path: &str, bytes: Vec<u8>) -> Self {
        self.web.insert(path.to_string(), bytes);
        self
    }

    /// Serves on a free loopback port from a thread of its own.
    pub fn serve(self: Arc<Self>) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
        let base = endpoint.clone();
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                if !self.answer(stream, &base) {
                    break;
                }
            }
        });
        Served { endpoint, handle: Some(handle) }
    }

    /// The number of requests answered so far.
    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Answers one request; false on the `/shutdown` request.
    fn answer(&self, mut stream: TcpStream, base: &str) -> bool {
        let (path, headers) = read_request(&stream);
        if path == "/shutdown" {
            return false;
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        if headers.get("authorization").is_some_and(|v| v == "Bearer test-token") {
            *self.saw_token.lock().unwrap() = true;
        }
        if let Some(file) = path.strip_prefix("/web/") {
            self.web(&mut stream, file);
        } else if let Some(file) = path.strip_prefix(&format!("/cdn/{SHA}/")) {
            self.cdn(&mut stream, file, &headers);
        } else if let Some((repo, rest)) = self.route(&path, "/api/datasets/", "/tree/") {
            self.tree_page(&mut stream, repo, rest, base);
        } else if let Some((repo, rest)) =
            self.route(&path, "/datasets/", "/resolve/").or_else(|| self.route(&path, "/", "/resolve/"))
        {
            self.resolve(&mut stream, repo, rest, base);
        } else {
            not_found(&mut stream, "Repository not found");
        }
        true
    }

    /// The repository and the rest of `path` when it reads `{prefix}{repo}{verb}{rest}`.
    fn route<'a>(&self, path: &'a str, prefix: &str, verb: &str) -> Option<(&str, &'a str)> {
        let after = path.strip_prefix(prefix)?;
        self.repos.keys().find_map(|repo| Some((repo.as_str(), after.strip_prefix(repo.as_str())?.strip_prefix(verb)?)))
    }

    fn files(&self, repo: &str, revision: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
        self.repos.get(repo)?.get(&revision.replace("%2F", "/"))
    }

    /// A page of `GET /api/datasets/{repo}/tree/{rev}?recursive=true[&cursor=N]`.
    fn tree_page(&self, stream: &mut TcpStream, repo: &str, rest: &str, base: &str) {
        let (revision, query) = rest.split_once('?').unwrap_or((rest, ""));
        let Some(files) = self.files(repo, revision) else {
            return not_found(stream, &format!("Invalid rev id: {revision}"));
        };
        let entries = tree_entries(files);
        let cursor: usize = query.split('&').find_map(|q| q.strip_prefix("cursor=")).map_or(0, |c| c.parse().unwrap());
        let end = (cursor + self.page_size).min(entries.len());
        let mut extra = vec![("content-type", "application/json".to_string())];
        if end < entries.len() {
            let next = format!("{base}/api/datasets/{repo}/tree/{revision}?recursive=true&expand=false&cursor={end}");
            extra.push(("link", format!("<{next}>; rel=\"next\"")));
        }
        let body = serde_json::to_string(&entries[cursor..end]).unwrap();
        respond(stream, "200 OK", &extra, body.as_bytes());
    }

    /// `GET /[datasets/]{repo}/resolve/{rev}/{file}`: a redirect to the CDN, as for LFS files.
    fn resolve(&self, stream: &mut TcpStream, repo: &str, rest: &str, base: &str) {
        let (revision, file) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(bytes) = self.files(repo, revision).and_then(|files| files.get(file)) else {
            return not_found(stream, "Entry not found");
        };
        if self.fails_now(file) {
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

    /// The CDN: byte ranges of any repository's file (the same bytes at every revision here).
    fn cdn(&self, stream: &mut TcpStream, file: &str, headers: &HashMap<String, String>) {
        let found = self.repos.values().flat_map(|revisions| revisions.values()).find_map(|files| files.get(file));
        let Some(bytes) = found else {
            return not_found(stream, "no such object");
        };
        let range = headers.get("range").and_then(|r| r.strip_prefix("bytes=")).unwrap_or("0-");
        let (start, end) = range.split_once('-').unwrap();
        let start: usize = start.parse().unwrap();
        let end: usize =
            if end.is_empty() { bytes.len() - 1 } else { end.parse::<usize>().unwrap().min(bytes.len() - 1) };
        let content_range = ("content-range", format!("bytes {start}-{end}/{}", bytes.len()));
        self.send(stream, "206 Partial Content", &[content_range], file, &bytes[start..=end]);
    }

    /// `GET /web/{path}`: the whole file.
    fn web(&self, stream: &mut TcpStream, file: &str) {
        let Some(bytes) = self.web.get(file) else {
            return respond(stream, "404 Not Found", &[], b"404: Not Found");
        };
        if self.fails_now(file) {
            return respond(stream, "503 Service Unavailable", &[], b"try later");
        }
        self.send(stream, "200 OK", &[], file, bytes);
    }

    /// Sends `body`, or half of it and a closed connection when `file` is due to be cut.
    fn send(&self, stream: &mut TcpStream, status: &str, headers: &[(&str, String)], file: &str, body: &[u8]) {
        let mut cut = self.cut_once.lock().unwrap();
        if body.len() > 1 && cut.iter().any(|f| f == file) {
            cut.retain(|f| f != file);
            stream.write_all(head(status, headers, body.len()).as_bytes()).unwrap();
            let _ = stream.write_all(&body[..body.len() / 2]);
            return;
        }
        respond(stream, status, headers, body);
    }

    /// Whether this request for `file` is one of its injected 503s.
    fn fails_now(&self, file: &str) -> bool {
        let mut failures = self.failures_left.lock().unwrap();
        match failures.get_mut(file).filter(|n| **n > 0) {
            Some(left) => {
                *left -= 1;
                true
            }
            None => false,
        }
    }
}

/// The request's path and lower-cased headers.
fn read_request(stream: &TcpStream) -> (String, HashMap<String, String>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap_or_default();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or_default() == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    (request_line.split_whitespace().nth(1).unwrap_or("/").to_string(), headers)
}

/// The tree listing's entries: each folder once, before the first file in it, then the file.
fn tree_entries(files: &BTreeMap<String, Vec<u8>>) -> Vec<serde_json::Value> {
    let mut entries = Vec::new();
    let mut folders = BTreeSet::new();
    for (name, bytes) in files {
        let parts: Vec<&str> = name.split('/').collect();
        for depth in 1..parts.len() {
            let folder = parts[..depth].join("/");
            if folders.insert(folder.clone()) {
                entries.push(serde_json::json!({ "type": "directory", "oid": SHA, "size": 0, "path": folder }));
            }
        }
        entries.push(serde_json::json!({ "type": "file", "oid": SHA, "size": bytes.len(), "path": name }));
    }
    entries
}

/// A 404 with the Hub's JSON error body.
fn not_found(stream: &mut TcpStream, error: &str) {
    let body = serde_json::json!({ "error": error }).to_string();
    respond(stream, "404 Not Found", &[("content-type", "application/json".into())], body.as_bytes());
}

fn head(status: &str, headers: &[(&str, String)], length: usize) -> String {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {length}\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head + "\r\n"
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let _ = stream.write_all(head(status, headers, body.len()).as_bytes());
    let _ = stream.write_all(body);
}
