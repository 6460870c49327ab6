//! `hrm info`: what a run folder holds.

use std::path::PathBuf;

use anyhow::Context;
use hrm_data::Tokenizer;
use hrm_train::{RunDir, TrainConfig, checkpoint};

/// Arguments of `hrm info`.
#[derive(clap::Args)]
pub struct InfoArgs {
    /// The run folder.
    run: PathBuf,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let config = TrainConfig::load(&run.config())
        .with_context(|| format!("{} is not an hrm run folder (no readable config.toml)", args.run.display()))?;
    println!("run: {}", args.run.display());
    println!("model: {} ({} parameters)", config.model.summary(), config.model.num_params());
    let sources: Vec<&str> = config.data.sources.iter().map(|s| s.name.as_str()).collect();
    println!("data: {} (seq_len {}, batch {})", sources.join(", "), config.data.seq_len, config.data.batch_size);
    match hrm_data::AnyTokenizer::load_from_dir(run.root()) {
        Ok(t) => println!("tokenizer: {} with {} ids", t.file_name(), t.vocab_size()),
        Err(e) => println!("tokenizer: unreadable ({e}); fix: hrm analyze {} --restore-tokenizer", args.run.display()),
    }
    println!("checkpoints:");
    for (step, path) in checkpoint::list(&run.checkpoints()) {
        let size: u64 = std::fs::read_dir(&path)
            .map_or(0, |d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum());
        let health = match checkpoint::read(&path) {
            Ok(_) => "intact".to_string(),
            Err(e) => format!("DAMAGED: {e}"),
        };
        let roles: Vec<&str> = ["latest", "best", "pause"]
            .into_iter()
            .filter(|r| {
                checkpoint::pointer(&run.checkpoints(), r)
                    .is_some_and(|p| p.ends_with(path.file_name().unwrap_or_default()))
            })
            .collect();
        println!("  step {step:>9}  {:>8.1} MB  {health}  {}", size as f64 / 1e6, roles.join(" "));
    }
    println!("  (commands that read a run take --checkpoint latest|best|step-N|PATH; default latest)");
    if let Ok(newest) = hrm_train::checkpoint::newest_intact(&run)
        && let Ok(state) = newest.state()
    {
        println!(
            "trained: {} steps, {} tokens, best validation loss {}",
            state.step,
            state.tokens,
            state.best_val_loss.map_or("-".into(), |l| format!("{l:.4}"))
        );
        for d in &state.datasets {
            println!("  dataset {} from step {}", d.sources.join("+"), d.from_step);
        }
        if state.world() > 1 {
            println!(
                "  data-parallel over {} devices: resume with --gpus {} (or --devices)",
                state.world(),
                state.world()
            );
        }
    }
    if let Ok(metrics) = std::fs::read_to_string(run.metrics())
        && let Some(last) = metrics.lines().rev().find(|l| l.contains("\"eval\""))
    {
        println!("last evaluation: {last}");
    }
    Ok(())
}
