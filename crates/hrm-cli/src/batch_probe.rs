//! `hrm train --batch-size auto`: the largest micro-batch whose training step fits the GPU,
//! each candidate tried by `hrm probe-batch` in a child process.
//!
//! In one process, a step that runs out of memory leaves the next ones unable to fit even a
//! batch that did fit before (burn's autodiff graph keeps the failed step's activations:
//! 137 GB were held after one caught out-of-memory panic on libtorch), and cubecl's CUDA
//! runtime can crash outright. A child that fails takes all of it with it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use hrm_train::batch_size::{MAX_AUTO_BATCH, largest_fitting, probe_step, with_headroom};
use hrm_train::{ActivationCheckpointing, TrainConfig};

use crate::device::{DeviceKind, DeviceList};
use crate::train::{Dtype, OnBackend, dispatch};
use hrm_core::HrmAutodiffBackend;

/// Optimiser steps a probe runs: the second holds AdamW's moments besides the activations.
const PROBE_STEPS: usize = 2;

/// Arguments of `hrm probe-batch`, which `hrm train --batch-size auto` runs (hidden).
#[derive(clap::Args)]
pub struct ProbeArgs {
    /// Training config (TOML) with the model's vocabulary set.
    #[arg(long)]
    config: PathBuf,
    /// Sequences per micro-batch to try.
    #[arg(long)]
    batch: usize,
    /// The backend.
    #[arg(long, value_enum)]
    device: DeviceKind,
    /// The device's index.
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// Float type.
    #[arg(long, value_enum)]
    dtype: Dtype,
    /// Activation checkpointing.
    #[arg(long)]
    activation_checkpointing: ActivationCheckpointing,
}

/// `hrm probe-batch`: exits 0 (printing the loss) when `PROBE_STEPS` training steps of the
/// config's model at `--batch` ran; fails, panics or crashes when they do not fit.
pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let config = TrainConfig::load(&args.config)?;
    let list = DeviceList { kind: args.device, indices: vec![args.index] };
    dispatch(Probe { config, batch: args.batch, list }, args.device, args.dtype, args.activation_checkpointing)
}

/// One probe: a config, a batch and the device to try them on.
struct Probe {
    config: TrainConfig,
    batch: usize,
    list: DeviceList,
}

impl OnBackend for Probe {
    fn run<B: HrmAutodiffBackend>(self, precision: hrm_core::layers::Precision) -> anyhow::Result<()> {
        let device = self.list.devices::<B>()?.remove(0);
        let loss = probe_step::<B>(&self.config, self.batch, PROBE_STEPS, precision, &device)?;
        println!("batch {} fits: loss {loss:.4}", self.batch);
        Ok(())
    }
}

/// The micro-batch `--batch-size auto` trains `config` with on `list`'s devices: the largest
/// that fits the first of them (up to [`MAX_AUTO_BATCH`]), less [`hrm_train::batch_size::HEADROOM`].
pub fn auto_batch_size(
    config: &TrainConfig,
    list: &DeviceList,
    dtype: Dtype,
    checkpointing: ActivationCheckpointing,
) -> anyhow::Result<usize> {
    if list.kind == DeviceKind::Cpu {
        anyhow::bail!("--batch-size auto measures GPU memory; on the CPU give a number (or set data.batch_size)");
    }
    let mut seen = list.indices.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() < list.indices.len() {
        anyhow::bail!("--batch-size auto with several ranks on one device would overfill it; give a number");
    }
    let (kind, index) = (value_name(&list.kind), list.indices[0]);
    let device = format!("{kind}:{index}");
    let file = tempfile::Builder::new().prefix("hrm-batch-probe-").suffix(".toml").tempfile()?;
    std::fs::write(file.path(), config.to_toml()).with_context(|| format!("cannot write {}", file.path().display()))?;
    let exe = std::env::current_exe().context("cannot find the hrm executable to run the probes")?;
    let started = Instant::now();
    let mut trials = 0;
    let mut failure = None;
    let largest = largest_fitting(MAX_AUTO_BATCH, |batch| -> anyhow::Result<bool> {
        trials += 1;
        let tried = Instant::now();
        let output = Command::new(&exe)
            .arg("probe-batch")
            .arg("--config")
            .arg(file.path())
            .args(["--batch", &batch.to_string(), "--device", &kind, "--index", &index.to_string()])
            .args(["--dtype", &value_name(&dtype), "--activation-checkpointing", &checkpointing.to_string()])
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", exe.display()))?;
        let fits = output.status.success();
        tracing::debug!(
            "batch {batch} × {} tokens: {} ({:.1} s, {})",
            config.data.seq_len,
            if fits { "fits" } else { "does not fit" },
            tried.elapsed().as_secs_f64(),
            output.status
        );
        if !fits {
            failure = Some(format!("{}:\n{}", output.status, last_lines(&output.stderr, 4)));
        }
        Ok(fits)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let Some(largest) = largest else {
        anyhow::bail!(
            "--batch-size auto: even one sequence of {} tokens does not fit {device} ({})",
            config.data.seq_len,
            failure.unwrap_or_default()
        );
    };
    let chosen = with_headroom(largest);
    tracing::info!(
        "--batch-size auto: {largest} sequences of {} tokens fit {device} ({trials} trials, {seconds:.0} s); training with {chosen}",
        config.data.seq_len
    );
    Ok(chosen)
}

/// The name the command line gives `value`.
fn value_name(value: &impl clap::ValueEnum) -> String {
    value.to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned())
}

/// The last `n` lines of a child's output.
fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
