//! Typed errors of hrm-data: each names the file, line or value at fault.

use std::path::PathBuf;

/// Anything that can go wrong between raw text and a batch.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (kept out of the `source` chain so it is printed once).
        error: std::io::Error,
    },
    /// Bytes that are not UTF-8, with `on_invalid_utf8 = "fail"`.
    #[error("{}: invalid UTF-8 in the document at byte {offset}", path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the document (txt) or line number (jsonl).
        offset: u64,
    },
    /// A JSON line that does not parse.
    #[error("{}:{line}: invalid JSON: {message}", path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What the parser said.
        message: String,
    },
    /// A JSON line without the configured text field (or with a non-string one).
    #[error("{}:{line}: no string field `{field}`", path.display())]
    MissingField {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The field looked for.
        field: String,
    },
    /// A parquet file without the configured text column.
    #[error("{}: no column `{column}`; columns are: {available}", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column looked for.
        column: String,
        /// The columns the file has, comma-separated.
        available: String,
    },
    /// A parquet file that cannot be read.
    #[error("{}: parquet: {message}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        message: String,
    },
    /// A compressed stream (gzip, Zstandard) that ends early or is damaged.
    #[error("{}: compressed stream is truncated or damaged ({message}); download it again", path.display())]
    TruncatedCompressed {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },
    /// A file whose extension names no format we read.
    #[error("{}: unknown format; expected .txt, .jsonl, .jsonl.gz, .json.gz, .jsonl.zst or .parquet", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A source, glob or directory that yields no file or no document.
    #[error("empty dataset: {what}")]
    EmptyDataset {
        /// What was empty.
        what: String,
    },
    /// A configuration value that cannot work.
    #[error("invalid data config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// The field, as spelled in config files.
        field: &'static str,
        /// The value found.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A tokenizer that cannot be built, loaded, saved or run.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A Hugging Face Hub request that failed.
    #[error("hub {repo}: {message}")]
    Hub {
        /// The dataset repository.
        repo: String,
        /// What went wrong, and what to do about it.
        message: String,
    },
    /// A web file (a source's `url`) that could not be had.
    #[error("{url}: {message}")]
    Download {
        /// The address.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A cursor that does not fit the configured sources.
    #[error("cursor does not fit this data config: {0}")]
    Cursor(String),
}

impl DataError {
    /// An [`DataError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), error: source }
    }

    /// An [`DataError::InvalidConfig`] naming `field`, its `value` and the `reason`.
    pub fn config(field: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Self::InvalidConfig { field, value: value.to_string(), reason: reason.into() }
    }
}

/// Result with [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;
