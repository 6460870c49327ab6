//! Hugging Face Hub datasets named as users name them (repository, config, split, an optional
//! `data_files` pattern): the repository's files listed through the tree API
//! ([`super::hub_tree`]), the split's shards picked from them ([`super::hub_layout`]) or, for
//! a repository without data files hrm reads, from the parquet conversion; fetched with
//! `hf-hub` into the Hub's own cache layout (`$HF_HOME/hub/datasets--org--name/{refs,
//! snapshots,blobs}`), readable offline with `HF_HUB_OFFLINE=1`, retried with exponential
//! backoff on transient errors.

use std::path::PathBuf;
use std::time::Duration;

use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};
use serde::{Deserialize, Serialize};

use super::hub_layout::{self, RepoFiles};
use super::hub_tree;
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
    /// The files to read, as a glob from the repository root (e.g. `en/c4-train.*.json.gz`,
    /// `sample/10BT/*.parquet`); by default the files named for the split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_files: Option<String>,
    /// The repository's revision (branch, tag or commit); `refs/convert/parquet` reads the
    /// parquet conversion only.
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
    "main".into()
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
    /// The local data folder (`HRM_LOCAL_DATA`): sources and tokenizers with a `local` copy
    /// read it from under this folder instead of the Hub or the web.
    pub local_data: Option<PathBuf>,
}

impl HubOptions {
    /// Options from the environment, as the Python `huggingface_hub` reads them, and the local
    /// data folder from `HRM_LOCAL_DATA`.
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
            local_data: var("HRM_LOCAL_DATA").map(PathBuf::from),
        }
    }

    /// Where a source's or tokenizer's `local` copy lies: under [`HubOptions::local_data`],
    /// when both are given (then it is read instead of the Hub or the web, and must exist).
    pub fn local_copy(&self, local: Option<&str>) -> Option<PathBuf> {
        Some(self.local_data.as_ref()?.join(local?))
    }

    fn api_repo(&self, repo: Repo) -> Result<ApiRepo> {
        let name = repo.url();
        let api = ApiBuilder::from_cache(Cache::new(self.cache_dir.clone()))
            .with_endpoint(self.endpoint.clone())
            .with_token(self.token.clone())
            .with_progress(false)
            .build()
            .map_err(|e| hub_error(&name, e))?;
        Ok(api.repo(repo))
    }

    /// Runs `attempt` until it succeeds, fails permanently (`transient` says which errors are
    /// worth retrying), or runs out of retries.
    pub(crate) fn with_retries<T, E: std::fmt::Display>(
        &self,
        repo: &str,
        what: &str,
        transient: impl Fn(&E) -> bool,
        mut attempt: impl FnMut() -> std::result::Result<T, E>,
    ) -> Result<T> {
        let mut delay = self.retry_base;
        for retry in 0..=self.max_retries {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(e) if transient(&e) && retry < self.max_retries => {
                    tracing::warn!(%repo, %what, error = %e, ?delay, "transient Hub error, retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(hub_error(repo, format!("{what}: {e}"))),
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

pub(crate) fn hub_error(repo: &str, message: impl ToString) -> DataError {
    DataError::Hub { repo: repo.to_string(), message: message.to_string() }
}

/// One parquet shard of a Hub dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubShard {
    /// The dataset.
    pub dataset: HubDataset,
    /// Path inside the repository, e.g. `en/c4-train.00000-of-01024.json.gz`.
    pub filename: String,
}

impl HubDataset {
    fn hf_repo(&self) -> Repo {
        Repo::with_revision(self.repo.clone(), RepoType::Dataset, self.revision.clone())
    }

    /// The split's shards in order: the repository's own files (the `data_files` pattern's,
    /// or those named for the split), else the parquet conversion's; offline, from the cache.
    pub fn shards(&self, options: &HubOptions) -> Result<Vec<HubShard>> {
        if self.revision == PARQUET_REVISION {
            return self.converted_shards(options);
        }
        if options.offline && self.cached_commit(options, &self.revision).is_none() {
            // Only the conversion was ever fetched (or nothing: its error says so).
            return self.converted_shards(options);
        }
        let files = self.files_at(options, &self.revision)?;
        if let Some(pattern) = &self.data_files {
            return self.pattern_shards(&files, pattern);
        }
        match hub_layout::split_files(&files, &self.config, &self.split) {
            RepoFiles::Found(found) => Ok(self.shards_at(&self.revision, found)),
            RepoFiles::NoDataFiles => self.converted_shards(options),
            RepoFiles::UnknownConfig(folders) => Err(hub_error(
                &self.repo,
                format!(
                    "no config `{}` at `{}`: its data files are under {} (a config is one of those folders)",
                    self.config,
                    self.revision,
                    if folders.is_empty() {
                        "the root, config `default`".to_string()
                    } else {
                        folders.join("/, ") + "/"
                    }
                ),
            )),
            RepoFiles::NoSplit(splits) => Err(hub_error(
                &self.repo,
                format!(
                    "no files of split `{}` in config `{}` at `{}` (its files name the splits {}); set `split`, or `data_files`",
                    self.split,
                    self.config,
                    self.revision,
                    splits.join(", ")
                ),
            )),
        }
    }

    /// The readable files among `files` that the `data_files` glob `pattern` matches.
    fn pattern_shards(&self, files: &[String], pattern: &str) -> Result<Vec<HubShard>> {
        let matched = hub_layout::matching(files, pattern)
            .ok_or_else(|| hub_error(&self.repo, format!("`data_files = {pattern:?}` is not a glob pattern")))?;
        let readable: Vec<String> = matched.iter().filter(|f| hub_layout::is_data_file(f)).cloned().collect();
        if readable.is_empty() {
            let what =
                if matched.is_empty() { "no file" } else { "no file hrm reads (.txt, .jsonl[.gz|.zst], .parquet)" };
            let sample = files.iter().filter(|f| hub_layout::is_data_file(f)).take(3).cloned().collect::<Vec<_>>();
            return Err(hub_error(
                &self.repo,
                format!(
                    "`data_files = {pattern:?}` matches {what} at `{}`; data files there include {sample:?}",
                    self.revision
                ),
            ));
        }
        Ok(self.shards_at(&self.revision, readable))
    }

    /// The split's shards in the parquet conversion (`partial-` folders included).
    fn converted_shards(&self, options: &HubOptions) -> Result<Vec<HubShard>> {
        let files = self.files_at(options, PARQUET_REVISION)?;
        let found = hub_layout::converted_files(&files, &self.config, &self.split);
        if found.is_empty() {
            let configs = hub_layout::top_folders(&files);
            let where_ = if options.offline { "in the cache (HF_HUB_OFFLINE=1)" } else { "on the Hub" };
            return Err(hub_error(
                &self.repo,
                format!(
                    "no parquet shards under `{0}/{1}/` or `{0}/partial-{1}/` at revision `{PARQUET_REVISION}` {where_} (configs there: {2})",
                    self.config,
                    self.split,
                    if configs.is_empty() { "none".to_string() } else { configs.join(", ") }
                ),
            ));
        }
        Ok(self.shards_at(PARQUET_REVISION, found))
    }

    /// The repository's files at `revision`: listed by the Hub, or, offline, the cached ones.
    fn files_at(&self, options: &HubOptions, revision: &str) -> Result<Vec<String>> {
        if options.offline {
            self.cached_files(options, revision)
        } else {
            hub_tree::list_files(options, self, revision)
        }
    }

    /// `files` as shards fetched at `revision`.
    fn shards_at(&self, revision: &str, files: Vec<String>) -> Vec<HubShard> {
        let dataset = HubDataset { revision: revision.to_string(), ..self.clone() };
        files.into_iter().map(|filename| HubShard { dataset: dataset.clone(), filename }).collect()
    }

    /// The cache's folder of this repository.
    fn cache_dir(&self, options: &HubOptions) -> PathBuf {
        options.cache_dir.join(format!("datasets--{}", self.repo.replace('/', "--")))
    }

    /// The commit the cache holds for `revision`, if any.
    fn cached_commit(&self, options: &HubOptions, revision: &str) -> Option<String> {
        let commit = std::fs::read_to_string(self.cache_dir(options).join("refs").join(revision)).ok()?;
        Some(commit.trim().to_string())
    }

    /// Files of the cached snapshot of `revision`, relative to the snapshot root.
    fn cached_files(&self, options: &HubOptions, revision: &str) -> Result<Vec<String>> {
        let commit = self.cached_commit(options, revision).ok_or_else(|| {
            let missing = self.cache_dir(options).join("refs").join(revision);
            hub_error(
                &self.repo,
                format!("HF_HUB_OFFLINE=1 but revision `{revision}` is not cached ({} missing)", missing.display()),
            )
        })?;
        let root = self.cache_dir(options).join("snapshots").join(commit);
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

/// A file of a model repository (`gpt2`, `google-t5/t5-small`) at `main`: the cached copy,
/// else downloaded into the cache (the Hub's layout, `models--org--name/`); offline, the
/// cached copy or an error saying so.
pub fn model_file(options: &HubOptions, repo: &str, file: &str) -> Result<PathBuf> {
    let hf_repo = Repo::with_revision(repo.to_string(), RepoType::Model, "main".into());
    let what = format!("downloading `{file}` (is `{repo}` a model repository with a {file}?)");
    fetch(options, hf_repo, repo, file, &what)
}

/// `file` of `hf_repo` (named `name` in errors): the cached copy, else downloaded into the
/// cache with retries (`what` says what the download is); offline, the cached copy or an
/// error saying it is not cached.
fn fetch(options: &HubOptions, hf_repo: Repo, name: &str, file: &str, what: &str) -> Result<PathBuf> {
    if let Some(path) = Cache::new(options.cache_dir.clone()).repo(hf_repo.clone()).get(file) {
        return Ok(path);
    }
    if options.offline {
        return Err(hub_error(name, format!("HF_HUB_OFFLINE=1 and `{file}` is not cached")));
    }
    let api = options.api_repo(hf_repo)?;
    tracing::info!(repo = %name, %file, "downloading");
    options.with_retries(name, what, is_transient, || api.download(file))
}

impl HubShard {
    /// The file's path in the local Hub cache, if it is there.
    pub fn cached(&self, options: &HubOptions) -> Option<PathBuf> {
        Cache::new(options.cache_dir.clone()).repo(self.dataset.hf_repo()).get(&self.filename)
    }

    /// The shard's local path, downloading it into the cache unless it is there already.
    pub fn fetch(&self, options: &HubOptions) -> Result<PathBuf> {
        let what = format!("downloading `{}`", self.filename);
        fetch(options, self.dataset.hf_repo(), &self.dataset.repo, &self.filename, &what)
    }
}
