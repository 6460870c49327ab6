//! Hugging Face Hub datasets: parquet shards listed and fetched with `hf-hub`, cached in the
//! Hub's own layout (`$HF_HOME/hub/datasets--org--name/{refs,snapshots,blobs}`), readable
//! offline with `HF_HUB_OFFLINE=1`, retried with exponential backoff on transient errors.

use std::path::PathBuf;
use std::time::Duration;

use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// The revision where the Hub keeps every dataset converted to parquet.
pub const PARQUET_REVISION: &str = "refs/convert/parquet";

/// A dataset split on the Hub, e.g. `allenai/c4`, config `en`, split `train`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubDataset {
    /// Repository id, `org/name`.
    pub repo: String,
    /// Dataset config (subset), e.g. `en` or `default`.
    #[serde(default = "default_config")]
    pub config: String,
    /// Split, e.g. `train` or `validation`.
    #[serde(default = "default_split")]
    pub split: String,
    /// Revision holding `{config}/{split}/*.parquet`.
    #[serde(default = "default_revision")]
    pub revision: String,
}

fn default_config() -> String {
    "default".into()
}
fn default_split() -> String {
    "train".into()
}
fn default_revision() -> String {
    PARQUET_REVISION.into()
}

/// How to reach the Hub: endpoint, cache, token, offline mode and retries.
#[derive(Debug, Clone, PartialEq)]
pub struct HubOptions {
    /// Base URL (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub endpoint: String,
    /// Cache root (`$HF_HOME/hub`, default `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// Access token (`HF_TOKEN`).
    pub token: Option<String>,
    /// Read from the cache only (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Attempts after the first for transient failures.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry, capped at 30 s.
    pub retry_base: Duration,
}

impl HubOptions {
    /// Options from the environment, as the Python `huggingface_hub` reads them.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let cache_dir = match var("HF_HOME") {
            Some(home) => PathBuf::from(home).join("hub"),
            None => Cache::default().path().clone(),
        };
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes"));
        Self {
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into()),
            cache_dir,
            token: var("HF_TOKEN").or_else(|| var("HUGGING_FACE_HUB_TOKEN")),
            offline,
            max_retries: 5,
            retry_base: Duration::from_millis(500),
        }
    }

    fn api_repo(&self, dataset: &HubDataset) -> Result<ApiRepo> {
        let api = ApiBuilder::from_cache(Cache::new(self.cache_dir.clone()))
            .with_endpoint(self.endpoint.clone())
            .with_token(self.token.clone())
            .with_progress(false)
            .build()
            .map_err(|e| hub_error(dataset, e))?;
        Ok(api.repo(dataset.hf_repo()))
    }

    /// Runs `attempt` until it succeeds, fails permanently, or runs out of retries.
    fn with_retries<T>(
        &self,
        dataset: &HubDataset,
        what: &str,
        mut attempt: impl FnMut() -> std::result::Result<T, ApiError>,
    ) -> Result<T> {
        let mut delay = self.retry_base;
        for retry in 0..=self.max_retries {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(e) if is_transient(&e) && retry < self.max_retries => {
                    tracing::warn!(repo = %dataset.repo, %what, error = %e, ?delay, "transient Hub error, retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(hub_error(dataset, format!("{what}: {e}"))),
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// Network failures, rate limits and server errors are worth retrying; other 4xx are not.
fn is_transient(e: &ApiError) -> bool {
    match e {
        ApiError::RequestError(inner) => match inner.as_ref() {
            ureq::Error::Status(code, _) => *code == 429 || *code >= 500,
            ureq::Error::Transport(_) => true,
        },
        ApiError::IoError(_) | ApiError::TooManyRetries(_) => true,
        _ => false,
    }
}

fn hub_error(dataset: &HubDataset, message: impl ToString) -> DataError {
    DataError::Hub { repo: dataset.repo.clone(), message: message.to_string() }
}

/// One parquet shard of a Hub dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubShard {
    /// The dataset.
    pub dataset: HubDataset,
    /// Path inside the repository, e.g. `en/train/0000.parquet`.
    pub filename: String,
}

impl HubDataset {
    fn hf_repo(&self) -> Repo {
        Repo::with_revision(self.repo.clone(), RepoType::Dataset, self.revision.clone())
    }

    fn prefix(&self) -> String {
        format!("{}/{}/", self.config, self.split)
    }

    /// The split's parquet shards in order: listed by the Hub, or, offline, from the cache.
    pub fn shards(&self, options: &HubOptions) -> Result<Vec<HubShard>> {
        let prefix = self.prefix();
        let mut names: Vec<String> = if options.offline {
            self.cached_files(options)?
        } else {
            let repo = options.api_repo(self)?;
            let info = options.with_retries(self, "listing files", || repo.info())?;
            info.siblings.into_iter().map(|s| s.rfilename).collect()
        };
        names.retain(|n| n.starts_with(&prefix) && n.ends_with(".parquet"));
        names.sort();
        if names.is_empty() {
            let where_ = if options.offline { "in the cache (HF_HUB_OFFLINE=1)" } else { "on the Hub" };
            return Err(hub_error(
                self,
                format!("no parquet shards under `{prefix}` at revision `{}` {where_}", self.revision),
            ));
        }
        Ok(names.into_iter().map(|filename| HubShard { dataset: self.clone(), filename }).collect())
    }

    /// Files of the cached snapshot of this revision, relative to the snapshot root.
    fn cached_files(&self, options: &HubOptions) -> Result<Vec<String>> {
        let repo_dir = options.cache_dir.join(format!("datasets--{}", self.repo.replace('/', "--")));
        let ref_path = repo_dir.join("refs").join(&self.revision);
        let commit = std::fs::read_to_string(&ref_path).map_err(|_| {
            hub_error(
                self,
                format!(
                    "HF_HUB_OFFLINE=1 but revision `{}` is not cached ({} missing)",
                    self.revision,
                    ref_path.display()
                ),
            )
        })?;
        let root = repo_dir.join("snapshots").join(commit.trim());
        let mut files = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(|e| DataError::io(&dir, e))? {
                let path = entry.map_err(|e| DataError::io(&dir, e))?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&root) {
                    files.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        Ok(files)
    }
}

impl HubShard {
    /// The file's path in the local Hub cache, if it is there.
    pub fn cached(&self, options: &HubOptions) -> Option<PathBuf> {
        Cache::new(options.cache_dir.clone()).repo(self.dataset.hf_repo()).get(&self.filename)
    }

    /// The shard's local path, downloading it into the cache unless it is there already.
    pub fn fetch(&self, options: &HubOptions) -> Result<PathBuf> {
        if let Some(path) = self.cached(options) {
            return Ok(path);
        }
        if options.offline {
            return Err(hub_error(&self.dataset, format!("HF_HUB_OFFLINE=1 and `{}` is not cached", self.filename)));
        }
        let repo = options.api_repo(&self.dataset)?;
        tracing::info!(repo = %self.dataset.repo, file = %self.filename, "downloading shard");
        options
            .with_retries(&self.dataset, &format!("downloading `{}`", self.filename), || repo.download(&self.filename))
    }
}
