//! hrm-infer: what a user does with a trained model: generation with cached decoding and
//! reasoning modes, chat, evaluation, sweeps, text-quality metrics and state analysis.

/// L/H state norms and halting per position.
pub mod analysis;
/// The chat REPL.
pub mod chat;
/// Loss curves of training runs as a PNG.
pub mod curves;
/// Feeding a batch of sequences to a model, cached or not.
pub mod decoder;
/// Autoregressive generation with streaming and stop conditions.
pub mod generate;
/// Perplexity and bits per byte on any text.
pub mod perplexity;
/// The analysis as a PNG.
pub mod plot;
/// Text-quality metrics of generated text.
pub mod quality;
/// Next-token sampling: temperature, top-k, top-p, repetition penalty.
pub mod sample;
/// Generation sweeps to JSON.
pub mod sweep;
/// Character-trigram similarity of generated text to a reference text.
pub mod trigrams;

pub use analysis::{Analysis, Halting, StateStep, analyze};
pub use chat::{Chat, ChatTemplate, ModelInfo};
pub use curves::{Axis, LossCurve, plot_loss_curves};
pub use decoder::{Decoder, NextLogits};
pub use generate::{GeneratedToken, Generation, GenerationConfig, StopReason, generate, generate_batch};
pub use perplexity::{TextScore, score_text};
pub use plot::{PlotError, plot_analysis};
pub use quality::{TextQuality, WordVocabulary, text_quality};
pub use sample::{Sampler, SamplingConfig};
pub use sweep::{SWEEP_SCHEMA, SettingSummary, SweepPlan, SweepReport, SweepResult, SweepSetting, run_sweep};
pub use trigrams::{TrigramProfile, halves_similarity, trigram_similarity};
