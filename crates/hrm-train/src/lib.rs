//! hrm-train: trains any hrm-core model on any hrm-data stream, as the reference systems do,
//! with nothing lost on a crash.

/// Activation checkpointing strategies (burn's autodiff `CheckpointStrategy`).
pub mod activation_checkpointing;
/// `--batch-size auto`: the largest micro-batch that fits, found by probing steps.
pub mod batch_size;
/// Atomic, checksummed checkpoint folders.
pub mod checkpoint;
/// Which checkpoint of a run a command reads (`--checkpoint`).
pub mod checkpoint_choice;
/// The run config.
pub mod config;
/// Typed errors.
pub mod error;
/// Validation metrics.
pub mod eval;
/// Gradients laid end to end: global norm, scaling, clipping.
pub mod gradients;
/// Export to safetensors + config.json, and import back.
pub mod interop;
/// The training loop.
pub mod learner;
/// Process memory figures.
pub mod memory;
/// Length checks before decoding MessagePack.
pub mod msgpack;
/// The per-segment losses (LM and ACT Q-learning).
pub mod objective;
/// AdamW over the whole model at once.
pub mod optimizer;
/// `--set key=value` overrides applied to a config's TOML before it is parsed.
pub mod overrides;
/// Data parallelism: ranks, their meeting point, and gradient averaging.
pub mod parallel;
/// A run folder: its layout and logs, and loading a trained run from it.
pub mod run;
/// Samples generated while training.
pub mod samples;
/// Warmup + cosine learning-rate schedule.
pub mod schedule;
/// Counters, cursor and carry saved in checkpoints.
pub mod state;
/// TensorBoard event files.
pub mod tensorboard;
/// Checking and restoring the tokenizer from a checkpoint's copy.
pub mod tokenizer_check;

pub use activation_checkpointing::ActivationCheckpointing;
pub use batch_size::BatchSize;
pub use checkpoint_choice::CheckpointChoice;
pub use config::{ActConfig, GrowthConfig, OptimConfig, Phase, RunConfig, TokenizerConfig, TrainConfig};
pub use error::{Result, TrainError};
pub use eval::{EvalMetrics, evaluate_run};
pub use gradients::FlatGradients;
pub use interop::{ExportConfig, export_run, import_export, write_model};
pub use learner::{DataParallel, Faults, RankFailure, StopReason, TrainOptions, TrainSummary, Trainer};
pub use optimizer::FlatAdamW;
pub use parallel::GradientExchange;
pub use run::{LoadedRun, RunDir, load_run, load_run_at};
pub use schedule::ScheduleConfig;
pub use tokenizer_check::{RunCopy, TokenizerCheck, check_tokenizer, restore_tokenizer};
