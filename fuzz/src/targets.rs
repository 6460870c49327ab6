//! What each fuzz target does with one input. Shared by the cargo-fuzz binaries
//! (`fuzz/fuzz_targets/`) and the bounded smoke run in CI (`crates/hrm-train/tests/fuzz_smoke.rs`),
//! so both exercise the same code. Every function must return normally on any input: errors
//! are fine, panics, hangs and unbounded memory are findings.

use std::io::Write;
use std::sync::OnceLock;

use hrm_data::{AnyTokenizer, CharTokenizer, HfTokenizer, HubOptions, SourceSpec, Tokenizer, Utf8Policy};

type Cpu = burn::backend::Flex;

/// A fuzz target: takes any bytes, must return normally.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of the cargo-fuzz binaries and corpus folders).
pub const TARGETS: &[(&str, Target)] = &[
    ("char_tokenizer", char_tokenizer),
    ("bpe_tokenizer", bpe_tokenizer),
    ("text_reader", text_reader),
    ("jsonl_reader", jsonl_reader),
    ("parquet_reader", parquet_reader),
    ("train_config", train_config),
    ("checkpoint", checkpoint),
];

/// The character tokenizer: learn the input's characters, round-trip it, and load the input
/// as a saved `char_tokenizer.json`.
pub fn char_tokenizer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let tokenizer = CharTokenizer::from_text(&text, "fuzz");
    let ids = tokenizer.encode(&text).expect("a tokenizer encodes the text it learned");
    assert_eq!(tokenizer.decode(&ids), text, "char round trip");
    let _ = tokenizer.decode(&data.iter().map(|&b| u32::from(b) * 7).collect::<Vec<_>>());
    let file = temp_file(".json", data);
    if let Ok(loaded) = CharTokenizer::load(file.path()) {
        let ids = loaded.encode(&text).unwrap_or_default();
        let _ = loaded.decode(&ids);
    }
}

/// A small byte-level BPE tokenizer (trained once): encode the input and decode the ids back
/// (byte-level BPE round-trips any UTF-8), decode arbitrary ids, and load the input as a
/// `tokenizer.json`.
pub fn bpe_tokenizer(data: &[u8]) {
    static BPE: OnceLock<HfTokenizer> = OnceLock::new();
    let bpe = BPE.get_or_init(|| {
        let texts = (0..200).map(|i| format!("story {i}: the cat sat on the mat; über naïve café {}", i * 7));
        HfTokenizer::train_bpe(texts, 300).expect("BPE trains on a fixed text")
    });
    let text = String::from_utf8_lossy(data);
    if let Ok(ids) = bpe.encode(&text) {
        assert_eq!(bpe.decode(&ids), text, "byte-level BPE round trip");
    }
    let _ =
        bpe.decode(&data.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(*c.last().unwrap())).collect::<Vec<_>>());
    let file = temp_file(".json", data);
    if let Ok(loaded) = AnyTokenizer::load_file(file.path()) {
        let _ = loaded.encode(&text).map(|ids| loaded.decode(&ids));
    }
}

/// Reads every document of `data` as a file with `extension`, under both UTF-8 policies.
fn read_documents(extension: &str, data: &[u8]) {
    let file = temp_file(extension, data);
    let dir = file.path().parent().expect("a temporary file has a folder");
    let name = file.path().file_name().and_then(|n| n.to_str()).expect("temporary names are UTF-8");
    for policy in [Utf8Policy::Fail, Utf8Policy::Skip] {
        let spec = SourceSpec { on_invalid_utf8: policy, ..SourceSpec::local("fuzz", name) };
        let Ok(mut source) = hrm_data::FileSource::open(&spec, dir, &HubOptions::from_env(), false) else { return };
        // A bounded read: a document per input byte at most, plus one for the end.
        for _ in 0..=data.len() {
            match source.next_document() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// The plain-text reader (documents split on `<|endoftext|>`).
pub fn text_reader(data: &[u8]) {
    read_documents(".txt", data);
}

/// The JSON-lines reader (the `text` field of each line).
pub fn jsonl_reader(data: &[u8]) {
    read_documents(".jsonl", data);
}

/// The parquet reader (the `text` column, a row group at a time).
pub fn parquet_reader(data: &[u8]) {
    read_documents(".parquet", data);
}

/// A run config as TOML: parse, validate, serialise, parse again.
pub fn train_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = toml::from_str::<hrm_train::TrainConfig>(text) else { return };
    if config.validate().is_ok() {
        let again: hrm_train::TrainConfig = toml::from_str(&config.to_toml()).expect("a saved config parses");
        assert_eq!(again, config, "config round trip");
    }
}

/// Checkpoint loading. The first byte picks the part: a manifest (with one file beside it),
/// a model record for a tiny HRM (decoded and shape-checked), ACT carries, or `state.json`.
pub fn checkpoint(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 4 {
        0 => {
            let Ok(dir) = tempfile::tempdir() else { return };
            let folder = dir.path().join("step-000000001");
            if std::fs::create_dir(&folder).is_err() {
                return;
            }
            let _ = std::fs::write(folder.join(hrm_train::checkpoint::MANIFEST), rest);
            let _ = std::fs::write(folder.join("model.mpk"), b"weights");
            let _ = hrm_train::checkpoint::read(&folder);
        }
        1 => {
            let config = tiny_config();
            if let Ok(model) = hrm_train::checkpoint::decode_model::<Cpu>(rest, &config.model, 0, &Default::default()) {
                // Touch every weight: a record that decodes must hold usable tensors.
                let _ = hrm_train::checkpoint::non_finite_weights(&model);
            }
        }
        2 => {
            let _ = hrm_train::learner::decode_carries(rest, tiny_config());
        }
        _ => {
            let _ = serde_json::from_slice::<hrm_train::state::TrainState>(rest);
        }
    }
}

/// A tiny HRM run config (vocab 16, width 8) for the checkpoint target.
pub fn tiny_config() -> &'static hrm_train::TrainConfig {
    static CONFIG: OnceLock<hrm_train::TrainConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let block = hrm_core::BlockConfig::new(8, 2).with_max_seq_len(8);
        let model = hrm_core::ModelConfig::Hrm(hrm_core::HrmConfig::new(16, block, 1, 1).with_halt_max_steps(2));
        let data = hrm_data::DataConfig::new(vec![SourceSpec::local("x", "x.txt")], 4, 2);
        hrm_train::TrainConfig::new(model, data, hrm_train::RunConfig::new(1))
    })
}

/// `data` in a new temporary file whose name ends with `extension` (removed on drop).
fn temp_file(extension: &str, data: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(extension).tempfile().expect("a temporary file");
    file.write_all(data).expect("the temporary file takes the input");
    file
}
