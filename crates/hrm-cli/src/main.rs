//! `hrm`: train Hierarchical Reasoning Model language models.

mod analyze;
mod batch_probe;
mod chat;
mod data;
mod device;
mod eval;
mod folder;
mod generate;
mod generation_args;
mod info;
mod interop;
#[cfg(feature = "cuda")]
mod nccl;
mod plot;
mod progress;
mod run_args;
mod sweep;
mod tokenizer;
mod train;

use std::sync::OnceLock;

use clap::{Parser, Subcommand};
use hrm_core::layers::Precision;

/// Train, run and study Hierarchical Reasoning Model language models.
#[derive(Parser)]
#[command(
    name = "hrm",
    version,
    about,
    after_help = "Data: Hub datasets and tokenizers download once into the Hugging Face cache \
                  (HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE=1 as huggingface_hub reads them). \
                  HRM_LOCAL_DATA=DIR reads each source's and tokenizer's `local` copy under DIR instead \
                  (machines without the network; docs/data.md)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Exact f32 matmuls on GPUs: burn's CUDA backend otherwise multiplies f32 on TF32 tensor
    /// cores (~1e-3 relative). Costs about 4x the matmul time; no effect on CPU results.
    #[arg(long, global = true)]
    strict_f32: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model from a config file, resume a run, or continue a run on new data.
    Train(train::TrainArgs),
    /// Evaluate a run's checkpoint (the newest, or --checkpoint): loss, perplexity, bits per byte, accuracy.
    Eval(eval::EvalArgs),
    /// Continue prompts with a run's checkpoint (the newest, or --checkpoint), streaming the text.
    Generate(generate::GenerateArgs),
    /// Generate for every prompt × setting of a sweep plan into one JSON report with quality scores.
    Sweep(sweep::SweepArgs),
    /// Show how a run's HRM reasons: L/H state norms per call, halting per position (JSON + PNG), tokenizer check.
    Analyze(analyze::AnalyzeArgs),
    /// Build a tokenizer from text files, or inspect one.
    #[command(subcommand)]
    Tokenizer(tokenizer::TokenizerCommand),
    /// Inspect what a data config streams: counts, filter statistics, sample documents.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Export a run's checkpoint (the newest, or --checkpoint): model.safetensors (PyTorch layout), config.json, tokenizer.
    Export(interop::ExportArgs),
    /// Make a run folder from an export, so every command takes it.
    Import(interop::ImportArgs),
    /// Draw the loss curves (training and validation) of one or more runs into a PNG.
    Plot(plot::PlotArgs),
    /// Show what a run folder holds: model, tokenizer, checkpoints and their health, progress.
    Info(info::InfoArgs),
    /// Chat with a run's checkpoint (the newest, or --checkpoint) from a terminal or a pipe: reasoning modes, memory, commands.
    Chat(chat::ChatArgs),
    /// One training step at a batch size, for `hrm train --batch-size auto` (internal).
    #[command(hide = true)]
    ProbeBatch(batch_probe::ProbeArgs),
}

/// `--strict-f32`, as this process was asked.
static STRICT_F32: OnceLock<bool> = OnceLock::new();

/// The precision this process's models compute at: strict f32 where `--strict-f32` asks,
/// else bf16 products of f32 weights where `mixed`, else the backend's own.
pub fn precision(mixed: bool) -> Precision {
    match (STRICT_F32.get().copied().unwrap_or(false), mixed) {
        (true, _) => Precision::StrictF32,
        (false, true) => Precision::Bf16Products,
        (false, false) => Precision::Native,
    }
}

/// A loaded run whose model computes at this process's [`precision`] (f32 weights).
pub fn with_precision<B: hrm_core::HrmOps>(run: hrm_train::LoadedRun<B>) -> hrm_train::LoadedRun<B> {
    hrm_train::LoadedRun { model: run.model.with_precision(precision(false)), ..run }
}

/// Log levels unless `RUST_LOG` says otherwise: hrm's progress at info; burn's collective
/// prints its whole config at info when each rank joins, so only its warnings.
const DEFAULT_LOG: &str = "info,burn_collective=warn";

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_LOG.into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    STRICT_F32.set(cli.strict_f32).expect("set once, before any command runs");
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Tokenizer(command) => tokenizer::run(command),
        Command::Data(command) => data::run(command),
        Command::Export(args) => interop::export(args),
        Command::Import(args) => interop::import(args),
        Command::Info(args) => info::run(args),
        Command::Plot(args) => plot::run(args),
        Command::ProbeBatch(args) => batch_probe::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
