//! `cargo xtask bench multi-gpu`: the real trainer (`hrm train --gpus N`) on one preset for
//! each GPU count asked, one after another in one call: tokens/s and the speedup over one
//! GPU, the loss curve of each, and optionally a run killed mid-way and resumed, compared
//! step by step with the uninterrupted one. Prints a table and saves JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::runs::{GpuMemory, RunSummary, git_rev, hrm_binary, run_to_end, train_command};

/// Options of `bench multi-gpu`.
#[derive(clap::Args)]
pub struct Args {
    /// Preset config under configs/train/.
    #[arg(long, default_value = "small-50m")]
    preset: String,
    /// GPU counts to measure, comma-separated; the first is the baseline of `speedup_vs_1`.
    #[arg(long, default_value = "1,2")]
    gpus: String,
    /// Optimiser steps per run.
    #[arg(long, default_value_t = 200)]
    steps: u64,
    /// Sequences per GPU per step (default: the preset's); the global batch grows with N.
    #[arg(long, conflicts_with = "global_batch")]
    batch_size: Option<usize>,
    /// Sequences per step over all GPUs together (each GPU takes GLOBAL / N): the same
    /// global batch at every count, so the loss curves can be compared.
    #[arg(long)]
    global_batch: Option<usize>,
    /// Tokens per sequence (default: the preset's).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Float type passed to `hrm train --dtype`.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// Data mix (relative to configs/train/).
    #[arg(long, default_value = "../mixes/tinystories.toml")]
    mix: String,
    /// Also train each count again, kill it (SIGKILL) once its checkpoint at this step is
    /// written, resume it on the same GPUs, and compare its losses with the uninterrupted run's.
    #[arg(long)]
    kill_at: Option<u64>,
    /// Put every rank on device 0 (`--devices cuda:0,cuda:0,...`): tries the parallel path
    /// on a machine with one GPU; its tokens/s say nothing about scaling.
    #[arg(long)]
    share_gpu: bool,
    /// `cuda` (or `cpu` with `--share-gpu`, to try the task here).
    #[arg(long, default_value = "cuda")]
    device: String,
    /// An `hrm` binary to use instead of building one (a device without a Rust toolchain).
    #[arg(long)]
    hrm: Option<PathBuf>,
    /// Folder for the run folders and multi-gpu.json.
    #[arg(long, default_value = "target/bench/multi-gpu")]
    output: PathBuf,
}

/// One GPU count's measurement, as saved.
#[derive(Serialize)]
struct Row {
    preset: String,
    gpus: usize,
    shared_gpu: bool,
    /// How the ranks averaged gradients (`$HRM_ALLREDUCE`, `host` when unset).
    gradient_exchange: String,
    per_gpu_batch: usize,
    global_batch: usize,
    seq_len: usize,
    dtype: String,
    steps: u64,
    /// Mean training tokens/s (all GPUs together) over the logged steps after the first.
    tokens_per_s: Option<f64>,
    speedup_vs_1: Option<f64>,
    /// Mean LM loss of the last tenth of the logged steps.
    final_train_loss: Option<f64>,
    /// (step, loss) of every logged step.
    losses: Vec<(u64, f64)>,
    val_loss: Option<f64>,
    /// The most memory one GPU held for the run (nvidia-smi, per process and GPU).
    peak_gpu_mem_bytes: Option<u64>,
    seconds: f64,
    /// With --kill-at: the largest relative difference between the resumed run's losses and
    /// the uninterrupted run's at the same steps, and how many steps were compared.
    resume_max_rel_diff: Option<f64>,
    resume_compared_steps: Option<usize>,
    device: String,
    git_rev: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let counts: Vec<usize> = args
        .gpus
        .split(',')
        .map(|n| n.trim().parse().with_context(|| format!("--gpus {}: {n:?} is not a count", args.gpus)))
        .collect::<anyhow::Result<_>>()?;
    if counts.is_empty() || counts.contains(&0) {
        bail!("--gpus {}: give counts of at least 1", args.gpus);
    }
    let config_path = Path::new("configs/train").join(format!("{}.toml", args.preset));
    let config = hrm_train::TrainConfig::load(&config_path)?;
    let seq_len = args.seq_len.unwrap_or(config.data.seq_len);
    let hrm = hrm_binary(args.hrm.as_deref(), &args.device)?;
    std::fs::create_dir_all(&args.output)?;
    let memory = GpuMemory::start();
    let device = device_name(&args.device);
    let mut rows: Vec<Row> = Vec::new();
    for &gpus in &counts {
        let per_gpu_batch = match args.global_batch {
            Some(global) if global % gpus != 0 => bail!("--global-batch {global} does not split over {gpus} GPUs"),
            Some(global) => global / gpus,
            None => args.batch_size.unwrap_or(config.data.batch_size),
        };
        let settings = vec![
            format!("run.steps={}", args.steps),
            format!("run.log_every={}", (args.steps / 20).max(1)),
            format!("run.eval_every={}", args.steps),
            format!("run.checkpoint_every={}", args.kill_at.unwrap_or(args.steps)),
            "run.eval_batches=10".to_string(),
            format!("data.batch_size={per_gpu_batch}"),
            format!("data.seq_len={seq_len}"),
            format!("data.mix=\"{}\"", args.mix),
            "data.validation_fraction=0.02".to_string(),
            format!("schedule.warmup_steps={}", (args.steps / 10).max(1)),
        ];
        let run = args.output.join(format!("{}-{gpus}gpu", args.preset));
        let _ = std::fs::remove_dir_all(&run);
        println!("\n== {} on {gpus} GPU(s), {per_gpu_batch} sequences each ==", args.preset);
        let flags = flags(&args, gpus);
        let mut command = train_command(&hrm, &flags, &config_path, &run, &settings);
        let finished = run_to_end(&mut command, memory.as_ref())?;
        if !finished.status.success() {
            bail!("{gpus} GPU(s): hrm train failed ({})", finished.status);
        }
        let summary = RunSummary::read(&run)?;
        let losses = logged_losses(&run)?;
        let (resume_max_rel_diff, resume_compared_steps) = match args.kill_at {
            Some(step) => {
                let killed = run.with_file_name(format!("{}-{gpus}gpu-killed", args.preset));
                let command = train_command(&hrm, &flags, &config_path, &killed, &settings);
                let (diff, compared) = kill_and_resume(&hrm, &flags, gpus, command, &killed, step, &losses)?;
                (Some(diff), Some(compared))
            }
            None => (None, None),
        };
        let baseline = rows.first().and_then(|r| r.tokens_per_s).or(summary.tokens_per_s);
        rows.push(Row {
            preset: args.preset.clone(),
            gpus,
            shared_gpu: args.share_gpu,
            gradient_exchange: std::env::var("HRM_ALLREDUCE").unwrap_or_else(|_| "host".into()),
            per_gpu_batch,
            global_batch: per_gpu_batch * gpus,
            seq_len,
            dtype: args.dtype.clone(),
            steps: args.steps,
            tokens_per_s: summary.tokens_per_s,
            speedup_vs_1: summary.tokens_per_s.zip(baseline).map(|(t, b)| t / b),
            final_train_loss: summary.final_train_loss,
            losses,
            val_loss: summary.last_eval().map(|e| e.loss),
            peak_gpu_mem_bytes: finished.peak_gpu_mem_bytes,
            seconds: finished.seconds,
            resume_max_rel_diff,
            resume_compared_steps,
            device: device.clone(),
            git_rev: git_rev(),
        });
        // Written after every count, so a cut-short call keeps what finished.
        std::fs::write(args.output.join("multi-gpu.json"), serde_json::to_string_pretty(&rows)?)?;
    }
    print_table(&rows);
    println!("saved {}", args.output.join("multi-gpu.json").display());
    Ok(())
}

/// `hrm train` flags for `gpus` GPUs (or ranks sharing device 0) and the float type.
fn flags(args: &Args, gpus: usize) -> Vec<String> {
    let devices = match args.share_gpu {
        true => vec!["--devices".into(), vec![format!("{}:0", args.device); gpus].join(",")],
        false => vec!["--device".into(), args.device.clone(), "--gpus".into(), gpus.to_string()],
    };
    [vec!["--dtype".into(), args.dtype.clone()], devices].concat()
}

/// Runs `command` (training into `run`), kills it once its checkpoint at `step` is written,
/// resumes it to the end, and compares its losses after `step` with `reference`: the
/// largest relative difference and the number of steps compared.
fn kill_and_resume(
    hrm: &Path,
    flags: &[String],
    gpus: usize,
    mut command: Command,
    run: &Path,
    step: u64,
    reference: &[(u64, f64)],
) -> anyhow::Result<(f64, usize)> {
    let _ = std::fs::remove_dir_all(run);
    let mut child = command.spawn().context("running hrm train")?;
    let manifest = run.join("checkpoints").join(format!("step-{step:09}")).join("manifest.json");
    while !manifest.exists() {
        if let Some(status) = child.try_wait()? {
            bail!("the run to kill ended ({status}) before its checkpoint at step {step}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill()?;
    child.wait()?;
    println!("killed at its step-{step} checkpoint; resuming on {gpus} GPU(s)");
    let mut resume = Command::new(hrm);
    resume.args(["train", "--quiet"]).args(flags).arg("--resume").arg(run);
    if !resume.status().context("resuming hrm train")?.success() {
        bail!("resuming {} failed", run.display());
    }
    // The killed run may have logged steps past its checkpoint before the kill; the resumed
    // run's line for a step comes later and wins.
    let resumed: BTreeMap<u64, f64> = logged_losses(run)?.into_iter().collect();
    let mut worst: f64 = 0.0;
    let mut compared = 0;
    for (s, expected) in reference.iter().filter(|(s, _)| *s > step) {
        let Some(got) = resumed.get(s) else { bail!("the resumed run logged no step {s}") };
        worst = worst.max((got - expected).abs() / expected.abs().max(1e-12));
        compared += 1;
    }
    Ok((worst, compared))
}

/// (step, loss) of every logged training step of `run`.
fn logged_losses(run: &Path) -> anyhow::Result<Vec<(u64, f64)>> {
    let path = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v.get("lr").and(v["step"].as_u64())?, v["loss"].as_f64()?)))
        .collect())
}

/// The GPU's name from nvidia-smi, or the device kind where there is none.
fn device_name(device: &str) -> String {
    Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(|l| l.trim().to_string()))
        .unwrap_or_else(|| device.to_string())
}

fn print_table(rows: &[Row]) {
    let fmt = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    println!(
        "\n{:<12} {:>4} {:>6} {:>7} {:>12} {:>8} {:>10} {:>9} {:>12}",
        "preset", "gpus", "batch", "global", "tokens/s", "speedup", "train loss", "val loss", "resume diff"
    );
    for r in rows {
        println!(
            "{:<12} {:>4} {:>6} {:>7} {:>12} {:>8} {:>10} {:>9} {:>12}",
            r.preset,
            r.gpus,
            r.per_gpu_batch,
            r.global_batch,
            fmt(r.tokens_per_s, 0),
            fmt(r.speedup_vs_1, 2),
            fmt(r.final_train_loss, 4),
            fmt(r.val_loss, 4),
            r.resume_max_rel_diff.map_or("-".to_string(), |d| format!("{d:.1e}"))
        );
    }
}
