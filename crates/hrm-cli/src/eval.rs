//! `hrm eval`: validation loss, perplexity and bits per byte of a run on any data config.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hrm_train::{RunDir, TrainConfig, evaluate_run};

use crate::device::DeviceKind;
use crate::with_backend;

/// Arguments of `hrm eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// The run folder (its newest intact checkpoint is evaluated).
    run: PathBuf,
    /// A run config whose `[data]` names the text (default: the run's own).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Validation batches to evaluate (all, if the split is smaller).
    #[arg(long, default_value_t = 50)]
    batches: usize,
    /// Where to run.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let (data, base) = match &args.config {
        Some(path) => {
            let config = TrainConfig::load(path)?;
            (config.data, path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf())
        }
        None => (TrainConfig::load(&run.config()).context("not a run folder")?.data, args.run.clone()),
    };
    with_backend!(args.device, |B, device| {
        let (metrics, checkpoint) = evaluate_run::<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>(
            &run,
            &data,
            &base,
            args.batches,
            &device,
        )?;
        println!(
            "{}: loss {:.4}, perplexity {:.2}, {:.4} bits/byte, accuracy {:.3} over {} tokens",
            checkpoint.display(),
            metrics.loss,
            metrics.perplexity,
            metrics.bits_per_byte,
            metrics.accuracy,
            metrics.tokens
        );
        Ok(())
    })
}
