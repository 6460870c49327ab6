//! `hrm plot`: the loss curves of one or more runs as a PNG.

use std::path::PathBuf;

use anyhow::{Context, bail};
use hrm_infer::{Axis, LossCurve, plot_loss_curves};

/// Arguments of `hrm plot`.
#[derive(clap::Args)]
pub struct PlotArgs {
    /// Run folders; each one's `metrics.jsonl` becomes a training and a validation curve.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// The PNG to write (default: `RUN/loss.png` for one run; required for several).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// The plot's title (default: the run names).
    #[arg(long)]
    title: Option<String>,
    /// The x axis: tokens read, optimiser steps, or progress (share of each run's steps: runs
    /// given equal FLOPs line up by their share of the budget).
    #[arg(long, value_enum, default_value = "tokens")]
    x: XAxis,
    /// Legend names, one per run in order (default: the run folders' names).
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
}

/// The x axis of `hrm plot`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum XAxis {
    Tokens,
    Steps,
    Progress,
}

/// Reads each run's metrics and writes the PNG.
pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    let output = match (&args.output, args.runs.as_slice()) {
        (Some(path), _) => path.clone(),
        (None, [one]) => one.join("loss.png"),
        (None, _) => bail!("several runs go into one plot: name it with --output FILE.png"),
    };
    if !args.labels.is_empty() && args.labels.len() != args.runs.len() {
        bail!("--labels gives {} names for {} runs", args.labels.len(), args.runs.len());
    }
    let mut curves = Vec::new();
    for (i, run) in args.runs.iter().enumerate() {
        let path = run.join("metrics.jsonl");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let label = args.labels.get(i).cloned().unwrap_or_else(|| {
            run.file_name().map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into_owned())
        });
        let curve = LossCurve::from_metrics(label, &text);
        if curve.is_empty() {
            bail!("{} holds no logged losses", path.display());
        }
        curves.push(curve);
    }
    let title = args.title.unwrap_or_else(|| curves.iter().map(|c| c.label.as_str()).collect::<Vec<_>>().join(" vs "));
    let axis = match args.x {
        XAxis::Tokens => Axis::Tokens,
        XAxis::Steps => Axis::Steps,
        XAxis::Progress => Axis::Progress,
    };
    plot_loss_curves(&curves, axis, &title, &output)?;
    println!("wrote {}", output.display());
    Ok(())
}
