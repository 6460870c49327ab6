//! Where documents come from: local txt / jsonl / jsonl.gz / jsonl.zst / parquet files,
//! directories and globs of them, datasets streamed from the Hugging Face Hub, and web files.

mod files;
mod hub;
mod hub_layout;
mod hub_tree;
mod jsonl;
mod parquet;
mod text;
mod url;

use serde::{Deserialize, Serialize};

pub use files::{Compression, FileRef, FileSource, Format, expand_path};
pub use hub::{HubDataset, HubOptions, HubShard, PARQUET_REVISION, model_file};
pub use url::UrlFile;

use crate::error::{DataError, Result};

/// What to do with bytes that are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Utf8Policy {
    /// Stop with an error naming the file and position.
    #[default]
    Fail,
    /// Skip the document and count it.
    Skip,
}

/// One source of documents, as a config file names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Short name, used in reports and the dataset history.
    pub name: String,
    /// A file, a directory (every readable file below it) or a glob; relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A dataset on the Hugging Face Hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubDataset>,
    /// A file on the web (`https://...`), downloaded once into the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A copy of a `hub` or `url` source's data on disk: a file, directory or glob under the
    /// local data folder ([`HubOptions::local_data`], `$HRM_LOCAL_DATA`), read instead when that
    /// folder is given (offline machines, this project's own tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// JSON field or parquet column holding the text.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// Separator between documents in .txt files (`"\n\n"` splits on blank lines).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Relative weight in a mix.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// What to do with invalid UTF-8.
    #[serde(default)]
    pub on_invalid_utf8: Utf8Policy,
}

fn default_text_field() -> String {
    "text".into()
}
fn default_separator() -> String {
    "<|endoftext|>".into()
}
fn default_weight() -> f64 {
    1.0
}

impl SourceSpec {
    /// A local source at `path` with default fields.
    pub fn local(name: &str, path: &str) -> Self {
        Self {
            name: name.into(),
            path: Some(path.into()),
            hub: None,
            url: None,
            local: None,
            text_field: default_text_field(),
            separator: default_separator(),
            weight: default_weight(),
            on_invalid_utf8: Utf8Policy::Fail,
        }
    }

    /// Checks that exactly one location is given and the weight is usable.
    pub fn validate(&self) -> Result<()> {
        let locations = [self.path.is_some(), self.hub.is_some(), self.url.is_some()];
        if locations.iter().filter(|&&given| given).count() != 1 {
            return Err(DataError::config("path/hub/url", &self.name, "give exactly one of `path`, `hub` and `url`"));
        }
        if self.local.is_some() && self.path.is_some() {
            return Err(DataError::config(
                "local",
                &self.name,
                "a `path` source is local already; `local` goes with `hub` or `url`",
            ));
        }
        if !(self.weight.is_finite() && self.weight > 0.0) {
            return Err(DataError::config("weight", self.weight, "must be a positive finite number"));
        }
        if self.separator.is_empty() {
            return Err(DataError::config("separator", "\"\"", "must not be empty"));
        }
        Ok(())
    }
}

/// Where a source stands: which file, and how far into it (byte offset for .txt, line for
/// .jsonl, row for .parquet), and how many times it has been read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourcePosition {
    /// Index of the current file in the source's sorted file list.
    pub file: usize,
    /// Format-specific offset into that file.
    pub offset: u64,
    /// Completed passes over the whole source.
    pub epoch: u64,
}
