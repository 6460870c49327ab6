//! Autoregressive generation of one prompt or a batch: cached decoding, reasoning modes,
//! streaming, and the stop conditions.

use std::time::Instant;

use hrm_core::{LanguageModel, ReasoningMode, Thinking};
use hrm_data::Tokenizer;
use serde::{Deserialize, Serialize};

use crate::decoder::Decoder;
use crate::sample::{Sampler, SamplingConfig};
use hrm_core::HrmOps;

/// What to generate and when to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationConfig {
    /// Most new tokens; `None` is unlimited: only a natural stop ends the text (end of text,
    /// a stop string, or a sentence end once `min_tokens` are out).
    pub max_new_tokens: Option<usize>,
    /// Stop at the tokenizer's end-of-text token.
    pub stop_at_eos: bool,
    /// Stop once the text ends with any of these (they are cut from the returned text).
    pub stop_strings: Vec<String>,
    /// Natural stopping: stop at the first sentence end (`.`, `!`, `?` or a blank line)
    /// after at least this many new tokens; `None`: off.
    pub sentence_end_after: Option<usize>,
    /// Tokens of context the model sees (the latest ones); default its `max_seq_len`. Set it
    /// to the training sequence length: positions past it were never trained.
    pub context: Option<usize>,
    /// Reuse every earlier position's keys and values (off: recompute the window per token).
    pub cached: bool,
    /// Reasoning mode: sets N and T (an HRM setting; the flat baseline ignores it).
    pub mode: Option<ReasoningMode>,
    /// Explicit N (high-level cycles), overriding the mode's.
    pub h_cycles: Option<usize>,
    /// Explicit T (low-level steps per cycle), overriding the mode's.
    pub l_cycles: Option<usize>,
    /// Most ACT segments per token (default: the trained `halt_max_steps`).
    pub halt_max_steps: Option<usize>,
    /// Cached decoding stops a token's segments once every row halted (reading the halting
    /// mask each segment); off, it runs them all with no read: the same tokens
    /// ([`Thinking::early_exit`]).
    pub early_exit: bool,
    /// Next-token sampling.
    pub sampling: SamplingConfig,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: Some(200),
            stop_at_eos: true,
            stop_strings: Vec::new(),
            sentence_end_after: None,
            context: None,
            cached: true,
            mode: None,
            h_cycles: None,
            l_cycles: None,
            halt_max_steps: None,
            early_exit: true,
            sampling: SamplingConfig::default(),
        }
    }
}

impl GenerationConfig {
    /// The reasoning settings these fields ask for (unset ones keep the trained values).
    pub fn thinking(&self) -> Thinking {
        let mode = self.mode.map(ReasoningMode::cycles);
        Thinking {
            h_cycles: self.h_cycles.or(mode.map(|c| c.h)),
            l_cycles: self.l_cycles.or(mode.map(|c| c.l)),
            max_steps: self.halt_max_steps,
            adaptive: true,
            early_exit: self.early_exit,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `max_new_tokens` reached.
    Length,
    /// The end-of-text token came.
    EndOfText,
    /// A stop string came.
    StopString,
    /// A sentence ended after the minimum length (natural stopping).
    SentenceEnd,
}

/// One generated token, as streamed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratedToken {
    /// Token id.
    pub id: u32,
    /// The new text it completes (may be empty while a multi-byte character is incomplete).
    pub text: String,
    /// Its probability under the model (softmax of the raw logits).
    pub probability: f64,
    /// The model's most likely tokens and their probabilities, best first.
    pub alternatives: Vec<(u32, f64)>,
    /// ACT segments the model ran before predicting it (HRM, cached decoding).
    pub steps: Option<u32>,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    /// The new text (without the prompt or a final stop string).
    pub text: String,
    /// The new token ids.
    pub tokens: Vec<u32>,
    /// Why it ended.
    pub stop: StopReason,
    /// Prompt tokens read.
    pub prompt_tokens: usize,
    /// Wall time from the first prompt token to the last new token (seconds).
    pub seconds: f64,
}

impl Generation {
    /// New tokens per second of wall time.
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens.len() as f64 / self.seconds.max(1e-9)
    }
}

/// Continues `prompt`, calling `on_token` with each token as it is produced.
pub fn generate<B: HrmOps, M: LanguageModel<B>>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    prompt: &str,
    config: &GenerationConfig,
    device: &B::Device,
    on_token: &mut dyn FnMut(&GeneratedToken),
) -> hrm_data::Result<Generation> {
    let mut all = generate_batch(model, tokenizer, &[prompt], config, device, &mut |_, t| on_token(t))?;
    Ok(all.remove(0))
}

/// Continues every prompt in one batch (row `i` samples from seed `seed + i`), calling
/// `on_token(row, token)` as tokens are produced; rows stop independently.
pub fn generate_batch<B: HrmOps, M: LanguageModel<B>>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    prompts: &[&str],
    config: &GenerationConfig,
    device: &B::Device,
    on_token: &mut dyn FnMut(usize, &GeneratedToken),
) -> hrm_data::Result<Vec<Generation>> {
    let started = Instant::now();
    let mut rows = Vec::with_capacity(prompts.len());
    for (i, prompt) in prompts.iter().enumerate() {
        rows.push(Row::new(tokenizer.encode(prompt)?, tokenizer.eos_id(), config, i as u64));
    }
    let window = config.context.unwrap_or(usize::MAX);
    let mut decoder = Decoder::new(model, device, config.thinking(), window, config.cached);
    let mut next = decoder.start(rows.iter().map(|r| r.prompt.clone()).collect());
    while rows.iter().any(|r| r.stop.is_none()) {
        let mut chosen = Vec::with_capacity(rows.len());
        for (i, (row, logits)) in rows.iter_mut().zip(&next).enumerate() {
            match row.stop {
                None => {
                    let token = row.step(logits, tokenizer, config, started);
                    chosen.push(token.id);
                    if row.stop != Some(StopReason::EndOfText) {
                        on_token(i, &token);
                    }
                }
                Some(_) => chosen.push(tokenizer.eos_id()),
            }
        }
        if rows.iter().all(|r| r.stop.is_some()) {
            break;
        }
        next = decoder.push(&chosen);
    }
    Ok(rows.into_iter().map(|r| r.finish(tokenizer, config)).collect())
}

/// One prompt's progress.
struct Row {
    prompt: Vec<u32>,
    prompt_len: usize,
    new: Vec<u32>,
    streamed: String,
    sampler: Sampler,
    stop: Option<StopReason>,
    seconds: f64,
}

impl Row {
    fn new(mut prompt: Vec<u32>, eos: u32, config: &GenerationConfig, offset: u64) -> Self {
        let prompt_len = prompt.len();
        if prompt.is_empty() {
            prompt.push(eos);
        }
        let sampling = SamplingConfig { seed: config.sampling.seed.wrapping_add(offset), ..config.sampling.clone() };
        let stop = (config.max_new_tokens == Some(0)).then_some(StopReason::Length);
        Self {
            prompt,
            prompt_len,
            new: Vec::new(),
            streamed: String::new(),
            sampler: Sampler::new(sampling),
            stop,
            seconds: 0.0,
        }
    }

    /// Samples the next token from `next`, records it and decides whether to stop.
    fn step(
        &mut self,
        next: &crate::decoder::NextLogits,
        tokenizer: &dyn Tokenizer,
        config: &GenerationConfig,
        started: Instant,
    ) -> GeneratedToken {
        let id = self.sampler.sample(&next.logits, &self.new);
        let (probability, alternatives) = crate::sample::model_probabilities(&next.logits, id, 3);
        self.seconds = started.elapsed().as_secs_f64();
        let mut token = GeneratedToken { id, text: String::new(), probability, alternatives, steps: next.steps };
        if config.stop_at_eos && id == tokenizer.eos_id() {
            self.stop = Some(StopReason::EndOfText);
            return token;
        }
        self.new.push(id);
        // Decode the whole continuation: byte-level pieces may split a character.
        let text = tokenizer.decode(&self.new);
        if !text.ends_with('\u{FFFD}') && text.starts_with(&self.streamed) {
            token.text = text[self.streamed.len()..].to_string();
            self.streamed = text;
        }
        self.stop = if config.stop_strings.iter().any(|s| !s.is_empty() && self.streamed.ends_with(s.as_str())) {
            Some(StopReason::StopString)
        } else if config.sentence_end_after.is_some_and(|min| self.new.len() >= min) && ends_sentence(&self.streamed) {
            Some(StopReason::SentenceEnd)
        } else if config.max_new_tokens.is_some_and(|max| self.new.len() >= max) {
            Some(StopReason::Length)
        } else {
            None
        };
        token
    }

    fn finish(self, tokenizer: &dyn Tokenizer, config: &GenerationConfig) -> Generation {
        let mut text = tokenizer.decode(&self.new);
        if self.stop == Some(StopReason::StopString)
            && let Some(s) = config.stop_strings.iter().find(|s| !s.is_empty() && text.ends_with(s.as_str()))
        {
            text.truncate(text.len() - s.len());
        }
        Generation {
            text,
            tokens: self.new,
            stop: self.stop.unwrap_or(StopReason::Length),
            prompt_tokens: self.prompt_len,
            seconds: self.seconds,
        }
    }
}

/// Whether `text` ends a sentence: `.`, `!` or `?` (closing quotes allowed after), or a blank line.
fn ends_sentence(text: &str) -> bool {
    let trimmed = text.trim_end_matches(['"', '\'', '”', '’', ')']);
    trimmed.ends_with(['.', '!', '?']) && !trimmed.ends_with("...") || text.ends_with("\n\n")
}
