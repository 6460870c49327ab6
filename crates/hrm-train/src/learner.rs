//! The training loop: deep supervision with one optimiser step per ACT segment, AdamW with
//! its own embedding learning rate, global clipping, a NaN guard, evaluation with early
//! stopping, atomic checkpoints and exact resume; the same loop on every rank of a
//! data-parallel run (`data_parallel` starts the ranks).
//!
//! burn-train's `Learner` runs one forward per step over a stateless batch; the HRM's deep
//! supervision carries state across optimiser steps and halts positions between them, so
//! this loop is our own (docs/training.md says more). This file holds the loop; its pieces
//! live beside it:
//!
//! - `setup`: starting and resuming a run, and reading its batches;
//! - `phases`: new data mid-run (continual learning, curriculum) and layer growth;
//! - `step`: one optimiser step as the sequence of the pieces below;
//! - `segment`: one ACT segment of every micro-batch, its loss and gradients;
//! - `ranks`: the step's losses and counts reduced over data-parallel ranks;
//! - `guards`: the non-finite and spike guard, and the faults tests inject;
//! - `reporting`: metrics, the progress bar, evaluation and samples;
//! - `checkpointing`: writing a checkpoint and the carries it keeps;
//! - `data_parallel`: the ranks of a run over several devices.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder};
use burn::tensor::backend::AutodiffBackend;
use hrm_core::layers::Precision;
use hrm_core::{DeviceMemory, HrmAutodiffBackend, Model};
use hrm_data::{AnyTokenizer, DataConfig, Prefetcher};
use serde::Serialize;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::eval::EvalMetrics;
use crate::optimizer::FlatAdamW;
use crate::parallel::{PeerLink, weights_checksum};
use crate::run::{RunDir, RunLog};
use crate::state::TrainState;

mod checkpointing;
mod data_parallel;
mod guards;
mod phases;
mod ranks;
mod reporting;
mod segment;
mod setup;
mod step;

use checkpointing::RankPlace;
pub use checkpointing::decode_carries;
pub use data_parallel::DataParallel;
pub use guards::{Faults, RankFailure};
use segment::BatchInProgress;

type Bytes = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// How a run is driven from outside.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Show a progress bar (off for CI and tests).
    pub progress: bool,
    /// Set to stop at the next step with a pause checkpoint (Ctrl+C).
    pub stop: Arc<AtomicBool>,
    /// Pause (with a pause checkpoint) once this many steps are done, as a stop request would.
    pub pause_at_step: Option<u64>,
    /// Faults to inject on purpose (tests of the guards); none by default.
    pub faults: Faults,
    /// How the model computes its products and attention (mixed precision: bf16 products of
    /// f32 weights); the backend's own by default.
    pub precision: Precision,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// All configured steps ran.
    Finished,
    /// Validation loss stopped improving for `patience` evaluations.
    EarlyStopped,
    /// A stop was requested; a pause checkpoint was written.
    Paused,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Steps taken in total (including earlier sessions of a resumed run).
    pub step: u64,
    /// Training tokens read in total.
    pub tokens: u64,
    /// Loss of every step this session ran, in order (NaN for skipped steps).
    pub losses: Vec<f64>,
    /// The last evaluation.
    pub last_eval: Option<EvalMetrics>,
    /// Why it ended.
    pub stop: StopReason,
    /// Sum and sum of squares of each rank's weights at the end, in rank order (one entry
    /// on one device): equal while the replicas agree.
    pub replica_checksums: Vec<[f64; 2]>,
    /// The largest GPU memory rank 0 sampled at its logged steps, where the backend can tell.
    pub peak_gpu_memory: Option<DeviceMemory>,
    /// The process's peak resident host memory in bytes, where the platform tells.
    pub peak_rss_bytes: Option<u64>,
}

/// A run in memory: model, optimiser, data and counters.
pub struct Trainer<B: AutodiffBackend> {
    config: TrainConfig,
    run: RunDir,
    device: B::Device,
    model: Model<B>,
    optim: FlatAdamW<B>,
    state: TrainState,
    train: Prefetcher,
    pending: Option<BatchInProgress<B>>,
    data_base: std::path::PathBuf,
    tokenizer: Arc<AnyTokenizer>,
    /// The run's logs; only rank 0 writes them.
    log: Option<RunLog>,
    last_act_steps: f64,
    /// This rank and its group (a group of one on one device).
    link: PeerLink,
    /// Tokens and text bytes read since the last step, not yet in `state`.
    fresh: (u64, u64),
    /// On rank 0 of a resumed data-parallel run: where the other ranks start.
    peer_starts: Vec<RankPlace>,
    /// The largest GPU memory sampled at logged steps this session.
    peak_gpu_memory: Option<DeviceMemory>,
}

fn record_error(path: &Path, what: &str, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.to_path_buf(), reason: format!("{what}: {e}") }
}

impl<B: HrmAutodiffBackend> Trainer<B> {
    /// The tokenizer.
    pub fn tokenizer(&self) -> &AnyTokenizer {
        &self.tokenizer
    }

    /// The model as it stands.
    pub fn model(&self) -> &Model<B> {
        &self.model
    }

    /// Counters and positions.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// Runs until the configured step count, early stopping, or a stop request; on every
    /// rank of a data-parallel run alike, rank 0 deciding (pause, early stop, best
    /// checkpoint) and the others following.
    pub fn run(mut self, options: &TrainOptions) -> Result<TrainSummary> {
        self.model = self.model.with_precision(options.precision);
        let bar =
            reporting::progress_bar(options.progress && self.link.is_leader(), self.config.run.steps, self.state.step);
        let (mut losses, mut last_eval) = (Vec::new(), None);
        // Tokens through the model per second: each step runs its whole batch once on every rank.
        let mut window = (Instant::now(), 0u64);
        let stop = loop {
            if self.state.step >= self.config.run.steps && !self.next_phase(&bar)? {
                break StopReason::Finished;
            }
            if self.pause_requested(options)? {
                break StopReason::Paused;
            }
            let outcome = self.train_step(options)?;
            losses.push(outcome.report.total);
            window.1 += self.step_tokens() * self.link.world() as u64;
            let (step, total) = (self.state.step, self.config.run.steps);
            if self.link.is_leader() && (step.is_multiple_of(self.config.run.log_every) || step == total) {
                let tokens_per_s = window.1 as f64 / window.0.elapsed().as_secs_f64().max(1e-9);
                window = (Instant::now(), 0);
                self.log_step(&outcome, tokens_per_s, &bar)?;
            }
            bar.set_position(step);
            if step.is_multiple_of(self.config.run.eval_every) || step == total {
                let (metrics, stop) = self.evaluation_round()?;
                last_eval = metrics.or(last_eval);
                if stop {
                    break StopReason::EarlyStopped;
                }
            }
            if step.is_multiple_of(self.config.run.checkpoint_every) || step == total {
                self.save_checkpoint(None)?;
            }
        };
        bar.finish_and_clear();
        self.finish(stop, losses, last_eval)
    }

    /// At the end of a phase: starts the next curriculum phase if there is one (phase k ≥ 1
    /// is `curriculum[k - 1]`); `false` when the run is done.
    fn next_phase(&mut self, bar: &indicatif::ProgressBar) -> Result<bool> {
        let Some(phase) = self.config.curriculum.get(self.state.datasets.len() - 1).cloned() else {
            return Ok(false);
        };
        let data = DataConfig { sources: phase.sources, mix: phase.mix, ..self.config.data.clone() };
        self.start_phase(data, phase.steps)?;
        bar.set_length(self.config.run.steps);
        Ok(true)
    }

    /// Whether rank 0 was asked to stop (Ctrl+C, or `pause_at_step`); if so every rank
    /// takes part in the pause checkpoint.
    fn pause_requested(&mut self, options: &TrainOptions) -> Result<bool> {
        let pause = self.link.is_leader().then(|| {
            options.stop.load(Ordering::SeqCst) || options.pause_at_step.is_some_and(|p| self.state.step >= p)
        });
        if !self.link.from_leader(pause)? {
            return Ok(false);
        }
        self.save_checkpoint(Some("pause"))?;
        let (step, root) = (self.state.step, self.run.root().display().to_string());
        self.note(&format!("paused at step {step}; resume with --resume {root}"))?;
        Ok(true)
    }

    /// The summary of a run that stopped for `stop`, its last line in the log.
    fn finish(&mut self, stop: StopReason, losses: Vec<f64>, last_eval: Option<EvalMetrics>) -> Result<TrainSummary> {
        let peak_rss_bytes = crate::memory::peak_rss_bytes();
        let memory = crate::memory::describe(None, self.peak_gpu_memory.as_ref(), peak_rss_bytes);
        let (step, tokens) = (self.state.step, self.state.tokens);
        self.note(&format!("stopped ({stop:?}) at step {step} after {tokens} tokens; {memory}"))?;
        let replica_checksums = vec![weights_checksum(&self.model)];
        let peak_gpu_memory = self.peak_gpu_memory;
        Ok(TrainSummary { step, tokens, losses, last_eval, stop, replica_checksums, peak_gpu_memory, peak_rss_bytes })
    }

    /// A line in `train.log` (rank 0; the other ranks write nothing).
    fn note(&mut self, line: &str) -> Result<()> {
        match self.log.as_mut() {
            Some(log) => log.line(line),
            None => Ok(()),
        }
    }

    /// Tokens one step runs through the model.
    fn step_tokens(&self) -> u64 {
        (self.config.data.batch_size * self.config.data.seq_len * self.config.optim.grad_accum) as u64
    }
}
