//! `cargo xtask fuzz`: runs every cargo-fuzz target of `fuzz/` under libFuzzer for a bounded
//! time (needs the nightly toolchain and `cargo install cargo-fuzz`) and saves executions,
//! coverage, peak memory and crashes per target as JSON.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Serialize;

/// Options of fuzz.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Only these targets (comma-separated; default all of `fuzz/fuzz_targets/`).
    #[arg(long)]
    targets: Option<String>,
    /// libFuzzer's memory limit: a larger RSS or single allocation counts as a crash.
    #[arg(long, default_value_t = 2048)]
    rss_limit_mb: u64,
    /// Where to save the report.
    #[arg(long, default_value = "target/reliability/fuzz.json")]
    out: PathBuf,
}

#[derive(Serialize)]
struct TargetReport {
    target: String,
    seconds: u64,
    executions: u64,
    executions_per_s: u64,
    coverage_edges: Option<u64>,
    peak_rss_mb: Option<u64>,
    crashed: bool,
    artifacts: Vec<String>,
}

/// The value after `key` on the last line of libFuzzer's output that has it.
fn stat(log: &str, key: &str) -> Option<u64> {
    log.lines().rev().find_map(|line| {
        let rest = &line[line.find(key)? + key.len()..];
        rest.trim_start_matches([':', ' ']).split_whitespace().next()?.parse().ok()
    })
}

fn target_names(fuzz: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".rs").map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let fuzz = Path::new("fuzz");
    let targets = match &args.targets {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => target_names(fuzz)?,
    };
    let mut reports = Vec::new();
    for target in &targets {
        // New inputs go to a scratch corpus; the committed seeds are read alongside.
        let scratch = Path::new("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch)?;
        let artifacts = std::path::absolute(Path::new("target/fuzz-artifacts").join(target))?;
        std::fs::create_dir_all(&artifacts)?;
        let output = Command::new("cargo")
            .current_dir(fuzz)
            .args(["+nightly", "fuzz", "run", "-O", target])
            .arg(std::path::absolute(&scratch)?)
            .arg(std::path::absolute(fuzz.join("corpus").join(target))?)
            .arg("--")
            .arg(format!("-max_total_time={}", args.seconds))
            .arg(format!("-rss_limit_mb={}", args.rss_limit_mb))
            .arg(format!("-malloc_limit_mb={}", args.rss_limit_mb))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .output()
            .context("cannot run `cargo +nightly fuzz` (install: cargo install cargo-fuzz)")?;
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        std::fs::write(artifacts.join("log.txt"), &log)?;
        let executions = stat(&log, "stat::number_of_executed_units").unwrap_or(0);
        let found: Vec<String> = std::fs::read_dir(&artifacts)?
            .flatten()
            .map(|e| e.path().display().to_string())
            .filter(|p| !p.ends_with("log.txt"))
            .collect();
        let report = TargetReport {
            target: target.clone(),
            seconds: args.seconds,
            executions,
            executions_per_s: stat(&log, "stat::average_exec_per_sec").unwrap_or(0),
            coverage_edges: stat(&log, "cov"),
            peak_rss_mb: stat(&log, "stat::peak_rss_mb"),
            crashed: !output.status.success(),
            artifacts: found,
        };
        println!(
            "{:<16} {:>10} executions {:>7}/s  peak {:>5} MB  {}",
            report.target,
            report.executions,
            report.executions_per_s,
            report.peak_rss_mb.unwrap_or(0),
            if report.crashed { "CRASH (see target/fuzz-artifacts)" } else { "no crash" }
        );
        reports.push(report);
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&reports)?)?;
    println!("saved {}", args.out.display());
    if reports.iter().any(|r| r.crashed) {
        bail!("a fuzz target crashed");
    }
    Ok(())
}
