//! Loading a trained run: the chosen checkpoint's model with the run's config and tokenizer.

use burn::tensor::backend::Backend;
use hrm_core::{HrmOps, Model};

use super::RunDir;
use crate::checkpoint_choice::CheckpointChoice;
use crate::error::Result;

/// A trained model loaded from a run folder.
pub struct LoadedRun<B: Backend> {
    /// The run's config, its model section as of the checkpoint (after any growth).
    pub config: crate::TrainConfig,
    /// The run's tokenizer.
    pub tokenizer: hrm_data::AnyTokenizer,
    /// The weights of the chosen checkpoint (the newest intact one by default).
    pub model: Model<B>,
    /// Counters and dataset history of that checkpoint.
    pub state: crate::state::TrainState,
    /// The checkpoint folder.
    pub checkpoint: std::path::PathBuf,
}

impl<B: HrmOps> LoadedRun<B> {
    /// The checkpoint folder's name, e.g. `step-000001000`.
    pub fn checkpoint_name(&self) -> String {
        self.checkpoint.file_name().map_or_else(|| "checkpoint".into(), |n| n.to_string_lossy().into_owned())
    }
}

/// The model of a run's newest intact checkpoint, with the run's config and tokenizer.
pub fn load_run<B: HrmOps>(run: &RunDir, device: &B::Device) -> Result<LoadedRun<B>> {
    load_run_at(run, &CheckpointChoice::Latest, device)
}

/// The model of the run's `checkpoint` (see [`CheckpointChoice`]), with the run's config and
/// tokenizer.
pub fn load_run_at<B: HrmOps>(run: &RunDir, checkpoint: &CheckpointChoice, device: &B::Device) -> Result<LoadedRun<B>> {
    let mut config = run.load_config()?;
    let (tokenizer, fallback) = crate::tokenizer_check::run_tokenizer(run)?;
    if let Some(why) = fallback {
        tracing::warn!("{why} (`hrm analyze {} --restore-tokenizer` puts it back)", run.root().display());
    }
    let checkpoint = checkpoint.read(run)?;
    let state = checkpoint.state()?;
    config.model = state.model_for(&config.model, &checkpoint.path)?;
    let model = checkpoint.model::<B>(&config.model, config.run.seed, device)?;
    Ok(LoadedRun { config, tokenizer, model, state, checkpoint: checkpoint.path })
}
