//! Export a run to a Hugging-Face-style folder (safetensors weights in PyTorch's layout,
//! config.json, tokenizer) and import one back into a run folder. Names: docs/formats.md.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use hrm_core::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::state::TrainState;
use crate::{RunDir, TrainConfig, checkpoint};
use hrm_core::HrmOps;

/// The weights file of an export.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The model description of an export.
pub const CONFIG_FILE: &str = "config.json";
/// The run config an export carries, so an import can train on or evaluate.
pub const TRAIN_CONFIG_FILE: &str = "hrm_train.toml";
/// The version of the export layout this hrm writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// `config.json` of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportConfig {
    /// `hrm` or `hrm-flat`.
    pub model_type: String,
    /// Version of this layout ([`EXPORT_FORMAT`]).
    pub hrm_export_format: u32,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence (RoPE table length).
    pub max_position_embeddings: usize,
    /// The tokenizer file next to the weights.
    pub tokenizer_file: String,
    /// Optimiser steps the weights were trained for.
    pub step: u64,
    /// Training tokens seen.
    pub tokens: u64,
    /// The full model config, as hrm's config files spell it.
    pub model: ModelConfig,
}

/// The reference input and our logits for it, written next to an export with `sample`.
pub const SAMPLE_FILE: &str = "sample.safetensors";

/// Writes the run's `checkpoint` to the folder `out` and returns the files
/// written. With `sample`, also [`SAMPLE_FILE`]: that text's `input_ids` `[1, seq]` (i64)
/// and the model's `logits` `[1, seq, vocab]` (f32, trained N and T, adaptive halting), for
/// checking another implementation against ours.
pub fn export_run<B: HrmOps>(
    run: &RunDir,
    checkpoint: &crate::CheckpointChoice,
    out: &Path,
    sample: Option<&str>,
    device: &B::Device,
) -> Result<Vec<PathBuf>> {
    let loaded = crate::load_run_at::<B>(run, checkpoint, device)?;
    let config =
        ExportConfig::new(&loaded.config.model, loaded.tokenizer.file_name(), loaded.state.step, loaded.state.tokens);
    let [weights, config_path] = write_model(&loaded.model, &config, out)?;
    let tokenizer = loaded.tokenizer.save_to_dir(out)?;
    let train_path = out.join(TRAIN_CONFIG_FILE);
    write(&train_path, loaded.config.to_toml().into_bytes())?;
    let mut files = vec![weights, config_path, tokenizer, train_path];
    if let Some(text) = sample {
        files.push(write_sample(&loaded.model, &loaded.tokenizer, text, out, device)?);
    }
    Ok(files)
}

impl ExportConfig {
    /// The description of `model`, trained for `step` steps and `tokens` tokens, whose
    /// tokenizer is the file `tokenizer_file` beside it (empty where there is none).
    pub fn new(model: &ModelConfig, tokenizer_file: &str, step: u64, tokens: u64) -> Self {
        Self {
            model_type: match model {
                ModelConfig::Hrm(_) => "hrm".into(),
                ModelConfig::Flat(_) => "hrm-flat".into(),
            },
            hrm_export_format: EXPORT_FORMAT,
            vocab_size: model.vocab_size(),
            max_position_embeddings: model.block().max_seq_len,
            tokenizer_file: tokenizer_file.into(),
            step,
            tokens,
            model: model.clone(),
        }
    }
}

/// Writes `model`'s weights in PyTorch's layout ([`WEIGHTS_FILE`]) and `config`
/// ([`CONFIG_FILE`]) into the folder `out`; returns the two files. What a run's export, or a
/// benchmark that hands its model to a PyTorch twin, writes.
pub fn write_model<B: HrmOps>(model: &hrm_core::Model<B>, config: &ExportConfig, out: &Path) -> Result<[PathBuf; 2]> {
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    let weights = out.join(WEIGHTS_FILE);
    let mut store = SafetensorsStore::from_file(&weights)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true)
        .metadata("hrm_export_format", EXPORT_FORMAT.to_string())
        .metadata("hrm_step", config.step.to_string());
    model.save_into(&mut store).map_err(|e| TrainError::io(&weights, std::io::Error::other(e.to_string())))?;
    let config_path = out.join(CONFIG_FILE);
    write(&config_path, serde_json::to_vec_pretty(config).expect("config serialises"))?;
    Ok([weights, config_path])
}

/// Writes [`SAMPLE_FILE`] for `text` (cut to the model's `max_seq_len`).
fn write_sample<B: HrmOps>(
    model: &hrm_core::Model<B>,
    tokenizer: &hrm_data::AnyTokenizer,
    text: &str,
    out: &Path,
    device: &B::Device,
) -> Result<PathBuf> {
    use burn::tensor::{Int, Tensor, TensorData};
    use hrm_core::LanguageModel;
    use hrm_data::Tokenizer;
    use safetensors::{Dtype, tensor::TensorView};
    let mut ids: Vec<i64> = tokenizer.encode(text)?.into_iter().map(i64::from).collect();
    ids.truncate(model.max_seq_len());
    if ids.is_empty() {
        return Err(TrainError::Config("the sample text encodes to no tokens".into()));
    }
    let seq = ids.len();
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids.clone(), [1, seq]), device);
    let logits = model.logits(tokens);
    let shape = logits.dims().to_vec();
    let values: Vec<f32> = logits.into_data().convert::<f32>().to_vec().expect("f32 logits");
    let id_bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
    let logit_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = out.join(SAMPLE_FILE);
    let fail = |e: safetensors::SafeTensorError| TrainError::io(&path, std::io::Error::other(e.to_string()));
    let views = [
        ("input_ids", TensorView::new(Dtype::I64, vec![1, seq], &id_bytes).map_err(fail)?),
        ("logits", TensorView::new(Dtype::F32, shape, &logit_bytes).map_err(fail)?),
    ];
    safetensors::serialize_to_file(views, None, &path).map_err(fail)?;
    Ok(path)
}

/// Makes the run folder `run` (which must hold no run) from the export in `dir`: its
/// config, tokenizer and one checkpoint with the weights, so every `hrm` command takes it.
pub fn import_export<B: HrmOps>(dir: &Path, run: &RunDir, device: &B::Device) -> Result<PathBuf> {
    let config_path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&config_path).map_err(|e| TrainError::io(&config_path, e))?;
    let config: ExportConfig = serde_json::from_slice(&bytes)
        .map_err(|e| TrainError::Config(format!("{}: not an hrm export config: {e}", config_path.display())))?;
    if config.hrm_export_format != EXPORT_FORMAT {
        return Err(TrainError::Config(format!(
            "{}: export format {} (this hrm reads {EXPORT_FORMAT}); re-export with a matching hrm",
            config_path.display(),
            config.hrm_export_format
        )));
    }
    let mut train = TrainConfig::load(&dir.join(TRAIN_CONFIG_FILE))?;
    train.model = config.model.clone();
    train.validate()?;
    if !checkpoint::list(&run.checkpoints()).is_empty() {
        return Err(TrainError::Config(format!(
            "{} already holds a run; import into a new folder",
            run.root().display()
        )));
    }
    let weights = dir.join(WEIGHTS_FILE);
    let mut model = config.model.init::<B>(train.run.seed, device);
    let mut store =
        SafetensorsStore::from_file(&weights).with_from_adapter(PyTorchToBurnAdapter).skip_enum_variants(true);
    let applied = model.load_from(&mut store).map_err(|e| TrainError::Config(format!("{}: {e}", weights.display())))?;
    if !applied.missing.is_empty() || !applied.errors.is_empty() {
        return Err(TrainError::Config(format!(
            "{}: does not fit the model of {}: missing {:?}, errors {:?}",
            weights.display(),
            config_path.display(),
            applied.missing,
            applied.errors
        )));
    }
    run.create()?;
    write(&run.config(), train.to_toml().into_bytes())?;
    let tokenizer_src = dir.join(&config.tokenizer_file);
    let tokenizer = std::fs::read(&tokenizer_src).map_err(|e| TrainError::io(&tokenizer_src, e))?;
    let tokenizer_file = match config.tokenizer_file.as_str() {
        hrm_data::CHAR_TOKENIZER_FILE => hrm_data::CHAR_TOKENIZER_FILE,
        _ => hrm_data::HF_TOKENIZER_FILE,
    };
    write(&run.root().join(tokenizer_file), tokenizer.clone())?;
    let state = TrainState { step: config.step, tokens: config.tokens, ..TrainState::new(&train) };
    let record = NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .record(model.into_record(), ())
        .map_err(|e| TrainError::Config(format!("cannot encode the imported weights: {e}")))?;
    let files = [
        ("model.mpk", record),
        ("state.json", serde_json::to_vec_pretty(&state).expect("state serialises")),
        (tokenizer_file, tokenizer),
    ];
    let path = checkpoint::write(&run.checkpoints(), config.step, &files)?;
    checkpoint::set_pointer(&run.checkpoints(), "latest", &path)?;
    Ok(path)
}

fn write(path: &Path, bytes: Vec<u8>) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| TrainError::io(path, e))
}
