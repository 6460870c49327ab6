//! Samples while training (`[run] sample_every`): at evaluations, a short generation from
//! `sample_prompt` with the model as it stands, so a user reads what the model writes as its
//! loss falls. Generation draws from its own seeded sampler and never touches the training
//! random streams, so a run with samples trains bit for bit as one without, and resumes so.

use hrm_core::{HrmOps, Model};
use hrm_data::AnyTokenizer;
use hrm_infer::{GenerationConfig, SamplingConfig, generate};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::Result;

/// One sample: a line of `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The step it was drawn after.
    pub step: u64,
    /// Training tokens read by then.
    pub tokens: u64,
    /// The prompt it continues.
    pub prompt: String,
    /// The new text.
    pub text: String,
    /// New tokens generated.
    pub new_tokens: usize,
    /// Seconds the generation took.
    pub seconds: f64,
}

/// Whether the evaluation after `step` (of a phase ending at `last_step`) draws a sample.
pub fn due(config: &TrainConfig, step: u64, last_step: u64) -> bool {
    let every = config.run.sample_every;
    every > 0 && (step.is_multiple_of(every) || step == last_step)
}

/// Continues the run's sample prompt with `model` (in the run's trained reasoning mode,
/// sampled from the run's seed, within the training context), after `step` and `tokens`.
pub fn draw<B: HrmOps>(
    model: &Model<B>,
    tokenizer: &AnyTokenizer,
    config: &TrainConfig,
    (step, tokens): (u64, u64),
    device: &B::Device,
) -> Result<Sample> {
    let generation = GenerationConfig {
        max_new_tokens: Some(config.run.sample_tokens),
        context: Some(config.data.seq_len),
        sampling: SamplingConfig { seed: config.run.seed, ..SamplingConfig::default() },
        ..GenerationConfig::default()
    };
    let prompt = &config.run.sample_prompt;
    let out = generate(model, tokenizer, prompt, &generation, device, &mut |_| {})?;
    let (new_tokens, seconds) = (out.tokens.len(), out.seconds);
    Ok(Sample { step, tokens, prompt: prompt.clone(), text: out.text, new_tokens, seconds })
}
