//! Plain-text files: documents split on a separator, read in chunks, seekable by byte offset.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::files::DocReader;
use crate::error::{DataError, Result};

const CHUNK: usize = 1 << 16;

/// Streams the documents of one text file without reading it whole.
pub(crate) struct TextReader {
    path: PathBuf,
    file: File,
    separator: Vec<u8>,
    skip_invalid: bool,
    buf: Vec<u8>,
    /// Index in `buf` of the next unread byte.
    start: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    skipped: u64,
}

impl TextReader {
    /// Opens `path` at byte `offset` (the start of a document).
    pub(crate) fn open(path: &Path, separator: &str, skip_invalid: bool, offset: u64) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| DataError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            separator: separator.as_bytes().to_vec(),
            skip_invalid,
            buf: Vec::new(),
            start: 0,
            offset,
            eof: false,
            skipped: 0,
        })
    }

    /// The next raw document (bytes up to the separator, or to the end of the file).
    fn next_raw(&mut self) -> Result<Option<(u64, Vec<u8>)>> {
        loop {
            let unread = &self.buf[self.start..];
            if let Some(i) = find(unread, &self.separator) {
                let doc = unread[..i].to_vec();
                let doc_offset = self.offset;
                let consumed = i + self.separator.len();
                self.start += consumed;
                self.offset += consumed as u64;
                return Ok(Some((doc_offset, doc)));
            }
            if self.eof {
                if unread.is_empty() {
                    return Ok(None);
                }
                let doc = unread.to_vec();
                let doc_offset = self.offset;
                self.offset += doc.len() as u64;
                self.start = self.buf.len();
                return Ok(Some((doc_offset, doc)));
            }
            self.buf.drain(..self.start);
            self.start = 0;
            let old = self.buf.len();
            self.buf.resize(old + CHUNK, 0);
            let n = self.file.read(&mut self.buf[old..]).map_err(|e| DataError::io(&self.path, e))?;
            self.buf.truncate(old + n);
            self.eof = n == 0;
        }
    }
}

impl DocReader for TextReader {
    fn next_doc(&mut self) -> Result<Option<String>> {
        while let Some((doc_offset, raw)) = self.next_raw()? {
            match String::from_utf8(raw) {
                Ok(text) => {
                    let text = text.trim_start_matches('\u{feff}').trim();
                    if !text.is_empty() {
                        return Ok(Some(text.to_string()));
                    }
                }
                Err(_) if self.skip_invalid => self.skipped += 1,
                Err(_) => return Err(DataError::InvalidUtf8 { path: self.path.clone(), offset: doc_offset }),
            }
        }
        Ok(None)
    }

    fn offset(&self) -> u64 {
        self.offset
    }

    fn skipped_invalid(&self) -> u64 {
        self.skipped
    }
}

/// First index of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
