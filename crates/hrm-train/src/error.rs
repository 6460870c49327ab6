//! Typed errors of hrm-train.

use std::path::PathBuf;

/// Anything that stops a run, with what to do about it where that is known.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A config value that cannot work.
    #[error("invalid config: {0}")]
    Config(String),
    /// The model config is invalid.
    #[error(transparent)]
    Model(#[from] hrm_core::ConfigError),
    /// The data pipeline failed.
    #[error(transparent)]
    Data(#[from] hrm_data::DataError),
    /// A file or folder of the run could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error (kept out of the `source` chain so it is printed once).
        error: std::io::Error,
    },
    /// A checkpoint that cannot be used.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint folder.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint was refused because the model holds NaN or infinite weights.
    #[error(
        "step {step}: not writing a checkpoint, {count} model weights are NaN or infinite; the last checkpoint is intact"
    )]
    PoisonedWeights {
        /// The step that would have been saved.
        step: u64,
        /// Non-finite weights found.
        count: u64,
    },
    /// `--resume` on a run with no intact checkpoint.
    #[error("{}: no intact checkpoint to resume from{detail}", run.display())]
    NothingToResume {
        /// The run folder.
        run: PathBuf,
        /// Why each checkpoint found was rejected.
        detail: String,
    },
    /// Too many steps in a row were skipped by the loss guard.
    #[error(
        "stopped at step {step}: {count} steps in a row were skipped for a non-finite or exploding loss (last {loss}); lower the learning rate or check the data; the last checkpoint is intact"
    )]
    Diverged {
        /// Step at which the run stopped.
        step: u64,
        /// Skipped steps in a row.
        count: u32,
        /// The last loss value.
        loss: f64,
    },
    /// Another rank of a data-parallel run failed, or the ranks could not work together.
    #[error("data-parallel training: {0}")]
    Peer(String),
    /// The replicas of a data-parallel run hold different weights (a bug: they apply the
    /// same averaged gradients).
    #[error(
        "data-parallel training: at step {step} rank {rank}'s weights differ from rank 0's (checksums {rank_sums:?} vs {leader_sums:?}); the last checkpoint is intact"
    )]
    ReplicasDiverged {
        /// Step of the comparison.
        step: u64,
        /// The rank that differs.
        rank: usize,
        /// Its weights' sum and sum of squares.
        rank_sums: [f64; 2],
        /// Rank 0's.
        leader_sums: [f64; 2],
    },
}

impl TrainError {
    /// An [`TrainError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), error: source }
    }
}

/// Result with [`TrainError`].
pub type Result<T> = std::result::Result<T, TrainError>;
