//! `hrm sweep`: every prompt under every generation setting, into one JSON report.

use std::path::PathBuf;

use anyhow::Context;
use hrm_infer::{SweepPlan, SweepReport, TrigramProfile, WordVocabulary, run_sweep};

use crate::device::DeviceKind;
use crate::with_backend;

/// Arguments of `hrm sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    #[command(flatten)]
    run: crate::run_args::RunArgs,
    /// A TOML plan (`prompts = [...]` and `[[settings]]` tables); default: seed 002's 10 prompts × 8 settings.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Most new tokens per output in the default plan.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Where to write the JSON (default: `RUN/sweeps/<checkpoint>.json`).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Training documents read to build the word-formation vocabulary (0: skip that score).
    #[arg(long, default_value_t = 2000)]
    vocabulary_docs: usize,
    /// Where to run.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    let plan = match &args.plan {
        Some(path) => SweepPlan::load(path).map_err(anyhow::Error::msg)?,
        None => SweepPlan::standard(args.max_tokens),
    };
    let run_dir = args.run.dir();
    with_backend!(args.device, |B, device| {
        type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
        let run = args.run.load::<Inner>(&device)?;
        let training_text = match args.vocabulary_docs {
            0 => None,
            n => Some(
                hrm_train::config::first_documents(&run.config.data, run_dir.root(), n)
                    .context("reading training text for the word-formation score (pass --vocabulary-docs 0 to skip)")?
                    .join("\n"),
            ),
        };
        let vocabulary = training_text.as_deref().map(WordVocabulary::from_text);
        let reference = training_text.as_deref().map(TrigramProfile::from_text);
        let bar = crate::progress::bar((plan.prompts.len() * plan.settings.len()) as u64, "sweep");
        let results = run_sweep(
            &run.model,
            &run.tokenizer,
            &plan,
            run.config.data.seq_len,
            vocabulary.as_ref(),
            &device,
            &mut |done, _| bar.set_position(done as u64),
        )?;
        bar.finish_and_clear();
        let checkpoint = run.checkpoint.display().to_string();
        let device_name = args.device.describe(&device);
        let report = SweepReport::new(
            checkpoint,
            run.config.model.summary(),
            run.config.model.num_params(),
            device_name,
            results,
            &plan,
            reference.as_ref(),
        );
        let name = run.checkpoint_name();
        let output = args.output.clone().unwrap_or_else(|| run_dir.root().join("sweeps").join(format!("{name}.json")));
        if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&output, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", output.display()))?;
        println!("{:<16} {:>10} {:>9} {:>8} {:>9}", "setting", "tokens/s", "quality", "tokens", "trigrams");
        for s in &report.summary {
            let trigrams = s.trigram_similarity.map_or("-".into(), |t| format!("{t:.3}"));
            println!(
                "{:<16} {:>10.1} {:>9.1} {:>8.1} {trigrams:>9}",
                s.setting, s.tokens_per_second, s.quality, s.new_tokens
            );
        }
        println!("{} outputs written to {}", report.results.len(), output.display());
        Ok(())
    })
}
