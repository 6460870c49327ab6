//! Which checkpoint of a run a command reads: the newest intact one, the best one early
//! stopping kept, one step's, or a checkpoint folder named by its path.

use std::path::{Path, PathBuf};

use crate::checkpoint::{self, Intact};
use crate::error::{Result, TrainError};
use crate::run::RunDir;

/// A checkpoint of a run, as `--checkpoint` names it: `latest`, `best`, `step-N` or a path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CheckpointChoice {
    /// The newest checkpoint that passes its manifest (damaged newer ones are skipped).
    #[default]
    Latest,
    /// The checkpoint of the best validation loss so far (the `best` pointer).
    Best,
    /// The checkpoint written at this step.
    Step(u64),
    /// A checkpoint folder (`<run>/checkpoints/step-…`, or a copy elsewhere).
    Path(PathBuf),
}

impl std::str::FromStr for CheckpointChoice {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<Self> {
        let step = text.strip_prefix("step-").or_else(|| text.strip_prefix("step"));
        Ok(match (text, step) {
            ("latest", _) => Self::Latest,
            ("best", _) => Self::Best,
            (_, Some(number)) => Self::Step(number.parse().map_err(|_| {
                TrainError::Config(format!("checkpoint `{text}`: expected step-N with N a step number"))
            })?),
            (path, None) if Path::new(path).is_dir() => Self::Path(path.into()),
            (other, None) => {
                return Err(TrainError::Config(format!(
                    "checkpoint `{other}`: expected latest, best, step-N or a checkpoint folder"
                )));
            }
        })
    }
}

impl std::fmt::Display for CheckpointChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Best => f.write_str("best"),
            Self::Step(step) => write!(f, "step-{step}"),
            Self::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

impl CheckpointChoice {
    /// Reads the chosen checkpoint of `run`, checked against its manifest; an error names the
    /// run and the checkpoints it does have.
    pub fn read(&self, run: &RunDir) -> Result<Intact> {
        let dir = run.checkpoints();
        let path = match self {
            Self::Latest => return checkpoint::newest_intact(run),
            Self::Best => checkpoint::pointer(&dir, "best").ok_or_else(|| missing(run, "no best checkpoint"))?,
            Self::Step(step) => {
                let path = dir.join(checkpoint::checkpoint_name(*step));
                path.is_dir().then_some(path).ok_or_else(|| missing(run, &format!("no checkpoint of step {step}")))?
            }
            Self::Path(path) => path.clone(),
        };
        checkpoint::read_intact(&path)
    }
}

/// The error for a checkpoint `run` lacks, listing those it has.
fn missing(run: &RunDir, what: &str) -> TrainError {
    let steps: Vec<String> =
        checkpoint::list(&run.checkpoints()).iter().map(|(step, _)| format!("step-{step}")).collect();
    let have = if steps.is_empty() { "none".to_string() } else { steps.join(", ") };
    TrainError::Config(format!("run {} has {what} (checkpoints: {have})", run.root().display()))
}
