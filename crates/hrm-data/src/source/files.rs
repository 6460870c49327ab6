//! A source over a sorted list of files, read one at a time, with a seekable position.

use std::path::{Path, PathBuf};

use super::hub::{HubOptions, HubShard};
use super::url::UrlFile;
use super::{SourcePosition, SourceSpec, Utf8Policy, jsonl, parquet, text};
use crate::error::{DataError, Result};

/// File formats we read, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text, documents split on a separator.
    Text,
    /// JSON lines, optionally compressed.
    Jsonl(Compression),
    /// Apache Parquet, read one row group at a time.
    Parquet,
}

impl Format {
    /// The format of `path` from its extension.
    pub fn of(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".jsonl.gz") || name.ends_with(".json.gz") {
            Some(Self::Jsonl(Compression::Gzip))
        } else if name.ends_with(".jsonl.zst") || name.ends_with(".json.zst") {
            Some(Self::Jsonl(Compression::Zstd))
        } else if name.ends_with(".jsonl") || name.ends_with(".json") {
            Some(Self::Jsonl(Compression::None))
        } else if name.ends_with(".parquet") {
            Some(Self::Parquet)
        } else if name.ends_with(".txt") || name.ends_with(".text") {
            Some(Self::Text)
        } else {
            None
        }
    }
}

/// How a JSON-lines file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not at all.
    None,
    /// gzip (`.gz`; C4's shards).
    Gzip,
    /// Zstandard (`.zst`; SlimPajama's and the Pile's shards).
    Zstd,
}

/// A file to read: local, or a Hub shard or web file fetched (and cached) when first opened.
#[derive(Debug, Clone)]
pub enum FileRef {
    /// A file on disk.
    Local(PathBuf),
    /// A shard of a Hub dataset.
    Hub(HubShard),
    /// A file on the web.
    Url(UrlFile),
}

/// Reads documents from one open file.
pub(crate) trait DocReader: Send {
    /// The next document, or `None` at the end of the file.
    fn next_doc(&mut self) -> Result<Option<String>>;
    /// Offset of the next document (see [`SourcePosition::offset`]).
    fn offset(&self) -> u64;
    /// Documents skipped so far for invalid UTF-8.
    fn skipped_invalid(&self) -> u64;
}

/// Expands a path into the readable files it names, sorted: a file, a directory (recursively)
/// or a glob. Relative paths are taken from `base`.
pub fn expand_path(path: &str, base: &Path) -> Result<Vec<PathBuf>> {
    let full = base.join(path);
    let mut files = Vec::new();
    if path.contains(['*', '?', '[']) {
        let pattern = full.to_string_lossy().into_owned();
        let entries = glob::glob(&pattern).map_err(|e| DataError::config("path", path, e.to_string()))?;
        files.extend(entries.filter_map(|e| e.ok()).filter(|p| p.is_file() && Format::of(p).is_some()));
    } else if full.is_dir() {
        collect_dir(&full, &mut files)?;
    } else if full.is_file() {
        Format::of(&full).ok_or_else(|| DataError::UnknownFormat { path: full.clone() })?;
        files.push(full);
    } else {
        return Err(DataError::io(
            &full,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    files.sort();
    if files.is_empty() {
        return Err(DataError::EmptyDataset {
            what: format!("`{path}` names no .txt, .jsonl, .jsonl.gz or .parquet file"),
        });
    }
    Ok(files)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        if path.is_dir() {
            collect_dir(&path, out)?;
        } else if Format::of(&path).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

/// Documents from a list of files, in order, restartable at any [`SourcePosition`].
pub struct FileSource {
    spec: SourceSpec,
    files: Vec<FileRef>,
    hub: HubOptions,
    position: SourcePosition,
    reader: Option<Box<dyn DocReader>>,
    skipped_before: u64,
    repeat: bool,
}

impl FileSource {
    /// Opens `spec`'s files (local paths relative to `base`; its `local` copy under
    /// `hub.local_data` when that is set); with `repeat` it starts over at the end, counting epochs.
    pub fn open(spec: &SourceSpec, base: &Path, hub: &HubOptions, repeat: bool) -> Result<Self> {
        spec.validate()?;
        let local = |path: &Path| -> Result<Vec<FileRef>> {
            Ok(expand_path(&path.to_string_lossy(), base)?.into_iter().map(FileRef::Local).collect())
        };
        let files = match (hub.local_copy(spec.local.as_deref()), &spec.path, &spec.hub, &spec.url) {
            (Some(copy), ..) => local(&copy)?,
            (None, Some(path), ..) => local(Path::new(path))?,
            (None, None, Some(dataset), _) => dataset.shards(hub)?.into_iter().map(FileRef::Hub).collect(),
            (None, None, None, Some(url)) => vec![FileRef::Url(UrlFile::new(url)?)],
            (None, None, None, None) => unreachable!("validated: one location"),
        };
        Ok(Self {
            spec: spec.clone(),
            files,
            hub: hub.clone(),
            position: SourcePosition::default(),
            reader: None,
            skipped_before: 0,
            repeat,
        })
    }

    /// The spec this source was opened from.
    pub fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// The files, in reading order.
    pub fn files(&self) -> &[FileRef] {
        &self.files
    }

    /// Where the next document will come from.
    pub fn position(&self) -> SourcePosition {
        self.position
    }

    /// Whether a non-repeating source has read every file.
    pub fn is_finished(&self) -> bool {
        !self.repeat && self.position.file >= self.files.len()
    }

    /// Documents skipped for invalid UTF-8 so far.
    pub fn skipped_invalid(&self) -> u64 {
        self.skipped_before + self.reader.as_ref().map_or(0, |r| r.skipped_invalid())
    }

    /// Continues from `position` (as returned by [`FileSource::position`]).
    pub fn seek(&mut self, position: SourcePosition) -> Result<()> {
        if position.file > self.files.len() {
            return Err(DataError::Cursor(format!(
                "source `{}` has {} files, cursor points at file {}",
                self.spec.name,
                self.files.len(),
                position.file
            )));
        }
        self.position = position;
        self.reader = None;
        Ok(())
    }

    /// The next document; `None` once every file is read (with `repeat`, it starts over
    /// instead, and a source with no document at all is an error).
    pub fn next_document(&mut self) -> Result<Option<String>> {
        let mut restarted = false;
        loop {
            if self.position.file == self.files.len() {
                if !self.repeat {
                    return Ok(None);
                }
                if restarted {
                    let what = format!("source `{}` holds no document", self.spec.name);
                    return Err(DataError::EmptyDataset { what });
                }
                restarted = true;
                self.position = SourcePosition { file: 0, offset: 0, epoch: self.position.epoch + 1 };
            }
            if self.reader.is_none() {
                self.reader = Some(self.open_reader(self.position.file, self.position.offset)?);
            }
            let reader = self.reader.as_mut().expect("opened above");
            if let Some(doc) = reader.next_doc()? {
                self.position.offset = reader.offset();
                return Ok(Some(doc));
            }
            self.skipped_before += reader.skipped_invalid();
            self.reader = None;
            self.position.file += 1;
            self.position.offset = 0;
        }
    }

    fn open_reader(&self, index: usize, offset: u64) -> Result<Box<dyn DocReader>> {
        let path = match &self.files[index] {
            FileRef::Local(path) => path.clone(),
            FileRef::Hub(shard) => shard.fetch(&self.hub)?,
            FileRef::Url(file) => file.fetch(&self.hub)?,
        };
        let skip = self.spec.on_invalid_utf8 == Utf8Policy::Skip;
        Ok(match Format::of(&path).ok_or_else(|| DataError::UnknownFormat { path: path.clone() })? {
            Format::Text => Box::new(text::TextReader::open(&path, &self.spec.separator, skip, offset)?),
            Format::Jsonl(compression) => {
                Box::new(jsonl::JsonlReader::open(&path, compression, &self.spec.text_field, skip, offset)?)
            }
            Format::Parquet => Box::new(parquet::ParquetReader::open(&path, &self.spec.text_field, offset)?),
        })
    }
}
