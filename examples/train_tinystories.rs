//! Trains a small HRM on TinyStories and prints stories from it.
//!
//! ```text
//! cargo run --release --example train_tinystories                    # CPU, a few minutes
//! cargo run --release --example train_tinystories -- --steps 2000
//! cargo run --release --features cuda --example train_tinystories -- --device cuda
//! ```
//!
//! The text comes from, in this order: `--data` (a .txt file or a folder of them), then
//! `$HRM_DATA_DIR`, then the Hugging Face cache, then a download of `roneneldan/TinyStories`
//! (`TinyStories-valid.txt`, 19 MB), then `../shared/data/tinystories` beside the repository.
//! Running it again resumes the run in `runs/train_tinystories` (Ctrl+C pauses it safely).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use hrm::burn;
use hrm::core::{BlockConfig, HrmAutodiffBackend, HrmConfig, HrmOps, ModelConfig};
use hrm::data::{DataConfig, HubDataset, HubOptions, HubShard, SourceSpec};
use hrm::infer::{GenerationConfig, SamplingConfig, generate};
use hrm::train::{RunConfig, RunDir, TokenizerConfig, TrainConfig, TrainOptions, Trainer};

/// Train a small HRM on TinyStories and print samples.
#[derive(Parser)]
struct Args {
    /// A TinyStories .txt file or a folder of them.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Optimiser steps.
    #[arg(long, default_value_t = 400)]
    steps: u64,
    /// `char` (learns to spell within minutes on a CPU) or `bpe` (2,048 ids; needs more steps).
    #[arg(long, default_value = "char")]
    tokenizer: String,
    /// Run folder.
    #[arg(long, default_value = "runs/train_tinystories")]
    output: PathBuf,
    /// `cpu` or `cuda` (needs `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

const HUB_REPO: &str = "roneneldan/TinyStories";
const HUB_FILE: &str = "TinyStories-valid.txt";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    let args = Args::parse();
    let data = find_data(args.data.as_deref())?;
    match args.device.as_str() {
        "cpu" => train::<burn::backend::Autodiff<burn::backend::Flex>>(&args, &data, Default::default()),
        #[cfg(feature = "cuda")]
        "cuda" => train::<burn::backend::Autodiff<burn::backend::Cuda>>(&args, &data, Default::default()),
        other => bail!("device `{other}` is not available in this build (cpu, or cuda with --features cuda)"),
    }
}

/// The TinyStories text, looked for in the documented order; says which it used.
fn find_data(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        println!("data: {} (--data)", path.display());
        return Ok(path.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("HRM_DATA_DIR").map(PathBuf::from) {
        println!("data: {} ($HRM_DATA_DIR)", dir.display());
        return Ok(dir);
    }
    let hub = HubOptions { max_retries: 0, ..HubOptions::from_env() };
    let dataset = HubDataset {
        repo: HUB_REPO.into(),
        config: "default".into(),
        split: "train".into(),
        data_files: None,
        revision: "main".into(),
    };
    let shard = HubShard { dataset, filename: HUB_FILE.into() };
    if let Some(path) = shard.cached(&hub) {
        println!("data: {} (Hugging Face cache)", path.display());
        return Ok(path);
    }
    if !hub.offline {
        match shard.fetch(&hub) {
            Ok(path) => {
                println!("data: {} (downloaded from the Hub: {HUB_REPO})", path.display());
                return Ok(path);
            }
            Err(e) => println!("the Hub is out of reach ({e}); looking beside the repository"),
        }
    }
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/tinystories");
    if let Ok(shared) = shared.canonicalize() {
        println!("data: {} (../shared/data beside the repository)", shared.display());
        return Ok(shared);
    }
    bail!("no TinyStories text found: pass --data FILE, set HRM_DATA_DIR, or let the Hub be reached")
}

/// A small HRM: d_model 128, 2+2 layers, N = T = 2, ACT up to 2 segments (0.7M parameters
/// with characters, 1.6M with BPE 2,048).
fn config(data: &Path, steps: u64, tokenizer: TokenizerConfig) -> TrainConfig {
    let path = if data.is_dir() { data.join("*.txt") } else { data.to_path_buf() };
    let source = SourceSpec::local("tinystories", &path.to_string_lossy());
    let block = BlockConfig::new(128, 4).with_max_seq_len(256);
    let model = ModelConfig::Hrm(HrmConfig::new(0, block, 2, 2).with_halt_max_steps(2));
    let data = DataConfig { validation_fraction: 0.02, shuffle_block: 256, ..DataConfig::new(vec![source], 128, 16) };
    let run = RunConfig {
        eval_every: (steps / 4).max(1),
        checkpoint_every: (steps / 4).max(1),
        eval_batches: 10,
        tokenizer_docs: 3000,
        ..RunConfig::new(steps)
    };
    TrainConfig {
        model,
        data,
        tokenizer,
        optim: hrm::train::OptimConfig { lr: 1e-3, embed_lr: 1e-3, ..Default::default() },
        schedule: hrm::train::ScheduleConfig { warmup_steps: Some(steps / 20), ..Default::default() },
        act: Default::default(),
        growth: Default::default(),
        curriculum: Vec::new(),
        run,
    }
}

fn train<B: HrmAutodiffBackend>(args: &Args, data: &Path, device: B::Device) -> anyhow::Result<()> {
    let run = RunDir::new(&args.output);
    let trainer = if hrm::train::checkpoint::list(&run.checkpoints()).is_empty() {
        let kind = match args.tokenizer.as_str() {
            "char" => TokenizerConfig::Char,
            "bpe" => TokenizerConfig::Bpe { vocab_size: 2048 },
            other => bail!("unknown tokenizer `{other}`: use char or bpe"),
        };
        let mut config = config(data, args.steps, kind);
        let tokenizer = config.prepare_tokenizer(Path::new(".")).context("building the tokenizer")?;
        println!("training a {}-parameter HRM in {}", config.model.num_params(), run.root().display());
        Trainer::<B>::start(config, tokenizer, run, Path::new("."), device.clone())?
    } else {
        println!("resuming {}", run.root().display());
        Trainer::<B>::resume(run, device.clone())?
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)).ok();
    let summary = trainer.run(&TrainOptions { progress: true, stop, ..TrainOptions::default() })?;
    if let Some(eval) = summary.last_eval {
        println!("step {}: validation loss {:.3}, {:.3} bits/byte", summary.step, eval.loss, eval.bits_per_byte);
    }
    print_samples::<B::InnerBackend>(&args.output, &device)
}

fn print_samples<B: HrmOps>(run: &Path, device: &B::Device) -> anyhow::Result<()> {
    let loaded = hrm::train::load_run::<B>(&RunDir::new(run), device)?;
    let config = GenerationConfig {
        max_new_tokens: Some(200),
        sentence_end_after: Some(100),
        context: Some(loaded.config.data.seq_len),
        sampling: SamplingConfig { temperature: 0.7, top_k: 40, seed: 1, ..Default::default() },
        ..GenerationConfig::default()
    };
    for prompt in ["Once upon a time", "One day, a little girl named Lily", "The dog was happy because"] {
        let story = generate(&loaded.model, &loaded.tokenizer, prompt, &config, device, &mut |_| {})?;
        println!("\n{prompt}{}", story.text);
    }
    Ok(())
}
