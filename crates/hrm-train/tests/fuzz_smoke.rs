//! The fuzz targets of `fuzz/` on stable Rust, bounded for CI: each target runs over its
//! committed seed corpus (`fuzz/corpus/<target>/seed-*`) and seeded random mutations of it
//! (bit flips, cuts, insertions, splices) for a few seconds. The long runs are libFuzzer's
//! (`cargo +nightly fuzz run <target>`, docs/reliability.md).
//!
//! `cargo test -p hrm-train --test fuzz_smoke -- --ignored write_seed_corpus` rewrites the
//! seed corpus from real files: a checkpoint, a config, tokenizers, text, JSON lines, parquet.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};

#[path = "../../../fuzz/src/targets.rs"]
mod targets;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target)
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus_dir(target).display()))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("seed-"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    found.sort();
    found.into_iter().map(|(_, bytes)| bytes).collect()
}

/// One random change to `input`, sometimes splicing in part of `other`.
fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let at = |rng: &mut StdRng, len: usize| if len == 0 { 0 } else { rng.random_range(0..len) };
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..6) {
            0 if !out.is_empty() => {
                let i = at(rng, out.len());
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let cut = at(rng, out.len() + 1);
                out.truncate(cut);
            }
            2 => {
                let i = at(rng, out.len() + 1);
                let bytes: Vec<u8> = (0..rng.random_range(1..9)).map(|_| rng.random()).collect();
                out.splice(i..i, bytes);
            }
            3 if !out.is_empty() => {
                let i = at(rng, out.len());
                out[i] = [0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'\n', b'0', b'-'][rng.random_range(0..9)];
            }
            4 if !other.is_empty() => {
                let (from, to) = (at(rng, other.len()), at(rng, out.len() + 1));
                let len = rng.random_range(1..=(other.len() - from).min(64));
                out.splice(to..to, other[from..from + len].iter().copied());
            }
            _ if !out.is_empty() => {
                let (i, len) = (at(rng, out.len()), rng.random_range(1..17));
                let chunk: Vec<u8> = out[i..(i + len).min(out.len())].to_vec();
                out.splice(i..i, chunk);
            }
            _ => out.push(rng.random()),
        }
    }
    out
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations() {
    let budget = Duration::from_secs_f64(
        std::env::var("HRM_FUZZ_SMOKE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0),
    );
    let mut rng = StdRng::seed_from_u64(7);
    // Panics that hrm catches (the parquet and tokenizers crates panic on some corrupt files)
    // would flood the output: keep only the last message, for the failure report.
    static LAST_PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    std::panic::set_hook(Box::new(|info| *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string()));
    for (name, target) in targets::TARGETS {
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "{name}: no seed corpus");
        let started = Instant::now();
        for seed in &seeds {
            target(seed);
        }
        let mut runs = seeds.len();
        while started.elapsed() < budget {
            let (a, b) = (&seeds[rng.random_range(0..seeds.len())], &seeds[rng.random_range(0..seeds.len())]);
            let input = mutate(&mut rng, a, b);
            let outcome = std::panic::catch_unwind(|| target(&input));
            if outcome.is_err() {
                let message = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let _ = std::panic::take_hook();
                panic!("{name} panicked on input {input:?}: {message}");
            }
            runs += 1;
        }
        println!("{name}: {runs} inputs in {:.1} s, no panic", started.elapsed().as_secs_f64());
    }
}

/// Rewrites `fuzz/corpus/*/seed-*` from real files made here.
#[test]
#[ignore = "writes the committed seed corpus; run by hand"]
fn write_seed_corpus() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let text = "Once upon a time, a cat sat on the mat.\n<|endoftext|>\nThe dog — naïve, über-café — ran! 🐕\n";
    write("char_tokenizer", "story.txt", text.as_bytes());
    let chars = hrm_data::CharTokenizer::from_text(text, "seed");
    let dir = tempfile::tempdir().unwrap();
    chars.save(&dir.path().join("c.json")).unwrap();
    write("char_tokenizer", "char_tokenizer.json", &std::fs::read(dir.path().join("c.json")).unwrap());

    write("bpe_tokenizer", "story.txt", text.as_bytes());
    let bpe = hrm_data::HfTokenizer::train_bpe(text.lines().cycle().take(40), 260).unwrap();
    bpe.save(&dir.path().join("t.json")).unwrap();
    write("bpe_tokenizer", "tokenizer.json", &std::fs::read(dir.path().join("t.json")).unwrap());

    write("text_reader", "docs.txt", text.as_bytes());
    write("text_reader", "invalid-utf8.txt", b"good doc\n<|endoftext|>\nbad \xff\xfe doc\n<|endoftext|>\nlast");
    write(
        "jsonl_reader",
        "docs.jsonl",
        b"{\"text\": \"first doc\"}\n{\"text\": \"second \\u00e9\", \"id\": 2}\n{\"other\": 1}\n",
    );
    let rows: Vec<String> = (0..6).map(|i| format!("row {i}: {}", &text[..20])).collect();
    write("parquet_reader", "rows.parquet", &hrm_testhub::shard::parquet_with("text", &rows, 3));

    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/train");
    for name in ["char-alice.toml", "tinystories-hrm-1m.toml", "micro-10m.toml"] {
        write("train_config", name, &std::fs::read(configs.join(name)).unwrap());
    }

    // A real checkpoint of the checkpoint target's tiny config: one seed per part.
    let config = targets::tiny_config();
    let model = config.model.init::<burn::backend::Flex>(0, &Default::default());
    use burn::module::Module;
    use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
    let record = NamedMpkBytesRecorder::<FullPrecisionSettings>::default().record(model.into_record(), ()).unwrap();
    let state = serde_json::to_vec_pretty(&hrm_train::state::TrainState::new(config)).unwrap();
    let folder = hrm_train::checkpoint::write(dir.path(), 1, &[("model.mpk", b"weights".to_vec())]).unwrap();
    let manifest = std::fs::read(folder.join(hrm_train::checkpoint::MANIFEST)).unwrap();
    let hrm_core::Model::Hrm(hrm) = config.model.init::<burn::backend::Flex>(0, &Default::default()) else {
        unreachable!("the tiny config is an HRM")
    };
    let carry = hrm.initial_carry([config.data.batch_size, config.data.seq_len], &Default::default());
    let carries = rmp_serde::to_vec(&vec![Some(hrm_train::state::SavedCarry::save(&carry))]).unwrap();
    for (selector, name, bytes) in [
        (0u8, "manifest.json", manifest),
        (1, "model.mpk", record),
        (2, "carry.mpk", carries),
        (3, "state.json", state),
    ] {
        write("checkpoint", name, &[&[selector], bytes.as_slice()].concat());
    }
}
