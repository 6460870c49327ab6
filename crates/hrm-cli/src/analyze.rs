//! `hrm analyze`: L/H state norms per call, halting per position, and the tokenizer check,
//! as JSON and a PNG in the run folder.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::tensor::{Int, Tensor, TensorData};
use hrm_core::Model;
use hrm_data::Tokenizer;
use hrm_infer::{analyze, plot_analysis};
use hrm_train::{check_tokenizer, restore_tokenizer};

use crate::device::DeviceKind;
use crate::with_backend;

/// Arguments of `hrm analyze`.
#[derive(clap::Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    run: crate::run_args::RunArgs,
    /// The text to reason over (cut to the training sequence length).
    #[arg(long, short, default_value = "Once upon a time, there was a little girl who loved to read.")]
    text: String,
    /// Reasoning mode: fast, normal, deep or extreme (default: the trained N and T).
    #[arg(long)]
    mode: Option<hrm_core::ReasoningMode>,
    /// Most ACT segments per token (default: the trained halt_max_steps).
    #[arg(long)]
    halt_max_steps: Option<usize>,
    /// Where to write analysis.json and analysis.png (default: `RUN/analysis/<checkpoint>`).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Only check the tokenizer against the checkpoint's copy.
    #[arg(long, conflicts_with = "restore_tokenizer")]
    check_tokenizer: bool,
    /// Rebuild the run folder's tokenizer from the newest checkpoint (the old one is kept as .bak).
    #[arg(long)]
    restore_tokenizer: bool,
    /// Where to run.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let run_dir = args.run.dir();
    if args.restore_tokenizer {
        let path = restore_tokenizer(&run_dir)?;
        println!("restored {} from the newest checkpoint", path.display());
    }
    let check = check_tokenizer(&run_dir, &args.text)?;
    println!(
        "tokenizer: {} ids (model: {}), round trip {}, run folder copy {:?} → {}",
        check.vocab_size,
        check.model_vocab_size,
        if check.round_trips { "ok" } else { "inexact (characters outside the vocabulary?)" },
        check.run_copy,
        if check.ok() { "ok" } else { "MISMATCH (fix: hrm analyze RUN --restore-tokenizer)" }
    );
    if args.check_tokenizer || args.restore_tokenizer {
        return if check.ok() { Ok(()) } else { bail!("the tokenizer does not match the checkpoint") };
    }
    with_backend!(args.device, |B, device| {
        type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
        let run = args.run.load::<Inner>(&device)?;
        let Model::Hrm(model) = &run.model else { bail!("state analysis needs an HRM; this run trains a flat model") };
        let mut ids = run.tokenizer.encode(&args.text)?;
        ids.truncate(run.config.data.seq_len);
        if ids.is_empty() {
            bail!("--text encodes to no tokens");
        }
        let len = ids.len();
        let tokens = Tensor::<Inner, 2, Int>::from_data(
            TensorData::new(ids.into_iter().map(i64::from).collect::<Vec<_>>(), [1, len]),
            &device,
        );
        let thinking =
            hrm_infer::GenerationConfig { mode: args.mode, halt_max_steps: args.halt_max_steps, ..Default::default() }
                .thinking();
        let analysis = analyze(model, tokens, &thinking);
        let name = run.checkpoint_name();
        let dir = args.output.clone().unwrap_or_else(|| run_dir.root().join("analysis").join(name));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let report = serde_json::json!({ "checkpoint": run.checkpoint, "text": args.text, "tokenizer": check, "analysis": analysis });
        std::fs::write(dir.join("analysis.json"), serde_json::to_string_pretty(&report)?)?;
        for s in &analysis.trace {
            let step = if s.level == "L" { format!(" step {}", s.step + 1) } else { String::new() };
            println!("{} cycle {}{step}: ‖z‖ {:.3}  ‖Δz‖ {:.3}", s.level, s.cycle + 1, s.norm, s.change);
        }
        println!(
            "halting: mean {:.2} segments (cap {}), histogram {:?}",
            analysis.halting.mean, analysis.halting.max_steps, analysis.halting.histogram
        );
        match plot_analysis(&analysis, &dir.join("analysis.png")) {
            Ok(()) => println!("wrote {} and analysis.png", dir.join("analysis.json").display()),
            Err(e) => println!("wrote {} (no PNG: {e})", dir.join("analysis.json").display()),
        }
        Ok(())
    })
}
