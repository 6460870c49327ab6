//! Validation metrics: loss, perplexity, bits per byte and token accuracy, of a model or of
//! a run's checkpoint.

use hrm_core::{HaltPolicy, LanguageModel, LossKind, Model, Thinking, cross_entropy};
use hrm_data::Batches;
use serde::Serialize;

use crate::checkpoint_choice::CheckpointChoice;
use crate::error::Result;
use crate::run::{LoadedRun, load_run_at};
use hrm_core::HrmOps;

/// Metrics over a validation set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalMetrics {
    /// Mean cross-entropy per token (nats).
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// Total nats / ln 2 / bytes of text: comparable across tokenizers.
    pub bits_per_byte: f64,
    /// Share of tokens whose argmax is the target.
    pub accuracy: f64,
    /// Tokens evaluated.
    pub tokens: u64,
}

/// Evaluates `model` on up to `max_batches` batches. Without `thinking` the HRM runs every
/// position for its full `halt_max_steps` segments with its trained N and T, as the reference
/// evaluates, so the result is deterministic; `thinking` overrides N, T and halting (the
/// reasoning modes). The flat model ignores it.
pub fn evaluate<B: HrmOps>(
    model: &Model<B>,
    batches: &mut Batches,
    max_batches: usize,
    loss: LossKind,
    thinking: Option<&Thinking>,
    device: &B::Device,
) -> Result<EvalMetrics> {
    let (mut nats, mut tokens, mut correct, mut bytes) = (0.0f64, 0u64, 0.0f64, 0.0f64);
    for _ in 0..max_batches {
        let Some(batch) = batches.next_batch()? else { break };
        let (inputs, targets) = batch.to_tensors::<B>(device);
        let logits = match model {
            Model::Hrm(hrm) => match thinking {
                Some(t) => hrm.forward(inputs, t.cycles(hrm.cycles()), &hrm.halt_policy(t)),
                None => hrm.forward(inputs, hrm.cycles(), &HaltPolicy::fixed(hrm.halt_max_steps())),
            },
            Model::Flat(flat) => flat.logits(inputs),
        };
        let right = logits.clone().argmax(2).squeeze_dim::<2>(2).equal(targets.clone()).int().sum();
        let ce = cross_entropy(loss, logits, targets).sum();
        nats += ce.into_data().iter::<f64>().next().unwrap_or(f64::NAN);
        correct += right.into_data().iter::<f64>().next().unwrap_or(0.0);
        tokens += (batch.batch_size * batch.seq_len) as u64;
        bytes += batch.bytes;
    }
    let loss = nats / tokens.max(1) as f64;
    Ok(EvalMetrics {
        loss,
        perplexity: loss.exp(),
        bits_per_byte: nats / std::f64::consts::LN_2 / bytes.max(1.0),
        accuracy: correct / tokens.max(1) as f64,
        tokens,
    })
}

/// Evaluates the run's `checkpoint` on the validation split of `data` (paths relative to
/// `base`), with the run's own tokenizer, the model at `precision`; `thinking` as in
/// [`evaluate`].
#[allow(clippy::too_many_arguments)]
pub fn evaluate_run<B: HrmOps>(
    run: &crate::RunDir,
    checkpoint: &CheckpointChoice,
    data: &hrm_data::DataConfig,
    base: &std::path::Path,
    max_batches: usize,
    thinking: Option<&Thinking>,
    precision: hrm_core::layers::Precision,
    device: &B::Device,
) -> Result<(EvalMetrics, std::path::PathBuf)> {
    let LoadedRun { config, tokenizer, model, checkpoint: path, .. } = load_run_at::<B>(run, checkpoint, device)?;
    let model = model.with_precision(precision);
    let loss = config.model.loss();
    let mut batches = data.batches(
        hrm_data::Split::Validation,
        std::sync::Arc::new(tokenizer),
        base,
        &hrm_data::HubOptions::from_env(),
    )?;
    Ok((evaluate(&model, &mut batches, max_batches, loss, thinking, device)?, path))
}
