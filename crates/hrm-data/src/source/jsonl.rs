//! JSON-lines files (plain, gzip or Zstandard): one document per line in a named field.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::files::{Compression, DocReader};
use crate::error::{DataError, Result};

/// Streams the documents of one .jsonl / .jsonl.gz / .jsonl.zst file; the offset is the line
/// number.
pub(crate) struct JsonlReader {
    path: PathBuf,
    lines: Box<dyn BufRead + Send>,
    compression: Compression,
    field: String,
    skip_invalid: bool,
    line: u64,
    skipped: u64,
    raw: Vec<u8>,
}

impl JsonlReader {
    /// Opens `path` and skips to line `offset` (0-based).
    pub(crate) fn open(
        path: &Path,
        compression: Compression,
        field: &str,
        skip_invalid: bool,
        offset: u64,
    ) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let lines: Box<dyn BufRead + Send> = match compression {
            Compression::None => Box::new(BufReader::new(file)),
            Compression::Gzip => Box::new(BufReader::new(MultiGzDecoder::new(file))),
            Compression::Zstd => {
                let decoder = zstd::Decoder::new(file).map_err(|e| DataError::io(path, e))?;
                Box::new(BufReader::new(decoder))
            }
        };
        let mut reader = Self {
            path: path.to_path_buf(),
            lines,
            compression,
            field: field.to_string(),
            skip_invalid,
            line: 0,
            skipped: 0,
            raw: Vec::new(),
        };
        while reader.line < offset && reader.read_line()? {}
        Ok(reader)
    }

    /// Reads the next line into `raw`; false at the end of the file.
    fn read_line(&mut self) -> Result<bool> {
        self.raw.clear();
        match self.lines.read_until(b'\n', &mut self.raw) {
            Ok(0) => Ok(false),
            Ok(_) => {
                self.line += 1;
                Ok(true)
            }
            Err(e) if self.compression != Compression::None => {
                Err(DataError::TruncatedCompressed { path: self.path.clone(), message: e.to_string() })
            }
            Err(e) => Err(DataError::io(&self.path, e)),
        }
    }
}

impl DocReader for JsonlReader {
    fn next_doc(&mut self) -> Result<Option<String>> {
        while self.read_line()? {
            let Ok(line) = std::str::from_utf8(&self.raw) else {
                if self.skip_invalid {
                    self.skipped += 1;
                    continue;
                }
                return Err(DataError::InvalidUtf8 { path: self.path.clone(), offset: self.line });
            };
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(line).map_err(|e| DataError::InvalidJson {
                path: self.path.clone(),
                line: self.line,
                message: e.to_string(),
            })?;
            let text = value.get(&self.field).and_then(|v| v.as_str()).ok_or_else(|| DataError::MissingField {
                path: self.path.clone(),
                line: self.line,
                field: self.field.clone(),
            })?;
            if !text.trim().is_empty() {
                return Ok(Some(text.to_string()));
            }
        }
        Ok(None)
    }

    fn offset(&self) -> u64 {
        self.line
    }

    fn skipped_invalid(&self) -> u64 {
        self.skipped
    }
}
