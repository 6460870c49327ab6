//! `hrm plot`: the loss curves of one or more runs as a PNG.

use std::path::PathBuf;

use anyhow::{Context, bail};
use hrm_infer::{LossCurve, plot_loss_curves};

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
}

pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    let output = match (&args.output, args.runs.as_slice()) {
        (Some(path), _) => path.clone(),
        (None, [one]) => one.join("loss.png"),
        (None, _) => bail!("several runs go into one plot: name it with --output FILE.png"),
    };
    let mut curves = Vec::new();
    for run in &args.runs {
        let path = run.join("metrics.jsonl");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let label = run.file_name().map_or_else(|| run.display().to_string(), |n| n.to_string_lossy().into_owned());
        let curve = LossCurve::from_metrics(label, &text);
        if curve.is_empty() {
            bail!("{} holds no logged losses", path.display());
        }
        curves.push(curve);
    }
    let title = args.title.unwrap_or_else(|| curves.iter().map(|c| c.label.as_str()).collect::<Vec<_>>().join(" vs "));
    plot_loss_curves(&curves, &title, &output)?;
    println!("wrote {}", output.display());
    Ok(())
}
