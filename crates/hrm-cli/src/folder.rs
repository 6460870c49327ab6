//! Where relative paths in a config file are anchored.

use std::path::{Path, PathBuf};

/// The folder holding the file at `path` (`.` for a bare file name).
pub fn folder_of(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}
