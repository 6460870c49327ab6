//! Data-parallel runs: one [`Trainer`] per device, each in its own thread, built there from
//! rank 0's state (crate::parallel has the group and the gradient average).

use std::path::Path;
use std::sync::Arc;

use burn::record::Recorder;
use burn::tensor::backend::AutodiffBackend;
use hrm_data::AnyTokenizer;

use super::{Bytes, TrainOptions, TrainSummary, Trainer, record_error};
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::parallel::{GradientExchange, PeerGroup, PeerLink, join_collective, leave_collective};
use crate::run::RunDir;
use crate::state::{SavedCarry, TrainState};
use hrm_core::HrmAutodiffBackend;

/// A run over several devices: one [`Trainer`] per device ("rank"), each on its own shard of
/// the data, with gradients averaged every step (crate::parallel says how). One device is
/// the group of one, through the same code.
pub struct DataParallel<B: AutodiffBackend> {
    leader: Trainer<B>,
    devices: Vec<B::Device>,
}

impl<B: HrmAutodiffBackend> DataParallel<B> {
    /// A new run in `run` over `devices` (see [`Trainer::start`]). Rank r trains on global
    /// batches r, r + W, r + 2W, ... of the data stream (W devices), so the global batch is
    /// W × `data.batch_size` × `optim.grad_accum` windows; the ranks average their gradients
    /// by `exchange`.
    pub fn start(
        config: TrainConfig,
        tokenizer: AnyTokenizer,
        run: RunDir,
        data_base: &Path,
        devices: Vec<B::Device>,
        exchange: GradientExchange,
    ) -> Result<Self> {
        let group = Self::group(&devices, exchange)?;
        let leader = Trainer::start_linked(config, tokenizer, run, data_base, devices[0].clone(), group)?;
        Ok(Self { leader, devices })
    }

    /// Continues the run in `run` over `devices`, as many as it was trained on, every rank
    /// from its own data position and ACT state (see [`Trainer::resume`]), averaging by
    /// `exchange`.
    pub fn resume(run: RunDir, devices: Vec<B::Device>, exchange: GradientExchange) -> Result<Self> {
        let group = Self::group(&devices, exchange)?;
        let leader = Trainer::resume_linked(run, devices[0].clone(), group)?;
        Ok(Self { leader, devices })
    }

    fn group(devices: &[B::Device], exchange: GradientExchange) -> Result<PeerLink> {
        if devices.is_empty() {
            return Err(TrainError::Config("data-parallel training needs at least one device".into()));
        }
        Ok(PeerLink::new(PeerGroup::new(devices.len(), exchange), 0))
    }

    /// Trains on every device at once until the run ends (see [`Trainer::run`]); rank 0's
    /// summary, with every rank's weight checksum. A rank that fails stops them all.
    pub fn run(self, options: &TrainOptions) -> Result<TrainSummary> {
        let Self { leader, devices } = self;
        if devices.len() > 1 {
            burn::collective::reset_collective::<B::InnerBackend>();
        }
        let mut seeds = Vec::new();
        for (rank, device) in devices.iter().enumerate().skip(1) {
            seeds.push(leader.follower_seed(rank, device.clone())?);
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = seeds
                .into_iter()
                .map(|seed| {
                    let link = seed.link.clone();
                    scope.spawn(move || run_rank(link, || Trainer::from_seed(seed), options))
                })
                .collect();
            let link = leader.link.clone();
            let leader_result = run_rank(link, || Ok(leader), options);
            let mut checksums = Vec::new();
            let mut first_error = None;
            for handle in handles {
                match handle.join() {
                    Ok(Ok(summary)) => checksums.extend(summary.replica_checksums),
                    Ok(Err(e)) => {
                        first_error.get_or_insert(e);
                    }
                    Err(_) => {
                        first_error.get_or_insert(TrainError::Peer("a rank panicked".into()));
                    }
                }
            }
            let mut summary = leader_result?;
            if let Some(e) = first_error {
                return Err(e);
            }
            summary.replica_checksums.extend(checksums);
            Ok(summary)
        })
    }
}

/// Runs one rank to its end on the calling thread: builds its trainer there (so every
/// tensor a rank uses was made by its own thread), joins the collective, trains, leaves; a
/// failure (error or panic) is reported to the group so no rank waits for it.
fn run_rank<B: HrmAutodiffBackend>(
    link: PeerLink,
    build: impl FnOnce() -> Result<Trainer<B>>,
    options: &TrainOptions,
) -> Result<TrainSummary> {
    struct FailOnPanic(PeerLink);
    impl Drop for FailOnPanic {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.fail(format!("rank {} panicked", self.0.rank()));
            }
        }
    }
    let _guard = FailOnPanic(link.clone());
    let result = build().and_then(|trainer| {
        join_collective::<B>(&link, &trainer.device)?;
        let result = trainer.run(options);
        leave_collective::<B>(&link);
        result
    });
    if let Err(e) = &result {
        let why = match e {
            TrainError::Peer(why) => why.clone(),
            other => other.to_string(),
        };
        link.fail(format!("rank {} failed: {why}", link.rank()));
    }
    result
}

/// What a rank other than 0 is built from, in its own thread: rank 0's weights and
/// optimiser state as bytes, its counters, and its own position.
struct FollowerSeed<B: AutodiffBackend> {
    config: TrainConfig,
    run: RunDir,
    device: B::Device,
    model: Vec<u8>,
    optims: (Vec<u8>, Vec<u8>),
    state: TrainState,
    carries: Option<Vec<Option<SavedCarry>>>,
    tokenizer: Arc<AnyTokenizer>,
    data_base: std::path::PathBuf,
    link: PeerLink,
}

impl<B: HrmAutodiffBackend> Trainer<B> {
    /// What rank `rank`'s trainer on `device` is built from (by [`Trainer::from_seed`]):
    /// this rank 0's weights, optimiser state, counters and tokenizer; its own position and
    /// ACT carries.
    fn follower_seed(&self, rank: usize, device: B::Device) -> Result<FollowerSeed<B>> {
        let [model, optim, optim_embed] = self.weights_and_moments()?;
        let start = self.peer_starts.get(rank - 1).cloned().unwrap_or_default();
        Ok(FollowerSeed {
            config: self.config.clone(),
            run: self.run.clone(),
            device,
            model,
            optims: (optim, optim_embed),
            state: TrainState { cursor: start.position.cursor, segment: start.position.segment, ..self.state.clone() },
            carries: start.carries,
            tokenizer: self.tokenizer.clone(),
            data_base: self.data_base.clone(),
            link: PeerLink::new(self.link.group(), rank),
        })
    }

    /// A rank's trainer from its seed, on the calling thread.
    fn from_seed(seed: FollowerSeed<B>) -> Result<Self> {
        let dir = seed.run.checkpoints();
        let device = seed.device;
        let model = checkpoint::decode_model::<B>(&seed.model, &seed.config.model, seed.config.run.seed, &device)
            .map_err(|e| record_error(&dir, "model", e))?;
        let load =
            |bytes: Vec<u8>| Bytes::default().load(bytes, &device).map_err(|e| record_error(&dir, "optimiser", e));
        let optims = (load(seed.optims.0)?, load(seed.optims.1)?);
        let (config, run, state, carries, link) = (seed.config, seed.run, seed.state, seed.carries, seed.link);
        Self::assemble(
            config,
            run,
            device,
            model,
            Some(optims),
            state,
            carries,
            seed.tokenizer,
            &seed.data_base,
            None,
            link,
        )
    }
}
