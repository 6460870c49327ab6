//! Parquet files: one text column, read one row group at a time (never the whole file).

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::column::page::Page;
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use parquet::record::{Field, RowAccessor};
use parquet::schema::types::Type;

use super::files::DocReader;
use crate::error::{DataError, Result};

/// Streams one text column of a parquet file; the offset is the global row index.
pub(crate) struct ParquetReader {
    path: PathBuf,
    reader: SerializedFileReader<File>,
    projection: Type,
    row_group: usize,
    /// Rows of the current row group not yet returned (None where the value is null).
    pending: VecDeque<Option<String>>,
    row: u64,
}

fn parquet_error(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Parquet { path: path.to_path_buf(), message: e.to_string() }
}

/// Runs `read` on the parquet crate, which panics on some corrupt files (an out-of-bounds
/// index in its RLE decoder, found by fuzzing); a panic becomes an error naming the file.
fn guarded<T>(path: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
        .unwrap_or_else(|_| Err(parquet_error(path, "corrupt file (the parquet decoder failed on it)")))
}

impl ParquetReader {
    /// Opens `path` reading column `column`, positioned at global row `offset`.
    pub(crate) fn open(path: &Path, column: &str, offset: u64) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let reader = guarded(path, || SerializedFileReader::new(file).map_err(|e| parquet_error(path, e)))?;
        let schema = reader.metadata().file_metadata().schema();
        let field = schema.get_fields().iter().find(|f| f.name() == column).cloned().ok_or_else(|| {
            let available = schema.get_fields().iter().map(|f| f.name().to_string()).collect::<Vec<_>>();
            DataError::MissingColumn {
                path: path.to_path_buf(),
                column: column.to_string(),
                available: available.join(", "),
            }
        })?;
        let projection = Type::group_type_builder(schema.name())
            .with_fields(vec![Arc::clone(&field)])
            .build()
            .map_err(|e| parquet_error(path, e))?;
        let mut this =
            Self { path: path.to_path_buf(), reader, projection, row_group: 0, pending: VecDeque::new(), row: 0 };
        // Skip whole row groups by their row counts, then rows inside the one holding `offset`.
        while this.row_group < this.reader.num_row_groups() {
            let rows = this.reader.metadata().row_group(this.row_group).num_rows() as u64;
            if this.row + rows > offset {
                break;
            }
            this.row += rows;
            this.row_group += 1;
        }
        while this.row < offset && this.next_value()?.is_some() {}
        Ok(this)
    }

    /// The next row's value (`Some(None)` for a null), or `None` at the end of the file.
    fn next_value(&mut self) -> Result<Option<Option<String>>> {
        let path = self.path.clone();
        guarded(&path, || self.next_value_unguarded())
    }

    fn next_value_unguarded(&mut self) -> Result<Option<Option<String>>> {
        while self.pending.is_empty() {
            if self.row_group == self.reader.num_row_groups() {
                return Ok(None);
            }
            let group = self.reader.get_row_group(self.row_group).map_err(|e| parquet_error(&self.path, e))?;
            check_dictionaries(&self.path, group.as_ref(), self.projection.get_fields()[0].name())?;
            let rows = group.get_row_iter(Some(self.projection.clone())).map_err(|e| parquet_error(&self.path, e))?;
            for row in rows {
                let row = row.map_err(|e| parquet_error(&self.path, e))?;
                let value = match row.get_column_iter().next().map(|(_, field)| field) {
                    Some(Field::Null) | None => None,
                    Some(_) => Some(row.get_string(0).map_err(|e| parquet_error(&self.path, e))?.clone()),
                };
                self.pending.push_back(value);
            }
            self.row_group += 1;
        }
        self.row += 1;
        Ok(self.pending.pop_front())
    }
}

/// Refuses a row group whose dictionary page of `field` claims more values than it has bytes: the
/// parquet crate sizes the dictionary by that claim before decoding it, so a corrupt header
/// would abort the process on an allocation of many gigabytes instead of failing the read.
fn check_dictionaries(path: &Path, group: &dyn RowGroupReader, field: &str) -> Result<()> {
    let chunks = group.metadata().columns().iter().enumerate();
    let read = chunks.filter(|(_, chunk)| chunk.column_path().parts().first().is_some_and(|name| name == field));
    for (column, _) in read {
        let mut pages = group.get_column_page_reader(column).map_err(|e| parquet_error(path, e))?;
        // A column chunk's dictionary page, when it has one, is its first page; its header is
        // read first so that a chunk without one decodes no page here.
        let first = pages.peek_next_page().map_err(|e| parquet_error(path, e))?;
        if !first.is_some_and(|page| page.is_dict) {
            continue;
        }
        if let Some(Page::DictionaryPage { buf, num_values, .. }) =
            pages.get_next_page().map_err(|e| parquet_error(path, e))?
            && num_values as usize > buf.len()
        {
            return Err(parquet_error(
                path,
                format!("a dictionary page of column {column} claims {num_values} values in {} bytes", buf.len()),
            ));
        }
    }
    Ok(())
}

impl DocReader for ParquetReader {
    fn next_doc(&mut self) -> Result<Option<String>> {
        while let Some(value) = self.next_value()? {
            if let Some(text) = value.filter(|t| !t.trim().is_empty()) {
                return Ok(Some(text));
            }
        }
        Ok(None)
    }

    fn offset(&self) -> u64 {
        self.row
    }

    fn skipped_invalid(&self) -> u64 {
        0
    }
}
