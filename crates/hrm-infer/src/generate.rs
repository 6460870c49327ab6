//! Autoregressive generation: the model re-reads the whole (windowed) text for every new token.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use hrm_core::LanguageModel;
use hrm_data::Tokenizer;
use serde::{Deserialize, Serialize};

use crate::sample::{Sampler, SamplingConfig};

/// What to generate and when to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationConfig {
    /// Most new tokens.
    pub max_new_tokens: usize,
    /// Stop at the tokenizer's end-of-text token.
    pub stop_at_eos: bool,
    /// Stop once the text ends with any of these.
    pub stop_strings: Vec<String>,
    /// Tokens of context the model sees (the latest ones); default its `max_seq_len`. Set it
    /// to the training sequence length: positions past it were never trained.
    pub context: Option<usize>,
    /// Next-token sampling.
    pub sampling: SamplingConfig,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 200,
            stop_at_eos: true,
            stop_strings: Vec::new(),
            context: None,
            sampling: SamplingConfig::default(),
        }
    }
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    /// The new text (without the prompt).
    pub text: String,
    /// The new token ids.
    pub tokens: Vec<u32>,
}

/// Continues `prompt`, calling `on_token` with each new piece of text as it is produced.
pub fn generate<B: Backend, M: LanguageModel<B>>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    prompt: &str,
    config: &GenerationConfig,
    device: &B::Device,
    on_token: &mut dyn FnMut(&str),
) -> hrm_data::Result<Generation> {
    let mut context = tokenizer.encode(prompt)?;
    if context.is_empty() {
        context.push(tokenizer.eos_id());
    }
    let prompt_len = context.len();
    let mut sampler = Sampler::new(config.sampling.clone());
    let mut text = String::new();
    let span = config.context.unwrap_or(usize::MAX).min(model.max_seq_len()).max(1);
    for _ in 0..config.max_new_tokens {
        let window = &context[context.len().saturating_sub(span)..];
        let ids: Vec<i64> = window.iter().map(|&t| t as i64).collect();
        let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, window.len()]), device);
        let logits = model.logits(input).narrow(1, window.len() - 1, 1);
        let values: Vec<f32> = logits.into_data().convert::<f32>().to_vec().unwrap_or_default();
        let next = sampler.sample(&values, &context[prompt_len..]);
        if config.stop_at_eos && next == tokenizer.eos_id() {
            break;
        }
        context.push(next);
        let piece = tokenizer.decode(&[next]);
        on_token(&piece);
        text.push_str(&piece);
        if config.stop_strings.iter().any(|s| text.ends_with(s.as_str())) {
            break;
        }
    }
    // Decode the whole continuation at once: byte-level pieces may split characters.
    let tokens = context[prompt_len..].to_vec();
    Ok(Generation { text: tokenizer.decode(&tokens), tokens })
}
