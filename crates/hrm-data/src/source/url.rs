//! A file on the web by its address (a book on Project Gutenberg, a file pinned to a commit on
//! GitHub): downloaded once into the cache beside the Hub's, read from there afterwards and
//! offline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::hub::HubOptions;
use crate::error::{DataError, Result};

/// One web file, as a source's `url` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlFile {
    /// The address, `http://` or `https://`.
    pub url: String,
}

/// Why one download attempt failed, and whether another may succeed.
struct Attempt {
    message: String,
    transient: bool,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl UrlFile {
    /// Checks that `url` is an http(s) address whose last segment names a format we read.
    pub fn new(url: &str) -> Result<Self> {
        let file = Self { url: url.to_string() };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(DataError::config("url", url, "must start with https:// or http://"));
        }
        super::Format::of(Path::new(file.file_name())).ok_or_else(|| DataError::UnknownFormat { path: url.into() })?;
        Ok(file)
    }

    /// The address's last path segment (query and fragment left off).
    pub fn file_name(&self) -> &str {
        let path = self.url.split(['?', '#']).next().unwrap_or_default();
        path.rsplit('/').next().unwrap_or_default()
    }

    /// Where the download is kept: `hrm-urls/{hash of the address}/{file name}` beside the Hub
    /// cache (`$HF_HOME/hrm-urls/` for the usual `$HF_HOME/hub`), else inside the cache folder.
    pub fn cache_path(&self, options: &HubOptions) -> PathBuf {
        let cache = &options.cache_dir;
        let root = match cache.parent() {
            Some(home) if cache.file_name().is_some_and(|name| name == "hub") => home,
            _ => cache,
        };
        let key = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(self.url.as_bytes()));
        root.join("hrm-urls").join(key).join(self.file_name())
    }

    /// The cached copy, else a download into the cache (whole, checked against its
    /// `Content-Length`, renamed into place, so a reader never sees part of it) with retries;
    /// offline, the cached copy or an error.
    pub fn fetch(&self, options: &HubOptions) -> Result<PathBuf> {
        let path = self.cache_path(options);
        if path.is_file() {
            return Ok(path);
        }
        if options.offline {
            return Err(self.error("HF_HUB_OFFLINE=1 and it was never downloaded"));
        }
        let dir = path.parent().expect("cache path has a folder");
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        tracing::info!(url = %self.url, "downloading");
        // A name of this download's own: ranks of one run may fetch the same file at once.
        static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = DOWNLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial = path.with_extension(format!("{}-{n}.part", std::process::id()));
        let fetched =
            options.with_retries(&self.url, "download", |a: &Attempt| a.transient, || self.download(&partial));
        if let Err(e) = fetched {
            let _ = std::fs::remove_file(&partial);
            return Err(match e {
                DataError::Hub { message, .. } => self.error(&message),
                other => other,
            });
        }
        std::fs::rename(&partial, &path).map_err(|e| DataError::io(&path, e))?;
        Ok(path)
    }

    /// One attempt: the whole body into `partial`.
    fn download(&self, partial: &Path) -> std::result::Result<(), Attempt> {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(300)).build();
        let response = agent.get(&self.url).call().map_err(|e| match e {
            ureq::Error::Status(status, _) => {
                Attempt { message: format!("HTTP {status}"), transient: status == 429 || status >= 500 }
            }
            ureq::Error::Transport(t) => Attempt { message: t.to_string(), transient: true },
        })?;
        let expected: Option<u64> = response.header("content-length").and_then(|v| v.parse().ok());
        let io = |e: std::io::Error| Attempt { message: format!("{}: {e}", partial.display()), transient: true };
        let mut out = std::fs::File::create(partial).map_err(io)?;
        let received = std::io::copy(&mut response.into_reader(), &mut out).map_err(io)?;
        out.sync_all().map_err(io)?;
        match expected {
            Some(expected) if expected != received => Err(Attempt {
                message: format!("the download ended after {received} of {expected} bytes"),
                transient: true,
            }),
            _ => Ok(()),
        }
    }

    fn error(&self, message: &str) -> DataError {
        DataError::Download { url: self.url.clone(), message: message.to_string() }
    }
}
