//! Generation sweeps: every prompt under every setting, into one JSON report with each
//! output, its settings, timings and text-quality scores (schema: docs/sweep.schema.json).

use std::path::Path;

use hrm_core::{LanguageModel, ReasoningMode};
use hrm_data::Tokenizer;
use serde::{Deserialize, Serialize};

use crate::generate::{GenerationConfig, StopReason, generate};
use crate::quality::{TextQuality, WordVocabulary, text_quality};
use crate::sample::SamplingConfig;
use crate::trigrams::TrigramProfile;
use hrm_core::HrmOps;

/// The version tag every report carries.
pub const SWEEP_SCHEMA: &str = "hrm-sweep/1";

/// What to sweep: prompts × settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepPlan {
    /// The prompts.
    pub prompts: Vec<String>,
    /// The generation settings, each with a name.
    pub settings: Vec<SweepSetting>,
}

/// One named generation setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSetting {
    /// Short name, e.g. `greedy` or `t1.0-k40`.
    pub name: String,
    /// The settings.
    #[serde(default)]
    pub generation: GenerationConfig,
}

impl SweepPlan {
    /// Seed 002's sweep: 10 prompts (six in the TinyStories style, four outside it) × 8
    /// settings varying temperature, top-k/top-p, reasoning mode and ACT, `max_new_tokens` each.
    pub fn standard(max_new_tokens: usize) -> Self {
        let prompts = [
            "Once upon a time",
            "One day, a little girl named Lily",
            "The dog was very happy because",
            "Tom and his mom went to the park.",
            "There was a big red ball",
            "The sun was shining and",
            "The stock market today",
            "In quantum mechanics, the wave function",
            "def fibonacci(n):",
            "The capital of France is",
        ];
        let sampling = |temperature, top_k, top_p| SamplingConfig { temperature, top_k, top_p, ..Default::default() };
        let base = GenerationConfig { max_new_tokens: Some(max_new_tokens), ..GenerationConfig::default() };
        let setting = |name: &str, generation: GenerationConfig| SweepSetting { name: name.into(), generation };
        let settings = vec![
            setting("greedy", GenerationConfig { sampling: sampling(0.0, 0, 1.0), ..base.clone() }),
            setting("t0.5-k40", GenerationConfig { sampling: sampling(0.5, 40, 1.0), ..base.clone() }),
            setting("t0.8-k40-p0.95", GenerationConfig { sampling: sampling(0.8, 40, 0.95), ..base.clone() }),
            setting("t1.0-p0.9", GenerationConfig { sampling: sampling(1.0, 0, 0.9), ..base.clone() }),
            setting("t1.2-k100", GenerationConfig { sampling: sampling(1.2, 100, 1.0), ..base.clone() }),
            setting(
                "fast-no-act",
                GenerationConfig { mode: Some(ReasoningMode::Fast), halt_max_steps: Some(1), ..base.clone() },
            ),
            setting("deep", GenerationConfig { mode: Some(ReasoningMode::Deep), ..base.clone() }),
            setting("extreme", GenerationConfig { mode: Some(ReasoningMode::Extreme), ..base }),
        ];
        Self { prompts: prompts.map(String::from).to_vec(), settings }
    }

    /// Reads a plan from a TOML file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// One output of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepResult {
    /// Index into the plan's prompts.
    pub prompt_index: usize,
    /// The prompt.
    pub prompt: String,
    /// Name of the setting.
    pub setting: String,
    /// The settings in full.
    pub generation: GenerationConfig,
    /// The generated text (without the prompt).
    pub text: String,
    /// Tokens generated.
    pub new_tokens: usize,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Why it stopped.
    pub stop: StopReason,
    /// Wall time (seconds).
    pub seconds: f64,
    /// Generated tokens per second.
    pub tokens_per_second: f64,
    /// Text-quality scores.
    pub quality: TextQuality,
}

/// Means over one setting's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingSummary {
    /// Name of the setting.
    pub setting: String,
    /// Mean generated tokens per second.
    pub tokens_per_second: f64,
    /// Mean overall quality (0–100).
    pub quality: f64,
    /// Mean generated tokens.
    pub new_tokens: f64,
    /// Character-trigram similarity of the setting's outputs, joined, to the reference text
    /// (the training text the sweep read), where one was given.
    #[serde(default)]
    pub trigram_similarity: Option<f64>,
}

/// A whole sweep: where it ran, every output, and per-setting means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepReport {
    /// Always [`SWEEP_SCHEMA`].
    pub schema: String,
    /// The checkpoint swept.
    pub checkpoint: String,
    /// The model's one-line summary.
    pub model: String,
    /// Its parameter count.
    pub parameters: usize,
    /// Where it ran.
    pub device: String,
    /// Every output, prompt-major.
    pub results: Vec<SweepResult>,
    /// Means per setting, in plan order.
    pub summary: Vec<SettingSummary>,
}

impl SweepReport {
    /// Fills in the per-setting means from `results`, and their trigram similarity to
    /// `reference` when given.
    pub fn new(
        checkpoint: String,
        model: String,
        parameters: usize,
        device: String,
        results: Vec<SweepResult>,
        plan: &SweepPlan,
        reference: Option<&TrigramProfile>,
    ) -> Self {
        let summary = plan
            .settings
            .iter()
            .map(|s| {
                let mine: Vec<&SweepResult> = results.iter().filter(|r| r.setting == s.name).collect();
                let mean =
                    |f: &dyn Fn(&SweepResult) -> f64| mine.iter().map(|r| f(r)).sum::<f64>() / mine.len().max(1) as f64;
                let joined = mine.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("\n");
                SettingSummary {
                    setting: s.name.clone(),
                    tokens_per_second: mean(&|r| r.tokens_per_second),
                    quality: mean(&|r| r.quality.overall),
                    new_tokens: mean(&|r| r.new_tokens as f64),
                    trigram_similarity: reference.map(|p| TrigramProfile::from_text(&joined).cosine(p)),
                }
            })
            .collect();
        Self { schema: SWEEP_SCHEMA.into(), checkpoint, model, parameters, device, results, summary }
    }
}

/// Runs `plan` (each setting's `context` defaults to `context`), calling `progress(done, total)`.
pub fn run_sweep<B: HrmOps, M: LanguageModel<B>>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    plan: &SweepPlan,
    context: usize,
    vocabulary: Option<&WordVocabulary>,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize),
) -> hrm_data::Result<Vec<SweepResult>> {
    let total = plan.prompts.len() * plan.settings.len();
    let mut results = Vec::with_capacity(total);
    for (prompt_index, prompt) in plan.prompts.iter().enumerate() {
        for setting in &plan.settings {
            let mut generation = setting.generation.clone();
            generation.context.get_or_insert(context);
            let out = generate(model, tokenizer, prompt, &generation, device, &mut |_| {})?;
            results.push(SweepResult {
                prompt_index,
                prompt: prompt.clone(),
                setting: setting.name.clone(),
                quality: text_quality(&out.text, vocabulary),
                tokens_per_second: out.tokens_per_second(),
                new_tokens: out.tokens.len(),
                prompt_tokens: out.prompt_tokens,
                stop: out.stop,
                seconds: out.seconds,
                text: out.text,
                generation,
            });
            progress(results.len(), total);
        }
    }
    Ok(results)
}
