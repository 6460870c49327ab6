//! `cargo xtask bench data`: how fast text becomes training windows on this machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use hrm_data::{CharTokenizer, DataConfig, HfTokenizer, HubOptions, Packer, SourceSpec, Split, Tokenizer};
use serde::Serialize;

/// Options of the data benchmark.
#[derive(clap::Args)]
pub struct Args {
    /// Folder holding `tinystories/` and `tokenizers/gpt2/` (default: ../shared/data beside the repo).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Passes over the text per tokenizer (the best is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Tokens per training sequence.
    #[arg(long, default_value_t = 512)]
    seq_len: usize,
    /// Where to save the JSON results.
    #[arg(long, default_value = "target/bench/data.json")]
    out: PathBuf,
}

#[derive(Serialize)]
struct Row {
    tokenizer: String,
    text_bytes: u64,
    tokens: u64,
    windows: u64,
    seconds: f64,
    mb_per_s: f64,
    tokens_per_s: f64,
}

#[derive(Serialize)]
struct Report {
    benchmark: &'static str,
    data: String,
    seq_len: usize,
    threads: usize,
    rows: Vec<Row>,
    peak_rss_bytes: Option<u64>,
}

/// One pass over the text: every document tokenized and packed into windows.
fn one_pass(config: &DataConfig, base: &Path, tokenizer: Arc<dyn Tokenizer>) -> anyhow::Result<(u64, u64, f64)> {
    let stream = config.documents(Split::Train, base, &HubOptions::from_env())?;
    let mut packer = Packer::new(stream, tokenizer, config.seq_len);
    let (mut windows, start) = (0u64, Instant::now());
    while packer.stream().sources().iter().all(|s| s.position().epoch == 0) {
        packer.next_window()?.context("the training stream never ends")?;
        windows += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((windows, windows * (config.seq_len as u64 + 1), seconds))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = args.data.unwrap_or_else(|| PathBuf::from("../shared/data"));
    let stories = data.join("tinystories");
    let gpt2 = data.join("tokenizers/gpt2/tokenizer.json");
    anyhow::ensure!(
        stories.is_dir() && gpt2.is_file(),
        "{} must hold tinystories/ and tokenizers/gpt2/tokenizer.json (pass --data)",
        data.display()
    );
    let text_bytes: u64 = std::fs::read_dir(&stories)?
        .map(|e| e.map(|e| e.metadata().map(|m| m.len()).unwrap_or(0)))
        .sum::<Result<u64, _>>()?;
    let corpus: String =
        std::fs::read_dir(&stories)?.map(|e| std::fs::read_to_string(e?.path())).collect::<Result<_, _>>()?;

    let config = DataConfig {
        validation_fraction: 0.0,
        ..DataConfig::new(vec![SourceSpec::local("tinystories", "*.txt")], args.seq_len, 1)
    };
    let tokenizers: Vec<(&str, Arc<dyn Tokenizer>)> = vec![
        ("gpt2", Arc::new(HfTokenizer::load(&gpt2)?)),
        ("char", Arc::new(CharTokenizer::from_text(&corpus, "tinystories"))),
    ];
    let mut rows = Vec::new();
    for (name, tokenizer) in tokenizers {
        let mut best: Option<(u64, u64, f64)> = None;
        for _ in 0..args.repeats.max(1) {
            let run = one_pass(&config, &stories, tokenizer.clone())?;
            if best.is_none_or(|b| run.2 < b.2) {
                best = Some(run);
            }
        }
        let (windows, tokens, seconds) = best.expect("at least one pass");
        rows.push(Row {
            tokenizer: name.into(),
            text_bytes,
            tokens,
            windows,
            seconds,
            mb_per_s: text_bytes as f64 / 1e6 / seconds,
            tokens_per_s: tokens as f64 / seconds,
        });
    }
    let report = Report {
        benchmark: "data",
        data: stories.display().to_string(),
        seq_len: args.seq_len,
        threads: 1,
        rows,
        peak_rss_bytes: hrm_train::memory::peak_rss_bytes(),
    };
    println!(
        "{:<10} {:>12} {:>12} {:>10} {:>10} {:>14}",
        "tokenizer", "text bytes", "tokens", "seconds", "MB/s", "tokens/s"
    );
    for r in &report.rows {
        println!(
            "{:<10} {:>12} {:>12} {:>10.3} {:>10.2} {:>14.0}",
            r.tokenizer, r.text_bytes, r.tokens, r.seconds, r.mb_per_s, r.tokens_per_s
        );
    }
    if let Some(rss) = report.peak_rss_bytes {
        println!("peak RSS: {:.1} MiB", rss as f64 / (1024.0 * 1024.0));
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("saved {}", args.out.display());
    Ok(())
}
