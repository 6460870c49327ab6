//! `hrm eval`: validation loss, perplexity and bits per byte of a run on any data config.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hrm_infer::score_text;
use hrm_train::{TrainConfig, evaluate_run};

use crate::device::DeviceKind;
use crate::with_backend;

/// Arguments of `hrm eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    run: crate::run_args::RunArgs,
    /// A run config whose `[data]` names the text (default: the run's own validation split).
    #[arg(long, short, conflicts_with = "text")]
    config: Option<PathBuf>,
    /// Score a whole text file instead (.txt, read as UTF-8), with a progress bar.
    #[arg(long)]
    text: Option<PathBuf>,
    /// Generate from the run and compare the text's character trigrams with this reference
    /// text (cosine similarity; docs/metrics.md), beside the reference's own two halves.
    #[arg(long, conflicts_with_all = ["config", "text"])]
    compare_text: Option<PathBuf>,
    /// With --compare-text: texts generated, each from the start of a line of the reference.
    #[arg(long, default_value_t = 4, requires = "compare_text")]
    samples: usize,
    /// With --compare-text: new tokens per generated text.
    #[arg(long, default_value_t = 200, requires = "compare_text")]
    sample_tokens: usize,
    /// Reasoning mode of an HRM: fast, normal, deep or extreme (default: the trained N and T).
    #[arg(long)]
    mode: Option<hrm_core::ReasoningMode>,
    /// Halt each position where the Q head says so (default: every position runs all
    /// `halt_max_steps` segments, as validation during training does).
    #[arg(long)]
    adaptive: bool,
    /// Print one JSON object (the metrics, checkpoint, mode and halting) instead of a sentence.
    #[arg(long)]
    json: bool,
    /// Validation batches to evaluate (all, if the split is smaller).
    #[arg(long, default_value_t = 50)]
    batches: usize,
    /// Where to run.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let run = args.run.dir();
    if let Some(path) = &args.text {
        return score_file(&args, path);
    }
    if let Some(path) = &args.compare_text {
        return compare_text(&args, path);
    }
    let (data, base) = match &args.config {
        Some(path) => {
            let config = TrainConfig::load(path)?;
            (config.data, crate::folder::folder_of(path))
        }
        None => (TrainConfig::load(&run.config()).context("not a run folder")?.data, args.run.run.clone()),
    };
    let thinking = thinking(&args);
    with_backend!(args.device, |B, device| {
        let (metrics, checkpoint) = evaluate_run::<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend>(
            &run,
            &args.run.checkpoint,
            &data,
            &base,
            args.batches,
            thinking.as_ref(),
            crate::precision(false),
            &device,
        )?;
        if args.json {
            print_json(&args, &checkpoint, serde_json::to_value(metrics)?);
            return Ok(());
        }
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

/// Prints one JSON object: the checkpoint, the reasoning settings, then `fields`.
fn print_json(args: &EvalArgs, checkpoint: &Path, fields: serde_json::Value) {
    let mut report = serde_json::json!({
        "checkpoint": checkpoint.display().to_string(),
        "mode": args.mode.map_or("trained", |m| m.name()),
        "adaptive": args.adaptive,
    });
    if let (Some(report), serde_json::Value::Object(fields)) = (report.as_object_mut(), fields) {
        report.extend(fields);
    }
    println!("{report}");
}

/// The reasoning `--mode` and `--adaptive` ask for; `None` for the trained settings with
/// every segment run.
fn thinking(args: &EvalArgs) -> Option<hrm_core::Thinking> {
    let base = args.mode.map_or_else(hrm_core::Thinking::default, hrm_core::Thinking::mode);
    (args.mode.is_some() || args.adaptive).then_some(hrm_core::Thinking { adaptive: args.adaptive, ..base })
}

/// `hrm eval RUN --text FILE`: loss, perplexity and bits per byte over a whole file. The HRM
/// runs every position for its full `halt_max_steps` segments, as validation does, unless
/// `--adaptive`.
fn score_file(args: &EvalArgs, path: &Path) -> anyhow::Result<()> {
    let text = read_text(path)?;
    with_backend!(args.device, |B, device| {
        type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
        let run = args.run.load::<Inner>(&device)?;
        let thinking = thinking(args).unwrap_or(hrm_core::Thinking { adaptive: false, ..Default::default() });
        let bar = crate::progress::bar(0, "windows");
        let score = score_text(
            &run.model,
            &run.tokenizer,
            &text,
            run.config.data.seq_len,
            run.config.data.batch_size,
            &thinking,
            run.config.model.loss(),
            &device,
            &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )?;
        bar.finish_and_clear();
        if args.json {
            let fields = serde_json::json!({
                "text": path.display().to_string(),
                "loss": score.loss,
                "perplexity": score.perplexity,
                "bits_per_byte": score.bits_per_byte,
                "tokens": score.tokens,
                "bytes": score.bytes,
            });
            print_json(args, &run.checkpoint, fields);
            return Ok(());
        }
        println!(
            "{} on {}: loss {:.4}, perplexity {:.2}, {:.4} bits/byte over {} tokens ({} bytes)",
            run.checkpoint.display(),
            path.display(),
            score.loss,
            score.perplexity,
            score.bits_per_byte,
            score.tokens,
            score.bytes
        );
        Ok(())
    })
}

/// `hrm eval RUN --compare-text REF`: generates `--samples` texts, each continuing the first
/// characters of an evenly spaced line of the reference (sampled as `hrm generate` does by
/// default, seed 0, in the asked reasoning mode), and prints their character-trigram
/// similarity to the reference.
fn compare_text(args: &EvalArgs, path: &Path) -> anyhow::Result<()> {
    let reference = read_text(path)?;
    let prompts = line_starts(&reference, args.samples.max(1), 20);
    anyhow::ensure!(!prompts.is_empty(), "{} has no line of text to start generating from", path.display());
    with_backend!(args.device, |B, device| {
        type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
        let run = args.run.load::<Inner>(&device)?;
        let config = hrm_infer::GenerationConfig {
            max_new_tokens: Some(args.sample_tokens),
            context: Some(run.config.data.seq_len),
            mode: args.mode,
            ..Default::default()
        };
        let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let outputs = hrm_infer::generate_batch::<Inner, _>(
            &run.model,
            &run.tokenizer,
            &prompts,
            &config,
            &device,
            &mut |_, _| {},
        )?;
        let generated: Vec<String> = outputs.into_iter().map(|g| g.text).collect();
        let generated = generated.join("\n");
        let similarity = hrm_infer::trigram_similarity(&generated, &reference);
        let ceiling = hrm_infer::halves_similarity(&reference);
        if args.json {
            let fields = serde_json::json!({
                "compare_text": path.display().to_string(),
                "trigram_similarity": similarity,
                "reference_halves": ceiling,
                "generated_chars": generated.chars().count(),
            });
            print_json(args, &run.checkpoint, fields);
            return Ok(());
        }
        println!(
            "{} against {}: character-trigram similarity {similarity:.3} (the reference's halves: {ceiling:.3}) over {} generated characters",
            run.checkpoint.display(),
            path.display(),
            generated.chars().count()
        );
        Ok(())
    })
}

/// The first `chars` characters of `count` lines of `text` spread evenly over its non-blank lines.
fn line_starts(text: &str, count: usize, chars: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let step = (lines.len() / count).max(1);
    lines.iter().step_by(step).take(count).map(|l| l.chars().take(chars).collect()).collect()
}

/// The file at `path` as UTF-8 text; an error names the file.
fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {} as UTF-8 text", path.display()))
}
