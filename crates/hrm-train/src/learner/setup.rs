//! Starting a run, resuming one from its newest intact checkpoint, assembling a trainer from
//! its parts, and reading the batches of a rank.

use std::path::Path;
use std::sync::Arc;

use hrm_core::{HrmAutodiffBackend, Model};
use hrm_data::{AnyTokenizer, Batches, DataConfig, HubOptions, Shard, Split};

use super::checkpointing::{RankPlace, carry_file, decode_carries};
use super::segment::BatchInProgress;
use super::{Trainer, record_error};
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::optimizer::{AdamWRecord, FlatAdamW};
use crate::parallel::PeerLink;
use crate::run::{RunDir, RunLog};
use crate::state::{PeerPosition, SavedCarry, TrainState};

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

    /// [`Trainer::start`] as rank 0 of `link`'s group.
    pub(super) fn start_linked(
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

    /// [`Trainer::resume`] as rank 0 of `link`'s group.
    pub(super) fn resume_linked(run: RunDir, device: B::Device, link: PeerLink) -> Result<Self> {
        let config = run.load_config()?;
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
        if !checkpoint::list(&run.checkpoints()).is_empty() {
            return Self::from_checkpoint(config, run, tokenizer, log, device, link);
        }
        log.line("no checkpoint yet (the run stopped before its first): starting again from step 0")?;
        let model = config.model.init::<B>(config.run.seed, &device);
        let mut state = TrainState::new(&config);
        state.peers = vec![PeerPosition::default(); link.world() - 1];
        let base = run.root().to_path_buf();
        Self::assemble(config, run, device, model, None, state, None, tokenizer, &base, Some(log), link)
    }

    /// Continues from the run's newest intact checkpoint (damaged newer ones are passed over
    /// and logged): weights, optimiser state, counters, and every rank's position and carries.
    fn from_checkpoint(
        mut config: TrainConfig,
        run: RunDir,
        tokenizer: Arc<AnyTokenizer>,
        mut log: RunLog,
        device: B::Device,
        link: PeerLink,
    ) -> Result<Self> {
        let checkpoint = checkpoint::newest_intact(&run)?;
        let path = &checkpoint.path;
        if !checkpoint.passed_over.is_empty() {
            let damaged = &checkpoint.passed_over;
            log.line(&format!("fell back to {} (newer checkpoints are damaged:{damaged})", path.display()))?;
        }
        log.line(&format!("resuming from {}", path.display()))?;
        let state = checkpoint.state()?;
        check_world(&run, &state, &link)?;
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
        let base = run.root().to_path_buf();
        let log = Some(log);
        let mut trainer =
            Self::assemble(config, run, device, model, Some(optims), state, carries, tokenizer, &base, log, link)?;
        trainer.peer_starts = peer_starts;
        Ok(trainer)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn assemble(
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

    /// The next batch of this rank, as micro-batches (their tokens counted as read).
    pub(super) fn next_batch(&mut self) -> Result<BatchInProgress<B>> {
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
}

/// A run resumes on as many devices as it was trained on: each has its own data position
/// and ACT state.
fn check_world(run: &RunDir, state: &TrainState, link: &PeerLink) -> Result<()> {
    if state.world() == link.world() {
        return Ok(());
    }
    Err(TrainError::Config(format!(
        "{} was trained on {} device(s) and is being resumed on {}: resume it on {} (each device has its own data position and ACT state)",
        run.root().display(),
        state.world(),
        link.world(),
        state.world()
    )))
}

/// The training batches of `link`'s rank.
pub(super) fn train_batches(
    config: &TrainConfig,
    tokenizer: Arc<AnyTokenizer>,
    base: &Path,
    link: &PeerLink,
) -> Result<Batches> {
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
