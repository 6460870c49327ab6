//! What the training tasks share: the `hrm` binary to run, a run folder's summary from its
//! logs, per-process peak GPU memory from `nvidia-smi`, and the git revision.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

/// The `hrm` binary: `given` as it is (e.g. on a device without a Rust toolchain), or built
/// here (release, with the device's feature when it is not `cpu`).
pub fn hrm_binary(given: Option<&Path>, device: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!("--hrm {}: no such file", path.display());
        }
        return Ok(path.to_path_buf());
    }
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

/// `hrm train --quiet FLAGS... --config CONFIG --output RUN --set S...`, not yet started;
/// `flags` choose the devices (`--device cuda`, `--gpus 2`, ...) and anything else.
pub fn train_command<'a>(
    hrm: &Path,
    flags: &[String],
    config: &Path,
    run: &Path,
    settings: impl IntoIterator<Item = &'a String>,
) -> Command {
    let mut command = Command::new(hrm);
    command.args(["train", "--quiet"]).args(flags).arg("--config").arg(config).arg("--output").arg(run);
    for set in settings {
        command.args(["--set", set]);
    }
    command
}

/// `--device DEVICE`, as [`train_command`]'s flags.
pub fn device_flag(device: &str) -> Vec<String> {
    vec!["--device".into(), device.into()]
}

/// How a training process ended.
pub struct Finished {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Wall-clock seconds from spawn to exit.
    pub seconds: f64,
    /// The most GPU memory it held, where `memory` samples the GPUs.
    pub peak_gpu_mem_bytes: Option<u64>,
}

/// Runs `command` to its end, timing it and reading its peak GPU memory from `memory`.
pub fn run_to_end(command: &mut Command, memory: Option<&GpuMemory>) -> anyhow::Result<Finished> {
    let started = std::time::Instant::now();
    let mut child = command.spawn().with_context(|| format!("running {:?}", command.get_program()))?;
    let status = child.wait()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Finished { status, seconds, peak_gpu_mem_bytes: memory.and_then(|m| m.peak_bytes(child.id())) })
}

/// The short git revision: `$HRM_GIT_REV` if set (a copy without `.git`), else `git rev-parse`.
pub fn git_rev() -> String {
    if let Ok(rev) = std::env::var("HRM_GIT_REV") {
        return rev;
    }
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "unknown".into(), |o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `count` stories from `run`'s newest checkpoint, all from "Once upon a time", 120 new
/// tokens at most, in one batch (row i samples with seed 1 + i; hrm's default sampling).
pub fn stories(hrm: &Path, run: &Path, device: &str, count: usize) -> anyhow::Result<Vec<String>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut command = Command::new(hrm);
    command.args(["generate", "--json", "--device", device, "--max-tokens", "120", "--seed", "1"]);
    for _ in 0..count {
        command.args(["--prompt", "Once upon a time"]);
    }
    let rows = json_output(command.arg(run), "generate")?;
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(rows.iter().map(|r| format!("Once upon a time{}", r["text"].as_str().unwrap_or_default())).collect())
}

/// Runs an `hrm SUBCOMMAND --json ...` command (stderr passed through) and parses what it prints.
pub fn json_output(command: &mut Command, subcommand: &str) -> anyhow::Result<serde_json::Value> {
    let out =
        command.stderr(std::process::Stdio::inherit()).output().with_context(|| format!("running hrm {subcommand}"))?;
    if !out.status.success() {
        bail!("hrm {subcommand} failed ({}): {command:?}", out.status);
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("reading hrm {subcommand} --json"))
}

/// One evaluation of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Optimiser step.
    pub step: u64,
    /// Tokens read by then.
    pub tokens: u64,
    /// Validation loss (nats per token).
    pub loss: f64,
    /// Validation bits per byte.
    pub bits_per_byte: f64,
}

/// A run folder's outcome, from `train.log` and `metrics.jsonl`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Trainable parameters, from the log's "new run" line.
    pub parameters: Option<u64>,
    /// Last logged optimiser step.
    pub steps: Option<u64>,
    /// Tokens read by then.
    pub tokens: Option<u64>,
    /// Mean training tokens/s over the logged steps after the first (compilation) one.
    pub tokens_per_s: Option<f64>,
    /// Mean LM loss of the last tenth of the logged steps.
    pub final_train_loss: Option<f64>,
    /// Mean ACT segments per position over the logged steps (1 without ACT).
    pub mean_act_steps: Option<f64>,
    /// Peak resident memory of the process on the host.
    pub peak_rss_bytes: Option<u64>,
    /// Every evaluation, oldest first.
    pub evaluations: Vec<Evaluation>,
}

impl RunSummary {
    /// Reads `run`'s logs; a missing `train.log` only leaves `parameters` empty.
    pub fn read(run: &Path) -> anyhow::Result<Self> {
        let path = run.join("metrics.jsonl");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let lines: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let steps: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("lm_loss").is_some()).collect();
        let mean = |values: Vec<f64>| (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
        let tail = &steps[steps.len() - (steps.len() / 10).max(1).min(steps.len())..];
        let evaluations = lines
            .iter()
            .filter_map(|l| {
                Some(Evaluation {
                    step: l["step"].as_u64()?,
                    tokens: l["tokens"].as_u64()?,
                    loss: l["eval"]["loss"].as_f64()?,
                    bits_per_byte: l["eval"]["bits_per_byte"].as_f64()?,
                })
            })
            .collect();
        let parameters = std::fs::read_to_string(run.join("train.log")).ok().and_then(|log| {
            log.lines()
                .find(|l| l.contains("new run") && l.contains("parameters"))
                .and_then(|l| l.rsplit(':').next()?.split_whitespace().next()?.parse().ok())
        });
        Ok(Self {
            parameters,
            steps: steps.last().and_then(|l| l["step"].as_u64()),
            tokens: steps.last().and_then(|l| l["tokens"].as_u64()),
            tokens_per_s: mean(steps.iter().skip(1).filter_map(|l| l["tokens_per_s"].as_f64()).collect()),
            final_train_loss: mean(tail.iter().filter_map(|l| l["lm_loss"].as_f64()).collect()),
            mean_act_steps: mean(steps.iter().filter_map(|l| l["act_steps"].as_f64()).filter(|&s| s > 0.0).collect()),
            peak_rss_bytes: steps.iter().filter_map(|l| l["peak_rss_bytes"].as_u64()).max(),
            evaluations,
        })
    }

    /// The last evaluation.
    pub fn last_eval(&self) -> Option<&Evaluation> {
        self.evaluations.last()
    }

    /// The evaluation with the lowest bits per byte.
    pub fn best_eval(&self) -> Option<&Evaluation> {
        self.evaluations.iter().min_by(|a, b| a.bits_per_byte.total_cmp(&b.bits_per_byte))
    }
}

/// Peak GPU memory per process, sampled from `nvidia-smi` twice a second while it lives.
pub struct GpuMemory {
    peaks: Arc<Mutex<HashMap<u32, u64>>>,
    stop: Arc<AtomicBool>,
}

impl GpuMemory {
    /// Starts sampling; `None` where `nvidia-smi` does not answer (no NVIDIA GPU).
    pub fn start() -> Option<Self> {
        sample().ok()?;
        let peaks = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peaks.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(now) = sample() {
                    record(&mut p.lock().unwrap_or_else(|e| e.into_inner()), now);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        Some(Self { peaks, stop })
    }

    /// The most GPU memory process `pid` held in any sample (its allocator's pool included),
    /// sampling once more now: a run shorter than the sampling interval is seen at its end,
    /// when the caching allocators of libtorch and burn still hold what it used.
    pub fn peak_bytes(&self, pid: u32) -> Option<u64> {
        let mut peaks = self.peaks.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(now) = sample() {
            record(&mut peaks, now);
        }
        peaks.get(&pid).copied()
    }
}

impl Drop for GpuMemory {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Raises each process's peak in `peaks` to its bytes in `now`.
fn record(peaks: &mut HashMap<u32, u64>, now: Vec<(u32, u64)>) {
    for (pid, bytes) in now {
        let peak = peaks.entry(pid).or_insert(0);
        *peak = (*peak).max(bytes);
    }
}

/// `(pid, bytes)` of every process on the GPUs now.
fn sample() -> anyhow::Result<Vec<(u32, u64)>> {
    let out = Command::new("nvidia-smi")
        .args(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
        .output()?;
    if !out.status.success() {
        bail!("nvidia-smi failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (pid, mib) = line.split_once(',')?;
            Some((pid.trim().parse().ok()?, mib.trim().parse::<u64>().ok()? << 20))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_summary_reads_steps_evaluations_and_parameters() {
        let dir = std::env::temp_dir().join(format!("xtask-runs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut metrics = String::new();
        for step in 1..=20u64 {
            metrics += &format!(
                "{{\"step\":{step},\"tokens\":{},\"lm_loss\":{},\"act_steps\":1.5,\"tokens_per_s\":{},\"peak_rss_bytes\":{}}}\n",
                step * 100,
                5.0 - step as f64 * 0.1,
                if step == 1 { 10.0 } else { 1000.0 },
                step * 10
            );
            if step % 10 == 0 {
                metrics += &format!(
                    "{{\"step\":{step},\"tokens\":{},\"eval\":{{\"loss\":{},\"bits_per_byte\":{}}}}}\n",
                    step * 100,
                    4.0 - step as f64 * 0.01,
                    1.5 - step as f64 * 0.01
                );
            }
        }
        std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
        std::fs::write(dir.join("train.log"), "INFO new run in runs/x: 1048576 parameters\n").unwrap();
        let s = RunSummary::read(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((s.parameters, s.steps, s.tokens), (Some(1048576), Some(20), Some(2000)));
        assert_eq!(s.tokens_per_s, Some(1000.0), "the first logged step is left out of the speed");
        assert!((s.final_train_loss.unwrap() - 3.05).abs() < 1e-9, "the mean of the last two steps");
        assert_eq!((s.mean_act_steps, s.peak_rss_bytes), (Some(1.5), Some(200)));
        assert_eq!(s.evaluations.len(), 2);
        assert_eq!(s.best_eval().unwrap().step, 20);
        assert_eq!(s.last_eval().unwrap().bits_per_byte, 1.3);
    }
}
