//! hrm-infer: what a user does with a trained model. So far: sampling and (uncached)
//! generation; cached decoding, chat, sweeps and analysis are to come.

/// Autoregressive generation with streaming and stop conditions.
pub mod generate;
/// Next-token sampling: temperature, top-k, top-p, repetition penalty.
pub mod sample;

pub use generate::{Generation, GenerationConfig, generate};
pub use sample::{Sampler, SamplingConfig};
