//! hrm: Hierarchical Reasoning Model language models on burn, generic over the backend.
//!
//! One dependency for a program that embeds hrm: the four libraries under their own names,
//! burn itself, and a prelude of what most programs use.
//!
//! ```
//! use hrm::prelude::*;
//!
//! let tokenizer = CharTokenizer::from_text("once upon a time there was a cat.", "demo");
//! let config = HrmConfig::new(tokenizer.vocab_size(), BlockConfig::new(64, 4), 2, 2);
//! let device = Default::default();
//! let model = Model::Hrm(config.init::<Flex>(42, &device));
//! let settings = GenerationConfig { max_new_tokens: Some(8), stop_at_eos: false, ..Default::default() };
//! let out = generate(&model, &tokenizer, "once", &settings, &device, &mut |_| {}).unwrap();
//! assert_eq!(out.tokens.len(), 8);
//! ```

/// Models: layers, the HRM and its ACT, the flat baseline, configs, presets, `HrmOps`.
pub use hrm_core as core;
/// Tokenizers, sources, Hub streaming, mixes, filters, packing.
pub use hrm_data as data;
/// Generation, chat, perplexity, quality metrics, sweeps, analysis.
pub use hrm_infer as infer;
/// The trainer, run folders, checkpoints, export and import.
pub use hrm_train as train;

/// The burn version hrm is built on, for its backends and tensors.
pub use burn;

/// What most programs use: configs and models, tokenizers, training, loading a run, and
/// generation; with the CPU backend.
pub mod prelude {
    pub use burn::backend::Autodiff;
    #[cfg(feature = "flex")]
    pub use burn::backend::Flex;
    pub use hrm_core::{BlockConfig, FlatConfig, HrmConfig, LanguageModel, Model, ModelConfig, ReasoningMode};
    pub use hrm_data::{AnyTokenizer, CharTokenizer, DataConfig, SourceSpec, Tokenizer};
    pub use hrm_infer::{GenerationConfig, SamplingConfig, generate};
    pub use hrm_train::{RunConfig, RunDir, TrainConfig, TrainOptions, Trainer, load_run};
}

/// The README's Rust example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
