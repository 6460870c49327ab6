//! The run folder and the checkpoint of it that a command reads.

use std::path::PathBuf;

use hrm_train::{CheckpointChoice, LoadedRun, RunDir, load_run_at};

/// A run folder and which of its checkpoints to read.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The run folder.
    pub run: PathBuf,
    /// Which checkpoint: `latest` (the newest intact one), `best` (the best validation loss,
    /// kept by early stopping), `step-N`, or a checkpoint folder's path; `hrm info` lists them.
    #[arg(long, default_value = "latest")]
    pub checkpoint: CheckpointChoice,
}

impl RunArgs {
    /// The run folder.
    pub fn dir(&self) -> RunDir {
        RunDir::new(&self.run)
    }

    /// The chosen checkpoint's model (at the binary's precision), config and tokenizer.
    pub fn load<B: hrm_core::HrmOps>(&self, device: &B::Device) -> anyhow::Result<LoadedRun<B>> {
        Ok(crate::with_precision(load_run_at::<B>(&self.dir(), &self.checkpoint, device)?))
    }
}
