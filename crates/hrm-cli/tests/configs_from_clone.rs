//! Every shipped config trains from a clone alone: the configs copied away from the repository
//! (no `../shared` within reach), no local data folder, `HF_ENDPOINT` at a loopback Hub that
//! holds what the configs name, laid out as the real repositories are: TinyStories' text files,
//! C4's gzip shards, FineWeb's `sample/10BT` parquet, OpenWebText's cut parquet conversion,
//! SlimPajama's and the Pile's Zstandard shards, T5's `tokenizer.json`. Each config runs two
//! steps of a tiny model with `--set` overrides on the CPU.
//!
//! The books and DailyDialog are web files (`url`): their downloads are tested against the
//! loopback server in hrm-data's `tests/hub.rs`; here their cache entries are written first, as a
//! download would leave them, since the configs name the real addresses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use hrm_data::{HfTokenizer, HubOptions, UrlFile};
use hrm_testhub::FakeHub;
use hrm_testhub::shard::{gzip, jsonl, parquet, text, zstd};

/// `n` distinct documents of a corpus, plain English words.
fn docs(corpus: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{corpus} {i}: the little cat saw {} birds by the river, and the dog ran home.", i % 9))
        .collect()
}

/// The loopback Hub with every repository the shipped configs and mixes name.
fn hub(tokenizer: Vec<u8>) -> FakeHub {
    let docs = |corpus| docs(corpus, 300);
    let script = || ("README.md", b"# a dataset".to_vec());
    FakeHub::new()
        .main(
            "roneneldan/TinyStories",
            vec![
                script(),
                ("TinyStories-train.txt", text(&docs("story"))),
                ("TinyStories-valid.txt", text(&docs("valid story"))),
                ("TinyStoriesV2-GPT4-train.txt", text(&docs("gpt-4 story"))),
            ],
        )
        .main(
            "allenai/c4",
            vec![
                ("en/c4-train.00000-of-01024.json.gz", gzip(&jsonl(&docs("c4 page")))),
                ("en/c4-train.00001-of-01024.json.gz", gzip(&jsonl(&docs("c4 next page")))),
                ("en/c4-validation.00000-of-00008.json.gz", gzip(&jsonl(&docs("c4 held-out page")))),
            ],
        )
        .main(
            "HuggingFaceFW/fineweb",
            vec![
                ("data/CC-MAIN-2024-10/000_00000.parquet", parquet(&docs("crawl page"))),
                ("sample/10BT/000_00000.parquet", parquet(&docs("fineweb page"))),
            ],
        )
        .repo(
            "Skylion007/openwebtext",
            &[
                ("main", vec![script(), ("openwebtext.py", b"# a loading script".to_vec())]),
                (
                    "refs/convert/parquet",
                    vec![("plain_text/partial-train/0000.parquet", parquet(&docs("reddit link")))],
                ),
            ],
        )
        .main(
            "cerebras/SlimPajama-627B",
            vec![
                ("train/chunk1/example_train_0.jsonl.zst", zstd(&jsonl(&docs("slimpajama page")))),
                ("validation/chunk1/example_holdout_0.jsonl.zst", zstd(&jsonl(&docs("held-out page")))),
            ],
        )
        .main(
            "monology/pile-uncopyrighted",
            vec![
                ("train/00.jsonl.zst", zstd(&jsonl(&docs("pile document")))),
                ("val.jsonl.zst", zstd(&jsonl(&docs("pile held-out")))),
            ],
        )
        .main("google-t5/t5-small", vec![("tokenizer.json", tokenizer)])
}

/// A small BPE trained on the test's documents, as a `tokenizer.json`.
fn tokenizer_json(dir: &Path) -> Vec<u8> {
    let bpe = HfTokenizer::train_bpe(docs("story", 200).into_iter(), 400).unwrap();
    let path = hrm_data::AnyTokenizer::Hf(bpe).save_to_dir(dir).unwrap();
    std::fs::read(path).unwrap()
}

/// Every file below `dir`, folders walked.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { found.extend(files_under(&path)) } else { found.push(path) }
    }
    found
}

/// Copies `from` into `to`, folders and all.
fn copy_dir(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// Every `url = "..."` in the config files under `dir`.
fn web_addresses(dir: &Path) -> Vec<String> {
    let lines: Vec<String> = files_under(dir)
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(String::from).collect::<Vec<_>>())
        .collect();
    lines.iter().filter_map(|l| Some(l.strip_prefix("url = \"")?.strip_suffix('"')?.to_string())).collect()
}

/// The overrides that make any shipped config a two-step run of a tiny model.
const TINY: &[&str] = &[
    "run.steps=2",
    "model.block.d_model=32",
    "model.block.n_heads=2",
    "model.block.max_seq_len=32",
    "data.seq_len=32",
    "data.batch_size=2",
    "data.shuffle_block=8",
];

/// `hrm train` of `config` as a two-step tiny run into `run`, from `cwd`, with `env` set and
/// no local data folder, offline switch or token but what `env` sets; whether it succeeded,
/// and what it said.
fn train_tiny(config: &Path, run: &Path, cwd: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut args = vec!["train".to_string(), "--config".into(), config.display().to_string()];
    args.extend(TINY.iter().flat_map(|set| ["--set".to_string(), set.to_string()]));
    args.extend(["--output".into(), run.display().to_string()]);
    let output = Command::new(env!("CARGO_BIN_EXE_hrm"))
        .args(&args)
        .current_dir(cwd)
        .env_remove("HRM_LOCAL_DATA")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.success(),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

/// A temporary folder holding `clone/configs`, a copy of the shipped configs away from the
/// repository (so no relative path reaches ../shared); the folder and the clone.
fn clone_of_configs() -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("clone");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs"), &clone.join("configs"));
    (work, clone)
}

#[test]
fn every_shipped_config_trains_two_steps_from_a_clone_against_the_hub() {
    let (work, clone) = clone_of_configs();
    let hf_home = work.path().join("hf");
    let options = HubOptions { cache_dir: hf_home.join("hub"), ..HubOptions::from_env() };
    for url in web_addresses(&clone.join("configs")) {
        let path = UrlFile::new(&url).unwrap().cache_path(&options);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, docs("chapter", 300).join("\n\n")).unwrap();
    }
    let hub = Arc::new(hub(tokenizer_json(work.path())));
    let served = Arc::clone(&hub).serve();

    let mut configs: Vec<PathBuf> =
        std::fs::read_dir(clone.join("configs/train")).unwrap().map(|e| e.unwrap().path()).collect();
    configs.sort();
    assert!(configs.len() >= 20, "the shipped configs: {configs:?}");
    for config in &configs {
        let name = config.file_stem().unwrap().to_str().unwrap();
        let run = work.path().join("runs").join(name);
        let hub_env = [("HF_ENDPOINT", served.endpoint.as_str()), ("HF_HOME", hf_home.to_str().unwrap())];
        let (ok, said) = train_tiny(config, &run, &clone, &hub_env);
        assert!(ok, "{name}: {said}");
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        assert!(metrics.lines().any(|l| l.contains("\"step\":2")), "{name} reached step 2: {metrics}");
    }
    // Every repository was read through the Hub, into its cache.
    for repo in [
        "datasets--roneneldan--TinyStories",
        "datasets--allenai--c4",
        "datasets--HuggingFaceFW--fineweb",
        "datasets--Skylion007--openwebtext",
        "datasets--cerebras--SlimPajama-627B",
        "datasets--monology--pile-uncopyrighted",
        "models--google-t5--t5-small",
    ] {
        assert!(hf_home.join("hub").join(repo).join("snapshots").is_dir(), "{repo} is cached");
    }
}

#[test]
fn with_hrm_local_data_a_config_reads_its_local_copies_offline() {
    let (work, clone) = clone_of_configs();
    // The layout the configs' `local` paths name (this project's ../shared/data).
    let local = work.path().join("local");
    let copies = [
        ("tinystories/stories.txt", text(&docs("story", 200))),
        ("c4-sample/c4_sample.jsonl.gz", gzip(&jsonl(&docs("c4 page", 200)))),
        ("books/pg11-alices-adventures-in-wonderland.txt", docs("alice", 200).join("\n\n").into_bytes()),
        ("books/pg12-through-the-looking-glass.txt", docs("mirror", 200).join("\n\n").into_bytes()),
        ("tokenizers/t5/tokenizer.json", tokenizer_json(work.path())),
    ];
    for (path, bytes) in &copies {
        std::fs::create_dir_all(local.join(path).parent().unwrap()).unwrap();
        std::fs::write(local.join(path), bytes).unwrap();
    }
    // Offline, an empty Hub cache and an endpoint nothing answers: only the copies can serve.
    let empty_cache = work.path().join("empty-cache");
    let env = [
        ("HRM_LOCAL_DATA", local.to_str().unwrap()),
        ("HF_HUB_OFFLINE", "1"),
        ("HF_HOME", empty_cache.to_str().unwrap()),
        ("HF_ENDPOINT", "http://127.0.0.1:9"),
    ];
    let config = clone.join("configs/train/micro-10m.toml");
    let (ok, said) = train_tiny(&config, &work.path().join("runs/local"), &clone, &env);
    assert!(ok, "micro-10m from the local copies: {said}");
    // A missing copy is an error naming it, not a download.
    std::fs::remove_file(local.join("tokenizers/t5/tokenizer.json")).unwrap();
    let (ok, said) = train_tiny(&config, &work.path().join("runs/missing"), &clone, &env);
    assert!(!ok && said.contains("tokenizers/t5/tokenizer.json"), "{said}");
    println!("a missing local copy: {}", said.trim());
}
