//! `cargo xtask compare`: the HRM against the flat transformer of the same parameters at the
//! same training FLOPs, over several seeds, on TinyStories; each HRM also evaluated in every
//! reasoning mode and with ACT halting. Writes one JSON row per run and a Markdown table.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::bail;
use hrm_core::{ModelConfig, ReasoningMode};
use hrm_train::{TokenizerConfig, TrainConfig};
use serde::Serialize;

use crate::flops::{Scores, train_step_per_position};
use crate::runs::{
    Evaluation, Finished, GpuMemory, RunSummary, device_flag, git_rev, hrm_binary, json_output, run_to_end, stories,
    train_command,
};

/// Options of the comparison.
#[derive(clap::Args)]
pub struct Args {
    /// `1m` or `5m`: trains configs/train/tinystories-{hrm,flat}-SIZE.toml.
    #[arg(long, default_value = "1m")]
    size: String,
    /// Optimiser steps of the HRM with ACT; its training FLOPs are every model's budget.
    #[arg(long, default_value_t = 2000)]
    hrm_steps: u64,
    /// Seeds; every model trains once per seed.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Models: `hrm` (with ACT, as configured), `hrm-no-act` (halt_max_steps = 1), `flat`.
    #[arg(long, value_delimiter = ',', default_value = "hrm,hrm-no-act,flat")]
    models: Vec<String>,
    /// Evaluations during each run (for the validation curve).
    #[arg(long, default_value_t = 10)]
    evals: u64,
    /// Runs at once on the device (small models leave a GPU mostly idle; tokens/s is then shared).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// `cpu` or `cuda`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// An `hrm` binary to use instead of building one (a device without a Rust toolchain).
    #[arg(long)]
    hrm: Option<PathBuf>,
    /// More `--set key=value` overrides for every run.
    #[arg(long = "set")]
    overrides: Vec<String>,
    /// Folder for the run folders, compare-SIZE.json and compare-SIZE.md.
    #[arg(long, default_value = "runs/compare")]
    output: PathBuf,
    /// Stories to generate from each run (prompt "Once upon a time", one batch).
    #[arg(long, default_value_t = 5)]
    samples: usize,
    /// Print the plan (parameters, FLOPs per step, steps per model) and train nothing.
    #[arg(long)]
    dry_run: bool,
}

/// One model's plan: its config and the steps that spend the FLOPs budget.
struct Plan {
    model: String,
    config_path: PathBuf,
    config: ModelConfig,
    steps: u64,
    flops_per_step: f64,
    tokenizer: String,
    extra: Vec<String>,
}

/// Validation of an HRM run under one reasoning setting.
#[derive(Debug, Clone, Serialize)]
struct ModeEval {
    mode: String,
    adaptive: bool,
    loss: f64,
    bits_per_byte: f64,
}

/// One finished run, as written to compare-SIZE.json.
#[derive(Debug, Clone, Serialize)]
struct Row {
    model: String,
    preset: String,
    seed: u64,
    params: Option<u64>,
    steps: Option<u64>,
    tokens: Option<u64>,
    train_flops: f64,
    tokens_per_s: Option<f64>,
    concurrent_runs: usize,
    val_loss: Option<f64>,
    val_bits_per_byte: Option<f64>,
    best_val_bits_per_byte: Option<f64>,
    best_val_step: Option<u64>,
    final_train_loss: Option<f64>,
    tokenizer: String,
    mean_act_steps: Option<f64>,
    peak_gpu_mem_bytes: Option<u64>,
    modes: Vec<ModeEval>,
    evaluations: Vec<Evaluation>,
    samples: Vec<String>,
    seconds: f64,
    exit_ok: bool,
    git_rev: String,
}

/// Plans the budget, trains every model and seed, and writes the report.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (plans, budget) = plan(&args, Path::new(CONFIGS))?;
    println!("budget: {budget:.3e} training FLOPs per run (the HRM with ACT, {} steps)", args.hrm_steps);
    println!("{:<11} {:>10} {:>14} {:>7}", "model", "parameters", "FLOPs/step", "steps");
    for p in &plans {
        println!("{:<11} {:>10} {:>14.3e} {:>7}", p.model, p.config.num_params(), p.flops_per_step, p.steps);
    }
    if args.dry_run {
        return Ok(());
    }
    let hrm = hrm_binary(args.hrm.as_deref(), &args.device)?;
    std::fs::create_dir_all(&args.output)?;
    let jobs: Vec<(&Plan, u64)> = args.seeds.iter().flat_map(|&s| plans.iter().map(move |p| (p, s))).collect();
    let next = Mutex::new(jobs.into_iter());
    let rows = Mutex::new(Vec::new());
    let memory = GpuMemory::start();
    let rev = git_rev();
    std::thread::scope(|scope| {
        for _ in 0..args.parallel.max(1) {
            scope.spawn(|| {
                loop {
                    let job = next.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((plan, seed)) = job else { break };
                    match train_and_evaluate(&args, &hrm, plan, seed, memory.as_ref(), &rev) {
                        Ok(row) => {
                            // Written after every run, so a cut-short session keeps what finished.
                            let mut rows = rows.lock().unwrap_or_else(|e| e.into_inner());
                            rows.push(row);
                            rows.sort_by(|a, b| (&a.model, a.seed).cmp(&(&b.model, b.seed)));
                            if let Err(e) = write_report(&args, &rows, false) {
                                eprintln!("writing the report: {e:#}");
                            }
                        }
                        Err(e) => eprintln!("{} seed {seed}: {e:#}", plan.model),
                    }
                }
            });
        }
    });
    write_report(&args, &rows.into_inner().unwrap_or_else(|e| e.into_inner()), true)
}

/// Where the training configs are, relative to the repository root (the task's working folder).
const CONFIGS: &str = "configs/train";

fn config_path(configs: &Path, size: &str, arch: &str) -> PathBuf {
    configs.join(format!("tinystories-{arch}-{size}.toml"))
}

/// The config at `path` with `overrides` applied, its vocabulary that of its BPE tokenizer.
fn load(path: &Path, overrides: &[String]) -> anyhow::Result<TrainConfig> {
    let mut config = TrainConfig::load_with_overrides(path, overrides)?;
    if config.model.vocab_size() == 0 {
        let TokenizerConfig::Bpe { vocab_size } = config.tokenizer else {
            bail!("{}: the comparison needs a BPE tokenizer of known size", path.display())
        };
        config.model.set_vocab_size(vocab_size);
    }
    Ok(config)
}

/// FLOPs of one optimiser step of `model` at `config`'s batch and sequence length (full S×S
/// scores, as docs/results.md's budgets were set).
fn step_flops(model: &ModelConfig, config: &TrainConfig) -> f64 {
    train_step_per_position(model, config.data.seq_len, Scores::Full)
        * (config.data.batch_size * config.data.seq_len) as f64
}

/// Every model's plan, and the FLOPs budget: what the HRM with ACT spends in `hrm_steps` steps.
fn plan(args: &Args, configs: &Path) -> anyhow::Result<(Vec<Plan>, f64)> {
    let mut plans = Vec::new();
    let hrm = load(&config_path(configs, &args.size, "hrm"), &args.overrides)?;
    let budget = step_flops(&hrm.model, &hrm) * args.hrm_steps as f64;
    for name in &args.models {
        let (arch, extra) = match name.as_str() {
            "hrm" => ("hrm", vec![]),
            "hrm-no-act" => ("hrm", vec!["model.halt_max_steps=1".to_string()]),
            "flat" => ("flat", vec![]),
            other => bail!("unknown model `{other}`: hrm, hrm-no-act or flat"),
        };
        let config_path = config_path(configs, &args.size, arch);
        let train = load(&config_path, &args.overrides)?;
        let mut config = train.model.clone();
        if let ModelConfig::Hrm(c) = &mut config
            && name == "hrm-no-act"
        {
            c.halt_max_steps = 1;
        }
        let flops_per_step = step_flops(&config, &train);
        let tokenizer = match &train.tokenizer {
            TokenizerConfig::Bpe { vocab_size } => format!("BPE {vocab_size} trained on the data"),
            other => format!("{other:?}"),
        };
        plans.push(Plan {
            model: name.clone(),
            config_path,
            steps: (budget / flops_per_step).round() as u64,
            config,
            flops_per_step,
            tokenizer,
            extra,
        });
    }
    Ok((plans, budget))
}

/// Trains one model with one seed, then evaluates an HRM in every reasoning mode.
fn train_and_evaluate(
    args: &Args,
    hrm: &Path,
    plan: &Plan,
    seed: u64,
    memory: Option<&GpuMemory>,
    rev: &str,
) -> anyhow::Result<Row> {
    let run = args.output.join(format!("{}-{}-seed{seed}", plan.model, args.size));
    if run.exists() {
        bail!("{} exists; remove it or choose another --output", run.display());
    }
    let every = (plan.steps / args.evals.max(1)).max(1);
    let settings = [
        format!("run.steps={}", plan.steps),
        format!("run.seed={seed}"),
        format!("run.eval_every={every}"),
        format!("run.checkpoint_every={}", plan.steps),
        "run.eval_batches=1000".into(),
        format!("run.log_every={}", (every / 5).max(1)),
    ];
    let all = settings.iter().chain(&plan.extra).chain(&args.overrides);
    let mut command = train_command(hrm, &device_flag(&args.device), &plan.config_path, &run, all);
    let log = std::fs::File::create(args.output.join(format!("{}-{}-seed{seed}.log", plan.model, args.size)))?;
    command.stdout(Stdio::from(log.try_clone()?)).stderr(Stdio::from(log));
    println!("start {} seed {seed}: {} steps", plan.model, plan.steps);
    let Finished { status, seconds, peak_gpu_mem_bytes } = run_to_end(&mut command, memory)?;
    let summary = RunSummary::read(&run).unwrap_or_default();
    let modes = if status.success() && matches!(plan.config, ModelConfig::Hrm(_)) {
        evaluate_modes(args, hrm, &run)?
    } else {
        Vec::new()
    };
    let samples = if status.success() { stories(hrm, &run, &args.device, args.samples)? } else { Vec::new() };
    let (last, best) = (summary.last_eval().cloned(), summary.best_eval().cloned());
    println!(
        "done {} seed {seed} in {seconds:.0} s: {} bits/byte",
        plan.model,
        last.as_ref().map_or("-".into(), |e| format!("{:.4}", e.bits_per_byte))
    );
    Ok(Row {
        model: plan.model.clone(),
        preset: plan.config_path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        seed,
        params: summary.parameters,
        steps: summary.steps,
        tokens: summary.tokens,
        train_flops: plan.flops_per_step * summary.steps.unwrap_or(0) as f64,
        tokens_per_s: summary.tokens_per_s,
        concurrent_runs: args.parallel.max(1),
        val_loss: last.as_ref().map(|e| e.loss),
        val_bits_per_byte: last.as_ref().map(|e| e.bits_per_byte),
        best_val_bits_per_byte: best.as_ref().map(|e| e.bits_per_byte),
        best_val_step: best.as_ref().map(|e| e.step),
        final_train_loss: summary.final_train_loss,
        tokenizer: plan.tokenizer.clone(),
        mean_act_steps: summary.mean_act_steps,
        peak_gpu_mem_bytes,
        modes,
        evaluations: summary.evaluations,
        samples,
        seconds,
        exit_ok: status.success(),
        git_rev: rev.to_string(),
    })
}

/// `hrm eval --json` of `run` in each reasoning mode (every segment), then with ACT halting.
fn evaluate_modes(args: &Args, hrm: &Path, run: &Path) -> anyhow::Result<Vec<ModeEval>> {
    let modes = ReasoningMode::ALL.map(|m| (m.name(), false));
    let mut evals = Vec::new();
    for (mode, adaptive) in modes.into_iter().chain([("trained", true)]) {
        let mut command = Command::new(hrm);
        command.args(["eval", "--json", "--batches", "1000", "--device", &args.device]).arg(run);
        if mode != "trained" {
            command.args(["--mode", mode]);
        }
        if adaptive {
            command.arg("--adaptive");
        }
        let value = json_output(&mut command, "eval")?;
        evals.push(ModeEval {
            mode: mode.to_string(),
            adaptive,
            loss: value["loss"].as_f64().unwrap_or(f64::NAN),
            bits_per_byte: value["bits_per_byte"].as_f64().unwrap_or(f64::NAN),
        });
    }
    Ok(evals)
}

/// Mean and sample standard deviation.
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Writes compare-SIZE.json and .md (and prints the table when `print`).
fn write_report(args: &Args, rows: &[Row], print: bool) -> anyhow::Result<()> {
    let mut md = String::from(
        "| model | params | steps | tokens | train FLOPs | val bits/byte (mean ± sd over seeds) | best val bits/byte | mean ACT steps | runs |\n|---|---:|---:|---:|---:|---|---:|---:|---:|\n",
    );
    for model in &args.models {
        let mine: Vec<&Row> = rows.iter().filter(|r| &r.model == model && r.exit_ok).collect();
        let Some(first) = mine.first() else { continue };
        let (bpb, sd) = mean_sd(&mine.iter().filter_map(|r| r.val_bits_per_byte).collect::<Vec<_>>());
        let (best, _) = mean_sd(&mine.iter().filter_map(|r| r.best_val_bits_per_byte).collect::<Vec<_>>());
        let (act, _) = mean_sd(&mine.iter().filter_map(|r| r.mean_act_steps).collect::<Vec<_>>());
        md.push_str(&format!(
            "| {model} | {} | {} | {} | {:.3e} | {bpb:.4} ± {sd:.4} | {best:.4} | {act:.2} | {} |\n",
            first.params.map_or("-".into(), |p| p.to_string()),
            first.steps.map_or("-".into(), |s| s.to_string()),
            first.tokens.map_or("-".into(), |t| t.to_string()),
            first.train_flops,
            mine.len()
        ));
    }
    let modes: Vec<&Row> = rows.iter().filter(|r| !r.modes.is_empty()).collect();
    if !modes.is_empty() {
        md.push_str("\n| run | fast 1×1 | normal 2×2 | deep 3×2 | extreme 6×4 | trained, ACT halting |\n|---|---:|---:|---:|---:|---:|\n");
        for r in modes {
            let cells: Vec<String> = r.modes.iter().map(|m| format!("{:.4}", m.bits_per_byte)).collect();
            md.push_str(&format!("| {} seed {} | {} |\n", r.model, r.seed, cells.join(" | ")));
        }
    }
    let stem = format!("compare-{}", args.size);
    std::fs::write(args.output.join(format!("{stem}.md")), &md)?;
    std::fs::write(args.output.join(format!("{stem}.json")), serde_json::to_string_pretty(rows)?)?;
    if print {
        println!("\n{md}\nwrote {0}/{stem}.md and {0}/{stem}.json", args.output.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn every_model_gets_the_budget_of_the_hrm_with_act() {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(CONFIGS);
        for size in ["1m", "5m"] {
            let args = Cli::parse_from(["compare", "--size", size, "--hrm-steps", "1000"]).args;
            let (plans, budget) = plan(&args, &configs).unwrap();
            assert_eq!(plans.iter().map(|p| p.model.as_str()).collect::<Vec<_>>(), ["hrm", "hrm-no-act", "flat"]);
            assert_eq!(plans[0].steps, 1000);
            for p in &plans {
                let spent = p.flops_per_step * p.steps as f64;
                assert!((spent / budget - 1.0).abs() < 1e-3, "{size} {}: {spent:e} of {budget:e}", p.model);
            }
            let params: Vec<usize> = plans.iter().map(|p| p.config.num_params()).collect();
            assert!(params.iter().all(|&n| (n as f64 / params[0] as f64 - 1.0).abs() < 1e-3), "{size}: {params:?}");
            assert!(plans[2].steps > plans[1].steps && plans[1].steps > plans[0].steps, "cheaper steps, more of them");
        }
    }
}
