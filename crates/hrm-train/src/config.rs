//! The whole run config (`config.toml`): model, data, tokenizer, optimiser, schedule, ACT, run.

use std::path::Path;

use hrm_core::ModelConfig;
use hrm_data::DataConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::schedule::ScheduleConfig;

/// How the run gets its tokenizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TokenizerConfig {
    /// Characters of the first training documents (the model's vocabulary follows it).
    #[default]
    Char,
    /// A byte-level BPE of `vocab_size` ids trained on the first training documents.
    Bpe {
        /// Ids in the trained vocabulary.
        vocab_size: usize,
    },
    /// A saved `tokenizer.json` or `char_tokenizer.json` (relative to the config file).
    File {
        /// The file.
        path: String,
    },
    /// The `tokenizer.json` of a Hub model repository, by name (`gpt2`, `google-t5/t5-small`),
    /// kept in the Hugging Face cache and read from it offline afterwards.
    Hub {
        /// The model repository.
        name: String,
        /// A copy of that file under the local data folder (`$HRM_LOCAL_DATA`), read instead
        /// when that folder is given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local: Option<String>,
    },
}

/// AdamW with a separate learning rate for the token embedding, clipping and accumulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Peak learning rate of the token embedding.
    pub embed_lr: f64,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// Adam ε.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// Clip the global gradient norm to this (0 disables).
    pub grad_clip: f64,
    /// Micro-batches whose gradients are summed before each optimiser step.
    pub grad_accum: usize,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            embed_lr: 5e-4,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.01,
            grad_clip: 1.0,
            grad_accum: 1,
        }
    }
}

impl OptimConfig {
    /// burn's own AdamW with these betas, epsilon and weight decay: what
    /// [`crate::FlatAdamW`] computes, for comparing the two.
    pub fn burn_adamw(&self) -> burn::optim::AdamWConfig {
        burn::optim::AdamWConfig::new()
            .with_beta_1(self.beta1)
            .with_beta_2(self.beta2)
            .with_epsilon(self.eps)
            .with_weight_decay(self.weight_decay)
    }
}

/// ACT training: the weight of the Q-learning loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActConfig {
    /// Weight of `BCE(q_halt) + BCE(q_continue)` against the LM loss (the reference's 0.5).
    pub q_loss_weight: f64,
}

impl Default for ActConfig {
    fn default() -> Self {
        Self { q_loss_weight: 0.5 }
    }
}

/// Layer growth (continual learning, seed 001): blocks are added as text arrives, each
/// starting as nearly the identity so the model's function barely changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrowthConfig {
    /// Grow after every this many bytes of training text (0: never).
    pub every_bytes: u64,
    /// Blocks added to H at each growth.
    pub add_h_layers: usize,
    /// Blocks added to L at each growth.
    pub add_l_layers: usize,
    /// Most growths in a run.
    pub max_growths: u32,
}

impl Default for GrowthConfig {
    fn default() -> Self {
        Self { every_bytes: 0, add_h_layers: 1, add_l_layers: 2, max_growths: 4 }
    }
}

/// A later phase of a curriculum: other sources, trained for `steps` more steps with the
/// learning-rate schedule restarted (seed 000's multi-dataset training).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// The phase's sources (the rest of `[data]` carries over).
    #[serde(default)]
    pub sources: Vec<hrm_data::SourceSpec>,
    /// Or a mix file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<std::path::PathBuf>,
    /// Optimiser steps of this phase.
    pub steps: u64,
}

/// Length, evaluation, checkpointing and stopping of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Optimiser steps to train (one per ACT segment for the HRM).
    pub steps: u64,
    /// Seed of the model's initial weights and of ACT exploration.
    #[serde(default)]
    pub seed: u64,
    /// Evaluate every this many steps (and at the end).
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    /// Validation batches per evaluation (all, if the split is smaller).
    #[serde(default = "default_eval_batches")]
    pub eval_batches: usize,
    /// Write a checkpoint every this many steps (and at the end).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Step checkpoints kept (the best one is kept apart).
    #[serde(default = "default_keep")]
    pub keep_checkpoints: usize,
    /// Stop after this many evaluations without a better validation loss.
    #[serde(default)]
    pub patience: Option<u32>,
    /// Stop after this many skipped steps (non-finite or exploding loss) in a row.
    #[serde(default = "default_max_bad_steps")]
    pub max_bad_steps: u32,
    /// Skip a step whose loss exceeds this many times the running mean of accepted losses
    /// (once [`SPIKE_WARMUP_STEPS`] were accepted in the current phase); 0 turns it off.
    #[serde(default = "default_loss_spike_factor")]
    pub loss_spike_factor: f64,
    /// Log a metrics line every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: u64,
    /// Documents read to build a char or BPE tokenizer.
    #[serde(default = "default_tokenizer_docs")]
    pub tokenizer_docs: usize,
    /// Generate a sample at the evaluations every this many steps (and at the last one): a
    /// multiple of `eval_every`; 0 never samples.
    #[serde(default)]
    pub sample_every: u64,
    /// The text a sample continues.
    #[serde(default = "default_sample_prompt")]
    pub sample_prompt: String,
    /// New tokens of a sample (at most; the end-of-text token stops it sooner).
    #[serde(default = "default_sample_tokens")]
    pub sample_tokens: usize,
}

fn default_eval_every() -> u64 {
    200
}
fn default_eval_batches() -> usize {
    20
}
fn default_checkpoint_every() -> u64 {
    200
}
fn default_keep() -> usize {
    3
}
fn default_max_bad_steps() -> u32 {
    5
}
fn default_loss_spike_factor() -> f64 {
    5.0
}
/// Accepted steps of a phase before the loss-spike guard compares against their mean.
pub const SPIKE_WARMUP_STEPS: u64 = 20;
fn default_log_every() -> u64 {
    10
}
fn default_tokenizer_docs() -> usize {
    20_000
}
fn default_sample_prompt() -> String {
    "The".into()
}
fn default_sample_tokens() -> usize {
    100
}

impl RunConfig {
    /// A run of `steps` steps with defaults for everything else.
    pub fn new(steps: u64) -> Self {
        Self {
            steps,
            seed: 0,
            eval_every: default_eval_every(),
            eval_batches: default_eval_batches(),
            checkpoint_every: default_checkpoint_every(),
            keep_checkpoints: default_keep(),
            patience: None,
            max_bad_steps: default_max_bad_steps(),
            loss_spike_factor: default_loss_spike_factor(),
            log_every: default_log_every(),
            tokenizer_docs: default_tokenizer_docs(),
            sample_every: 0,
            sample_prompt: default_sample_prompt(),
            sample_tokens: default_sample_tokens(),
        }
    }
}

/// Everything a run needs; saved resolved as `config.toml` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The model (its `vocab_size` follows the tokenizer).
    pub model: ModelConfig,
    /// The data pipeline.
    pub data: DataConfig,
    /// The tokenizer.
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
    /// The optimiser.
    #[serde(default)]
    pub optim: OptimConfig,
    /// The learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// ACT training.
    #[serde(default)]
    pub act: ActConfig,
    /// Layer growth (HRM only; off by default).
    #[serde(default)]
    pub growth: GrowthConfig,
    /// Phases after the first (`[data]` for `run.steps` steps), trained in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curriculum: Vec<Phase>,
    /// Length, evaluation and checkpoints.
    pub run: RunConfig,
}

impl TrainConfig {
    /// A run of `model` on `data` as `run` says, with the default tokenizer, optimiser,
    /// schedule and ACT, no growth and no curriculum.
    pub fn new(model: ModelConfig, data: DataConfig, run: RunConfig) -> Self {
        Self {
            model,
            data,
            tokenizer: TokenizerConfig::default(),
            optim: OptimConfig::default(),
            schedule: ScheduleConfig::default(),
            act: ActConfig::default(),
            growth: GrowthConfig::default(),
            curriculum: Vec::new(),
            run,
        }
    }

    /// Reads a TOML config; unknown keys are errors naming the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        toml::from_str(&text).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
    }

    /// Reads a config file with `key=value` overrides (`run.steps=500`, see [`crate::overrides`])
    /// applied to its TOML before it is parsed.
    pub fn load_with_overrides(path: &Path, assignments: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let mut doc: toml::Table = toml::from_str(&text)
            .map_err(|e| TrainError::Config(format!("{} is not valid TOML: {e}", path.display())))?;
        for assignment in assignments {
            crate::overrides::apply(&mut doc, assignment)?;
        }
        toml::Value::Table(doc).try_into().map_err(|e: toml::de::Error| {
            let reason = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            TrainError::Config(format!("{} (after --set overrides): {reason}", path.display()))
        })
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }

    /// Checks every section; the error names the field at fault.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.data.validate()?;
        let bad = |field: &str, value: &dyn std::fmt::Display, why: &str| {
            Err(TrainError::Config(format!("`{field}` = {value}: {why}")))
        };
        if self.run.steps == 0 {
            return bad("run.steps", &0, "must be at least 1");
        }
        let spike = self.run.loss_spike_factor;
        if !(spike == 0.0 || spike > 1.0) {
            return bad("run.loss_spike_factor", &spike, "must be 0 (off) or above 1");
        }
        if self.run.eval_every == 0 || self.run.checkpoint_every == 0 || self.run.log_every == 0 {
            return bad("run.eval_every / checkpoint_every / log_every", &0, "must be at least 1");
        }
        let sample_every = self.run.sample_every;
        if !sample_every.is_multiple_of(self.run.eval_every) {
            return bad(
                "run.sample_every",
                &sample_every,
                "must be 0 (off) or a multiple of run.eval_every (samples are drawn at evaluations)",
            );
        }
        if sample_every > 0 && (self.run.sample_prompt.is_empty() || self.run.sample_tokens == 0) {
            return bad(
                "run.sample_prompt / sample_tokens",
                &format!("{:?} / {}", self.run.sample_prompt, self.run.sample_tokens),
                "a sample needs a prompt and at least one token",
            );
        }
        if self.optim.grad_accum == 0 {
            return bad("optim.grad_accum", &0, "must be at least 1");
        }
        for (field, value) in [("optim.lr", self.optim.lr), ("optim.embed_lr", self.optim.embed_lr)] {
            if !(value.is_finite() && value > 0.0) {
                return bad(field, &value, "must be a positive number");
            }
        }
        if self.data.seq_len > self.model.block().max_seq_len {
            return bad("data.seq_len", &self.data.seq_len, "is longer than the model's max_seq_len");
        }
        Ok(())
    }
}

impl TrainConfig {
    /// Builds the tokenizer the config asks for (reading the first `run.tokenizer_docs`
    /// training documents for char and BPE) and sets the model's vocabulary to its size.
    pub fn prepare_tokenizer(&mut self, base: &Path) -> Result<hrm_data::AnyTokenizer> {
        use hrm_data::{AnyTokenizer, CharTokenizer, HfTokenizer};
        let first_documents = || first_documents(&self.data, base, self.run.tokenizer_docs);
        let tokenizer = match &self.tokenizer {
            TokenizerConfig::Char => {
                let mut tokenizer = CharTokenizer::new();
                let name = self.data.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join("+");
                for doc in first_documents()? {
                    tokenizer.extend(&doc, &name);
                }
                AnyTokenizer::Char(tokenizer)
            }
            TokenizerConfig::Bpe { vocab_size } => {
                AnyTokenizer::Hf(HfTokenizer::train_bpe(first_documents()?.into_iter(), *vocab_size)?)
            }
            TokenizerConfig::File { path } => AnyTokenizer::load_file(&base.join(path))?,
            TokenizerConfig::Hub { name, local } => {
                let options = hrm_data::HubOptions::from_env();
                let file = match options.local_copy(local.as_deref()) {
                    Some(copy) => copy,
                    None => hrm_data::source::model_file(&options, name, "tokenizer.json")?,
                };
                AnyTokenizer::load_file(&file)?
            }
        };
        let vocab = hrm_data::Tokenizer::vocab_size(&tokenizer);
        self.model.set_vocab_size(vocab);
        Ok(tokenizer)
    }
}

/// Up to `limit` training documents of `data`, stopping after one pass over its sources.
pub fn first_documents(data: &DataConfig, base: &Path, limit: usize) -> Result<Vec<String>> {
    let mut stream = data.documents(hrm_data::Split::Train, base, &hrm_data::HubOptions::from_env())?;
    let mut docs = Vec::new();
    while docs.len() < limit {
        match stream.next_document()? {
            Some(doc) => docs.push(doc.text),
            None => break,
        }
        if stream.sources().iter().any(|s| s.position().epoch > 0) {
            break;
        }
    }
    Ok(docs)
}
