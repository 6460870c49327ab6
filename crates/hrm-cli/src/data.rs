//! `hrm data inspect`: what a data config streams — counts, samples, filter statistics.

use std::path::PathBuf;

use anyhow::Context;
use hrm_data::{HubOptions, Split};
use hrm_train::TrainConfig;

/// `hrm data` subcommands.
#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Stream documents of a config's data: counts per source, bytes, filter statistics, samples.
    Inspect(InspectArgs),
}

/// Arguments of `hrm data inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// A run config (TOML) whose `[data]` to read.
    #[arg(long, short)]
    config: PathBuf,
    /// `train` or `validation`.
    #[arg(long, default_value = "train")]
    split: String,
    /// Most documents to read (the stream stops earlier at the end of one pass).
    #[arg(long, default_value_t = 1000)]
    docs: usize,
    /// Sample documents to print.
    #[arg(long, default_value_t = 3)]
    samples: usize,
}

pub fn run(command: DataCommand) -> anyhow::Result<()> {
    let DataCommand::Inspect(args) = command;
    let config = TrainConfig::load(&args.config)?;
    let split = match args.split.as_str() {
        "train" => Split::Train,
        "validation" => Split::Validation,
        other => anyhow::bail!("unknown split `{other}`: use train or validation"),
    };
    let base = crate::folder::folder_of(&args.config);
    let mut stream = config
        .data
        .documents(split, &base, &HubOptions::from_env())
        .with_context(|| format!("opening the data of {}", args.config.display()))?;
    let bar = crate::progress::bar(args.docs as u64, "documents");
    let (mut count, mut bytes, mut samples) = (0usize, 0usize, Vec::new());
    while count < args.docs {
        let Some(doc) = stream.next_document()? else { break };
        count += 1;
        bytes += doc.text.len();
        if samples.len() < args.samples {
            samples.push(doc);
        }
        bar.inc(1);
        if stream.sources().iter().any(|s| s.position().epoch > 0) {
            break;
        }
    }
    bar.finish_and_clear();
    println!(
        "{} documents, {:.2} MB, {:.0} bytes/document ({:?} split)",
        count,
        bytes as f64 / 1e6,
        bytes as f64 / count.max(1) as f64,
        split
    );
    for (spec, n) in config.data.sources.iter().zip(stream.documents_per_source()) {
        println!("  {:<24} {n:>8} documents", spec.name);
    }
    let s = stream.filter_stats();
    println!(
        "filters: {} seen, {} kept; dropped: language {}, length {}, symbols {}, letters {}, repeated lines {}, boilerplate {}, duplicates {}",
        s.seen, s.kept, s.language, s.length, s.symbols, s.alpha, s.repeated_lines, s.boilerplate, s.duplicate
    );
    for (i, doc) in samples.iter().enumerate() {
        let preview: String = doc.text.chars().take(300).collect();
        let more = if doc.text.chars().count() > 300 { " …" } else { "" };
        println!("--- sample {} (source {}) ---\n{preview}{more}", i + 1, config.data.sources[doc.source].name);
    }
    Ok(())
}
