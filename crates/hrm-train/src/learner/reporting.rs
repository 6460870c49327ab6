//! What a run reports: each logged step's metrics (metrics.jsonl, TensorBoard, the progress
//! bar, GPU memory), evaluations with early stopping's bookkeeping, and samples.

use burn::module::AutodiffModule;
use hrm_core::{DeviceMemory, HrmAutodiffBackend};
use hrm_data::{Batches, HubOptions, Split};
use serde::Serialize;

use super::Trainer;
use super::step::StepOutcome;
use crate::error::Result;
use crate::eval::{EvalMetrics, evaluate};

#[derive(Serialize)]
struct StepRecord {
    step: u64,
    tokens: u64,
    lr: f64,
    loss: f64,
    lm_loss: f64,
    q_loss: f64,
    accuracy: f64,
    grad_norm: f64,
    segment: usize,
    running_share: f64,
    /// Mean ACT segments per position of the last finished batch.
    act_steps: f64,
    tokens_per_s: f64,
    peak_rss_bytes: Option<u64>,
    /// GPU memory now (absent on the CPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    gpu_memory: Option<DeviceMemory>,
    /// The largest GPU memory sampled so far this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_gpu_memory: Option<DeviceMemory>,
}

#[derive(Serialize)]
struct EvalRecord<'a> {
    step: u64,
    tokens: u64,
    eval: &'a EvalMetrics,
}

/// The leader's decision after an evaluation.
#[derive(Clone, Copy, Default)]
struct EvalDecision {
    /// A new best validation loss: save a `best` checkpoint.
    best: bool,
    /// Patience ran out.
    stop: bool,
}

impl<B: HrmAutodiffBackend> Trainer<B> {
    /// Writes one step's metrics (rank 0), sampling GPU memory and keeping its peak.
    pub(super) fn log_step(
        &mut self,
        outcome: &StepOutcome,
        tokens_per_s: f64,
        bar: &indicatif::ProgressBar,
    ) -> Result<()> {
        let (report, step) = (&outcome.report, self.state.step);
        let gpu_memory = B::device_memory(&self.device);
        if let Some(now) = gpu_memory {
            self.peak_gpu_memory = Some(self.peak_gpu_memory.map_or(now, |peak| peak.max(now)));
        }
        let record = StepRecord {
            step,
            tokens: self.state.tokens,
            lr: outcome.lr,
            loss: report.total,
            lm_loss: report.lm,
            q_loss: report.q,
            accuracy: report.correct / report.active.max(1.0),
            grad_norm: outcome.grad_norm,
            segment: self.pending.as_ref().map_or(0, |p| p.segment),
            running_share: outcome.running,
            act_steps: self.last_act_steps,
            tokens_per_s,
            peak_rss_bytes: crate::memory::peak_rss_bytes(),
            gpu_memory,
            peak_gpu_memory: self.peak_gpu_memory,
        };
        let Some(log) = self.log.as_mut() else { return Ok(()) };
        log.metrics(&record)?;
        log.scalars(step, &record.scalars())?;
        log.scalars(step, &crate::memory::scalars(gpu_memory.as_ref(), record.peak_rss_bytes))?;
        let memory = crate::memory::describe(gpu_memory.as_ref(), self.peak_gpu_memory.as_ref(), record.peak_rss_bytes);
        bar.set_message(format!("loss {:.4} lr {:.2e} {tokens_per_s:.0} tok/s {memory}", report.total, outcome.lr));
        Ok(())
    }

    /// Evaluates (rank 0, with the sample if one is due), then on every rank acts on rank 0's
    /// decision: a `best` checkpoint for a new best, a last checkpoint when patience ran out.
    /// Returns the metrics (on rank 0) and whether the run stops.
    pub(super) fn evaluation_round(&mut self) -> Result<(Option<EvalMetrics>, bool)> {
        let (mut metrics, mut decision) = (None, None);
        if self.link.is_leader() {
            let evaluated = self.evaluate()?;
            if crate::samples::due(&self.config, self.state.step, self.config.run.steps) {
                self.write_sample()?;
            }
            decision = Some(self.after_eval(&evaluated));
            metrics = Some(evaluated);
        }
        let decision = self.link.from_leader(decision)?;
        if decision.best {
            self.save_checkpoint(Some("best"))?;
        }
        if decision.stop {
            self.save_checkpoint(None)?;
        }
        Ok((metrics, decision.stop))
    }

    /// Evaluates on the validation split and logs the result (on rank 0 of a data-parallel
    /// run, which evaluates for all ranks).
    pub fn evaluate(&mut self) -> Result<EvalMetrics> {
        let mut batches: Batches = self.config.data.batches(
            Split::Validation,
            self.tokenizer.clone(),
            &self.data_base,
            &HubOptions::from_env(),
        )?;
        let loss = self.config.model.loss();
        let metrics =
            evaluate(&self.model.valid(), &mut batches, self.config.run.eval_batches, loss, None, &self.device)?;
        let Some(log) = self.log.as_mut() else { return Ok(metrics) };
        log.metrics(&EvalRecord { step: self.state.step, tokens: self.state.tokens, eval: &metrics })?;
        log.scalars(
            self.state.step,
            &[
                ("val/loss", metrics.loss),
                ("val/perplexity", metrics.perplexity),
                ("val/bits_per_byte", metrics.bits_per_byte),
                ("val/accuracy", metrics.accuracy),
            ],
        )?;
        log.line(&format!(
            "step {}: validation loss {:.4}, perplexity {:.2}, {:.4} bits/byte, accuracy {:.3} ({} tokens)",
            self.state.step, metrics.loss, metrics.perplexity, metrics.bits_per_byte, metrics.accuracy, metrics.tokens
        ))?;
        Ok(metrics)
    }

    /// Generates the run's sample with the model as it stands and logs it (rank 0).
    fn write_sample(&mut self) -> Result<()> {
        let at = (self.state.step, self.state.tokens);
        let sample = crate::samples::draw(&self.model.valid(), &self.tokenizer, &self.config, at, &self.device)?;
        match self.log.as_mut() {
            Some(log) => log.sample(&sample),
            None => Ok(()),
        }
    }

    /// Tracks the best validation loss: whether this evaluation is the best so far (to be
    /// checkpointed) or patience has run out.
    fn after_eval(&mut self, metrics: &EvalMetrics) -> EvalDecision {
        if !metrics.loss.is_finite() || metrics.tokens == 0 {
            return EvalDecision::default();
        }
        if self.state.best_val_loss.is_none_or(|best| metrics.loss < best) {
            self.state.best_val_loss = Some(metrics.loss);
            self.state.evals_since_best = 0;
            return EvalDecision { best: true, stop: false };
        }
        self.state.evals_since_best += 1;
        EvalDecision { best: false, stop: self.config.run.patience.is_some_and(|p| self.state.evals_since_best >= p) }
    }
}

impl StepRecord {
    /// The TensorBoard scalars of a step.
    fn scalars(&self) -> [(&'static str, f64); 9] {
        [
            ("train/loss", self.loss),
            ("train/lm_loss", self.lm_loss),
            ("train/q_loss", self.q_loss),
            ("train/accuracy", self.accuracy),
            ("train/lr", self.lr),
            ("train/grad_norm", self.grad_norm),
            ("train/running_share", self.running_share),
            ("train/act_steps", self.act_steps),
            ("train/tokens_per_s", self.tokens_per_s),
        ]
    }
}

/// The progress bar of rank 0 (hidden when not shown).
pub(super) fn progress_bar(show: bool, total: u64, position: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total).with_position(position);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps, ETA {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}
