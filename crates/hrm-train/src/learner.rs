//! The training loop: deep supervision with one optimiser step per ACT segment, AdamW with
//! its own embedding learning rate, global clipping, a NaN guard, evaluation with early
//! stopping, atomic checkpoints and exact resume; the same loop on every rank of a
//! data-parallel run (`data_parallel` starts the ranks).
//!
//! burn-train's `Learner` runs one forward per step over a stateless batch; the HRM's deep
//! supervision carries state across optimiser steps and halts positions between them, so
//! this loop is our own (docs/training.md says more).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor};
use hrm_core::layers::Precision;
use hrm_core::{DeviceMemory, HaltPolicy, HrmCarry, Model, exploration_min_steps};
use hrm_data::{AnyTokenizer, Batches, DataConfig, HubOptions, Prefetcher, Shard, Split};
use rand::{SeedableRng, rngs::StdRng};
use serde::Serialize;

use crate::checkpoint;
use crate::config::{SPIKE_WARMUP_STEPS, TrainConfig};
use crate::error::{Result, TrainError};
use crate::eval::{EvalMetrics, evaluate};
use crate::gradients::FlatGradients;
use crate::objective::{SegmentReport, hrm_segment_loss, lm_loss};
use crate::optimizer::{AdamWRecord, FlatAdamW};
use crate::parallel::{PeerLink, average_gradients, weights_checksum};
use crate::run_dir::{RunDir, RunLog};
use crate::state::{PeerPosition, SavedCarry, TrainState};
use hrm_core::HrmAutodiffBackend;

mod data_parallel;
pub use data_parallel::DataParallel;

/// One micro-batch: inputs, targets, and its ACT carry once a segment has run.
type MicroBatch<B> = (Tensor<B, 2, Int>, Tensor<B, 2, Int>, Option<HrmCarry<B>>);
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

/// Faults injected at given steps (1-based, as logged), to prove the guards work.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Make the loss of this step NaN.
    pub nan_loss_at: Option<u64>,
    /// Make every gradient of this step NaN while the loss stays finite.
    pub nan_gradient_at: Option<u64>,
    /// Multiply the loss (and so the gradients) of this step by 1000: an exploding loss.
    pub loss_spike_at: Option<u64>,
    /// Make one data-parallel rank fail at the start of a step, with an error or a panic.
    pub rank_failure: Option<RankFailure>,
}

/// A failure of one data-parallel rank, injected by [`Faults::rank_failure`].
#[derive(Debug, Clone, Copy)]
pub struct RankFailure {
    /// The rank that fails.
    pub rank: usize,
    /// The step (1-based) it fails at.
    pub step: u64,
    /// Panic instead of returning an error.
    pub panic: bool,
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

/// What each rank tells the others after a step's backward pass.
#[derive(Clone, Copy)]
struct StepShare {
    /// Its segment's losses and counts (summed over its micro-batches).
    report: SegmentReport,
    /// Positions still running and positions in all.
    running: (f64, f64),
    /// Tokens and bytes of text it read since the last step.
    fresh: (u64, u64),
    /// Mean ACT segments of its batch, if that batch could end with this step (all halted,
    /// or the segment cap).
    act_steps: Option<f64>,
}

/// What each rank contributes to a checkpoint that rank 0 writes.
#[derive(Clone)]
struct CheckpointPart {
    place: RankPlace,
    checksum: [f64; 2],
}

/// The leader's decision after an evaluation.
#[derive(Clone, Copy, Default)]
struct EvalDecision {
    /// A new best validation loss: save a `best` checkpoint.
    best: bool,
    /// Patience ran out.
    stop: bool,
}

/// Where one rank stands in its data: its position and the ACT carries of its batch in
/// progress (what a checkpoint keeps per rank, and where a resumed rank starts).
#[derive(Clone, Default)]
struct RankPlace {
    position: PeerPosition,
    carries: Option<Vec<Option<SavedCarry>>>,
}

/// One batch split into micro-batches, with each micro-batch's ACT carry.
struct BatchInProgress<B: AutodiffBackend> {
    micro: Vec<MicroBatch<B>>,
    segment: usize,
    cursor_after: Option<hrm_data::DataCursor>,
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
    /// A new run in `run` (which must hold no checkpoint), with a prepared tokenizer and a
    /// config whose model vocabulary already matches it. `data_base` anchors relative paths.
    pub fn start(
        config: TrainConfig,
        tokenizer: AnyTokenizer,
        run: RunDir,
        data_base: &Path,
        device: B::Device,
    ) -> Result<Self> {
        Self::start_linked(config, tokenizer, run, data_base, device, PeerLink::alone())
    }

    fn start_linked(
        mut config: TrainConfig,
        tokenizer: AnyTokenizer,
        run: RunDir,
        data_base: &Path,
        device: B::Device,
        link: PeerLink,
    ) -> Result<Self> {
        config.validate()?;
        check_growth(&config, link.world())?;
        // The saved config names data by absolute path, so a resume works from any folder.
        config.data.absolutize(data_base);
        for phase in &mut config.curriculum {
            let mut data = DataConfig {
                sources: std::mem::take(&mut phase.sources),
                mix: phase.mix.take(),
                ..config.data.clone()
            };
            data.absolutize(data_base);
            (phase.sources, phase.mix) = (data.sources, data.mix);
        }
        if !checkpoint::list(&run.checkpoints()).is_empty() {
            return Err(TrainError::Config(format!(
                "{} already holds a run; resume it or choose another folder",
                run.root().display()
            )));
        }
        run.create()?;
        // The tokenizer first: a config.toml marks a run that `--resume` can start again.
        tokenizer.save_to_dir(run.root())?;
        run.write_config(&config)?;
        let model = config.model.init::<B>(config.run.seed, &device);
        let state = TrainState::new(&config);
        let mut log = RunLog::open(&run)?;
        log.line(&format!("new run in {}: {} parameters", run.root().display(), config.model.num_params()))?;
        if link.world() > 1 {
            log.line(&format!("data-parallel over {} devices", link.world()))?;
        }
        let tokenizer = Arc::new(tokenizer);
        Self::assemble(config, run, device, model, None, state, None, tokenizer, data_base, Some(log), link)
    }

    /// Continues the run in `run` from its newest intact checkpoint. Damaged newer ones are
    /// passed over (the log says which and why), a missing or damaged run-folder tokenizer is
    /// restored from the checkpoint's copy, and a run stopped before its first checkpoint
    /// starts again from step 0 (the same seeded start, so nothing differs).
    pub fn resume(run: RunDir, device: B::Device) -> Result<Self> {
        Self::resume_linked(run, device, PeerLink::alone())
    }

    fn resume_linked(run: RunDir, device: B::Device, link: PeerLink) -> Result<Self> {
        let data_base = run.root().to_path_buf();
        let data_base = data_base.as_path();
        let mut config = run.load_config()?;
        check_growth(&config, link.world())?;
        let mut log = RunLog::open(&run)?;
        run.create()?;
        checkpoint::remove_leftovers(&run.checkpoints())?;
        let (tokenizer, fallback) = crate::tokenizer_check::run_tokenizer(&run)?;
        if let Some(why) = fallback {
            let restored = crate::tokenizer_check::restore_tokenizer(&run)?;
            log.line(&format!("{why}; restored it as {}", restored.display()))?;
        }
        let tokenizer = Arc::new(tokenizer);
        if checkpoint::list(&run.checkpoints()).is_empty() {
            log.line("no checkpoint yet (the run stopped before its first): starting again from step 0")?;
            let model = config.model.init::<B>(config.run.seed, &device);
            let mut state = TrainState::new(&config);
            state.peers = vec![PeerPosition::default(); link.world() - 1];
            let log = Some(log);
            return Self::assemble(config, run, device, model, None, state, None, tokenizer, data_base, log, link);
        }
        let checkpoint = checkpoint::newest_intact(&run)?;
        let path = &checkpoint.path;
        if !checkpoint.passed_over.is_empty() {
            log.line(&format!(
                "fell back to {} (newer checkpoints are damaged:{})",
                path.display(),
                checkpoint.passed_over
            ))?;
        }
        log.line(&format!("resuming from {}", path.display()))?;
        let state = checkpoint.state()?;
        if state.world() != link.world() {
            return Err(TrainError::Config(format!(
                "{} was trained on {} device(s) and is being resumed on {}: resume it on {} (each device has its own data position and ACT state)",
                run.root().display(),
                state.world(),
                link.world(),
                state.world()
            )));
        }
        let model_config = state.model_for(&config.model, path)?;
        if model_config != config.model {
            // A layer growth whose config.toml rewrite did not happen: the checkpoint rules.
            config.model = model_config;
            run.write_config(&config)?;
        }
        let model = checkpoint.model::<B>(&config.model, config.run.seed, &device)?;
        let optims = (checkpoint.record("optim.mpk", &device)?, checkpoint.record("optim_embed.mpk", &device)?);
        let carries_of = |rank: usize| -> Result<Option<Vec<Option<SavedCarry>>>> {
            let name = carry_file(rank);
            match checkpoint.get(&name) {
                Some(bytes) => Ok(Some(decode_carries(bytes, &config).map_err(|e| record_error(path, &name, e))?)),
                None => Ok(None),
            }
        };
        let carries = carries_of(0)?;
        let mut peer_starts = Vec::new();
        for (i, position) in state.peers.iter().enumerate() {
            peer_starts.push(RankPlace { position: position.clone(), carries: carries_of(i + 1)? });
        }
        let log = Some(log);
        let mut trainer =
            Self::assemble(config, run, device, model, Some(optims), state, carries, tokenizer, data_base, log, link)?;
        trainer.peer_starts = peer_starts;
        Ok(trainer)
    }

    /// Continues the run in `run` on new data for `extra_steps` more steps (continual
    /// learning): a character tokenizer learns the new data's characters, the model grows
    /// embedding rows and output columns for them (old weights kept bit for bit), the
    /// optimiser drops its state for the resized parameters only, the learning-rate schedule
    /// restarts, and the dataset history records the new phase.
    pub fn continue_on(
        run: RunDir,
        mut data: DataConfig,
        data_base: &Path,
        extra_steps: u64,
        device: B::Device,
    ) -> Result<Self> {
        let mut trainer = Self::resume(run, device)?;
        data.absolutize(data_base);
        trainer.start_phase(data, extra_steps)?;
        Ok(trainer)
    }

    /// Switches to new data (absolute paths) for `steps` more steps: the shared part of
    /// [`Trainer::continue_on`] and curriculum phases.
    fn start_phase(&mut self, data: DataConfig, steps: u64) -> Result<()> {
        let mut config = self.config.clone();
        config.data = data;
        config.run.steps = self.state.step + steps;
        config.validate()?;
        let base = self.run.root().to_path_buf();
        let mut tokenizer = (*self.tokenizer).clone();
        let old_vocab = hrm_data::Tokenizer::vocab_size(&tokenizer);
        if let AnyTokenizer::Char(chars) = &mut tokenizer {
            let name = config.data.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join("+");
            for doc in crate::config::first_documents(&config.data, &base, config.run.tokenizer_docs)? {
                chars.extend(&doc, &name);
            }
        }
        let new_vocab = hrm_data::Tokenizer::vocab_size(&tokenizer);
        if new_vocab > old_vocab {
            let seed = config.run.seed ^ self.state.step;
            self.model = self.model.clone().grow_vocab(new_vocab, seed);
            config.model.set_vocab_size(new_vocab);
            let live = param_ids(&self.model);
            self.optim.retain(|id| live.contains(&id));
            self.note(&format!(
                "vocabulary grew from {old_vocab} to {new_vocab}; optimiser state reset for the embedding and output head"
            ))?;
        }
        let state = &mut self.state;
        state.model = config.model.clone();
        state.cursor = None;
        state.segment = 0;
        state.peers.iter_mut().for_each(|p| *p = PeerPosition::default());
        state.phase_start = state.step;
        state.best_val_loss = None;
        state.evals_since_best = 0;
        state.loss_mean = None;
        state.accepted_in_phase = 0;
        state.datasets.push(crate::state::DatasetRecord {
            sources: config.data.sources.iter().map(|s| s.name.clone()).collect(),
            from_step: state.step,
            from_tokens: state.tokens,
        });
        let sources = state.datasets.last().map(|d| d.sources.join("+")).unwrap_or_default();
        let phase = state.datasets.len();
        if self.link.is_leader() {
            self.run.write_config(&config)?;
            tokenizer.save_to_dir(self.run.root())?;
        }
        self.note(&format!("phase {phase}: training on {sources} for {steps} steps"))?;
        self.pending = None;
        self.tokenizer = Arc::new(tokenizer);
        self.train = train_batches(&config, self.tokenizer.clone(), &base, &self.link)?.prefetch(config.data.prefetch);
        self.data_base = base;
        self.config = config;
        Ok(())
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &AnyTokenizer {
        &self.tokenizer
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        config: TrainConfig,
        run: RunDir,
        device: B::Device,
        model: Model<B>,
        optims: Option<(AdamWRecord<B>, AdamWRecord<B>)>,
        state: TrainState,
        carries: Option<Vec<Option<SavedCarry>>>,
        tokenizer: Arc<AnyTokenizer>,
        data_base: &Path,
        log: Option<RunLog>,
        link: PeerLink,
    ) -> Result<Self> {
        let mut optim = FlatAdamW::new(&config.optim);
        if let Some((main, embed)) = optims {
            optim.load_record(main);
            optim.load_record(embed);
        }
        let mut batches = train_batches(&config, tokenizer.clone(), data_base, &link)?;
        if let Some(cursor) = &state.cursor {
            batches.seek(cursor)?;
        }
        let mut trainer = Self {
            train: batches.prefetch(config.data.prefetch),
            config,
            run,
            device,
            model,
            optim,
            state,
            pending: None,
            data_base: data_base.to_path_buf(),
            tokenizer,
            log,
            last_act_steps: 0.0,
            link,
            fresh: (0, 0),
            peer_starts: Vec::new(),
            peak_gpu_memory: None,
        };
        if let Some(carries) = carries {
            // Re-read the batch in progress; its tokens were counted before the checkpoint.
            let mut batch = trainer.next_batch()?;
            trainer.fresh = (0, 0);
            for ((_, _, carry), saved) in batch.micro.iter_mut().zip(carries) {
                *carry = saved.map(|s| s.load(&trainer.device));
            }
            batch.segment = trainer.state.segment;
            trainer.pending = Some(batch);
        }
        Ok(trainer)
    }

    /// The model as it stands.
    pub fn model(&self) -> &Model<B> {
        &self.model
    }

    /// Counters and positions.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    fn next_batch(&mut self) -> Result<BatchInProgress<B>> {
        let mut micro = Vec::new();
        let mut cursor_after = None;
        for _ in 0..self.config.optim.grad_accum {
            let batch = self.train.next().ok_or_else(|| TrainError::Config("the training data ended".into()))??;
            let (inputs, targets) = batch.to_tensors::<B>(&self.device);
            self.fresh.0 += (batch.batch_size * batch.seq_len) as u64;
            self.fresh.1 += batch.bytes as u64;
            cursor_after = Some(batch.cursor.clone());
            micro.push((inputs, targets, None));
        }
        Ok(BatchInProgress { micro, segment: 0, cursor_after })
    }

    /// Runs until the configured step count, early stopping, or a stop request; on every
    /// rank of a data-parallel run alike, rank 0 deciding (pause, early stop, best
    /// checkpoint) and the others following.
    pub fn run(mut self, options: &TrainOptions) -> Result<TrainSummary> {
        self.model = self.model.with_precision(options.precision);
        let mut total = self.config.run.steps;
        let bar = progress_bar(options.progress && self.link.is_leader(), total, self.state.step);
        let mut losses = Vec::new();
        let mut last_eval = None;
        // Tokens through the model per second: each step runs its whole batch once on every rank.
        let mut window = (Instant::now(), 0u64);
        let stop = loop {
            if self.state.step >= total {
                // The next curriculum phase, if any: phase k (k ≥ 1) is curriculum[k - 1].
                let Some(phase) = self.config.curriculum.get(self.state.datasets.len() - 1).cloned() else {
                    break StopReason::Finished;
                };
                let data = DataConfig { sources: phase.sources, mix: phase.mix, ..self.config.data.clone() };
                self.start_phase(data, phase.steps)?;
                total = self.config.run.steps;
                bar.set_length(total);
                continue;
            }
            let pause = self.link.is_leader().then(|| {
                options.stop.load(Ordering::SeqCst) || options.pause_at_step.is_some_and(|p| self.state.step >= p)
            });
            if self.link.from_leader(pause)? {
                self.save_checkpoint(Some("pause"))?;
                self.note(&format!(
                    "paused at step {}; resume with --resume {}",
                    self.state.step,
                    self.run.root().display()
                ))?;
                break StopReason::Paused;
            }
            let (report, grad_norm, lr, running) = self.train_step(options)?;
            losses.push(report.total);
            window.1 += self.step_tokens() * self.link.world() as u64;
            let step = self.state.step;
            if self.link.is_leader() && (step.is_multiple_of(self.config.run.log_every) || step == total) {
                let seconds = window.0.elapsed().as_secs_f64().max(1e-9);
                let tokens_per_s = window.1 as f64 / seconds;
                window = (Instant::now(), 0);
                self.log_step(step, &report, grad_norm, lr, running, tokens_per_s, &bar)?;
            }
            bar.set_position(step);
            if step.is_multiple_of(self.config.run.eval_every) || step == total {
                let decision = if self.link.is_leader() {
                    let metrics = self.evaluate()?;
                    last_eval = Some(metrics);
                    if crate::samples::due(&self.config, step, total) {
                        self.write_sample()?;
                    }
                    Some(self.after_eval(&metrics))
                } else {
                    None
                };
                let decision = self.link.from_leader(decision)?;
                if decision.best {
                    self.save_checkpoint(Some("best"))?;
                }
                if decision.stop {
                    self.save_checkpoint(None)?;
                    break StopReason::EarlyStopped;
                }
            }
            if step.is_multiple_of(self.config.run.checkpoint_every) || step == total {
                self.save_checkpoint(None)?;
            }
        };
        bar.finish_and_clear();
        let peak_rss_bytes = crate::memory::peak_rss_bytes();
        let memory = crate::memory::describe(None, self.peak_gpu_memory.as_ref(), peak_rss_bytes);
        self.note(&format!(
            "stopped ({stop:?}) at step {} after {} tokens; {memory}",
            self.state.step, self.state.tokens
        ))?;
        let (step, tokens) = (self.state.step, self.state.tokens);
        let replica_checksums = vec![weights_checksum(&self.model)];
        let peak_gpu_memory = self.peak_gpu_memory;
        Ok(TrainSummary { step, tokens, losses, last_eval, stop, replica_checksums, peak_gpu_memory, peak_rss_bytes })
    }

    /// Writes one step's metrics (rank 0).
    #[allow(clippy::too_many_arguments)]
    fn log_step(
        &mut self,
        step: u64,
        report: &SegmentReport,
        grad_norm: f64,
        lr: f64,
        running: f64,
        tokens_per_s: f64,
        bar: &indicatif::ProgressBar,
    ) -> Result<()> {
        let record = StepRecord {
            step,
            tokens: self.state.tokens,
            lr,
            loss: report.total,
            lm_loss: report.lm,
            q_loss: report.q,
            accuracy: report.correct / report.active.max(1.0),
            grad_norm,
            segment: self.pending.as_ref().map_or(0, |p| p.segment),
            running_share: running,
            act_steps: self.last_act_steps,
            tokens_per_s,
            peak_rss_bytes: crate::memory::peak_rss_bytes(),
            gpu_memory: B::device_memory(&self.device),
            peak_gpu_memory: None,
        };
        if let Some(now) = record.gpu_memory {
            self.peak_gpu_memory = Some(self.peak_gpu_memory.map_or(now, |peak| peak.max(now)));
        }
        let record = StepRecord { peak_gpu_memory: self.peak_gpu_memory, ..record };
        let Some(log) = self.log.as_mut() else { return Ok(()) };
        log.metrics(&record)?;
        log.scalars(
            step,
            &[
                ("train/loss", record.loss),
                ("train/lm_loss", record.lm_loss),
                ("train/q_loss", record.q_loss),
                ("train/accuracy", record.accuracy),
                ("train/lr", lr),
                ("train/grad_norm", grad_norm),
                ("train/running_share", running),
                ("train/act_steps", record.act_steps),
                ("train/tokens_per_s", tokens_per_s),
            ],
        )?;
        log.scalars(step, &crate::memory::scalars(record.gpu_memory.as_ref(), record.peak_rss_bytes))?;
        let memory = crate::memory::describe(record.gpu_memory.as_ref(), record.peak_gpu_memory.as_ref(), record.peak_rss_bytes);
        bar.set_message(format!("loss {:.4} lr {lr:.2e} {tokens_per_s:.0} tok/s {memory}", report.total));
        Ok(())
    }

    /// A line in `train.log` (rank 0; the other ranks write nothing).
    fn note(&mut self, line: &str) -> Result<()> {
        match self.log.as_mut() {
            Some(log) => log.line(line),
            None => Ok(()),
        }
    }

    /// One optimiser step: one ACT segment of the batch in progress (or one forward of the
    /// flat model), over every micro-batch, with the gradients averaged over all ranks.
    /// Returns the report (the mean over ranks), gradient norm, learning rate and the share
    /// of positions still running.
    fn train_step(&mut self, options: &TrainOptions) -> Result<(SegmentReport, f64, f64, f64)> {
        if let Some(failure) = options.faults.rank_failure
            && failure.rank == self.link.rank()
            && failure.step == self.state.step + 1
        {
            let what = format!("rank {} fails at step {} (injected)", failure.rank, failure.step);
            if failure.panic {
                panic!("{what}");
            }
            return Err(TrainError::Peer(what));
        }
        if self.pending.is_none() {
            let batch = self.next_batch()?;
            self.pending = Some(batch);
        }
        let mut batch = self.pending.take().expect("set above");
        let step = self.state.step;
        let mut accumulator = GradientsAccumulator::<Model<B>>::new();
        let mut report = SegmentReport::default();
        let loss_kind = self.config.model.loss();
        let mut finished = true;
        let mut running_total = (0.0, 0.0);
        let running_shares = running_shares(&batch.micro);
        for (i, (inputs, targets, carry)) in batch.micro.iter_mut().enumerate() {
            let segment_loss = match &self.model {
                Model::Hrm(hrm) => {
                    let current = carry.take().unwrap_or_else(|| hrm.initial_carry(inputs.dims(), &self.device));
                    let running = current.halted.clone().bool_not();
                    let out = hrm.train_segment(current, inputs.clone(), hrm.cycles());
                    let q_weight = if hrm.halt_max_steps() > 1 { self.config.act.q_loss_weight } else { 0.0 };
                    let loss = hrm_segment_loss(
                        hrm,
                        &out,
                        running,
                        inputs,
                        targets.clone(),
                        loss_kind,
                        hrm.cycles(),
                        q_weight,
                    );
                    let seed = self.config.run.seed ^ (step.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ i as u64;
                    // Drawn for the global batch (every rank's rows), this rank keeping its own
                    // rows: ranks explore independently, and W ranks draw what one device with
                    // the W-times batch would.
                    let [rows, seq] = inputs.dims();
                    let min_steps = exploration_min_steps::<B>(
                        &mut StdRng::seed_from_u64(seed),
                        [rows * self.link.world(), seq],
                        self.config.model.halt_exploration_prob(),
                        hrm.halt_max_steps(),
                        &self.device,
                    )
                    .narrow(0, rows * self.link.rank(), rows);
                    let policy =
                        HaltPolicy { max_steps: hrm.halt_max_steps(), use_q: true, min_steps: Some(min_steps) };
                    let next = policy.apply(out.carry, out.q_halt.detach(), out.q_continue.detach());
                    let halted = next.halted.clone().int().sum().into_data().iter::<f64>().next().unwrap_or(0.0);
                    let positions = (inputs.dims()[0] * inputs.dims()[1]) as f64;
                    running_total = (running_total.0 + positions - halted, running_total.1 + positions);
                    finished &= halted == positions;
                    *carry = Some(next);
                    loss
                }
                Model::Flat(flat) => lm_loss(flat.forward(inputs.clone()), targets.clone(), loss_kind),
            };
            let (mut total, mut part) = (segment_loss.total, SegmentReport::read::<B>(segment_loss.report));
            // A mean over this micro-batch's running positions, weighted to the batch's mean.
            let share = running_shares[i];
            if share != 1.0 {
                total = total * share;
                (part.total, part.lm, part.q) = (part.total * share, part.lm * share, part.q * share);
            }
            let faults = &options.faults;
            if faults.nan_loss_at == Some(step + 1) {
                total = total * f64::NAN;
                part.total = f64::NAN;
            }
            if faults.loss_spike_at == Some(step + 1) {
                total = total * 1000.0;
                part.total *= 1000.0;
            }
            report.total += part.total;
            report.lm += part.lm;
            report.q += part.q;
            report.correct += part.correct;
            report.active += part.active;
            let grads = GradientsParams::from_grads(total.backward(), &self.model);
            accumulator.accumulate(&self.model, grads);
        }
        let max_segments = match &self.model {
            Model::Hrm(hrm) => hrm.halt_max_steps(),
            Model::Flat(_) => 1,
        };
        let ends_here = finished || batch.segment + 1 >= max_segments;
        let share = StepShare {
            report,
            running: running_total,
            fresh: std::mem::take(&mut self.fresh),
            act_steps: ends_here.then(|| mean_act_steps(&batch.micro)),
        };
        let shares = self.link.all_gather(share)?;
        // Batches end together on every rank (when every rank's has halted, or at the segment
        // cap), so W ranks step through segments as one device with the W-times batch does.
        let ends = shares.iter().all(|s| s.act_steps.is_some());
        // A rank's losses are means over its running positions; weighting each rank by its
        // share of all running positions makes the average the mean over the global batch.
        let world = shares.len() as f64;
        let all_active: f64 = shares.iter().map(|s| s.report.active).sum();
        let weight = |share: &StepShare| if all_active > 0.0 { share.report.active * world / all_active } else { 1.0 };
        let micro = batch.micro.len() as f64;
        let mut report = SegmentReport::default();
        let mut running_total = (0.0, 0.0);
        for share in &shares {
            let (part, w) = (&share.report, weight(share) / (micro * world));
            (report.total, report.lm, report.q) =
                (report.total + part.total * w, report.lm + part.lm * w, report.q + part.q * w);
            (report.correct, report.active) = (report.correct + part.correct, report.active + part.active);
            running_total = (running_total.0 + share.running.0, running_total.1 + share.running.1);
            self.state.tokens += share.fresh.0;
            self.state.text_bytes += share.fresh.1;
        }
        if ends {
            self.last_act_steps = shares.iter().filter_map(|s| s.act_steps).sum::<f64>() / world;
        }
        let mut grads = FlatGradients::from_params(&self.model, accumulator.grads())
            .ok_or_else(|| TrainError::Config("no parameter of the model received a gradient".into()))?;
        let factor = weight(&shares[self.link.rank()]) / micro;
        if factor != 1.0 {
            grads.scale(factor);
        }
        average_gradients(&self.link, &mut grads)?;
        if options.faults.nan_gradient_at == Some(step + 1) {
            grads.scale(f64::NAN);
        }
        let grad_norm = grads.norm();
        let phase = self.state.phase_start;
        let factor = self.config.schedule.factor(step - phase, self.config.run.steps - phase);
        let lr = self.config.optim.lr * factor;
        self.state.step += 1;
        batch.segment += 1;
        if let Some(problem) = self.step_problem(report.total, grad_norm) {
            self.state.bad_steps_in_row += 1;
            self.state.bad_steps_total += 1;
            self.note(&format!("step {}: {problem}; step skipped", self.state.step))?;
            if self.state.bad_steps_in_row >= self.config.run.max_bad_steps {
                return Err(TrainError::Diverged {
                    step: self.state.step,
                    count: self.state.bad_steps_in_row,
                    loss: report.total,
                });
            }
        } else {
            self.state.bad_steps_in_row = 0;
            self.state.accepted_in_phase += 1;
            self.state.loss_mean = Some(self.state.loss_mean.map_or(report.total, |m| 0.95 * m + 0.05 * report.total));
            let clip = self.config.optim.grad_clip;
            if clip > 0.0 && grad_norm > clip {
                grads.scale(clip / grad_norm);
            }
            let (embedding, embed_lr) = (self.model.embedding_param_id(), self.config.optim.embed_lr * factor);
            let rate = |id| if id == embedding { embed_lr } else { lr };
            self.model = self.optim.step(self.model.clone(), grads, rate);
        }
        if ends {
            self.state.cursor = batch.cursor_after.clone();
        } else {
            self.pending = Some(batch);
        }
        self.maybe_grow_layers()?;
        let running = if running_total.1 > 0.0 { running_total.0 / running_total.1 } else { 0.0 };
        Ok((report, grad_norm, lr, running))
    }

    /// Why a step with this loss and gradient norm must be skipped, if it must: a non-finite
    /// value, or a loss `loss_spike_factor` times the running mean of accepted losses.
    fn step_problem(&self, loss: f64, grad_norm: f64) -> Option<String> {
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Some(format!("non-finite loss {loss} or gradient norm {grad_norm}"));
        }
        let factor = self.config.run.loss_spike_factor;
        match self.state.loss_mean {
            Some(mean)
                if factor > 0.0 && self.state.accepted_in_phase >= SPIKE_WARMUP_STEPS && loss > factor * mean =>
            {
                Some(format!("loss {loss:.4} is over {factor} times the running mean {mean:.4} (exploding)"))
            }
            _ => None,
        }
    }

    /// Between batches, once `growth.every_bytes` more text has been read, appends
    /// near-identity blocks to H and L. The checkpoint written at once names the grown model,
    /// then `config.toml` is rewritten (resume prefers the checkpoint's layer counts, so a
    /// crash between the two loses nothing).
    fn maybe_grow_layers(&mut self) -> Result<()> {
        let growth = self.config.growth.clone();
        let due = (u64::from(self.state.growths) + 1).saturating_mul(growth.every_bytes);
        if growth.every_bytes == 0
            || self.pending.is_some()
            || self.state.growths >= growth.max_growths
            || self.state.text_bytes < due
        {
            return Ok(());
        }
        let before = self.config.model.num_params();
        let (Model::Hrm(hrm), hrm_core::ModelConfig::Hrm(c)) = (&self.model, &mut self.config.model) else {
            return Ok(());
        };
        let seed = self.config.run.seed ^ self.state.step.rotate_left(17);
        let grown = hrm.clone().grow_layers(growth.add_h_layers, growth.add_l_layers, &c.block, seed);
        let (h, l) = grown.layers();
        c.h_layers = h;
        c.l_layers = l;
        self.model = Model::Hrm(grown);
        self.state.growths += 1;
        self.state.model = self.config.model.clone();
        self.note(&format!(
            "layer growth {} after {} bytes of text: H {} → {h}, L {} → {l} blocks, {before} → {} parameters",
            self.state.growths,
            self.state.text_bytes,
            h - growth.add_h_layers,
            l - growth.add_l_layers,
            self.config.model.num_params()
        ))?;
        self.save_checkpoint(None)?;
        if self.link.is_leader() {
            self.run.write_config(&self.config)?;
        }
        Ok(())
    }

    /// Tokens one step runs through the model.
    fn step_tokens(&self) -> u64 {
        (self.config.data.batch_size * self.config.data.seq_len * self.config.optim.grad_accum) as u64
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

    /// Writes a checkpoint of the current step (pointing `latest`, and `role` if given, at it)
    /// and prunes old ones. In a data-parallel run every rank calls it: each hands rank 0
    /// its data position and ACT carries, and rank 0 checks the replicas agree and writes.
    pub fn save_checkpoint(&mut self, role: Option<&str>) -> Result<()> {
        let part = CheckpointPart {
            place: RankPlace {
                position: PeerPosition {
                    cursor: self.state.cursor.clone(),
                    segment: self.pending.as_ref().map_or(0, |p| p.segment),
                },
                carries: self
                    .pending
                    .as_ref()
                    .map(|pending| pending.micro.iter().map(|(_, _, c)| c.as_ref().map(SavedCarry::save)).collect()),
            },
            checksum: if self.link.world() > 1 { weights_checksum(&self.model) } else { [0.0; 2] },
        };
        let parts = self.link.all_gather(part)?;
        if !self.link.is_leader() {
            return Ok(());
        }
        self.check_replicas(&parts)?;
        let dir = self.run.checkpoints();
        let count = checkpoint::non_finite_weights(&self.model);
        if count > 0 {
            return Err(TrainError::PoisonedWeights { step: self.state.step, count });
        }
        let peers = parts[1..].iter().map(|p| p.place.position.clone()).collect();
        let state = TrainState { segment: parts[0].place.position.segment, peers, ..self.state.clone() };
        let [model, optim, optim_embed] = self.weights_and_moments()?;
        let mut files = vec![
            ("model.mpk".to_string(), model),
            ("optim.mpk".into(), optim),
            ("optim_embed.mpk".into(), optim_embed),
            ("state.json".into(), serde_json::to_vec_pretty(&state).expect("state serialises")),
        ];
        // A copy of the tokenizer, so the checkpoint alone can rebuild it (`hrm analyze --restore-tokenizer`).
        let tokenizer_file = self.run.root().join(self.tokenizer.file_name());
        let tokenizer = std::fs::read(&tokenizer_file).map_err(|e| TrainError::io(&tokenizer_file, e))?;
        files.push((self.tokenizer.file_name().to_string(), tokenizer));
        for (rank, part) in parts.iter().enumerate() {
            if let Some(carries) = &part.place.carries {
                files.push((carry_file(rank), rmp_serde::to_vec(carries).expect("carry serialises")));
            }
        }
        let path = checkpoint::write(&dir, self.state.step, &files)?;
        checkpoint::set_pointer(&dir, "latest", &path)?;
        if let Some(role) = role {
            checkpoint::set_pointer(&dir, role, &path)?;
        }
        let protect: Vec<_> = ["best", "pause"].iter().filter_map(|r| checkpoint::pointer(&dir, r)).collect();
        checkpoint::prune(&dir, self.config.run.keep_checkpoints.max(1), &protect)?;
        Ok(())
    }

    /// The weights and the optimiser's state as MessagePack bytes, as a checkpoint holds them
    /// (`model.mpk`; `optim.mpk` and `optim_embed.mpk`, burn's AdamW records of every
    /// parameter but the token embedding and of the embedding alone).
    fn weights_and_moments(&self) -> Result<[Vec<u8>; 3]> {
        let dir = self.run.checkpoints();
        let model = Bytes::default()
            .record(self.model.clone().into_record(), ())
            .map_err(|e| record_error(&dir, "model", e))?;
        let moments = |record: AdamWRecord<B>| {
            Bytes::default().record(record, ()).map_err(|e| record_error(&dir, "optimiser", e))
        };
        let embedding = self.model.embedding_param_id();
        Ok([
            model,
            moments(self.optim.record(|id| id != embedding))?,
            moments(self.optim.record(|id| id == embedding))?,
        ])
    }

    /// Compares every rank's weight checksum with rank 0's: a relative difference over 1e-4
    /// is an error, a smaller one (floating-point noise) a line in the log.
    fn check_replicas(&mut self, parts: &[CheckpointPart]) -> Result<()> {
        let leader = parts[0].checksum;
        for (rank, part) in parts.iter().enumerate().skip(1) {
            let relative = |i: usize| (part.checksum[i] - leader[i]).abs() / leader[i].abs().max(1e-12);
            let worst = relative(0).max(relative(1));
            if worst.is_nan() || worst > 1e-4 {
                let step = self.state.step;
                return Err(TrainError::ReplicasDiverged { step, rank, rank_sums: part.checksum, leader_sums: leader });
            }
            if worst > 0.0 {
                self.note(&format!(
                    "step {}: rank {rank}'s weights differ from rank 0's by {worst:.1e}",
                    self.state.step
                ))?;
            }
        }
        Ok(())
    }
}

/// The ACT carries of a checkpoint's batch in progress, checked against the config: one per
/// micro-batch, each of the batch's shape.
pub fn decode_carries(bytes: &[u8], config: &TrainConfig) -> std::result::Result<Vec<Option<SavedCarry>>, String> {
    crate::msgpack::check_lengths(bytes)?;
    let carries: Vec<Option<SavedCarry>> = rmp_serde::from_slice(bytes).map_err(|e| e.to_string())?;
    if carries.len() != config.optim.grad_accum {
        return Err(format!("{} carries for {} micro-batches", carries.len(), config.optim.grad_accum));
    }
    let (batch, seq, d_model) = (config.data.batch_size, config.data.seq_len, config.model.block().d_model);
    carries.iter().flatten().try_for_each(|carry| carry.check(batch, seq, d_model))?;
    Ok(carries)
}

/// Each micro-batch's running positions (those not yet halted) over the mean of all of
/// theirs, so that k micro-batches weighted by it step as the one k-times batch does when
/// halting leaves them different shares; all 1 for one micro-batch (nothing is read then)
/// and while none has halted.
fn running_shares<B: HrmAutodiffBackend>(micro: &[MicroBatch<B>]) -> Vec<f64> {
    if micro.len() == 1 {
        return vec![1.0];
    }
    let running = |(inputs, _, carry): &MicroBatch<B>| match carry {
        Some(carry) => carry.halted.clone().bool_not().int().sum().into_data().iter::<f64>().next().unwrap_or(0.0),
        None => (inputs.dims()[0] * inputs.dims()[1]) as f64,
    };
    let counts: Vec<f64> = micro.iter().map(running).collect();
    let mean = counts.iter().sum::<f64>() / counts.len() as f64;
    counts.iter().map(|&count| if mean > 0.0 { count / mean } else { 1.0 }).collect()
}

/// Mean segments per position over the micro-batches' carries (1 for the flat model).
fn mean_act_steps<B: HrmAutodiffBackend>(micro: &[MicroBatch<B>]) -> f64 {
    let (mut steps, mut positions) = (0.0, 0.0);
    for (inputs, _, carry) in micro {
        if let Some(carry) = carry {
            steps += carry.steps.clone().sum().into_data().iter::<f64>().next().unwrap_or(0.0);
            positions += (inputs.dims()[0] * inputs.dims()[1]) as f64;
        }
    }
    if positions > 0.0 { steps / positions } else { 1.0 }
}

/// Ids of every parameter of `model`.
fn param_ids<B: HrmAutodiffBackend>(model: &Model<B>) -> Vec<burn::module::ParamId> {
    struct Ids(Vec<burn::module::ParamId>);
    impl<B: HrmAutodiffBackend> burn::module::ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    model.visit(&mut ids);
    ids.0
}

fn progress_bar(show: bool, total: u64, position: u64) -> indicatif::ProgressBar {
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

/// The training batches of `link`'s rank.
fn train_batches(config: &TrainConfig, tokenizer: Arc<AnyTokenizer>, base: &Path, link: &PeerLink) -> Result<Batches> {
    let batches = config.data.batches(Split::Train, tokenizer, base, &HubOptions::from_env())?;
    Ok(batches.shard(Shard { rank: link.rank(), world: link.world() })?)
}

/// Layer growth waits for a moment between batches that ranks do not share; it runs on one
/// device only.
fn check_growth(config: &TrainConfig, world: usize) -> Result<()> {
    if world > 1 && config.growth.every_bytes > 0 {
        return Err(TrainError::Config(format!(
            "layer growth (growth.every_bytes = {}) runs on one device only; set it to 0 to train on {world}",
            config.growth.every_bytes
        )));
    }
    Ok(())
}

/// The checkpoint file holding rank `rank`'s ACT carries.
fn carry_file(rank: usize) -> String {
    if rank == 0 { "carry.mpk".into() } else { format!("carry.rank{rank}.mpk") }
}
