//! The mixes in configs/mixes parse, validate, and (local ones) stream documents.

mod common;

use std::path::Path;

use common::shared_data;
use hrm_data::{DataConfig, HubOptions, MixConfig, Split};

fn mixes_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/mixes")
}

#[test]
fn every_mix_parses_and_validates() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(mixes_dir()).unwrap() {
        let path = entry.unwrap().path();
        let (mix, _) = MixConfig::load(&path).unwrap();
        assert!(!mix.sources.is_empty(), "{}", path.display());
        mix.sources.iter().for_each(|s| s.validate().unwrap());
        assert_eq!(path.file_stem().unwrap().to_str().unwrap(), mix.name);
        names.push(mix.name);
    }
    names.sort();
    assert_eq!(names, ["balanced_small", "conversation_small", "dev_small", "high_quality_small", "tinystories"]);
}

#[test]
fn mixes_with_local_copies_stream_every_source_from_the_local_data_folder() {
    let Some(local) = shared_data("") else { return };
    // Offline with no Hub cache: only the local copies can answer.
    let cache = tempfile::tempdir().unwrap();
    let options =
        HubOptions { local_data: Some(local), offline: true, cache_dir: cache.path().into(), ..HubOptions::from_env() };
    for mix in ["dev_small.toml", "conversation_small.toml", "tinystories.toml"] {
        let config = DataConfig { mix: Some(mix.into()), ..DataConfig::new(Vec::new(), 64, 2) };
        let mut stream = config.documents(Split::Train, &mixes_dir(), &options).unwrap();
        for _ in 0..500 {
            stream.next_document().unwrap().unwrap();
        }
        let counts = stream.documents_per_source();
        println!("{mix}: documents per source {counts:?}");
        assert!(counts.iter().all(|&c| c > 0), "{mix}: {counts:?}");
    }
}

#[test]
fn an_unknown_key_in_a_mix_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "name = \"bad\"\n[[sources]]\nname = \"a\"\npath = \"a.txt\"\nwieght = 2.0\n").unwrap();
    let err = MixConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("wieght") && err.contains("bad.toml"), "{err}");
}
