//! The sampling, stopping and reasoning flags shared by `generate`, `chat` and `sweep`.

use hrm_core::ReasoningMode;
use hrm_infer::{GenerationConfig, SamplingConfig};

/// How to generate.
#[derive(clap::Args, Debug, Clone)]
pub struct GenerationArgs {
    /// Most new tokens (0: unlimited, ending only at a natural stop).
    #[arg(long, default_value_t = 200)]
    pub max_tokens: usize,
    /// Softmax temperature (0: greedy).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Keep the k most likely tokens (0: all).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1: off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f64,
    /// Penalty for tokens already generated (1: none).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f64,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when the text ends with this string (repeatable).
    #[arg(long = "stop")]
    pub stop_strings: Vec<String>,
    /// Natural stopping: end at the first sentence end after this many tokens.
    #[arg(long, value_name = "MIN_TOKENS")]
    pub natural: Option<usize>,
    /// Reasoning mode of an HRM: fast (1×1), normal (2×2), deep (3×2), extreme (6×4).
    #[arg(long)]
    pub mode: Option<ReasoningMode>,
    /// Explicit N, high-level cycles per segment (overrides the mode).
    #[arg(long)]
    pub h_cycles: Option<usize>,
    /// Explicit T, low-level steps per cycle (overrides the mode).
    #[arg(long)]
    pub l_cycles: Option<usize>,
    /// Most ACT segments per token (default: the trained halt_max_steps).
    #[arg(long)]
    pub halt_max_steps: Option<usize>,
    /// Recompute the whole window for every token instead of using the key/value cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Run every ACT segment of every token (halted positions frozen) instead of stopping
    /// once all have halted: the same text, no halting read inside a token (not measured yet
    /// on a GPU, where that read is what it would save).
    #[arg(long)]
    pub every_segment: bool,
}

impl GenerationArgs {
    /// The generation settings, seeing at most `context` tokens (the training sequence length).
    pub fn config(&self, context: usize) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens: (self.max_tokens > 0).then_some(self.max_tokens),
            stop_at_eos: true,
            stop_strings: self.stop_strings.clone(),
            sentence_end_after: self.natural,
            context: Some(context),
            cached: !self.no_cache,
            mode: self.mode,
            h_cycles: self.h_cycles,
            l_cycles: self.l_cycles,
            halt_max_steps: self.halt_max_steps,
            early_exit: !self.every_segment,
            sampling: SamplingConfig {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                repetition_penalty: self.repetition_penalty,
                seed: self.seed,
            },
        }
    }
}
