//! `cargo xtask train-all-sizes`: trains every size preset in turn with the `hrm` binary, one
//! run folder each, then writes a summary table (Markdown and JSON).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use hrm_core::presets;
use serde::Serialize;

/// Options of train-all-sizes.
#[derive(clap::Args)]
pub struct Args {
    /// Comma-separated presets or their first word (micro, nano, small, medium-100m, medium-350m, large), or `all`.
    #[arg(long, default_value = "all")]
    sizes: String,
    /// Optimiser steps per size.
    #[arg(long, default_value_t = 200)]
    steps: u64,
    /// Sequences per batch (default: small enough for a 2-core CPU; pass the preset configs' on a GPU).
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 64)]
    seq_len: usize,
    /// Data mix (relative to configs/train/).
    #[arg(long, default_value = "../mixes/dev_small.toml")]
    mix: String,
    /// `cpu` or `cuda` (builds hrm with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Folder for the run folders and the summary.
    #[arg(long, default_value = "runs/all-sizes")]
    output: PathBuf,
    /// Print the plan (parameter counts, estimated training memory) and train nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Serialize)]
struct Row {
    preset: String,
    parameters: usize,
    stated_parameters: Option<usize>,
    estimated_memory_gb: f64,
    steps: Option<u64>,
    tokens: Option<u64>,
    tokens_per_s: Option<f64>,
    validation_loss: Option<f64>,
    bits_per_byte: Option<f64>,
    peak_rss_gb: Option<f64>,
    seconds: Option<f64>,
    run: String,
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
    println!(
        "{:<12} {:>14} {:>14} {:>12}  (batch {} × seq {})",
        "preset", "parameters", "stated", "est. memory", args.batch_size, args.seq_len
    );
    let mut rows = Vec::new();
    for p in &wanted {
        let memory = estimated_memory_gb(&p.config, args.batch_size, args.seq_len);
        println!(
            "{:<12} {:>14} {:>14} {:>9.2} GB",
            p.name,
            p.config.num_params(),
            p.stated_params.unwrap_or(0),
            memory
        );
        rows.push(Row {
            preset: p.name.into(),
            parameters: p.config.num_params(),
            stated_parameters: p.stated_params,
            estimated_memory_gb: memory,
            steps: None,
            tokens: None,
            tokens_per_s: None,
            validation_loss: None,
            bits_per_byte: None,
            peak_rss_gb: None,
            seconds: None,
            run: String::new(),
        });
    }
    if args.dry_run {
        return Ok(());
    }
    let hrm = build_hrm(&args.device)?;
    std::fs::create_dir_all(&args.output)?;
    for row in &mut rows {
        let config = Path::new("configs/train").join(format!("{}.toml", row.preset));
        let run = args.output.join(&row.preset);
        if run.exists() {
            bail!("{} exists; remove it or choose another --output", run.display());
        }
        let set = |k: &str, v: String| ["--set".to_string(), format!("{k}={v}")];
        let mut command = Command::new(&hrm);
        command.args(["train", "--quiet", "--device", &args.device, "--config"]).arg(&config).arg("--output").arg(&run);
        for (k, v) in [
            ("run.steps", args.steps.to_string()),
            ("run.eval_every", args.steps.to_string()),
            ("run.checkpoint_every", args.steps.to_string()),
            ("run.eval_batches", "10".to_string()),
            ("run.log_every", (args.steps / 10).max(1).to_string()),
            ("data.batch_size", args.batch_size.to_string()),
            ("data.seq_len", args.seq_len.to_string()),
            ("data.mix", format!("\"{}\"", args.mix)),
            ("schedule.warmup_steps", (args.steps / 10).max(1).to_string()),
        ] {
            command.args(set(k, v));
        }
        println!("\n== {} ==", row.preset);
        let started = std::time::Instant::now();
        let status = command.status().with_context(|| format!("running {}", hrm.display()))?;
        row.seconds = Some(started.elapsed().as_secs_f64());
        row.run = run.display().to_string();
        if !status.success() {
            eprintln!("{} failed ({status}); continuing with the next size", row.preset);
            continue;
        }
        read_metrics(&run, row)?;
    }
    write_summary(&args.output, &rows)?;
    Ok(())
}

/// Builds the `hrm` binary (release, with the device's feature) and returns its path.
fn build_hrm(device: &str) -> anyhow::Result<PathBuf> {
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.args(["build", "--release", "--quiet", "-p", "hrm-cli"]);
    if device != "cpu" {
        build.args(["--features", device]);
    }
    if !build.status().context("running cargo build")?.success() {
        bail!("building hrm failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| "target".into());
    Ok(target.join("release").join("hrm"))
}

/// Fills a row from the run's metrics.jsonl: the last evaluation, tokens, mean tokens/s, peak memory.
fn read_metrics(run: &Path, row: &mut Row) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).context("reading metrics.jsonl")?;
    let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let speeds: Vec<f64> = lines.iter().filter_map(|l| l["tokens_per_s"].as_f64()).collect();
    row.tokens_per_s = (!speeds.is_empty()).then(|| speeds.iter().sum::<f64>() / speeds.len() as f64);
    row.peak_rss_gb = lines.iter().filter_map(|l| l["peak_rss_bytes"].as_f64()).reduce(f64::max).map(|b| b / 1e9);
    if let Some(eval) = lines.iter().rev().find(|l| l.get("eval").is_some()) {
        row.steps = eval["step"].as_u64();
        row.tokens = eval["tokens"].as_u64();
        row.validation_loss = eval["eval"]["loss"].as_f64();
        row.bits_per_byte = eval["eval"]["bits_per_byte"].as_f64();
    }
    Ok(())
}

fn write_summary(output: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let fmt = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    let mut md = String::from(
        "| preset | parameters | steps | tokens | tokens/s | val loss | bits/byte | peak RSS (GB) | est. memory (GB) | wall (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} |\n",
            r.preset,
            r.parameters,
            r.steps.map_or("-".into(), |s| s.to_string()),
            r.tokens.map_or("-".into(), |t| t.to_string()),
            fmt(r.tokens_per_s, 0),
            fmt(r.validation_loss, 4),
            fmt(r.bits_per_byte, 4),
            fmt(r.peak_rss_gb, 2),
            r.estimated_memory_gb,
            fmt(r.seconds, 0),
        ));
    }
    std::fs::write(output.join("summary.md"), &md)?;
    std::fs::write(output.join("summary.json"), serde_json::to_string_pretty(rows)?)?;
    println!("\n{md}\nwrote {0}/summary.md and {0}/summary.json", output.display());
    Ok(())
}
