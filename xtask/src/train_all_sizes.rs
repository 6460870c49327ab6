//! `cargo xtask train-all-sizes`: trains every size preset in turn with the `hrm` binary, one
//! run folder each, then writes a summary table (Markdown and JSON).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hrm_core::presets;
use hrm_train::TrainConfig;
use serde::Serialize;

use crate::runs::{
    Finished, GpuMemory, RunSummary, device_flag, git_rev, hrm_binary, run_to_end, stories, train_command,
};

/// Options of train-all-sizes.
#[derive(clap::Args)]
pub struct Args {
    /// Comma-separated presets or their first word (micro, nano, small, medium-100m, medium-350m, large), or `all`.
    #[arg(long, default_value = "all")]
    sizes: String,
    /// Tokens each size reads (an ACT model takes `halt_max_steps` optimiser steps per batch).
    #[arg(long, default_value_t = 1_000_000)]
    tokens: u64,
    /// A size's own budget, e.g. `large-1b=32768` (repeatable): the large presets get a short
    /// one that shows speed, memory and a falling loss.
    #[arg(long = "tokens-for", value_name = "PRESET=TOKENS")]
    tokens_for: Vec<String>,
    /// Sequences per batch (default: the preset config's; pass a few on a CPU).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Tokens per sequence (default: the preset config's).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Data mix (relative to configs/train/).
    #[arg(long, default_value = "../mixes/tinystories.toml")]
    mix: String,
    /// Stories to generate after each run (prompt "Once upon a time", one batch).
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// `cpu` or `cuda` (builds hrm with `--features cuda` unless `--hrm` is given).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// An `hrm` binary to use instead of building one (a device without a Rust toolchain).
    #[arg(long)]
    hrm: Option<PathBuf>,
    /// Folder for the run folders and the summary.
    #[arg(long, default_value = "runs/all-sizes")]
    output: PathBuf,
    /// Print the plan (parameter counts, steps, estimated training memory) and train nothing.
    #[arg(long)]
    dry_run: bool,
}

/// One size's outcome, as written to summary.json.
#[derive(Serialize)]
struct Row {
    model: String,
    preset: String,
    params: usize,
    stated_params: Option<usize>,
    estimated_memory_gb: f64,
    batch: usize,
    seq_len: usize,
    steps: u64,
    tokens: Option<u64>,
    tokens_per_s: Option<f64>,
    peak_gpu_mem_bytes: Option<u64>,
    peak_rss_bytes: Option<u64>,
    val_loss: Option<f64>,
    val_bits_per_byte: Option<f64>,
    first_val_loss: Option<f64>,
    final_train_loss: Option<f64>,
    tokenizer: String,
    mean_act_steps: Option<f64>,
    samples: Vec<String>,
    seconds: Option<f64>,
    run: String,
    git_rev: String,
}

/// Training memory estimate (GB): f32 weights, gradients and two AdamW moments (16 bytes a
/// parameter), plus the activations of the one gradient-carrying L and H call — per block
/// about 16·d + 2·heads·seq floats a token (attention inputs, qkv, scores, MLP, norms) —
/// and the logits twice (values and gradients).
fn estimated_memory_gb(config: &hrm_core::HrmConfig, batch: usize, seq: usize) -> f64 {
    let b = &config.block;
    let tokens = (batch * seq) as f64;
    let per_block = tokens * (16 * b.d_model + 2 * b.n_heads * seq) as f64 + tokens * 2.0 * b.ffn_dim() as f64;
    let activations = per_block * (config.h_layers + config.l_layers) as f64 + tokens * 2.0 * config.vocab_size as f64;
    (16.0 * config.num_params() as f64 + 4.0 * activations) / 1e9
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let family: Vec<_> = presets::presets().into_iter().filter(|p| p.stated_params.is_some()).collect();
    let wanted: Vec<_> = if args.sizes == "all" {
        family
    } else {
        let mut chosen = Vec::new();
        for name in args.sizes.split(',').map(str::trim) {
            let found = family.iter().find(|p| p.name == name || p.name.starts_with(&format!("{name}-")));
            match found {
                Some(p) => chosen.push(p.clone()),
                None => bail!(
                    "unknown size `{name}`; sizes: {}",
                    family.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        chosen
    };
    let rev = git_rev();
    println!(
        "{:<12} {:>12} {:>12} {:>10} {:>7} {:>11}",
        "preset", "parameters", "stated", "tokens", "steps", "est. memory"
    );
    let mut rows = Vec::new();
    for p in &wanted {
        let config = TrainConfig::load(&config_path(p.name))?;
        let batch = args.batch_size.unwrap_or(config.data.batch_size);
        let seq_len = args.seq_len.unwrap_or(config.data.seq_len);
        let tokens = budget(&args, p.name)?;
        let batches = tokens.div_ceil((batch * seq_len) as u64).max(1);
        let steps = batches * p.config.halt_max_steps.max(1) as u64;
        let memory = estimated_memory_gb(&p.config, batch, seq_len);
        println!(
            "{:<12} {:>12} {:>12} {:>10} {:>7} {:>8.2} GB  (batch {batch} × seq {seq_len}, ACT {})",
            p.name,
            p.config.num_params(),
            p.stated_params.unwrap_or(0),
            tokens,
            steps,
            memory,
            p.config.halt_max_steps
        );
        rows.push(Row {
            model: "hrm".into(),
            preset: p.name.into(),
            params: p.config.num_params(),
            stated_params: p.stated_params,
            estimated_memory_gb: memory,
            batch,
            seq_len,
            steps,
            tokens: None,
            tokens_per_s: None,
            peak_gpu_mem_bytes: None,
            peak_rss_bytes: None,
            val_loss: None,
            val_bits_per_byte: None,
            first_val_loss: None,
            final_train_loss: None,
            tokenizer: "T5 (32,100)".into(),
            mean_act_steps: None,
            samples: Vec::new(),
            seconds: None,
            run: String::new(),
            git_rev: rev.clone(),
        });
    }
    if args.dry_run {
        return Ok(());
    }
    let hrm = hrm_binary(args.hrm.as_deref(), &args.device)?;
    std::fs::create_dir_all(&args.output)?;
    let memory = GpuMemory::start();
    for i in 0..rows.len() {
        let row = &mut rows[i];
        let run = args.output.join(&row.preset);
        if run.exists() {
            bail!("{} exists; remove it or choose another --output", run.display());
        }
        let steps = row.steps;
        let every = (steps / 4).max(1);
        let settings = [
            format!("run.steps={steps}"),
            format!("run.eval_every={every}"),
            format!("run.checkpoint_every={steps}"),
            "run.eval_batches=10".to_string(),
            format!("run.log_every={}", (steps / 50).max(1)),
            format!("data.batch_size={}", row.batch),
            format!("data.seq_len={}", row.seq_len),
            format!("data.mix=\"{}\"", args.mix),
            "data.validation_fraction=0.02".to_string(),
            format!("schedule.warmup_steps={}", (steps / 10).max(1)),
        ];
        let mut command = train_command(&hrm, &device_flag(&args.device), &config_path(&row.preset), &run, &settings);
        println!("\n== {} ==", row.preset);
        let Finished { status, seconds, peak_gpu_mem_bytes } = run_to_end(&mut command, memory.as_ref())?;
        row.seconds = Some(seconds);
        row.peak_gpu_mem_bytes = peak_gpu_mem_bytes;
        row.run = run.display().to_string();
        if !status.success() {
            eprintln!("{} failed ({status}); continuing with the next size", row.preset);
            continue;
        }
        let summary = RunSummary::read(&run)?;
        row.tokens = summary.tokens;
        row.tokens_per_s = summary.tokens_per_s;
        row.peak_rss_bytes = summary.peak_rss_bytes;
        row.final_train_loss = summary.final_train_loss;
        row.mean_act_steps = summary.mean_act_steps;
        row.first_val_loss = summary.evaluations.first().map(|e| e.loss);
        row.val_loss = summary.last_eval().map(|e| e.loss);
        row.val_bits_per_byte = summary.last_eval().map(|e| e.bits_per_byte);
        row.samples = stories(&hrm, &run, &args.device, args.samples)?;
        std::fs::write(run.join("samples.txt"), row.samples.join("\n\n---\n\n"))?;
        // Written after every size, so a cut-short session keeps what finished.
        write_summary(&args.output, &rows, false)?;
    }
    write_summary(&args.output, &rows, true)?;
    Ok(())
}

fn config_path(preset: &str) -> PathBuf {
    Path::new("configs/train").join(format!("{preset}.toml"))
}

/// The tokens `preset` reads: its `--tokens-for` entry, else `--tokens`.
fn budget(args: &Args, preset: &str) -> anyhow::Result<u64> {
    for entry in &args.tokens_for {
        let (name, tokens) = entry.split_once('=').with_context(|| format!("--tokens-for {entry}: PRESET=TOKENS"))?;
        if name == preset {
            return tokens.parse().with_context(|| format!("--tokens-for {entry}: not a number"));
        }
    }
    Ok(args.tokens)
}

/// Writes summary.md and summary.json (and prints the table when `print`).
fn write_summary(output: &Path, rows: &[Row], print: bool) -> anyhow::Result<()> {
    let fmt = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    let gb = |b: Option<u64>| fmt(b.map(|b| b as f64 / 1e9), 1);
    let mut md = String::from(
        "| preset | parameters | batch × seq | steps | tokens | tokens/s | peak GPU memory (GB) | val loss (first → last) | bits/byte | mean ACT steps | wall (s) |\n|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|\n",
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} × {} | {} | {} | {} | {} | {} → {} | {} | {} | {} |\n",
            r.preset,
            r.params,
            r.batch,
            r.seq_len,
            r.steps,
            r.tokens.map_or("-".into(), |t| t.to_string()),
            fmt(r.tokens_per_s, 0),
            gb(r.peak_gpu_mem_bytes),
            fmt(r.first_val_loss, 3),
            fmt(r.val_loss, 3),
            fmt(r.val_bits_per_byte, 4),
            fmt(r.mean_act_steps, 2),
            fmt(r.seconds, 0),
        ));
    }
    std::fs::write(output.join("summary.md"), &md)?;
    std::fs::write(output.join("summary.json"), serde_json::to_string_pretty(rows)?)?;
    if print {
        println!("\n{md}\nwrote {0}/summary.md and {0}/summary.json", output.display());
    }
    Ok(())
}
