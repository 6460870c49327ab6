//! Which files of a Hub dataset repository make up a split, from the repository's file list:
//! the way its own files are named (C4's `en/c4-train.00000-of-01024.json.gz`, SlimPajama's
//! `train/chunk1/*.jsonl.zst`, TinyStories' `TinyStories-valid.txt`, FineWeb's
//! `sample/10BT/*.parquet`), or a `data_files` pattern; and, for a repository without data
//! files hrm reads, the split's folder in the parquet conversion (`partial-` ones included).

use std::path::Path;

use super::files::Format;

/// Words that name each split in file and folder names, as the `datasets` library reads them.
const SPLIT_WORDS: [(&str, &[&str]); 3] = [
    ("train", &["train", "training"]),
    ("validation", &["validation", "valid", "val", "dev"]),
    ("test", &["test", "testing", "eval", "evaluation"]),
];

/// Metadata files that look like data by their extension.
const METADATA: [&str; 4] = ["dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json"];

/// Whether hrm reads `path` as data (by its extension), metadata left out.
pub(crate) fn is_data_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !METADATA.contains(&name)
        && !path.split('/').any(|part| part.starts_with('.'))
        && Format::of(Path::new(path)).is_some()
}

/// The split words of `split` (itself, for a split of another name).
fn words_of(split: &str) -> Vec<&str> {
    SPLIT_WORDS.iter().find(|(name, _)| *name == split).map_or_else(|| vec![split], |(_, words)| words.to_vec())
}

/// The split a path names by its folders and file name, if any.
fn split_named_by(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    let tokens: Vec<&str> = lower.split(['/', '-', '_', '.']).collect();
    SPLIT_WORDS.iter().find(|(_, words)| tokens.iter().any(|t| words.contains(t))).map(|(name, _)| *name)
}

/// The data files of `config` among `files`: all of them for `default`, else those under
/// the folder `config` (or `a/b` for a config named `a-b`, as FineWeb's `sample-10BT`).
fn of_config<'a>(files: &'a [String], config: &str) -> Vec<&'a String> {
    let data = files.iter().filter(|f| is_data_file(f));
    if config == "default" {
        return data.collect();
    }
    let folders = [format!("{config}/"), format!("{}/", config.replace('-', "/"))];
    data.filter(|f| folders.iter().any(|folder| f.starts_with(folder.as_str()))).collect()
}

/// What a repository's own files give for a split.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RepoFiles {
    /// The split's files, sorted.
    Found(Vec<String>),
    /// The repository has no data file hrm reads: try the parquet conversion.
    NoDataFiles,
    /// It has data files, none under this config's folder: the top folders it has.
    UnknownConfig(Vec<String>),
    /// It has data files, none of this split: the splits it does have.
    NoSplit(Vec<&'static str>),
}

/// The files of `config`'s `split` among the repository's `files`. Files named for a split
/// belong to it; when no file names any split, all of them are the train split (FineWeb).
pub(crate) fn split_files(files: &[String], config: &str, split: &str) -> RepoFiles {
    let candidates = of_config(files, config);
    if candidates.is_empty() {
        let data: Vec<&String> = files.iter().filter(|f| is_data_file(f)).collect();
        return if data.is_empty() { RepoFiles::NoDataFiles } else { RepoFiles::UnknownConfig(top_folders(data)) };
    }
    let named: Vec<_> = candidates.iter().filter_map(|f| split_named_by(f).map(|s| (*f, s))).collect();
    let mut found: Vec<String> = if named.is_empty() {
        if words_of(split).contains(&"train") { candidates.iter().map(|f| f.to_string()).collect() } else { Vec::new() }
    } else {
        let words = words_of(split);
        named.iter().filter(|(_, s)| words.contains(s)).map(|(f, _)| f.to_string()).collect()
    };
    if found.is_empty() {
        let splits: std::collections::BTreeSet<&'static str> = named.iter().map(|(_, s)| *s).collect();
        return RepoFiles::NoSplit(if splits.is_empty() { vec!["train"] } else { splits.into_iter().collect() });
    }
    found.sort();
    RepoFiles::Found(found)
}

/// The top-level folders of `files`, sorted, each once.
pub(crate) fn top_folders<'a>(files: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let folders: std::collections::BTreeSet<&str> =
        files.into_iter().filter_map(|f| f.split_once('/').map(|(folder, _)| folder)).collect();
    folders.into_iter().map(String::from).collect()
}

/// The files among `files` matching the glob `pattern` (relative to the repository root),
/// sorted; `None` for a pattern that does not parse.
pub(crate) fn matching(files: &[String], pattern: &str) -> Option<Vec<String>> {
    let pattern = glob::Pattern::new(pattern).ok()?;
    let options = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
    let mut found: Vec<String> = files.iter().filter(|f| pattern.matches_with(f, options)).cloned().collect();
    found.sort();
    Some(found)
}

/// The split's shards in the parquet conversion: `{config}/{split}/*.parquet`, or, for a
/// dataset the converter cut at 5 GB, `{config}/partial-{split}/*.parquet`.
pub(crate) fn converted_files(files: &[String], config: &str, split: &str) -> Vec<String> {
    for folder in [format!("{config}/{split}/"), format!("{config}/partial-{split}/")] {
        let mut found: Vec<String> =
            files.iter().filter(|f| f.starts_with(&folder) && f.ends_with(".parquet")).cloned().collect();
        if !found.is_empty() {
            found.sort();
            return found;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn c4_takes_its_config_folder_and_the_split_in_the_file_name() {
        let files = names(&[
            "README.md",
            "en/c4-train.00000-of-01024.json.gz",
            "en/c4-train.00001-of-01024.json.gz",
            "en/c4-validation.00000-of-00008.json.gz",
            "realnewslike/c4-train.00000-of-00512.json.gz",
        ]);
        let RepoFiles::Found(train) = split_files(&files, "en", "train") else { panic!() };
        assert_eq!(train, files[1..3]);
        assert_eq!(split_files(&files, "en", "validation"), RepoFiles::Found(names(&[&files[3]])));
        assert_eq!(split_files(&files, "en", "test"), RepoFiles::NoSplit(vec!["train", "validation"]));
        assert_eq!(split_files(&files, "fr", "train"), RepoFiles::UnknownConfig(names(&["en", "realnewslike"])));
    }

    #[test]
    fn folders_words_and_unnamed_files_find_their_splits() {
        let slim = names(&["train/chunk1/example_train_0.jsonl.zst", "validation/chunk1/example_holdout_0.jsonl.zst"]);
        assert_eq!(split_files(&slim, "default", "train"), RepoFiles::Found(names(&[&slim[0]])));
        assert_eq!(split_files(&slim, "default", "validation"), RepoFiles::Found(names(&[&slim[1]])));
        let stories = names(&["TinyStories-train.txt", "TinyStories-valid.txt", "TinyStories_all_data.tar.gz"]);
        assert_eq!(split_files(&stories, "default", "validation"), RepoFiles::Found(names(&[&stories[1]])));
        let fineweb =
            names(&["data/CC-MAIN-2024-10/000_00000.parquet", "sample/10BT/000_00000.parquet", "dataset_info.json"]);
        assert_eq!(split_files(&fineweb, "sample-10BT", "train"), RepoFiles::Found(names(&[&fineweb[1]])));
        assert_eq!(
            split_files(&fineweb, "default", "train"),
            RepoFiles::Found(names(&fineweb[..2].iter().map(|s| s.as_str()).collect::<Vec<_>>()))
        );
        assert_eq!(split_files(&names(&["README.md", "loader.py"]), "default", "train"), RepoFiles::NoDataFiles);
    }

    #[test]
    fn patterns_and_the_conversions_partial_folders() {
        let files = names(&["sample/10BT/000_00000.parquet", "sample/100BT/000_00000.parquet", "data/x/1.parquet"]);
        assert_eq!(matching(&files, "sample/10BT/*.parquet").unwrap(), names(&[&files[0]]));
        assert_eq!(matching(&files, "*.parquet").unwrap(), Vec::<String>::new(), "`*` stays in its folder");
        let converted = names(&[
            "default/partial-train/0000.parquet",
            "default/partial-train/0001.parquet",
            "default/test/0000.parquet",
        ]);
        assert_eq!(converted_files(&converted, "default", "train"), converted[..2]);
        assert_eq!(converted_files(&converted, "default", "test"), converted[2..]);
        assert!(converted_files(&converted, "default", "validation").is_empty());
        let unsorted = names(&["b/1.parquet", "a/2.parquet", "b/3.parquet", "README.md"]);
        assert_eq!(top_folders(&unsorted), names(&["a", "b"]), "each folder once, whatever the listing's order");
    }
}
