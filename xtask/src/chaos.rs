//! `cargo xtask chaos`: the long crash test. Runs the chaos test of hrm-cli
//! (`crates/hrm-cli/tests/chaos.rs`) with many kills and saves its JSON report.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

/// Options of chaos.
#[derive(clap::Args)]
pub struct Args {
    /// SIGKILLs to deliver in total (about a third aimed at checkpoint writes).
    #[arg(long, default_value_t = 100)]
    kills: u32,
    /// Seed of the kill moments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to save the report.
    #[arg(long, default_value = "target/reliability/chaos.json")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let out = std::path::absolute(&args.out)?;
    let status = Command::new(env!("CARGO"))
        .args(["test", "--locked", "-p", "hrm-cli", "--test", "chaos", "--", "--nocapture"])
        .env("HRM_CHAOS_KILLS", args.kills.to_string())
        .env("HRM_CHAOS_SEED", args.seed.to_string())
        .env("HRM_CHAOS_REPORT", &out)
        .status()
        .context("cannot run cargo test")?;
    if !status.success() {
        bail!("the chaos test failed (report, if written: {})", out.display());
    }
    println!("saved {}", out.display());
    Ok(())
}
